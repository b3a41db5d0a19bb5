//! Wire contract of gluten-node-agent: the node report every agent serves and pushes, and the fleet
//! API of the aggregator. Serde types only; no behaviour beyond ordering and small accessors.
//!
//! Compatibility rules:
//! - every struct accepts unknown fields, so an older reader takes a newer writer's report;
//! - a field added later gets `#[serde(default)]`;
//! - a change that an older reader would misread bumps [`SCHEMA_VERSION`]; the aggregator refuses
//!   versions it does not know with a clear error.
//!
//! Units are base units and named in the field: `_bytes`, `_seconds`; timestamps are RFC 3339 UTC
//! strings (`generated_at`, `checked_at`, `last_seen`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod fleet;

/// The version of [`NodeReport`] this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Status of one check or of a whole node.
///
/// Ordered by severity: `ok < warn < unknown < fail`. A node's status is the worst of its checks.
/// `unknown` (the check could not run: timed out, crashed, a file it needs was unreadable) ranks
/// above `warn` so it is never hidden, but below `fail`: it is not evidence of a sick node, so it
/// does not turn `/health` into a 503.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Unknown,
    Fail,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warn, Status::Unknown, Status::Fail];

    /// The lowercase wire name (`ok`, `warn`, `unknown`, `fail`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Unknown => "unknown",
            Status::Fail => "fail",
        }
    }

    /// The worst of an iterator of statuses; `ok` when it is empty.
    pub fn worst<I: IntoIterator<Item = Status>>(statuses: I) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Ok)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node's verdict: the body of the agent's `/health`, of `check --output json`, and of each
/// push to the aggregator.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct NodeReport {
    pub schema_version: u32,
    pub node: NodeInfo,
    /// Worst status of `checks`.
    pub status: Status,
    /// When the round that produced this report finished (RFC 3339, UTC).
    pub generated_at: String,
    pub checks: Vec<CheckResult>,
}

impl NodeReport {
    /// The result of the check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Who sent the report.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug, Default)]
pub struct NodeInfo {
    /// Config `node_name`, else `NODE_NAME`, else the hostname.
    pub name: String,
    pub agent_version: String,
    /// `/proc/sys/kernel/random/boot_id` of the host; `null` when unreadable.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// `/proc/sys/kernel/osrelease` of the host; `null` when unreadable.
    #[serde(default)]
    pub kernel_release: Option<String>,
    /// Machine architecture as the kernel names it (`x86_64`, `aarch64`).
    #[serde(default)]
    pub arch: Option<String>,
    /// What the fleet should agree on, as `key -> value` (for example
    /// `velox_library.build_id`, `cpu.flags`, `hugepages.thp_enabled`). The aggregator groups
    /// nodes by each key to find drift. Filled by the checks; keys are stable.
    #[serde(default)]
    pub inventory: BTreeMap<String, String>,
}

/// The result of one check in one round.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CheckResult {
    /// Stable snake_case name: `velox_library`, `hugepages`, `numa`, `scratch`, `memory`.
    pub name: String,
    /// The status reported (after flap damping, when configured).
    pub status: Status,
    /// One human sentence.
    pub summary: String,
    pub duration_seconds: f64,
    /// When this result was produced (RFC 3339, UTC).
    pub checked_at: String,
    pub findings: Vec<Finding>,
    /// What was observed, in base units (bytes, seconds, counts). Shape per check; documented in
    /// the README's check table. `null` when the check could not run.
    #[serde(default)]
    pub facts: serde_json::Value,
    /// The status this round observed, when flap damping reports another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_status: Option<Status>,
}

/// One observation that moved a check away from `ok`, or that is worth saying when it is `ok`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct Finding {
    pub status: Status,
    /// A sentence naming the observed value and the threshold, e.g. "libvelox.so needs avx2,
    /// bmi2: not in /proc/cpuinfo flags".
    pub message: String,
    /// What the finding is about (a path, a dir, a pool), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A stable id of the rule that produced the finding (e.g. `memory.offheap_disabled`), when
    /// the check names one. With the status (never the sentence, which carries live numbers) it
    /// is what the fleet digest ([`fleet::report_digest`]) sees of a finding; without it, the
    /// subject is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Finding {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Finding {
            status,
            message: message.into(),
            subject: None,
            rule: None,
        }
    }

    /// Names the rule that produced the finding (see [`Finding::rule`]).
    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// Error body of every JSON API error (agent and aggregator).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct ApiError {
    pub error: String,
    /// Extra machine-readable detail, e.g. the valid check names for an unknown one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Vec<String>>,
}

/// Whether `name` is a node name reports may carry: 1 to 253 bytes of ASCII letters, digits,
/// `.`, `_` and `-` (a DNS name or a Kubernetes node name), and not `.` or `..`, which no URL
/// path can address. The agent checks its configured name with it; the aggregator checks
/// every report.
pub fn valid_node_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_addressable_dns_like_names() {
        for ok in [
            "worker-1",
            "ip-10-0-0-1.ec2.internal",
            "a",
            "n_1",
            "...",
            ".a",
        ] {
            assert!(valid_node_name(ok), "{ok}");
        }
        for bad in [".", "..", "", "a/b", "a b", "ünï", &"a".repeat(254)] {
            assert!(!valid_node_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn status_orders_by_severity() {
        assert!(Status::Ok < Status::Warn);
        assert!(Status::Warn < Status::Unknown);
        assert!(Status::Unknown < Status::Fail);
        assert_eq!(Status::worst([Status::Warn, Status::Ok]), Status::Warn);
        assert_eq!(Status::worst([Status::Unknown, Status::Fail]), Status::Fail);
        assert_eq!(Status::worst([]), Status::Ok);
    }

    #[test]
    fn status_is_lowercase_on_the_wire() {
        for s in Status::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let json = r#"{"status":"warn","message":"m","extra_from_a_newer_agent":1}"#;
        let f: Finding = serde_json::from_str(json).unwrap();
        assert_eq!(f.status, Status::Warn);
    }
}
