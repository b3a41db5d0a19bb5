//! The aggregator's `/metrics`: fleet gauges from the fleet view plus this replica's counters,
//! encoded by `prometheus-client` (a `Collector` over one view), in OpenMetrics when the scraper
//! asks for it (`Accept`, q-values honoured) and the classic text format (0.0.4) otherwise.

use super::state::Counters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use proto::fleet::FleetView;
use serve::exposition::{Labels, MetricsFormat, family};
use std::sync::atomic::Ordering;

/// (labels, value) of one family; every value here is a count.
type Samples = Vec<(Labels, u64)>;

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
                .collect::<Samples>(),
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
                .collect::<Samples>(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_drift_groups",
            "Distinct values of an inventory key across the fleet (1: no drift).",
            gauge,
            v.drift
                .iter()
                .map(|d| (vec![("key", d.key.clone())], d.groups.len() as u64))
                .collect::<Samples>(),
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
                .collect::<Samples>(),
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
                .collect::<Samples>(),
        )?;
        family(
            &mut enc,
            "gluten_fleet_push_refused",
            "Reports and heartbeats refused by this replica for who sent them, by reason.",
            MetricType::Counter,
            self.refused
                .iter()
                .map(|(r, n)| (vec![("reason", r.to_string())], *n))
                .collect::<Samples>(),
        )
    }
}

/// The `/metrics` body and its content type for `view` and `counters`.
pub fn render(view: FleetView, counters: &Counters, format: MetricsFormat) -> String {
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
    serve::exposition::encode(Box::new(exposition), format, 4096)
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
        let text = render(view(), &c, MetricsFormat::Text);
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
        let om = render(view(), &c, MetricsFormat::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains("# TYPE gluten_fleet_reports_accepted counter"),
            "{om}"
        );
    }
}
