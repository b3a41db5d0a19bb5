//! `[scratch]` settings: which dirs, the free-space and inode thresholds, the probes.

use crate::check::{CheckSettings, SettingsError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[scratch]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Host paths of the scratch dirs. Default: `spark.local.dir` from `[memory] spark_defaults`
    /// when that is set and has the key, else `["/tmp"]` (Spark's own default).
    pub dirs: Option<Vec<PathBuf>>,
    /// A Hadoop `yarn-site.xml` (host path) whose `yarn.nodemanager.local-dirs` are checked too,
    /// beside `spark.local.dir`: on YARN those are the executors' local dirs, where Gluten
    /// extracts and dlopens its native libraries. Unset: not read. Ignored when `dirs` is set.
    pub yarn_site: Option<PathBuf>,
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
            yarn_site: None,
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
    fn validate(&self) -> Result<(), SettingsError> {
        for (key, v) in [
            ("warn_free_ratio", self.warn_free_ratio),
            ("fail_free_ratio", self.fail_free_ratio),
            ("min_free_inodes_ratio", self.min_free_inodes_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(SettingsError::new(
                    key,
                    format!("({v}) must be between 0 and 1"),
                ));
            }
        }
        if self.fail_free_ratio > self.warn_free_ratio {
            return Err(SettingsError::new(
                "fail_free_ratio",
                format!(
                    "({}) must not be above `warn_free_ratio` ({})",
                    self.fail_free_ratio, self.warn_free_ratio
                ),
            ));
        }
        if !(self.dir_timeout_seconds.is_finite() && self.dir_timeout_seconds > 0.0) {
            return Err(SettingsError::new(
                "dir_timeout_seconds",
                format!("({}) must be a positive number", self.dir_timeout_seconds),
            ));
        }
        if let Some(dirs) = &self.dirs {
            if dirs.is_empty() {
                return Err(SettingsError::new(
                    "dirs",
                    "must not be empty (leave it out for the default)",
                ));
            }
            if let Some(d) = dirs.iter().find(|d| !d.is_absolute()) {
                return Err(SettingsError::new(
                    "dirs",
                    format!("entry {} must be an absolute path", d.display()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validate_names_the_key() {
        let ok = Settings::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            s.validate().unwrap_err().to_string()
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
}
