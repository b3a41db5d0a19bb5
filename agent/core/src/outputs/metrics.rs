//! Prometheus encoding of the latest round plus the agent's self-metrics, with `prometheus-client`
//! (a `Collector` over the immutable snapshot): its OpenMetrics encoder, or its classic text
//! (0.0.4) encoder, whichever the scraper negotiated. Rendered bodies are cached per round, so a
//! scrape is a copy of bytes.

use crate::outputs::{MetricsFormat, MetricsRender, PushSnapshot, PushStats};
use crate::snapshot::Snapshot;
use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use proto::Status;
use serve::exposition::{Labels, family};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    push: Option<PushSnapshot>,
    interval_seconds: f64,
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) -> std::fmt::Result {
    family(enc, name, help, MetricType::Gauge, samples)
}

/// A counter family; `name` without `_total` (the encoder adds it).
fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) -> std::fmt::Result {
    family(enc, name, help, MetricType::Counter, samples)
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
                    let t = common::time::parse_rfc3339(&c.checked_at)
                        .map(common::time::unix_seconds)
                        .unwrap_or(0.0);
                    (lbl(c), t)
                }),
            )?;
            let per_check = |f: fn(&crate::snapshot::CheckCounters) -> f64| {
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

/// Encodes one exposition for `format`.
fn encode(e: Exposition, format: MetricsFormat) -> String {
    serve::exposition::encode(Box::new(e), format, 16 * 1024)
}

/// One rendered body.
struct Rendered {
    /// The snapshot rendered (held, so identity comparison is sound) and the push version.
    key: (Option<Arc<Snapshot>>, u64),
    at: Instant,
    body: Bytes,
}

/// Renders `/metrics` at most once per round and format (and per second, for the process
/// figures).
pub struct MetricsCache {
    interval_seconds: f64,
    push: Option<Arc<PushStats>>,
    /// One slot per format: [text, OpenMetrics].
    cached: Mutex<[Option<Rendered>; 2]>,
}

/// How long process figures (RSS, fds, CPU) in a cached body may be reused.
const PROCESS_REFRESH: Duration = Duration::from_secs(1);

impl MetricsCache {
    pub fn new(interval_seconds: f64, push: Option<Arc<PushStats>>) -> Self {
        MetricsCache {
            interval_seconds,
            push,
            cached: Mutex::new([None, None]),
        }
    }

    /// The body for `snapshot`, in OpenMetrics (`openmetrics`) or classic text.
    pub fn render(&self, snapshot: Option<Arc<Snapshot>>, openmetrics: bool) -> Bytes {
        let format = if openmetrics {
            MetricsFormat::OpenMetrics
        } else {
            MetricsFormat::Text
        };
        self.render_as(snapshot, format)
    }

    fn render_as(&self, snapshot: Option<Arc<Snapshot>>, format: MetricsFormat) -> Bytes {
        let push_version = self.push.as_ref().map_or(0, |p| p.version());
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut cached[usize::from(format == MetricsFormat::OpenMetrics)];
        let same_snapshot = |r: &Rendered| match (&r.key.0, &snapshot) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if let Some(r) = slot.as_ref()
            && same_snapshot(r)
            && r.key.1 == push_version
            && r.at.elapsed() < PROCESS_REFRESH
        {
            return r.body.clone();
        }
        let key = (snapshot.clone(), push_version);
        let body = Bytes::from(encode(
            Exposition {
                snapshot,
                process: ProcessStats::read(),
                push: self.push.as_ref().map(|p| p.snapshot()),
                interval_seconds: self.interval_seconds,
            },
            format,
        ));
        *slot = Some(Rendered {
            key,
            at: Instant::now(),
            body: body.clone(),
        });
        body
    }
}

impl MetricsRender for MetricsCache {
    fn render(&self, snapshot: Option<Arc<Snapshot>>, format: MetricsFormat) -> Bytes {
        self.render_as(snapshot, format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_without_a_round_and_ends_with_eof_in_openmetrics_only() {
        let cache = MetricsCache::new(15.0, None);
        let om = cache.render(None, true);
        let om = std::str::from_utf8(&om).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("gluten_node_build_info{version="), "{om}");
        assert!(
            om.contains("# TYPE gluten_node_rounds counter\ngluten_node_rounds_total 0.0\n"),
            "{om}"
        );
        let text = cache.render(None, false);
        let text = std::str::from_utf8(&text).unwrap();
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE gluten_node_rounds_total counter\ngluten_node_rounds_total 0.0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE gluten_node_build_info gauge\ngluten_node_build_info{version="),
            "{text}"
        );
    }

    #[test]
    fn push_counters_appear_and_refresh_when_push_stats_change() {
        let stats = Arc::new(PushStats::default());
        let cache = MetricsCache::new(15.0, Some(stats.clone()));
        let body = |c: &MetricsCache| String::from_utf8(c.render(None, false).to_vec()).unwrap();
        let b = body(&cache);
        assert!(b.contains("gluten_node_push_failures_total 0.0\n"), "{b}");
        stats.record_failure();
        assert!(body(&cache).contains("gluten_node_push_failures_total 1.0\n"));
    }
}
