//! The read: the only part of the check that touches the machine. `spark_defaults` through the
//! host; the jars, Spark's installation and the JDK in the executor root (every path resolved
//! inside it). Problems found here are facts (`error`, `found`), not errors: the evaluate turns
//! them into findings.

use super::bundle::properties;
use super::facts::{Facts, JarFacts, JarLoaders, JdkFacts, Library, SparkFacts};
use super::spark::{
    self, Entry, JAVA_HOME_ENV, LOAD_LIB_FROM_JAR, LOAD_LIB_OS, LOAD_LIB_OS_VERSION,
    SPARK_HOME_ENV, USER_CLASS_PATH_FIRST, jar_name, java_feature, jdk_release_version,
    manifest_value, minor_of, release_version, scala_suffix,
};
use super::{GlutenRuntime, Settings};
use super::{gate, os_gate};
use crate::check::{CheckError, Context};
use crate::host::Host;
use crate::spark_conf::{SparkConf, parse_spark_defaults};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest `/etc/os-release` read (the real ones are under 1 KiB).
const MAX_OS_RELEASE: u64 = 64 * 1024;

/// Most jars one read opens (a wildcard dir of thousands must not stall the check).
const MAX_JARS: usize = 512;

/// Where JDKs are installed (Debian/Ubuntu/RHEL `/usr/lib/jvm/*`; the Eclipse Temurin images).
const JDK_DIRS: [&str; 1] = ["/usr/lib/jvm"];
const JDK_HOMES: [&str; 1] = ["/opt/java/openjdk"];

