//! The fleet aggregator and the agents' push, as real processes on 127.0.0.1: three agents push,
//! one dies and turns stale, the aggregator restarts (same data dir and port) and still lists all
//! three while the live agents recover on their own without a retry storm; bad reports get their
//! codes and change nothing; two replicas on one PostgreSQL agree; the web page renders in a real
//! headless chromium.

use gluten_node_tests::*;
use proto::fleet::FleetView;
use proto::{CheckResult, NodeInfo, NodeReport, SCHEMA_VERSION, Status};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// A report as an agent would send it.
pub(crate) fn report(name: &str, checks: &[(&str, Status)], build_id: &str) -> NodeReport {
    NodeReport {
        schema_version: SCHEMA_VERSION,
        node: NodeInfo {
            name: name.into(),
            agent_version: "test".into(),
            kernel_release: Some("6.1.0-18-amd64".into()),
            arch: Some("x86_64".into()),
            boot_id: None,
            inventory: [
                ("velox_library.build_id".to_string(), build_id.to_string()),
                ("hugepages.thp_enabled".to_string(), "madvise".to_string()),
            ]
            .into_iter()
            .collect(),
        },
        status: Status::worst(checks.iter().map(|c| c.1)),
        generated_at: "2026-11-23T10:15:00.250Z".into(),
        checks: checks
            .iter()
            .map(|(n, s)| CheckResult {
                name: n.to_string(),
                status: *s,
                summary: format!("{n} is {s}"),
                duration_seconds: 0.01,
                checked_at: "2026-11-23T10:15:00.240Z".into(),
                findings: vec![],
                facts: serde_json::Value::Null,
                observed_status: None,
            })
            .collect(),
    }
}

pub(crate) fn body(r: &NodeReport) -> Vec<u8> {
    serde_json::to_vec(r).unwrap()
}

/// Scrapes one sample value from a Prometheus text body.
pub(crate) fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{metrics}"))
}

fn agent_metric(agent: &Proc, name: &str) -> f64 {
    sample(&get(agent.addr, "/metrics").unwrap().body, name)
}

pub(crate) fn start_agent(name: &str, aggregator: SocketAddr) -> Proc {
    let root = upstream("node-exporter-upstream");
    let url = format!("http://{aggregator}");
    Proc::start(
        &[
            "run",
            "--host-root",
            root.to_str().unwrap(),
            "--interval-seconds",
            "0.5",
            "--node-name",
            name,
            "--push-url",
            &url,
            "--set",
            "push.max_backoff_seconds=2",
            "--set",
            "push.timeout_seconds=1",
        ],
        "/readyz",
    )
}

