//! Fault injection on real processes: a scratch dir on a FUSE mount whose `statfs` never answers,
//! a soak measuring memory and fd slopes, aggregators that refuse, hang, fail, restart and answer
//! late, and SIGKILLs of the agent mid-push and of the aggregator mid-write.

use gluten_node_tests::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// `GET path`, asserting it answers (any status but a 5xx other than 503) within `within`.
fn prompt(addr: SocketAddr, path: &str, within: Duration) -> Response {
    let t0 = Instant::now();
    let r = get(addr, path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let took = t0.elapsed();
    assert!(
        took < within,
        "{path} took {took:?} (at most {within:?} allowed)"
    );
    assert!(r.status == 200 || r.status == 503, "{path}: {}", r.status);
    r
}

fn metrics(p: &Proc) -> String {
    get(p.addr, "/metrics").unwrap().body
}

/// The fewest threads seen over a few scrapes: check threads of a round come and go, so the
/// minimum is the steady count.
fn steady_threads(p: &Proc) -> f64 {
    (0..8)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(40));
            metric(&metrics(p), "process_threads ").expect("process_threads")
        })
        .fold(f64::MAX, f64::min)
}

fn scratch_dir(health: &serde_json::Value, path: &Path) -> serde_json::Value {
    health["facts"]["dirs"]
        .as_array()
        .unwrap_or_else(|| panic!("no dirs: {health}"))
        .iter()
        .find(|d| d["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("no dir {}: {health}", path.display()))
        .clone()
}

fn only_scratch() -> Vec<String> {
    checks::NAMES
        .iter()
        .filter(|n| **n != "scratch")
        .flat_map(|n| ["--set".to_string(), format!("{n}.enabled=false")])
        .collect()
}

#[test]
fn a_scratch_dir_on_a_fuse_mount_whose_statfs_hangs_is_unknown_while_everything_else_answers() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let healthy = tmp.path().join("healthy");
    let hung = tmp.path().join("hung");
    std::fs::create_dir_all(&healthy).unwrap();
    // Declared before the mount so that it is dropped after it: a SIGKILLed agent waits in the
    // kernel for its statfs until the connection is aborted (HungFuse's drop).
    let agent: Proc;
    let fuse = HungFuse::mount(&hung);
    let dirs = format!(
        "scratch.dirs=[{:?}, {:?}]",
        healthy.to_str().unwrap(),
        hung.to_str().unwrap()
    );
    let mut args: Vec<String> = [
        "run",
        "--host-root",
        "/",
        "--interval-seconds",
        "0.1",
        "--set",
        &dirs,
        "--set",
        "scratch.dir_timeout_seconds=0.3",
        "--set",
        "scratch.timeout_seconds=2",
        "--set",
        "scratch.min_free_bytes=0",
        // The healthy dir sits on this machine's disk: how full that is must not decide the
        // status (a nearly full disk made it `fail`, which outranks the `unknown` under test).
        "--set",
        "scratch.fail_free_ratio=0",
        "--set",
        "scratch.warn_free_ratio=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(only_scratch());
    agent = Proc::start(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "/livez",
    );

    // The first rounds: the hung dir times out on its own, the healthy one reports.
    let first = eventually(Duration::from_secs(20), || {
        let h = get(agent.addr, "/health/scratch").ok()?.json();
        (h["status"] == "unknown" && !scratch_dir(&h, &hung)["stuck_since"].is_null()).then_some(h)
    })
    .unwrap_or_else(|| {
        panic!(
            "the hung dir was never reported stuck: {}\n{}",
            get(agent.addr, "/health/scratch").unwrap().body,
            agent.stderr()
        )
    });
    let h = scratch_dir(&first, &hung);
    assert_eq!(h["total_bytes"], serde_json::Value::Null, "{h}");
    assert_eq!(h["fs_type"], "fuse", "{h}");
    let ok = scratch_dir(&first, &healthy);
    assert_eq!(ok["timed_out"], false, "{ok}");
    assert_eq!(ok["write_probe_ok"], true, "{ok}");
    assert!(ok["total_bytes"].as_u64().is_some(), "{ok}");
    assert!(
        first["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["status"] == "unknown"
                && f["message"].as_str().unwrap_or("").contains("hung")),
        "{first}"
    );
    assert_eq!(
        fuse.statfs_seen.load(std::sync::atomic::Ordering::Acquire),
        1
    );

    // 100 more rounds: every probe and scrape answers within milliseconds, the dir is never
    // probed again while it hangs, and the thread count stays flat.
    let threads_before = steady_threads(&agent);
    let rounds = |body: &str| metric(body, "gluten_node_rounds_total ").unwrap();
    let start_round = rounds(&metrics(&agent));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut worst = Duration::ZERO;
    loop {
        let t0 = Instant::now();
        for path in [
            "/livez",
            "/readyz",
            "/metrics",
            "/health",
            "/health/scratch",
        ] {
            let r = prompt(agent.addr, path, Duration::from_millis(250));
            if path == "/livez" || path == "/readyz" {
                assert_eq!(r.status, 200, "{path}");
            }
        }
        worst = worst.max(t0.elapsed());
        let m = metrics(&agent);
        assert_eq!(
            metric(
                &m,
                "gluten_node_check_status{check=\"scratch\",state=\"unknown\"}"
            ),
            Some(1.0)
        );
        // The per-dir deadline keeps the check itself within its own deadline.
        assert_eq!(
            metric(&m, "gluten_node_check_stuck{check=\"scratch\"}"),
            Some(0.0),
            "{m}"
        );
        assert_eq!(
            metric(&m, "gluten_node_check_timeouts_total{check=\"scratch\"}"),
            Some(0.0)
        );
        if rounds(&m) >= start_round + 100.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "100 rounds did not complete in 90 s: {m}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let threads_after = steady_threads(&agent);
    eprintln!(
        "hung fuse: 100 rounds; threads {threads_before} -> {threads_after}; five requests took at most {worst:?}"
    );
    assert!(
        threads_after <= threads_before + 1.0,
        "threads grew over 100 rounds: {threads_before} -> {threads_after}"
    );
    assert_eq!(
        fuse.statfs_seen.load(std::sync::atomic::Ordering::Acquire),
        1,
        "the stuck dir was probed again"
    );
    let h = get(agent.addr, "/health/scratch").unwrap().json();
    let ok = scratch_dir(&h, &healthy);
    assert_eq!(ok["write_probe_ok"], true, "{ok}");
    assert!(ok["stuck_since"].is_null(), "{ok}");

    // The server goes away (connection aborted, mount detached): the stuck thread gets its
    // error, and the dir is probed again on the next round, now the plain dir underneath.
    drop(fuse);
    let recovered = eventually(Duration::from_secs(20), || {
        let h = get(agent.addr, "/health/scratch").ok()?.json();
        let d = scratch_dir(&h, &hung);
        (d["stuck_since"].is_null() && d["write_probe_ok"] == true).then_some(d)
    });
    assert!(
        recovered.is_some(),
        "the dir was not probed again after the mount went away: {}",
        get(agent.addr, "/health/scratch").unwrap().body
    );
    // The baseline included the stuck dir's thread; now it has ended.
    let threads_end = steady_threads(&agent);
    eprintln!("hung fuse: threads after the mount went away: {threads_end}");
    assert!(
        threads_end < threads_before,
        "the stuck thread did not end: {threads_before} -> {threads_end}"
    );
    assert!(agent.stderr().lines().count() < 10_000);
}

/// Seconds of the soak (`GLUTEN_SOAK_SECONDS`, default 40) and seconds between rounds
/// (`GLUTEN_SOAK_INTERVAL_SECONDS`, default 0.2: time compressed, 200 rounds in CI; the 10-minute
/// run uses 1).
fn soak_params() -> (f64, f64) {
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{k}={v}: not a number"))
            })
            .unwrap_or(d)
    };
    (
        env("GLUTEN_SOAK_SECONDS", 40.0),
        env("GLUTEN_SOAK_INTERVAL_SECONDS", 0.2),
    )
}

