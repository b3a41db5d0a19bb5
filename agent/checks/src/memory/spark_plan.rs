//! The Spark executor plan (pure): what each executor asks of the node by Spark's rules (heap,
//! overhead, off-heap, PySpark) and Gluten's (off-heap required, recommended overhead).

use super::*;
use crate::check::ParseError;
use crate::spark_conf::{ByteUnit, SparkConf};
use serde::Serialize;

/// The Spark keys the plan reads, with the unit Spark assumes for a bare number (`None`: not a
/// size).
pub const SPARK_KEYS: [(&str, Option<ByteUnit>); 9] = [
    (EXECUTOR_MEMORY, Some(ByteUnit::MiB)),
    (EXECUTOR_MEMORY_OVERHEAD, Some(ByteUnit::MiB)),
    (EXECUTOR_MEMORY_OVERHEAD_FACTOR, None),
    (EXECUTOR_MIN_MEMORY_OVERHEAD, Some(ByteUnit::MiB)),
    (OFFHEAP_ENABLED, None),
    (OFFHEAP_SIZE, Some(ByteUnit::Byte)),
    (PYSPARK_MEMORY, Some(ByteUnit::MiB)),
    (PLUGINS, None),
    (GLUTEN_DYNAMIC_OFFHEAP_SIZING, None),
];

pub const EXECUTOR_MEMORY: &str = "spark.executor.memory";
pub const EXECUTOR_MEMORY_OVERHEAD: &str = "spark.executor.memoryOverhead";
pub const EXECUTOR_MEMORY_OVERHEAD_FACTOR: &str = "spark.executor.memoryOverheadFactor";
pub const EXECUTOR_MIN_MEMORY_OVERHEAD: &str = "spark.executor.minMemoryOverhead";
pub const OFFHEAP_ENABLED: &str = "spark.memory.offHeap.enabled";
pub const OFFHEAP_SIZE: &str = "spark.memory.offHeap.size";
pub const PYSPARK_MEMORY: &str = "spark.executor.pyspark.memory";
pub const PLUGINS: &str = "spark.plugins";
pub const GLUTEN_DYNAMIC_OFFHEAP_SIZING: &str =
    "spark.gluten.memory.dynamic.offHeap.sizing.enabled";
/// Gluten's Spark plugin class, and its name before Gluten 1.2 (the `io.glutenproject` package).
pub const GLUTEN_PLUGIN_CLASSES: [&str; 2] = [
    "org.apache.gluten.GlutenPlugin",
    "io.glutenproject.GlutenPlugin",
];
/// Gluten's minimum off-heap size (`minOffHeapSize = "1MB"` in GlutenPlugin.scala).
pub const GLUTEN_MIN_OFFHEAP_BYTES: u64 = 1 << 20;

/// The executor container Spark will ask for, per executor and per node, all in whole MiB as
/// Spark computes it (`ResourceProfile.calculateOverHeadMemory` and friends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SparkPlan {
    pub executor_memory_bytes: u64,
    pub memory_overhead_bytes: u64,
    /// `set` (`spark.executor.memoryOverhead`), or `default` (Spark's factor, raised to Gluten's
    /// recommendation).
    pub memory_overhead_source: &'static str,
    /// `spark.memory.offHeap.size` when `spark.memory.offHeap.enabled`, else 0.
    pub offheap_bytes: u64,
    pub pyspark_memory_bytes: u64,
    /// Gluten's recommended overhead: max(0.3 x off-heap, 384 MiB).
    pub gluten_recommended_overhead_bytes: u64,
    pub per_executor_bytes: u64,
    pub executors_per_node: u32,
    pub planned_bytes: u64,
    /// `spark.plugins` names Gluten's plugin (`org.apache.gluten.GlutenPlugin`, or the pre-1.2
    /// `io.glutenproject.GlutenPlugin`).
    pub gluten_plugin: bool,
    /// `spark.memory.offHeap.enabled` as set (default false).
    pub offheap_enabled: bool,
    /// `spark.memory.offHeap.size` as set (default 0), whether or not off-heap is enabled.
    pub offheap_size_bytes: u64,
    /// `spark.gluten.memory.dynamic.offHeap.sizing.enabled` (default false).
    pub gluten_dynamic_offheap_sizing: bool,
}

/// Spark's `spark.executor.memory` default.
pub(super) const DEFAULT_EXECUTOR_MEMORY_MIB: u64 = 1024;
/// Spark's overhead factor default (`spark.executor.memoryOverheadFactor`).
pub(super) const DEFAULT_OVERHEAD_FACTOR: f64 = 0.10;
/// Spark's minimum overhead (`spark.executor.minMemoryOverhead`, 384 MiB), also Gluten's floor.
pub(super) const MIN_OVERHEAD_MIB: u64 = 384;
/// Gluten's overhead rule: at least this share of off-heap (VeloxListenerApi).
pub(super) const GLUTEN_OVERHEAD_OFFHEAP_SHARE: f64 = 0.3;

