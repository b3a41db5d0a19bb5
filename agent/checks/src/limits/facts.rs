//! What one read of the limits check observed: whose limits stand for the executors', those
//! limits, whether the executors' JVM keeps its soft limit, and where core dumps would land.

use super::*;
use serde::Serialize;
use std::path::PathBuf;

/// Whose limits the executors get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The process that starts executors (the NodeManager), found by its pid file; executors
    /// inherit its limits.
    Launcher {
        pid_file: PathBuf,
        pid: u32,
        /// The host path read (`/proc/<pid>/limits`).
        limits_file: PathBuf,
    },
    /// No pid file and the agent is in a container: the agent's own limits, the container
    /// runtime's defaults that every pod (the executors' too) gets.
    Agent {
        /// What told the agent it is in a container.
        container: String,
        limits_file: PathBuf,
    },
    /// Neither: why (naming the file, the pid or the value).
    Unknown { reason: String },
}

/// Whether the executors' JVM keeps its soft open-files limit (HotSpot's `MaxFDLimit` off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JavaOptions {
    /// `spark-defaults.conf` read (the shared `memory.spark_defaults`), if any.
    pub spark_defaults: Option<PathBuf>,
    /// `-XX:-MaxFDLimit` is the last `MaxFDLimit` option of the executor's Java options.
    pub max_fd_limit_off: bool,
    /// Why the file could not be read (then `MaxFDLimit` is taken as on, HotSpot's default).
    pub error: Option<String>,
}

/// Where core dumps land.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cores {
    /// `kernel.core_pattern` as read; none when `/proc/sys/kernel/core_pattern` is missing.
    pub core_pattern: Option<String>,
    pub destination: Option<CoreDestination>,
    /// Free bytes (for unprivileged writers) of the directory cores land in, when the pattern
    /// is a plain absolute path.
    pub dir_free_bytes: Option<u64>,
    /// Why the free space is unknown (a relative pattern, a template dir, a statvfs error).
    pub dir_free_unknown: Option<String>,
}

/// What one read observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facts {
    pub source: Source,
    /// Of the source; none when it is unknown.
    pub limits: Option<Rlimits>,
    pub java_options: JavaOptions,
    pub cores: Cores,
    /// `min_open_files` of the settings read with.
    pub min_open_files: u64,
}

impl Facts {
    /// The open-files limit executors run with: the soft one when `MaxFDLimit` is off, else the
    /// hard one (HotSpot raises the soft limit to it), and which of the two it is.
    pub fn effective_open_files(&self) -> Option<(Rlim, &'static str)> {
        let l = self.limits?.open_files;
        Some(if self.java_options.max_fd_limit_off {
            (l.soft, "soft")
        } else {
            (l.hard, "hard")
        })
    }
}