/// Memory and file descriptors stay flat: the agent runs rounds on a fixture tree while
/// `/metrics`, `/health` and `/livez` are scraped every second; after a warm-up (a fifth of the
/// run, at least 20 s, at most half) open fds must not move, and the net RSS growth must stay
/// within 1 KiB/s plus three 128 KiB steps of glibc's heap top (`M_TOP_PAD`): the 10-minute run
/// shows such steps once every few minutes, up and down, while a leak of one report per round
/// (the `/health` body alone is several KiB) at 5 rounds/s grows tens of KiB/s.
#[test]
fn memory_and_fds_stay_flat_over_a_soak() {
    let (seconds, interval) = soak_params();
    let root = upstream("node-exporter-upstream");
    let interval_arg = interval.to_string();
    let p = Proc::start(
        &[
            "run",
            "--host-root",
            root.to_str().unwrap(),
            "--interval-seconds",
            &interval_arg,
        ],
        "/readyz",
    );
    let t0 = Instant::now();
    let mut rss = Vec::new();
    let mut fds = Vec::new();
    let mut next = t0;
    while t0.elapsed().as_secs_f64() < seconds {
        next += Duration::from_secs(1);
        let m = prompt(p.addr, "/metrics", Duration::from_secs(1)).body;
        prompt(p.addr, "/health", Duration::from_secs(1));
        prompt(p.addr, "/livez", Duration::from_secs(1));
        let t = t0.elapsed().as_secs_f64();
        rss.push((t, metric(&m, "process_resident_memory_bytes ").unwrap()));
        fds.push((t, metric(&m, "process_open_fds ").unwrap()));
        if rss.len() % 30 == 0 {
            eprintln!(
                "soak: t={t:.0} s rss={} fds={}",
                rss.last().unwrap().1,
                fds.last().unwrap().1
            );
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let rounds = metric(&metrics(&p), "gluten_node_rounds_total ").unwrap();
    let report_bytes = get(p.addr, "/health").unwrap().body.len();
    let warm = (seconds / 5.0).max(20.0).min(seconds / 2.0);
    let after = |v: &[(f64, f64)]| {
        v.iter()
            .copied()
            .filter(|x| x.0 >= warm)
            .collect::<Vec<_>>()
    };
    let (rss_w, fds_w) = (after(&rss), after(&fds));
    let rss_slope = slope(&rss_w).expect("enough samples");
    let fd_slope = slope(&fds_w).expect("enough samples");
    let (rss_min, rss_max) = rss_w
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x.1), b.max(x.1)));
    let (fd_min, fd_max) = fds_w
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x.1), b.max(x.1)));
    eprintln!(
        "soak: {seconds} s, {rounds} rounds of {interval} s, {} samples after a {warm} s warm-up; \
         RSS {:.1} -> {:.1} MiB (min {:.1}, max {:.1}), slope {:.1} B/s; \
         open fds {fd_min}..{fd_max}, slope {fd_slope:.4} fds/s; /health is {report_bytes} bytes",
        rss_w.len(),
        rss_w.first().unwrap().1 / 1048576.0,
        rss_w.last().unwrap().1 / 1048576.0,
        rss_min / 1048576.0,
        rss_max / 1048576.0,
        rss_slope,
    );
    assert!(
        rounds >= (seconds / interval) * 0.8,
        "only {rounds} rounds in {seconds} s"
    );
    assert!(fd_max - fd_min <= 2.0, "open fds moved: {fds_w:?}");
    assert!(fd_slope.abs() < 0.05, "open fds slope {fd_slope}/s");
    // Net growth, median of the last five samples against the first five: a least-squares slope
    // over a short window turns two of glibc's 128 KiB heap-top steps into a "leak" (seen on a
    // loaded 2-core machine at 17 KB/s over 19 s, while a 150 s run went 23.5 -> 23.7 MiB).
    // The bound is 1 KiB/s plus three such steps; a leak of one report per round (the /health
    // body alone is ~10 KiB, 5 rounds/s) grows ~1 MiB over the same window.
    let median5 = |v: &[(f64, f64)]| {
        let mut x: Vec<f64> = v.iter().map(|p| p.1).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let window = rss_w.last().unwrap().0 - rss_w.first().unwrap().0;
    let growth = median5(&rss_w[rss_w.len() - 5..]) - median5(&rss_w[..5]);
    let bound = 1024.0 * window + 3.0 * 131072.0;
    assert!(
        growth < bound,
        "RSS grew {growth:.0} B over {window:.0} s after warm-up (bound {bound:.0} B; slope \
         {rss_slope:.0} B/s): {rss_w:?}"
    );
    assert!(p.stderr().len() < 1 << 20);
}

