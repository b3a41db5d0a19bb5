//! Spark's side, as text: the executor classpath keys of `spark-defaults.conf` (what Spark puts
//! where, what cannot be read from this node), jar file names (`<artifact>-<version>.jar`),
//! Spark's `RELEASE` file, version arithmetic. Pure.

use super::facts::Unresolvable;
use crate::spark_conf::SparkConf;

pub const EXTRA_CLASS_PATH: &str = "spark.executor.extraClassPath";
pub const JARS: &str = "spark.jars";
pub const USER_CLASS_PATH_FIRST: &str = "spark.executor.userClassPathFirst";
pub const SPARK_HOME_ENV: &str = "spark.executorEnv.SPARK_HOME";
pub const JAVA_HOME_ENV: &str = "spark.executorEnv.JAVA_HOME";
pub const LOAD_LIB_FROM_JAR: &str = "spark.gluten.loadLibFromJar";
pub const LOAD_LIB_OS: &str = "spark.gluten.loadLibOS";
pub const LOAD_LIB_OS_VERSION: &str = "spark.gluten.loadLibOSVersion";
/// Keys that replace Spark's `jars/` on YARN: what runs is not what `SPARK_HOME` holds.
pub const YARN_JARS: [&str; 2] = ["spark.yarn.archive", "spark.yarn.jars"];

/// One classpath entry this node can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file path in the executor root.
    Jar(String),
    /// `dir/*`: every `.jar` of `dir` (the JVM's wildcard).
    Dir(String),
}

/// The executor classpath as `spark-defaults.conf` sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classpath {
    /// `spark.executor.extraClassPath`, prepended to the executor JVM's classpath.
    pub extra: Vec<Entry>,
    /// `spark.jars`, loaded by Spark's user class loader after its own `jars/`.
    pub jars: Vec<Entry>,
    pub extra_raw: Vec<String>,
    pub jars_raw: Vec<String>,
    pub unresolvable: Vec<Unresolvable>,
}

/// Splits the classpath keys into readable entries and the ones this node cannot read.
pub fn classpath(conf: &SparkConf) -> Classpath {
    let mut cp = Classpath::default();
    let bad = |key: &str, entry: &str, reason: &str| Unresolvable {
        key: key.to_string(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    if let Some(v) = conf.get(EXTRA_CLASS_PATH) {
        // The JVM's path separator.
        for e in v.split(':').map(str::trim).filter(|e| !e.is_empty()) {
            cp.extra_raw.push(e.to_string());
            match local_entry(e, false) {
                Ok(x) => cp.extra.push(x),
                Err(r) => cp.unresolvable.push(bad(EXTRA_CLASS_PATH, e, r)),
            }
        }
    }
    if let Some(v) = conf.get(JARS) {
        for e in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            cp.jars_raw.push(e.to_string());
            match local_entry(e, true) {
                Ok(x) => cp.jars.push(x),
                Err(r) => cp.unresolvable.push(bad(JARS, e, r)),
            }
        }
    }
    for k in YARN_JARS {
        if let Some(v) = conf.get(k).filter(|v| !v.trim().is_empty()) {
            cp.unresolvable.push(bad(
                k,
                v.trim(),
                "YARN ships these as Spark's jars instead of SPARK_HOME/jars",
            ));
        }
    }
    cp
}

/// A classpath entry as a path in the executor root, or why it is not one. `uri`: `spark.jars`
/// syntax (`file:`, `local:` and plain paths; other schemes are fetched at run time).
fn local_entry(e: &str, uri: bool) -> Result<Entry, &'static str> {
    let path = if uri {
        if let Some(rest) = e.strip_prefix("local:").or_else(|| e.strip_prefix("file:")) {
            // `file:///x`, `file:/x`, `local:/x`.
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err("a URI with a host part or a relative path");
            }
            rest
        } else if e.contains("://") {
            return Err("fetched from a remote file system when the executor starts");
        } else {
            e
        }
    } else {
        e
    };
    if path.contains('$') || path.contains("{{") {
        return Err("names a variable the executor's environment expands");
    }
    if !path.starts_with('/') {
        return Err("relative to the executor's working directory");
    }
    Ok(match path.strip_suffix("/*") {
        Some(dir) => Entry::Dir(if dir.is_empty() {
            "/".into()
        } else {
            dir.into()
        }),
        None => Entry::Jar(path.to_string()),
    })
}

/// `<artifact>-<version>.jar` → (artifact, version): the version starts at the first `-`
/// followed by a digit (`guava-33.4.0-jre.jar` → `guava`, `33.4.0-jre`).
pub fn jar_name(file: &str) -> Option<(&str, &str)> {
    let stem = file.strip_suffix(".jar")?;
    let at = stem
        .match_indices('-')
        .find(|(i, _)| stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()))?
        .0;
    Some((&stem[..at], &stem[at + 1..]))
}

