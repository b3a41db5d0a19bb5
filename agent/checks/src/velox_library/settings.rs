//! `[velox_library]` settings: which libraries and jars to check, the CPU flags they need, extra
//! search dirs, the dlopen probe; and the defaults per architecture.

use crate::check::{CheckSettings, SettingsError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where Gluten's native libraries live when installed outside the jar (`spark.gluten.sql
/// .columnar.libpath` style deployments).
pub const DEFAULT_PATHS: [&str; 2] = [
    "/opt/gluten/lib/libvelox.so",
    "/opt/gluten/lib/libgluten.so",
];

/// Flags of Velox's default x86 build (`CPU_TARGET=avx`: `-mavx2 -mfma -mavx -mf16c -mlzcnt
/// -mbmi2`, LZCNT shows as `abm`) plus the SSE4.2 baseline.
pub const X86_64_CPU_FLAGS: [&str; 8] = [
    "avx", "avx2", "fma", "f16c", "bmi2", "abm", "sse4_2", "popcnt",
];

/// Flags of the generic aarch64 build (`-march=armv8-a+crc+crypto`, NEON).
pub const AARCH64_CPU_FLAGS: [&str; 6] = ["asimd", "crc32", "aes", "pmull", "sha1", "sha2"];

/// `[velox_library]` settings.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Native libraries to check, host paths. Empty: none (jars and CPU flags only).
    pub paths: Vec<PathBuf>,
    /// Gluten bundle jars whose `linux/<arch>/lib*.so` entries and build info are checked.
    pub jars: Vec<PathBuf>,
    /// CPU flags the libraries need; default depends on the host architecture (see
    /// docs/checks/velox_library.md).
    pub required_cpu_flags: Option<Vec<String>>,
    /// Extra library directories searched like `LD_LIBRARY_PATH` (after RPATH, before RUNPATH).
    pub library_path: Vec<PathBuf>,
    /// dlopen each library in a short-lived child process (only when the host root is `/`).
    pub load_probe: bool,
    /// The executor's root filesystem in the agent's own filesystem (like `host_root`, not
    /// resolved under it), e.g. `/executor` where the executor image is mounted. Libraries,
    /// jars, the loader's files and the libc compared are read there; CPU flags stay the
    /// host's. Default: the host root.
    pub executor_root: Option<PathBuf>,
    /// `HADOOP_HOME` in the executor root (libhdfs.so under `lib/native`), when
    /// `spark_defaults` names `hdfs://`. Default: `spark.executorEnv.HADOOP_HOME`.
    pub hadoop_home: Option<PathBuf>,
    /// `JAVA_HOME` in the executor root (`libjvm.so`, which libhdfs.so needs). Default:
    /// `spark.executorEnv.JAVA_HOME`.
    pub java_home: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            paths: DEFAULT_PATHS.iter().map(PathBuf::from).collect(),
            jars: Vec::new(),
            required_cpu_flags: None,
            library_path: Vec::new(),
            load_probe: false,
            executor_root: None,
            hadoop_home: None,
            java_home: None,
        }
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        for (key, list) in [
            ("paths", &self.paths),
            ("jars", &self.jars),
            ("library_path", &self.library_path),
        ] {
            if let Some(p) = list.iter().find(|p| !p.is_absolute()) {
                return Err(SettingsError::new(
                    key,
                    format!("({}) must be an absolute host path", p.display()),
                ));
            }
        }
        if let Some(r) = &self.executor_root
            && !r.is_absolute()
        {
            return Err(SettingsError::new(
                "executor_root",
                format!("({}) must be an absolute path", r.display()),
            ));
        }
        if let Some(flags) = &self.required_cpu_flags
            && let Some(f) = flags
                .iter()
                .find(|f| f.is_empty() || f.contains(char::is_whitespace))
        {
            return Err(SettingsError::new(
                "required_cpu_flags",
                format!("({f:?}) must be single words as /proc/cpuinfo spells them"),
            ));
        }
        Ok(())
    }
}

impl Settings {
    pub(super) fn is_default_paths(&self) -> bool {
        self.paths.len() == DEFAULT_PATHS.len()
            && self
                .paths
                .iter()
                .zip(DEFAULT_PATHS)
                .all(|(a, b)| a == Path::new(b))
    }

    /// The CPU flags required on a host of architecture `arch`.
    pub fn cpu_flags_for(&self, arch: &str) -> Vec<String> {
        match &self.required_cpu_flags {
            Some(f) => f.clone(),
            None => default_cpu_flags(arch)
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Default required CPU flags of an architecture (none for an architecture Gluten does not ship).
pub fn default_cpu_flags(arch: &str) -> &'static [&'static str] {
    match arch {
        "x86_64" => &X86_64_CPU_FLAGS,
        "aarch64" => &AARCH64_CPU_FLAGS,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validate_names_the_key() {
        let s = Settings {
            paths: vec!["lib/x.so".into()],
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`paths` (lib/x.so)")
        );
        let s = Settings {
            required_cpu_flags: Some(vec!["avx 2".into()]),
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`required_cpu_flags`")
        );
        assert!(Settings::default().validate().is_ok());
        assert_eq!(
            Settings::default().cpu_flags_for("aarch64"),
            AARCH64_CPU_FLAGS
        );
    }
}