// ---------------------------------------------------------------------------------------------
// The aggregator, unreachable, slow, failing, restarting: the agent's side.

fn pushing_agent(url: &str, extra: &[&str]) -> Proc {
    let root = upstream("node-exporter-upstream");
    let mut args = vec![
        "run",
        "--host-root",
        root.to_str().unwrap(),
        "--interval-seconds",
        "0.2",
        "--node-name",
        "fault-node",
        "--push-url",
        url,
        "--set",
        "push.timeout_seconds=1",
        "--set",
        "push.max_backoff_seconds=8",
    ];
    args.extend_from_slice(extra);
    Proc::start(&args, "/readyz")
}

fn push_metric(p: &Proc, name: &str) -> f64 {
    let m = metrics(p);
    metric(&m, &format!("{name} ")).unwrap_or_else(|| panic!("no {name} in\n{m}"))
}

/// Watches the agent for `d`: every 100 ms `/livez` and `/metrics` answer within 250 ms, and the
/// process is still running.
fn keeps_serving(p: &mut Proc, d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        assert!(
            p.child.try_wait().unwrap().is_none(),
            "the agent exited: {}",
            p.stderr()
        );
        assert_eq!(
            prompt(p.addr, "/livez", Duration::from_millis(250)).status,
            200
        );
        prompt(p.addr, "/metrics", Duration::from_millis(250));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Gaps between consecutive requests, in seconds.
fn gaps(hits: &[(Instant, String)]) -> Vec<f64> {
    hits.windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64())
        .collect()
}

