//! Pure fleet logic of the aggregator: the serving model of one node ([`Node`]), status
//! transitions between two reports, the folding of a batch of reports into one record per node,
//! and the node list, fleet summary and drift groups computed from the stored nodes. No I/O and no
//! clock here: `now` is an argument.

use proto::fleet::{
    ABSENT, CheckCount, DriftDimension, DriftGroup, FleetView, NodeSummary, Transition,
};
use proto::{NodeReport, Status};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Most transitions kept per node (oldest dropped first).
pub const MAX_TRANSITIONS: usize = 100;
/// Most node names listed in one drift group or failing check of the fleet view.
pub const MAX_NAMES: usize = 50;
/// The drift dimension filled from `node.kernel_release` rather than the inventory.
pub const KERNEL_RELEASE: &str = "kernel_release";

/// What the aggregator keeps in memory about one node: enough to answer every list and fleet
/// request without parsing reports again.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub status: Status,
    /// Each check of the latest report with its status, in report order.
    pub checks: Vec<(String, Status)>,
    /// Drift dimensions: every inventory key, plus [`KERNEL_RELEASE`] when known.
    pub dims: Vec<(Arc<str>, Arc<str>)>,
    /// When the latest report was received, milliseconds since the epoch.
    pub last_seen_ms: i64,
    /// The latest report as compact JSON (what `/api/v1/nodes/{name}` returns).
    pub report_json: Arc<[u8]>,
    /// Oldest first, at most [`MAX_TRANSITIONS`]; shared with the next report's entry while
    /// nothing changes.
    pub transitions: Arc<Vec<Transition>>,
    /// Write number in the store (PostgreSQL's sequence; 0 for the embedded store): a newer
    /// entry is never replaced by an older one.
    pub seq: i64,
}

impl Node {
    pub fn new(
        report: &NodeReport,
        report_json: Arc<[u8]>,
        last_seen_ms: i64,
        transitions: Arc<Vec<Transition>>,
        interner: &mut Interner,
    ) -> Node {
        let mut dims: Vec<(Arc<str>, Arc<str>)> = report
            .node
            .inventory
            .iter()
            .map(|(k, v)| (interner.get(k), interner.get(v)))
            .collect();
        if let Some(k) = &report.node.kernel_release {
            dims.push((interner.get(KERNEL_RELEASE), interner.get(k)));
        }
        Node {
            name: report.node.name.clone(),
            status: report.status,
            checks: check_statuses(report),
            dims,
            last_seen_ms,
            report_json,
            transitions,
            seq: 0,
        }
    }

    pub fn is_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        now_ms - self.last_seen_ms > stale_after_ms
    }

    pub fn summary(&self, now_ms: i64, stale_after_ms: i64) -> NodeSummary {
        let names = |pred: fn(Status) -> bool| {
            self.checks
                .iter()
                .filter(|(_, s)| pred(*s))
                .map(|(n, _)| n.clone())
                .collect()
        };
        NodeSummary {
            name: self.name.clone(),
            status: self.status,
            stale: self.is_stale(now_ms, stale_after_ms),
            last_seen: rfc3339_ms(self.last_seen_ms),
            failing_checks: names(|s| s == Status::Fail),
            warning_checks: names(|s| matches!(s, Status::Warn | Status::Unknown)),
        }
    }
}

/// Shares the many identical inventory strings (`cpu.flags` is a kilobyte, the same on most
/// nodes) between nodes.
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

    /// Drops strings no node uses any more (called after garbage collection).
    pub fn retain_used(&mut self) {
        self.0.retain(|k, _| Arc::strong_count(k) > 1);
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

/// A node as persisted: what survives a restart.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub report_json: Arc<[u8]>,
    pub last_seen_ms: i64,
    pub transitions: Arc<Vec<Transition>>,
    /// Monotonic write number (PostgreSQL's sequence; 0 for the embedded store).
    pub seq: i64,
}

/// A report that passed every check, on its way to the store.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub report: NodeReport,
    /// The report as compact JSON.
    pub json: Arc<[u8]>,
}

/// The previous state of a node as the transition computation needs it.
#[derive(Clone, Default, Debug)]
pub struct Prev {
    pub checks: Vec<(String, Status)>,
    pub transitions: Arc<Vec<Transition>>,
}

