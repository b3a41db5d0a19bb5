//! Fleet API of the aggregator (`/api/v1/...`): what it stores and serves about many nodes.
//!
//! - `GET /api/v1/nodes` -> [`NodeList`]
//! - `GET /api/v1/nodes/{name}` -> [`NodeDetail`]
//! - `GET /api/v1/fleet` -> [`FleetView`]

use crate::{NodeReport, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Drift value of a node that lacks the dimension's key (the check that fills it did not run or
/// found nothing, e.g. no Velox library). Grouped like any other value, so such nodes show up as
/// outliers instead of vanishing from the view.
pub const ABSENT: &str = "(absent)";

/// One row of `GET /api/v1/nodes`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct NodeSummary {
    pub name: String,
    /// Status of the node's latest report.
    pub status: Status,
    /// True once no report came within `stale_after_seconds`.
    pub stale: bool,
    /// When the latest report was received (RFC 3339, UTC).
    pub last_seen: String,
    /// Names of the checks whose status is `fail` in the latest report.
    pub failing_checks: Vec<String>,
    /// Names of the checks whose status is `warn` or `unknown` in the latest report.
    #[serde(default)]
    pub warning_checks: Vec<String>,
}

/// Body of `GET /api/v1/nodes`: every node, sorted by name.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct NodeList {
    pub stale_after_seconds: f64,
    pub nodes: Vec<NodeSummary>,
}

/// One change of a check's status, as the aggregator saw it between two reports of a node.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Transition {
    pub check: String,
    /// `null`: the check was not in the node's previous report (first report, or a new check).
    pub from: Option<Status>,
    /// `null`: the check is no longer reported (disabled or removed on the node).
    pub to: Option<Status>,
    /// When the report showing the change was received (RFC 3339, UTC).
    pub at: String,
}

/// Body of `GET /api/v1/nodes/{name}`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct NodeDetail {
    pub summary: NodeSummary,
    /// The latest report, as the node sent it.
    pub report: NodeReport,
    /// Recent status changes of the node's checks, oldest first (bounded per node).
    pub transitions: Vec<Transition>,
}

/// Body of `GET /api/v1/fleet`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct FleetView {
    /// When the view was computed (RFC 3339, UTC).
    pub generated_at: String,
    pub stale_after_seconds: f64,
    pub nodes_total: u64,
    /// Nodes by the status of their latest report; every status is present. Stale nodes count
    /// under the status they last reported, and in `stale` too.
    pub by_status: BTreeMap<Status, u64>,
    /// Nodes without a report within `stale_after_seconds`.
    pub stale: u64,
    /// Checks that fail on at least one node, most nodes first.
    pub failing_checks: Vec<CheckCount>,
    /// One entry per inventory key (plus `kernel_release`), sorted by key.
    pub drift: Vec<DriftDimension>,
}

/// How many nodes fail one check.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CheckCount {
    pub check: String,
    pub nodes: u64,
    /// Up to [`FleetView`]'s name cap of the failing nodes, sorted.
    pub node_names: Vec<String>,
    /// How many failing nodes `node_names` leaves out.
    #[serde(default)]
    pub node_names_omitted: u64,
}

/// Nodes grouped by one inventory value, e.g. `velox_library.build_id`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct DriftDimension {
    /// The inventory key (`velox_library.build_id`, `cpu.flags`, ..., or `kernel_release`).
    pub key: String,
    /// True when the fleet does not agree: more than one group.
    pub drifted: bool,
    /// Largest group first; ties by value.
    pub groups: Vec<DriftGroup>,
}

/// The nodes sharing one value of a drift dimension.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct DriftGroup {
    /// The value, or [`ABSENT`] for nodes without the key.
    pub value: String,
    pub nodes: u64,
    /// False for the majority group (the largest; the first in the list), true for the rest.
    pub outlier: bool,
    /// The nodes of an outlier group (sorted, capped); empty for the majority group.
    pub node_names: Vec<String>,
    /// How many nodes of an outlier group `node_names` leaves out.
    #[serde(default)]
    pub node_names_omitted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_nulls_mean_not_reported() {
        let t: Transition =
            serde_json::from_str(r#"{"check":"numa","from":null,"to":"ok","at":"x"}"#).unwrap();
        assert_eq!(t.from, None);
        assert_eq!(t.to, Some(Status::Ok));
    }
}
