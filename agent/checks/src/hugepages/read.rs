//! The only part of the hugepages check that touches the machine: sysfs pools (global and per
//! NUMA node), THP settings, `/proc/meminfo`'s huge page lines and `/proc/vmstat`.

use super::*;
use crate::check::CheckError;
use crate::host::Host;
use crate::procfs_text::{NODES_DIR, meminfo_hugepages, node_ids, parse_count, parse_meminfo};

/// Where the kernel lists the global hugetlb pools, one `hugepages-<size>kB` dir per page size.
pub(super) const GLOBAL_POOLS_DIR: &str = "/sys/kernel/mm/hugepages";
pub(super) const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";
pub(super) const VMSTAT: &str = "/proc/vmstat";

/// Every hugetlb pool on `host`: the global pools of `/sys/kernel/mm/hugepages` and each node's
/// `hugepages/` pools. Where sysfs lists none, the default-size pool from `/proc/meminfo` (global)
/// or the node's `meminfo` (per node) stands in, marked `source: meminfo`.
pub fn read_pools(host: &Host) -> Result<Vec<Pool>, CheckError> {
    let meminfo = read_meminfo(host)?;
    read_pools_with(host, meminfo.as_ref())
}

pub(super) fn read_meminfo(host: &Host) -> Result<Option<MeminfoHugepages>, CheckError> {
    Ok(host
        .parse_optional("/proc/meminfo", parse_meminfo)?
        .map(|f| meminfo_hugepages(&f)))
}

pub(super) fn read_pool_dir(
    host: &Host,
    dir: &str,
    numa_node: Option<u32>,
    out: &mut Vec<Pool>,
) -> Result<(), CheckError> {
    let mut found: Vec<(u64, String)> = host
        .list_dir(dir)?
        .into_iter()
        .filter_map(|name| parse_pool_dir_name(&name).map(|size| (size, name)))
        .collect();
    found.sort();
    for (size, name) in found {
        let count = |file: &str| host.parse_optional(format!("{dir}/{name}/{file}"), parse_count);
        out.push(Pool {
            page_size_bytes: size,
            numa_node,
            total: count("nr_hugepages")?,
            free: count("free_hugepages")?,
            // The kernel has no per-node reservation count.
            reserved: match numa_node {
                None => count("resv_hugepages")?,
                Some(_) => None,
            },
            surplus: count("surplus_hugepages")?,
            source: PoolSource::Sysfs,
        });
    }
    Ok(())
}

pub(super) fn read_pools_with(
    host: &Host,
    meminfo: Option<&MeminfoHugepages>,
) -> Result<Vec<Pool>, CheckError> {
    let mut pools = Vec::new();
    read_pool_dir(host, GLOBAL_POOLS_DIR, None, &mut pools)?;
    let default_size = meminfo.and_then(|m| m.hugepagesize_bytes);
    if pools.is_empty()
        && let (Some(m), Some(size)) = (meminfo, default_size)
        && m.hugepages_total.is_some()
    {
        pools.push(Pool {
            page_size_bytes: size,
            numa_node: None,
            total: m.hugepages_total,
            free: m.hugepages_free,
            reserved: m.hugepages_rsvd,
            surplus: m.hugepages_surp,
            source: PoolSource::Meminfo,
        });
    }
    for id in node_ids(host)? {
        let before = pools.len();
        read_pool_dir(
            host,
            &format!("{NODES_DIR}/node{id}/hugepages"),
            Some(id),
            &mut pools,
        )?;
        if pools.len() > before {
            continue;
        }
        let Some(size) = default_size else { continue };
        let Some(fields) =
            host.parse_optional(format!("{NODES_DIR}/node{id}/meminfo"), parse_meminfo)?
        else {
            continue;
        };
        let m = meminfo_hugepages(&fields);
        if m.hugepages_total.is_some() {
            pools.push(Pool {
                page_size_bytes: size,
                numa_node: Some(id),
                total: m.hugepages_total,
                free: m.hugepages_free,
                reserved: None,
                surplus: m.hugepages_surp,
                source: PoolSource::Meminfo,
            });
        }
    }
    Ok(pools)
}