/// What [`fold_batch`] makes of one node's reports in a batch.
#[derive(Debug)]
pub struct Folded {
    pub record: Record,
    /// The node's checks after the batch (the next report's "previous").
    pub checks: Vec<(String, Status)>,
    /// Index in the batch of the report the record holds (the node's last one).
    pub index: usize,
    /// Whether the batch added transitions (the store rewrites them only then).
    pub transitions_changed: bool,
}

/// Folds a batch of reports over the previous states (`prev`): one record per node, holding its
/// last report in the batch, with the transitions of every report of the batch accumulated.
/// Sorted by batch index.
pub fn fold_batch(
    batch: &[Accepted],
    now_ms: i64,
    mut prev: impl FnMut(&str) -> Option<Prev>,
) -> Vec<Folded> {
    let at = rfc3339_ms(now_ms);
    let mut folded: HashMap<&str, Folded> = HashMap::new();
    for (index, inc) in batch.iter().enumerate() {
        let name = inc.report.node.name.as_str();
        let (before, mut changed) = match folded.remove(name) {
            Some(f) => (
                Some(Prev {
                    checks: f.checks,
                    transitions: f.record.transitions,
                }),
                f.transitions_changed,
            ),
            None => (prev(name), false),
        };
        let checks = check_statuses(&inc.report);
        let new = transitions(before.as_ref().map(|p| p.checks.as_slice()), &checks, &at);
        let mut history = before.map(|p| p.transitions).unwrap_or_default();
        if !new.is_empty() {
            append_transitions(Arc::make_mut(&mut history), new);
            changed = true;
        }
        let record = Record {
            name: name.to_string(),
            report_json: inc.json.clone(),
            last_seen_ms: now_ms,
            transitions: history,
            seq: 0,
        };
        folded.insert(
            name,
            Folded {
                record,
                checks,
                index,
                transitions_changed: changed,
            },
        );
    }
    let mut out: Vec<Folded> = folded.into_values().collect();
    out.sort_by_key(|f| f.index);
    out
}

/// The fleet summary of `nodes` at `now_ms`.
pub fn fleet_view<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    now_ms: i64,
    stale_after_seconds: f64,
) -> FleetView {
    let stale_after_ms = (stale_after_seconds * 1000.0) as i64;
    let mut by_status: BTreeMap<Status, u64> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    let mut stale = 0u64;
    let mut total = 0u64;
    let mut failing: HashMap<&str, Vec<&str>> = HashMap::new();
    // key -> value -> node names.
    let mut dims: HashMap<&Arc<str>, HashMap<&Arc<str>, Vec<&str>>> = HashMap::new();
    let mut all: Vec<&Node> = Vec::new();
    for n in nodes {
        total += 1;
        *by_status.entry(n.status).or_default() += 1;
        if n.is_stale(now_ms, stale_after_ms) {
            stale += 1;
        }
        for (check, s) in &n.checks {
            if *s == Status::Fail {
                failing.entry(check).or_default().push(&n.name);
            }
        }
        for (k, v) in &n.dims {
            dims.entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .push(&n.name);
        }
        all.push(n);
    }

    let mut failing_checks: Vec<CheckCount> = failing
        .into_iter()
        .map(|(check, names)| {
            let (node_names, omitted) = capped(names);
            CheckCount {
                check: check.to_string(),
                nodes: node_names.len() as u64 + omitted,
                node_names,
                node_names_omitted: omitted,
            }
        })
        .collect();
    failing_checks.sort_by(|a, b| b.nodes.cmp(&a.nodes).then_with(|| a.check.cmp(&b.check)));

    let mut drift: Vec<DriftDimension> = dims
        .into_iter()
        .map(|(key, values)| {
            let with_key: usize = values.values().map(Vec::len).sum();
            let mut groups: Vec<(String, Vec<&str>)> = values
                .into_iter()
                .map(|(v, names)| (v.to_string(), names))
                .collect();
            if with_key < all.len() {
                // Nodes without the key form their own group.
                let absent: Vec<&str> = all
                    .iter()
                    .filter(|n| !n.dims.iter().any(|(k, _)| k == key))
                    .map(|n| n.name.as_str())
                    .collect();
                groups.push((ABSENT.to_string(), absent));
            }
            groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
            let groups: Vec<DriftGroup> = groups
                .into_iter()
                .enumerate()
                .map(|(i, (value, names))| {
                    let count = names.len() as u64;
                    let (node_names, omitted) = if i == 0 {
                        (Vec::new(), 0)
                    } else {
                        capped(names)
                    };
                    DriftGroup {
                        value,
                        nodes: count,
                        outlier: i > 0,
                        node_names,
                        node_names_omitted: omitted,
                    }
                })
                .collect();
            DriftDimension {
                key: key.to_string(),
                drifted: groups.len() > 1,
                groups,
            }
        })
        .collect();
    drift.sort_by(|a, b| a.key.cmp(&b.key));

    FleetView {
        generated_at: rfc3339_ms(now_ms),
        stale_after_seconds,
        nodes_total: total,
        by_status,
        stale,
        failing_checks,
        drift,
    }
}

