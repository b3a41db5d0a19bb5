//! Velox's SSD cache as the Spark conf configures it (Gluten's keys and defaults), and what its
//! path must hold for every executor on the node.

use super::*;
use crate::spark_conf::{ByteUnit, SparkConf};
use serde::Serialize;
use std::path::PathBuf;

/// Velox's SSD cache keys (Gluten's `GlutenConfig`).
pub const CACHE_ENABLED: &str = "spark.gluten.sql.columnar.backend.velox.cacheEnabled";
pub const SSD_CACHE_SIZE: &str = "spark.gluten.sql.columnar.backend.velox.ssdCacheSize";
pub const SSD_CACHE_PATH: &str = "spark.gluten.sql.columnar.backend.velox.ssdCachePath";
pub const SSD_ODIRECT: &str = "spark.gluten.sql.columnar.backend.velox.ssdODirect";
/// `ssdCacheSize`'s default, 1GB (Gluten's docs); a bare number is bytes (`bytesConf(BYTE)`).
pub const SSD_CACHE_SIZE_DEFAULT: u64 = 1 << 30;
/// `ssdCachePath`'s default.
pub const SSD_CACHE_PATH_DEFAULT: &str = "/tmp";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::evaluate::tests::GIB;
    use crate::spark_conf::parse_spark_defaults;

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
}
