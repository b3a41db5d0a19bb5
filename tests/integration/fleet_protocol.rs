//! The push protocol between real agents and a real aggregator on 127.0.0.1: a real agent sends
//! its full report once and heartbeats afterwards; a heartbeat with an unknown digest gets a
//! request for the full report; an old-style agent (full reports, no heartbeats) keeps working;
//! gzip in (bombs refused) and out; two replicas on one PostgreSQL agree on transitions when
//! both receive reports for the same node.

use super::fleet::{body, report, sample, start_agent};
use gluten_node_tests::*;
use proto::Status;
use proto::fleet::{Heartbeat, HeartbeatReply, PROTOCOL_HEADER, report_digest};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn heartbeat(agg: &Aggregator, node: &str, digest: &str) -> (u16, HeartbeatReply) {
    let hb = Heartbeat {
        protocol: 2,
        node: node.into(),
        digest: digest.into(),
        sent_at: "2026-11-23T10:15:00Z".into(),
    };
    let r = request(
        agg.addr,
        "POST",
        "/api/v1/heartbeats",
        &[("Content-Type", "application/json")],
        Some(&serde_json::to_vec(&hb).unwrap()),
    )
    .unwrap();
    let reply = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    (r.status, reply)
}

fn metrics(agg: &Aggregator) -> String {
    get(agg.addr, "/metrics").unwrap().body
}

#[test]
fn heartbeats_with_known_and_unknown_digests_and_an_old_style_agent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    let r = report("w1", &[("numa", Status::Ok)], "b1");
    // An old-style push: the full report, as protocol-1 agents send it every time.
    let resp = agg.post(&body(&r), None);
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header(PROTOCOL_HEADER),
        Some("2"),
        "the aggregator announces protocol 2"
    );
    let digest = report_digest(&r);

    let (status, reply) = heartbeat(&agg, "w1", &digest);
    assert_eq!((status, reply.full_report_required), (200, false));
    let (status, reply) = heartbeat(&agg, "w1", "v1-00000000000000000000000000000000");
    assert_eq!((status, reply.full_report_required), (200, true));
    assert!(reply.reason.unwrap().contains("digest unknown"));
    let (_, reply) = heartbeat(&agg, "never-seen", &digest);
    assert!(
        reply.full_report_required,
        "an unknown node sends its report"
    );

    // A changed report, pushed in full: its digest is the known one from then on.
    let r2 = report("w1", &[("numa", Status::Fail)], "b1");
    assert_eq!(agg.post(&body(&r2), None).status, 204);
    assert!(
        !heartbeat(&agg, "w1", &report_digest(&r2))
            .1
            .full_report_required
    );
    assert!(heartbeat(&agg, "w1", &digest).1.full_report_required);

    // Old-style agents keep working: every push a full report.
    for _ in 0..3 {
        assert_eq!(agg.post(&body(&r2), None).status, 204);
    }
    let m = metrics(&agg);
    assert_eq!(
        sample(&m, "gluten_fleet_reports_accepted_total"),
        5.0,
        "{m}"
    );
    assert_eq!(sample(&m, "gluten_fleet_heartbeats_accepted_total"), 2.0);
    assert_eq!(sample(&m, "gluten_fleet_full_reports_requested_total"), 3.0);

    // A heartbeat that is not one.
    let bad = request(
        agg.addr,
        "POST",
        "/api/v1/heartbeats",
        &[("Content-Type", "application/json")],
        Some(b"{\"node\": 1}"),
    )
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    let hb = serde_json::json!({"protocol": 2, "node": "..", "digest": "d", "sent_at": "t"});
    let bad = request(
        agg.addr,
        "POST",
        "/api/v1/heartbeats",
        &[("Content-Type", "application/json")],
        Some(hb.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(bad.status, 422, "{}", bad.body);
}

#[test]
fn a_real_agent_sends_its_report_once_then_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    let agent = start_agent("hb-node", agg.addr);
    // The agent pushes every 0.5 s (its round interval): after a few seconds, heartbeats.
    let m = eventually(Duration::from_secs(20), || {
        let m = metrics(&agg);
        (sample(&m, "gluten_fleet_heartbeats_accepted_total") >= 5.0).then_some(m)
    })
    .unwrap_or_else(|| panic!("no heartbeats: {}\n{}", metrics(&agg), agent.stderr()));
    // The fixture host's report does not change between rounds (its sentences may): one full
    // report, maybe a second if the first round differed, and heartbeats after that.
    let full = sample(&m, "gluten_fleet_reports_accepted_total");
    assert!((1.0..=2.0).contains(&full), "full reports: {full}\n{m}");
    assert_eq!(agg.node_names(), ["hb-node"]);
    let detail = agg.node("hb-node");
    assert_eq!(detail.report.node.name, "hb-node");
    assert!(!detail.summary.stale);
}

