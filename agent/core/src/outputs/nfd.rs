//! The node-feature-discovery features file (`[nfd] features_file`): after every round the
//! daemon replaces it atomically with the verdict as node labels, which nfd-worker's `local`
//! source publishes (as `feature.node.kubernetes.io/<name>`, a name without a namespace getting
//! that prefix). The agent needs no Kubernetes API access for this.
//!
//! Rules taken from NFD's `source/local/local.go`: files whose name starts with `.` are ignored
//! (so the temp file is a dotfile in the same directory, then fsync, then rename; it has a
//! random name and is created `O_CREAT|O_EXCL|O_NOFOLLOW|O_NONBLOCK` and checked to be a regular
//! file, so a link, FIFO or file planted at a guessable name is never followed or written); a file over
//! 65,536 bytes is skipped; lines are trimmed; `# +expiry-time=<RFC3339>` applies to the lines
//! after it (so it comes first: labels of a dead agent vanish by themselves); `name=value`.
//!
//! Content, in this order:
//! ```text
//! # +expiry-time=2026-12-03T10:00:45Z
//! gluten-node-agent.ready=true
//! gluten-node-agent.velox_library=ok
//! ...one line per check...
//! gluten-node-agent.velox-build=<identity>
//! gluten-node-agent.cpu-core=<core>       (arm64: neoverse-n1, ...)
//! ```

use crate::snapshot::Snapshot;
use common::config_file::ConfigError;
use proto::{NodeReport, Status};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// `[nfd]`: the node-feature-discovery output. Off unless `features_file` is set.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NfdConfig {
    /// The features file to write, e.g.
    /// `/etc/kubernetes/node-feature-discovery/features.d/gluten-node-agent`.
    pub features_file: Option<PathBuf>,
}

impl NfdConfig {
    /// Rules for `features_file`; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.features_file else {
            return Ok(());
        };
        let bad = |why: &str| {
            Err(ConfigError::key(
                "nfd.features_file",
                format!("{}: {why}", path.display()),
            ))
        };
        if !path.is_absolute() {
            return bad("must be an absolute path");
        }
        match path.file_name().and_then(|n| n.to_str()) {
            None => bad("must name a file"),
            Some(n) if n.starts_with('.') => {
                bad("must not start with `.` (node-feature-discovery ignores dotfiles)")
            }
            Some(_) => Ok(()),
        }
    }
}

/// The prefix of every label name we write (NFD adds `feature.node.kubernetes.io/`).
pub const LABEL_PREFIX: &str = "gluten-node-agent.";
/// The inventory key whose value is the Velox library's drift identity (build id, else the
/// jar's build info, else a content digest: official Gluten builds carry no build id).
pub const IDENTITY_KEY: &str = "velox_library.identity";
/// The inventory key of an arm64 host's core (`neoverse-n1`: GCC's `-mcpu` name from MIDR_EL1,
/// else `unknown-<implementer>-<part>`), for node affinity to the core a library was built for.
pub const CPU_CORE_KEY: &str = "cpu.core";
/// NFD skips feature files larger than this.
pub const MAX_FILE_BYTES: usize = 65_536;
/// Labels expire at most this far ahead, however long the interval.
pub const MAX_EXPIRY: Duration = Duration::from_secs(600);
/// Longest label value (and name part) Kubernetes accepts.
pub const MAX_LABEL_CHARS: usize = 63;

/// When the labels of a round expire: three intervals on, at most [`MAX_EXPIRY`].
pub fn expiry(now: SystemTime, interval: Duration) -> SystemTime {
    now + (interval * 3).min(MAX_EXPIRY)
}

/// `raw` as a valid label value (`(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63
/// characters): other characters become `_`, the ends are trimmed to alphanumerics, and a value
/// still too long keeps its head and gets a hash of the whole, so distinct identities stay
/// distinct. `None` when nothing label-safe is left.
pub fn label_value(raw: &str) -> Option<String> {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= MAX_LABEL_CHARS {
        return Some(trimmed.to_string());
    }
    // 54 characters of head, `-`, 8 hex digits of FNV-1a over the raw identity.
    let hash = raw.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let head =
        trimmed[..MAX_LABEL_CHARS - 9].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    Some(format!("{head}-{hash:08x}"))
}

/// Whether `v` is a valid Kubernetes label value.
pub fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= MAX_LABEL_CHARS
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

/// The features file for `report`, labels expiring at `expires`.
pub fn render(report: &NodeReport, expires: SystemTime) -> String {
    let mut out = format!(
        "# +expiry-time={}\n",
        humantime::format_rfc3339_seconds(expires)
    );
    let ready = report.status != Status::Fail;
    out.push_str(&format!("{LABEL_PREFIX}ready={ready}\n"));
    for c in &report.checks {
        // Check names are label-safe already; a name that is not is mapped, never dropped.
        if let Some(name) = label_value(&c.name) {
            out.push_str(&format!("{LABEL_PREFIX}{name}={}\n", c.status));
        }
    }
    if let Some(id) = report
        .node
        .inventory
        .get(IDENTITY_KEY)
        .and_then(|v| label_value(v))
    {
        out.push_str(&format!("{LABEL_PREFIX}velox-build={id}\n"));
    }
    if let Some(core) = report
        .node
        .inventory
        .get(CPU_CORE_KEY)
        .and_then(|v| label_value(v))
    {
        out.push_str(&format!("{LABEL_PREFIX}cpu-core={core}\n"));
    }
    out
}

