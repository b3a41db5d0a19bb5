//! `scratch`: the local dirs Gluten spills, shuffles, caches and extracts its JNI libraries into.
//!
//! For each dir: exists and is a directory; its mount (longest prefix in the host's mountinfo),
//! filesystem type and options (`ro` and `noexec` fail, tmpfs warns); the whole disk behind it
//! (`/sys/dev/block/M:m`: rotational, NVMe, model, size); free bytes and inodes (statvfs); a
//! write probe; leftovers of killed executors. Everything that touches the dir itself runs on a
//! short-lived thread per dir under `dir_timeout_seconds`, so one hung NFS mount blinds only
//! its own dir, and a dir still stuck from an earlier round is not probed again. When the Spark
//! conf turns on Velox's SSD cache, its path is probed the same way and must hold
//! `ssdCacheSize` x `executors_per_node` (node-requirements check 5.7).

use crate::check::{CheckError, CheckSettings, NodeCheck, Shared, Verdict};
use crate::checks::Registration;
use crate::host::Host;
use crate::procfs_text::{MountInfo, parse_mountinfo};
use crate::spark_conf::{ByteUnit, SparkConf, parse_spark_defaults};
use crate::time::{format_seconds, rfc3339};
use proto::{Finding, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Bytes the write probe writes (and fsyncs): big enough to touch real blocks, small enough to
/// cost nothing on a healthy disk.
pub const WRITE_PROBE_BYTES: usize = 1024 * 1024;

/// Most directory entries the leftover walk visits per dir; beyond it the sizes are a lower
/// bound and `leftovers_capped` says so.
pub const LEFTOVER_WALK_CAP: usize = 100_000;

/// How many leftover names the facts list per dir (the count and bytes cover all of them).
const LEFTOVER_NAMES_LISTED: usize = 10;

/// Velox's SSD cache keys (Gluten's `GlutenConfig`, node-requirements §5 "Local SSD cache").
pub const CACHE_ENABLED: &str = "spark.gluten.sql.columnar.backend.velox.cacheEnabled";
pub const SSD_CACHE_SIZE: &str = "spark.gluten.sql.columnar.backend.velox.ssdCacheSize";
pub const SSD_CACHE_PATH: &str = "spark.gluten.sql.columnar.backend.velox.ssdCachePath";
pub const SSD_ODIRECT: &str = "spark.gluten.sql.columnar.backend.velox.ssdODirect";
/// `ssdCacheSize`'s default, 1GB (Gluten's docs); a bare number is bytes (`bytesConf(BYTE)`).
pub const SSD_CACHE_SIZE_DEFAULT: u64 = 1 << 30;
/// `ssdCachePath`'s default.
pub const SSD_CACHE_PATH_DEFAULT: &str = "/tmp";

/// `[scratch]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Host paths of the scratch dirs. Default: `spark.local.dir` from `[memory] spark_defaults`
    /// when that is set and has the key, else `["/tmp"]` (Spark's own default).
    pub dirs: Option<Vec<PathBuf>>,
    /// Warn when available space (what an unprivileged executor may use) falls below this share.
    pub warn_free_ratio: f64,
    /// Fail below this share.
    pub fail_free_ratio: f64,
    /// Fail when fewer bytes than this are available (default 1 GiB: Velox's default
    /// `maxSpillFileSize`, one spill file must fit). 0 turns it off.
    pub min_free_bytes: u64,
    /// Warn when the free inode share falls below this (fail at zero free inodes).
    pub min_free_inodes_ratio: f64,
    /// Create, write 1 MiB, fsync and remove a file in each dir.
    pub write_probe: bool,
    /// Deadline of the per-dir work (stat, statvfs, probe, leftover walk). Keep it below the
    /// check's deadline so a hung dir is reported as such while the others still report.
    pub dir_timeout_seconds: f64,
    /// `gluten-*` dirs and `cache.*` files untouched for longer than this are leftovers.
    pub leftover_age_seconds: u64,
    /// Warn when a dir's leftovers take more than this many bytes.
    pub leftover_warn_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dirs: None,
            warn_free_ratio: 0.20,
            fail_free_ratio: 0.05,
            min_free_bytes: 1 << 30,
            min_free_inodes_ratio: 0.05,
            write_probe: true,
            dir_timeout_seconds: 2.0,
            leftover_age_seconds: 86_400,
            leftover_warn_bytes: 10 << 30,
        }
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("warn_free_ratio", self.warn_free_ratio),
            ("fail_free_ratio", self.fail_free_ratio),
            ("min_free_inodes_ratio", self.min_free_inodes_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("`{key}` ({v}) must be between 0 and 1"));
            }
        }
        if self.fail_free_ratio > self.warn_free_ratio {
            return Err(format!(
                "`fail_free_ratio` ({}) must not be above `warn_free_ratio` ({})",
                self.fail_free_ratio, self.warn_free_ratio
            ));
        }
        if !(self.dir_timeout_seconds.is_finite() && self.dir_timeout_seconds > 0.0) {
            return Err(format!(
                "`dir_timeout_seconds` ({}) must be a positive number",
                self.dir_timeout_seconds
            ));
        }
        if let Some(dirs) = &self.dirs {
            if dirs.is_empty() {
                return Err("`dirs` must not be empty (leave it out for the default)".into());
            }
            if let Some(d) = dirs.iter().find(|d| !d.is_absolute()) {
                return Err(format!(
                    "`dirs` entry {} must be an absolute path",
                    d.display()
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Facts
// ---------------------------------------------------------------------------------------------

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

/// Velox's SSD cache as configured, and its path as probed (like a scratch dir).
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct SsdCacheFacts {
    /// `ssdCachePath` (default `/tmp`), a host path.
    pub path: String,
    /// `ssdCacheSize` in bytes (default 1 GiB).
    pub size_bytes: u64,
    /// `[memory] executors_per_node`: each executor creates its own cache files.
    pub executors_per_node: u32,
    /// `size_bytes` x `executors_per_node`.
    pub required_bytes: u64,
    pub avail_bytes: Option<u64>,
    /// `ssdODirect` (default false).
    pub o_direct: bool,
    pub exists: Option<bool>,
    pub is_dir: Option<bool>,
    pub error: Option<String>,
    pub timed_out: bool,
    pub stuck_since: Option<String>,
    pub mount_point: Option<String>,
    pub fs_type: Option<String>,
    pub disk: Option<String>,
    pub rotational: Option<bool>,
}

/// The SSD cache settings read from the Spark conf.
#[derive(Debug, Clone, PartialEq)]
pub struct SsdCacheConf {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub o_direct: bool,
}

/// The SSD cache Velox will set up under `conf`: `None` unless `cacheEnabled` is true and
/// `ssdCacheSize` is above 0 (at 0 Velox caches in memory only).
pub fn ssd_cache_conf(conf: &SparkConf) -> Result<Option<SsdCacheConf>, crate::check::ParseError> {
    if !conf.bool(CACHE_ENABLED)?.unwrap_or(false) {
        return Ok(None);
    }
    let size_bytes = conf
        .size(SSD_CACHE_SIZE, ByteUnit::Byte)?
        .unwrap_or(SSD_CACHE_SIZE_DEFAULT);
    if size_bytes == 0 {
        return Ok(None);
    }
    let path = conf
        .get(SSD_CACHE_PATH)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(SSD_CACHE_PATH_DEFAULT);
    Ok(Some(SsdCacheConf {
        path: PathBuf::from(path),
        size_bytes,
        o_direct: conf.bool(SSD_ODIRECT)?.unwrap_or(false),
    }))
}

impl SsdCacheFacts {
    /// The cache facts from its configuration and its path's probe.
    pub fn new(c: &SsdCacheConf, executors_per_node: u32, d: &DirFacts) -> Self {
        SsdCacheFacts {
            path: c.path.display().to_string(),
            size_bytes: c.size_bytes,
            executors_per_node,
            required_bytes: c.size_bytes.saturating_mul(u64::from(executors_per_node)),
            avail_bytes: d.avail_bytes,
            o_direct: c.o_direct,
            exists: d.exists,
            is_dir: d.is_dir,
            error: d.error.clone(),
            timed_out: d.timed_out,
            stuck_since: d.stuck_since.clone(),
            mount_point: d.mount_point.clone(),
            fs_type: d.fs_type.clone(),
            disk: d.disk.clone(),
            rotational: d.rotational,
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Pure parsers
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Evaluate
// ---------------------------------------------------------------------------------------------

fn pct(r: f64) -> String {
    let p = r * 100.0;
    if p > 0.0 && p < 0.1 {
        "<0.1%".to_string()
    } else {
        format!("{:.1}%", p)
    }
}

/// Bytes for a sentence: `512 B`, `3.5 MiB`, `1.0 GiB`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

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
            pct(r),
            fmt_bytes(d.avail_bytes.unwrap_or(0))
        ),
        None => format!("{} scratch dir(s) usable", facts.dirs.len()),
    });
    add_metrics(facts, &mut o);
    o
}

/// Check 5.7: the cache path must hold every executor's cache files, take O_DIRECT when asked
/// to, and should be on an SSD.
fn evaluate_ssd_cache(c: &SsdCacheFacts, s: &Settings, o: &mut Verdict) {
    let p = &c.path;
    let mut push = |st: Status, m: String| o.push(Finding::new(st, m).about(p.as_str()));
    if let Some(since) = &c.stuck_since {
        push(
            Status::Unknown,
            format!(
                "SSD cache path {p}: stat/statvfs still stuck since {since} (dir_timeout_seconds {}); not probed again until it returns",
                format_seconds(s.dir_timeout_seconds)
            ),
        );
        return;
    }
    if c.timed_out {
        push(
            Status::Unknown,
            format!(
                "SSD cache path {p}: stat/statvfs did not answer within dir_timeout_seconds {} (a hung mount?)",
                format_seconds(s.dir_timeout_seconds)
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
                fmt_bytes(avail),
                fmt_bytes(c.size_bytes),
                c.executors_per_node,
                fmt_bytes(c.required_bytes),
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

fn ratio(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

fn evaluate_dir(d: &DirFacts, s: &Settings, o: &mut Verdict) {
    let p = &d.path;
    let mut push = |st: Status, m: String| o.push(Finding::new(st, m).about(p.as_str()));
    if let Some(since) = &d.stuck_since {
        push(
            Status::Unknown,
            format!(
                "{p}: stat/statvfs still stuck since {since} (dir_timeout_seconds {}); not probed again until it returns",
                format_seconds(s.dir_timeout_seconds)
            ),
        );
    } else if d.timed_out {
        push(
            Status::Unknown,
            format!(
                "{p}: stat/statvfs did not answer within dir_timeout_seconds {} (a hung mount?)",
                format_seconds(s.dir_timeout_seconds)
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
                "{p} is on a noexec mount ({mnt}): Gluten extracts its JNI libraries into the local \
                 dirs and dlopen fails there"
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
                pct(r),
                fmt_bytes(avail),
                fmt_bytes(total)
            );
            if r < s.fail_free_ratio {
                push(
                    Status::Fail,
                    format!("{have}, below fail_free_ratio {}", pct(s.fail_free_ratio)),
                );
            } else if r < s.warn_free_ratio {
                push(
                    Status::Warn,
                    format!("{have}, below warn_free_ratio {}", pct(s.warn_free_ratio)),
                );
            }
        }
        if avail < s.min_free_bytes {
            push(
                Status::Fail,
                format!(
                    "{p} has {} available, below min_free_bytes {}",
                    fmt_bytes(avail),
                    fmt_bytes(s.min_free_bytes)
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
                    pct(r),
                    pct(s.min_free_inodes_ratio)
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
                format_seconds(s.leftover_age_seconds as f64),
                fmt_bytes(bytes),
                if d.leftovers_capped { " or more" } else { "" },
                fmt_bytes(s.leftover_warn_bytes)
            ),
        );
    }
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

// ---------------------------------------------------------------------------------------------
// Reading the host
// ---------------------------------------------------------------------------------------------

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

/// What the per-dir thread saw.
#[derive(Debug, Default, Clone)]
struct DirProbe {
    resolved: Option<PathBuf>,
    exists: Option<bool>,
    is_dir: Option<bool>,
    error: Option<String>,
    statvfs: Option<(u64, u64, u64, u64, u64)>,
    write: Option<Result<f64, String>>,
    leftovers: Option<Leftovers>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Leftovers {
    pub count: u64,
    pub bytes: u64,
    pub capped: bool,
    pub names: Vec<String>,
}

/// Stat, statvfs, write probe and leftover walk of one dir (host path `dir`). Blocking: runs on
/// its own thread.
fn probe_dir(host: &Host, dir: &Path, s: &Settings) -> DirProbe {
    let mut p = DirProbe::default();
    let local = match host.resolve(dir) {
        Ok(l) => l,
        Err(CheckError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            p.exists = Some(false);
            return p;
        }
        Err(e) => {
            p.error = Some(e.to_string());
            return p;
        }
    };
    p.resolved = host.host_path_of(&local);
    match std::fs::metadata(&local) {
        Ok(m) => {
            p.exists = Some(true);
            p.is_dir = Some(m.is_dir());
            if !m.is_dir() {
                return p;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            p.exists = Some(false);
            return p;
        }
        Err(e) => {
            p.error = Some(format!("{}: {e}", local.display()));
            return p;
        }
    }
    match nix::sys::statvfs::statvfs(&local) {
        // The block and inode counters are 32-bit on some targets.
        #[allow(clippy::unnecessary_cast)]
        Ok(v) => {
            let frsize = v.fragment_size() as u64;
            p.statvfs = Some((
                (v.blocks() as u64).saturating_mul(frsize),
                (v.blocks_free() as u64).saturating_mul(frsize),
                (v.blocks_available() as u64).saturating_mul(frsize),
                v.files() as u64,
                v.files_free() as u64,
            ));
        }
        Err(e) => p.error = Some(format!("statvfs {}: {}", local.display(), e.desc())),
    }
    if s.write_probe {
        p.write = Some(write_probe(&local));
    }
    p.leftovers = Some(scan_leftovers(
        &local,
        Duration::from_secs(s.leftover_age_seconds),
        SystemTime::now(),
        LEFTOVER_WALK_CAP,
    ));
    p
}

/// Creates a uniquely named file (O_CREAT|O_EXCL), writes 1 MiB, fsyncs and removes it; returns
/// the seconds that took, or the error text naming the step.
pub fn write_probe(dir: &Path) -> Result<f64, String> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!(
        ".gluten-node-agent-probe-{}-{nanos}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let path = dir.join(name);
    let t0 = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("creating a file: {e}"))?;
    let result = f
        .write_all(&vec![0u8; WRITE_PROBE_BYTES])
        .map_err(|e| format!("writing 1 MiB: {e}"))
        .and_then(|()| f.sync_all().map_err(|e| format!("fsync: {e}")));
    drop(f);
    let removed = std::fs::remove_file(&path).map_err(|e| format!("removing the probe file: {e}"));
    result?;
    removed?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Leftovers directly in `dir`: `gluten-*` dirs and `cache.*` files whose newest modification
/// (anywhere inside, so a live executor's busy dir is not one) is older than `age`. Sizes are
/// allocated bytes; the walk visits at most `cap` entries.
pub fn scan_leftovers(dir: &Path, age: Duration, now: SystemTime, cap: usize) -> Leftovers {
    let mut out = Leftovers::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut budget = cap;
    let mut names = Vec::new();
    for e in entries.flatten() {
        if budget == 0 {
            out.capped = true;
            break;
        }
        budget -= 1;
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        let candidate = (name.starts_with("gluten-") && meta.is_dir())
            || (name.starts_with("cache.") && meta.is_file());
        if !candidate {
            continue;
        }
        let (bytes, newest, capped) = walk_size(&e.path(), &meta, &mut budget);
        out.capped |= capped;
        let old = now.duration_since(newest).map(|d| d > age).unwrap_or(false);
        if old {
            out.count += 1;
            out.bytes = out.bytes.saturating_add(bytes);
            names.push(name);
        }
    }
    names.sort();
    names.truncate(LEFTOVER_NAMES_LISTED);
    out.names = names;
    out
}

/// Allocated bytes and newest mtime under `path` (not following links), within `budget`.
fn walk_size(path: &Path, meta: &std::fs::Metadata, budget: &mut usize) -> (u64, SystemTime, bool) {
    let mut bytes = meta.blocks().saturating_mul(512);
    let mut newest = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if !meta.is_dir() {
        return (bytes, newest, false);
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if *budget == 0 {
                return (bytes, newest, true);
            }
            *budget -= 1;
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            bytes = bytes.saturating_add(m.blocks().saturating_mul(512));
            if let Ok(t) = m.modified() {
                newest = newest.max(t);
            }
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, newest, false)
}

/// A per-dir thread that outlived its deadline.
struct Stuck {
    since: SystemTime,
    done: Arc<AtomicBool>,
}

/// The per-dir work; a field so tests can stand in a probe that hangs like a dead NFS mount.
type ProbeFn = fn(&Host, &Path, &Settings) -> DirProbe;

pub struct Scratch {
    settings: Settings,
    spark_defaults: Option<PathBuf>,
    /// `Shared::executors_per_node`: how many executors' SSD cache files the cache path holds.
    executors_per_node: u32,
    probe: ProbeFn,
    /// Dirs whose per-dir thread is still running past its deadline, by configured path.
    stuck: Mutex<HashMap<PathBuf, Stuck>>,
}

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<Scratch>();

impl Scratch {
    /// Velox's SSD cache as `spark_defaults` configures it (a missing file: none).
    fn ssd_cache(&self, host: &Host) -> Result<Option<SsdCacheConf>, CheckError> {
        let Some(path) = &self.spark_defaults else {
            return Ok(None);
        };
        let Some(text) = host.read_optional(path)? else {
            return Ok(None);
        };
        ssd_cache_conf(&parse_spark_defaults(&text))
            .map_err(|e| CheckError::parse(&host.path(path), e))
    }

    /// The dirs to check and where that list came from.
    fn dirs(&self, host: &Host) -> Result<(Vec<PathBuf>, String), CheckError> {
        if let Some(d) = &self.settings.dirs {
            return Ok((d.clone(), "config".into()));
        }
        if let Some(conf) = &self.spark_defaults
            && let Some(text) = host.read_optional(conf)?
            && let Some(d) = parse_spark_defaults(&text).local_dirs()
        {
            return Ok((d, format!("spark.local.dir in {}", conf.display())));
        }
        Ok((vec![PathBuf::from("/tmp")], "default".into()))
    }

    /// The host's mount table: `/proc/1/mountinfo` first in a container (the host's init sees
    /// the host's mounts), `/proc/self/mountinfo` first when the root is `/` (our own mount
    /// namespace is the one our probes act in); the other one when the first is unreadable.
    fn mountinfo(&self, host: &Host) -> Result<Option<(String, Vec<MountInfo>)>, CheckError> {
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

    /// Runs `probe_dir` for every dir on its own thread, each under `dir_timeout_seconds`,
    /// skipping dirs still stuck from an earlier round.
    fn probe_all(
        &self,
        host: &Host,
        dirs: &[PathBuf],
    ) -> Vec<(Option<DirProbe>, Option<SystemTime>, bool)> {
        let timeout = Duration::from_secs_f64(self.settings.dir_timeout_seconds);
        let mut stuck = self.stuck.lock().unwrap_or_else(|e| e.into_inner());
        stuck.retain(|_, s| !s.done.load(Ordering::Acquire));
        let mut pending = Vec::new();
        for dir in dirs {
            if let Some(s) = stuck.get(dir) {
                pending.push(Err(s.since));
                continue;
            }
            let (tx, rx) = std::sync::mpsc::channel();
            let done = Arc::new(AtomicBool::new(false));
            let (h, d, st, flag) = (
                host.clone(),
                dir.clone(),
                self.settings.clone(),
                done.clone(),
            );
            let probe = self.probe;
            let started = SystemTime::now();
            let spawned = std::thread::Builder::new()
                .name("scratch-dir".into())
                .spawn(move || {
                    let _ = tx.send(probe(&h, &d, &st));
                    flag.store(true, Ordering::Release);
                });
            match spawned {
                Ok(_) => pending.push(Ok((rx, done, started))),
                Err(e) => {
                    let p = DirProbe {
                        error: Some(format!("starting a thread: {e}")),
                        ..DirProbe::default()
                    };
                    let (tx, rx) = std::sync::mpsc::channel();
                    let _ = tx.send(p);
                    pending.push(Ok((rx, Arc::new(AtomicBool::new(true)), started)));
                }
            }
        }
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        for (dir, p) in dirs.iter().zip(pending) {
            match p {
                Err(since) => out.push((None, Some(since), true)),
                Ok((rx, done, started)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(probe) => out.push((Some(probe), None, false)),
                        Err(_) => {
                            stuck.insert(
                                dir.clone(),
                                Stuck {
                                    since: started,
                                    done,
                                },
                            );
                            out.push((None, None, true));
                        }
                    }
                }
            }
        }
        out
    }
}

impl NodeCheck for Scratch {
    const NAME: &'static str = "scratch";
    type Settings = Settings;
    type Facts = Facts;

    /// The Spark plan (`spark_defaults`, `executors_per_node`) comes from `Shared`.
    fn build(settings: Settings, shared: &Shared) -> Self {
        Scratch {
            settings,
            spark_defaults: shared.spark_defaults.clone(),
            executors_per_node: shared.executors_per_node.max(1),
            probe: probe_dir,
            stuck: Mutex::new(HashMap::new()),
        }
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate(facts, settings)
    }

    fn read(&self, host: &Host) -> Result<Facts, CheckError> {
        let (dirs, dirs_source) = self.dirs(host)?;
        let cache = self.ssd_cache(host)?;
        let mountinfo = self.mountinfo(host)?;
        // The SSD cache path is probed like a scratch dir (same deadline, same stuck set); it
        // is probed once when it is also a scratch dir.
        let mut probed = dirs.clone();
        if let Some(c) = &cache
            && !probed.contains(&c.path)
        {
            probed.push(c.path.clone());
        }
        let probes = self.probe_all(host, &probed);
        let mut block_cache: HashMap<(u32, u32), Option<BlockFacts>> = HashMap::new();
        let mut facts = Facts {
            dirs_source,
            mountinfo_path: mountinfo.as_ref().map(|(p, _)| p.clone()),
            ..Facts::default()
        };
        let mut all = Vec::new();
        for (dir, (probe, stuck_since, timed_out)) in probed.iter().zip(probes) {
            let mut d = DirFacts {
                path: dir.display().to_string(),
                timed_out,
                stuck_since: stuck_since.map(rfc3339),
                ..DirFacts::default()
            };
            if let Some(p) = &probe {
                d.resolved_path = p.resolved.as_ref().map(|r| r.display().to_string());
                d.exists = p.exists;
                d.is_dir = p.is_dir;
                d.error = p.error.clone();
                if let Some((total, free, avail, inodes, free_inodes)) = p.statvfs {
                    d.total_bytes = Some(total);
                    d.free_bytes = Some(free);
                    d.avail_bytes = Some(avail);
                    d.total_inodes = Some(inodes);
                    d.free_inodes = Some(free_inodes);
                }
                match &p.write {
                    Some(Ok(secs)) => {
                        d.write_probe_ok = Some(true);
                        d.write_probe_latency_seconds = Some(*secs);
                    }
                    Some(Err(e)) => {
                        d.write_probe_ok = Some(false);
                        d.write_probe_error = Some(e.clone());
                    }
                    None => {}
                }
                if let Some(l) = &p.leftovers {
                    d.leftover_count = Some(l.count);
                    d.leftover_bytes = Some(l.bytes);
                    d.leftovers_capped = l.capped;
                    d.leftovers = l.names.clone();
                }
            }
            // The mount is looked up by the host path after symlinks (lexically when unknown).
            let lookup = probe
                .as_ref()
                .and_then(|p| p.resolved.clone())
                .unwrap_or_else(|| host.host_path_of(&host.path(dir)).unwrap_or(dir.clone()));
            if let Some(m) = mountinfo
                .as_ref()
                .and_then(|(_, ms)| find_mount(ms, &lookup))
            {
                d.mount_point = Some(m.mount_point.clone());
                d.fs_type = Some(m.fs_type.clone());
                d.mount_source = Some(m.source.clone());
                d.mount_options = m.mount_options.clone();
                d.super_options = m.super_options.clone();
                d.read_only = Some(m.read_only());
                d.noexec = Some(m.noexec());
                d.device = Some(format!("{}:{}", m.major, m.minor));
                // Major 0: tmpfs, overlay, NFS... no block device behind it.
                if m.major != 0 {
                    let b = match block_cache.get(&(m.major, m.minor)) {
                        Some(b) => b.clone(),
                        None => {
                            let b = read_block(host, m.major, m.minor)?;
                            block_cache.insert((m.major, m.minor), b.clone());
                            b
                        }
                    };
                    if let Some(b) = b {
                        d.disk = b.disk;
                        d.partition = b.partition;
                        d.rotational = b.rotational;
                        d.nvme = b.nvme;
                        d.model = b.model;
                        d.disk_size_bytes = b.size_bytes;
                    }
                }
            }
            all.push(d);
        }
        if let Some(c) = &cache {
            let at = probed.iter().position(|p| p == &c.path).unwrap_or(0);
            facts.ssd_cache = all
                .get(at)
                .map(|d| SsdCacheFacts::new(c, self.executors_per_node, d));
        }
        all.truncate(dirs.len());
        facts.dirs = all;
        facts.shared_devices = shared_devices(&facts.dirs);
        Ok(facts)
    }
}

fn add_metrics(facts: &Facts, o: &mut Verdict) {
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
mod tests {
    use super::*;
    use crate::check::Outcome;

    fn scratch(settings: Settings, spark_defaults: Option<PathBuf>, executors: u32) -> Scratch {
        let shared = Shared {
            spark_defaults,
            executors_per_node: executors,
        };
        Scratch::build(settings, &shared)
    }

    /// One run as the engine does it: read, evaluate, facts serialised.
    fn run(check: &Scratch, h: &Host) -> Outcome {
        let facts = check.read(h).unwrap();
        Scratch::evaluate(&facts, check.settings()).with_facts(&facts)
    }
    use std::os::unix::fs::symlink;
    use std::sync::atomic::AtomicUsize;

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

    #[test]
    fn settings_validate_names_the_key() {
        let ok = Settings::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            s.validate().unwrap_err()
        };
        assert!(
            bad(|s| s.fail_free_ratio = 0.3)
                .starts_with("`fail_free_ratio` (0.3) must not be above `warn_free_ratio` (0.2)")
        );
        assert!(bad(|s| s.warn_free_ratio = 1.5).starts_with("`warn_free_ratio`"));
        assert!(bad(|s| s.min_free_inodes_ratio = -0.1).starts_with("`min_free_inodes_ratio`"));
        assert!(bad(|s| s.dir_timeout_seconds = 0.0).starts_with("`dir_timeout_seconds`"));
        assert!(bad(|s| s.dirs = Some(vec![])).starts_with("`dirs`"));
        assert!(bad(|s| s.dirs = Some(vec!["tmp".into()])).starts_with("`dirs`"));
    }

    #[test]
    fn settings_reject_unknown_keys() {
        let e = toml::from_str::<Settings>("warn_free_ratios = 0.1").unwrap_err();
        assert!(e.to_string().contains("warn_free_ratios"), "{e}");
    }

    const GIB: u64 = 1 << 30;

    /// A healthy dir: 100 GiB, 50% available, on an NVMe SSD.
    fn healthy(path: &str) -> DirFacts {
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

    #[test]
    fn ssd_cache_conf_follows_gluten_defaults_and_spark_sizes() {
        let conf = |text: &str| ssd_cache_conf(&parse_spark_defaults(text));
        assert_eq!(conf("").unwrap(), None);
        assert_eq!(conf(&format!("{CACHE_ENABLED} false\n")).unwrap(), None);
        assert_eq!(
            conf(&format!("{CACHE_ENABLED} true\n")).unwrap(),
            Some(SsdCacheConf {
                path: "/tmp".into(),
                size_bytes: GIB,
                o_direct: false
            }),
            "defaults: /tmp, 1GB"
        );
        assert_eq!(
            conf(&format!("{CACHE_ENABLED} true\n{SSD_CACHE_SIZE} 0\n")).unwrap(),
            None,
            "size 0: memory cache only"
        );
        let c = conf(&format!(
            "{CACHE_ENABLED} TRUE\n{SSD_CACHE_SIZE} 4096\n{SSD_CACHE_PATH} /mnt/ssd\n{SSD_ODIRECT} true\n"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.path, c.size_bytes, c.o_direct),
            (PathBuf::from("/mnt/ssd"), 4096, true),
            "a bare number is bytes"
        );
        let c = conf(&format!("{CACHE_ENABLED} true\n{SSD_CACHE_SIZE} 2g\n"))
            .unwrap()
            .unwrap();
        assert_eq!(c.size_bytes, 2 * GIB);
        let e = conf(&format!("{CACHE_ENABLED} true\n{SSD_CACHE_SIZE} 1.5g\n")).unwrap_err();
        assert!(e.0.contains(SSD_CACHE_SIZE), "{e}");
    }

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

    #[test]
    fn write_probe_leaves_nothing_behind_and_names_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let secs = write_probe(dir.path()).unwrap();
        assert!(secs >= 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let e = write_probe(&dir.path().join("missing")).unwrap_err();
        assert!(
            e.starts_with("creating a file: No such file or directory"),
            "{e}"
        );
    }

    #[test]
    fn leftovers_are_old_gluten_dirs_and_cache_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("gluten-1234/jni")).unwrap();
        std::fs::write(d.join("gluten-1234/jni/libvelox.so"), vec![1u8; 8192]).unwrap();
        std::fs::write(d.join("cache.abcd.0"), vec![1u8; 4096]).unwrap();
        std::fs::write(d.join("gluten-file-not-dir"), b"x").unwrap();
        std::fs::create_dir(d.join("cache.dir-not-file")).unwrap();
        std::fs::create_dir(d.join("blockmgr-1")).unwrap();
        let day = Duration::from_secs(86_400);
        let fresh = scan_leftovers(d, day, SystemTime::now(), 1000);
        assert_eq!(
            (fresh.count, fresh.bytes),
            (0, 0),
            "young entries are a live executor's"
        );
        let later = SystemTime::now() + 2 * day;
        let old = scan_leftovers(d, day, later, 1000);
        assert_eq!(old.count, 2);
        assert_eq!(old.names, ["cache.abcd.0", "gluten-1234"]);
        assert!(old.bytes >= 8192 + 4096, "{}", old.bytes);
        assert!(!old.capped);
        let capped = scan_leftovers(d, day, later, 2);
        assert!(capped.capped);
    }

    static HUNG_RELEASED: AtomicBool = AtomicBool::new(false);
    static HUNG_CALLS: AtomicUsize = AtomicUsize::new(0);

    /// Hangs on `/hung` until released, like statvfs on a dead NFS mount; probes others for real.
    fn hanging_probe(host: &Host, dir: &Path, s: &Settings) -> DirProbe {
        if dir == Path::new("/hung") {
            HUNG_CALLS.fetch_add(1, Ordering::SeqCst);
            while !HUNG_RELEASED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        probe_dir(host, dir, s)
    }

    #[test]
    fn a_hung_dir_is_unknown_alone_and_not_probed_again_while_stuck() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("ok")).unwrap();
        std::fs::create_dir_all(root.path().join("hung")).unwrap();
        let settings = Settings {
            dirs: Some(vec!["/hung".into(), "/ok".into()]),
            dir_timeout_seconds: 0.2,
            min_free_bytes: 0,
            warn_free_ratio: 0.0,
            fail_free_ratio: 0.0,
            min_free_inodes_ratio: 0.0,
            ..Settings::default()
        };
        let mut check = scratch(settings, None, 1);
        check.probe = hanging_probe;
        let h = Host::new(root.path());
        let by_path = |o: &Outcome, p: &str| {
            o.facts["dirs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["path"] == p)
                .unwrap()
                .clone()
        };
        let t0 = Instant::now();
        let o = run(&check, &h);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(o.status(), Status::Unknown, "{:?}", o.findings);
        assert!(
            o.summary()
                .contains("/hung: stat/statvfs did not answer within dir_timeout_seconds 0.2s"),
            "{}",
            o.summary()
        );
        assert_eq!(by_path(&o, "/ok")["write_probe_ok"], true);
        assert_eq!(by_path(&o, "/hung")["exists"], serde_json::Value::Null);

        let o = run(&check, &h);
        assert!(
            o.summary()
                .contains("/hung: stat/statvfs still stuck since"),
            "{}",
            o.summary()
        );
        assert_eq!(
            HUNG_CALLS.load(Ordering::SeqCst),
            1,
            "not probed again while stuck"
        );
        assert_eq!(by_path(&o, "/ok")["write_probe_ok"], true);

        HUNG_RELEASED.store(true, Ordering::SeqCst);
        let freed = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            check
                .stuck
                .lock()
                .unwrap()
                .values()
                .all(|s| s.done.load(Ordering::Acquire))
        });
        assert!(freed);
        let o = run(&check, &h);
        assert_eq!(o.status(), Status::Ok, "{:?}", o.findings);
        assert_eq!(HUNG_CALLS.load(Ordering::SeqCst), 2);
    }

    static CACHE_HUNG_RELEASED: AtomicBool = AtomicBool::new(false);
    static CACHE_HUNG_CALLS: AtomicUsize = AtomicUsize::new(0);
    static SHARED_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn hanging_cache_probe(host: &Host, dir: &Path, s: &Settings) -> DirProbe {
        if dir == Path::new("/cache-hung") {
            CACHE_HUNG_CALLS.fetch_add(1, Ordering::SeqCst);
            while !CACHE_HUNG_RELEASED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if dir == Path::new("/shared") {
            SHARED_CALLS.fetch_add(1, Ordering::SeqCst);
        }
        probe_dir(host, dir, s)
    }

    #[test]
    fn the_ssd_cache_path_is_probed_like_a_scratch_dir_under_the_deadline() {
        let root = tempfile::tempdir().unwrap();
        for d in ["ok", "cache-hung", "shared", "etc"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let conf_at = |path: &str| {
            std::fs::write(
                root.path().join("etc/spark-defaults.conf"),
                format!("{CACHE_ENABLED} true\n{SSD_CACHE_SIZE} 1k\n{SSD_CACHE_PATH} {path}\n"),
            )
            .unwrap();
        };
        let settings = Settings {
            dirs: Some(vec!["/ok".into(), "/shared".into()]),
            dir_timeout_seconds: 0.2,
            min_free_bytes: 0,
            warn_free_ratio: 0.0,
            fail_free_ratio: 0.0,
            min_free_inodes_ratio: 0.0,
            ..Settings::default()
        };
        let mut check = scratch(settings, Some("/etc/spark-defaults.conf".into()), 3);
        check.probe = hanging_cache_probe;
        let h = Host::new(root.path());

        // A cache path that is also a scratch dir is probed once and reported in both places.
        conf_at("/shared");
        let o = run(&check, &h);
        assert_eq!(SHARED_CALLS.load(Ordering::SeqCst), 1);
        assert_eq!(o.facts["dirs"].as_array().unwrap().len(), 2);
        assert_eq!(o.facts["ssd_cache"]["path"], "/shared");
        assert_eq!(o.facts["ssd_cache"]["required_bytes"], 3 * 1024);
        assert!(o.facts["ssd_cache"]["avail_bytes"].as_u64().unwrap() > 0);
        assert!(
            !o.findings.iter().any(|f| f.status == Status::Fail),
            "{:?}",
            o.findings
        );

        // A hung cache path is unknown on its own, then not probed again while stuck.
        conf_at("/cache-hung");
        let t0 = Instant::now();
        let o = run(&check, &h);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(o.status(), Status::Unknown, "{:?}", o.findings);
        assert!(
            o.summary()
                .contains("SSD cache path /cache-hung: stat/statvfs did not answer"),
            "{}",
            o.summary()
        );
        assert_eq!(o.facts["dirs"].as_array().unwrap().len(), 2);
        let o = run(&check, &h);
        assert!(
            o.summary()
                .contains("SSD cache path /cache-hung: stat/statvfs still stuck since"),
            "{}",
            o.summary()
        );
        assert_eq!(CACHE_HUNG_CALLS.load(Ordering::SeqCst), 1);
        CACHE_HUNG_RELEASED.store(true, Ordering::SeqCst);
    }

    #[test]
    fn dirs_default_to_spark_local_dir_then_tmp() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/spark")).unwrap();
        std::fs::write(
            root.path().join("etc/spark/spark-defaults.conf"),
            "spark.local.dir /d1,/d2\n",
        )
        .unwrap();
        let h = Host::new(root.path());
        let conf = Some(PathBuf::from("/etc/spark/spark-defaults.conf"));
        let (d, src) = scratch(Settings::default(), conf, 1).dirs(&h).unwrap();
        assert_eq!(d, [PathBuf::from("/d1"), PathBuf::from("/d2")]);
        assert_eq!(src, "spark.local.dir in /etc/spark/spark-defaults.conf");
        let (d, src) = scratch(Settings::default(), Some("/nope.conf".into()), 1)
            .dirs(&h)
            .unwrap();
        assert_eq!((d, src.as_str()), (vec![PathBuf::from("/tmp")], "default"));
        let s = Settings {
            dirs: Some(vec!["/x".into()]),
            ..Settings::default()
        };
        let (d, src) = scratch(s, Some("/etc/spark/spark-defaults.conf".into()), 1)
            .dirs(&h)
            .unwrap();
        assert_eq!((d, src.as_str()), (vec![PathBuf::from("/x")], "config"));
    }
}
