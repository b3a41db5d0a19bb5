//! Tests of the fleet index: the incremental aggregates against a recount from scratch, the
//! fleet view's ranking and outliers, and paging with filters.

use super::*;
use crate::fleet::tests::report;
use crate::fleet::{Interner, KERNEL_RELEASE, Summary};

fn node(r: &proto::NodeReport, last_seen_ms: i64, i: &mut Interner) -> Node {
    Node::new(&r.node.name, &Summary::of(r), last_seen_ms, i)
}

/// The fleet view recomputed from the nodes alone (what the index must always equal).
fn recount(idx: &FleetIndex, now_ms: i64, stale_after_seconds: f64) -> FleetView {
    let mut fresh = FleetIndex::default();
    for n in idx.nodes() {
        fresh.insert(n.clone());
    }
    fresh.view(now_ms, stale_after_seconds)
}

#[test]
fn fleet_view_counts_ranks_and_finds_outliers() {
    let mut i = Interner::default();
    let mut idx = FleetIndex::default();
    for n in [
        node(
            &report(
                "a",
                &[("numa", Status::Fail), ("memory", Status::Fail)],
                &[("v.id", "x")],
            ),
            10_000,
            &mut i,
        ),
        node(
            &report("b", &[("numa", Status::Fail)], &[("v.id", "x")]),
            10_000,
            &mut i,
        ),
        node(
            &report("c", &[("numa", Status::Ok)], &[("v.id", "y")]),
            1_000,
            &mut i,
        ),
        node(&report("d", &[("numa", Status::Warn)], &[]), 10_000, &mut i),
    ] {
        idx.insert(n);
    }
    let v = idx.view(10_000, 2.0);
    assert_eq!(v.nodes_total, 4);
    assert_eq!(v.by_status[&Status::Fail], 2);
    assert_eq!(v.by_status[&Status::Unknown], 0);
    assert_eq!(v.stale, 1);
    assert_eq!(v.failing_checks[0].check, "numa");
    assert_eq!(v.failing_checks[0].nodes, 2);
    assert_eq!(v.failing_checks[1].check, "memory");
    let d = v.drift.iter().find(|d| d.key == "v.id").unwrap();
    assert!(d.drifted);
    assert_eq!(d.groups[0].value, "x");
    assert!(!d.groups[0].outlier && d.groups[0].node_names.is_empty());
    assert_eq!(d.groups[1].value, ABSENT);
    assert_eq!(d.groups[1].node_names, vec!["d"]);
    assert_eq!(d.groups[2].node_names, vec!["c"]);
    let k = v.drift.iter().find(|d| d.key == KERNEL_RELEASE).unwrap();
    assert!(!k.drifted);
}

#[test]
fn aggregates_follow_inserts_replacements_and_removals() {
    let mut i = Interner::default();
    let mut idx = FleetIndex::default();
    let statuses = [Status::Ok, Status::Warn, Status::Fail, Status::Unknown];
    // A deterministic pseudo-random walk over 60 names, 2,000 steps.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for step in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let name = format!("n{:02}", x % 60);
        if x.is_multiple_of(7) {
            idx.remove(&name);
        } else {
            let s1 = statuses[(x >> 8) as usize % 4];
            let s2 = statuses[(x >> 12) as usize % 4];
            let v = format!("v{}", (x >> 16) % 3);
            let mut inv = vec![("build", v.as_str())];
            if !x.is_multiple_of(5) {
                inv.push(("thp", "madvise"));
            }
            idx.insert(node(
                &report(&name, &[("numa", s1), ("memory", s2)], &inv),
                step,
                &mut i,
            ));
        }
        if step % 97 == 0 {
            assert_eq!(idx.view(1000, 0.5), recount(&idx, 1000, 0.5), "step {step}");
        }
    }
    assert_eq!(idx.view(1000, 0.5), recount(&idx, 1000, 0.5));
    for name in idx.nodes().map(|n| n.name.to_string()).collect::<Vec<_>>() {
        idx.remove(&name);
    }
    assert!(idx.failing.is_empty() && idx.dims.is_empty() && idx.by_status == [0; 4]);
}

#[test]
fn absent_outliers_are_named_and_capped() {
    let mut i = Interner::default();
    let mut idx = FleetIndex::default();
    for n in 0..200 {
        let inv: &[(&str, &str)] = if n < 120 { &[("k", "v")] } else { &[] };
        idx.insert(node(
            &report(&format!("n{n:03}"), &[("numa", Status::Ok)], inv),
            0,
            &mut i,
        ));
    }
    let v = idx.view(0, 10.0);
    let d = v.drift.iter().find(|d| d.key == "k").unwrap();
    assert_eq!(d.groups[1].value, ABSENT);
    assert_eq!(d.groups[1].nodes, 80);
    assert_eq!(d.groups[1].node_names.len(), MAX_NAMES);
    assert_eq!(d.groups[1].node_names[0], "n120");
    assert_eq!(d.groups[1].node_names_omitted, 80 - MAX_NAMES as u64);
}

