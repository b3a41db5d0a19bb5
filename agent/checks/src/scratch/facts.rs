//! What one read of the scratch check observed: per dir, the mount, the disk, space, the write
//! probe and leftovers; the SSD cache; dirs that share a device.

use super::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// What one round observed.
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct Facts {
    /// Where the dir list came from: `config`, `spark.local.dir in <file>`, or `default`.
    pub dirs_source: String,
    /// The mount table read (host path), `null` when none was readable.
    pub mountinfo_path: Option<String>,
    pub dirs: Vec<DirFacts>,
    /// Groups of two or more configured dirs on one device (whole disk, else filesystem).
    pub shared_devices: Vec<SharedDevice>,
    /// Velox's SSD cache (check 5.7); absent unless `cacheEnabled` and `ssdCacheSize` > 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssd_cache: Option<SsdCacheFacts>,
}

/// One scratch dir. `null` means unknown (not observed), never a guess.
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct DirFacts {
    /// The configured host path.
    pub path: String,
    /// The host path after symlinks, when it resolved.
    pub resolved_path: Option<String>,
    pub exists: Option<bool>,
    pub is_dir: Option<bool>,
    /// Why the dir could not be inspected (permission denied, ...), when it could not.
    pub error: Option<String>,
    /// The per-dir work did not finish within `dir_timeout_seconds` (this round or before).
    pub timed_out: bool,
    /// When the per-dir work that is still stuck started (RFC 3339).
    pub stuck_since: Option<String>,
    pub mount_point: Option<String>,
    pub fs_type: Option<String>,
    pub mount_source: Option<String>,
    /// Per-mount options (`ro`, `noexec`, ...).
    pub mount_options: Vec<String>,
    /// The filesystem's (superblock) options; `ro` here makes every mount of it read-only.
    pub super_options: Vec<String>,
    pub read_only: Option<bool>,
    pub noexec: Option<bool>,
    /// `major:minor` of the filesystem, from mountinfo.
    pub device: Option<String>,
    /// The whole disk behind the device (`nvme0n1`, `sda`), when it is a block device.
    pub disk: Option<String>,
    pub partition: Option<bool>,
    pub rotational: Option<bool>,
    pub nvme: Option<bool>,
    pub model: Option<String>,
    /// `size` of the whole disk x 512 (sysfs counts 512-byte sectors whatever the block size).
    pub disk_size_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    /// Free bytes an unprivileged process may use (`f_bavail`).
    pub avail_bytes: Option<u64>,
    pub total_inodes: Option<u64>,
    pub free_inodes: Option<u64>,
    pub write_probe_ok: Option<bool>,
    pub write_probe_error: Option<String>,
    pub write_probe_latency_seconds: Option<f64>,
    pub leftover_count: Option<u64>,
    /// Bytes on disk (allocated blocks) of the leftovers.
    pub leftover_bytes: Option<u64>,
    pub leftovers_capped: bool,
    /// Up to ten leftover names, sorted.
    pub leftovers: Vec<String>,
}

/// Configured dirs sharing one device: they share its bandwidth and its free space.
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct SharedDevice {
    /// The whole disk name, else the filesystem's `major:minor`.
    pub device: String,
    pub dirs: Vec<String>,
}

/// Groups the existing dirs on the same whole disk (else the same filesystem device).
pub fn shared_devices(dirs: &[DirFacts]) -> Vec<SharedDevice> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in dirs
        .iter()
        .filter(|d| d.is_dir != Some(false) && d.exists != Some(false))
    {
        if let Some(key) = d.disk.clone().or_else(|| d.device.clone()) {
            let g = groups.entry(key).or_default();
            if !g.contains(&d.path) {
                g.push(d.path.clone());
            }
        }
    }
    groups
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(device, dirs)| SharedDevice { device, dirs })
        .collect()
}

/// The whole disk behind a block device, from sysfs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BlockFacts {
    pub disk: Option<String>,
    pub partition: Option<bool>,
    pub rotational: Option<bool>,
    pub nvme: Option<bool>,
    pub model: Option<String>,
    pub size_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::evaluate::tests::healthy;
    use proto::Status;

    #[test]
    fn shared_devices_group_by_disk_then_device_and_warn() {
        let mut a = healthy("/data1/spark");
        let b = healthy("/data2/spark");
        let mut c = healthy("/tmp");
        c.disk = None;
        c.device = Some("0:45".into());
        let mut d = c.clone();
        d.path = "/dev/shm".into();
        a.device = Some("259:2".into()); // another partition of the same disk
        let g = shared_devices(&[a.clone(), b.clone(), c.clone(), d.clone()]);
        assert_eq!(
            g,
            vec![
                SharedDevice {
                    device: "0:45".into(),
                    dirs: vec!["/tmp".into(), "/dev/shm".into()]
                },
                SharedDevice {
                    device: "nvme0n1".into(),
                    dirs: vec!["/data1/spark".into(), "/data2/spark".into()]
                },
            ]
        );
        let facts = Facts {
            dirs: vec![a, b],
            shared_devices: g[1..].to_vec(),
            ..Facts::default()
        };
        let o = evaluate(&facts, &Settings::default());
        assert_eq!(o.status(), Status::Warn);
        assert!(
            o.summary()
                .contains("/data1/spark and /data2/spark are on the same device nvme0n1")
        );
    }
}
