//! The agent's HTTP endpoints through the real binary on 127.0.0.1: probes, verdicts, metrics,
//! a hung check (a FIFO with no writer as `/proc/meminfo`), malformed kernel files, shutdown.

use gluten_node_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn agent(root: &Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "run",
        "--host-root",
        root.to_str().unwrap(),
        "--interval-seconds",
        "0.2",
    ];
    args.extend_from_slice(extra);
    Proc::start(&args, "/livez")
}

fn wait_ready(p: &Proc) {
    eventually(Duration::from_secs(20), || {
        (get(p.addr, "/readyz").ok()?.status == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("not ready: {}", p.stderr()));
}

#[test]
fn probes_verdict_and_check_endpoints() {
    let p = agent(&upstream("node-exporter-upstream"), &[]);
    wait_ready(&p);

    let live = get(p.addr, "/livez").unwrap();
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));
    assert!(
        get(p.addr, "/livez?verbose")
            .unwrap()
            .body
            .contains("[+]check-loop")
    );
    assert_eq!(get(p.addr, "/readyz").unwrap().status, 200);

    let h = get(p.addr, "/health").unwrap();
    assert_eq!(h.header("content-type"), Some("application/json"));
    let report: proto::NodeReport = serde_json::from_str(&h.body).unwrap();
    let expected = if report.status == proto::Status::Fail {
        503
    } else {
        200
    };
    assert_eq!(h.status, expected, "{}", h.body);
    assert_eq!(
        report
            .checks
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        checks::NAMES
    );

    for name in checks::NAMES {
        let r = get(p.addr, &format!("/health/{name}")).unwrap();
        let c: proto::CheckResult = serde_json::from_str(&r.body).unwrap();
        assert_eq!(c.name, name);
        assert_eq!(
            r.status,
            if c.status == proto::Status::Fail {
                503
            } else {
                200
            }
        );
    }

    // The one-line verdict: 503 with the failing checks named, or 200.
    let v = get(p.addr, "/health/verdict").unwrap();
    assert_eq!(v.status, expected, "{}", v.body);
    assert_eq!(v.body.lines().count(), 1, "{}", v.body);
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == proto::Status::Fail)
        .map(|c| c.name.as_str())
        .collect();
    if failing.is_empty() {
        assert!(!v.body.starts_with("fail"), "{}", v.body);
    } else {
        assert!(
            v.body.starts_with(&format!("fail: {}", failing.join(", "))),
            "{}",
            v.body
        );
    }

    let nf = get(p.addr, "/health/nosuch").unwrap();
    assert_eq!(nf.status, 404);
    let err: proto::ApiError = serde_json::from_str(&nf.body).unwrap();
    assert!(err.error.contains("nosuch"), "{}", err.error);
    assert_eq!(err.valid.unwrap(), checks::NAMES);

    let landing = get(p.addr, "/").unwrap();
    assert_eq!(landing.status, 200);
    for link in ["/health", "/metrics", "/livez", "/readyz"] {
        assert!(landing.body.contains(&format!("href=\"{link}\"")), "{link}");
    }
}

#[test]
fn a_disabled_check_is_404_naming_it() {
    let p = agent(
        &upstream("node-exporter-upstream"),
        &["--set", "numa.enabled=false"],
    );
    wait_ready(&p);
    let r = get(p.addr, "/health/numa").unwrap();
    assert_eq!(r.status, 404);
    assert!(r.body.contains("disabled"), "{}", r.body);
    assert!(
        !r.json()["valid"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "numa")
    );
}

