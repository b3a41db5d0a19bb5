//! Fleet API of the aggregator (`/api/v1/...`): what it stores and serves about many nodes.

use crate::Status;
use serde::{Deserialize, Serialize};

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
}
