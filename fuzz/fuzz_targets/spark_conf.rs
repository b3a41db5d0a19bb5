//! Fuzz target: `spark-defaults.conf` as `java.util.Properties` reads it, the executor plan built
//! from it, Spark's size strings, `spark.local.dir`, and Gluten's build-info properties.

#![no_main]

use checks::memory::SparkPlan;
use checks::velox_library;
use checks::spark_conf::{self, ByteUnit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let conf = spark_conf::parse_spark_defaults(&text);
    let _ = SparkPlan::from_conf(&conf, 1);
    let _ = SparkPlan::from_conf(&conf, u32::MAX);
    for (_, v) in conf.iter().take(64) {
        for unit in [ByteUnit::Byte, ByteUnit::MiB, ByteUnit::PiB] {
            let _ = spark_conf::parse_spark_size(v, unit);
        }
    }
    if data.len() <= 64 {
        let _ = spark_conf::parse_spark_size(&text, ByteUnit::KiB);
    }
    let _ = conf.local_dirs();
    let _ = velox_library::parse_build_info(&text);
});
