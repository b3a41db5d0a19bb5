//! Prometheus encoding of the latest round plus the agent's self-metrics, with `prometheus-client`
//! (a `Collector` over the immutable snapshot). OpenMetrics when the scraper asks for it, the
//! classic text format (0.0.4) otherwise. Rendered text is cached per round, so a scrape is a
//! copy of bytes.

use crate::engine::Snapshot;
use crate::push::PushStats;
use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use proto::Status;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Self-metrics of this process, read from the real `/proc/self` (not the host root).
#[derive(Debug, Clone, Default)]
pub struct ProcessStats {
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub threads: Option<u64>,
    pub cpu_seconds_total: Option<f64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    pub fn read() -> Self {
        let Ok(me) = procfs::process::Process::myself() else {
            return ProcessStats::default();
        };
        let mut s = ProcessStats {
            open_fds: me.fd_count().ok().map(|n| n as u64),
            ..ProcessStats::default()
        };
        if let Ok(stat) = me.stat() {
            let tps = procfs::ticks_per_second() as f64;
            let page = procfs::page_size();
            s.resident_memory_bytes = Some(stat.rss.saturating_mul(page));
            s.virtual_memory_bytes = Some(stat.vsize);
            s.threads = Some(stat.num_threads.max(0) as u64);
            s.cpu_seconds_total = Some((stat.utime + stat.stime) as f64 / tps);
            if let Ok(boot) = procfs::boot_time_secs() {
                s.start_time_seconds = Some(boot as f64 + stat.starttime as f64 / tps);
            }
        }
        s
    }
}

