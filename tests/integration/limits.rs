//! The `limits` check through the engine: on a built root (a NodeManager pid file, its
//! `/proc/<pid>/limits` in the kernel's layout from `tests/fixtures/limits/`, a Spark conf that
//! turns `MaxFDLimit` off), and on this machine against a real process started with a lowered
//! open-files limit.

use gluten_node_tests::*;
use proto::Status;
use std::path::Path;

/// A root with `/var/run/hadoop/yarn-nm.pid` naming pid 31337, that pid's limits from the fixture
/// `limits`, a core_pattern writing to `/var/crash`, and a `spark-defaults.conf`.
fn build_root(limits: &str, spark_defaults: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in [
        "var/run/hadoop",
        "proc/31337",
        "proc/sys/kernel",
        "var/crash",
        "etc/spark",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("var/run/hadoop/yarn-nm.pid"), "31337\n").unwrap();
    std::fs::copy(
        fixture(&format!("limits/{limits}")),
        r.join("proc/31337/limits"),
    )
    .unwrap();
    std::fs::write(
        r.join("proc/sys/kernel/core_pattern"),
        "/var/crash/core.%e.%p\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/spark/spark-defaults.conf"), spark_defaults).unwrap();
    dir
}

/// One round with only `limits` enabled (and `memory` carrying the shared Spark conf).
fn limits_round(root: &Path, limits_toml: &str) -> proto::CheckResult {
    let mut text = String::new();
    for other in checks::NAMES {
        if other != "limits" && other != "memory" {
            text.push_str(&format!("[{other}]\nenabled = false\n"));
        }
    }
    text.push_str(
        "[memory]\nenabled = false\nspark_defaults = \"/etc/spark/spark-defaults.conf\"\n",
    );
    text.push_str(&format!("[limits]\nin_container = false\n{limits_toml}\n"));
    let s = round(&config(root, &text), "x86_64");
    s.report
        .checks
        .into_iter()
        .find(|c| c.name == "limits")
        .expect("limits ran")
}

#[test]
fn built_root_judges_the_hard_limit_then_the_soft_one_under_max_fd_limit_off() {
    let pid_file = "launcher_pid_file = \"/var/run/hadoop/yarn-nm.pid\"";
    let t = build_root("soft-1024-hard-524288.limits", "spark.executor.memory 4g\n");
    let r = limits_round(t.path(), pid_file);
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert!(r.summary.contains("pid 31337"), "{}", r.summary);
    assert!(
        r.summary.contains("cores land in /var/crash ("),
        "{}",
        r.summary
    );
    assert_eq!(r.facts["source"]["pid_file"], "/var/run/hadoop/yarn-nm.pid");

    std::fs::write(
        t.path().join("etc/spark/spark-defaults.conf"),
        "spark.executor.extraJavaOptions=-XX:-MaxFDLimit\n",
    )
    .unwrap();
    let r = limits_round(t.path(), pid_file);
    assert_eq!(r.status, Status::Warn, "{}", r.summary);
    assert!(r.summary.contains("soft open-files limit"), "{}", r.summary);
    assert_eq!(r.facts["java_options"]["max_fd_limit_off"], true);

    let t = build_root("hard-1024.limits", "");
    let r = limits_round(t.path(), pid_file);
    assert_eq!(r.status, Status::Warn, "{}", r.summary);
    assert!(r.summary.contains("hard open-files limit"), "{}", r.summary);
    // A lower floor passes it.
    let r = limits_round(t.path(), &format!("{pid_file}\nmin_open_files = 1024"));
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    // The default pid file is not in this root: unknown, naming it.
    let r = limits_round(t.path(), "");
    assert_eq!(r.status, Status::Unknown, "{}", r.summary);
    assert!(
        r.summary.contains("/tmp/hadoop-yarn-nodemanager.pid"),
        "{}",
        r.summary
    );
}

/// A real process whose hard open-files limit the test lowered to 1,000, found through a pid
/// file on this machine (`host_root = "/"`): the check reads the kernel's own
/// `/proc/<pid>/limits`.
#[test]
fn a_real_process_with_a_lowered_hard_limit_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -Sn 1000 && ulimit -Hn 1000 && exec sleep 60"])
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("nm.pid");
    std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
    // Until the shell has exec'd sleep under its new limits.
    let limits = format!("/proc/{}/limits", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&limits)
        .unwrap_or_default()
        .contains("Max open files            1000                 1000")
    {
        assert!(std::time::Instant::now() < deadline, "limits never lowered");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = limits_round(
        Path::new("/"),
        &format!("launcher_pid_file = {:?}", pid_file.display().to_string()),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(r.status, Status::Warn, "{}", r.summary);
    assert!(
        r.summary
            .contains(&format!("pid {} ({}", child.id(), pid_file.display())),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("is 1000"), "{}", r.summary);
}