#[test]
fn three_agents_push_one_dies_aggregator_restarts_agents_recover_without_a_storm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = loopback();
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--stale-after-seconds",
        "2",
    ];
    let mut agg = Aggregator::start(addr, &args, dir.path());
    let mut agents: Vec<Proc> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| start_agent(n, addr))
        .collect();

    let listed = eventually(Duration::from_secs(20), || {
        let l = agg.nodes();
        (l.nodes.len() == 3 && l.nodes.iter().all(|n| !n.stale)).then_some(l)
    })
    .unwrap_or_else(|| panic!("three fresh nodes expected: {:?}", agg.nodes()));
    let names: Vec<&str> = listed.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b", "node-c"]);
    let detail = agg.node("node-a");
    assert_eq!(detail.report.node.name, "node-a");
    assert!(
        !detail.transitions.is_empty() && detail.transitions.iter().all(|t| t.from.is_none()),
        "first report records each check's first status: {:?}",
        detail.transitions
    );
    assert!(
        agent_metric(
            &agents[0],
            "gluten_node_push_last_success_timestamp_seconds"
        ) > 0.0,
        "push health shows in the agent's metrics"
    );

    // node-c dies: stale after 2 s, the others stay fresh.
    agents.pop();
    let stale = eventually(Duration::from_secs(10), || {
        let l = agg.nodes();
        let c = l.nodes.iter().find(|n| n.name == "node-c")?;
        c.stale.then_some(l)
    })
    .expect("node-c turns stale");
    assert!(
        stale.nodes.iter().filter(|n| n.stale).count() == 1,
        "{stale:?}"
    );
    assert_eq!(agg.fleet().stale, 1);

    // The aggregator goes away for a while; the agents keep serving and back off.
    let before: Vec<f64> = agents
        .iter()
        .map(|a| agent_metric(a, "gluten_node_push_failures_total"))
        .collect();
    agg.stop();
    let outage = Duration::from_secs(5);
    let t0 = Instant::now();
    std::thread::sleep(outage);
    for a in &agents {
        assert_eq!(
            get(a.addr, "/readyz").unwrap().status,
            200,
            "agent keeps serving"
        );
    }
    let failures: Vec<f64> = agents
        .iter()
        .zip(&before)
        .map(|(a, b)| agent_metric(a, "gluten_node_push_failures_total") - b)
        .collect();
    // One try per 0.5 s round would be 10; backoff (0.5-1 s, then 1-2 s) allows at most 7.
    for f in &failures {
        assert!(
            (1.0..=7.0).contains(f),
            "failures during a {outage:?} outage: {failures:?} (no storm expected)"
        );
    }

    // Back on the same port and data dir: all three listed at once, transitions kept.
    let agg = Aggregator::start(addr, &args, dir.path());
    let after = agg.nodes();
    assert_eq!(after.nodes.len(), 3, "{after:?}");
    assert_eq!(agg.node("node-a").transitions, detail.transitions);
    assert!(
        after
            .nodes
            .iter()
            .find(|n| n.name == "node-c")
            .unwrap()
            .stale
    );
    // The live agents recover by themselves (backoff is capped at 2 s).
    let recovered = eventually(Duration::from_secs(10), || {
        let l = agg.nodes();
        let fresh: Vec<&str> = l
            .nodes
            .iter()
            .filter(|n| !n.stale)
            .map(|n| n.name.as_str())
            .collect();
        (fresh == ["node-a", "node-b"]).then_some(())
    });
    assert!(
        recovered.is_some(),
        "agents did not recover {:?} after the outage: {:?}",
        t0.elapsed(),
        agg.nodes()
    );
}

#[test]
fn bad_reports_get_their_codes_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let data = dir.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--auth-token-file",
            token_file.to_str().unwrap(),
            "--max-report-bytes",
            "4096",
        ],
        dir.path(),
    );
    let good = report("w1", &[("numa", Status::Ok)], "b1");
    assert_eq!(agg.post(&body(&good), Some("s3cret")).status, 204);
    let nodes_before = get(agg.addr, "/api/v1/nodes").unwrap().body;
    let detail_before = get(agg.addr, "/api/v1/nodes/w1").unwrap().body;

    let failing = report("w1", &[("numa", Status::Fail)], "b2");
    let mut wrong_schema = serde_json::to_value(&failing).unwrap();
    wrong_schema["schema_version"] = 99.into();
    let mut newer = wrong_schema.clone();
    newer["status"] = "some-future-status".into();
    let mut bad_name = serde_json::to_value(&failing).unwrap();
    bad_name["node"]["name"] = "../etc/passwd".into();
    let mut oversized = failing.clone();
    oversized.checks[0].summary = "x".repeat(5000);
    // (what, body, token, expected code, what the error says)
    type Case<'a> = (&'a str, Vec<u8>, Option<&'a str>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            b"{\"schema_version\": 1,".to_vec(),
            Some("s3cret"),
            400,
            "malformed",
        ),
        (
            "not a report",
            b"{\"hello\": 1}".to_vec(),
            Some("s3cret"),
            400,
            "malformed",
        ),
        (
            "oversized",
            body(&oversized),
            Some("s3cret"),
            413,
            "max_report_bytes",
        ),
        ("no token", body(&failing), None, 401, "bearer token"),
        (
            "wrong token",
            body(&failing),
            Some("guess"),
            401,
            "bearer token",
        ),
        (
            "wrong schema",
            wrong_schema.to_string().into_bytes(),
            Some("s3cret"),
            422,
            "schema_version 99",
        ),
        (
            "newer schema",
            newer.to_string().into_bytes(),
            Some("s3cret"),
            422,
            "schema_version 99",
        ),
        (
            "bad node name",
            bad_name.to_string().into_bytes(),
            Some("s3cret"),
            422,
            "node.name",
        ),
    ];
    for (what, b, token, code, says) in cases {
        let r = agg.post(&b, token);
        assert_eq!(r.status, code, "{what}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        let e: proto::ApiError = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{what}: error body not an ApiError ({e}): {}", r.body));
        assert!(e.error.contains(says), "{what}: {:?}", e.error);
    }
    assert_eq!(get(agg.addr, "/api/v1/nodes").unwrap().body, nodes_before);
    assert_eq!(
        get(agg.addr, "/api/v1/nodes/w1").unwrap().body,
        detail_before
    );
    let m = get(agg.addr, "/metrics").unwrap().body;
    assert_eq!(sample(&m, "gluten_fleet_reports_accepted_total"), 1.0);
    assert_eq!(
        sample(
            &m,
            "gluten_fleet_reports_rejected_total{reason=\"unauthorized\"}"
        ),
        2.0
    );
}

