//! Pure: what the scratch facts mean under the settings (findings per dir, the SSD cache, shared
//! devices, the ok sentence, gauges and inventory).

use super::*;
use crate::check::Verdict;
use crate::fmt;
use proto::{Finding, Status};
use std::collections::BTreeSet;

/// The findings, gauges and inventory for `facts` under `settings` (pure).
pub fn evaluate(facts: &Facts, s: &Settings) -> Verdict {
    let mut o = Verdict::default();
    for d in &facts.dirs {
        evaluate_dir(d, s, &mut o);
    }
    if let Some(c) = &facts.ssd_cache {
        evaluate_ssd_cache(c, s, &mut o);
    }
    for g in &facts.shared_devices {
        o.push(Finding::new(
            Status::Warn,
            format!(
                "{} are on the same device {}: they share its bandwidth and space (Spark wants \
                 its local dirs on different disks)",
                g.dirs.join(" and "),
                g.device
            ),
        ));
    }
    let known: Vec<&DirFacts> = facts
        .dirs
        .iter()
        .filter(|d| d.total_bytes.is_some())
        .collect();
    let lowest = known
        .iter()
        .filter_map(|d| Some((d, ratio(d.avail_bytes?, d.total_bytes?)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    o.ok_summary = Some(match lowest {
        Some((d, r)) => format!(
            "{} scratch dir(s) usable; least free: {} with {} ({})",
            facts.dirs.len(),
            d.path,
            fmt::percent(r),
            fmt::bytes(d.avail_bytes.unwrap_or(0))
        ),
        None => format!("{} scratch dir(s) usable", facts.dirs.len()),
    });
    add_metrics(facts, &mut o);
    o
}

/// Check 5.7: the cache path must hold every executor's cache files, take O_DIRECT when asked
/// to, and should be on an SSD.
pub(super) fn evaluate_ssd_cache(c: &SsdCacheFacts, s: &Settings, o: &mut Verdict) {
    let p = &c.path;
    let mut push = |st: Status, m: String| o.push(Finding::new(st, m).about(p.as_str()));
    if let Some(since) = &c.stuck_since {
        push(
            Status::Unknown,
            format!(
                "SSD cache path {p}: stat/statvfs still stuck since {since} (dir_timeout_seconds {}); not probed again until it returns",
                fmt::seconds(s.dir_timeout_seconds)
            ),
        );
        return;
    }
    if c.timed_out {
        push(
            Status::Unknown,
            format!(
                "SSD cache path {p}: stat/statvfs did not answer within dir_timeout_seconds {} (a hung mount?)",
                fmt::seconds(s.dir_timeout_seconds)
            ),
        );
        return;
    }
    if let Some(e) = &c.error {
        push(
            Status::Unknown,
            format!("SSD cache path {p} could not be inspected: {e}"),
        );
    } else if c.exists == Some(false) || c.is_dir == Some(false) {
        push(
            Status::Fail,
            format!(
                "SSD cache path {p} (`{SSD_CACHE_PATH}`) {}: Velox cannot create its cache files \
                 there and its init aborts",
                if c.exists == Some(false) {
                    "does not exist"
                } else {
                    "is not a directory"
                }
            ),
        );
    } else if let Some(avail) = c.avail_bytes
        && avail < c.required_bytes
    {
        push(
            Status::Fail,
            format!(
                "SSD cache path {p} has {} ({avail} bytes) available, below `{SSD_CACHE_SIZE}` {} x \
                 {} executor(s) per node = {} ({} bytes): Velox init aborts: not enough space \
                 for ssd cache (node-requirements 5.7)",
                fmt::bytes(avail),
                fmt::bytes(c.size_bytes),
                c.executors_per_node,
                fmt::bytes(c.required_bytes),
                c.required_bytes
            ),
        );
    }
    if c.o_direct && c.fs_type.as_deref() == Some("tmpfs") {
        push(
            Status::Fail,
            format!(
                "SSD cache path {p} is on tmpfs but `{SSD_ODIRECT}` is true: tmpfs has no \
                 O_DIRECT, so Velox cannot open its cache files"
            ),
        );
    }
    if c.rotational == Some(true) {
        push(
            Status::Warn,
            format!(
                "SSD cache path {p} is on a rotational disk ({}): Gluten recommends mounting SSDs \
                 at the cache path",
                c.disk.as_deref().unwrap_or("?")
            ),
        );
    }
}

pub(super) fn ratio(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

pub(super) fn evaluate_dir(d: &DirFacts, s: &Settings, o: &mut Verdict) {
    let p = &d.path;
    let mut push = |st: Status, m: String| o.push(Finding::new(st, m).about(p.as_str()));
    if let Some(since) = &d.stuck_since {
        push(
            Status::Unknown,
            format!(
                "{p}: stat/statvfs still stuck since {since} (dir_timeout_seconds {}); not probed again until it returns",
                fmt::seconds(s.dir_timeout_seconds)
            ),
        );
    } else if d.timed_out {
        push(
            Status::Unknown,
            format!(
                "{p}: stat/statvfs did not answer within dir_timeout_seconds {} (a hung mount?)",
                fmt::seconds(s.dir_timeout_seconds)
            ),
        );
    }
    if let Some(e) = &d.error {
        push(Status::Unknown, format!("{p} could not be inspected: {e}"));
    }
    // Nothing else about a path that is not a directory is worth saying.
    match (d.exists, d.is_dir) {
        (Some(false), _) => return push(Status::Fail, format!("{p} does not exist")),
        (Some(true), Some(false)) => return push(Status::Fail, format!("{p} is not a directory")),
        _ => {}
    }
    let mnt = d.mount_point.as_deref().unwrap_or("?");
    if d.read_only == Some(true) {
        push(
            Status::Fail,
            format!(
                "{p} is on a read-only mount ({mnt}, option ro): spill and shuffle writes fail"
            ),
        );
    }
    if d.noexec == Some(true) {
        push(
            Status::Fail,
            format!(
                "{p} is on a noexec mount ({mnt}): Gluten extracts its JNI libraries \
                 (libvelox.so, libgluten.so) into the local dirs and dlopen fails there (\"failed \
                 to map segment from shared object\")"
            ),
        );
    }
    if d.write_probe_ok == Some(false) {
        push(
            Status::Fail,
            format!(
                "write probe in {p} failed: {}",
                d.write_probe_error.as_deref().unwrap_or("unknown error")
            ),
        );
    }
    if let (Some(avail), Some(total)) = (d.avail_bytes, d.total_bytes) {
        if let Some(r) = ratio(avail, total) {
            let have = format!(
                "{p} has {} available ({} of {})",
                fmt::percent(r),
                fmt::bytes(avail),
                fmt::bytes(total)
            );
            if r < s.fail_free_ratio {
                push(
                    Status::Fail,
                    format!(
                        "{have}, below fail_free_ratio {}",
                        fmt::percent(s.fail_free_ratio)
                    ),
                );
            } else if r < s.warn_free_ratio {
                push(
                    Status::Warn,
                    format!(
                        "{have}, below warn_free_ratio {}",
                        fmt::percent(s.warn_free_ratio)
                    ),
                );
            }
        }
        if avail < s.min_free_bytes {
            push(
                Status::Fail,
                format!(
                    "{p} has {} available, below min_free_bytes {}",
                    fmt::bytes(avail),
                    fmt::bytes(s.min_free_bytes)
                ),
            );
        }
    }
    if let (Some(free), Some(total)) = (d.free_inodes, d.total_inodes) {
        // Some filesystems (btrfs) report no inode counts at all: total 0 says nothing.
        if total > 0 && free == 0 {
            push(
                Status::Fail,
                format!("{p} has no free inodes (of {total}): no file can be created"),
            );
        } else if let Some(r) = ratio(free, total).filter(|r| *r < s.min_free_inodes_ratio) {
            push(
                Status::Warn,
                format!(
                    "{p} has {} of its inodes free ({free} of {total}), below min_free_inodes_ratio {}",
                    fmt::percent(r),
                    fmt::percent(s.min_free_inodes_ratio)
                ),
            );
        }
    }
    if d.fs_type.as_deref() == Some("tmpfs") {
        push(
            Status::Warn,
            format!("{p} is on tmpfs ({mnt}): spill there is held in memory and counts against it"),
        );
    }
    if d.rotational == Some(true) {
        push(
            Status::Warn,
            format!(
                "{p} is on a rotational disk ({}): spill and shuffle want a fast local SSD",
                d.disk.as_deref().unwrap_or("?")
            ),
        );
    }
    if let (Some(n), Some(bytes)) = (d.leftover_count, d.leftover_bytes)
        && n > 0
        && bytes > s.leftover_warn_bytes
    {
        push(
            Status::Warn,
            format!(
                "{p} holds {n} leftover(s) of killed executors (gluten-* dirs, cache.* files \
                     untouched for over {}) taking {}{}, above leftover_warn_bytes {}",
                fmt::seconds(s.leftover_age_seconds as f64),
                fmt::bytes(bytes),
                if d.leftovers_capped { " or more" } else { "" },
                fmt::bytes(s.leftover_warn_bytes)
            ),
        );
    }
}

pub(super) fn add_metrics(facts: &Facts, o: &mut Verdict) {
    for d in &facts.dirs {
        let l = [("dir", d.path.as_str())];
        let gauges: [(&'static str, &'static str, Option<f64>); 8] = [
            (
                "gluten_node_scratch_size_bytes",
                "Size of the filesystem holding the scratch dir.",
                d.total_bytes.map(|v| v as f64),
            ),
            (
                "gluten_node_scratch_free_bytes",
                "Free bytes on the filesystem holding the scratch dir.",
                d.free_bytes.map(|v| v as f64),
            ),
            (
                "gluten_node_scratch_avail_bytes",
                "Bytes an unprivileged executor may still write in the scratch dir.",
                d.avail_bytes.map(|v| v as f64),
            ),
            (
                "gluten_node_scratch_free_inodes",
                "Free inodes on the filesystem holding the scratch dir.",
                d.free_inodes.map(|v| v as f64),
            ),
            (
                "gluten_node_scratch_write_probe_latency_seconds",
                "Seconds to create, write 1 MiB, fsync and remove a file in the scratch dir.",
                d.write_probe_latency_seconds,
            ),
            (
                "gluten_node_scratch_writable",
                "1 when the write probe succeeded in the scratch dir, 0 when it failed.",
                d.write_probe_ok.map(|v| f64::from(u8::from(v))),
            ),
            (
                "gluten_node_scratch_rotational",
                "1 when the scratch dir is on a rotational disk, 0 when not.",
                d.rotational.map(|v| f64::from(u8::from(v))),
            ),
            (
                "gluten_node_scratch_leftover_bytes",
                "Bytes taken by leftovers of killed executors in the scratch dir.",
                d.leftover_bytes.map(|v| v as f64),
            ),
        ];
        for (name, help, v) in gauges {
            if let Some(v) = v {
                o.gauge(name, help, &l, v);
            }
        }
    }
    let fs: BTreeSet<&str> = facts
        .dirs
        .iter()
        .filter_map(|d| d.fs_type.as_deref())
        .collect();
    if !fs.is_empty() {
        o.inventory.push((
            "scratch.fs_types".into(),
            fs.into_iter().collect::<Vec<_>>().join(","),
        ));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) const GIB: u64 = 1 << 30;

    /// A healthy dir: 100 GiB, 50% available, on an NVMe SSD.
    pub(crate) fn healthy(path: &str) -> DirFacts {
        DirFacts {
            path: path.into(),
            exists: Some(true),
            is_dir: Some(true),
            mount_point: Some("/data".into()),
            fs_type: Some("ext4".into()),
            read_only: Some(false),
            noexec: Some(false),
            device: Some("259:1".into()),
            disk: Some("nvme0n1".into()),
            rotational: Some(false),
            nvme: Some(true),
            total_bytes: Some(100 * GIB),
            free_bytes: Some(55 * GIB),
            avail_bytes: Some(50 * GIB),
            total_inodes: Some(1000),
            free_inodes: Some(900),
            write_probe_ok: Some(true),
            leftover_count: Some(0),
            leftover_bytes: Some(0),
            ..DirFacts::default()
        }
    }

    #[test]
    fn evaluate_table() {
        type Case = (&'static str, fn(&mut DirFacts), Status, &'static str);
        let cases: Vec<Case> = vec![
            (
                "healthy",
                |_| {},
                Status::Ok,
                "usable; least free: /data/spark with 50.0% (50.0 GiB)",
            ),
            (
                "missing",
                |d| d.exists = Some(false),
                Status::Fail,
                "/data/spark does not exist",
            ),
            (
                "a file",
                |d| d.is_dir = Some(false),
                Status::Fail,
                "/data/spark is not a directory",
            ),
            (
                "ro",
                |d| d.read_only = Some(true),
                Status::Fail,
                "read-only mount (/data, option ro)",
            ),
            (
                "noexec",
                |d| d.noexec = Some(true),
                Status::Fail,
                "noexec mount (/data)",
            ),
            (
                "probe fails",
                |d| {
                    d.write_probe_ok = Some(false);
                    d.write_probe_error =
                        Some("creating a file: Read-only file system (os error 30)".into());
                },
                Status::Fail,
                "write probe in /data/spark failed: creating a file: Read-only file system",
            ),
            (
                "19% free",
                |d| d.avail_bytes = Some(19 * GIB),
                Status::Warn,
                "has 19.0% available (19.0 GiB of 100.0 GiB), below warn_free_ratio 20.0%",
            ),
            (
                "20% free is fine",
                |d| d.avail_bytes = Some(20 * GIB),
                Status::Ok,
                "usable",
            ),
            (
                "4% free",
                |d| d.avail_bytes = Some(4 * GIB),
                Status::Fail,
                "below fail_free_ratio 5.0%",
            ),
            (
                "small disk under min_free_bytes",
                |d| {
                    d.total_bytes = Some(2 * GIB);
                    d.avail_bytes = Some(GIB / 2);
                },
                Status::Fail,
                "has 512.0 MiB available, below min_free_bytes 1.0 GiB",
            ),
            (
                "inodes low",
                |d| d.free_inodes = Some(40),
                Status::Warn,
                "4.0% of its inodes free (40 of 1000), below min_free_inodes_ratio 5.0%",
            ),
            (
                "no inodes",
                |d| d.free_inodes = Some(0),
                Status::Fail,
                "no free inodes (of 1000)",
            ),
            (
                "btrfs reports no inode counts",
                |d| {
                    d.total_inodes = Some(0);
                    d.free_inodes = Some(0);
                },
                Status::Ok,
                "usable",
            ),
            (
                "tmpfs",
                |d| d.fs_type = Some("tmpfs".into()),
                Status::Warn,
                "on tmpfs (/data): spill there is held in memory",
            ),
            (
                "rotational",
                |d| d.rotational = Some(true),
                Status::Warn,
                "rotational disk (nvme0n1)",
            ),
            (
                "rotational unknown",
                |d| d.rotational = None,
                Status::Ok,
                "usable",
            ),
            (
                "big leftovers",
                |d| {
                    d.leftover_count = Some(3);
                    d.leftover_bytes = Some(11 * GIB);
                },
                Status::Warn,
                "holds 3 leftover(s) of killed executors (gluten-* dirs, cache.* files untouched for over 86400s) taking 11.0 GiB, above leftover_warn_bytes 10.0 GiB",
            ),
            (
                "small leftovers are only facts",
                |d| {
                    d.leftover_count = Some(3);
                    d.leftover_bytes = Some(GIB);
                },
                Status::Ok,
                "usable",
            ),
            (
                "timed out",
                |d| d.timed_out = true,
                Status::Unknown,
                "did not answer within dir_timeout_seconds 2s",
            ),
            (
                "still stuck",
                |d| {
                    d.timed_out = true;
                    d.stuck_since = Some("2026-01-01T00:00:00Z".into());
                },
                Status::Unknown,
                "still stuck since 2026-01-01T00:00:00Z",
            ),
        ];
        for (name, edit, status, needle) in cases {
            let mut d = healthy("/data/spark");
            edit(&mut d);
            let o = evaluate(
                &Facts {
                    dirs: vec![d],
                    ..Facts::default()
                },
                &Settings::default(),
            );
            assert_eq!(o.status(), status, "{name}: {:?}", o.findings);
            assert!(
                o.summary().contains(needle),
                "{name}: {:?} lacks {needle:?}",
                o.summary()
            );
        }
    }

    /// A 10 GiB cache of 4 executors on the healthy dir /cache (50 GiB available).
    fn cache() -> SsdCacheFacts {
        SsdCacheFacts::new(
            &SsdCacheConf {
                path: "/cache".into(),
                size_bytes: 10 * GIB,
                o_direct: false,
            },
            4,
            &healthy("/cache"),
        )
    }

    #[test]
    fn evaluate_ssd_cache_table() {
        type Case = (&'static str, fn(&mut SsdCacheFacts), Status, &'static str);
        let cases: Vec<Case> = vec![
            (
                "fits: 4 x 10 GiB in 50 GiB",
                |_| {},
                Status::Ok,
                "1 scratch dir(s) usable",
            ),
            (
                "too small for every executor",
                |c| c.avail_bytes = Some(39 * GIB),
                Status::Fail,
                "SSD cache path /cache has 39.0 GiB (41875931136 bytes) available, below \
                 `spark.gluten.sql.columnar.backend.velox.ssdCacheSize` 10.0 GiB x 4 executor(s) \
                 per node = 40.0 GiB (42949672960 bytes): Velox init aborts: not enough space for \
                 ssd cache",
            ),
            (
                "exactly enough",
                |c| c.avail_bytes = Some(40 * GIB),
                Status::Ok,
                "usable",
            ),
            (
                "O_DIRECT on tmpfs",
                |c| {
                    c.o_direct = true;
                    c.fs_type = Some("tmpfs".into());
                },
                Status::Fail,
                "is on tmpfs but `spark.gluten.sql.columnar.backend.velox.ssdODirect` is true",
            ),
            (
                "tmpfs without O_DIRECT",
                |c| c.fs_type = Some("tmpfs".into()),
                Status::Ok,
                "usable",
            ),
            (
                "rotational",
                |c| {
                    c.rotational = Some(true);
                    c.disk = Some("sdb".into());
                },
                Status::Warn,
                "SSD cache path /cache is on a rotational disk (sdb)",
            ),
            (
                "missing path",
                |c| {
                    c.exists = Some(false);
                    c.avail_bytes = None;
                },
                Status::Fail,
                "SSD cache path /cache (`spark.gluten.sql.columnar.backend.velox.ssdCachePath`) does not exist",
            ),
            (
                "timed out",
                |c| c.timed_out = true,
                Status::Unknown,
                "SSD cache path /cache: stat/statvfs did not answer",
            ),
            (
                "stuck",
                |c| {
                    c.timed_out = true;
                    c.stuck_since = Some("2026-01-01T00:00:00Z".into());
                },
                Status::Unknown,
                "SSD cache path /cache: stat/statvfs still stuck since 2026-01-01T00:00:00Z",
            ),
        ];
        for (name, edit, status, needle) in cases {
            let mut c = cache();
            edit(&mut c);
            let o = evaluate(
                &Facts {
                    dirs: vec![healthy("/data/spark")],
                    ssd_cache: Some(c),
                    ..Facts::default()
                },
                &Settings::default(),
            );
            assert_eq!(o.status(), status, "{name}: {:?}", o.findings);
            assert!(
                o.summary().contains(needle),
                "{name}: {:?} lacks {needle:?}",
                o.summary()
            );
        }
    }
}
