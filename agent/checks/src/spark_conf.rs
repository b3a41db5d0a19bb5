//! Spark configuration as Spark reads it: the agent's one Java `.properties` parser
//! ([`parse_java_properties`]), `spark-defaults.conf` on top of it, typed lookups, Spark size
//! strings (`JavaUtils.byteStringAs`), and `spark.local.dir`. Used by the memory check (the
//! executor plan), the scratch check (its default dirs, the SSD cache) and velox_library
//! (`gluten-build-info.properties`).

use crate::check::ParseError;
use crate::error::excerpt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where Spark puts its scratch space (spill, shuffle), comma-separated.
pub const LOCAL_DIR: &str = "spark.local.dir";

/// Spark properties, last definition wins (as `java.util.Properties` loads them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparkConf {
    entries: BTreeMap<String, String>,
}

impl SparkConf {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.entries.insert(key.to_string(), value.into());
    }

    /// `other`'s keys override ours.
    pub fn overlay(&mut self, other: &SparkConf) {
        for (k, v) in &other.entries {
            self.entries.insert(k.clone(), v.clone());
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A size key, parsed as Spark parses it; errors name the key and the value.
    pub fn size(&self, key: &str, default_unit: ByteUnit) -> Result<Option<u64>, ParseError> {
        self.get(key)
            .map(|v| {
                parse_spark_size(v, default_unit)
                    .map_err(|e| ParseError::new(format!("`{key}`: {e}")))
            })
            .transpose()
    }

    /// A boolean key: `true`/`false`, case-insensitive, trimmed (Scala's `toBoolean`).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ParseError> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ParseError::new(format!(
                    "`{key}`: {} is not true or false",
                    excerpt(v)
                ))),
            })
            .transpose()
    }

    /// A floating-point key.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, ParseError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        ParseError::new(format!("`{key}`: {} is not a number", excerpt(v)))
                    })
            })
            .transpose()
    }

    /// `spark.local.dir` as a list of dirs (comma-separated, each trimmed, blanks dropped);
    /// `None` when unset or when it names no dir.
    pub fn local_dirs(&self) -> Option<Vec<PathBuf>> {
        let dirs: Vec<PathBuf> = self
            .get(LOCAL_DIR)?
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        (!dirs.is_empty()).then_some(dirs)
    }
}

/// Parses `spark-defaults.conf` as Spark does: [`parse_java_properties`], then values trimmed,
/// last definition wins. Never fails: like `Properties`, any line is some key (a bad value is
/// reported when the key is used).
pub fn parse_spark_defaults(text: &str) -> SparkConf {
    let mut conf = SparkConf::default();
    for (k, v) in parse_java_properties(text) {
        conf.set(&k, v.trim());
    }
    conf
}

/// The one Java `.properties` parser of the agent (`java.util.Properties.load`, as Spark loads
/// `spark-defaults.conf` and Gluten writes `gluten-build-info.properties`): `key value`,
/// `key=value` or `key: value`; `#` and `!` start comment lines; leading whitespace goes; a line
/// ending in an odd number of backslashes continues on the next; a backslash in a key escapes
/// the next character. Pairs in file order (a later duplicate wins when collected into a map);
/// values keep their trailing whitespace, as `Properties` keeps it. Never fails.
pub fn parse_java_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for raw in text.lines() {
        // Leading whitespace goes, on continuation lines too (as Properties does).
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        out.push(split_property(&logical));
        logical.clear();
    }
    if !logical.is_empty() {
        out.push(split_property(&logical));
    }
    out
}

/// Splits a logical properties line into key and value: the key ends at the first unescaped
/// whitespace, `=` or `:`; whitespace, then at most one `=`/`:`, then whitespace follow.
fn split_property(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.char_indices().peekable();
    let mut rest_at = line.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    key.push(n);
                }
            }
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                rest_at = i;
                break;
            }
            _ => key.push(c),
        }
    }
    let rest = line[rest_at..].trim_start_matches([' ', '\t', '\x0c']);
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    (key, rest.trim_start().to_string())
}

