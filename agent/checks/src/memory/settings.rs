//! `[memory]` settings: the Spark plan's inputs (shared with scratch through `Shared`), the
//! cgroup to inspect, the reserve and the pressure thresholds.

use super::*;
use crate::check::{CheckSettings, SettingsError};
use crate::spark_conf::SparkConf;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[memory]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `spark-defaults.conf` on the host (a host path, read under `host_root`), for the executor
    /// plan (and scratch's default dirs).
    pub spark_defaults: Option<PathBuf>,
    /// The cgroup to inspect instead of the agent's own, as `/proc/<pid>/cgroup` names it on the
    /// host (e.g. `/kubepods.slice` or `/spark.slice`): a path inside the cgroup hierarchy, not a
    /// filesystem path. It is looked up under the cgroup2 mount (or the v1 `memory` mount).
    pub cgroup: Option<String>,
    /// Executors planned per node.
    pub executors_per_node: u32,
    /// Memory to keep free beside the executors (OS, node daemons, the agent, a page-cache
    /// floor). Heuristic; see docs/checks/memory.md.
    pub reserve_bytes: u64,
    /// Warn when PSI memory `some` avg60 (percent of wall time, 0-100) reaches this. Heuristic.
    pub psi_some_avg60_warn: f64,
    /// Warn when the cgroup working set reaches this fraction of its limit. Heuristic.
    pub cgroup_usage_warn_ratio: f64,
    /// Fail when the cgroup working set reaches this fraction of its limit. Heuristic.
    pub cgroup_usage_fail_ratio: f64,
    /// Explicit Spark keys (`"spark.executor.memory" = "8g"`); they override `spark_defaults`.
    pub spark: BTreeMap<String, toml::Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            spark_defaults: None,
            cgroup: None,
            executors_per_node: 1,
            reserve_bytes: 2 * GIB,
            psi_some_avg60_warn: 10.0,
            cgroup_usage_warn_ratio: 0.85,
            cgroup_usage_fail_ratio: 0.95,
            spark: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// The explicit `[memory.spark]` keys as Spark would see them (strings).
    pub fn explicit_spark(&self) -> Result<SparkConf, SettingsError> {
        let mut conf = SparkConf::default();
        for (k, v) in &self.spark {
            let s = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(SettingsError::new(
                        format!("spark.\"{k}\""),
                        format!("must be a string, number or boolean, got {other}"),
                    ));
                }
            };
            conf.set(k, s);
        }
        Ok(conf)
    }

    /// Whether a Spark plan is configured at all.
    pub fn has_plan(&self) -> bool {
        self.spark_defaults.is_some() || !self.spark.is_empty()
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.executors_per_node == 0 {
            return Err(SettingsError::new(
                "executors_per_node",
                "must be at least 1, got 0",
            ));
        }
        if let Some(c) = &self.cgroup
            && !c.starts_with('/')
        {
            return Err(SettingsError::new(
                "cgroup",
                format!(
                    "must be a cgroup path starting with '/' (as in /proc/<pid>/cgroup), got {c:?}"
                ),
            ));
        }
        if !(self.psi_some_avg60_warn.is_finite()
            && self.psi_some_avg60_warn > 0.0
            && self.psi_some_avg60_warn <= 100.0)
        {
            return Err(SettingsError::new(
                "psi_some_avg60_warn",
                format!(
                    "is a percentage in (0, 100], got {}",
                    self.psi_some_avg60_warn
                ),
            ));
        }
        for (key, v) in [
            ("cgroup_usage_warn_ratio", self.cgroup_usage_warn_ratio),
            ("cgroup_usage_fail_ratio", self.cgroup_usage_fail_ratio),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(SettingsError::new(
                    key,
                    format!("must be in (0, 1], got {v}"),
                ));
            }
        }
        if self.cgroup_usage_warn_ratio >= self.cgroup_usage_fail_ratio {
            return Err(SettingsError::new(
                "cgroup_usage_warn_ratio",
                format!(
                    "({}) must be below `cgroup_usage_fail_ratio` ({})",
                    self.cgroup_usage_warn_ratio, self.cgroup_usage_fail_ratio
                ),
            ));
        }
        for k in self.spark.keys() {
            if !SPARK_KEYS.iter().any(|(known, _)| known == k) {
                let known: Vec<&str> = SPARK_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(SettingsError::new(
                    format!("spark.\"{k}\""),
                    format!(
                        "is not a key the memory plan reads (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        let conf = self.explicit_spark()?;
        SparkPlan::from_conf(&conf, self.executors_per_node)
            .map(|_| ())
            .map_err(|e| {
                SettingsError::new("spark", format!("does not make an executor plan: {e}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validate_names_the_key() {
        let ok = Settings::default();
        assert!(ok.validate().is_ok());
        let bad = |s: Settings, key: &str| {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("`{key}")), "{e}");
        };
        bad(
            Settings {
                executors_per_node: 0,
                ..ok.clone()
            },
            "executors_per_node",
        );
        bad(
            Settings {
                cgroup: Some("kubepods".into()),
                ..ok.clone()
            },
            "cgroup",
        );
        bad(
            Settings {
                psi_some_avg60_warn: 0.0,
                ..ok.clone()
            },
            "psi_some_avg60_warn",
        );
        bad(
            Settings {
                cgroup_usage_warn_ratio: 0.96,
                ..ok.clone()
            },
            "cgroup_usage_warn_ratio",
        );
        bad(
            Settings {
                cgroup_usage_fail_ratio: 1.5,
                ..ok.clone()
            },
            "cgroup_usage_fail_ratio",
        );
        let spark = |k: &str, v: toml::Value| Settings {
            spark: BTreeMap::from([(k.to_string(), v)]),
            ..ok.clone()
        };
        bad(
            spark("spark.executor.memry", "8g".into()),
            "spark.\"spark.executor.memry\"",
        );
        bad(spark(EXECUTOR_MEMORY, "8x".into()), "spark");
        assert!(spark(OFFHEAP_ENABLED, true.into()).validate().is_ok());
        assert!(spark(EXECUTOR_MEMORY, 8192.into()).validate().is_ok());
    }
}