impl SparkPlan {
    pub fn from_conf(conf: &SparkConf, executors_per_node: u32) -> Result<SparkPlan, ParseError> {
        let mib = |b: u64| b / MIB;
        let executor_mib = conf
            .size(EXECUTOR_MEMORY, ByteUnit::MiB)?
            .map(mib)
            .unwrap_or(DEFAULT_EXECUTOR_MEMORY_MIB);
        let offheap_enabled = conf.bool(OFFHEAP_ENABLED)?.unwrap_or(false);
        let gluten_dynamic_offheap_sizing =
            conf.bool(GLUTEN_DYNAMIC_OFFHEAP_SIZING)?.unwrap_or(false);
        let gluten_plugin = conf.get(PLUGINS).is_some_and(|v| {
            v.split(',')
                .any(|c| GLUTEN_PLUGIN_CLASSES.contains(&c.trim()))
        });
        let offheap_size = conf.size(OFFHEAP_SIZE, ByteUnit::Byte)?.unwrap_or(0);
        let offheap_mib = if offheap_enabled {
            mib(offheap_size)
        } else {
            0
        };
        let pyspark_mib = conf
            .size(PYSPARK_MEMORY, ByteUnit::MiB)?
            .map(mib)
            .unwrap_or(0);
        let factor = conf
            .f64(EXECUTOR_MEMORY_OVERHEAD_FACTOR)?
            .unwrap_or(DEFAULT_OVERHEAD_FACTOR);
        if factor <= 0.0 {
            return Err(ParseError::new(format!(
                "`{EXECUTOR_MEMORY_OVERHEAD_FACTOR}`: must be positive, got {factor}"
            )));
        }
        let min_overhead_mib = conf
            .size(EXECUTOR_MIN_MEMORY_OVERHEAD, ByteUnit::MiB)?
            .map(mib)
            .unwrap_or(MIN_OVERHEAD_MIB);
        let gluten_mib =
            ((GLUTEN_OVERHEAD_OFFHEAP_SHARE * offheap_mib as f64) as u64).max(MIN_OVERHEAD_MIB);
        let (overhead_mib, source) = match conf.size(EXECUTOR_MEMORY_OVERHEAD, ByteUnit::MiB)? {
            Some(b) => (mib(b), "set"),
            None => {
                let spark = ((factor * executor_mib as f64) as u64).max(min_overhead_mib);
                (spark.max(gluten_mib), "default")
            }
        };
        let per_executor_mib = [executor_mib, overhead_mib, offheap_mib, pyspark_mib]
            .iter()
            .try_fold(0u64, |a, b| a.checked_add(*b))
            .ok_or_else(|| ParseError::new("the executor sizes add up past 2^64 MiB"))?;
        let too_big = || ParseError::new("the planned memory overflows 64 bits");
        let per_executor_bytes = per_executor_mib.checked_mul(MIB).ok_or_else(too_big)?;
        let planned_bytes = per_executor_bytes
            .checked_mul(u64::from(executors_per_node))
            .ok_or_else(too_big)?;
        Ok(SparkPlan {
            executor_memory_bytes: executor_mib * MIB,
            memory_overhead_bytes: overhead_mib * MIB,
            memory_overhead_source: source,
            offheap_bytes: offheap_mib * MIB,
            pyspark_memory_bytes: pyspark_mib * MIB,
            gluten_recommended_overhead_bytes: gluten_mib * MIB,
            per_executor_bytes,
            executors_per_node,
            planned_bytes,
            gluten_plugin,
            offheap_enabled,
            offheap_size_bytes: offheap_size,
            gluten_dynamic_offheap_sizing,
        })
    }

