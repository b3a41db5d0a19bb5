//! The aggregator's read API and its hardening, against a real aggregator on 127.0.0.1: paging,
//! filters and ETags of `/api/v1/nodes`; the read token; bounded reports and `/metrics`, and
//! `/livez` answering while fleet views are computed; the embedded store on a real tmpfs that
//! fills up and frees again.

use super::fleet::{body, report};
use gluten_node_tests::*;
use proto::Status;
use proto::fleet::NodeList;
use std::process::Command;
use std::time::{Duration, Instant};

fn list(agg: &Aggregator, query: &str) -> NodeList {
    let r = get(agg.addr, &format!("/api/v1/nodes?{query}")).unwrap();
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn embedded(dir: &tempfile::TempDir, extra: &[&str]) -> Aggregator {
    let data = dir.path().join("data");
    let mut args = vec!["--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    Aggregator::start(loopback(), &args, dir.path())
}

#[test]
fn nodes_page_with_a_cursor_filter_and_answer_304_when_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let agg = embedded(&dir, &[]);
    for n in 0..30 {
        let numa = if n % 3 == 0 { Status::Fail } else { Status::Ok };
        let rack = if n < 20 { "rack-a" } else { "rack-b" };
        let r = report(&format!("{rack}-{n:02}"), &[("numa", numa)], "b1");
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
    let mut names = Vec::new();
    let mut query = "limit=7".to_string();
    let mut pages = 0;
    loop {
        let page = list(&agg, &query);
        pages += 1;
        assert!(page.nodes.len() <= 7);
        names.extend(page.nodes.into_iter().map(|n| n.name));
        match page.next {
            Some(c) => query = format!("limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((names.len(), sorted), (30, names.clone()));
    assert_eq!(list(&agg, "").nodes.len(), 30, "default limit 500");

    let fail = list(&agg, "status=fail");
    assert_eq!(fail.nodes.len(), 10);
    assert!(fail.nodes.iter().all(|n| n.status == Status::Fail));
    assert_eq!(list(&agg, "check=numa&prefix=rack-b").nodes.len(), 3);
    assert_eq!(list(&agg, "prefix=rack-b&limit=5000").nodes.len(), 10);
    assert_eq!(list(&agg, "stale=true").nodes.len(), 0);
    for bad in [
        "limit=5001",
        "limit=0",
        "cursor=xyz",
        "status=sick",
        "bogus=1",
    ] {
        let r = get(agg.addr, &format!("/api/v1/nodes?{bad}")).unwrap();
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    for path in ["/api/v1/nodes?status=fail", "/api/v1/fleet"] {
        let first = get(agg.addr, path).unwrap();
        let tag = first.header("etag").expect("an ETag").to_string();
        let again = request(agg.addr, "GET", path, &[("If-None-Match", &tag)], None).unwrap();
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        // A change the answer shows gives a new tag.
        let r = report("rack-a-03", &[("numa", Status::Warn)], "b2");
        assert_eq!(agg.post(&body(&r), None).status, 204);
        let after = request(agg.addr, "GET", path, &[("If-None-Match", &tag)], None).unwrap();
        assert_eq!(after.status, 200, "{path}");
        assert_ne!(after.header("etag"), Some(tag.as_str()));
        let r = report("rack-a-03", &[("numa", Status::Fail)], "b1");
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
}

#[test]
fn a_read_token_guards_the_api_and_metrics_but_not_the_page_shell_or_probes() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, wt) = (dir.path().join("read"), dir.path().join("write"));
    std::fs::write(&rt, "reader-secret\n").unwrap();
    std::fs::write(&wt, "writer-secret\n").unwrap();
    let agg = embedded(
        &dir,
        &[
            "--read-token-file",
            rt.to_str().unwrap(),
            "--auth-token-file",
            wt.to_str().unwrap(),
        ],
    );
    let r = report("n1", &[("numa", Status::Ok)], "b1");
    assert_eq!(agg.post(&body(&r), Some("writer-secret")).status, 204);
    assert_eq!(
        agg.post(&body(&r), Some("reader-secret")).status,
        401,
        "reading is not writing"
    );
    for path in [
        "/api/v1/nodes",
        "/api/v1/nodes/n1",
        "/api/v1/fleet",
        "/api/v1/fleet/history",
        "/metrics",
    ] {
        let none = get(agg.addr, path).unwrap();
        assert_eq!(none.status, 401, "{path}");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        let wrong = request(
            agg.addr,
            "GET",
            path,
            &[("Authorization", "Bearer nope")],
            None,
        )
        .unwrap();
        assert_eq!(wrong.status, 401, "{path}");
        for token in ["Bearer reader-secret", "bearer reader-secret"] {
            let ok = request(agg.addr, "GET", path, &[("Authorization", token)], None).unwrap();
            assert_eq!(ok.status, 200, "{path} with {token}: {}", ok.body);
        }
        // Push credentials never read the fleet.
        let writer = request(
            agg.addr,
            "GET",
            path,
            &[("Authorization", "Bearer writer-secret")],
            None,
        )
        .unwrap();
        assert_eq!(writer.status, 401, "{path}: writing is not reading");
    }
    for path in ["/", "/livez", "/readyz"] {
        assert_eq!(get(agg.addr, path).unwrap().status, 200, "{path}");
    }
    let shell = get(agg.addr, "/").unwrap().body;
    assert!(!shell.contains("n1"), "the page shell holds no fleet data");
    assert!(
        shell.contains("sessionStorage"),
        "the page keeps the token for the session"
    );
}

#[test]
fn reports_are_bounded_metrics_stay_small_and_livez_answers_under_fleet_load() {
    let dir = tempfile::tempdir().unwrap();
    let agg = embedded(&dir, &[]);
    // The report of issue 12: 45,000 inventory keys. Refused, naming the limit.
    let mut big = report("wide", &[("numa", Status::Ok)], "b1");
    for i in 0..45_000 {
        big.node.inventory.insert(format!("k{i}"), "v".into());
    }
    let r = agg.post(&body(&big), None);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("MAX_INVENTORY_KEYS"), "{}", r.body);
    // Many nodes each inventing 100 keys and a new check (within the per-report limits).
    for n in 0..400 {
        let check = format!("check_{n}");
        let mut r = report(&format!("n{n:03}"), &[(check.as_str(), Status::Fail)], "b1");
        for k in 0..100 {
            r.node
                .inventory
                .insert(format!("n{n}.key{k}"), format!("v{k}"));
        }
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
    let t = Instant::now();
    let fleet = get(agg.addr, "/api/v1/fleet").unwrap();
    assert_eq!(fleet.status, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let m = get(agg.addr, "/metrics").unwrap().body;
    let series = m
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert!(series < 5000, "{series} series");

    // Fleet views keep both cores busy; /livez still answers at once.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = get(agg.addr, "/api/v1/fleet");
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            assert_eq!(get(agg.addr, "/livez").unwrap().status, 200);
            worst = worst.max(t.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(worst < Duration::from_millis(500), "/livez took {worst:?}");
    });
}

/// A tmpfs of `size` mounted on a fresh dir, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn the_embedded_store_recovers_when_a_full_disk_frees_up() {
    require_root();
    let logs = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount("24m");
    let data = fs.0.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        logs.path(),
    );
    let mut acked = Vec::new();
    for n in 0..20 {
        let name = format!("before-{n}");
        assert_eq!(
            agg.post(&body(&report(&name, &[("numa", Status::Ok)], "b1")), None)
                .status,
            204
        );
        acked.push(name);
    }
    // Fill the disk.
    let filler = fs.0.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .output();
    let mut n = 0;
    let refused = eventually(Duration::from_secs(30), || {
        n += 1;
        let name = format!("during-{n}");
        let mut r = report(&name, &[("numa", Status::Ok)], "b1");
        r.node.inventory.insert("pad".into(), "x".repeat(4000));
        let resp = agg.post(&body(&r), None);
        match resp.status {
            204 => {
                acked.push(name);
                None
            }
            503 => Some(()),
            s => panic!("{s}: {}", resp.body),
        }
    });
    assert!(refused.is_some(), "writes never failed on a full disk");
    assert_eq!(
        get(agg.addr, "/readyz").unwrap().status,
        503,
        "not ready while writes fail"
    );
    assert_eq!(get(agg.addr, "/livez").unwrap().status, 200);

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let back = eventually(Duration::from_secs(30), || {
        let r = report("after", &[("numa", Status::Warn)], "b1");
        (agg.post(&body(&r), None).status == 204).then_some(())
    });
    assert!(
        back.is_some(),
        "writes still fail 30 s after space returned: {}",
        agg.log()
    );
    assert!(freed.elapsed() < Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(5), || (get(agg.addr, "/readyz")
            .unwrap()
            .status
            == 200)
            .then_some(()))
        .is_some()
    );

    // Nothing acknowledged is lost, also across a restart.
    drop(agg);
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        logs.path(),
    );
    let names = agg.node_names();
    for a in acked.iter().chain(std::iter::once(&"after".to_string())) {
        assert!(names.contains(a), "{a} lost: {names:?}");
    }
}

#[test]
fn the_page_draws_the_status_chart_and_pages_in_a_real_browser() {
    assert!(
        have("chromium"),
        "chromium is needed (Debian package `chromium`)"
    );
    let dir = tempfile::tempdir().unwrap();
    let agg = embedded(&dir, &[]);
    for n in 0..130 {
        let numa = match n % 10 {
            0 => Status::Fail,
            1 | 2 => Status::Warn,
            _ => Status::Ok,
        };
        let r = report(&format!("chart-node-{n:03}"), &[("numa", numa)], "b1");
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
    let url = format!("http://{}/", agg.addr);
    let dom = super::fleet::chromium(&["--dump-dom"], &url);
    for needle in [
        "area ok",
        "area warn",
        "area fail",
        "Fleet status, last 24 hours",
        "id=\"search\"",
        "page 1, 100 nodes",
    ] {
        assert!(
            dom.contains(needle),
            "rendered DOM lacks {needle:?}:\n{dom}"
        );
    }
    assert!(
        !dom.contains("disabled=\"\" id=\"next\"") && dom.contains("id=\"next\""),
        "a next page"
    );
    let png = repo_root().join("target/fleet-page-chart.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    super::fleet::chromium(&[&format!("--screenshot={}", png.display())], &url);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}
