//! Fleet API of the aggregator (`/api/v1/...`): what it stores and serves about many nodes.
//!
//! - `POST /api/v1/reports` <- [`NodeReport`] (protocol 1 and 2)
//! - `POST /api/v1/heartbeats` <- [`Heartbeat`] -> [`HeartbeatReply`] (protocol 2)
//! - `GET /api/v1/nodes` -> [`NodeList`] (paged)
//! - `GET /api/v1/nodes/{name}` -> [`NodeDetail`]
//! - `GET /api/v1/fleet` -> [`FleetView`]
//! - `GET /api/v1/fleet/history` -> [`FleetHistory`]
//!
//! Push protocol versions: **1**, the agent pushes its full report every time; **2**, the
//! aggregator says it speaks 2 in the [`PROTOCOL_HEADER`] of its answer to a report, and from
//! then on the agent sends a [`Heartbeat`] carrying the [`report_digest`] of its report while that
//! digest is one the aggregator acknowledged, the full report (gzip-compressed above a small size)
//! when the digest changes, when the aggregator answers `full_report_required`, and at least every
//! few minutes anyway. An aggregator speaking 2 takes protocol 1 agents unchanged; an agent
//! speaking 2 never sends a heartbeat to an aggregator that did not announce 2.

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

/// Body of `GET /api/v1/nodes`: one page of nodes, sorted by name.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct NodeList {
    pub stale_after_seconds: f64,
    pub nodes: Vec<NodeSummary>,
    /// Opaque cursor of the next page (`?cursor=`), present when more nodes match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
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

/// The push protocol this crate speaks (see the module documentation).
pub const PROTOCOL_VERSION: u32 = 2;

/// Response header by which an aggregator announces the push protocol it speaks.
pub const PROTOCOL_HEADER: &str = "gluten-fleet-protocol";

/// Body of `POST /api/v1/heartbeats`: "my report has not changed since the one with this digest".
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Heartbeat {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol: u32,
    /// The node's name, as in its reports.
    pub node: String,
    /// [`report_digest`] of the node's current report.
    pub digest: String,
    /// When the agent sent it (RFC 3339, UTC).
    pub sent_at: String,
}

/// Answer (200) to a heartbeat.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct HeartbeatReply {
    /// True when the aggregator does not know the digest (or the node): send the full report now.
    pub full_report_required: bool,
    /// Why a full report is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One point of the fleet's status over time.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct HistoryPoint {
    /// When it was sampled (RFC 3339, UTC).
    pub at: String,
    pub by_status: BTreeMap<Status, u64>,
    pub stale: u64,
}

/// Body of `GET /api/v1/fleet/history`: the fleet's status counts over the last 24 hours, oldest
/// first, one point per sampling interval (kept in memory by each replica).
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct FleetHistory {
    pub interval_seconds: f64,
    pub points: Vec<HistoryPoint>,
}

/// The digest of what the fleet acts on in a report: the node status, each check's name and
/// status, each finding's status and rule (its subject when it names no rule), the inventory,
/// the kernel release, architecture and agent version. Never the sentences (they carry live
/// numbers), timestamps, durations or facts. Two reports with the same digest look the same to
/// the aggregator. `v1-` and 32 hex digits (two independent 64-bit FNV-1a hashes).
pub fn report_digest(r: &NodeReport) -> String {
    let mut h = Digest::default();
    h.field(r.node.name.as_bytes());
    h.field(r.node.agent_version.as_bytes());
    h.opt(r.node.kernel_release.as_deref());
    h.opt(r.node.arch.as_deref());
    h.field(r.status.as_str().as_bytes());
    h.count(r.node.inventory.len());
    for (k, v) in &r.node.inventory {
        h.field(k.as_bytes());
        h.field(v.as_bytes());
    }
    h.count(r.checks.len());
    for c in &r.checks {
        h.field(c.name.as_bytes());
        h.field(c.status.as_str().as_bytes());
        h.count(c.findings.len());
        for f in &c.findings {
            h.field(f.status.as_str().as_bytes());
            h.opt(f.rule.as_deref().or(f.subject.as_deref()));
        }
    }
    format!("v1-{:016x}{:016x}", h.a, h.b)
}