impl GlutenRuntime {
    /// Reads everything the check judges (see the module doc).
    pub(super) fn read_facts(
        &self,
        host: &Host,
        cx: &Context<Settings>,
    ) -> Result<Facts, CheckError> {
        let exec_root = cx
            .shared
            .executor_root
            .as_ref()
            .map(|r| Host::new(r).with_arch(host.arch()));
        let root = exec_root.as_ref().unwrap_or(host);
        if !root.root().is_dir() {
            return Err(CheckError::Other(format!(
                "executor_root {} is not a directory",
                root.root().display()
            )));
        }
        let mut facts = Facts {
            executor_root: cx
                .shared
                .executor_root
                .as_ref()
                .map(|r| r.display().to_string()),
            ..Facts::default()
        };
        let conf = spark_conf(host, cx.shared.spark_defaults.as_deref(), &mut facts.spark);
        let cp = spark::classpath(&conf);
        facts.spark.extra_class_path = cp.extra_raw.clone();
        facts.spark.jars = cp.jars_raw.clone();
        facts.spark.unresolvable = cp.unresolvable.clone();
        let mut bool_key = |k: &str| match conf.bool(k) {
            Ok(v) => v.unwrap_or(false),
            Err(e) => {
                facts.spark.error.get_or_insert(e.to_string());
                false
            }
        };
        facts.spark.user_class_path_first = bool_key(USER_CLASS_PATH_FIRST);
        facts.os_gate.load_lib_from_jar = bool_key(LOAD_LIB_FROM_JAR);
        facts.os_gate.load_lib_os = conf.get(LOAD_LIB_OS).map(str::to_string);
        facts.os_gate.load_lib_os_version = conf.get(LOAD_LIB_OS_VERSION).map(str::to_string);
        let os_release = match read_os_release(root) {
            Ok(b) => b,
            Err(e) => {
                facts.os_gate.os_release_error = Some(e.to_string());
                None
            }
        };
        if let Some(Ok(r)) = os_release.as_deref().map(os_gate::parse_os_release) {
            facts.os_gate.os_release_name = r.name;
            facts.os_gate.os_release_version = r.version;
        }

        // Spark's installation.
        let home = if let Some(h) = &cx.settings.spark_home {
            Some((h.display().to_string(), "gluten_runtime.spark_home"))
        } else if let Some(h) = conf.get(SPARK_HOME_ENV) {
            Some((h.trim().to_string(), SPARK_HOME_ENV))
        } else {
            cx.shared
                .spark_defaults
                .as_deref()
                .and_then(Path::parent)
                .filter(|c| c.file_name().is_some_and(|n| n == "conf"))
                .and_then(Path::parent)
                .map(|h| (h.display().to_string(), "spark_defaults location"))
        };
        let mut spark_jar_names = Vec::new();
        if let Some((home, source)) = home {
            facts.spark.home_source = Some(source.to_string());
            spark_jar_names = read_spark_home(root, &home, &mut facts.spark);
            facts.spark.home = Some(home);
        }

        // The jars: classpath order, then Gluten jars among Spark's own, then the configured.
        let mut wanted: Vec<(String, &'static str, bool)> = Vec::new();
        let mut push = |p: String, placement: &'static str, named: bool| {
            if !wanted.iter().any(|(q, _, _)| *q == p) {
                wanted.push((p, placement, named));
            }
        };
        for (entries, placement) in [
            (&cp.extra, spark::EXTRA_CLASS_PATH),
            (&cp.jars, spark::JARS),
        ] {
            for e in entries {
                match e {
                    Entry::Jar(p) => push(p.clone(), placement, true),
                    Entry::Dir(d) => {
                        for n in root.list_dir(d).unwrap_or_default() {
                            if n.ends_with(".jar") {
                                push(join(d, &n), placement, false);
                            }
                        }
                    }
                }
            }
        }
        if let Some(home) = &facts.spark.home {
            for n in &spark_jar_names {
                if n.starts_with("gluten") {
                    push(join(&format!("{home}/jars"), n), "SPARK_HOME/jars", true);
                }
            }
        }
        for p in &cx.shared.gluten_jars {
            push(p.display().to_string(), "velox_library.jars", true);
        }
        for (path, placement, named) in wanted.into_iter().take(MAX_JARS) {
            let mut jf = match root.resolve(&path) {
                Err(_) => JarFacts::default(),
                Ok(local) => match self.jars.get(&local, &path) {
                    Ok(j) => JarFacts {
                        found: true,
                        ..(*j).clone()
                    },
                    Err(e) => JarFacts {
                        found: local.exists(),
                        error: Some(e.to_string()),
                        ..JarFacts::default()
                    },
                },
            };
            // A jar found by a wildcard is kept only when it matters here.
            if !named
                && jf.found
                && !jf.gluten
                && jf.shared_library_loaders.is_none()
                && jf.root_libraries.is_empty()
            {
                continue;
            }
            if !jf.gluten {
                jf.libraries.clear();
            }
            jf.path = path;
            jf.placement = placement.to_string();
            if let Some(l) = &jf.shared_library_loaders {
                facts.os_gate.jars.push(JarLoaders {
                    jar: jf.path.clone(),
                    loaders: l.clone(),
                });
            }
            facts.jars.push(jf);
        }

        // The OS gate, decided on what was read.
        let (decision, undecided) =
            gate::decide_gate(&facts.jars, &facts.os_gate, os_release.as_deref());
        facts.os_gate.decision = decision;
        facts.os_gate.undecided = undecided;

        // Spark's jars that a Gluten jar also carries.
        let carried: BTreeSet<String> = facts
            .gluten_jars()
            .flat_map(|j| j.libraries.iter())
            .filter(|l| l.group != "org.apache.gluten")
            .map(|l| l.artifact.clone())
            .collect();
        if let Some(home) = &facts.spark.home {
            for n in &spark_jar_names {
                if let Some((artifact, version)) = jar_name(n)
                    && carried.contains(artifact)
                {
                    facts.spark.overlapping_jars.push(Library {
                        group: String::new(),
                        artifact: artifact.to_string(),
                        version: version.to_string(),
                        file: Some(join(&format!("{home}/jars"), n)),
                    });
                }
            }
        }

        // The JDK.
        if let Some(h) = conf.get(JAVA_HOME_ENV) {
            facts.java.selected = Some(jdk(root, h.trim(), JAVA_HOME_ENV));
        } else if let Some(h) = &cx.settings.java_home {
            facts.java.selected = Some(jdk(
                root,
                &h.display().to_string(),
                "gluten_runtime.java_home",
            ));
        } else if let Some(h) = &cx.shared.java_home {
            facts.java.selected = Some(jdk(
                root,
                &h.display().to_string(),
                "velox_library.java_home",
            ));
        } else if let Some(h) = java_on_path(root) {
            facts.java.selected = Some(jdk(root, &h, "/usr/bin/java"));
        } else {
            facts.java.candidates = jdk_candidates(root);
        }
        Ok(facts)
    }
}

/// The executors' `spark-defaults.conf` (a host path, like the memory check's), or an empty
/// conf with the reason in `spark.error`.
fn spark_conf(host: &Host, spark_defaults: Option<&Path>, spark: &mut SparkFacts) -> SparkConf {
    let Some(path) = spark_defaults else {
        return SparkConf::default();
    };
    spark.defaults = Some(path.display().to_string());
    match host.read_optional(path) {
        Ok(Some(text)) => parse_spark_defaults(&text),
        Ok(None) => {
            spark.error = Some(format!("{} does not exist", path.display()));
            SparkConf::default()
        }
        Err(e) => {
            spark.error = Some(e.to_string());
            SparkConf::default()
        }
    }
}