#[test]
fn fleet_wide_keys_and_checks_are_capped() {
    let mut i = Interner::default();
    let mut idx = FleetIndex::default();
    for n in 0..MAX_FLEET_KEYS + 50 {
        let key = format!("k{n}");
        let check = format!("c{n}");
        idx.insert(node(
            &report(
                &format!("n{n}"),
                &[(check.as_str(), Status::Fail)],
                &[(key.as_str(), "v")],
            ),
            0,
            &mut i,
        ));
    }
    let v = idx.view(0, 10.0);
    assert!(v.drift.len() <= MAX_FLEET_KEYS, "{}", v.drift.len());
    assert!(v.failing_checks.len() <= MAX_FLEET_CHECKS);
}

#[test]
fn pages_follow_the_cursor_and_filters() {
    let mut i = Interner::default();
    let mut idx = FleetIndex::default();
    for n in 0..25 {
        let s = if n % 5 == 0 { Status::Fail } else { Status::Ok };
        let seen = if n % 2 == 0 { 0 } else { 100_000 };
        let name = if n < 20 {
            format!("rack1-{n:02}")
        } else {
            format!("rack2-{n:02}")
        };
        idx.insert(node(&report(&name, &[("numa", s)], &[]), seen, &mut i));
    }
    let q = |s: &str| NodeQuery::parse(Some(s)).unwrap();
    let (p1, next) = idx.page(&q("limit=10"), 100_000, 50_000);
    assert_eq!(p1.len(), 10);
    let (p2, next2) = idx.page(
        &q(&format!("limit=10&cursor={}", next.unwrap())),
        100_000,
        50_000,
    );
    assert_eq!(p2[0].name, "rack1-10");
    let (p3, next3) = idx.page(
        &q(&format!("limit=10&cursor={}", next2.unwrap())),
        100_000,
        50_000,
    );
    assert_eq!((p3.len(), next3), (5, None));
    let (exact, none) = idx.page(&q("limit=25"), 100_000, 50_000);
    assert_eq!(
        (exact.len(), none),
        (25, None),
        "no cursor when nothing remains"
    );

    let (f, _) = idx.page(&q("status=fail"), 100_000, 50_000);
    assert_eq!(
        f.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["rack1-00", "rack1-05", "rack1-10", "rack1-15", "rack2-20"]
    );
    let (c, _) = idx.page(&q("check=numa&prefix=rack2-"), 100_000, 50_000);
    assert_eq!(c.len(), 1);
    let (st, _) = idx.page(&q("stale=true&prefix=rack1"), 100_000, 50_000);
    assert_eq!(st.len(), 10);
    assert!(st.iter().all(|s| s.stale));
    let (p, n) = idx.page(&q("prefix=rack2-&limit=2"), 100_000, 50_000);
    assert_eq!((p.len(), n), (2, Some(encode_cursor("rack2-21"))));
}

#[test]
fn bad_query_parameters_are_named() {
    for (q, needle) in [
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=x", "limit"),
        ("cursor=zz", "cursor"),
        ("status=sick", "status"),
        ("stale=maybe", "stale"),
        ("colour=red", "colour"),
    ] {
        let e = NodeQuery::parse(Some(q)).unwrap_err().to_string();
        assert!(e.contains(needle), "{q}: {e}");
    }
    assert_eq!(
        NodeQuery::parse(Some("prefix=a%2Db+c"))
            .unwrap()
            .prefix
            .as_deref(),
        Some("a-b c")
    );
}

#[test]
fn junk_names_of_a_few_nodes_never_hide_another_nodes_failing_check_or_key() {
    let mut i = Interner::default();
    let mut idx = FleetIndex::default();
    // Five nodes inventing 64 failing checks and 128 inventory keys each, first: 320 check
    // names and 640 keys, over both caps.
    for j in 0..5 {
        let checks: Vec<String> = (0..64).map(|c| format!("junk{j}-{c}")).collect();
        let keys: Vec<String> = (0..128).map(|k| format!("junk{j}.{k}")).collect();
        let checks: Vec<(&str, Status)> =
            checks.iter().map(|c| (c.as_str(), Status::Fail)).collect();
        let keys: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
        idx.insert(node(
            &report(&format!("junk{j}"), &checks, &keys),
            0,
            &mut i,
        ));
    }
    // Then a real node failing one real check, with one key of its own.
    idx.insert(node(
        &report(
            "worker-1",
            &[("velox_library", Status::Fail), ("numa", Status::Ok)],
            &[("velox_library.build_id", "b1")],
        ),
        0,
        &mut i,
    ));
    let v = idx.view(0, 10.0);
    assert_eq!(v.failing_checks.len(), MAX_FLEET_CHECKS);
    let real = v
        .failing_checks
        .iter()
        .find(|c| c.check == "velox_library")
        .expect("the real failing check is shown");
    assert_eq!(real.node_names, vec!["worker-1"]);
    assert!(v.drift.len() <= MAX_FLEET_KEYS);
    assert!(
        v.drift.iter().any(|d| d.key == "velox_library.build_id"),
        "the real node's key is shown"
    );
    // A check failing on two nodes outranks every single-node name.
    idx.insert(node(
        &report("worker-2", &[("numa", Status::Fail)], &[]),
        0,
        &mut i,
    ));
    idx.insert(node(
        &report(
            "worker-1",
            &[("velox_library", Status::Fail), ("numa", Status::Fail)],
            &[],
        ),
        0,
        &mut i,
    ));
    let v = idx.view(0, 10.0);
    assert_eq!(v.failing_checks[0].check, "numa");
    assert!(v.failing_checks.iter().any(|c| c.check == "velox_library"));
    assert_eq!(v, recount(&idx, 0, 10.0));
}