#[test]
fn fleet_view_ranks_failing_checks_and_names_drift_outliers_and_metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    for (name, numa, build) in [
        ("w1", Status::Fail, "b1"),
        ("w2", Status::Fail, "b1"),
        ("w3", Status::Ok, "b1"),
        ("w4", Status::Ok, "b2"),
    ] {
        let r = report(name, &[("numa", numa), ("memory", Status::Warn)], build);
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
    let v = agg.fleet();
    assert_eq!(v.nodes_total, 4);
    assert_eq!(v.by_status[&Status::Fail], 2);
    assert_eq!(v.by_status[&Status::Warn], 2);
    assert_eq!(v.failing_checks[0].check, "numa");
    assert_eq!(v.failing_checks[0].node_names, ["w1", "w2"]);
    let d = v
        .drift
        .iter()
        .find(|d| d.key == "velox_library.build_id")
        .unwrap();
    assert!(d.drifted);
    assert_eq!((d.groups[0].value.as_str(), d.groups[0].nodes), ("b1", 3));
    assert_eq!(d.groups[1].node_names, ["w4"]);
    assert!(
        v.drift
            .iter()
            .any(|d| d.key == "kernel_release" && !d.drifted)
    );

    // A status change is a transition, from what to what.
    let r = report(
        "w1",
        &[("numa", Status::Ok), ("memory", Status::Warn)],
        "b1",
    );
    assert_eq!(agg.post(&body(&r), None).status, 204);
    let t = agg.node("w1").transitions;
    let last = t.last().unwrap();
    assert_eq!(
        (last.check.as_str(), last.from, last.to),
        ("numa", Some(Status::Fail), Some(Status::Ok))
    );

    let metrics = get(agg.addr, "/metrics").unwrap().body;
    assert!(
        metrics.contains("gluten_fleet_check_failing_nodes{check=\"numa\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("gluten_fleet_drift_groups{key=\"velox_library.build_id\"} 2\n"));
    assert!(
        have("promtool"),
        "promtool is needed (Debian package `prometheus`)"
    );
    let path = dir.path().join("metrics.txt");
    std::fs::write(&path, &metrics).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", path.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_replicas_on_postgresql_agree() {
    let pg = PgCluster::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--database-url",
        url.as_str(),
        "--stale-after-seconds",
        "30",
    ];
    let a = Aggregator::start(loopback(), &args, dir.path());
    let b = Aggregator::start(loopback(), &args, dir.path());
    assert_eq!(
        a.post(&body(&report("n1", &[("numa", Status::Ok)], "b1")), None)
            .status,
        204
    );
    assert_eq!(
        a.post(&body(&report("n2", &[("numa", Status::Ok)], "b1")), None)
            .status,
        204
    );
    assert_eq!(
        b.post(&body(&report("n3", &[("numa", Status::Warn)], "b2")), None)
            .status,
        204
    );
    // n1 changes through the other replica: the transition is computed from the shared row.
    assert_eq!(
        b.post(&body(&report("n1", &[("numa", Status::Fail)], "b1")), None)
            .status,
        204
    );

    let strip = |mut v: FleetView| {
        v.generated_at.clear();
        v
    };
    let agreed = eventually(Duration::from_secs(10), || {
        let (la, lb) = (a.nodes(), b.nodes());
        let same_nodes = la.nodes.len() == 3
            && la.nodes.iter().zip(&lb.nodes).all(|(x, y)| {
                (&x.name, x.status, &x.failing_checks) == (&y.name, y.status, &y.failing_checks)
            });
        (same_nodes && strip(a.fleet()) == strip(b.fleet())).then_some(la)
    })
    .unwrap_or_else(|| panic!("replicas disagree:\n{:?}\n{:?}", a.nodes(), b.nodes()));
    assert_eq!(agreed.nodes[0].failing_checks, ["numa"]);
    let t = a.node("n1").transitions;
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!((t[1].from, t[1].to), (Some(Status::Ok), Some(Status::Fail)));
    assert_eq!(b.node("n1").transitions, t);

    // A replica restarted on the same database serves the same fleet at once.
    drop(a);
    let c = Aggregator::start(loopback(), &args, dir.path());
    assert_eq!(c.nodes().nodes.len(), 3);
}

