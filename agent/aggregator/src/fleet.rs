//! Pure fleet logic of the aggregator: what it keeps of a report ([`Summary`], persisted, and
//! [`Node`], in memory), status transitions between two reports, and the folding of a batch of
//! reports into one write per node. No I/O and no clock here: `now` is an argument. The fleet
//! view and the node list are computed from the index in [`super::index`].

use proto::fleet::{NodeSummary, Transition};
use proto::{NodeReport, Status};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Most transitions kept per node (oldest dropped first).
pub const MAX_TRANSITIONS: usize = 100;
/// Most node names listed in one drift group or failing check of the fleet view.
pub const MAX_NAMES: usize = 50;
/// The drift dimension filled from `node.kernel_release` rather than the inventory.
pub const KERNEL_RELEASE: &str = "kernel_release";

/// What the aggregator keeps of a report besides the report itself: enough to answer every list
/// and fleet request without the report. Persisted next to the report (JSON), so a restart or a
/// replica never parses full reports.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Summary {
    pub status: Status,
    /// Each check with its status, in report order.
    pub checks: Vec<(String, Status)>,
    /// Drift dimensions sorted by key: every inventory key, plus [`KERNEL_RELEASE`] when known.
    pub dims: Vec<(String, String)>,
    /// [`proto::fleet::report_digest`] of the report.
    pub digest: String,
}

impl Summary {
    pub fn of(report: &NodeReport) -> Summary {
        let mut dims: Vec<(String, String)> = report
            .node
            .inventory
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(k) = &report.node.kernel_release
            && !report.node.inventory.contains_key(KERNEL_RELEASE)
        {
            dims.push((KERNEL_RELEASE.to_string(), k.clone()));
            dims.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Summary {
            status: report.status,
            checks: check_statuses(report),
            dims,
            digest: proto::fleet::report_digest(report),
        }
    }
}

/// What the aggregator keeps in memory about one node (a few hundred bytes: strings other nodes
/// share are interned).
#[derive(Debug, Clone)]
pub struct Node {
    pub name: Arc<str>,
    pub status: Status,
    pub checks: Vec<(Arc<str>, Status)>,
    /// Sorted by key.
    pub dims: Vec<(Arc<str>, Arc<str>)>,
    /// When the latest report or heartbeat was received, ms since the epoch.
    pub last_seen_ms: i64,
    pub digest: Arc<str>,
    /// Write number in the store of the latest change of any kind (PostgreSQL's sequence; 0 for
    /// the embedded store): a newer entry is never replaced by an older one.
    pub seq: i64,
    /// Write number of the latest report (PostgreSQL: the conditional update's key).
    pub report_seq: i64,
}

impl Node {
    pub fn new(name: &str, s: &Summary, last_seen_ms: i64, interner: &mut Interner) -> Node {
        Node {
            name: Arc::from(name),
            status: s.status,
            checks: s
                .checks
                .iter()
                .map(|(c, st)| (interner.get(c), *st))
                .collect(),
            dims: s
                .dims
                .iter()
                .map(|(k, v)| (interner.get(k), interner.get(v)))
                .collect(),
            last_seen_ms,
            digest: Arc::from(s.digest.as_str()),
            seq: 0,
            report_seq: 0,
        }
    }

    pub fn is_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        now_ms - self.last_seen_ms > stale_after_ms
    }

    /// The node's value of a drift key.
    pub fn dim(&self, key: &str) -> Option<&Arc<str>> {
        self.dims
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &self.dims[i].1)
    }

    pub fn summary(&self, now_ms: i64, stale_after_ms: i64) -> NodeSummary {
        let names = |pred: fn(Status) -> bool| {
            self.checks
                .iter()
                .filter(|(_, s)| pred(*s))
                .map(|(n, _)| n.to_string())
                .collect()
        };
        NodeSummary {
            name: self.name.to_string(),
            status: self.status,
            stale: self.is_stale(now_ms, stale_after_ms),
            last_seen: rfc3339_ms(self.last_seen_ms),
            failing_checks: names(|s| s == Status::Fail),
            warning_checks: names(|s| matches!(s, Status::Warn | Status::Unknown)),
        }
    }
}

/// Shares the many identical strings (`cpu.flags` is a kilobyte, the same on most nodes; check
/// names) between nodes.
#[derive(Debug, Default)]
pub struct Interner(HashMap<Arc<str>, ()>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some((k, _)) = self.0.get_key_value(s) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(s);
        self.0.insert(k.clone(), ());
        k
    }

    /// Drops strings no node uses any more.
    pub fn retain_used(&mut self) {
        self.0.retain(|k, _| Arc::strong_count(k) > 1);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Each check's name and status, in report order.
pub fn check_statuses(report: &NodeReport) -> Vec<(String, Status)> {
    report
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.status))
        .collect()
}

