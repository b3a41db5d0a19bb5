//! What touches a dir itself, on a short-lived thread per dir under `dir_timeout_seconds`: stat,
//! statvfs, the write probe, the leftovers walk; and the set of dirs still stuck from an earlier
//! round, which are not probed again.

use super::*;
use crate::host::Host;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Bytes the write probe writes (and fsyncs): big enough to touch real blocks, small enough to
/// cost nothing on a healthy disk.
pub const WRITE_PROBE_BYTES: usize = 1024 * 1024;

/// Most directory entries the leftover walk visits per dir; beyond it the sizes are a lower
/// bound and `leftovers_capped` says so.
pub const LEFTOVER_WALK_CAP: usize = 100_000;

/// How many leftover names the facts list per dir (the count and bytes cover all of them).
pub(super) const LEFTOVER_NAMES_LISTED: usize = 10;

/// What the per-dir thread saw.
#[derive(Debug, Default)]
pub(super) struct DirProbe {
    pub(super) resolved: Option<PathBuf>,
    pub(super) exists: Option<bool>,
    pub(super) is_dir: Option<bool>,
    pub(super) error: Option<String>,
    pub(super) statvfs: Option<(u64, u64, u64, u64, u64)>,
    /// The write probe's seconds, or the step that failed.
    pub(super) write: Option<Result<f64, WriteProbeError>>,
    pub(super) leftovers: Option<Leftovers>,
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
pub(super) fn probe_dir(host: &Host, dir: &Path, s: &Settings) -> DirProbe {
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

/// Which step of the write probe failed, with the error.
#[derive(Debug, thiserror::Error)]
pub enum WriteProbeError {
    #[error("creating a file: {0}")]
    Create(#[source] std::io::Error),
    #[error("writing 1 MiB: {0}")]
    Write(#[source] std::io::Error),
    #[error("fsync: {0}")]
    Sync(#[source] std::io::Error),
    #[error("removing the probe file: {0}")]
    Remove(#[source] std::io::Error),
}

/// Creates a uniquely named file (O_CREAT|O_EXCL), writes 1 MiB, fsyncs and removes it; returns
/// the seconds that took, or the step that failed.
pub fn write_probe(dir: &Path) -> Result<f64, WriteProbeError> {
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
        .map_err(WriteProbeError::Create)?;
    let result = f
        .write_all(&vec![0u8; WRITE_PROBE_BYTES])
        .map_err(WriteProbeError::Write)
        .and_then(|()| f.sync_all().map_err(WriteProbeError::Sync));
    drop(f);
    let removed = std::fs::remove_file(&path).map_err(WriteProbeError::Remove);
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
pub(super) fn walk_size(
    path: &Path,
    meta: &std::fs::Metadata,
    budget: &mut usize,
) -> (u64, SystemTime, bool) {
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
pub(super) struct Stuck {
    since: SystemTime,
    done: Arc<AtomicBool>,
}

/// The per-dir work; a field so tests can stand in a probe that hangs like a dead NFS mount.
pub(super) type ProbeFn = fn(&Host, &Path, &Settings) -> DirProbe;

impl Scratch {
    /// Runs `probe_dir` for every dir on its own thread, each under `dir_timeout_seconds`,
    /// skipping dirs still stuck from an earlier round.
    pub(super) fn probe_all(
        &self,
        host: &Host,
        dirs: &[PathBuf],
        settings: &Settings,
    ) -> Vec<(Option<DirProbe>, Option<SystemTime>, bool)> {
        let timeout = Duration::from_secs_f64(settings.dir_timeout_seconds);
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
            let (h, d, st, flag) = (host.clone(), dir.clone(), settings.clone(), done.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use crate::scratch::tests::{run, scratch};
    use proto::Status;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn write_probe_leaves_nothing_behind_and_names_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let secs = write_probe(dir.path()).unwrap();
        assert!(secs >= 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let e = write_probe(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
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
        check.check_mut().probe = hanging_probe;
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
                .check()
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
        check.check_mut().probe = hanging_cache_probe;
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
}
