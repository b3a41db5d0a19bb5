//! The real binary's `check` subcommand on fixture trees: output formats (table, json, the YARN
//! health script's lines) and exit codes.

use gluten_node_tests::*;
use std::process::Command;

#[test]
fn check_json_is_a_node_report_and_exit_code_follows_the_verdict() {
    let out = Command::new(agent_bin())
        .args(["check", "--output", "json", "--host-root"])
        .arg(upstream("node-exporter-upstream"))
        .output()
        .unwrap();
    let report: proto::NodeReport = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report.schema_version, proto::SCHEMA_VERSION);
    assert_eq!(report.checks.len(), checks::NAMES.len());
    let expected = if report.status == proto::Status::Fail {
        1
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(expected));
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let out = Command::new(agent_bin())
        .args(["check", "--set", "hugepages.thp_expectd=always"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("thp_expectd") && err.contains("hugepages"),
        "{err}"
    );
}

#[test]
fn a_taken_port_exits_1_naming_the_key_and_saying_the_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(agent_bin())
        .args(["run", "--listen", &addr, "--host-root"])
        .arg(upstream("node-exporter-upstream"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("gluten-node-agent: listening on")
            && last.contains(&addr)
            && last.contains("`listen`"),
        "{err}"
    );
    assert_eq!(last.matches("os error").count(), 1, "{err}");
}

/// Scratch thresholds off, so a fixture's verdict never depends on this machine's free space.
const NO_SPACE_RULES: &[&str] = &[
    "--set",
    "scratch.fail_free_ratio=0",
    "--set",
    "scratch.warn_free_ratio=0",
    "--set",
    "scratch.min_free_bytes=0",
    "--set",
    "scratch.min_free_inodes_ratio=0",
];

fn check_yarn(root: &std::path::Path, extra: &[&str]) -> (std::process::Output, Vec<String>) {
    let out = Command::new(agent_bin())
        .args(["check", "--output", "yarn", "--host-root"])
        .arg(root)
        .args(NO_SPACE_RULES)
        .args(extra)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (out, lines)
}

/// Every line is `<WORD> <check>: <summary>`, one per check in `names`, ERROR exactly for `fail`.
fn assert_yarn_lines(lines: &[String], report: &proto::NodeReport) {
    assert_eq!(lines.len(), report.checks.len(), "{lines:#?}");
    for c in &report.checks {
        let word = match c.status {
            proto::Status::Fail => "ERROR",
            proto::Status::Unknown => "UNKNOWN",
            proto::Status::Warn => "WARN",
            proto::Status::Ok => "OK",
        };
        let line = format!("{word} {}: {}", c.name, c.summary);
        assert!(lines.contains(&line), "missing {line:?} in {lines:#?}");
    }
    // Failing checks come first: the ResourceManager shows the start of the report.
    let first_non_error = lines.iter().position(|l| !l.starts_with("ERROR"));
    if let Some(i) = first_non_error {
        assert!(
            lines[i..].iter().all(|l| !l.starts_with("ERROR")),
            "{lines:#?}"
        );
    }
}

fn report_json(root: &std::path::Path) -> proto::NodeReport {
    let out = Command::new(agent_bin())
        .args(["check", "--output", "json", "--host-root"])
        .arg(root)
        .args(NO_SPACE_RULES)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn yarn_output_on_a_failing_fixture_has_one_error_line_per_failing_check_and_exits_0() {
    // No /tmp in this tree: scratch fails.
    let root = upstream("node-exporter-upstream");
    let (out, lines) = check_yarn(&root, &[]);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}");
    assert_eq!(lines[0], "ERROR scratch: /tmp does not exist", "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("ERROR")).count(), 1);
    assert_yarn_lines(&lines, &report_json(&root));
}

#[test]
fn yarn_output_on_a_healthy_fixture_has_no_error_line_and_exits_0() {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    std::fs::create_dir(root.path().join("tmp")).unwrap();
    let (out, lines) = check_yarn(root.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!lines.iter().any(|l| l.starts_with("ERROR")), "{lines:#?}");
    let report = report_json(root.path());
    assert_ne!(report.status, proto::Status::Fail);
    assert_yarn_lines(&lines, &report);
}

#[test]
fn yarn_output_is_bounded_by_the_check_deadline() {
    // /proc/meminfo is a FIFO nobody writes: memory and hugepages hang in open(2).
    let root = copy_tree(&upstream("node-exporter-upstream"));
    std::fs::create_dir(root.path().join("tmp")).unwrap();
    let meminfo = root.path().join("proc/meminfo");
    std::fs::remove_file(&meminfo).unwrap();
    nix::unistd::mkfifo(&meminfo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Build (or find) the binary before the clock starts: only the check's own time counts.
    agent_bin();
    let t0 = std::time::Instant::now();
    let (out, lines) = check_yarn(root.path(), &["--check-timeout-seconds", "0.5"]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0));
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    assert!(
        lines.contains(&"UNKNOWN memory: timed out after 0.5s".to_string()),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("ERROR")), "{lines:#?}");
}

#[test]
fn yarn_output_from_the_running_daemon_and_without_one() {
    let root = upstream("node-exporter-upstream");
    let p = Proc::start(
        &[
            "run",
            "--host-root",
            root.to_str().unwrap(),
            "--interval-seconds",
            "0.2",
        ],
        "/livez",
    );
    eventually(std::time::Duration::from_secs(20), || {
        (get(p.addr, "/readyz").ok()?.status == 200).then_some(())
    })
    .expect("daemon ready");
    let (out, lines) = check_yarn(&root, &["--from-daemon", &p.addr.to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let daemon: proto::NodeReport =
        serde_json::from_str(&get(p.addr, "/health").unwrap().body).unwrap();
    assert_eq!(lines[0], "ERROR scratch: /tmp does not exist", "{lines:#?}");
    assert_eq!(lines.len(), daemon.checks.len(), "{lines:#?}");

    // No daemon on that port: one UNKNOWN line (the agent's trouble is not the node's), exit 0.
    let port = free_port();
    let t0 = std::time::Instant::now();
    let (out, lines) = check_yarn(&root, &["--from-daemon", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(t0.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("UNKNOWN gluten-node-agent: cannot reach the daemon"),
        "{lines:#?}"
    );
}
