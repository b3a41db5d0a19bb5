//! The fleet index: every node's [`Node`] sorted by name, plus the aggregates the fleet view
//! needs (counts by status, failing nodes per check, nodes per inventory value), kept up to date
//! on every insert and removal, so `/api/v1/fleet` costs a walk over the groups rather than over
//! every node's inventory, and `/api/v1/nodes` pages through a sorted map. Pure: no locks, no
//! clock.
//!
//! Architecture invariant: the aggregates are a function of `nodes`; only [`FleetIndex::insert`]
//! and [`FleetIndex::remove`] change either, together (a test compares them with a recount).
//! Distinct check names and inventory keys tracked fleet-wide are capped ([`MAX_FLEET_CHECKS`],
//! [`MAX_FLEET_KEYS`]), so neither the view nor `/metrics` grows with what reports invent.

use super::fleet::{MAX_NAMES, Node, rfc3339_ms};
use proto::Status;
use proto::fleet::{ABSENT, CheckCount, DriftDimension, DriftGroup, FleetView, NodeSummary};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// Most distinct check names the fleet view tracks (further ones are not counted).
pub const MAX_FLEET_CHECKS: usize = 256;
/// Most distinct inventory keys the drift view tracks (further ones are not grouped).
pub const MAX_FLEET_KEYS: usize = 256;
/// Default and largest page of `/api/v1/nodes`.
pub const DEFAULT_PAGE: usize = 500;
pub const MAX_PAGE: usize = 5000;

type Names = BTreeSet<Arc<str>>;

#[derive(Debug, Default)]
pub struct FleetIndex {
    nodes: BTreeMap<Arc<str>, Node>,
    by_status: [u64; 4],
    failing: HashMap<Arc<str>, Names>,
    dims: HashMap<Arc<str>, HashMap<Arc<str>, Names>>,
    /// Changes with every insert or removal.
    version: u64,
}

fn slot(s: Status) -> usize {
    match s {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Unknown => 2,
        Status::Fail => 3,
    }
}

impl FleetIndex {
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Inserts or replaces a node.
    pub fn insert(&mut self, node: Node) {
        self.remove(&node.name.clone());
        self.by_status[slot(node.status)] += 1;
        for (check, s) in &node.checks {
            if *s == Status::Fail
                && (self.failing.contains_key(check) || self.failing.len() < MAX_FLEET_CHECKS)
            {
                self.failing
                    .entry(check.clone())
                    .or_default()
                    .insert(node.name.clone());
            }
        }
        for (k, v) in &node.dims {
            if self.dims.contains_key(k) || self.dims.len() < MAX_FLEET_KEYS {
                self.dims
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .insert(node.name.clone());
            }
        }
        self.nodes.insert(node.name.clone(), node);
        self.version += 1;
    }