/// The gaps of a backoff: they grow (the last is at least twice the first) and are not a fixed
/// progression (jitter: the ratios of consecutive gaps are not all equal).
fn assert_backoff_with_jitter(g: &[f64]) {
    assert!(g.len() >= 3, "too few retries to judge a backoff: {g:?}");
    assert!(
        g[0] >= 0.2,
        "the first retry came after {:.3} s: {g:?}",
        g[0]
    );
    assert!(g[g.len() - 1] >= 2.0 * g[0], "the gaps do not grow: {g:?}");
    let ratios: Vec<f64> = g.windows(2).map(|w| w[1] / w[0]).collect();
    let spread = ratios.iter().cloned().fold(f64::MIN, f64::max)
        - ratios.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread > 0.02,
        "the gaps grow by a fixed ratio (no jitter): {g:?}"
    );
}

#[test]
fn an_unreachable_aggregator_never_stops_the_agent_serving() {
    // A port with nothing listening: every connection is refused at once.
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut p = pushing_agent(&url, &[]);
    keeps_serving(&mut p, Duration::from_secs(6));
    let attempts = push_metric(&p, "gluten_node_push_attempts_total");
    let failures = push_metric(&p, "gluten_node_push_failures_total");
    assert!(failures >= 2.0, "failures {failures}");
    assert_eq!(attempts, failures);
    // Backed off: not a retry per round (30 rounds in 6 s), a handful with 1, 2, 4 s steps.
    assert!(attempts <= 8.0, "{attempts} attempts in 6 s: no backoff");
    assert_eq!(
        push_metric(&p, "gluten_node_push_last_success_timestamp_seconds"),
        0.0
    );
}

#[test]
fn an_aggregator_that_accepts_and_never_answers_times_out_without_piling_up_connections() {
    let stub = StubAggregator::start(StubMode::Hang);
    let mut p = pushing_agent(&stub.url(), &[]);
    let fds_before = push_metric(&p, "process_open_fds");
    keeps_serving(&mut p, Duration::from_secs(8));
    let failures = push_metric(&p, "gluten_node_push_failures_total");
    assert!(
        failures >= 2.0,
        "each hung push should time out: {failures}"
    );
    assert!(
        stub.max_open_connections() <= 2,
        "{} connections open at once",
        stub.max_open_connections()
    );
    let fds_after = push_metric(&p, "process_open_fds");
    assert!(
        fds_after <= fds_before + 2.0,
        "fds {fds_before} -> {fds_after}"
    );
    let g = gaps(&stub.hits());
    // A hung attempt costs the 1 s timeout before its backoff: the gaps still grow.
    assert!(g.len() >= 2, "{g:?}");
    assert!(
        g.iter().all(|x| *x >= 1.0),
        "retried before timing out: {g:?}"
    );
}

