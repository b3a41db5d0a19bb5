//! `[hugepages]` settings: the THP mode this node should run and the hugetlb pools it needs.

use super::*;
use crate::check::{CheckSettings, SettingsError};
use serde::{Deserialize, Serialize};

/// A THP `enabled` mode as `thp_expected` names it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThpMode {
    Always,
    #[default]
    Madvise,
    Never,
}

impl ThpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ThpMode::Always => "always",
            ThpMode::Madvise => "madvise",
            ThpMode::Never => "never",
        }
    }
}

/// `[hugepages]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The THP `enabled` mode this node should run. Default `madvise`: Gluten's benchmark nodes
    /// set it, and Velox only asks for huge pages with `madvise(MADV_HUGEPAGE)`.
    pub thp_expected: ThpMode,
    /// Whether executors run with `spark.gluten.sql.columnar.backend.velox.memoryUseHugePages`
    /// (Gluten's default: false). When true, THP `never` and a stalling `defrag` mode warn.
    pub memory_use_hugepages: bool,
    /// Hugetlb pools that must exist (QAT shuffle codec: 1024 pages of 2 MiB, for example).
    pub pools: Vec<RequiredPool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            thp_expected: ThpMode::Madvise,
            memory_use_hugepages: false,
            pools: Vec::new(),
        }
    }
}

/// One entry of `pools`: a pool of `size_bytes` pages, global or on `numa_node`, with at least
/// `min_total` pages of which at least `min_free` are free.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RequiredPool {
    pub size_bytes: u64,
    pub min_total: u64,
    pub min_free: u64,
    /// The node's pool (`/sys/devices/system/node/nodeN/hugepages`); absent: the global pool.
    pub numa_node: Option<u32>,
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        for (i, p) in self.pools.iter().enumerate() {
            if p.size_bytes < 4096 || !p.size_bytes.is_power_of_two() {
                return Err(SettingsError::new(
                    format!("pools[{i}].size_bytes"),
                    format!(
                        "({}) must be a page size: a power of two of at least 4096 bytes, e.g. 2097152 or 1073741824",
                        p.size_bytes
                    ),
                ));
            }
            if p.min_free > 0 && p.min_total > 0 && p.min_free > p.min_total {
                return Err(SettingsError::new(
                    format!("pools[{i}].min_free"),
                    format!(
                        "({}) must not exceed `pools[{i}].min_total` ({})",
                        p.min_free, p.min_total
                    ),
                ));
            }
            if let Some(j) = self.pools[..i]
                .iter()
                .position(|q| q.size_bytes == p.size_bytes && q.numa_node == p.numa_node)
            {
                return Err(SettingsError::new(
                    format!("pools[{i}]"),
                    format!(
                        "names the same pool as `pools[{j}]` (size_bytes {}, numa_node {})",
                        p.size_bytes,
                        node_name(p.numa_node)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hugepages::facts::tests::M2;

    #[test]
    fn settings_validate_pool_entries_naming_the_key() {
        let mut s = Settings::default();
        assert_eq!(s.validate(), Ok(()));
        s.pools.push(RequiredPool {
            size_bytes: 3000,
            ..RequiredPool::default()
        });
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`pools[0].size_bytes` (3000)")
        );
        s.pools[0].size_bytes = M2;
        s.pools[0].min_total = 2;
        s.pools[0].min_free = 3;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`pools[0].min_free` (3)")
        );
        s.pools[0].min_free = 1;
        s.pools.push(s.pools[0].clone());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`pools[1]` names the same pool")
        );
        s.pools[1].numa_node = Some(1);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn settings_read_from_toml_and_reject_unknown_keys() {
        let s: Settings = toml::from_str(
            "thp_expected = \"always\"\npools = [{ size_bytes = 1073741824, min_total = 4, numa_node = 1 }]",
        )
        .unwrap();
        assert_eq!(s.thp_expected, ThpMode::Always);
        assert_eq!(s.pools[0].numa_node, Some(1));
        assert_eq!(s.pools[0].min_free, 0);
        assert!(toml::from_str::<Settings>("thp_expected = \"sometimes\"").is_err());
        assert!(toml::from_str::<Settings>("pools = [{ size = 1 }]").is_err());
    }
}
