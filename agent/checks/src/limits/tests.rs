//! The limits check on fixture roots: the launcher's limits read through its pid file, the
//! container fallback, the unknowns (no pid file, stale pid, garbage, a FIFO), `MaxFDLimit`.

use super::*;
use crate::check::Check;
use crate::check::{Outcome, Runner, Shared};
use proto::Status;
use std::path::{Path, PathBuf};

/// The kernel-format fixture files (`tests/fixtures/limits/`).
fn fixture(name: &str) -> String {
    let p = format!(
        "{}/../../tests/fixtures/limits/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A root with a NodeManager pid file naming `pid`, `/proc/<pid>/limits` from `limits`, and a
/// piped core_pattern.
fn root(pid_file_text: Option<&str>, pid: u32, limits: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("tmp")).unwrap();
    std::fs::create_dir_all(r.join("proc/sys/kernel")).unwrap();
    std::fs::write(
        r.join("proc/sys/kernel/core_pattern"),
        "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n",
    )
    .unwrap();
    if let Some(t) = pid_file_text {
        std::fs::write(r.join("tmp/hadoop-yarn-nodemanager.pid"), t).unwrap();
    }
    if let Some(l) = limits {
        std::fs::create_dir_all(r.join(format!("proc/{pid}"))).unwrap();
        std::fs::write(r.join(format!("proc/{pid}/limits")), fixture(l)).unwrap();
    }
    dir
}

/// Surroundings that are no container (an empty own root).
fn not_a_container() -> (tempfile::TempDir, OwnEnvironment) {
    let own = tempfile::tempdir().unwrap();
    let env = OwnEnvironment {
        root: own.path().to_path_buf(),
        kubernetes: false,
    };
    (own, env)
}

fn run_with(
    r: &Path,
    settings: Settings,
    spark_defaults: Option<&str>,
    own: OwnEnvironment,
) -> Outcome {
    let shared = Shared {
        spark_defaults: spark_defaults.map(PathBuf::from),
        executors_per_node: 1,
        ..Shared::default()
    };
    Runner::with_check(Limits::with_environment(own), settings, shared)
        .run(&Host::new(r))
        .unwrap()
}

fn run(r: &Path) -> Outcome {
    let (_own, env) = not_a_container();
    run_with(r, Settings::default(), None, env)
}

#[test]
fn a_hard_limit_of_1024_warns_naming_file_pid_values_and_key() {
    let t = root(Some("4242\n"), 4242, Some("hard-1024.limits"));
    let o = run(t.path());
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    let m = &o.findings[0].message;
    for part in [
        "hard open-files limit",
        "pid 4242",
        "/tmp/hadoop-yarn-nodemanager.pid",
        "/proc/4242/limits",
        "is 1024",
        "`min_open_files` 65536",
    ] {
        assert!(m.contains(part), "{part:?} not in {m}");
    }
    assert_eq!(o.facts["source"]["kind"], "launcher");
    assert_eq!(o.facts["limits"]["open_files"]["hard"], 1024);
    let hard = o
        .metrics
        .iter()
        .find(|s| s.name == "gluten_node_limits_open_files" && s.labels[0].1 == "hard")
        .unwrap();
    assert_eq!(hard.value, 1024.0);
}

#[test]
fn a_soft_limit_of_1024_under_a_high_hard_limit_is_ok() {
    let t = root(Some("4242"), 4242, Some("soft-1024-hard-524288.limits"));
    let o = run(t.path());
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    let s = o.summary();
    assert!(
        s.contains("soft 1024 / hard 524288") && s.contains("pid 4242"),
        "{s}"
    );
    assert!(s.contains("core file size soft 0 / hard unlimited"), "{s}");
    assert!(
        s.contains("pipes cores to /usr/lib/systemd/systemd-coredump"),
        "{s}"
    );
    assert_eq!(o.facts["cores"]["destination"]["kind"], "pipe");
}

#[test]
fn max_fd_limit_off_judges_the_soft_limit() {
    let t = root(Some("4242"), 4242, Some("soft-1024-hard-524288.limits"));
    let conf = t.path().join("opt/spark/conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("spark-defaults.conf"),
        "spark.executor.extraJavaOptions  -Xss4m -XX:-MaxFDLimit\n",
    )
    .unwrap();
    let (_own, env) = not_a_container();
    let o = run_with(
        t.path(),
        Settings::default(),
        Some("/opt/spark/conf/spark-defaults.conf"),
        env,
    );
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    let m = &o.findings[0].message;
    assert!(
        m.contains("soft open-files limit") && m.contains("is 1024"),
        "{m}"
    );
    assert!(
        m.contains("-XX:-MaxFDLimit") && m.contains("spark-defaults.conf"),
        "{m}"
    );
    // Turned back on later in the options: the hard limit again.
    std::fs::write(
        conf.join("spark-defaults.conf"),
        "spark.executor.defaultJavaOptions -XX:-MaxFDLimit\n\
         spark.executor.extraJavaOptions -XX:+MaxFDLimit\n",
    )
    .unwrap();
    let (_own, env) = not_a_container();
    let o = run_with(
        t.path(),
        Settings::default(),
        Some("/opt/spark/conf/spark-defaults.conf"),
        env,
    );
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
}

#[test]
fn no_pid_file_outside_a_container_is_unknown() {
    let t = root(None, 0, None);
    let o = run(t.path());
    assert_eq!(o.status(), Status::Unknown);
    let m = &o.findings[0].message;
    assert!(
        m.contains("no pid file /tmp/hadoop-yarn-nodemanager.pid")
            && m.contains("`launcher_pid_file`")
            && m.contains("not in a container"),
        "{m}"
    );
    // The core facts are there all the same.
    assert_eq!(o.facts["cores"]["destination"]["kind"], "pipe");
}

#[test]
fn a_stale_pid_is_unknown_naming_it() {
    let t = root(Some("999999\n"), 0, None);
    let o = run(t.path());
    assert_eq!(o.status(), Status::Unknown);
    let m = &o.findings[0].message;
    assert!(
        m.contains("pid 999999") && m.contains("no /proc/999999"),
        "{m}"
    );
}

#[test]
fn a_garbage_pid_file_is_unknown_naming_the_value() {
    let t = root(Some("nodemanager\n"), 0, None);
    let o = run(t.path());
    assert_eq!(o.status(), Status::Unknown);
    let m = &o.findings[0].message;
    assert!(
        m.contains("\"nodemanager\" is not a process id")
            && m.contains("/tmp/hadoop-yarn-nodemanager.pid"),
        "{m}"
    );
}

#[test]
fn a_fifo_at_the_pid_file_does_not_hang() {
    let t = root(None, 0, None);
    let fifo = t.path().join("tmp/hadoop-yarn-nodemanager.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = t.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(run(&path));
    });
    let o = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the read of a FIFO returned");
    assert_eq!(o.status(), Status::Unknown);
    let m = &o.findings[0].message;
    assert!(
        m.contains("a FIFO") && m.contains("hadoop-yarn-nodemanager.pid"),
        "{m}"
    );
}

