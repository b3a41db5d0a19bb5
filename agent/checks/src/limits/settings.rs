//! `[limits]` settings: where the executors' launcher writes its pid, the open-files floor, and
//! the container detection override.

use crate::check::{CheckSettings, SettingsError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Hadoop's own default pid file of the YARN NodeManager started as user `yarn`:
/// `$HADOOP_PID_DIR/hadoop-$HADOOP_IDENT_STRING-$command.pid`, with `HADOOP_PID_DIR` defaulting
/// to `/tmp` and `HADOOP_IDENT_STRING` to `$USER` (`hadoop-functions.sh`: `hadoop_basic_init`
/// and `hadoop_generic_java_subcmd_handler`).
pub const DEFAULT_LAUNCHER_PID_FILE: &str = "/tmp/hadoop-yarn-nodemanager.pid";

/// The open-files floor. Native spill and shuffle keep files open per task and per partition
/// (apache/datafusion-comet#5916: a task spilling 1,000 partitions failed with "Too many open
/// files" at 1,024), and Docker and containerd hand containers soft 1,024 / hard 524,288
/// (moby/moby#45534: 524,288 is the hard limit systemd gives services since v240). 65,536 is 64
/// times the limit that failed there and an eighth of that hard limit: a host that kept
/// systemd's or the runtime's hard limit passes, one whose hard limit is 1,024 or 4,096 warns.
pub const DEFAULT_MIN_OPEN_FILES: u64 = 65_536;

/// `[limits]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The pid file of the process that starts executors (a host path, read under `host_root`).
    pub launcher_pid_file: PathBuf,
    /// Warn when the open-files limit executors get is below this.
    pub min_open_files: u64,
    /// Whether the agent runs in a container; unset: detected (`KUBERNETES_SERVICE_HOST`,
    /// `/.dockerenv`, `/run/.containerenv`, `/proc/1/cgroup`). In a container with no pid file
    /// the agent's own limits stand for the executors' (the runtime's defaults every pod gets).
    pub in_container: Option<bool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            launcher_pid_file: PathBuf::from(DEFAULT_LAUNCHER_PID_FILE),
            min_open_files: DEFAULT_MIN_OPEN_FILES,
            in_container: None,
        }
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        if !self.launcher_pid_file.is_absolute() {
            return Err(SettingsError::new(
                "launcher_pid_file",
                format!(
                    "must be an absolute host path, got {:?}",
                    self.launcher_pid_file
                ),
            ));
        }
        if self.min_open_files == 0 {
            return Err(SettingsError::new(
                "min_open_files",
                "must be at least 1, got 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_key() {
        assert!(Settings::default().validate().is_ok());
        let e = Settings {
            launcher_pid_file: "nm.pid".into(),
            ..Settings::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("`launcher_pid_file`"), "{e}");
        let e = Settings {
            min_open_files: 0,
            ..Settings::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("`min_open_files`"), "{e}");
    }
}