    /// Gluten's startup rule (GlutenPlugin.scala): unless dynamic off-heap sizing is on,
    /// off-heap must be enabled with at least 1 MiB, or the plugin throws "Must set
    /// 'spark.memory.offHeap.enabled' to true ...". The violation, as a sentence; `None` when
    /// the rule holds or the conf does not load Gluten's plugin.
    pub fn gluten_offheap_violation(&self) -> Option<String> {
        if !self.gluten_plugin || self.gluten_dynamic_offheap_sizing {
            return None;
        }
        let cause = if !self.offheap_enabled {
            format!("`{OFFHEAP_ENABLED}` is false (or unset)")
        } else if self.offheap_size_bytes < GLUTEN_MIN_OFFHEAP_BYTES {
            format!(
                "`{OFFHEAP_SIZE}` is {} bytes, below 1 MiB",
                self.offheap_size_bytes
            )
        } else {
            return None;
        };
        Some(format!(
            "{cause} while `{PLUGINS}` loads GlutenPlugin: Gluten throws at startup \
             (\"Must set '{OFFHEAP_ENABLED}' to true and set '{OFFHEAP_SIZE}' to be greater \
             than 1MB\"; GlutenPlugin.scala) unless \
             `{GLUTEN_DYNAMIC_OFFHEAP_SIZING}` is true"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> SparkConf {
        let mut c = SparkConf::default();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn plan_follows_spark_and_gluten_rules() {
        // (conf, executors, expected overhead MiB, source, per executor MiB)
        type Case<'a> = (&'a [(&'a str, &'a str)], u32, u64, &'a str, u64);
        let cases: &[Case] = &[
            // Spark defaults alone: 1g heap + 384m minimum overhead.
            (&[], 1, 384, "default", 1024 + 384),
            // 10% of 8g = 819m.
            (&[(EXECUTOR_MEMORY, "8g")], 2, 819, "default", 8192 + 819),
            // Off-heap enabled: Gluten's 0.3 x 20g = 6144m beats Spark's 819m.
            (
                &[
                    (EXECUTOR_MEMORY, "8g"),
                    (OFFHEAP_ENABLED, "true"),
                    (OFFHEAP_SIZE, "20g"),
                ],
                1,
                6144,
                "default",
                8192 + 6144 + 20480,
            ),
            // Off-heap size without enabled does not count.
            (
                &[(EXECUTOR_MEMORY, "8g"), (OFFHEAP_SIZE, "20g")],
                1,
                819,
                "default",
                8192 + 819,
            ),
            // Set overhead wins, bare numbers in MiB; off-heap bare number is bytes.
            (
                &[
                    (EXECUTOR_MEMORY, "4096"),
                    (EXECUTOR_MEMORY_OVERHEAD, "1024"),
                    (OFFHEAP_ENABLED, "TRUE"),
                    (OFFHEAP_SIZE, "2147483648"),
                    (PYSPARK_MEMORY, "512"),
                ],
                3,
                1024,
                "set",
                4096 + 1024 + 2048 + 512,
            ),
            // The factor and Spark 4's minimum.
            (
                &[
                    (EXECUTOR_MEMORY, "10g"),
                    (EXECUTOR_MEMORY_OVERHEAD_FACTOR, "0.4"),
                ],
                1,
                4096,
                "default",
                10240 + 4096,
            ),
            (
                &[(EXECUTOR_MIN_MEMORY_OVERHEAD, "1g")],
                1,
                1024,
                "default",
                2048,
            ),
        ];
        for (pairs, n, overhead, source, per) in cases {
            let p = SparkPlan::from_conf(&conf(pairs), *n).unwrap();
            assert_eq!(p.memory_overhead_bytes, overhead * MIB, "{pairs:?}");
            assert_eq!(p.memory_overhead_source, *source, "{pairs:?}");
            assert_eq!(p.per_executor_bytes, per * MIB, "{pairs:?}");
            assert_eq!(p.planned_bytes, per * MIB * u64::from(*n), "{pairs:?}");
        }
    }

    #[test]
    fn plan_reads_gluten_plugin_and_offheap_settings() {
        for (plugins, want) in [
            ("org.apache.gluten.GlutenPlugin", true),
            ("com.example.Other, io.glutenproject.GlutenPlugin ", true),
            ("org.apache.gluten.GlutenPluginX", false),
            ("", false),
        ] {
            let p = SparkPlan::from_conf(&conf(&[(PLUGINS, plugins)]), 1).unwrap();
            assert_eq!(p.gluten_plugin, want, "{plugins:?}");
        }
        let p = SparkPlan::from_conf(
            &conf(&[
                (OFFHEAP_SIZE, "2m"),
                (GLUTEN_DYNAMIC_OFFHEAP_SIZING, "TRUE"),
            ]),
            1,
        )
        .unwrap();
        assert!(!p.gluten_plugin && !p.offheap_enabled && p.gluten_dynamic_offheap_sizing);
        assert_eq!((p.offheap_size_bytes, p.offheap_bytes), (2 * MIB, 0));
        let e =
            SparkPlan::from_conf(&conf(&[(GLUTEN_DYNAMIC_OFFHEAP_SIZING, "yes")]), 1).unwrap_err();
        assert!(e.0.contains(GLUTEN_DYNAMIC_OFFHEAP_SIZING), "{e}");
    }

    #[test]
    fn plan_errors_name_the_key() {
        let e = SparkPlan::from_conf(
            &conf(&[(OFFHEAP_SIZE, "1.5g"), (OFFHEAP_ENABLED, "true")]),
            1,
        )
        .unwrap_err();
        assert!(e.0.contains(OFFHEAP_SIZE), "{e}");
        let e =
            SparkPlan::from_conf(&conf(&[(EXECUTOR_MEMORY_OVERHEAD_FACTOR, "0")]), 1).unwrap_err();
        assert!(e.0.contains(EXECUTOR_MEMORY_OVERHEAD_FACTOR), "{e}");
        assert!(SparkPlan::from_conf(&conf(&[(EXECUTOR_MEMORY, "16000p")]), 1000).is_err());
    }
}