#[test]
fn in_a_container_without_pid_file_the_agents_own_limits_stand() {
    let t = root(None, 0, None);
    std::fs::create_dir_all(t.path().join("proc/self")).unwrap();
    std::fs::write(
        t.path().join("proc/self/limits"),
        fixture("soft-1024-hard-524288.limits"),
    )
    .unwrap();
    // Detected by the Kubernetes environment.
    let own = tempfile::tempdir().unwrap();
    let env = OwnEnvironment {
        root: own.path().to_path_buf(),
        kubernetes: true,
    };
    let o = run_with(t.path(), Settings::default(), None, env);
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert_eq!(o.facts["source"]["kind"], "agent");
    assert!(
        o.summary().contains("KUBERNETES_SERVICE_HOST"),
        "{}",
        o.summary()
    );
    // Forced off by the setting: unknown.
    let (_own, env) = not_a_container();
    let o = run_with(
        t.path(),
        Settings {
            in_container: Some(false),
            ..Settings::default()
        },
        None,
        OwnEnvironment {
            kubernetes: true,
            ..env
        },
    );
    assert_eq!(o.status(), Status::Unknown, "{}", o.summary());
}

#[test]
fn container_detection_says_which_evidence() {
    let own = tempfile::tempdir().unwrap();
    let env = OwnEnvironment {
        root: own.path().to_path_buf(),
        kubernetes: false,
    };
    assert_eq!(detect_container(&env), None);
    std::fs::create_dir_all(own.path().join("proc/1")).unwrap();
    std::fs::write(own.path().join("proc/1/cgroup"), "0::/\n").unwrap();
    assert_eq!(detect_container(&env), None);
    std::fs::write(
        own.path().join("proc/1/cgroup"),
        "12:memory:/kubepods/burstable/pod1/abc\n",
    )
    .unwrap();
    assert!(
        detect_container(&env)
            .unwrap()
            .contains("/proc/1/cgroup names kubepods")
    );
    std::fs::write(own.path().join(".dockerenv"), "").unwrap();
    assert_eq!(
        detect_container(&env).unwrap(),
        "/.dockerenv exists (Docker)"
    );
}

#[test]
fn cores_to_a_path_report_its_free_space_and_templates_do_not() {
    let t = root(
        Some("4242"),
        4242,
        Some("soft-65536-hard-65536-cores-unlimited.limits"),
    );
    std::fs::create_dir_all(t.path().join("var/crash")).unwrap();
    let pattern = t.path().join("proc/sys/kernel/core_pattern");
    std::fs::write(&pattern, "/var/crash/core.%e.%p\n").unwrap();
    let o = run(t.path());
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert!(o.facts["cores"]["dir_free_bytes"].is_u64(), "{}", o.facts);
    assert!(
        o.summary().contains("cores land in /var/crash ("),
        "{}",
        o.summary()
    );
    assert!(
        o.summary()
            .contains("core file size soft unlimited / hard unlimited")
    );
    std::fs::write(&pattern, "/cores/%h/core\n").unwrap();
    let o = run(t.path());
    assert!(o.facts["cores"]["dir_free_bytes"].is_null());
    assert!(
        o.facts["cores"]["dir_free_unknown"]
            .as_str()
            .unwrap()
            .contains("% specifiers")
    );
    std::fs::write(&pattern, "core\n").unwrap();
    let o = run(t.path());
    assert_eq!(o.facts["cores"]["destination"]["kind"], "relative");
}

#[test]
fn a_real_capture_parses() {
    let r = parse_rlimits(&fixture("linux-6.18-self.limits")).unwrap();
    assert!(r.core_file_bytes.is_some());
}