/// The status changes from `prev` (the previous report's checks; `None` for a node's first
/// report) to `next`, stamped `at`.
pub fn transitions(
    prev: Option<&[(String, Status)]>,
    next: &[(String, Status)],
    at: &str,
) -> Vec<Transition> {
    let prev = prev.unwrap_or(&[]);
    let before = |name: &str| prev.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    let mut out: Vec<Transition> = next
        .iter()
        .filter_map(|(name, to)| {
            let from = before(name);
            (from != Some(*to)).then(|| Transition {
                check: name.clone(),
                from,
                to: Some(*to),
                at: at.to_string(),
            })
        })
        .collect();
    for (name, from) in prev {
        if !next.iter().any(|(n, _)| n == name) {
            out.push(Transition {
                check: name.clone(),
                from: Some(*from),
                to: None,
                at: at.to_string(),
            });
        }
    }
    out
}

/// Appends `new` to `history`, keeping the last [`MAX_TRANSITIONS`].
pub fn append_transitions(history: &mut Vec<Transition>, new: Vec<Transition>) {
    history.extend(new);
    if history.len() > MAX_TRANSITIONS {
        history.drain(..history.len() - MAX_TRANSITIONS);
    }
}

/// A node as read back from the store.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    /// `None` when only `last_seen_ms` changed since the reader's watermark (a heartbeat).
    pub summary: Option<Summary>,
    pub last_seen_ms: i64,
    pub seq: i64,
    pub report_seq: i64,
}

/// A report that passed every check, on its way to the store.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub report: NodeReport,
    /// The report as compact JSON.
    pub json: Arc<[u8]>,
    pub summary: Summary,
}

impl Accepted {
    pub fn new(report: NodeReport, json: Arc<[u8]>) -> Accepted {
        let summary = Summary::of(&report);
        Accepted {
            report,
            json,
            summary,
        }
    }
}

/// A heartbeat on its way to the store: "`node`'s report still has `digest`".
#[derive(Debug, Clone)]
pub struct Beat {
    pub node: String,
    pub digest: String,
}

/// The previous state of a node as the transition computation needs it.
#[derive(Clone, Default, Debug)]
pub struct Prev {
    pub checks: Vec<(String, Status)>,
    /// The write number of the report `checks` come from (0: no report stored).
    pub report_seq: i64,
}

/// What [`fold_batch`] makes of one node's reports in a batch: one write.
#[derive(Debug, Clone)]
pub struct Folded {
    pub name: String,
    /// The node's last report in the batch.
    pub json: Arc<[u8]>,
    pub summary: Summary,
    /// Transitions of every report of the batch, oldest first.
    pub new_transitions: Vec<Transition>,
    pub last_seen_ms: i64,
    /// Index in the batch of the report written (the node's last one).
    pub index: usize,
    /// The `report_seq` the transitions were computed against (a conditional write's key).
    pub prev_report_seq: i64,
    /// Filled by the store once written.
    pub seq: i64,
    pub report_seq: i64,
}