    /// Changes a node's `last_seen_ms` and `seq` (a heartbeat): no aggregate depends on them.
    pub fn touch(&mut self, name: &str, last_seen_ms: i64, seq: i64) -> bool {
        match self.nodes.get_mut(name) {
            Some(n) => {
                n.last_seen_ms = n.last_seen_ms.max(last_seen_ms);
                n.seq = n.seq.max(seq);
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Node> {
        let node = self.nodes.remove(name)?;
        self.by_status[slot(node.status)] -= 1;
        for (check, s) in &node.checks {
            if *s == Status::Fail
                && let Some(set) = self.failing.get_mut(check)
            {
                set.remove(name);
                if set.is_empty() {
                    self.failing.remove(check);
                }
            }
        }
        for (k, v) in &node.dims {
            if let Some(values) = self.dims.get_mut(k) {
                if let Some(set) = values.get_mut(v) {
                    set.remove(name);
                    if set.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.dims.remove(k);
                }
            }
        }
        self.version += 1;
        Some(node)
    }

    /// The fleet summary at `now_ms`.
    pub fn view(&self, now_ms: i64, stale_after_seconds: f64) -> FleetView {
        let stale_after_ms = (stale_after_seconds * 1000.0) as i64;
        let total = self.nodes.len() as u64;
        let stale = self
            .nodes
            .values()
            .filter(|n| n.is_stale(now_ms, stale_after_ms))
            .count() as u64;
        let by_status = Status::ALL
            .iter()
            .map(|s| (*s, self.by_status[slot(*s)]))
            .collect();

        let mut failing_checks: Vec<CheckCount> = self
            .failing
            .iter()
            .map(|(check, names)| {
                let (node_names, omitted) = capped(names.iter());
                CheckCount {
                    check: check.to_string(),
                    nodes: names.len() as u64,
                    node_names,
                    node_names_omitted: omitted,
                }
            })
            .collect();
        failing_checks.sort_by(|a, b| b.nodes.cmp(&a.nodes).then_with(|| a.check.cmp(&b.check)));

        // Groups per key, largest first; the names of an outlier "absent" group need one walk.
        let mut drift: Vec<(DriftDimension, Option<usize>)> = Vec::with_capacity(self.dims.len());
        for (key, values) in &self.dims {
            let with_key: u64 = values.values().map(|s| s.len() as u64).sum();
            let mut groups: Vec<(&str, u64, Option<&Names>)> = values
                .iter()
                .map(|(v, names)| (&**v, names.len() as u64, Some(names)))
                .collect();
            if with_key < total {
                groups.push((ABSENT, total - with_key, None));
            }
            groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let mut absent_at = None;
            let groups: Vec<DriftGroup> = groups
                .into_iter()
                .enumerate()
                .map(|(i, (value, count, names))| {
                    let (node_names, omitted) = match (i, names) {
                        (0, _) => (Vec::new(), 0),
                        (_, Some(names)) => capped(names.iter()),
                        (_, None) => {
                            absent_at = Some(i);
                            (Vec::new(), count.saturating_sub(MAX_NAMES as u64))
                        }
                    };
                    DriftGroup {
                        value: value.to_string(),
                        nodes: count,
                        outlier: i > 0,
                        node_names,
                        node_names_omitted: omitted,
                    }
                })
                .collect();
            drift.push((
                DriftDimension {
                    key: key.to_string(),
                    drifted: groups.len() > 1,
                    groups,
                },
                absent_at,
            ));
        }
        self.fill_absent_names(&mut drift);
        let mut drift: Vec<DriftDimension> = drift.into_iter().map(|(d, _)| d).collect();
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

    /// Names (sorted, capped) of the nodes lacking a key, for every key whose "absent" group is
    /// an outlier: one walk over the nodes, stopping once every such group is full.
    fn fill_absent_names(&self, drift: &mut [(DriftDimension, Option<usize>)]) {
        let mut wanted: Vec<(&mut DriftGroup, &str)> = drift
            .iter_mut()
            .filter_map(|(d, at)| {
                let at = (*at)?;
                Some((&mut d.groups[at], &d.key))
            })
            .map(|(g, k)| (g, k.as_str()))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let mut open = wanted.len();
        for n in self.nodes.values() {
            for (g, key) in wanted.iter_mut() {
                if g.node_names.len() < MAX_NAMES && n.dim(key).is_none() {
                    g.node_names.push(n.name.to_string());
                    if g.node_names.len() == MAX_NAMES {
                        open -= 1;
                    }
                }
            }
            if open == 0 {
                break;
            }
        }
    }

    /// One page of the node list: nodes matching `q` after its cursor, and the cursor of the
    /// next page when more match.
    pub fn page(
        &self,
        q: &NodeQuery,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> (Vec<NodeSummary>, Option<String>) {
        let prefix = q.prefix.as_deref().unwrap_or("");
        let start = match &q.after {
            Some(after) if **after >= *prefix => Bound::Excluded(after.as_str()),
            _ => Bound::Included(prefix),
        };
        let mut out = Vec::new();
        let mut next = None;
        for n in self
            .nodes
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(_, n)| n)
        {
            if !q.matches(n, now_ms, stale_after_ms) {
                continue;
            }
            if out.len() == q.limit {
                next = out.last().map(|s: &NodeSummary| encode_cursor(&s.name));
                break;
            }
            out.push(n.summary(now_ms, stale_after_ms));
        }
        (out, next)
    }
}

/// The first [`MAX_NAMES`] names (the set is sorted) and how many were left out.
fn capped<'a>(names: impl ExactSizeIterator<Item = &'a Arc<str>>) -> (Vec<String>, u64) {
    let omitted = names.len().saturating_sub(MAX_NAMES) as u64;
    (
        names.take(MAX_NAMES).map(|n| n.to_string()).collect(),
        omitted,
    )
}

/// The filters and position of one `/api/v1/nodes` request.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeQuery {
    pub limit: usize,
    /// Names strictly after this one (decoded from the cursor).
    pub after: Option<String>,
    pub status: Option<Status>,
    pub stale: Option<bool>,
    /// Nodes on which this check is not `ok`.
    pub check: Option<String>,
    pub prefix: Option<String>,
}

impl Default for NodeQuery {
    fn default() -> Self {
        NodeQuery {
            limit: DEFAULT_PAGE,
            after: None,
            status: None,
            stale: None,
            check: None,
            prefix: None,
        }
    }
}

impl NodeQuery {
    /// Parses the query string of `/api/v1/nodes`; the error names the parameter.
    pub fn parse(query: Option<&str>) -> Result<NodeQuery, String> {
        let mut q = NodeQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)
                .ok_or_else(|| format!("query parameter `{k}`: bad percent-encoding"))?;
            match k {
                "limit" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| format!("query parameter `limit`: {v:?} is not a number"))?;
                    if !(1..=MAX_PAGE).contains(&n) {
                        return Err(format!(
                            "query parameter `limit`: {n} is not between 1 and {MAX_PAGE}"
                        ));
                    }
                    q.limit = n;
                }
                "cursor" => {
                    q.after = Some(decode_cursor(&v).ok_or_else(|| {
                        "query parameter `cursor`: not a cursor this aggregator returned"
                            .to_string()
                    })?)
                }
                "status" => q.status = Some(
                    Status::ALL
                        .into_iter()
                        .find(|s| s.as_str() == v)
                        .ok_or_else(|| {
                            format!(
                                "query parameter `status`: {v:?} is not ok, warn, unknown or fail"
                            )
                        })?,
                ),
                "stale" => {
                    q.stale = Some(match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(format!(
                                "query parameter `stale`: {v:?} is not true or false"
                            ));
                        }
                    })
                }
                "check" => q.check = Some(v),
                "prefix" => q.prefix = Some(v),
                _ => {
                    return Err(format!(
                        "unknown query parameter `{k}` (limit, cursor, status, stale, check, prefix)"
                    ));
                }
            }
        }
        Ok(q)
    }

    fn matches(&self, n: &Node, now_ms: i64, stale_after_ms: i64) -> bool {
        self.status.is_none_or(|s| n.status == s)
            && self
                .stale
                .is_none_or(|s| n.is_stale(now_ms, stale_after_ms) == s)
            && self.check.as_deref().is_none_or(|c| {
                n.checks
                    .iter()
                    .any(|(name, s)| **name == *c && *s != Status::Ok)
            })
    }
}

/// The opaque cursor of a page ending at `name`.
pub fn encode_cursor(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(c: &str) -> Option<String> {
    if !c.len().is_multiple_of(2) || c.len() > 2 * 253 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
