//! Something built from a few files (a TLS configuration, an HTTP client with its certificates)
//! that follows those files: rebuilt when any of them changes on disk (cert-manager and the
//! kubelet swap them in place). The files are looked at most once per interval, on a thread of
//! its own (a caller waits at most half a second for that look; a hung filesystem never blocks
//! an async worker). A rebuild that fails keeps the previous value in force and logs why, once
//! per version of the files. The builder reads its files bounded ([`crate::files`]): a FIFO or
//! `/dev/zero` in place of a file is refused, not waited on.

use arc_swap::ArcSwap;
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the files are looked at, at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long a caller of [`Reloading::fresh`] waits for a look at the files.
pub const LOOK_WAIT: Duration = Duration::from_millis(500);

/// What identifies a file's version: device, inode, size, modification time (symlinks
/// followed, so a Secret's `..data` swap is a new version).
type Stamp = Vec<Option<(u64, u64, u64, i64, i64)>>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// A value built from `paths` by `build`, rebuilt when they change.
pub struct Reloading<T, F> {
    /// What the value is, for the log ("TLS certificate", "push TLS material").
    what: &'static str,
    paths: Vec<PathBuf>,
    build: F,
    current: ArcSwap<T>,
    /// When the files were last looked at, and what they were then.
    checked: Mutex<(Instant, Stamp)>,
    /// A look at the files is under way on its thread.
    looking: AtomicBool,
}

impl<T, E, F> Reloading<T, F>
where
    T: Send + Sync + 'static,
    E: Display,
    F: Fn() -> Result<T, E> + Send + Sync + 'static,
{
    /// Builds the value now (an error is `build`'s, naming the file); `paths` are the files
    /// `build` reads, whose changes trigger a rebuild.
    pub fn load(what: &'static str, paths: Vec<PathBuf>, build: F) -> Result<Self, E> {
        let seen = stamp(&paths);
        let value = build()?;
        Ok(Reloading {
            what,
            paths,
            build,
            current: ArcSwap::from_pointee(value),
            checked: Mutex::new((Instant::now(), seen)),
            looking: AtomicBool::new(false),
        })
    }

    /// The files followed.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The value in force, without looking at the files.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// The value as the files hold it now: looks at them (when [`CHECK_EVERY`] has passed) on a
    /// thread of its own, waiting at most [`LOOK_WAIT`] for that look; past that, the value in
    /// force.
    pub async fn fresh(self: &Arc<Self>) -> Arc<T> {
        if self.paths.is_empty() {
            return self.current();
        }
        let due = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .elapsed()
            >= CHECK_EVERY;
        if due && !self.looking.swap(true, Ordering::AcqRel) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let me = self.clone();
            let started = crate::files::spawn(move || {
                me.reload_if_changed(CHECK_EVERY);
                me.looking.store(false, Ordering::Release);
                let _ = tx.send(());
            });
            match started {
                Ok(()) => {
                    if tokio::time::timeout(LOOK_WAIT, rx).await.is_err() {
                        tracing::warn!(file = %self.paths[0].display(), "looking at the {} files takes over {LOOK_WAIT:?} (a hung filesystem?); using the one in force", self.what);
                    }
                }
                Err(e) => {
                    self.looking.store(false, Ordering::Release);
                    tracing::warn!(error = %e, "{} files not looked at", self.what);
                }
            }
        }
        self.current()
    }

    /// Rebuilds the value if its files changed since the last look, looking at most once per
    /// `every`; blocks while the files are read. Returns whether a new value is now in force.
    pub fn reload_if_changed(&self, every: Duration) -> bool {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.0.elapsed() < every {
            return false;
        }
        checked.0 = Instant::now();
        let now = stamp(&self.paths);
        if now == checked.1 {
            return false;
        }
        // Remember this version even if it fails, so a broken file is reported once.
        checked.1 = now;
        drop(checked);
        match (self.build)() {
            Ok(value) => {
                self.current.store(Arc::new(value));
                tracing::info!(file = %self.paths[0].display(), "{} reloaded", self.what);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "{}: files changed but cannot be used; keeping the one in force", self.what);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_rebuilds_and_a_failed_rebuild_keeps_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("value");
        std::fs::write(&file, "1").unwrap();
        let path = file.clone();
        let r = Reloading::load("number", vec![file.clone()], move || {
            let text = crate::files::read_text(&path).map_err(|e| e.to_string())?;
            text.trim()
                .parse::<u32>()
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .unwrap();
        assert_eq!(*r.current(), 1);
        assert!(!r.reload_if_changed(Duration::ZERO), "nothing changed");
        let swap = |text: &str| {
            let tmp = dir.path().join(".value.new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
        };
        swap("2");
        assert!(
            !r.reload_if_changed(Duration::from_secs(3600)),
            "not looked at before the interval"
        );
        assert!(r.reload_if_changed(Duration::ZERO));
        assert_eq!(*r.current(), 2);
        swap("two");
        assert!(!r.reload_if_changed(Duration::ZERO));
        assert_eq!(*r.current(), 2, "a bad file keeps the previous value");
        std::fs::remove_file(&file).unwrap();
        nix::unistd::mkfifo(&file, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t0 = Instant::now();
        assert!(!r.reload_if_changed(Duration::ZERO));
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "a FIFO is not waited on"
        );
        assert_eq!(*r.current(), 2);
        std::fs::remove_file(&file).unwrap();
        swap("3");
        assert!(r.reload_if_changed(Duration::ZERO));
        assert_eq!(*r.current(), 3);
    }
}
