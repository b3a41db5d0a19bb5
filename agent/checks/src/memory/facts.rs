//! What one read of the memory check observed, and the numbers derived from it (usable memory,
//! headroom) in the report's layout.

use super::*;
use serde::Serialize;

/// What the check uses from `/proc/meminfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub total: Option<u64>,
    pub free: Option<u64>,
    /// `MemAvailable`, or the estimate when the kernel lacks it (< 3.14) or the file omits it.
    pub available: Option<u64>,
    pub available_estimated: bool,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
    /// Bytes held in hugetlb pools, as the hugepages check's `pool_bytes` counts them (total
    /// pages, surplus included, x page size, all page sizes), and the meminfo line(s) it came
    /// from.
    pub hugepages_pool_bytes: Option<u64>,
    pub hugepages_pool_source: Option<&'static str>,
}

/// What one read observed. Serialised in the report's layout ([`FactsReport`]), with the numbers
/// derived from it (usable, planned, headroom).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub meminfo: Meminfo,
    pub cgroup: Option<CgroupFacts>,
    pub psi: Option<Psi>,
    pub oom_kill: Option<u64>,
    pub oom_kill_at_start: Option<u64>,
    pub plan: Option<SparkPlan>,
    /// `reserve_bytes` of the settings read with (the report shows it beside the headroom).
    pub reserve_bytes: u64,
}

impl Facts {
    /// Usable memory: the tighter of the cgroup limit and MemTotal minus the huge page pools,
    /// and which of the two it is.
    pub fn usable(&self) -> (Option<u64>, Option<&'static str>) {
        let host_usable = self
            .meminfo
            .total
            .map(|t| t.saturating_sub(self.meminfo.hugepages_pool_bytes.unwrap_or(0)));
        let cg_limit = self.cgroup.as_ref().and_then(|c| c.limit_bytes);
        match (cg_limit, host_usable) {
            (Some(l), Some(h)) if l < h => (Some(l), Some("cgroup limit")),
            (_, Some(h)) => (Some(h), Some("MemTotal minus huge page pools")),
            (Some(l), None) => (Some(l), Some("cgroup limit")),
            (None, None) => (None, None),
        }
    }

    /// Headroom = usable - planned - reserve (negative: overcommitted).
    pub fn headroom(&self, reserve_bytes: u64) -> Option<i128> {
        match (&self.plan, self.usable().0) {
            (Some(p), Some(u)) => {
                Some(i128::from(u) - i128::from(p.planned_bytes) - i128::from(reserve_bytes))
            }
            _ => None,
        }
    }

    /// The facts in the report's layout.
    pub fn report(&self) -> FactsReport {
        let m = &self.meminfo;
        let (usable_bytes, usable_source) = self.usable();
        FactsReport {
            mem_total_bytes: m.total,
            mem_free_bytes: m.free,
            mem_available_bytes: m.available,
            mem_available_estimated: m.available_estimated,
            swap_total_bytes: m.swap_total,
            swap_free_bytes: m.swap_free,
            hugepages_pool_bytes: m.hugepages_pool_bytes,
            hugepages_pool_source: m.hugepages_pool_source,
            cgroup_limit_bytes: self.cgroup.as_ref().and_then(|c| c.limit_bytes),
            cgroup: self.cgroup.clone(),
            psi_memory: self.psi,
            oom_kill: self.oom_kill,
            oom_kill_at_start: self.oom_kill_at_start,
            planned_bytes: self.plan.as_ref().map(|p| p.planned_bytes),
            spark_plan: self.plan.clone(),
            usable_bytes,
            usable_source,
            reserve_bytes: self.reserve_bytes,
            headroom_bytes: self.headroom(self.reserve_bytes),
        }
    }
}

/// The facts as the report shows them (see [`Facts::report`]).
#[derive(Serialize, Debug, Default, PartialEq)]
pub struct FactsReport {
    pub mem_total_bytes: Option<u64>,
    pub mem_free_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    /// True when `MemAvailable` is missing and the number is our estimate.
    pub mem_available_estimated: bool,
    pub swap_total_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
    pub hugepages_pool_bytes: Option<u64>,
    pub hugepages_pool_source: Option<&'static str>,
    pub cgroup: Option<CgroupFacts>,
    pub psi_memory: Option<Psi>,
    pub oom_kill: Option<u64>,
    pub oom_kill_at_start: Option<u64>,
    pub spark_plan: Option<SparkPlan>,
    pub cgroup_limit_bytes: Option<u64>,
    pub usable_bytes: Option<u64>,
    pub usable_source: Option<&'static str>,
    pub planned_bytes: Option<u64>,
    pub reserve_bytes: u64,
    pub headroom_bytes: Option<i128>,
}

impl Serialize for Facts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.report().serialize(s)
    }
}