/// Runs headless chromium (Debian's `chromium`) with `args` on `url`; returns stdout.
pub(crate) fn chromium(args: &[&str], url: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", home.path().display()))
        .args(["--window-size=1280,900", "--virtual-time-budget=5000"])
        .args(args)
        .arg(url)
        .env("HOME", home.path())
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_web_page_renders_the_fleet_in_a_real_browser() {
    assert!(
        have("chromium"),
        "chromium is needed (Debian package `chromium`)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    for (name, numa, build) in [
        ("gpu-worker-01", Status::Ok, "3f2a9c0e"),
        ("gpu-worker-02", Status::Fail, "3f2a9c0e"),
        ("gpu-worker-03", Status::Warn, "77aa01bd"),
    ] {
        let r = report(name, &[("numa", numa), ("memory", Status::Ok)], build);
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
    let page = get(agg.addr, "/").unwrap();
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no external assets"
    );

    let url = format!("http://{}/", agg.addr);
    let dom = chromium(&["--dump-dom"], &url);
    for needle in [
        "gpu-worker-01",
        "gpu-worker-02",
        "gpu-worker-03",
        "pill fail",
        "pill warn",
        "pill ok",
    ] {
        assert!(
            dom.contains(needle),
            "rendered DOM lacks {needle:?}:\n{dom}"
        );
    }
    assert!(
        dom.contains("velox_library.build_id") && dom.contains("77aa01bd"),
        "drift shown"
    );

    // The screenshot is kept for CI artifacts: target/fleet-page.png.
    let png = repo_root().join("target/fleet-page.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    chromium(&[&format!("--screenshot={}", png.display())], &url);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}

#[test]
fn departed_nodes_are_garbage_collected_and_stay_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--stale-after-seconds",
        "1",
        "--gc-after-seconds",
        "2",
    ];
    let addr = loopback();
    let mut agg = Aggregator::start(addr, &args, dir.path());
    let ok = [("memory", Status::Ok)];
    for name in ["leaver", "stayer"] {
        assert_eq!(agg.post(&body(&report(name, &ok, "b1")), None).status, 204);
    }
    let names = |a: &Aggregator| {
        let mut n: Vec<String> = a.nodes().nodes.into_iter().map(|n| n.name).collect();
        n.sort();
        n
    };
    assert_eq!(names(&agg), ["leaver", "stayer"]);
    // "stayer" keeps reporting; "leaver" goes silent: stale after 1 s, forgotten after 2 s.
    let gone = eventually(Duration::from_secs(10), || {
        assert_eq!(
            agg.post(&body(&report("stayer", &ok, "b1")), None).status,
            204
        );
        std::thread::sleep(Duration::from_millis(200));
        (names(&agg) == ["stayer"]).then_some(())
    });
    assert!(
        gone.is_some(),
        "leaver was never forgotten: {:?}",
        agg.nodes()
    );
    assert_eq!(get(addr, "/api/v1/nodes/leaver").unwrap().status, 404);
    assert_eq!(agg.fleet().nodes_total, 1);
    // Forgotten in the store too, not only in memory.
    agg.stop();
    let agg = Aggregator::start(addr, &args, dir.path());
    assert_eq!(names(&agg), ["stayer"]);
}