/// The first [`MAX_NAMES`] names (sorted) and how many were left out.
fn capped(mut names: Vec<&str>) -> (Vec<String>, u64) {
    names.sort_unstable();
    let omitted = names.len().saturating_sub(MAX_NAMES) as u64;
    names.truncate(MAX_NAMES);
    (names.into_iter().map(str::to_string).collect(), omitted)
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    crate::time::rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CheckResult, NodeInfo, SCHEMA_VERSION};

    fn report(name: &str, checks: &[(&str, Status)], inv: &[(&str, &str)]) -> NodeReport {
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
            generated_at: "t".into(),
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

    fn node(r: &NodeReport, last_seen_ms: i64, i: &mut Interner) -> Node {
        Node::new(r, Arc::from(&b"{}"[..]), last_seen_ms, Arc::default(), i)
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
    fn fleet_view_counts_ranks_and_finds_outliers() {
        let mut i = Interner::default();
        let nodes = vec![
            node(
                &report(
                    "a",
                    &[("numa", Status::Fail), ("memory", Status::Fail)],
                    &[("v.id", "x")],
                ),
                10_000,
                &mut i,
            ),
            node(
                &report("b", &[("numa", Status::Fail)], &[("v.id", "x")]),
                10_000,
                &mut i,
            ),
            node(
                &report("c", &[("numa", Status::Ok)], &[("v.id", "y")]),
                1_000,
                &mut i,
            ),
            node(&report("d", &[("numa", Status::Warn)], &[]), 10_000, &mut i),
        ];
        let v = fleet_view(&nodes, 10_000, 2.0);
        assert_eq!(v.nodes_total, 4);
        assert_eq!(v.by_status[&Status::Fail], 2);
        assert_eq!(v.by_status[&Status::Unknown], 0);
        assert_eq!(v.stale, 1);
        assert_eq!(v.failing_checks[0].check, "numa");
        assert_eq!(v.failing_checks[0].nodes, 2);
        assert_eq!(v.failing_checks[1].check, "memory");
        let d = v.drift.iter().find(|d| d.key == "v.id").unwrap();
        assert!(d.drifted);
        assert_eq!(d.groups[0].value, "x");
        assert!(!d.groups[0].outlier && d.groups[0].node_names.is_empty());
        assert_eq!(d.groups[1].value, ABSENT);
        assert_eq!(d.groups[1].node_names, vec!["d"]);
        assert_eq!(d.groups[2].node_names, vec!["c"]);
        let k = v.drift.iter().find(|d| d.key == KERNEL_RELEASE).unwrap();
        assert!(!k.drifted);
    }

    fn accepted(name: &str, status: Status) -> Accepted {
        let report = report(name, &[("numa", status)], &[]);
        let json = Arc::from(serde_json::to_vec(&report).unwrap());
        Accepted { report, json }
    }

    #[test]
    fn a_batch_folds_per_node_and_keeps_every_transition() {
        let batch = vec![
            accepted("a", Status::Ok),
            accepted("b", Status::Ok),
            accepted("a", Status::Fail),
        ];
        let out = fold_batch(&batch, 1000, |_| None);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].record.name.as_str(), out[0].index), ("b", 1));
        let a = &out[1];
        assert_eq!(a.index, 2);
        assert!(a.transitions_changed);
        assert_eq!(a.checks[0].1, Status::Fail);
        assert_eq!(a.record.transitions.len(), 2, "{:?}", a.record.transitions);
        let again = fold_batch(&batch[2..], 2000, |_| {
            Some(Prev {
                checks: a.checks.clone(),
                transitions: a.record.transitions.clone(),
            })
        });
        assert!(!again[0].transitions_changed);
    }

    #[test]
    fn names_are_capped_with_a_count() {
        let (names, omitted) = capped((0..MAX_NAMES + 3).map(|_| "n").collect());
        assert_eq!((names.len(), omitted), (MAX_NAMES, 3));
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
