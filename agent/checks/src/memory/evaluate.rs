//! Pure: what the memory facts mean under the settings (findings, the ok sentence, gauges).

use super::*;
use crate::check::Verdict;
use crate::fmt;
use proto::{Finding, Status};

/// The findings, the ok sentence and the gauges that `o` means under `s` (pure).
pub fn evaluate(o: &Facts, s: &Settings) -> Verdict {
    let mut ev = Verdict::default();
    let mut f = |status: Status, msg: String| ev.findings.push(Finding::new(status, msg));

    let (usable, usable_source) = o.usable();
    let cg_limit = o.cgroup.as_ref().and_then(|c| c.limit_bytes);

    // The Spark plan against it.
    let mut summary = Vec::new();
    match (&o.plan, usable) {
        (None, _) => summary.push("no Spark plan configured".to_string()),
        (Some(p), None) => f(
            Status::Warn,
            format!(
                "planned {} x {} = {}, but usable memory is unknown (no MemTotal)",
                p.executors_per_node,
                fmt::bytes(p.per_executor_bytes),
                fmt::bytes(p.planned_bytes)
            ),
        ),
        (Some(p), Some(u)) => {
            // The one formula (`Facts::headroom`), judged against this round's settings.
            let reserve = i128::from(s.reserve_bytes);
            let headroom = o.headroom(s.reserve_bytes).unwrap_or(0);
            let src = usable_source.unwrap_or("");
            let planned = format!(
                "planned {} x {} = {}",
                p.executors_per_node,
                fmt::bytes(p.per_executor_bytes),
                fmt::bytes(p.planned_bytes)
            );
            if headroom < 0 {
                f(
                    Status::Fail,
                    format!(
                        "{planned} plus `reserve_bytes` {} exceeds usable {} ({src}) by {}",
                        fmt::bytes(s.reserve_bytes),
                        fmt::bytes(u),
                        fmt::bytes(headroom.unsigned_abs() as u64)
                    ),
                );
            } else if headroom < reserve {
                f(
                    Status::Warn,
                    format!(
                        "{planned} plus `reserve_bytes` {} leaves headroom {} of usable {} ({src}), below `reserve_bytes`",
                        fmt::bytes(s.reserve_bytes),
                        fmt::bytes(headroom as u64),
                        fmt::bytes(u),
                    ),
                );
            }
            summary.push(format!(
                "{planned} plus reserve {} fits usable {} ({src}) with headroom {}",
                fmt::bytes(s.reserve_bytes),
                fmt::bytes(u),
                fmt::signed_bytes(headroom)
            ));
        }
    }
    if let Some(msg) = o
        .plan
        .as_ref()
        .and_then(SparkPlan::gluten_offheap_violation)
    {
        f(Status::Fail, msg);
    }
    if let Some(p) = &o.plan
        && p.memory_overhead_bytes < p.gluten_recommended_overhead_bytes
    {
        f(
            Status::Warn,
            format!(
                "`{EXECUTOR_MEMORY_OVERHEAD}` {} is below Gluten's recommended {} \
                 (max(0.3 x off-heap {}, 384 MiB)); executors risk being killed for \
                 exceeding memory limits",
                fmt::bytes(p.memory_overhead_bytes),
                fmt::bytes(p.gluten_recommended_overhead_bytes),
                fmt::bytes(p.offheap_bytes)
            ),
        );
    }

    // The cgroup.
    if let Some(c) = &o.cgroup {
        if !c.exists {
            if c.source == "config" {
                f(
                    Status::Warn,
                    format!("configured `cgroup` {} not found at {}", c.path, c.dir),
                );
            }
        } else if let (Some(ratio), Some(limit), Some(ws)) =
            (c.usage_ratio, c.limit_bytes, c.working_set_bytes)
        {
            let msg = |level: f64, key: &str| {
                format!(
                    "cgroup {} working set {} is {:.0}% of its limit {}, at or above `{key}` {:.0}%",
                    c.path,
                    fmt::bytes(ws),
                    ratio * 100.0,
                    fmt::bytes(limit),
                    level * 100.0
                )
            };
            if ratio >= s.cgroup_usage_fail_ratio {
                f(
                    Status::Fail,
                    msg(s.cgroup_usage_fail_ratio, "cgroup_usage_fail_ratio"),
                );
            } else if ratio >= s.cgroup_usage_warn_ratio {
                f(
                    Status::Warn,
                    msg(s.cgroup_usage_warn_ratio, "cgroup_usage_warn_ratio"),
                );
            }
        }
        if let (Some(now), Some(start)) = (c.oom_kill, c.oom_kill_at_start)
            && now > start
        {
            f(
                Status::Warn,
                format!(
                    "{} OOM kill(s) in cgroup {} since the agent started (oom_kill {start} -> {now})",
                    now - start,
                    c.path
                ),
            );
        }
        if let Some(some) = c.psi.and_then(|p| p.some)
            && some.avg60 >= s.psi_some_avg60_warn
        {
            f(
                Status::Warn,
                format!(
                    "cgroup {} memory pressure: some avg60 {:.2}% at or above `psi_some_avg60_warn` {}%",
                    c.path, some.avg60, s.psi_some_avg60_warn
                ),
            );
        }
    }

    // Host-wide signals.
    if let Some(some) = o.psi.and_then(|p| p.some)
        && some.avg60 >= s.psi_some_avg60_warn
    {
        f(
            Status::Warn,
            format!(
                "memory pressure (/proc/pressure/memory): some avg60 {:.2}% at or above \
                 `psi_some_avg60_warn` {}%",
                some.avg60, s.psi_some_avg60_warn
            ),
        );
    }
    if let (Some(now), Some(start)) = (o.oom_kill, o.oom_kill_at_start)
        && now > start
    {
        f(
            Status::Warn,
            format!(
                "{} OOM kill(s) on the host since the agent started (/proc/vmstat oom_kill {start} -> {now})",
                now - start
            ),
        );
    }

    // The ok sentence.
    let mut host = Vec::new();
    if let Some(t) = o.meminfo.total {
        host.push(format!("MemTotal {}", fmt::bytes(t)));
    }
    if let Some(a) = o.meminfo.available {
        let est = if o.meminfo.available_estimated {
            " (estimated)"
        } else {
            ""
        };
        host.push(format!("MemAvailable {}{est}", fmt::bytes(a)));
    }
    if let Some(l) = cg_limit {
        host.push(format!("cgroup limit {}", fmt::bytes(l)));
    }
    summary.push(host.join(", "));
    ev.ok_summary = Some(
        summary
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    );
    gauges(&mut ev, &o.report());
    ev
}