/// A request over a fresh connection returning the raw body bytes.
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&out[..split]).into_owned(),
        out[split + 4..].to_vec(),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_in_with_the_limit_after_decompression_and_gzip_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    let addr = agg.addr;
    let post = |b: &[u8]| {
        let head = format!(
            "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            b.len()
        );
        raw(addr, &head, b)
    };
    let r = report("gz-1", &[("numa", Status::Warn)], "b1");
    let (head, _) = post(&gzip(&body(&r)));
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    assert_eq!(agg.node("gz-1").report, r);

    // A gzip bomb: 64 MiB of zeros in ~64 KiB, over the 1 MiB limit once inflated.
    let bomb = gzip(&vec![b' '; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    let (head, b) = post(&bomb);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(String::from_utf8_lossy(&b).contains("after gzip decompression"));
    let (head, _) = post(b"not gzip at all");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // Out: a large enough answer is compressed when asked, and decodes to the plain one.
    for n in 0..40 {
        let r = report(&format!("gz-node-{n:02}"), &[("numa", Status::Ok)], "b1");
        assert_eq!(agg.post(&body(&r), None).status, 204);
    }
    let plain = get(addr, "/api/v1/nodes").unwrap();
    assert_eq!(plain.header("content-encoding"), None);
    let (head, gz) = raw(
        addr,
        "GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\r\n",
        b"",
    );
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    let mut out = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, plain.body);
    assert!(gz.len() * 3 < out.len(), "{} -> {}", out.len(), gz.len());
}

#[test]
fn two_replicas_on_postgresql_keep_one_transition_chain_for_a_node_both_receive() {
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
    // Sequential flips alternating between replicas, faster than they refresh (0.5 s): each
    // replica's memory is behind, so its conditional write conflicts and folds again.
    let statuses = [Status::Ok, Status::Fail];
    for i in 0..12 {
        let target = if i % 2 == 0 { &a } else { &b };
        let r = report("shared", &[("numa", statuses[(i / 2) % 2])], "b1");
        assert_eq!(target.post(&body(&r), None).status, 204);
    }
    // Then concurrent pushes for one node to both replicas.
    std::thread::scope(|s| {
        for (k, agg) in [&a, &b].into_iter().enumerate() {
            s.spawn(move || {
                for i in 0..20 {
                    let st = statuses[(i + k) % 2];
                    let r = report("contended", &[("numa", st)], "b1");
                    let resp = agg.post(&body(&r), None);
                    assert_eq!(resp.status, 204, "{}", resp.body);
                }
            });
        }
    });
    for name in ["shared", "contended"] {
        let t = eventually(Duration::from_secs(10), || {
            let (ta, tb) = (a.node(name).transitions, b.node(name).transitions);
            (ta == tb).then_some(ta)
        })
        .unwrap_or_else(|| panic!("replicas disagree on {name}"));
        assert_eq!(t[0].from, None, "{name}: {t:?}");
        for w in t.windows(2) {
            assert_eq!(w[1].from, w[0].to, "{name}: a broken chain: {t:?}");
            assert_ne!(w[1].from, w[1].to);
        }
        if name == "shared" {
            // ok ok fail fail ok ok ...: a transition at every second report.
            assert_eq!(t.len(), 6, "{t:?}");
        }
        let last = t.last().unwrap().to;
        assert_eq!(
            a.node(name).report.checks[0].status,
            last.unwrap(),
            "{name}: the stored report ends the chain"
        );
    }
    // Heartbeats through either replica find the digest the other one stored.
    let r = report("shared", &[("numa", Status::Fail)], "b1");
    assert_eq!(a.post(&body(&r), None).status, 204);
    let (_, reply) = heartbeat(&b, "shared", &report_digest(&r));
    assert!(!reply.full_report_required);
}

#[test]
fn a_heartbeat_moves_last_seen_durably_and_to_the_other_replica() {
    // Embedded: answered from memory, flushed within about a second, kept across a restart.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--data-dir", data.to_str().unwrap()];
    let agg = Aggregator::start(loopback(), &args, dir.path());
    let r = report("seen-1", &[("numa", Status::Ok)], "b1");
    assert_eq!(agg.post(&body(&r), None).status, 204);
    let before = agg.node("seen-1").summary.last_seen;
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        !heartbeat(&agg, "seen-1", &report_digest(&r))
            .1
            .full_report_required
    );
    let moved = agg.node("seen-1").summary.last_seen;
    assert!(moved > before, "{before} -> {moved}");
    std::thread::sleep(Duration::from_millis(1500));
    let addr = agg.addr;
    drop(agg);
    let agg = Aggregator::start(addr, &args, dir.path());
    assert_eq!(agg.node("seen-1").summary.last_seen, moved);

    // PostgreSQL: a heartbeat through one replica shows on the other.
    let pg = PgCluster::start();
    let url = pg.url();
    let args = ["--database-url", url.as_str()];
    let a = Aggregator::start(loopback(), &args, dir.path());
    let b = Aggregator::start(loopback(), &args, dir.path());
    assert_eq!(a.post(&body(&r), None).status, 204);
    let first = a.node("seen-1").summary.last_seen;
    eventually(Duration::from_secs(5), || {
        (b.node_names() == ["seen-1"]).then_some(())
    })
    .expect("b sees the node");
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        !heartbeat(&a, "seen-1", &report_digest(&r))
            .1
            .full_report_required
    );
    let later = eventually(Duration::from_secs(5), || {
        let s = b.node("seen-1").summary.last_seen;
        (s > first).then_some(s)
    });
    assert!(later.is_some(), "replica b never saw the heartbeat");
}
