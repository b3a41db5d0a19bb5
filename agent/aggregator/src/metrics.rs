//! The aggregator's `/metrics`: fleet gauges from the fleet view plus this replica's counters,
//! encoded by `prometheus-client` (a `Collector` over one view), in OpenMetrics when the scraper
//! asks for it (`Accept`, q-values honoured) and the classic text format (0.0.4) otherwise.

use super::state::Counters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use proto::fleet::FleetView;
use std::sync::atomic::Ordering;

pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// (labels, value) of one family; every value here is a count.
type Samples = Vec<(Vec<(&'static str, String)>, u64)>;

/// One exposition: a fleet view and the counters' values when it was taken.
#[derive(Debug)]
struct Exposition {
    view: FleetView,
    accepted: u64,
    heartbeats: u64,
    full_reports_requested: u64,
    rejected: Vec<(&'static str, u64)>,
    refused: Vec<(&'static str, u64)>,
}

fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: Samples,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    fn one(
        kind: MetricType,
        v: u64,
        m: prometheus_client::encoding::MetricEncoder,
    ) -> std::fmt::Result {
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(m),
            _ => ConstGauge::new(v as i64).encode(m),
        }
    }
    match samples.as_slice() {
        [(labels, v)] if labels.is_empty() => one(kind, *v, m),
        _ => {
            for (labels, v) in &samples {
                one(kind, *v, m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let v = &self.view;
        let gauge = MetricType::Gauge;
        family(
            &mut enc,
            "gluten_fleet_nodes",
            "Nodes known to the aggregator, by the status of their latest report.",
            gauge,
            v.by_status
                .iter()
                .map(|(s, n)| (vec![("status", s.to_string())], *n))
                .collect(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_stale_nodes",
            "Nodes without a report within stale_after_seconds.",
            gauge,
            vec![(vec![], v.stale)],
        )?;
        family(
            &mut enc,
            "gluten_fleet_check_failing_nodes",
            "Nodes whose latest report fails the check.",
            gauge,
            v.failing_checks
                .iter()
                .map(|c| (vec![("check", c.check.clone())], c.nodes))
                .collect(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_drift_groups",
            "Distinct values of an inventory key across the fleet (1: no drift).",
            gauge,
            v.drift
                .iter()
                .map(|d| (vec![("key", d.key.clone())], d.groups.len() as u64))
                .collect(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_drift_outlier_nodes",
            "Nodes outside the majority group of an inventory key.",
            gauge,
            v.drift
                .iter()
                .map(|d| {
                    let outliers: u64 = d.groups.iter().skip(1).map(|g| g.nodes).sum();
                    (vec![("key", d.key.clone())], outliers)
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_reports_accepted",
            "Reports stored by this replica.",
            MetricType::Counter,
            vec![(vec![], self.accepted)],
        )?;
        family(
            &mut enc,
            "gluten_fleet_heartbeats_accepted",
            "Heartbeats whose digest this replica's store knew.",
            MetricType::Counter,
            vec![(vec![], self.heartbeats)],
        )?;
        family(
            &mut enc,
            "gluten_fleet_full_reports_requested",
            "Heartbeats answered with a request for the full report (digest unknown).",
            MetricType::Counter,
            vec![(vec![], self.full_reports_requested)],
        )?;
        family(
            &mut enc,
            "gluten_fleet_reports_rejected",
            "Reports refused by this replica, by reason.",
            MetricType::Counter,
            self.rejected
                .iter()
                .map(|(r, n)| (vec![("reason", r.to_string())], *n))
                .collect(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_push_refused",
            "Reports and heartbeats refused by this replica for who sent them, by reason.",
            MetricType::Counter,
            self.refused
                .iter()
                .map(|(r, n)| (vec![("reason", r.to_string())], *n))
                .collect(),
        )
    }
}

/// The `/metrics` body and its content type for `view` and `counters`.
pub fn render(view: FleetView, counters: &Counters, openmetrics: bool) -> (String, &'static str) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let exposition = Exposition {
        view,
        accepted: load(&counters.accepted),
        heartbeats: load(&counters.heartbeats),
        full_reports_requested: load(&counters.full_reports_requested),
        rejected: vec![
            ("malformed", load(&counters.malformed)),
            ("too_large", load(&counters.too_large)),
            ("unauthorized", load(&counters.unauthorized)),
            ("unprocessable", load(&counters.unprocessable)),
            ("store_error", load(&counters.store_errors)),
        ],
        refused: vec![
            ("unauthenticated", load(&counters.refused_unauthenticated)),
            ("other_node", load(&counters.refused_other_node)),
            ("max_nodes", load(&counters.refused_max_nodes)),
            ("not_json", load(&counters.refused_not_json)),
        ],
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(exposition));
    let mut out = String::with_capacity(4096);
    if openmetrics {
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        (out, CONTENT_TYPE_OPENMETRICS)
    } else {
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        (out, CONTENT_TYPE_TEXT)
    }
}

/// Whether an `Accept` header prefers OpenMetrics: `application/openmetrics-text` with a q-value
/// above 0 and at least that of any text format offered (`q=0` means "not acceptable", RFC 9110).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut om: Option<f32> = None;
    let mut other: f32 = 0.0;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if media == "application/openmetrics-text" {
            om = Some(om.map_or(q, |o| o.max(q)));
        } else if !media.is_empty() {
            other = other.max(q);
        }
    }
    om.is_some_and(|q| q > 0.0 && q >= other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::Status;
    use proto::fleet::{CheckCount, DriftDimension, DriftGroup};

    fn view() -> FleetView {
        FleetView {
            generated_at: "t".into(),
            stale_after_seconds: 45.0,
            nodes_total: 2,
            by_status: Status::ALL.iter().map(|s| (*s, 1)).collect(),
            stale: 0,
            failing_checks: vec![CheckCount {
                check: "we\"ird\\check\n".into(),
                nodes: 2,
                node_names: vec![],
                node_names_omitted: 0,
            }],
            drift: vec![DriftDimension {
                key: "v.id".into(),
                drifted: true,
                groups: vec![
                    DriftGroup {
                        value: "x".into(),
                        nodes: 2,
                        outlier: false,
                        node_names: vec![],
                        node_names_omitted: 0,
                    },
                    DriftGroup {
                        value: "y".into(),
                        nodes: 1,
                        outlier: true,
                        node_names: vec!["c".into()],
                        node_names_omitted: 0,
                    },
                ],
            }],
        }
    }

    #[test]
    fn classic_text_by_default_openmetrics_when_asked() {
        let c = Counters::default();
        c.accepted.store(3, Ordering::Relaxed);
        let (text, ct) = render(view(), &c, false);
        assert_eq!(ct, CONTENT_TYPE_TEXT);
        assert!(
            text.contains("gluten_fleet_nodes{status=\"fail\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gluten_fleet_drift_groups{key=\"v.id\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gluten_fleet_drift_outlier_nodes{key=\"v.id\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gluten_fleet_reports_accepted_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE gluten_fleet_reports_accepted_total counter"),
            "{text}"
        );
        assert!(
            text.contains(r#"gluten_fleet_check_failing_nodes{check="we\"ird\\check\n"} 2"#),
            "label values escaped: {text}"
        );
        assert!(!text.contains("# EOF"));
        let (om, ct) = render(view(), &c, true);
        assert_eq!(ct, CONTENT_TYPE_OPENMETRICS);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains("# TYPE gluten_fleet_reports_accepted counter"),
            "{om}"
        );
    }

    #[test]
    fn accept_is_parsed_with_q_values() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(wants_openmetrics(Some("Application/OpenMetrics-Text")));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text; q=0.2, text/plain"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