/// Two FNV-1a 64 hashes with different offset bases over length-prefixed fields.
struct Digest {
    a: u64,
    b: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x6c62_272e_07bb_0142,
        }
    }
}

impl Digest {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn bytes(&mut self, bytes: &[u8]) {
        for &x in bytes {
            self.a = (self.a ^ x as u64).wrapping_mul(Self::PRIME);
            self.b = (self.b ^ x.rotate_left(3) as u64).wrapping_mul(Self::PRIME);
        }
    }

    fn count(&mut self, n: usize) {
        self.bytes(&(n as u64).to_le_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.bytes(bytes);
    }

    fn opt(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.bytes(&[1]);
                self.field(s.as_bytes());
            }
            None => self.bytes(&[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckResult, Finding, NodeInfo, SCHEMA_VERSION};

    fn report() -> NodeReport {
        NodeReport {
            schema_version: SCHEMA_VERSION,
            node: NodeInfo {
                name: "w1".into(),
                agent_version: "0.1.0".into(),
                kernel_release: Some("6.1".into()),
                inventory: [("cpu.flags".to_string(), "avx2".to_string())].into(),
                ..Default::default()
            },
            status: Status::Warn,
            generated_at: "2026-11-23T10:15:00Z".into(),
            checks: vec![CheckResult {
                name: "memory".into(),
                status: Status::Warn,
                summary: "MemAvailable 3.1 GiB".into(),
                duration_seconds: 0.01,
                checked_at: "2026-11-23T10:15:00Z".into(),
                findings: vec![Finding::new(Status::Warn, "MemAvailable 3.1 GiB < 4 GiB")],
                facts: serde_json::json!({"mem_available_bytes": 3}),
                observed_status: None,
            }],
        }
    }

    #[test]
    fn the_digest_ignores_sentences_times_and_facts_and_sees_what_the_fleet_acts_on() {
        let a = report();
        let d = report_digest(&a);
        assert!(d.starts_with("v1-") && d.len() == 35, "{d}");
        let mut live = a.clone();
        live.generated_at = "2026-11-23T10:16:00Z".into();
        live.checks[0].summary = "MemAvailable 3.0 GiB".into();
        live.checks[0].findings[0].message = "MemAvailable 3.0 GiB < 4 GiB".into();
        live.checks[0].duration_seconds = 0.5;
        live.checks[0].checked_at = "x".into();
        live.checks[0].facts = serde_json::json!({"mem_available_bytes": 2});
        live.node.boot_id = Some("b".into());
        assert_eq!(report_digest(&live), d);
        type Change = Box<dyn Fn(&mut NodeReport)>;
        let changes: Vec<Change> = vec![
            Box::new(|r| r.status = Status::Fail),
            Box::new(|r| r.checks[0].status = Status::Ok),
            Box::new(|r| r.checks[0].name = "numa".into()),
            Box::new(|r| r.checks[0].findings[0].status = Status::Fail),
            Box::new(|r| r.checks[0].findings[0].rule = Some("memory.low".into())),
            Box::new(|r| r.checks[0].findings.clear()),
            Box::new(|r| {
                r.node
                    .inventory
                    .insert("cpu.flags".into(), "avx2 bmi2".into());
            }),
            Box::new(|r| r.node.kernel_release = None),
            Box::new(|r| r.node.name = "w2".into()),
            Box::new(|r| r.checks.clear()),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut r = a.clone();
            change(&mut r);
            assert_ne!(report_digest(&r), d, "change {i} is not seen");
        }
    }

    #[test]
    fn transition_nulls_mean_not_reported() {
        let t: Transition =
            serde_json::from_str(r#"{"check":"numa","from":null,"to":"ok","at":"x"}"#).unwrap();
        assert_eq!(t.from, None);
        assert_eq!(t.to, Some(Status::Ok));
    }
}