/// The Scala binary version of an artifact id (`spark-core_2.12` → `2.12`).
pub fn scala_suffix(artifact: &str) -> Option<&str> {
    artifact.rsplit_once('_').map(|(_, s)| s).filter(|s| {
        s.split('.').count() == 2
            && s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// `major.minor` of a version (`2.12.18` → `2.12`, `3.5.5` → `3.5`).
pub fn minor_of(version: &str) -> Option<String> {
    let mut it = version.split(['.', '-']);
    let (a, b) = (it.next()?, it.next()?);
    let num = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    (num(a) && num(b)).then(|| format!("{a}.{b}"))
}

/// The version of Spark's `RELEASE` file (`Spark 3.5.5 built for Hadoop 3.3.4`).
pub fn release_version(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let mut words = first.split_whitespace();
    (words.next()? == "Spark")
        .then(|| words.next())
        .flatten()
        .filter(|v| minor_of(v).is_some())
        .map(str::to_string)
}

/// A main-section attribute of a jar manifest (`Name: value`, continuation lines start with a
/// space).
pub fn manifest_value(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines().take_while(|l| !l.trim().is_empty()).peekable();
    while let Some(l) = lines.next() {
        if let Some((k, v)) = l.split_once(':')
            && k == key
        {
            let mut v = v.trim_start().to_string();
            while let Some(c) = lines.peek().and_then(|n| n.strip_prefix(' ')) {
                v.push_str(c);
                lines.next();
            }
            return Some(v.trim_end().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

/// `JAVA_VERSION` of a JDK's `release` file.
pub fn jdk_release_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("JAVA_VERSION=")?;
        Some(v.trim().trim_matches('"').to_string()).filter(|v| !v.is_empty())
    })
}

/// The Java feature release of a version string (`1.8.0_402` → 8, `17.0.21.1` → 17,
/// `21` → 21, `11-ea` → 11).
pub fn java_feature(version: &str) -> Option<u32> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        return parts.next()?.parse().ok();
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark_conf::parse_spark_defaults;

    #[test]
    fn jar_names_split_at_the_version() {
        assert_eq!(
            jar_name("spark-core_2.12-3.5.5.jar"),
            Some(("spark-core_2.12", "3.5.5"))
        );
        assert_eq!(
            jar_name("guava-33.4.0-jre.jar"),
            Some(("guava", "33.4.0-jre"))
        );
        assert_eq!(
            jar_name("arrow-memory-netty-12.0.1.jar"),
            Some(("arrow-memory-netty", "12.0.1"))
        );
        assert_eq!(jar_name("gluten.jar"), None);
        assert_eq!(scala_suffix("spark-core_2.13"), Some("2.13"));
        assert_eq!(scala_suffix("spark-core"), None);
        assert_eq!(minor_of("2.12.18").as_deref(), Some("2.12"));
        assert_eq!(minor_of("3.5.5").as_deref(), Some("3.5"));
        assert_eq!(minor_of("x"), None);
    }

    #[test]
    fn release_files() {
        assert_eq!(
            release_version("Spark 3.5.5 built for Hadoop 3.3.4\nBuild flags: -B\n").as_deref(),
            Some("3.5.5")
        );
        assert_eq!(release_version("Hadoop 3"), None);
        let mf = "Manifest-Version: 1.0\r\nImplementation-Title: Spark Project Core\r\nImplementation-Version: 3.5.\r\n 5\r\n\r\nName: x\r\nImplementation-Version: 9\r\n";
        assert_eq!(
            manifest_value(mf, "Implementation-Version").as_deref(),
            Some("3.5.5")
        );
        assert_eq!(manifest_value(mf, "Missing"), None);
        let jdk8 = "JAVA_VERSION=\"1.8.0_402\"\nOS_NAME=\"Linux\"\n";
        assert_eq!(jdk_release_version(jdk8).as_deref(), Some("1.8.0_402"));
        assert_eq!(java_feature("1.8.0_402"), Some(8));
        assert_eq!(java_feature("17.0.21.1"), Some(17));
        assert_eq!(java_feature("11.0.25"), Some(11));
        assert_eq!(java_feature("21"), Some(21));
        assert_eq!(java_feature("11-ea"), Some(11));
        assert_eq!(java_feature("x"), None);
        assert_eq!(jdk_release_version("IMPLEMENTOR=x\n"), None);
    }

    #[test]
    fn classpath_entries_readable_or_named() {
        let conf = parse_spark_defaults(
            "spark.executor.extraClassPath /opt/gluten/g.jar:/opt/extra/*:./rel.jar:$HOME/x.jar\n\
             spark.jars file:///opt/a.jar,local:/opt/b.jar,hdfs://nn/c.jar,/opt/d.jar,e.jar\n\
             spark.yarn.archive hdfs:///spark/libs.zip\n",
        );
        let cp = classpath(&conf);
        assert_eq!(
            cp.extra,
            [
                Entry::Jar("/opt/gluten/g.jar".into()),
                Entry::Dir("/opt/extra".into())
            ]
        );
        assert_eq!(
            cp.jars,
            [
                Entry::Jar("/opt/a.jar".into()),
                Entry::Jar("/opt/b.jar".into()),
                Entry::Jar("/opt/d.jar".into())
            ]
        );
        let bad: Vec<(&str, &str)> = cp
            .unresolvable
            .iter()
            .map(|u| (u.key.as_str(), u.entry.as_str()))
            .collect();
        assert_eq!(
            bad,
            [
                (EXTRA_CLASS_PATH, "./rel.jar"),
                (EXTRA_CLASS_PATH, "$HOME/x.jar"),
                (JARS, "hdfs://nn/c.jar"),
                (JARS, "e.jar"),
                ("spark.yarn.archive", "hdfs:///spark/libs.zip"),
            ]
        );
        assert_eq!(cp.extra_raw.len(), 4);
        assert_eq!(cp.jars_raw.len(), 5);
    }
}