/// A temp file next to `path`: a dotfile (nfd-worker never reads it half-written) with a random
/// part, `.<name>.<16 hex digits>.tmp`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()))
}

/// Creates a new temp file next to `path` (exclusively, not following links, not blocking on a
/// FIFO) and checks it is a regular file; a name taken already is tried again with another.
fn create_temp(path: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut tries = 0;
    loop {
        let tmp = temp_path(path);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&tmp);
        match opened {
            Ok(f) => {
                if !f.metadata()?.file_type().is_file() {
                    return Err(io::Error::other(format!(
                        "creating {}: not a regular file",
                        tmp.display()
                    )));
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("creating {}: {e}", tmp.display()),
                ));
            }
        }
    }
}

/// Replaces `path` with `contents` atomically: write a new dotfile temp in the same directory,
/// fsync it, rename it over `path`, fsync the directory. On failure the temp is removed, so
/// nothing is left behind. Errors name the path.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let named = |what: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    let (tmp, mut f) = create_temp(path)?;
    let written = (|| {
        f.write_all(contents)
            .and_then(|()| f.sync_all())
            .map_err(|e| named("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| named("renaming onto", path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is synced; a failure here is not one of the
        // file's content, so it is only logged.
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::debug!(dir = %dir.display(), "fsync of the features dir failed: {e}");
        }
    }
    Ok(())
}

/// Writes the features file after every published round until `stop` fires. A failed write is
/// logged (the first one and every change of error) and tried again next round.
pub async fn run(
    path: PathBuf,
    interval: Duration,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            changed = snapshots.changed() => if changed.is_err() { return },
        }
        let Some(snapshot) = snapshots.borrow_and_update().clone() else {
            continue;
        };
        let text = render(&snapshot.report, expiry(SystemTime::now(), interval));
        let p = path.clone();
        let result = if text.len() > MAX_FILE_BYTES {
            Err(format!(
                "{}: {} bytes, over node-feature-discovery's limit of {MAX_FILE_BYTES}",
                path.display(),
                text.len()
            ))
        } else {
            tokio::task::spawn_blocking(move || write_atomic(&p, text.as_bytes()))
                .await
                .map_err(|e| format!("{}: writer task failed: {e}", path.display()))
                .and_then(|r| r.map_err(|e| e.to_string()))
        };
        match result {
            Ok(()) => {
                if last_error.take().is_some() {
                    tracing::info!(path = %path.display(), "NFD features file written again");
                }
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "cannot write the NFD features file");
                }
                last_error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::CheckResult;

    /// Every registered check's label (`gluten-node-agent.<check>`) is a valid name part of a
    /// Kubernetes label key: at most 63 characters of `[a-z0-9._-]`, starting and ending
    /// alphanumeric. A new check with a longer name fails here, not on a node.
    #[test]
    fn every_check_name_makes_a_valid_label_name() {
        assert!(!checks::ALL.is_empty());
        for r in checks::ALL {
            let label = format!("{LABEL_PREFIX}{}", r.name);
            assert!(
                label.len() <= 63,
                "{label}: {} characters, more than 63",
                label.len()
            );
            assert!(
                label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c)),
                "{label}: only a-z, 0-9, '.', '_' and '-' make a label name"
            );
            assert!(
                label.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "{label}: must end alphanumeric"
            );
        }
    }

    fn report(checks: &[(&str, Status)], identity: Option<&str>) -> NodeReport {
        let checks: Vec<CheckResult> = checks
            .iter()
            .map(|(n, s)| CheckResult {
                name: n.to_string(),
                status: *s,
                summary: String::new(),
                duration_seconds: 0.0,
                checked_at: String::new(),
                findings: vec![],
                facts: serde_json::Value::Null,
                observed_status: None,
            })
            .collect();
        let mut node = proto::NodeInfo::default();
        if let Some(id) = identity {
            node.inventory.insert(IDENTITY_KEY.into(), id.into());
        }
        NodeReport {
            schema_version: proto::SCHEMA_VERSION,
            node,
            status: Status::worst(checks.iter().map(|c| c.status)),
            generated_at: String::new(),
            checks,
        }
    }

    #[test]
    fn the_temp_file_is_new_random_and_never_a_planted_link_or_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gluten-node-agent");
        let (a, b) = (temp_path(&path), temp_path(&path));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".gluten-node-agent.") && name.ends_with(".tmp"),
            "{name}"
        );
        // The old fixed name, planted as a link to a victim and as a FIFO, is not touched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".gluten-node-agent.tmp")).unwrap();
        write_atomic(&path, b"a=b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a=b\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != ".gluten-node-agent.tmp")
            .collect();
        assert!(names.is_empty(), "temp files left: {names:?}");
    }

    #[test]
    fn content_order_expiry_and_ready() {
        let t = humantime::parse_rfc3339("2026-12-03T10:00:00Z").unwrap();
        let r = report(
            &[
                ("velox_library", Status::Ok),
                ("scratch", Status::Fail),
                ("numa", Status::Warn),
            ],
            Some("0a1b2c"),
        );
        assert_eq!(
            render(&r, expiry(t, Duration::from_secs(15))),
            "# +expiry-time=2026-12-03T10:00:45Z\ngluten-node-agent.ready=false\n\
             gluten-node-agent.velox_library=ok\ngluten-node-agent.scratch=fail\n\
             gluten-node-agent.numa=warn\ngluten-node-agent.velox-build=0a1b2c\n"
        );
        let mut arm = report(&[("numa", Status::Ok)], None);
        arm.node
            .inventory
            .insert(CPU_CORE_KEY.into(), "neoverse-n1".into());
        assert!(
            render(&arm, expiry(t, Duration::from_secs(15)))
                .ends_with("gluten-node-agent.numa=ok\ngluten-node-agent.cpu-core=neoverse-n1\n")
        );
        let healthy = report(&[("numa", Status::Unknown)], None);
        assert_eq!(
            render(&healthy, expiry(t, Duration::from_secs(3600))),
            "# +expiry-time=2026-12-03T10:10:00Z\ngluten-node-agent.ready=true\n\
             gluten-node-agent.numa=unknown\n"
        );
    }

    #[test]
    fn odd_identities_become_valid_distinct_label_values() {
        assert_eq!(label_value("abc123").as_deref(), Some("abc123"));
        assert_eq!(label_value("ab12,cd34").as_deref(), Some("ab12_cd34"));
        assert_eq!(label_value("--x y--").as_deref(), Some("x_y"));
        assert_eq!(label_value("../../etc"), Some("etc".into()));
        assert_eq!(label_value("日本"), None);
        assert_eq!(label_value(""), None);
        assert_eq!(label_value("=\n"), None);
        let long_a = format!("{}a", "f".repeat(100));
        let long_b = format!("{}b", "f".repeat(100));
        let (a, b) = (label_value(&long_a).unwrap(), label_value(&long_b).unwrap());
        assert_ne!(a, b);
        for v in [&a, &b] {
            assert!(is_label_value(v) && v.len() <= MAX_LABEL_CHARS, "{v}");
        }
        // A head that ends in punctuation at the cut is trimmed before the hash.
        let v = label_value(&format!("{}.{}", "a".repeat(53), "b".repeat(40))).unwrap();
        assert!(is_label_value(&v), "{v}");
        // Every rendered line is name=value with valid label parts, whatever the identity.
        for id in [
            "x\ny=z",
            "a=b",
            "#+expiry-time=0",
            " ",
            "ä",
            &"9".repeat(500),
        ] {
            let text = render(
                &report(&[("numa", Status::Ok)], Some(id)),
                SystemTime::now(),
            );
            for line in text.lines().skip(1) {
                let (name, value) = line.split_once('=').unwrap();
                assert!(name.starts_with(LABEL_PREFIX), "{line}");
                assert!(name.len() - LABEL_PREFIX.len() <= MAX_LABEL_CHARS, "{line}");
                assert!(is_label_value(value), "{id:?}: {line}");
            }
        }
    }

    #[test]
    fn config_rules_name_the_key() {
        let c = |p: &str| NfdConfig {
            features_file: Some(p.into()),
        };
        assert!(
            c("/etc/kubernetes/node-feature-discovery/features.d/gluten")
                .validate()
                .is_ok()
        );
        assert!(NfdConfig::default().validate().is_ok());
        for bad in ["relative", "/dir/.hidden", "/"] {
            let e = c(bad).validate().unwrap_err().to_string();
            assert!(e.contains("nfd.features_file"), "{e}");
        }
    }

    #[test]
    fn atomic_replacement_leaves_nothing_behind_and_readers_see_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gluten-node-agent");
        let a = "# +expiry-time=x\n".to_string() + &"a=1\n".repeat(4000) + "end=a\n";
        let b = "# +expiry-time=y\n".to_string() + &"b=2\n".repeat(3000) + "end=b\n";
        write_atomic(&path, a.as_bytes()).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop, a, b) = (path.clone(), stop.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let got = std::fs::read_to_string(&path).unwrap();
                    assert!(got == a || got == b, "partial read of {} bytes", got.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..300 {
            write_atomic(
                &path,
                if i % 2 == 0 {
                    b.as_bytes()
                } else {
                    a.as_bytes()
                },
            )
            .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("gluten-node-agent")]);
        // A failed write (the directory is gone) leaves no temp file and names the path.
        let gone = dir.path().join("missing/gluten-node-agent");
        let e = write_atomic(&gone, b"x").unwrap_err().to_string();
        assert!(
            e.contains("missing/.gluten-node-agent.")
                && e.ends_with(".tmp: No such file or directory (os error 2)"),
            "{e}"
        );
    }
}
