//! The memory check's reads of the host (meminfo, PSI, vmstat, the Spark plan's file) and the
//! OOM kill baselines it keeps between rounds.

use super::*;
use crate::check::CheckError;
use crate::host::Host;
use crate::procfs_text::parse_meminfo;
use crate::spark_conf::{SparkConf, parse_spark_defaults};

/// The OOM kill counters first seen, so an increase since the agent started can be told. The
/// check object lives as long as the agent, so this is "since start".
#[derive(Debug, Default)]
pub(super) struct Baselines {
    vmstat_oom_kill: Option<u64>,
    /// Keyed by cgroup directory: a different cgroup starts a new baseline.
    cgroup_oom_kill: Option<(String, u64)>,
}

impl Memory {
    /// Records first-seen OOM kill counters; returns the baselines for this round.
    pub(super) fn baselines(
        &self,
        vmstat: Option<u64>,
        cgroup: Option<(&str, u64)>,
    ) -> (Option<u64>, Option<u64>) {
        let mut b = self.baselines.lock().unwrap_or_else(|e| e.into_inner());
        let vm = match (vmstat, b.vmstat_oom_kill) {
            // A counter that went down is a new boot or a different file: start again.
            (Some(now), Some(start)) if now >= start => Some(start),
            (Some(now), _) => {
                b.vmstat_oom_kill = Some(now);
                Some(now)
            }
            (None, _) => None,
        };
        let cg = match (cgroup, &b.cgroup_oom_kill) {
            (Some((dir, now)), Some((d, start))) if d == dir && now >= *start => Some(*start),
            (Some((dir, now)), _) => {
                b.cgroup_oom_kill = Some((dir.to_string(), now));
                Some(now)
            }
            (None, _) => None,
        };
        (vm, cg)
    }

    /// One read: meminfo, the cgroup, PSI, OOM kills (against their baselines), the plan.
    pub(super) fn read_facts(&self, host: &Host, s: &Settings) -> Result<Facts, CheckError> {
        let fields = host.parse("/proc/meminfo", parse_meminfo)?;
        let meminfo = Meminfo::from_fields(&fields);
        let mut cgroup = match self.locate(host, s)? {
            Some(at) => Some(self.read_cgroup(host, at)?),
            None => None,
        };
        let psi = host.parse_optional("/proc/pressure/memory", parse_psi)?;
        let oom_kill = host
            .parse_optional("/proc/vmstat", parse_vmstat_oom_kill)?
            .flatten();
        let cg_oom = cgroup
            .as_ref()
            .and_then(|c| c.oom_kill.map(|n| (c.dir.as_str(), n)));
        let (oom_kill_at_start, cg_start) = self.baselines(oom_kill, cg_oom);
        if let Some(c) = cgroup.as_mut() {
            c.oom_kill_at_start = cg_start;
        }
        let plan = plan(host, s)?;
        Ok(Facts {
            meminfo,
            cgroup,
            psi,
            oom_kill,
            oom_kill_at_start,
            plan,
            reserve_bytes: s.reserve_bytes,
        })
    }
}

/// The Spark executor plan the settings name (`spark_defaults`, `[memory.spark]`), if any.
pub(super) fn plan(host: &Host, s: &Settings) -> Result<Option<SparkPlan>, CheckError> {
    if !s.has_plan() {
        return Ok(None);
    }
    let mut conf = SparkConf::default();
    if let Some(path) = &s.spark_defaults {
        conf = host.parse(path, |t| Ok(parse_spark_defaults(t)))?;
    }
    let explicit = s.explicit_spark()?;
    conf.overlay(&explicit);
    SparkPlan::from_conf(&conf, s.executors_per_node)
        .map(Some)
        .map_err(|e| match &s.spark_defaults {
            Some(p) => CheckError::parse(&host.path(p), e),
            None => CheckError::Other(format!("[memory.spark]: {e}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_baselines_are_kept_and_reset_when_the_counter_drops() {
        let m = Memory::default();
        assert_eq!(m.baselines(Some(3), Some(("/a", 1))), (Some(3), Some(1)));
        assert_eq!(m.baselines(Some(5), Some(("/a", 2))), (Some(3), Some(1)));
        // Another cgroup, or a counter that went down: a new baseline.
        assert_eq!(m.baselines(Some(1), Some(("/b", 4))), (Some(1), Some(4)));
        assert_eq!(m.baselines(None, None), (None, None));
    }
}