/// Spark's byte units (`org.apache.spark.network.util.ByteUnit`): binary multiples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ByteUnit {
    Byte,
    KiB,
    MiB,
    GiB,
    TiB,
    PiB,
}

impl ByteUnit {
    pub fn bytes(self) -> u64 {
        match self {
            ByteUnit::Byte => 1,
            ByteUnit::KiB => 1 << 10,
            ByteUnit::MiB => 1 << 20,
            ByteUnit::GiB => 1 << 30,
            ByteUnit::TiB => 1 << 40,
            ByteUnit::PiB => 1 << 50,
        }
    }
}

/// Parses a Spark size string as `JavaUtils.byteStringAs` does, into bytes: trimmed,
/// case-insensitive, an integer with an optional suffix `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`,
/// `t`/`tb`, `p`/`pb` (binary: `1k` = 1024). A bare number is in `default_unit` (MiB for
/// `spark.executor.memory`, bytes for `spark.memory.offHeap.size`). Fractions (`1.5g`) are
/// refused, as Spark refuses them.
pub fn parse_spark_size(s: &str, default_unit: ByteUnit) -> Result<u64, ParseError> {
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, suffix) = lower.split_at(digits_end);
    if num.is_empty() {
        return Err(ParseError::new(format!(
            "{s:?} is not a size (expected e.g. 512m, 8g, 1t)"
        )));
    }
    if suffix.starts_with('.') {
        return Err(ParseError::new(format!(
            "{s:?}: fractional sizes are not supported by Spark (use e.g. 1536m for 1.5g)"
        )));
    }
    let unit = match suffix {
        "" => default_unit,
        "b" => ByteUnit::Byte,
        "k" | "kb" => ByteUnit::KiB,
        "m" | "mb" => ByteUnit::MiB,
        "g" | "gb" => ByteUnit::GiB,
        "t" | "tb" => ByteUnit::TiB,
        "p" | "pb" => ByteUnit::PiB,
        other => {
            return Err(ParseError::new(format!(
                "{s:?}: invalid suffix {other:?} (expected b, k, m, g, t or p)"
            )));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit.bytes()))
        .ok_or_else(|| ParseError::new(format!("{} is too large", excerpt(s))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn spark_sizes_parse_as_spark_does() {
        use ByteUnit::*;
        for (s, unit, bytes) in [
            ("200g", MiB, 200 * GIB),
            ("512m", MiB, 512 * MIB),
            ("1t", MiB, 1024 * GIB),
            ("1P", MiB, 1024 * 1024 * GIB),
            (" 8GB ", MiB, 8 * GIB),
            ("4096", MiB, 4096 * MIB),
            ("4096", Byte, 4096),
            ("2k", Byte, 2048),
            ("10kb", Byte, 10240),
            ("100b", MiB, 100),
        ] {
            assert_eq!(parse_spark_size(s, unit).unwrap(), bytes, "{s}");
        }
        for bad in ["", "g", "1.5g", "8x", "-1g", "8 g", "99999999999p"] {
            assert!(parse_spark_size(bad, MiB).is_err(), "{bad:?}");
        }
        let e = parse_spark_size("1.5g", MiB).unwrap_err();
        assert!(
            e.0.contains("\"1.5g\"") && e.0.contains("fractional"),
            "{e}"
        );
    }

    #[test]
    fn spark_conf_errors_name_the_key_and_the_value() {
        let mut c = SparkConf::default();
        c.set("spark.executor.memory", "8x");
        let e = c.size("spark.executor.memory", ByteUnit::MiB).unwrap_err();
        assert!(
            e.0.contains("`spark.executor.memory`") && e.0.contains("\"8x\""),
            "{e}"
        );
        c.set("spark.memory.offHeap.enabled", "yes");
        assert!(
            c.bool("spark.memory.offHeap.enabled")
                .unwrap_err()
                .0
                .contains("\"yes\"")
        );
    }

    #[test]
    fn spark_defaults_file_forms() {
        let text = "# comment\n! also a comment\n\nspark.executor.memory   8g\n\
            spark.memory.offHeap.enabled=true\n  spark.memory.offHeap.size = 20g  \n\
            spark.executor.memoryOverhead: 2g\n\tspark.local.dir\t/a,\\\n   /b\n\
            spark.executor.memory 16g\nspark.flag\n";
        let c = parse_spark_defaults(text);
        assert_eq!(
            c.get("spark.executor.memory"),
            Some("16g"),
            "the last definition wins"
        );
        assert_eq!(c.get("spark.memory.offHeap.enabled"), Some("true"));
        assert_eq!(c.get("spark.memory.offHeap.size"), Some("20g"));
        assert_eq!(c.get("spark.executor.memoryOverhead"), Some("2g"));
        assert_eq!(c.get("spark.local.dir"), Some("/a,/b"));
        assert_eq!(c.get("spark.flag"), Some(""));
        assert_eq!(c.iter().count(), 6);
    }

    #[test]
    fn spark_local_dir_forms() {
        let table: [(&str, Option<Vec<&str>>); 8] = [
            (
                "spark.local.dir /data1,/data2\n",
                Some(vec!["/data1", "/data2"]),
            ),
            ("spark.local.dir=/a, /b ,\n", Some(vec!["/a", "/b"])),
            ("spark.local.dir\t\t/x\n", Some(vec!["/x"])),
            ("# spark.local.dir /c\nspark.master yarn\n", None),
            ("spark.local.dir /a\nspark.local.dir /b\n", Some(vec!["/b"])),
            ("spark.local.dirs /a\nspark.local.dir.x=/b\n", None),
            ("spark.local.dir =\n", None),
            // A continued line, as Properties reads it.
            ("spark.local.dir /a,\\\n    /b\n", Some(vec!["/a", "/b"])),
        ];
        for (text, want) in table {
            let want = want.map(|v| v.into_iter().map(PathBuf::from).collect::<Vec<_>>());
            assert_eq!(parse_spark_defaults(text).local_dirs(), want, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for text in [s.clone(), String::from_utf8_lossy(&bytes).into_owned()] {
                let conf = parse_spark_defaults(&text);
                let _ = conf.local_dirs();
                let _ = parse_spark_size(&text, ByteUnit::MiB);
            }
        }

        #[test]
        fn spark_local_dir_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_spark_defaults(&String::from_utf8_lossy(&bytes)).local_dirs();
        }

        #[test]
        fn spark_sizes_round_trip(n in prop_oneof![0u64..1_000_000, any::<u64>()], unit in 0usize..6, upper in any::<bool>(), long in any::<bool>()) {
            let (suffix, bytes) = [("b", 1), ("k", KIB), ("m", MIB), ("g", GIB), ("t", GIB * KIB), ("p", GIB * MIB)][unit];
            let mut s = format!("{n}{suffix}");
            if long && suffix != "b" {
                s.push('b');
            }
            if upper {
                s = s.to_uppercase();
            }
            // Exact, or refused when it does not fit in 64 bits: never wrapped.
            prop_assert_eq!(parse_spark_size(&s, ByteUnit::Byte).ok(), n.checked_mul(bytes));
            prop_assert_eq!(parse_spark_size(&n.to_string(), ByteUnit::MiB).ok(), n.checked_mul(MIB));
        }
    }

    #[test]
    fn java_properties_in_file_order_with_every_separator() {
        let p = parse_java_properties(
            "#Generated\ngluten_version=1.6.0\nbackend_type = velox\n! c\n\
             gcc_version: GCC: (GNU) 11.2.1\nspark.a  b\\\n   c\nk\\=x=1\ngluten_version=1.7.0\n",
        );
        let get = |k: &str| {
            p.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("gluten_version"),
            Some("1.7.0"),
            "a later duplicate wins"
        );
        assert_eq!(get("backend_type"), Some("velox"));
        assert_eq!(get("gcc_version"), Some("GCC: (GNU) 11.2.1"));
        assert_eq!(get("spark.a"), Some("bc"));
        assert_eq!(get("k=x"), Some("1"));
        assert_eq!(p.len(), 6);
    }
}
