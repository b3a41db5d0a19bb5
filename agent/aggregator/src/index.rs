//! The fleet index: every node's [`Node`] sorted by name, plus the aggregates the fleet view
//! needs (counts by status, failing nodes per check, nodes per inventory value), kept up to date
//! on every insert and removal, so `/api/v1/fleet` costs a walk over the groups rather than over
//! every node's inventory, and `/api/v1/nodes` pages through a sorted map. Pure: no locks, no
//! clock.
//!
//! Architecture invariant: the aggregates are a function of `nodes`; only [`FleetIndex::insert`]
//! and [`FleetIndex::remove`] change either, together (a test compares them with a recount).
//! The view and `/metrics` show at most [`MAX_FLEET_CHECKS`] failing checks and
//! [`MAX_FLEET_KEYS`] inventory keys, so neither grows with what reports invent. Every name is
//! counted (the index holds at most what the nodes hold), and the ones shown are those on the
//! most nodes: a tie goes to the name whose nodes carry the fewest such names, so one node's
//! invented checks or keys (at most 64 and 128 a report) never push another node's out.

use super::fleet::{MAX_NAMES, Node, rfc3339_ms};
use proto::Status;
use proto::fleet::{ABSENT, CheckCount, DriftDimension, DriftGroup, FleetView, NodeSummary};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// Most distinct failing check names the fleet view shows (those failing on the most nodes).
pub const MAX_FLEET_CHECKS: usize = 256;
/// Most distinct inventory keys the drift view shows (those on the most nodes).
pub const MAX_FLEET_KEYS: usize = 256;
/// Default and largest page of `/api/v1/nodes`.
pub const DEFAULT_PAGE: usize = 500;
pub const MAX_PAGE: usize = 5000;

type Names = BTreeSet<Arc<str>>;
/// A name of the fleet view, the nodes it is on, and what the index keeps for it.
type Shown<'a, T> = (&'a Arc<str>, u64, &'a T);

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
            if *s == Status::Fail {
                self.failing
                    .entry(check.clone())
                    .or_default()
                    .insert(node.name.clone());
            }
        }
        for (k, v) in &node.dims {
            self.dims
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(node.name.clone());
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

        let fails = |n: &Node| n.checks.iter().filter(|(_, s)| *s == Status::Fail).count();
        let failing = self.shown(
            self.failing
                .iter()
                .map(|(c, names)| (c, names.len() as u64, names)),
            MAX_FLEET_CHECKS,
            |names| names.iter(),
            fails,
        );
        let mut failing_checks: Vec<CheckCount> = failing
            .into_iter()
            .map(|(check, _, names)| {
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
        let keys = self.shown(
            self.dims
                .iter()
                .map(|(k, values)| (k, values.values().map(|s| s.len() as u64).sum(), values)),
            MAX_FLEET_KEYS,
            |values| values.values().flat_map(|s| s.iter()),
            |n| n.dims.len(),
        );
        let mut drift: Vec<(DriftDimension, Option<usize>)> = Vec::with_capacity(keys.len());
        for (key, with_key, values) in keys {
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

    /// The at most `cap` entries (name, nodes, data) shown: those on the most nodes; among
    /// those tied at the cut, the ones whose nodes carry the fewest such names (`weight` of a
    /// node: its failing checks or inventory keys), then by name. Ties are weighed only when
    /// more than `cap` names exist, and only for the names tied at the cut.
    fn shown<'a, T: 'a, I>(
        &self,
        entries: impl Iterator<Item = (&'a Arc<str>, u64, &'a T)>,
        cap: usize,
        nodes_of: impl Fn(&'a T) -> I,
        weight: impl Fn(&Node) -> usize,
    ) -> Vec<Shown<'a, T>>
    where
        I: Iterator<Item = &'a Arc<str>>,
    {
        let mut all: Vec<Shown<'a, T>> = entries.collect();
        if all.len() <= cap {
            return all;
        }
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let cut = all[cap - 1].1;
        let (mut kept, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|e| e.1 > cut);
        let mut tied: Vec<(usize, Shown<'a, T>)> = rest
            .into_iter()
            .filter(|e| e.1 == cut)
            .map(|e| {
                let lightest = nodes_of(e.2)
                    .filter_map(|n| self.nodes.get(n))
                    .map(&weight)
                    .min()
                    .unwrap_or(usize::MAX);
                (lightest, e)
            })
            .collect();
        tied.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.0.cmp(b.1.0)));
        let room = cap - kept.len();
        kept.extend(tied.into_iter().take(room).map(|(_, e)| e));
        kept
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

/// A query string of `/api/v1/nodes` that cannot be used, naming the parameter: the 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query parameter `{0}`: bad percent-encoding")]
    PercentEncoding(String),
    #[error("query parameter `limit`: {0:?} is not a number")]
    LimitNotNumber(String),
    #[error("query parameter `limit`: {0} is not between 1 and {max}", max = MAX_PAGE)]
    LimitRange(usize),
    #[error("query parameter `cursor`: not a cursor this aggregator returned")]
    Cursor,
    #[error("query parameter `status`: {0:?} is not ok, warn, unknown or fail")]
    Status(String),
    #[error("query parameter `stale`: {0:?} is not true or false")]
    Stale(String),
    #[error("unknown query parameter `{0}` (limit, cursor, status, stale, check, prefix)")]
    Unknown(String),
}

impl NodeQuery {
    /// Parses the query string of `/api/v1/nodes`; the error names the parameter.
    pub fn parse(query: Option<&str>) -> Result<NodeQuery, QueryError> {
        let mut q = NodeQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| QueryError::PercentEncoding(k.to_string()))?;
            match k {
                "limit" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| QueryError::LimitNotNumber(v.clone()))?;
                    if !(1..=MAX_PAGE).contains(&n) {
                        return Err(QueryError::LimitRange(n));
                    }
                    q.limit = n;
                }
                "cursor" => q.after = Some(decode_cursor(&v).ok_or(QueryError::Cursor)?),
                "status" => {
                    q.status = Some(
                        Status::ALL
                            .into_iter()
                            .find(|s| s.as_str() == v)
                            .ok_or_else(|| QueryError::Status(v.clone()))?,
                    )
                }
                "stale" => {
                    q.stale = Some(match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(QueryError::Stale(v)),
                    })
                }
                "check" => q.check = Some(v),
                "prefix" => q.prefix = Some(v),
                _ => return Err(QueryError::Unknown(k.to_string())),
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
mod tests;
