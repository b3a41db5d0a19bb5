//! Pure: what the hugepages facts mean under the settings (findings, ok sentence, gauges,
//! inventory).

use super::*;
use crate::check::Verdict;
use crate::fmt;
use proto::{Finding, Status};

pub(super) fn node_name(n: Option<u32>) -> String {
    match n {
        Some(n) => format!("node{n}"),
        None => "global".to_string(),
    }
}

pub(super) fn pool_subject(size: u64, node: Option<u32>) -> String {
    match node {
        None => format!("hugepages-{}kB", size / 1024),
        Some(n) => format!("node{n}/hugepages-{}kB", size / 1024),
    }
}

/// Defrag modes that make a `madvise`d region stall in direct reclaim/compaction.
pub(super) const STALLING_DEFRAG: [&str; 3] = ["always", "madvise", "defer+madvise"];

/// Compares the facts with the settings.
pub fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
    let mut o = Verdict::default();
    let expected = settings.thp_expected.as_str();
    let mut thp_note = String::new();
    match facts.thp_enabled.as_ref().map(|s| s.selected.as_str()) {
        None => {
            o.push(
                Finding::new(
                    Status::Ok,
                    format!(
                        "transparent huge page mode unknown: {THP_DIR}/enabled is missing (expected `{expected}`)"
                    ),
                )
                .about(format!("{THP_DIR}/enabled")),
            );
            thp_note = "THP mode unknown".into();
        }
        Some(mode) if mode == expected => thp_note = format!("THP `{mode}` as expected"),
        Some("always") => o.push(
            Finding::new(
                Status::Warn,
                format!(
                    "transparent huge pages are `always` (expected `{expected}`): system-wide THP and khugepaged also hit the JVM and every other process; Gluten's benchmark nodes run `madvise`"
                ),
            )
            .about(format!("{THP_DIR}/enabled")),
        ),
        Some("never") => {
            let (status, tail) = if settings.memory_use_hugepages {
                (Status::Warn, "")
            } else {
                (Status::Ok, ", which is off by default")
            };
            o.push(
                Finding::new(
                    status,
                    format!(
                        "transparent huge pages are `never` (expected `{expected}`): Gluten's memoryUseHugePages (Velox madvise) has no effect{tail}"
                    ),
                )
                .about(format!("{THP_DIR}/enabled")),
            );
        }
        Some(mode) => o.push(
            Finding::new(
                Status::Warn,
                format!("transparent huge pages are `{mode}` (expected `{expected}`)"),
            )
            .about(format!("{THP_DIR}/enabled")),
        ),
    }
    if settings.memory_use_hugepages
        && let Some(defrag) = &facts.thp_defrag
        && STALLING_DEFRAG.contains(&defrag.selected.as_str())
    {
        o.push(
            Finding::new(
                Status::Warn,
                format!(
                    "THP defrag is `{}` while `memory_use_hugepages` is on: madvised Velox allocations stall in direct compaction (expected `defer` or `never`; Gluten turned huge pages off after higher kernel CPU, apache/gluten#3483)",
                    defrag.selected
                ),
            )
            .about(format!("{THP_DIR}/defrag")),
        );
    }

    for req in &settings.pools {
        evaluate_required_pool(&mut o, facts, req);
    }
    if settings.memory_use_hugepages
        && let Some(v) = &facts.vmstat
        && let (Some(alloc), Some(fallback)) = (v.thp_fault_alloc, v.thp_fault_fallback)
        && fallback > 0
    {
        let share = 100.0 * fallback as f64 / (alloc as f64 + fallback as f64);
        o.push(
            Finding::new(
                Status::Ok,
                format!(
                    "{share:.0}% of THP page faults since boot fell back to small pages (thp_fault_fallback {fallback}, thp_fault_alloc {alloc}): no free huge page (fragmentation, low memory) or a cgroup charge failed, so madvised Velox memory is partly on 4 KiB pages"
                ),
            )
            .about(VMSTAT),
        );
    }

    let held = if facts.pools.iter().any(|p| p.numa_node.is_none()) {
        format!(
            "{} held in huge page pools ({})",
            fmt::bytes(facts.pool_bytes),
            facts
                .pools
                .iter()
                .filter(|p| p.numa_node.is_none())
                .map(|p| match p.total {
                    Some(t) => format!("{} x {t}", fmt::exact_bytes(p.page_size_bytes)),
                    None => format!("{} x ?", fmt::exact_bytes(p.page_size_bytes)),
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        "no huge page pools listed".to_string()
    };
    o.ok_summary = Some(if thp_note.is_empty() {
        held
    } else {
        format!("{thp_note}; {held}")
    });
    add_metrics(&mut o, facts);
    o.inventory = vec![
        (
            "hugepages.thp_enabled".into(),
            facts
                .thp_enabled
                .as_ref()
                .map_or("unknown".into(), |s| s.selected.clone()),
        ),
        (
            "hugepages.thp_defrag".into(),
            facts
                .thp_defrag
                .as_ref()
                .map_or("unknown".into(), |s| s.selected.clone()),
        ),
        ("hugepages.layout".into(), layout(&facts.pools)),
    ];
    o
}

pub(super) fn evaluate_required_pool(o: &mut Verdict, facts: &Facts, req: &RequiredPool) {
    let subject = pool_subject(req.size_bytes, req.numa_node);
    let what = match req.numa_node {
        None => format!("global {} huge page pool", fmt::exact_bytes(req.size_bytes)),
        Some(n) => format!(
            "{} huge page pool on NUMA node {n}",
            fmt::exact_bytes(req.size_bytes)
        ),
    };
    let Some(pool) = facts
        .pools
        .iter()
        .find(|p| p.page_size_bytes == req.size_bytes && p.numa_node == req.numa_node)
    else {
        o.push(
            Finding::new(
                Status::Fail,
                format!(
                    "no {what} (required: `min_total` {}, `min_free` {})",
                    req.min_total, req.min_free
                ),
            )
            .about(subject),
        );
        return;
    };
    for (key, observed, required, file) in [
        ("min_total", pool.total, req.min_total, "nr_hugepages"),
        ("min_free", pool.free, req.min_free, "free_hugepages"),
    ] {
        if required == 0 {
            continue;
        }
        match observed {
            None => o.push(
                Finding::new(
                    Status::Unknown,
                    format!("{what}: {file} is missing, cannot compare with `{key}` {required}"),
                )
                .about(subject.clone()),
            ),
            Some(v) if v < required => o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{what} has {v} {} pages, below `{key}` {required}",
                        if key == "min_total" { "total" } else { "free" }
                    ),
                )
                .about(subject.clone()),
            ),
            Some(_) => {}
        }
    }
}