/// Folds a batch of reports over the previous states (`prev`): one write per node, holding its
/// last report in the batch, with the transitions of every report of the batch accumulated.
/// Sorted by batch index.
pub fn fold_batch<'a>(
    batch: impl IntoIterator<Item = (usize, &'a Accepted)>,
    now_ms: i64,
    mut prev: impl FnMut(&str) -> Option<Prev>,
) -> Vec<Folded> {
    let at = rfc3339_ms(now_ms);
    let mut folded: HashMap<&str, Folded> = HashMap::new();
    for (index, inc) in batch {
        let name = inc.report.node.name.as_str();
        let (before, prev_report_seq, mut new_transitions) = match folded.remove(name) {
            Some(f) => (Some(f.summary.checks), f.prev_report_seq, f.new_transitions),
            None => match prev(name) {
                Some(p) => (Some(p.checks), p.report_seq, Vec::new()),
                None => (None, 0, Vec::new()),
            },
        };
        new_transitions.extend(transitions(before.as_deref(), &inc.summary.checks, &at));
        folded.insert(
            name,
            Folded {
                name: name.to_string(),
                json: inc.json.clone(),
                summary: inc.summary.clone(),
                new_transitions,
                last_seen_ms: now_ms,
                index,
                prev_report_seq,
                seq: 0,
                report_seq: 0,
            },
        );
    }
    let mut out: Vec<Folded> = folded.into_values().collect();
    out.sort_by_key(|f| f.index);
    out
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    common::time::rfc3339(t)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proto::{CheckResult, NodeInfo, SCHEMA_VERSION};

    pub(crate) fn report(
        name: &str,
        checks: &[(&str, Status)],
        inv: &[(&str, &str)],
    ) -> NodeReport {
        NodeReport {
            schema_version: SCHEMA_VERSION,
            node: NodeInfo {
                name: name.into(),
                agent_version: "t".into(),
                kernel_release: Some("6.1".into()),
                inventory: inv
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
            status: Status::worst(checks.iter().map(|c| c.1)),
            generated_at: "2026-11-23T10:15:00Z".into(),
            checks: checks
                .iter()
                .map(|(n, s)| CheckResult {
                    name: n.to_string(),
                    status: *s,
                    summary: String::new(),
                    duration_seconds: 0.0,
                    checked_at: "t".into(),
                    findings: vec![],
                    facts: serde_json::Value::Null,
                    observed_status: None,
                })
                .collect(),
        }
    }

    pub(crate) fn accepted(name: &str, status: Status) -> Accepted {
        let report = report(name, &[("numa", status)], &[]);
        let json = Arc::from(serde_json::to_vec(&report).unwrap());
        Accepted::new(report, json)
    }

    #[test]
    fn transitions_name_from_and_to() {
        let a = vec![
            ("numa".to_string(), Status::Ok),
            ("memory".into(), Status::Ok),
        ];
        let b = vec![
            ("numa".to_string(), Status::Fail),
            ("scratch".into(), Status::Ok),
        ];
        let first = transitions(None, &a, "t0");
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|t| t.from.is_none()));
        let t = transitions(Some(&a), &b, "t1");
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!((t[0].from, t[0].to), (Some(Status::Ok), Some(Status::Fail)));
        assert_eq!((t[1].check.as_str(), t[1].from), ("scratch", None));
        assert_eq!((t[2].check.as_str(), t[2].to), ("memory", None));
        assert!(transitions(Some(&b), &b, "t2").is_empty());
    }

    #[test]
    fn transitions_are_bounded() {
        let mut h = Vec::new();
        for i in 0..MAX_TRANSITIONS + 7 {
            append_transitions(
                &mut h,
                transitions(None, &[(format!("c{i}"), Status::Ok)], "t"),
            );
        }
        assert_eq!(h.len(), MAX_TRANSITIONS);
        assert_eq!(h[0].check, "c7");
    }

    #[test]
    fn a_batch_folds_per_node_and_keeps_every_transition() {
        let batch = [
            accepted("a", Status::Ok),
            accepted("b", Status::Ok),
            accepted("a", Status::Fail),
        ];
        let out = fold_batch(batch.iter().enumerate(), 1000, |_| None);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].name.as_str(), out[0].index), ("b", 1));
        let a = &out[1];
        assert_eq!(a.index, 2);
        assert_eq!(a.summary.checks[0].1, Status::Fail);
        assert_eq!(a.new_transitions.len(), 2, "{:?}", a.new_transitions);
        assert_eq!(a.prev_report_seq, 0);
        let again = fold_batch(batch[2..].iter().enumerate(), 2000, |_| {
            Some(Prev {
                checks: a.summary.checks.clone(),
                report_seq: 7,
            })
        });
        assert!(again[0].new_transitions.is_empty());
        assert_eq!(again[0].prev_report_seq, 7);
    }

    #[test]
    fn summary_sorts_dims_with_the_kernel_release_and_node_looks_them_up() {
        let r = report("a", &[("numa", Status::Ok)], &[("z.k", "1"), ("a.k", "2")]);
        let s = Summary::of(&r);
        let keys: Vec<&str> = s.dims.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a.k", KERNEL_RELEASE, "z.k"]);
        let mut i = Interner::default();
        let n = Node::new("a", &s, 5, &mut i);
        assert_eq!(n.dim("z.k").map(|v| &**v), Some("1"));
        assert_eq!(n.dim("missing"), None);
    }

    #[test]
    fn interner_shares_and_forgets() {
        let mut i = Interner::default();
        let a = i.get("avx2 bmi2");
        let b = i.get("avx2 bmi2");
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        i.retain_used();
        assert!(i.0.is_empty());
    }
}