/// Reads everything the check looks at.
pub fn read_facts(host: &Host) -> Result<Facts, CheckError> {
    let meminfo = read_meminfo(host)?;
    let pools = read_pools_with(host, meminfo.as_ref())?;
    Ok(Facts {
        thp_enabled: host.parse_optional(format!("{THP_DIR}/enabled"), parse_thp_setting)?,
        thp_defrag: host.parse_optional(format!("{THP_DIR}/defrag"), parse_thp_setting)?,
        pool_bytes: pool_bytes(&pools),
        pools,
        meminfo,
        vmstat: host.parse_optional(VMSTAT, parse_vmstat_thp)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hugepages::facts::tests::{G1, M2};
    use crate::hugepages::parse::tests::VMSTAT_4X;

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn pools_come_from_sysfs_next_to_each_other_and_per_node() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for (size, n) in [("2048", "8"), ("1048576", "2")] {
            let d = format!("sys/kernel/mm/hugepages/hugepages-{size}kB");
            write(r, &format!("{d}/nr_hugepages"), &format!("{n}\n"));
            write(r, &format!("{d}/free_hugepages"), "1\n");
            write(r, &format!("{d}/resv_hugepages"), "0\n");
            write(r, &format!("{d}/surplus_hugepages"), "0\n");
        }
        let d = "sys/devices/system/node/node1/hugepages/hugepages-1048576kB";
        write(r, &format!("{d}/nr_hugepages"), "2\n");
        write(r, &format!("{d}/free_hugepages"), "1\n");
        write(r, "sys/devices/system/node/node0/cpulist", "0-3\n");
        let pools = read_pools(&Host::new(r)).unwrap();
        let keys: Vec<_> = pools
            .iter()
            .map(|p| (p.numa_node, p.page_size_bytes, p.total))
            .collect();
        assert_eq!(
            keys,
            [
                (None, M2, Some(8)),
                (None, G1, Some(2)),
                (Some(1), G1, Some(2))
            ]
        );
        assert_eq!(pools[2].reserved, None);
        assert_eq!(pools[2].surplus, None, "missing file: unknown, not 0");
        assert_eq!(pool_bytes(&pools), 8 * M2 + 2 * G1);
    }

    #[test]
    fn without_sysfs_pools_meminfo_stands_in_for_the_default_size() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "proc/meminfo",
            "HugePages_Total:       4\nHugePages_Free:        4\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n",
        );
        write(
            r,
            "sys/devices/system/node/node0/meminfo",
            "Node 0 HugePages_Total:     4\nNode 0 HugePages_Free:      4\nNode 0 HugePages_Surp:      0\n",
        );
        write(
            r,
            "sys/devices/system/node/node1/vmstat",
            "nr_free_pages 1\n",
        );
        let pools = read_pools(&Host::new(r)).unwrap();
        assert_eq!(pools.len(), 2, "{pools:?}");
        assert_eq!(pools[0].source, PoolSource::Meminfo);
        assert_eq!((pools[0].numa_node, pools[0].reserved), (None, Some(0)));
        assert_eq!((pools[1].numa_node, pools[1].total), (Some(0), Some(4)));
        assert_eq!(pool_bytes(&pools), 4 * M2);
    }

    #[test]
    fn a_bare_host_has_no_pools_and_malformed_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_pools(&Host::new(dir.path())).unwrap(), vec![]);
        write(
            dir.path(),
            "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "x\n",
        );
        let e = read_pools(&Host::new(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("hugepages-2048kB/nr_hugepages") && e.contains("\"x\""),
            "{e}"
        );
    }

    #[test]
    fn proc_vmstat_is_optional_and_a_malformed_one_is_unknown_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(dir.path());
        assert_eq!(read_facts(&host).unwrap().vmstat, None);
        write(dir.path(), "proc/vmstat", VMSTAT_4X);
        let v = read_facts(&host).unwrap().vmstat.unwrap();
        assert_eq!(v.thp_fault_alloc, Some(142261));
        write(
            dir.path(),
            "proc/vmstat",
            "nr_free_pages 1\nthp_fault_alloc x\n",
        );
        let e = crate::check::Runner::<Hugepages>::new(Settings::default())
            .read(&host)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("proc/vmstat") && e.contains("line 2: thp_fault_alloc"),
            "{e}"
        );
    }
}