/// The key facts as gauges.
pub(super) fn gauges(v_: &mut Verdict, facts: &FactsReport) {
    let mut gauge = |name, help, v: Option<f64>| {
        if let Some(v) = v {
            v_.gauge(name, help, &[], v);
        }
    };
    let f = |v: Option<u64>| v.map(|x| x as f64);
    gauge(
        "gluten_node_memory_total_bytes",
        "MemTotal of the host.",
        f(facts.mem_total_bytes),
    );
    gauge(
        "gluten_node_memory_available_bytes",
        "MemAvailable of the host (estimated on kernels without it).",
        f(facts.mem_available_bytes),
    );
    gauge(
        "gluten_node_memory_hugepages_pool_bytes",
        "Memory held in huge page pools.",
        f(facts.hugepages_pool_bytes),
    );
    gauge(
        "gluten_node_memory_cgroup_limit_bytes",
        "Memory limit of the inspected cgroup (tightest of it and its ancestors).",
        f(facts.cgroup_limit_bytes),
    );
    gauge(
        "gluten_node_memory_cgroup_usage_bytes",
        "Memory usage of the inspected cgroup (memory.current or memory.usage_in_bytes).",
        f(facts.cgroup.as_ref().and_then(|c| c.usage_bytes)),
    );
    gauge(
        "gluten_node_memory_usable_bytes",
        "Memory usable by executors: the tighter of the cgroup limit and MemTotal minus huge page pools.",
        f(facts.usable_bytes),
    );
    gauge(
        "gluten_node_memory_planned_bytes",
        "Memory the Spark plan asks for on this node (all executors).",
        f(facts.planned_bytes),
    );
    gauge(
        "gluten_node_memory_headroom_bytes",
        "Usable minus planned memory (negative: overcommitted).",
        facts.headroom_bytes.map(|h| h as f64),
    );
    gauge(
        "gluten_node_memory_psi_some_avg60_ratio",
        "PSI memory some avg60 of the host, as a 0-1 ratio.",
        facts
            .psi_memory
            .and_then(|p| p.some)
            .map(|s| s.avg60 / 100.0),
    );
    gauge(
        "gluten_node_memory_oom_kills",
        "The kernel's oom_kill counter (/proc/vmstat) since boot.",
        f(facts.oom_kill),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn plan(per_gib: u64, n: u32, overhead_gib: u64, recommended_gib: u64) -> SparkPlan {
        SparkPlan {
            executor_memory_bytes: per_gib * GIB,
            memory_overhead_bytes: overhead_gib * GIB,
            memory_overhead_source: "set",
            offheap_bytes: 0,
            pyspark_memory_bytes: 0,
            gluten_recommended_overhead_bytes: recommended_gib * GIB,
            per_executor_bytes: per_gib * GIB,
            executors_per_node: n,
            planned_bytes: per_gib * GIB * u64::from(n),
            gluten_plugin: false,
            offheap_enabled: false,
            offheap_size_bytes: 0,
            gluten_dynamic_offheap_sizing: false,
        }
    }

    /// `plan(8, 1, 1, 1)` with Gluten's plugin and the given off-heap settings.
    fn gluten_plan(offheap_enabled: bool, offheap_size_bytes: u64, dynamic: bool) -> SparkPlan {
        SparkPlan {
            gluten_plugin: true,
            offheap_enabled,
            offheap_size_bytes,
            gluten_dynamic_offheap_sizing: dynamic,
            ..plan(8, 1, 1, 1)
        }
    }

    fn host(total_gib: u64, pools_gib: u64) -> Meminfo {
        Meminfo {
            total: Some(total_gib * GIB),
            hugepages_pool_bytes: Some(pools_gib * GIB),
            ..Meminfo::default()
        }
    }

    fn cgroup(limit_gib: Option<u64>, ws_gib: u64) -> CgroupFacts {
        CgroupFacts {
            version: 2,
            path: "/spark.slice".into(),
            source: "config",
            dir: "/sys/fs/cgroup/spark.slice".into(),
            exists: true,
            limit_bytes: limit_gib.map(|l| l * GIB),
            working_set_bytes: Some(ws_gib * GIB),
            usage_ratio: limit_gib.map(|l| ws_gib as f64 / l as f64),
            ..CgroupFacts::default()
        }
    }

    fn psi(avg60: f64) -> Psi {
        Psi {
            some: Some(PsiLine {
                avg10: 0.0,
                avg60,
                avg300: 0.0,
                total_us: 0,
            }),
            full: None,
        }
    }

    #[test]
    fn evaluate_table() {
        let s = Settings::default();
        // (name, observation, expected status, a phrase of the worst finding or the ok summary)
        let cases: Vec<(&str, Facts, Status, &str)> = vec![
            (
                "no plan: host facts only",
                Facts {
                    meminfo: host(64, 0),
                    ..Default::default()
                },
                Status::Ok,
                "no Spark plan configured; MemTotal 64.0 GiB",
            ),
            (
                "fits with room",
                Facts {
                    meminfo: host(128, 0),
                    plan: Some(plan(40, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 3 x 40.0 GiB = 120.0 GiB plus reserve 2.0 GiB fits usable 128.0 GiB (MemTotal minus huge page pools) with headroom 6.0 GiB",
            ),
            (
                "huge page pools are not usable",
                Facts {
                    meminfo: host(128, 10),
                    plan: Some(plan(40, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Fail,
                "planned 3 x 40.0 GiB = 120.0 GiB plus `reserve_bytes` 2.0 GiB exceeds usable 118.0 GiB (MemTotal minus huge page pools) by 4.0 GiB",
            ),
            (
                "the cgroup limit is tighter",
                Facts {
                    meminfo: host(256, 0),
                    cgroup: Some(cgroup(Some(120), 1)),
                    plan: Some(plan(45, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Fail,
                "exceeds usable 120.0 GiB (cgroup limit) by 17.0 GiB",
            ),
            (
                "headroom below the reserve",
                Facts {
                    meminfo: host(132, 0),
                    plan: Some(plan(43, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Warn,
                "leaves headroom 1.0 GiB of usable 132.0 GiB (MemTotal minus huge page pools), below `reserve_bytes`",
            ),
            (
                "headroom exactly 0 is below the reserve, not a fail",
                Facts {
                    meminfo: host(122, 0),
                    plan: Some(plan(40, 3, 4, 1)),
                    ..Default::default()
                },
                Status::Warn,
                "leaves headroom 0 B",
            ),
            (
                "overhead below Gluten's recommendation",
                Facts {
                    meminfo: host(128, 0),
                    plan: Some(plan(10, 1, 1, 6)),
                    ..Default::default()
                },
                Status::Warn,
                "`spark.executor.memoryOverhead` 1.0 GiB is below Gluten's recommended 6.0 GiB",
            ),
            (
                "cgroup working set at 90%",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(cgroup(Some(10), 9)),
                    ..Default::default()
                },
                Status::Warn,
                "working set 9.0 GiB is 90% of its limit 10.0 GiB, at or above `cgroup_usage_warn_ratio` 85%",
            ),
            (
                "cgroup working set at 96%",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        working_set_bytes: Some(96 * GIB),
                        usage_ratio: Some(0.96),
                        ..cgroup(Some(100), 0)
                    }),
                    ..Default::default()
                },
                Status::Fail,
                "is 96% of its limit 100.0 GiB, at or above `cgroup_usage_fail_ratio` 95%",
            ),
            (
                "unlimited cgroup: no ratio",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(cgroup(None, 60)),
                    ..Default::default()
                },
                Status::Ok,
                "MemTotal 64.0 GiB",
            ),
            (
                "host memory pressure",
                Facts {
                    meminfo: host(64, 0),
                    psi: Some(psi(12.5)),
                    ..Default::default()
                },
                Status::Warn,
                "some avg60 12.50% at or above `psi_some_avg60_warn` 10%",
            ),
            (
                "pressure below the threshold",
                Facts {
                    meminfo: host(64, 0),
                    psi: Some(psi(9.99)),
                    ..Default::default()
                },
                Status::Ok,
                "MemTotal",
            ),
            (
                "cgroup memory pressure",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        psi: Some(psi(30.0)),
                        ..cgroup(None, 1)
                    }),
                    ..Default::default()
                },
                Status::Warn,
                "cgroup /spark.slice memory pressure: some avg60 30.00%",
            ),
            (
                "host OOM kills since start",
                Facts {
                    meminfo: host(64, 0),
                    oom_kill: Some(5),
                    oom_kill_at_start: Some(3),
                    ..Default::default()
                },
                Status::Warn,
                "2 OOM kill(s) on the host since the agent started (/proc/vmstat oom_kill 3 -> 5)",
            ),
            (
                "OOM kills before start do not count",
                Facts {
                    meminfo: host(64, 0),
                    oom_kill: Some(5),
                    oom_kill_at_start: Some(5),
                    ..Default::default()
                },
                Status::Ok,
                "MemTotal",
            ),
            (
                "cgroup OOM kills since start",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        oom_kill: Some(1),
                        oom_kill_at_start: Some(0),
                        ..cgroup(None, 1)
                    }),
                    ..Default::default()
                },
                Status::Warn,
                "1 OOM kill(s) in cgroup /spark.slice",
            ),
            (
                "configured cgroup missing",
                Facts {
                    meminfo: host(64, 0),
                    cgroup: Some(CgroupFacts {
                        exists: false,
                        ..cgroup(None, 0)
                    }),
                    ..Default::default()
                },
                Status::Warn,
                "configured `cgroup` /spark.slice not found at /sys/fs/cgroup/spark.slice",
            ),
            (
                "Gluten without off-heap: startup throws",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(false, 0, false)),
                    ..Default::default()
                },
                Status::Fail,
                "`spark.memory.offHeap.enabled` is false (or unset) while `spark.plugins` loads GlutenPlugin: Gluten throws at startup",
            ),
            (
                "Gluten with off-heap below 1 MiB",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(true, 1024, false)),
                    ..Default::default()
                },
                Status::Fail,
                "`spark.memory.offHeap.size` is 1024 bytes, below 1 MiB",
            ),
            (
                "Gluten with dynamic off-heap sizing needs no off-heap",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(false, 0, true)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 1 x 8.0 GiB",
            ),
            (
                "Gluten with 1 MiB off-heap",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(gluten_plan(true, GLUTEN_MIN_OFFHEAP_BYTES, false)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 1 x 8.0 GiB",
            ),
            (
                "no off-heap without Gluten's plugin: not Gluten's rule",
                Facts {
                    meminfo: host(64, 0),
                    plan: Some(plan(8, 1, 1, 1)),
                    ..Default::default()
                },
                Status::Ok,
                "planned 1 x 8.0 GiB",
            ),
            (
                "plan but no MemTotal",
                Facts {
                    plan: Some(plan(1, 1, 1, 1)),
                    ..Default::default()
                },
                Status::Warn,
                "usable memory is unknown",
            ),
        ];
        for (name, obs, status, phrase) in cases {
            let ev = evaluate(&obs, &s);
            let got = Status::worst(ev.findings.iter().map(|f| f.status));
            let text = if got == Status::Ok {
                ev.ok_summary.clone().unwrap_or_default()
            } else {
                ev.findings
                    .iter()
                    .filter(|f| f.status == got)
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            assert_eq!(got, status, "{name}: {text}");
            assert!(text.contains(phrase), "{name}: {text:?} lacks {phrase:?}");
        }
    }

    #[test]
    fn evaluate_reports_usable_and_headroom() {
        let obs = Facts {
            meminfo: host(256, 0),
            cgroup: Some(cgroup(Some(120), 1)),
            plan: Some(plan(45, 3, 4, 1)),
            ..Default::default()
        };
        assert_eq!(obs.usable(), (Some(120 * GIB), Some("cgroup limit")));
        let reserve = Settings::default().reserve_bytes;
        assert_eq!(obs.headroom(reserve), Some(-17 * i128::from(GIB)));
    }
}