#[test]
fn metrics_negotiate_format_and_pass_promtool() {
    let p = agent(&upstream("node-exporter-upstream"), &[]);
    wait_ready(&p);
    let text = get(p.addr, "/metrics").unwrap();
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!text.body.contains("# EOF"));
    for family in [
        "gluten_node_build_info{",
        "gluten_node_check_status{check=\"memory\",state=\"ok\"}",
        "gluten_node_check_duration_seconds{check=\"velox_library\"}",
        "gluten_node_check_last_run_timestamp_seconds{",
        "# TYPE gluten_node_rounds_total counter",
        "# TYPE gluten_node_check_timeouts_total counter",
        "process_resident_memory_bytes ",
    ] {
        assert!(
            text.body.contains(family),
            "missing {family}:\n{}",
            text.body
        );
    }
    let om = request(
        p.addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        None,
    )
    .unwrap();
    assert!(
        om.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(
        om.body
            .contains("# TYPE gluten_node_rounds counter\ngluten_node_rounds_total ")
    );
    // q=0 means "not acceptable" (RFC 9110): classic text, not OpenMetrics.
    let refused = request(
        p.addr,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;q=0, text/plain;q=0.5",
        )],
        None,
    )
    .unwrap();
    assert_eq!(
        refused.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!refused.body.contains("# EOF"));

    assert!(
        have("promtool"),
        "promtool is needed (Debian package `prometheus`; .ci/run installs it)"
    );
    let out = promtool_check_metrics(&text.body);
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn promtool_check_metrics(body: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Extracts the value of the one sample whose line starts with `prefix`.
fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_hung_read_times_out_without_blocking_probes_or_scrapes_and_is_not_restarted() {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    let meminfo = root.path().join("proc/meminfo");
    std::fs::remove_file(&meminfo).unwrap();
    nix::unistd::mkfifo(&meminfo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let p = agent(
        root.path(),
        &[
            "--set",
            "memory.timeout_seconds=0.3",
            "--set",
            "hugepages.timeout_seconds=0.3",
        ],
    );
    wait_ready(&p);

    // Probes and scrapes answer within milliseconds while the memory check hangs in open(2).
    for path in ["/livez", "/readyz", "/metrics", "/health", "/health/memory"] {
        let t0 = Instant::now();
        let r = get(p.addr, path).unwrap();
        let took = t0.elapsed();
        assert!(r.status == 200 || r.status == 503, "{path}: {}", r.status);
        assert!(took < Duration::from_millis(250), "{path} took {took:?}");
    }
    let m = get(p.addr, "/health/memory").unwrap().json();
    assert_eq!(m["status"], "unknown");
    let first = m["summary"].as_str().unwrap().to_string();
    assert!(
        first.contains("timed out after 0.3s") || first.contains("still running since"),
        "{first}"
    );

    // Later rounds do not start it again while it is stuck: runs stay at 1, skips grow, and the
    // agent's thread count stays flat.
    let metrics = |p: &Proc| get(p.addr, "/metrics").unwrap().body;
    let runs = |b: &str| sample(b, "gluten_node_check_runs_total{check=\"memory\"}").unwrap();
    let skipped = |b: &str| sample(b, "gluten_node_check_skipped_total{check=\"memory\"}").unwrap();
    let threads = |b: &str| sample(b, "process_threads ").unwrap();
    // Check threads of a round come and go: the fewest threads seen over a few scrapes is the
    // steady count.
    let min_threads = |p: &Proc| {
        (0..5)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(30));
                threads(&metrics(p))
            })
            .fold(f64::MAX, f64::min)
    };
    let before = metrics(&p);
    let threads_before = min_threads(&p);
    std::thread::sleep(Duration::from_millis(1500));
    let after = metrics(&p);
    let threads_after = min_threads(&p);
    assert_eq!(runs(&before), 1.0, "{before}");
    assert_eq!(runs(&after), 1.0, "{after}");
    assert!(skipped(&after) >= skipped(&before) + 3.0, "{after}");
    assert!(
        threads_after <= threads_before,
        "threads grew: {threads_before} -> {threads_after}"
    );
    assert_eq!(
        sample(&after, "gluten_node_check_stuck{check=\"memory\"}"),
        Some(1.0)
    );
    let m = get(p.addr, "/health/memory").unwrap().json();
    assert!(
        m["summary"]
            .as_str()
            .unwrap()
            .starts_with("still running since"),
        "{m}"
    );
    // Checks that do not read /proc/meminfo still report (hugepages reads it too, and is stuck
    // the same way).
    let h = get(p.addr, "/health").unwrap().json();
    let status_of = |name: &str| {
        h["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of("hugepages"), "unknown", "{h}");
    for name in ["velox_library", "numa", "scratch"] {
        assert_ne!(status_of(name), "unknown", "{name}: {h}");
    }
}

#[test]
fn a_malformed_proc_file_is_unknown_naming_the_file_and_reason() {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    std::fs::write(root.path().join("proc/meminfo"), "MemTotal: lots kB\n").unwrap();
    let c = run_check(root.path(), "memory", "");
    assert_eq!(c.status, proto::Status::Unknown);
    assert!(
        c.summary
            .contains(&format!("{}/proc/meminfo", root.path().display())),
        "{}",
        c.summary
    );
    assert!(c.summary.contains("line 1"), "{}", c.summary);
}

#[test]
fn sigterm_stops_the_agent_within_a_second() {
    let mut p = agent(&upstream("procfs-upstream"), &[]);
    wait_ready(&p);
    let took = p
        .signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(3))
        .expect("agent did not exit after SIGTERM");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(p.child.try_wait().unwrap().unwrap().code(), Some(0));
}

#[test]
fn livez_and_readyz_do_not_depend_on_node_health() {
    // A tree on which checks fail or cannot run at all: probes stay 200.
    let root = tempfile::tempdir().unwrap();
    let p = agent(root.path(), &[]);
    wait_ready(&p);
    assert_eq!(get(p.addr, "/livez").unwrap().status, 200);
    assert_eq!(get(p.addr, "/readyz").unwrap().status, 200);
    let h = get(p.addr, "/health").unwrap().json();
    assert_ne!(
        h["status"], "ok",
        "an empty root cannot be a healthy node: {h}"
    );
}

#[test]
fn check_config_validates_only() {
    let ok = std::process::Command::new(agent_bin())
        .args(["run", "--check-config"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = std::process::Command::new(agent_bin())
        .args(["run", "--check-config", "--interval-seconds", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("interval_seconds"));
}