#[test]
fn an_aggregator_answering_500_gets_jittered_backoff_then_the_agent_recovers() {
    let stub = StubAggregator::start(StubMode::Status(500));
    let mut p = pushing_agent(&stub.url(), &[]);
    keeps_serving(&mut p, Duration::from_secs(14));
    let failing = stub.hits();
    assert_backoff_with_jitter(&gaps(&failing));
    let failures = push_metric(&p, "gluten_node_push_failures_total");
    assert_eq!(failures as usize, failing.len());
    assert_eq!(
        push_metric(&p, "gluten_node_push_last_success_timestamp_seconds"),
        0.0
    );

    // The aggregator answers again (slowly, within the push timeout): the next retry lands
    // (at most one capped backoff later), then pushes go at the push interval again.
    stub.set_mode(StubMode::SlowOk(Duration::from_millis(300)));
    let t_ok = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let ok = eventually(Duration::from_secs(12), || {
        let ts = push_metric(&p, "gluten_node_push_last_success_timestamp_seconds");
        (ts >= t_ok - 1.0).then_some(ts)
    });
    assert!(
        ok.is_some(),
        "no successful push after the aggregator recovered"
    );
    let failures_at_recovery = push_metric(&p, "gluten_node_push_failures_total");
    keeps_serving(&mut p, Duration::from_secs(3));
    assert_eq!(
        push_metric(&p, "gluten_node_push_failures_total"),
        failures_at_recovery,
        "failures after recovery"
    );
    let after: Vec<_> = stub
        .hits()
        .into_iter()
        .skip(failing.len())
        .collect::<Vec<_>>();
    assert!(after.len() >= 2, "pushes did not resume: {after:?}");
    assert!(
        after
            .iter()
            .all(|h| h.1.starts_with("POST /api/v1/reports")),
        "{after:?}"
    );
}