pub(super) const THP_ENABLED_MODES: [&str; 3] = ["always", "madvise", "never"];
pub(super) const THP_DEFRAG_MODES: [&str; 5] =
    ["always", "defer", "defer+madvise", "madvise", "never"];

pub(super) fn add_metrics(o: &mut Verdict, facts: &Facts) {
    for p in &facts.pools {
        let size = p.page_size_bytes.to_string();
        let node = p.numa_node.map_or("global".to_string(), |n| n.to_string());
        for (state, v) in [
            ("total", p.total),
            ("free", p.free),
            ("reserved", p.reserved),
            ("surplus", p.surplus),
        ] {
            if let Some(v) = v {
                o.gauge(
                    "gluten_node_hugepages_pool_pages",
                    "Pages in a hugetlb pool by state; numa_node=\"global\" is the whole-host pool (per-node pools are the same pages again).",
                    &[("page_size_bytes", &size), ("numa_node", &node), ("state", state)],
                    v as f64,
                );
            }
        }
    }
    o.gauge(
        "gluten_node_hugepages_pool_bytes",
        "Bytes held in the global hugetlb pools (total pages x page size).",
        &[],
        facts.pool_bytes as f64,
    );
    for (name, help, setting, modes) in [
        (
            "gluten_node_hugepages_thp_enabled",
            "Transparent huge page mode as a state set (absent when unknown).",
            &facts.thp_enabled,
            &THP_ENABLED_MODES[..],
        ),
        (
            "gluten_node_hugepages_thp_defrag",
            "Transparent huge page defrag mode as a state set (absent when unknown).",
            &facts.thp_defrag,
            &THP_DEFRAG_MODES[..],
        ),
    ] {
        if let Some(s) = setting {
            for mode in modes {
                o.gauge(
                    name,
                    help,
                    &[("mode", mode)],
                    if s.selected == *mode { 1.0 } else { 0.0 },
                );
            }
        }
    }
    for (counter, v) in facts.vmstat.iter().flat_map(VmstatThp::counters) {
        if let Some(v) = v {
            o.gauge(
                "gluten_node_hugepages_vmstat",
                "A /proc/vmstat THP or compaction counter since boot (nr_anon_transparent_hugepages: THP pages mapped now); absent when the kernel has no such line.",
                &[("counter", counter)],
                v as f64,
            );
        }
    }
    if let Some(anon) = facts.meminfo.as_ref().and_then(|m| m.anon_huge_pages_bytes) {
        o.gauge(
            "gluten_node_hugepages_anon_bytes",
            "Anonymous memory mapped with transparent huge pages (AnonHugePages).",
            &[],
            anon as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hugepages::facts::tests::{G1, M2, pool};
    use crate::hugepages::parse::tests::VMSTAT_4X;

    fn thp(mode: &str) -> Option<ThpSetting> {
        Some(ThpSetting {
            selected: mode.into(),
            available: vec!["always".into(), "madvise".into(), "never".into()],
        })
    }

    fn facts(enabled: Option<&str>, defrag: Option<&str>, pools: Vec<Pool>) -> Facts {
        Facts {
            thp_enabled: enabled.and_then(thp),
            thp_defrag: defrag.and_then(thp),
            pool_bytes: pool_bytes(&pools),
            pools,
            meminfo: None,
            vmstat: None,
        }
    }

    #[test]
    fn evaluate_thp_modes() {
        let madvise = Settings::default();
        let never_expected = Settings {
            thp_expected: ThpMode::Never,
            ..Settings::default()
        };
        let velox_hp = Settings {
            memory_use_hugepages: true,
            ..Settings::default()
        };
        // (enabled, defrag, settings, status, a word the worst message must hold)
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            &'a Settings,
            Status,
            &'a str,
        );
        let table: [Row; 9] = [
            (
                Some("madvise"),
                Some("madvise"),
                &madvise,
                Status::Ok,
                "as expected",
            ),
            (Some("always"), None, &madvise, Status::Warn, "khugepaged"),
            (Some("never"), None, &madvise, Status::Ok, "no effect"),
            (Some("never"), None, &velox_hp, Status::Warn, "no effect"),
            (
                Some("madvise"),
                None,
                &never_expected,
                Status::Warn,
                "expected `never`",
            ),
            (
                Some("never"),
                None,
                &never_expected,
                Status::Ok,
                "as expected",
            ),
            (None, None, &madvise, Status::Ok, "unknown"),
            (
                Some("madvise"),
                Some("defer"),
                &velox_hp,
                Status::Ok,
                "as expected",
            ),
            (
                Some("madvise"),
                Some("madvise"),
                &velox_hp,
                Status::Warn,
                "direct compaction",
            ),
        ];
        for (enabled, defrag, settings, status, word) in table {
            let o = evaluate(&facts(enabled, defrag, vec![]), settings);
            let text = if status == Status::Ok {
                format!("{} {:?}", o.summary(), o.findings)
            } else {
                o.summary()
            };
            assert_eq!(o.status(), status, "{enabled:?} {defrag:?}: {text}");
            assert!(text.contains(word), "{enabled:?} {defrag:?}: {text}");
        }
    }

    #[test]
    fn evaluate_required_pools() {
        let pools = vec![
            pool(M2, None, Some(1024), Some(1000)),
            pool(G1, None, Some(4), Some(4)),
            pool(G1, Some(1), Some(4), Some(1)),
            pool(G1, Some(0), Some(0), Some(0)),
            pool(M2 * 8, None, None, None),
        ];
        let req = |size, node, min_total, min_free| RequiredPool {
            size_bytes: size,
            numa_node: node,
            min_total,
            min_free,
        };
        // (required pool, status, text in the message)
        let table = [
            (req(M2, None, 1024, 5), Status::Ok, ""),
            (
                req(M2, None, 2048, 0),
                Status::Fail,
                "1024 total pages, below `min_total` 2048",
            ),
            (
                req(M2, None, 0, 1001),
                Status::Fail,
                "1000 free pages, below `min_free` 1001",
            ),
            (req(G1, Some(1), 4, 1), Status::Ok, ""),
            (
                req(G1, Some(1), 4, 2),
                Status::Fail,
                "NUMA node 1 has 1 free pages",
            ),
            (
                req(G1, Some(0), 1, 0),
                Status::Fail,
                "NUMA node 0 has 0 total pages",
            ),
            (
                req(G1, Some(2), 1, 0),
                Status::Fail,
                "no 1 GiB huge page pool on NUMA node 2",
            ),
            (
                req(64 << 10, None, 1, 0),
                Status::Fail,
                "no global 64 KiB huge page pool",
            ),
            (
                req(M2 * 8, None, 1, 0),
                Status::Unknown,
                "nr_hugepages is missing",
            ),
        ];
        for (r, status, text) in table {
            let settings = Settings {
                pools: vec![r.clone()],
                ..Settings::default()
            };
            let o = evaluate(&facts(Some("madvise"), None, pools.clone()), &settings);
            assert_eq!(o.status(), status, "{r:?}: {}", o.summary());
            assert!(o.summary().contains(text), "{r:?}: {}", o.summary());
        }
    }

    #[test]
    fn evaluate_reports_pool_memory_gauges_and_inventory() {
        let f = facts(
            Some("madvise"),
            Some("defer"),
            vec![
                pool(M2, None, Some(1024), Some(0)),
                pool(G1, Some(1), Some(4), Some(4)),
            ],
        );
        let o = evaluate(&f, &Settings::default());
        assert_eq!(
            o.summary(),
            "THP `madvise` as expected; 2.0 GiB held in huge page pools (2 MiB x 1024)"
        );
        let g = |name: &str, labels: &[(&str, &str)]| {
            o.metrics
                .iter()
                .find(|s| {
                    s.name == name
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|s| s.value)
        };
        let node1 = [
            ("page_size_bytes", "1073741824"),
            ("numa_node", "1"),
            ("state", "free"),
        ];
        assert_eq!(g("gluten_node_hugepages_pool_pages", &node1), Some(4.0));
        let global = [("numa_node", "global"), ("state", "reserved")];
        assert_eq!(g("gluten_node_hugepages_pool_pages", &global), None);
        assert_eq!(
            g("gluten_node_hugepages_pool_bytes", &[]),
            Some((2u64 << 30) as f64)
        );
        assert_eq!(
            g("gluten_node_hugepages_thp_enabled", &[("mode", "madvise")]),
            Some(1.0)
        );
        assert_eq!(
            g("gluten_node_hugepages_thp_enabled", &[("mode", "always")]),
            Some(0.0)
        );
        assert_eq!(
            g("gluten_node_hugepages_thp_defrag", &[("mode", "defer")]),
            Some(1.0)
        );
        assert_eq!(
            o.inventory,
            [
                ("hugepages.thp_enabled".to_string(), "madvise".to_string()),
                ("hugepages.thp_defrag".to_string(), "defer".to_string()),
                ("hugepages.layout".to_string(), "2097152:1024".to_string()),
            ]
        );
        let unknown = evaluate(&facts(None, None, vec![]), &Settings::default());
        assert!(unknown.metrics.iter().all(|s| !s.name.contains("thp")));
        assert_eq!(unknown.inventory[0].1, "unknown");
    }

    fn with_vmstat(mut f: Facts, text: &str) -> Facts {
        f.vmstat = Some(parse_vmstat_thp(text).unwrap());
        f
    }

    #[test]
    fn vmstat_counters_leave_statuses_unchanged_and_are_gauges() {
        let velox_hp = Settings {
            memory_use_hugepages: true,
            ..Settings::default()
        };
        for (enabled, defrag, settings) in [
            (Some("madvise"), Some("defer"), &Settings::default()),
            (Some("always"), None, &Settings::default()),
            (Some("madvise"), Some("madvise"), &velox_hp),
            (Some("never"), None, &velox_hp),
            (None, None, &velox_hp),
        ] {
            let without = evaluate(&facts(enabled, defrag, vec![]), settings);
            let with = evaluate(
                &with_vmstat(facts(enabled, defrag, vec![]), VMSTAT_4X),
                settings,
            );
            assert_eq!(with.status(), without.status(), "{enabled:?} {defrag:?}");
            assert_eq!(with.summary(), without.summary(), "{enabled:?} {defrag:?}");
            assert_eq!(with.inventory, without.inventory);
        }
        let o = evaluate(
            &with_vmstat(facts(Some("madvise"), None, vec![]), VMSTAT_4X),
            &Settings::default(),
        );
        assert!(o.findings.iter().all(|f| !f.message.contains("fell back")));
        let counter = |o: &Verdict, c: &str| {
            o.metrics
                .iter()
                .find(|s| {
                    s.name == "gluten_node_hugepages_vmstat"
                        && s.labels.iter().any(|(k, v)| *k == "counter" && v == c)
                })
                .map(|s| s.value)
        };
        assert_eq!(counter(&o, "thp_fault_fallback"), Some(98119.0));
        assert_eq!(counter(&o, "nr_anon_transparent_hugepages"), Some(556.0));
        assert_eq!(counter(&o, "thp_split_page"), None, "missing: no sample");
        assert_eq!(counter(&o, "thp_split"), None, "bounded label set");
        let none = evaluate(&facts(Some("madvise"), None, vec![]), &Settings::default());
        assert!(
            none.metrics
                .iter()
                .all(|s| s.name != "gluten_node_hugepages_vmstat")
        );
    }

    #[test]
    fn thp_fault_fallback_share_is_an_ok_finding_with_memory_use_hugepages() {
        let velox_hp = Settings {
            memory_use_hugepages: true,
            ..Settings::default()
        };
        let o = evaluate(
            &with_vmstat(facts(Some("madvise"), Some("defer"), vec![]), VMSTAT_4X),
            &velox_hp,
        );
        assert_eq!(o.status(), Status::Ok);
        let f = o
            .findings
            .iter()
            .find(|f| f.message.contains("fell back"))
            .expect("fallback finding");
        assert_eq!(f.status, Status::Ok);
        // 98119 / (142261 + 98119) = 40.8%
        assert!(
            f.message.starts_with("41% of THP page faults"),
            "{}",
            f.message
        );
        // No fallback, or a counter missing: nothing to say.
        for text in [
            "thp_fault_alloc 10\nthp_fault_fallback 0\n",
            "thp_fault_fallback 5\n",
        ] {
            let o = evaluate(
                &with_vmstat(facts(Some("madvise"), Some("defer"), vec![]), text),
                &velox_hp,
            );
            assert!(
                o.findings.iter().all(|f| !f.message.contains("fell back")),
                "{text}"
            );
        }
    }
}