/// One gauge family of check facts: name, help, samples.
type Family = (
    &'static str,
    &'static str,
    Vec<(Vec<(&'static str, String)>, f64)>,
);

/// Everything one `/metrics` body is made of.
#[derive(Debug)]
struct Exposition {
    snapshot: Option<Arc<Snapshot>>,
    process: ProcessStats,
    push: Option<crate::push::PushSnapshot>,
    interval_seconds: f64,
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> std::fmt::Result {
    let samples: Vec<_> = samples.into_iter().collect();
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    match samples.as_slice() {
        [(labels, v)] if labels.is_empty() => ConstGauge::new(*v).encode(m),
        _ => {
            for (labels, v) in &samples {
                ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

/// A counter family; `name` without `_total` (the encoder adds it).
fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> std::fmt::Result {
    let samples: Vec<_> = samples.into_iter().collect();
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    match samples.as_slice() {
        [(labels, v)] if labels.is_empty() => ConstCounter::new(*v).encode(m),
        _ => {
            for (labels, v) in &samples {
                ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let version = env!("CARGO_PKG_VERSION").to_string();
        {
            let mut m = enc.encode_descriptor(
                "gluten_node_build",
                "Build of the running gluten-node-agent.",
                None,
                MetricType::Info,
            )?;
            m.encode_info(&vec![("version", version)])?;
        }
        gauge(
            &mut enc,
            "gluten_node_interval_seconds",
            "Configured seconds between check rounds.",
            [(vec![], self.interval_seconds)],
        )?;
        if let Some(s) = &self.snapshot {
            let checks = &s.report.checks;
            let lbl = |c: &proto::CheckResult| vec![("check", c.name.clone())];
            gauge(
                &mut enc,
                "gluten_node_status",
                "Node verdict as a state set: 1 for the current state (worst check), 0 for the others.",
                Status::ALL.iter().map(|st| {
                    (
                        vec![("state", st.as_str().to_string())],
                        f64::from(u8::from(s.report.status == *st)),
                    )
                }),
            )?;
            gauge(
                &mut enc,
                "gluten_node_check_status",
                "Status of each check as a state set: 1 for the current state, 0 for the others.",
                checks.iter().flat_map(|c| {
                    Status::ALL.iter().map(move |st| {
                        (
                            vec![
                                ("check", c.name.clone()),
                                ("state", st.as_str().to_string()),
                            ],
                            f64::from(u8::from(c.status == *st)),
                        )
                    })
                }),
            )?;
            gauge(
                &mut enc,
                "gluten_node_check_duration_seconds",
                "How long the last run of each check took.",
                checks.iter().map(|c| (lbl(c), c.duration_seconds)),
            )?;
            gauge(
                &mut enc,
                "gluten_node_check_last_run_timestamp_seconds",
                "When each check last produced a result, seconds since the epoch.",
                checks.iter().map(|c| {
                    let t = crate::time::parse_rfc3339(&c.checked_at)
                        .map(crate::time::unix_seconds)
                        .unwrap_or(0.0);
                    (lbl(c), t)
                }),
            )?;
            let per_check = |f: fn(&crate::engine::CheckCounters) -> f64| {
                checks
                    .iter()
                    .zip(&s.counters)
                    .map(move |(c, k)| (vec![("check", c.name.clone())], f(k)))
            };
            counter(
                &mut enc,
                "gluten_node_check_runs",
                "Runs started of each check.",
                per_check(|k| k.runs_total as f64),
            )?;
            counter(
                &mut enc,
                "gluten_node_check_timeouts",
                "Runs of each check that missed their deadline.",
                per_check(|k| k.timeouts_total as f64),
            )?;
            counter(
                &mut enc,
                "gluten_node_check_panics",
                "Runs of each check that panicked.",
                per_check(|k| k.panics_total as f64),
            )?;
            counter(
                &mut enc,
                "gluten_node_check_skipped",
                "Rounds in which a check was not started because its earlier run was still stuck.",
                per_check(|k| k.skipped_total as f64),
            )?;
            gauge(
                &mut enc,
                "gluten_node_check_stuck",
                "1 while a run of the check is stuck past its deadline (e.g. a hung mount).",
                per_check(|k| f64::from(u8::from(k.stuck))),
            )?;
            counter(
                &mut enc,
                "gluten_node_rounds",
                "Check rounds completed.",
                [(vec![], s.rounds_total as f64)],
            )?;
            gauge(
                &mut enc,
                "gluten_node_last_round_timestamp_seconds",
                "When the last round finished, seconds since the epoch.",
                [(vec![], s.finished_unix_seconds)],
            )?;
            // Key facts of each check, grouped by family in first-seen order.
            let mut families: Vec<Family> = Vec::new();
            for sample in s.samples.iter().flatten() {
                match families.iter_mut().find(|(n, _, _)| *n == sample.name) {
                    Some((_, _, v)) => v.push((sample.labels.clone(), sample.value)),
                    None => families.push((
                        sample.name,
                        sample.help,
                        vec![(sample.labels.clone(), sample.value)],
                    )),
                }
            }
            for (name, help, samples) in families {
                gauge(&mut enc, name, help, samples)?;
            }
        } else {
            counter(
                &mut enc,
                "gluten_node_rounds",
                "Check rounds completed.",
                [(vec![], 0.0)],
            )?;
        }
        if let Some(p) = &self.push {
            counter(
                &mut enc,
                "gluten_node_push_attempts",
                "Report pushes attempted to the aggregator.",
                [(vec![], p.attempts_total as f64)],
            )?;
            counter(
                &mut enc,
                "gluten_node_push_failures",
                "Report pushes that failed (network error, timeout or non-2xx answer).",
                [(vec![], p.failures_total as f64)],
            )?;
            gauge(
                &mut enc,
                "gluten_node_push_last_success_timestamp_seconds",
                "When a push last succeeded, seconds since the epoch (0: never).",
                [(vec![], p.last_success_unix_seconds)],
            )?;
        }
        let p = &self.process;
        let opt = |v: Option<f64>| v.map(|v| (vec![], v));
        gauge(
            &mut enc,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            opt(p.resident_memory_bytes.map(|v| v as f64)),
        )?;
        gauge(
            &mut enc,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            opt(p.virtual_memory_bytes.map(|v| v as f64)),
        )?;
        gauge(
            &mut enc,
            "process_open_fds",
            "Number of open file descriptors.",
            opt(p.open_fds.map(|v| v as f64)),
        )?;
        gauge(
            &mut enc,
            "process_threads",
            "Number of OS threads of the agent.",
            opt(p.threads.map(|v| v as f64)),
        )?;
        counter(
            &mut enc,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            opt(p.cpu_seconds_total),
        )?;
        gauge(
            &mut enc,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            opt(p.start_time_seconds),
        )?;
        Ok(())
    }
}

/// Encodes one exposition in OpenMetrics text.
fn encode_openmetrics(e: Exposition) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(e));
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The classic text format (0.0.4) from OpenMetrics text: no `# EOF`/`# UNIT`, counter families
/// named with their `_total` suffix, info families as `_info` gauges.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut renamed: Vec<(String, String, &'static str)> = Vec::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            if let (Some(name), Some(kind)) = (w.next(), w.next()) {
                match kind {
                    "counter" => {
                        renamed.push((name.to_string(), format!("{name}_total"), "counter"))
                    }
                    "info" => renamed.push((name.to_string(), format!("{name}_info"), "gauge")),
                    _ => {}
                }
            }
        }
    }
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let mut written = false;
        for (prefix, is_type) in [("# HELP ", false), ("# TYPE ", true)] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let name = rest.split(' ').next().unwrap_or("");
                if let Some((_, new, kind)) = renamed.iter().find(|(old, _, _)| old == name) {
                    out.push_str(prefix);
                    out.push_str(new);
                    if is_type {
                        out.push(' ');
                        out.push_str(kind);
                    } else {
                        out.push_str(&rest[name.len()..]);
                    }
                    out.push('\n');
                    written = true;
                }
            }
        }
        if !written {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One rendered body in both formats.
#[derive(Clone)]
struct Rendered {
    /// The snapshot rendered (held, so identity comparison is sound) and the push version.
    key: (Option<Arc<Snapshot>>, u64),
    at: Instant,
    text: Bytes,
    openmetrics: Bytes,
}

/// Renders `/metrics` at most once per round (and per second, for the process figures).
pub struct MetricsCache {
    interval_seconds: f64,
    push: Option<Arc<PushStats>>,
    cached: Mutex<Option<Rendered>>,
}

/// How long process figures (RSS, fds, CPU) in a cached body may be reused.
const PROCESS_REFRESH: Duration = Duration::from_secs(1);

impl MetricsCache {
    pub fn new(interval_seconds: f64, push: Option<Arc<PushStats>>) -> Self {
        MetricsCache {
            interval_seconds,
            push,
            cached: Mutex::new(None),
        }
    }

    /// The body for `snapshot`, in OpenMetrics or classic text.
    pub fn render(&self, snapshot: Option<Arc<Snapshot>>, openmetrics: bool) -> Bytes {
        let push_version = self.push.as_ref().map_or(0, |p| p.version());
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let same_snapshot = |r: &Rendered| match (&r.key.0, &snapshot) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if let Some(r) = cached.as_ref()
            && same_snapshot(r)
            && r.key.1 == push_version
            && r.at.elapsed() < PROCESS_REFRESH
        {
            return if openmetrics {
                r.openmetrics.clone()
            } else {
                r.text.clone()
            };
        }
        let key = (snapshot.clone(), push_version);
        let om = encode_openmetrics(Exposition {
            snapshot,
            process: ProcessStats::read(),
            push: self.push.as_ref().map(|p| p.snapshot()),
            interval_seconds: self.interval_seconds,
        });
        let r = Rendered {
            key,
            at: Instant::now(),
            text: Bytes::from(openmetrics_to_text(&om)),
            openmetrics: Bytes::from(om),
        };
        let out = if openmetrics {
            r.openmetrics.clone()
        } else {
            r.text.clone()
        };
        *cached = Some(r);
        out
    }
}

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_renames_counters_and_infos_and_drops_eof() {
        let om = "# HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_rounds Rounds.\n# TYPE a_rounds counter\na_rounds_total 3\n\
                  # HELP a_g G.\n# TYPE a_g gauge\na_g 1.5\n# EOF\n";
        let t = openmetrics_to_text(om);
        assert_eq!(
            t,
            "# HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # HELP a_rounds_total Rounds.\n# TYPE a_rounds_total counter\na_rounds_total 3\n\
             # HELP a_g G.\n# TYPE a_g gauge\na_g 1.5\n"
        );
    }

    #[test]
    fn renders_without_a_round_and_ends_with_eof_in_openmetrics() {
        let cache = MetricsCache::new(15.0, None);
        let om = cache.render(None, true);
        let om = std::str::from_utf8(&om).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("gluten_node_build_info{version="), "{om}");
        let text = cache.render(None, false);
        let text = std::str::from_utf8(&text).unwrap();
        assert!(!text.contains("# EOF"));
        assert!(
            text.contains("# TYPE gluten_node_rounds_total counter\ngluten_node_rounds_total 0"),
            "{text}"
        );
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