#[test]
fn a_restarting_aggregator_is_retried_and_pushed_to_again() {
    let mut stub = StubAggregator::start(StubMode::Status(204));
    let mut p = pushing_agent(&stub.url(), &["--set", "push.interval_seconds=0.5"]);
    eventually(Duration::from_secs(10), || {
        (push_metric(&p, "gluten_node_push_last_success_timestamp_seconds") > 0.0).then_some(())
    })
    .expect("a first successful push");
    // Down for 5 s (connection refused), then back on the same port.
    stub.close();
    let down_at = stub.hits().len();
    let failures_before = push_metric(&p, "gluten_node_push_failures_total");
    keeps_serving(&mut p, Duration::from_secs(5));
    assert!(
        push_metric(&p, "gluten_node_push_failures_total") > failures_before,
        "no failure counted while the aggregator was down"
    );
    stub.reopen();
    let back = Instant::now();
    let recovered = eventually(Duration::from_secs(12), || {
        (stub.hits().len() > down_at).then(|| back.elapsed())
    });
    let took = recovered.expect("the agent never pushed to the restarted aggregator");
    // Within one capped backoff (8 s) of coming back.
    assert!(took < Duration::from_secs(9), "took {took:?}");
    keeps_serving(&mut p, Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------------
// SIGKILLs: the agent mid-push, the aggregator mid-write.

/// A small report of node `name`, as an agent sends it.
fn report_body(name: &str, seq: u64) -> Vec<u8> {
    let r = proto::NodeReport {
        schema_version: proto::SCHEMA_VERSION,
        node: proto::NodeInfo {
            name: name.into(),
            agent_version: format!("kill-test-{seq}"),
            ..Default::default()
        },
        status: proto::Status::Ok,
        generated_at: "2026-11-23T10:15:00.250Z".into(),
        checks: vec![proto::CheckResult {
            name: "scratch".into(),
            status: proto::Status::Ok,
            summary: "x".repeat(2000),
            duration_seconds: 0.01,
            checked_at: "2026-11-23T10:15:00.240Z".into(),
            findings: vec![],
            facts: serde_json::json!({ "seq": seq }),
            observed_status: None,
        }],
    };
    serde_json::to_vec(&r).unwrap()
}

#[test]
fn sigkill_of_the_aggregator_mid_write_never_corrupts_its_store_nor_loses_an_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = loopback();
    let mut acked: std::collections::BTreeSet<String> = Default::default();
    let mut seq = 0u64;
    for cycle in 0..5u64 {
        let mut agg = Aggregator::start(addr, &["--data-dir", data.to_str().unwrap()], dir.path());
        // Restarted clean: everything acknowledged before any earlier kill is still there.
        let listed: std::collections::BTreeSet<String> = agg.node_names().into_iter().collect();
        let lost: Vec<_> = acked.difference(&listed).collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: acknowledged reports lost after SIGKILL: {lost:?}\n{}",
            agg.log()
        );
        // Write load from four writers (a new node per POST, so every write is an insert), then
        // SIGKILL while they write.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let stop = stop.clone();
                let base = seq + w * 100_000;
                std::thread::spawn(move || {
                    let mut ok = Vec::new();
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) && i < 5000 {
                        let name = format!("kill-{cycle}-{w}-{i}");
                        let r = request(
                            addr,
                            "POST",
                            "/api/v1/reports",
                            &[("Content-Type", "application/json")],
                            Some(&report_body(&name, base + i)),
                        );
                        match r {
                            Ok(r) if r.status / 100 == 2 => ok.push(name),
                            Ok(r) => assert!(
                                r.status == 503,
                                "unexpected {} from the aggregator: {}",
                                r.status,
                                r.body
                            ),
                            Err(_) => break, // killed
                        }
                        i += 1;
                    }
                    ok
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 170 * cycle));
        agg.kill();
        stop.store(true, std::sync::atomic::Ordering::Release);
        for w in writers {
            acked.extend(w.join().unwrap());
        }
        seq += 1_000_000;
    }
    assert!(acked.len() >= 20, "too little write load: {}", acked.len());
    let agg = Aggregator::start(addr, &["--data-dir", data.to_str().unwrap()], dir.path());
    let listed: std::collections::BTreeSet<String> = agg.node_names().into_iter().collect();
    assert!(acked.is_subset(&listed), "{}", agg.log());
    for name in acked.iter().take(20) {
        let r = get(agg.addr, &format!("/api/v1/nodes/{name}")).unwrap();
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.json()["report"]["node"]["name"], name.as_str());
    }
}

#[test]
fn sigkill_of_the_agent_mid_push_leaves_the_aggregator_clean_and_the_restarted_agent_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = loopback();
    let agg = Aggregator::start(addr, &["--data-dir", data.to_str().unwrap()], dir.path());
    let url = format!("http://{addr}");
    for cycle in 0..5u64 {
        // Pushing every round (0.1 s): a kill at a random moment often lands mid-request.
        let mut p = pushing_agent(&url, &["--set", "push.interval_seconds=0.1"]);
        let t_start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        eventually(Duration::from_secs(10), || {
            (push_metric(&p, "gluten_node_push_last_success_timestamp_seconds") >= t_start - 1.0)
                .then_some(())
        })
        .unwrap_or_else(|| panic!("cycle {cycle}: the agent never pushed: {}", p.stderr()));
        std::thread::sleep(Duration::from_millis(50 + 37 * cycle));
        p.signal_and_wait(nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5))
            .expect("SIGKILL");
        // The aggregator keeps serving and its view of the node stays readable.
        assert_eq!(agg.node_names(), ["fault-node"], "{}", agg.log());
        let r = get(addr, "/api/v1/nodes/fault-node").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let _: proto::NodeReport = serde_json::from_value(r.json()["report"].clone())
            .unwrap_or_else(|e| panic!("stored report does not decode ({e}): {}", r.body));
    }
    assert_eq!(get(addr, "/readyz").unwrap().status, 200);
}