/// The bytes of the root's `/etc/os-release` (Gluten reads bytes: `Properties.load` of an
/// `InputStream` is ISO-8859-1), at most [`MAX_OS_RELEASE`]; `None` when it does not exist.
fn read_os_release(root: &Host) -> Result<Option<Vec<u8>>, CheckError> {
    let file = match root.open("/etc/os-release") {
        Ok(f) => f,
        Err(CheckError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                || source.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_OS_RELEASE)
        .read_to_end(&mut bytes)
        .map_err(|e| CheckError::io(&root.path("/etc/os-release"), e))?;
    Ok(Some(bytes))
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Spark's version and Scala version from `home` in `root`; the names of `home/jars`.
fn read_spark_home(root: &Host, home: &str, f: &mut SparkFacts) -> Vec<String> {
    let jars_dir = join(home, "jars");
    f.jars_dir = root.is_dir(&jars_dir);
    let names = root.list_dir(&jars_dir).unwrap_or_default();
    let core = names.iter().find_map(|n| {
        let (artifact, version) = jar_name(n)?;
        artifact
            .starts_with("spark-core_")
            .then_some((n, artifact, version))
    });
    if let Some((n, artifact, version)) = core {
        let path = join(&jars_dir, n);
        f.scala_binary = scala_suffix(artifact).map(str::to_string);
        match root.resolve(&path).ok().and_then(|l| version_info(&l)) {
            Some((v, from)) => {
                f.version = Some(v);
                f.version_source = Some(from.into());
            }
            None => {
                f.version = Some(version.to_string());
                f.version_source = Some("jar name".into());
            }
        }
        f.core_jar = Some(path);
    }
    if f.version.is_none()
        && let Ok(Some(text)) = root.read_optional(join(home, "RELEASE"))
        && let Some(v) = release_version(&text)
    {
        f.version = Some(v);
        f.version_source = Some("RELEASE".into());
    }
    f.scala_library = names.iter().find_map(|n| {
        let (artifact, version) = jar_name(n)?;
        (artifact == "scala-library").then(|| version.to_string())
    });
    if f.scala_binary.is_none() {
        f.scala_binary = f.scala_library.as_deref().and_then(minor_of);
    }
    names
}

/// Spark's version in a spark-core jar and where it was found: `version` of
/// `spark-version-info.properties` (Spark's own builds), else the manifest's
/// `Implementation-Version` (PyPI's 3.5 and 4.0 jars have no properties file).
fn version_info(local: &Path) -> Option<(String, &'static str)> {
    let file = std::fs::File::open(local).ok()?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).ok()?;
    let mut read = |name: &str| -> Option<String> {
        let mut text = String::new();
        zip.by_name(name)
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    };
    if let Some(v) = read("spark-version-info.properties")
        .and_then(|t| properties(&t).remove("version"))
        .filter(|v| !v.is_empty())
    {
        return Some((v, "spark-version-info.properties"));
    }
    read("META-INF/MANIFEST.MF")
        .and_then(|t| manifest_value(&t, "Implementation-Version"))
        .map(|v| (v, "MANIFEST.MF"))
}

/// One JDK at `home` in `root`: `bin/java` and the version of its `release` file.
fn jdk(root: &Host, home: &str, source: &str) -> JdkFacts {
    let home = home.trim_end_matches('/');
    let home = if home.is_empty() { "/" } else { home };
    let mut j = JdkFacts {
        home: home.to_string(),
        source: source.to_string(),
        java_binary: root
            .resolve(join(home, "bin/java"))
            .is_ok_and(|l| l.is_file()),
        ..JdkFacts::default()
    };
    match root.read_optional(join(home, "release")) {
        Ok(Some(text)) => {
            j.version = jdk_release_version(&text);
            j.feature = j.version.as_deref().and_then(java_feature);
            if j.version.is_none() {
                j.error = Some(format!("{home}/release has no JAVA_VERSION"));
            }
        }
        Ok(None) => j.error = Some(format!("{home}/release does not exist")),
        Err(e) => j.error = Some(e.to_string()),
    }
    j
}

/// The `JAVA_HOME` of the `java` a shell finds first, `/usr/bin/java` followed inside the root
/// (`/usr/lib/jvm/java-17-openjdk-amd64/bin/java` → `/usr/lib/jvm/java-17-openjdk-amd64`;
/// JDK 8's `jre/bin/java` → the JDK).
fn java_on_path(root: &Host) -> Option<String> {
    let local = root.resolve("/usr/bin/java").ok()?;
    if !local.is_file() {
        return None;
    }
    let host_path = root.host_path_of(&local)?;
    let bin = host_path.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let mut home: PathBuf = bin.parent()?.to_path_buf();
    if home.file_name().is_some_and(|n| n == "jre")
        && let Some(p) = home.parent()
        && root
            .read_optional(join(&p.display().to_string(), "release"))
            .ok()
            .flatten()
            .is_some()
    {
        home = p.to_path_buf();
    }
    // `/usr/bin/java` itself (no alternatives link): not a JDK home.
    (home != Path::new("/usr")).then(|| home.display().to_string())
}

/// The JDKs installed in the root (each once, however many links name it).
fn jdk_candidates(root: &Host) -> Vec<JdkFacts> {
    let mut homes: Vec<String> = Vec::new();
    for d in JDK_DIRS {
        for n in root.list_dir(d).unwrap_or_default() {
            homes.push(join(d, &n));
        }
    }
    homes.extend(JDK_HOMES.iter().map(|s| s.to_string()));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for h in homes {
        let Ok(local) = root.resolve(&h) else {
            continue;
        };
        if !local.is_dir() || !seen.insert(local) {
            continue;
        }
        let j = jdk(root, &h, "scan");
        if j.java_binary {
            out.push(j);
        }
    }
    out
}
