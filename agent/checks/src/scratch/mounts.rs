//! The mount behind a dir (longest whole-component prefix of the host's mount table) and the
//! block device behind a mount (`/sys/dev/block/M:m`, partitions to their whole disk).

use super::*;
use crate::check::CheckError;
use crate::host::Host;
use crate::procfs_text::{MountInfo, parse_mountinfo};
use std::path::Path;

/// The mount `path` (an absolute, normalised host path) lies on: the longest mount point that is
/// a whole-component prefix of it; among equal mount points the last listed (mounted on top).
pub fn find_mount<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<&MountInfo> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point) {
            let len = Path::new(&m.mount_point).components().count();
            if best.is_none_or(|b| len >= Path::new(&b.mount_point).components().count()) {
                best = Some(m);
            }
        }
    }
    best
}

/// `/sys/dev/block/M:m` (a link into `/sys/devices`) -> the whole disk (the parent when the
/// device is a partition) -> its rotational flag, model and size. `None` when sysfs has no
/// entry for the device (a fixture, or an odd kernel).
pub fn read_block(host: &Host, major: u32, minor: u32) -> Result<Option<BlockFacts>, CheckError> {
    let link = format!("/sys/dev/block/{major}:{minor}");
    let local = match host.resolve(&link) {
        Ok(p) => p,
        Err(CheckError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                || source.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let Some(dev) = host.host_path_of(&local) else {
        return Ok(None);
    };
    let partition = host.read_optional(dev.join("partition"))?.is_some();
    let disk_dir = if partition {
        dev.parent().map(Path::to_path_buf).unwrap_or(dev.clone())
    } else {
        dev.clone()
    };
    let disk = disk_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let nvme = disk.as_deref().map(|n| n.starts_with("nvme"));
    let rotational = match host.read_value(disk_dir.join("queue/rotational"))? {
        Some(v) if v == "1" => Some(true),
        Some(v) if v == "0" => Some(false),
        _ => None,
    };
    let size_bytes = host
        .read_value(disk_dir.join("size"))?
        .and_then(|v| v.parse::<u64>().ok())
        .map(|sectors| sectors.saturating_mul(512));
    let mut model = host.read_value(disk_dir.join("device/model"))?;
    if model.is_none() && nvme == Some(true) {
        // A namespace sits under its controller (`.../nvme/nvme0/nvme0n1`), which has the model.
        model = host.read_value(disk_dir.join("../model"))?;
    }
    Ok(Some(BlockFacts {
        disk,
        partition: Some(partition),
        rotational,
        nvme,
        model: model.filter(|m| !m.is_empty()),
        size_bytes,
    }))
}

impl Scratch {
    /// The host's mount table: `/proc/1/mountinfo` first in a container (the host's init sees
    /// the host's mounts), `/proc/self/mountinfo` first when the root is `/` (our own mount
    /// namespace is the one our probes act in); the other one when the first is unreadable.
    pub(super) fn mountinfo(
        &self,
        host: &Host,
    ) -> Result<Option<(String, Vec<MountInfo>)>, CheckError> {
        let order = if host.root() == Path::new("/") {
            ["/proc/self/mountinfo", "/proc/1/mountinfo"]
        } else {
            ["/proc/1/mountinfo", "/proc/self/mountinfo"]
        };
        let mut last_err = None;
        for p in order {
            match host.read_optional(p) {
                Ok(Some(text)) => {
                    let mounts =
                        parse_mountinfo(&text).map_err(|e| CheckError::parse(&host.path(p), e))?;
                    return Ok(Some((p.to_string(), mounts)));
                }
                Ok(None) => {}
                Err(e) => last_err = Some(e),
            }
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mount(point: &str, major: u32) -> MountInfo {
        MountInfo {
            major,
            minor: 0,
            root: "/".into(),
            mount_point: point.into(),
            mount_options: vec![],
            fs_type: "ext4".into(),
            source: point.into(),
            super_options: vec![],
        }
    }

    #[test]
    fn find_mount_takes_the_longest_whole_component_prefix_and_the_top_mount() {
        let ms = vec![
            mount("/", 1),
            mount("/data", 2),
            mount("/data1", 3),
            mount("/data", 4),
        ];
        let at = |p: &str| find_mount(&ms, Path::new(p)).map(|m| m.major);
        let table = [
            ("/tmp", Some(1)),
            ("/data", Some(4)),   // stacked: the later mount is on top
            ("/data/x", Some(4)), // longest prefix
            ("/data1/x", Some(3)),
            ("/data10", Some(1)), // not a component prefix of /data1
        ];
        for (p, want) in table {
            assert_eq!(at(p), want, "{p}");
        }
        assert!(find_mount(&[mount("/data", 2)], Path::new("/tmp")).is_none());
    }

    /// A crafted sysfs: NVMe namespace under its controller (partition p1 at 259:1), a SATA disk
    /// with no `queue/rotational`, and the `/sys/dev/block` links a real kernel has.
    fn crafted_sysfs(root: &Path) {
        let ctrl = root.join("sys/devices/pci0000:00/0000:01:00.0/nvme/nvme0");
        let ns = ctrl.join("nvme0n1");
        std::fs::create_dir_all(ns.join("nvme0n1p1")).unwrap();
        std::fs::create_dir_all(ns.join("queue")).unwrap();
        std::fs::write(
            ctrl.join("model"),
            "CT2000P3SSD8                            \n",
        )
        .unwrap();
        std::fs::write(ns.join("size"), "3907029168\n").unwrap();
        std::fs::write(ns.join("queue/rotational"), "0\n").unwrap();
        std::fs::write(ns.join("queue/logical_block_size"), "4096\n").unwrap();
        std::fs::write(ns.join("nvme0n1p1/partition"), "1\n").unwrap();
        std::fs::write(ns.join("nvme0n1p1/size"), "2048\n").unwrap();
        let sd = root.join("sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0");
        std::fs::create_dir_all(sd.join("block/sda")).unwrap();
        std::fs::write(sd.join("model"), "ST4000DM004-2CV1\n").unwrap();
        std::fs::write(sd.join("block/sda/size"), "7814037168\n").unwrap();
        symlink("../../../0:0:0:0", sd.join("block/sda/device")).unwrap();
        std::fs::create_dir_all(root.join("sys/dev/block")).unwrap();
        symlink(
            "../../devices/pci0000:00/0000:01:00.0/nvme/nvme0/nvme0n1/nvme0n1p1",
            root.join("sys/dev/block/259:1"),
        )
        .unwrap();
        symlink(
            "../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda",
            root.join("sys/dev/block/8:0"),
        )
        .unwrap();
    }

    #[test]
    fn block_device_partition_goes_to_the_whole_disk_and_sizes_are_512_byte_sectors() {
        let dir = tempfile::tempdir().unwrap();
        crafted_sysfs(dir.path());
        let h = Host::new(dir.path());
        let b = read_block(&h, 259, 1).unwrap().unwrap();
        assert_eq!(
            b,
            BlockFacts {
                disk: Some("nvme0n1".into()),
                partition: Some(true),
                rotational: Some(false),
                nvme: Some(true),
                model: Some("CT2000P3SSD8".into()),
                // 3907029168 sectors x 512, not x the 4096 logical block size.
                size_bytes: Some(3_907_029_168 * 512),
            }
        );
        let sda = read_block(&h, 8, 0).unwrap().unwrap();
        assert_eq!(sda.disk.as_deref(), Some("sda"));
        assert_eq!(
            sda.rotational, None,
            "no queue/rotational: unknown, not guessed"
        );
        assert_eq!(sda.nvme, Some(false));
        assert_eq!(sda.model.as_deref(), Some("ST4000DM004-2CV1"));
        assert_eq!(
            read_block(&h, 7, 3).unwrap(),
            None,
            "no /sys/dev/block entry"
        );
    }
}
