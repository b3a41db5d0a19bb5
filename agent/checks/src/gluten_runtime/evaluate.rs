//! The pure verdict: facts in, findings, summary, gauges and inventory out. One function per
//! rule, called in report order by [`evaluate`]. Sources of the rules: the status table of
//! docs/checks/gluten_runtime.md.

use super::bundle::{java_for_major, shim_spark_minor};
use super::facts::{Facts, JarFacts, JdkFacts};
use super::settings::Settings;
use super::spark::{
    JARS, LOAD_LIB_FROM_JAR, LOAD_LIB_OS, LOAD_LIB_OS_VERSION, USER_CLASS_PATH_FIRST, minor_of,
    scala_suffix,
};
use crate::check::Verdict;
use proto::{Finding, Status};

/// Gluten's own advice for classpath clashes (docs/velox-backend-troubleshooting.md).
const REMEDY: &str = "put the Gluten jar in spark.executor.extraClassPath and spark.driver.extraClassPath (Gluten's velox-backend-troubleshooting.md) so its copy loads first";

fn finding(status: Status, rule: &str, message: String) -> Finding {
    Finding::new(status, message).with_rule(format!("gluten_runtime.{rule}"))
}

fn root(f: &Facts) -> String {
    f.executor_root
        .clone()
        .unwrap_or_else(|| "the host root".to_string())
}

/// The verdict from the facts.
pub fn evaluate(f: &Facts, _settings: &Settings) -> Verdict {
    let mut o = Verdict::default();
    spark_defaults(f, &mut o);
    load_lib_keys(f, &mut o);
    // The OS gate (`os_gate::decide` on `f.os_gate`: which declared loader accepts the
    // executor's NAME and VERSION) belongs here, after the keys it depends on.
    jars(f, &mut o);
    for j in f.gluten_jars() {
        spark_match(f, j, &mut o);
        classpath_conflicts(f, j, &mut o);
    }
    // Without a Gluten jar there is no JVM side of Gluten to judge the JDK for.
    if f.gluten_jars().next().is_some() {
        jdk(f, &mut o);
    }
    o.ok_summary = Some(summary(f));
    gauges(f, &mut o);
    inventory(f, &mut o);
    o
}

/// `spark_defaults` unreadable or holding values Spark would refuse; classpath entries this
/// node cannot read.
fn spark_defaults(f: &Facts, o: &mut Verdict) {
    if let Some(e) = &f.spark.error {
        o.push(finding(
            Status::Unknown,
            "spark_defaults",
            format!("spark_defaults: {e}; the executor classpath and homes are not known"),
        ));
    }
    for u in &f.spark.unresolvable {
        o.push(
            finding(
                Status::Unknown,
                "unresolvable",
                format!(
                    "{} entry {} cannot be read on this node ({}): what it adds to the executor classpath is not checked",
                    u.key, u.entry, u.reason
                ),
            )
            .about(u.entry.clone()),
        );
    }
}

/// `spark.gluten.loadLibOS` without `spark.gluten.loadLibOSVersion`: Gluten throws before
/// it loads anything ("… must be specified when specifies the …").
fn load_lib_keys(f: &Facts, o: &mut Verdict) {
    let g = &f.os_gate;
    if g.load_lib_from_jar && g.load_lib_os.is_some() && g.load_lib_os_version.is_none() {
        o.push(finding(
            Status::Fail,
            "load_lib_os_version",
            format!(
                "{LOAD_LIB_OS} is {} but {LOAD_LIB_OS_VERSION} is not set, with {LOAD_LIB_FROM_JAR}=true: Gluten throws \"{LOAD_LIB_OS_VERSION} must be specified when specifies the {LOAD_LIB_OS}\" and the executor does not start",
                g.load_lib_os.as_deref().unwrap_or("")
            ),
        ));
    }
}

/// Named jars that are missing or unreadable; no Gluten jar at all; two Gluten jars.
fn jars(f: &Facts, o: &mut Verdict) {
    for j in &f.jars {
        if !j.found {
            o.push(
                finding(
                    Status::Fail,
                    "jar_missing",
                    format!(
                        "{} names {}, which does not exist in {}: the executor misses its classes (ClassNotFoundException for spark.plugins)",
                        j.placement,
                        j.path,
                        root(f)
                    ),
                )
                .about(j.path.clone()),
            );
        } else if let Some(e) = &j.error {
            o.push(
                finding(
                    Status::Unknown,
                    "jar_unreadable",
                    format!("{} ({}): {e}", j.path, j.placement),
                )
                .about(j.path.clone()),
            );
        }
    }
    let gluten: Vec<&JarFacts> = f.gluten_jars().collect();
    if gluten.is_empty() && f.jars.iter().all(|j| j.found && j.error.is_none()) {
        o.push(finding(
            Status::Warn,
            "no_gluten_jar",
            format!(
                "no Gluten jar found in {}: none on spark.executor.extraClassPath or spark.jars{}, none named gluten*.jar in SPARK_HOME/jars{}, and velox_library.jars is empty",
                root(f),
                match &f.spark.defaults {
                    Some(d) => format!(" of {d}"),
                    None => " (memory.spark_defaults is not set)".into(),
                },
                match &f.spark.home {
                    Some(h) => format!(" ({h})"),
                    None => String::new(),
                }
            ),
        ));
    }
    let bundles: Vec<&&JarFacts> = gluten.iter().filter(|j| !j.build_info.is_empty()).collect();
    if bundles.len() > 1 {
        let names: Vec<String> = bundles
            .iter()
            .map(|j| format!("{} ({}, Gluten {})", j.path, j.placement, version(j)))
            .collect();
        o.push(finding(
            Status::Warn,
            "several_bundles",
            format!(
                "{} Gluten bundles on the executor classpath: {}; the JVM takes each class from the first that has it, mixing builds",
                bundles.len(),
                names.join(", ")
            ),
        ));
    }
}

fn version(j: &JarFacts) -> &str {
    j.build_info
        .get("gluten_version")
        .map(String::as_str)
        .unwrap_or("?")
}

fn jar_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The Spark minor and Scala binary version the jar is built for: its shims (else its
/// `spark_version`) and its `scala_version` (else the `_2.12` of its file name).
fn bundle_targets(j: &JarFacts) -> (Vec<String>, Option<String>) {
    let mut minors: Vec<String> = j.shims.iter().filter_map(|s| shim_spark_minor(s)).collect();
    if minors.is_empty()
        && let Some(m) = j.build_info.get("spark_version").and_then(|v| minor_of(v))
    {
        minors.push(m);
    }
    let scala = j
        .build_info
        .get("scala_version")
        .and_then(|v| minor_of(v))
        .or_else(|| {
            let stem = jar_name(&j.path).split('-').next().unwrap_or("");
            scala_suffix(stem).map(str::to_string)
        });
    (minors, scala)
}

/// Gluten's shim must be the executors' Spark minor, its Scala binary version Spark's; a patch
/// release apart from the bundle's `spark_version` is a warning.
fn spark_match(f: &Facts, j: &JarFacts, o: &mut Verdict) {
    let s = &f.spark;
    let (minors, scala) = bundle_targets(j);
    let name = jar_name(&j.path);
    let Some(spark_version) = &s.version else {
        let why = match &s.home {
            None => format!(
                "SPARK_HOME is not known (set spark.executorEnv.SPARK_HOME in spark_defaults or [gluten_runtime] spark_home; memory.spark_defaults {})",
                if s.defaults.is_some() {
                    "is not under a conf/ dir"
                } else {
                    "is not set"
                }
            ),
            Some(h) => format!(
                "{h} (from {}) in {} has no jars/spark-core_*.jar and no RELEASE file",
                s.home_source.as_deref().unwrap_or("?"),
                root(f)
            ),
        };
        o.push(
            finding(
                Status::Unknown,
                "spark_unknown",
                format!("Spark version unknown, so {name}'s shims cannot be matched: {why}"),
            )
            .about(j.path.clone()),
        );
        return;
    };
    let from = s
        .core_jar
        .as_deref()
        .map(jar_name)
        .or(s.version_source.as_deref())
        .unwrap_or("?");
    let spark_minor = minor_of(spark_version);
    if !minors.is_empty() && spark_minor.as_ref().is_none_or(|m| !minors.contains(m)) {
        o.push(
            finding(
                Status::Fail,
                "spark_mismatch",
                format!(
                    "{name} is built for Spark {} ({}) but the executors run Spark {spark_version} ({from} in {}): Gluten finds no shim for it and the executor fails to start the plugin",
                    minors.join(", "),
                    if j.shims.is_empty() {
                        "its spark_version".to_string()
                    } else {
                        format!("shim {}", j.shims.join(", "))
                    },
                    s.home.as_deref().unwrap_or("?")
                ),
            )
            .about(j.path.clone()),
        );
    } else if let Some(bv) = j.build_info.get("spark_version")
        && bv != spark_version
        && minor_of(bv) == spark_minor
    {
        o.push(
            finding(
                Status::Warn,
                "spark_patch",
                format!(
                    "{name} is built against Spark {bv}, the executors run Spark {spark_version} ({from}): same minor, a different patch release (Gluten tests the one it is built with)"
                ),
            )
            .about(j.path.clone()),
        );
    }
    if let (Some(want), Some(have)) = (&scala, &s.scala_binary)
        && want != have
    {
        o.push(
            finding(
                Status::Fail,
                "scala_mismatch",
                format!(
                    "{name} is built for Scala {want} but Spark {spark_version} in {} uses Scala {have}{}: its classes do not link (NoSuchMethodError / NoClassDefFoundError for scala.*)",
                    s.home.as_deref().unwrap_or("?"),
                    s.scala_library
                        .as_deref()
                        .map(|v| format!(" (scala-library {v})"))
                        .unwrap_or_default()
                ),
            )
            .about(j.path.clone()),
        );
    }
}

/// Libraries the Gluten jar carries that Spark's `jars/` has in another version: `warn` unless
/// Gluten's copy loads first.
fn classpath_conflicts(f: &Facts, j: &JarFacts, o: &mut Verdict) {
    let gluten_first = j.placement == super::spark::EXTRA_CLASS_PATH
        || (j.placement == JARS && f.spark.user_class_path_first);
    if gluten_first {
        return;
    }
    let order = match j.placement.as_str() {
        JARS => format!(
            "Spark's copy loads first (spark.jars come after Spark's jars/ unless {USER_CLASS_PATH_FIRST}=true)"
        ),
        "SPARK_HOME/jars" => "both are in SPARK_HOME/jars, so which loads first is the JVM's listing order of jars/*, which is unspecified".to_string(),
        _ => format!(
            "the Gluten jar is not on spark.executor.extraClassPath or spark.jars{}, so which loads first is not known",
            f.spark
                .defaults
                .as_deref()
                .map(|d| format!(" of {d}"))
                .unwrap_or_default()
        ),
    };
    for lib in &j.libraries {
        for s in f
            .spark
            .overlapping_jars
            .iter()
            .filter(|s| s.artifact == lib.artifact && s.version != lib.version)
        {
            let file = s.file.as_deref().unwrap_or("?");
            o.push(
                finding(
                    Status::Warn,
                    "classpath_conflict",
                    format!(
                        "{} carries {} {} and Spark's {file} is {} {}: {order}; {REMEDY}",
                        jar_name(&j.path),
                        lib.artifact,
                        lib.version,
                        s.artifact,
                        s.version
                    ),
                )
                .about(file.to_string()),
            );
        }
    }
}

/// The highest class-file version any Gluten jar needs: (major, classes at it, example, jar).
fn needed_major(f: &Facts) -> Option<(u16, usize, &str, &str)> {
    f.gluten_jars()
        .filter_map(|j| {
            Some((
                j.max_class_major?,
                j.classes_at_max,
                j.example_class.as_deref().unwrap_or("?"),
                jar_name(&j.path),
            ))
        })
        .max_by_key(|n| n.0)
}

fn describe(j: &JdkFacts) -> String {
    format!(
        "JDK {} at {} (from {})",
        j.version.as_deref().unwrap_or("?"),
        j.home,
        j.source
    )
}

/// The JDK must run the newest class files of the Gluten jars.
fn jdk(f: &Facts, o: &mut Verdict) {
    let need = needed_major(f);
    let too_old =
        |j: &JdkFacts| need.is_some_and(|(m, ..)| j.feature.is_some_and(|v| v < java_for_major(m)));
    let need_text = || {
        need.map(|(m, n, ex, jar)| {
            format!(
                "{jar} has {n} classes of class-file version {m} (Java {}), e.g. {ex}",
                java_for_major(m)
            )
        })
        .unwrap_or_default()
    };
    if let Some(j) = &f.java.selected {
        if !j.java_binary {
            o.push(
                finding(
                    Status::Fail,
                    "jdk_missing",
                    format!("JAVA_HOME {} (from {}) has no bin/java in {}: the executor JVM cannot start", j.home, j.source, root(f)),
                )
                .about(j.home.clone()),
            );
        } else if j.feature.is_none() {
            o.push(
                finding(
                    Status::Unknown,
                    "jdk_unknown",
                    format!(
                        "JDK version unknown at {} (from {}): {}",
                        j.home,
                        j.source,
                        j.error.as_deref().unwrap_or("no JAVA_VERSION")
                    ),
                )
                .about(j.home.clone()),
            );
        } else if too_old(j) {
            o.push(
                finding(
                    Status::Fail,
                    "jdk_too_old",
                    format!(
                        "{} is older than the bundle needs: {}; the executor fails with UnsupportedClassVersionError",
                        describe(j),
                        need_text()
                    ),
                )
                .about(j.home.clone()),
            );
        }
        return;
    }
    let c = &f.java.candidates;
    if c.is_empty() {
        o.push(finding(
            Status::Unknown,
            "jdk_unknown",
            format!(
                "no JDK found in {}: spark.executorEnv.JAVA_HOME and java_home are not set, /usr/bin/java does not lead to one, and none is under /usr/lib/jvm or /opt/java/openjdk",
                root(f)
            ),
        ));
        return;
    }
    let old: Vec<&JdkFacts> = c
        .iter()
        .filter(|j| too_old(j) || j.feature.is_none())
        .collect();
    let list = |v: &[&JdkFacts]| v.iter().map(|j| describe(j)).collect::<Vec<_>>().join(", ");
    if old.len() == c.len() && c.iter().all(|j| j.feature.is_some()) {
        o.push(finding(
            Status::Fail,
            "jdk_too_old",
            format!(
                "every JDK in {} is older than the bundle needs ({}): {}; the executor fails with UnsupportedClassVersionError",
                root(f),
                list(&old),
                need_text()
            ),
        ));
    } else if !old.is_empty() {
        let all: Vec<&JdkFacts> = c.iter().collect();
        o.push(finding(
            Status::Unknown,
            "jdk_ambiguous",
            format!(
                "JAVA_HOME is not set and {} has several JDKs ({}); some are too old or of unknown version{}: set spark.executorEnv.JAVA_HOME",
                root(f),
                list(&all),
                need.map(|_| format!(" ({})", need_text())).unwrap_or_default()
            ),
        ));
    }
}

fn summary(f: &Facts) -> String {
    let bundles: Vec<String> = f
        .gluten_jars()
        .map(|j| {
            format!(
                "Gluten {} ({})",
                version(j),
                if j.shims.is_empty() {
                    "no shim".to_string()
                } else {
                    j.shims.join(", ")
                }
            )
        })
        .collect();
    let jdk = f
        .java
        .selected
        .as_ref()
        .and_then(|j| j.version.clone())
        .map(|v| format!(", JDK {v}"))
        .unwrap_or_default();
    format!(
        "{} on Spark {} (Scala {}){jdk}",
        bundles.join(", "),
        f.spark.version.as_deref().unwrap_or("?"),
        f.spark.scala_binary.as_deref().unwrap_or("?")
    )
}

fn gauges(f: &Facts, o: &mut Verdict) {
    if let Some((m, ..)) = needed_major(f) {
        o.gauge(
            "gluten_node_gluten_runtime_required_java",
            "Java feature release the newest class files of the Gluten jars need.",
            &[],
            f64::from(java_for_major(m)),
        );
    }
    if let Some(v) = f.java.selected.as_ref().and_then(|j| j.feature) {
        o.gauge(
            "gluten_node_gluten_runtime_java",
            "Java feature release of the executors' JDK.",
            &[],
            f64::from(v),
        );
    }
}

fn inventory(f: &Facts, o: &mut Verdict) {
    if let Some(j) = f.gluten_jars().find(|j| !j.build_info.is_empty()) {
        for (k, key) in [
            ("gluten_version", "gluten_runtime.gluten_version"),
            ("spark_version", "gluten_runtime.bundle_spark_version"),
            ("velox_revision", "gluten_runtime.velox_revision"),
        ] {
            if let Some(v) = j.build_info.get(k) {
                o.inventory.push((key.into(), v.clone()));
            }
        }
        if !j.shims.is_empty() {
            o.inventory
                .push(("gluten_runtime.shims".into(), j.shims.join(" ")));
        }
    }
    if let Some(v) = &f.spark.version {
        o.inventory
            .push(("gluten_runtime.spark_version".into(), v.clone()));
    }
    if let Some(v) = &f.spark.scala_binary {
        o.inventory
            .push(("gluten_runtime.scala_binary".into(), v.clone()));
    }
    if let Some(v) = f.java.selected.as_ref().and_then(|j| j.version.clone()) {
        o.inventory.push(("gluten_runtime.java_version".into(), v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gluten_runtime::facts::{Library, Unresolvable};
    use crate::gluten_runtime::spark::EXTRA_CLASS_PATH;

    /// Gluten 1.7.0 (as the real bundle describes itself) on Spark 3.5.5 with JDK 17.
    fn facts() -> Facts {
        let mut f = Facts::default();
        let build_info = [
            ("gluten_version", "1.7.0"),
            ("spark_version", "3.5.5"),
            ("scala_version", "2.12.18"),
            ("java_version", "17"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        f.jars.push(JarFacts {
            path: "/opt/gluten/gluten.jar".into(),
            placement: EXTRA_CLASS_PATH.into(),
            found: true,
            gluten: true,
            build_info,
            shims: vec!["spark35".into()],
            libraries: vec![Library {
                group: "org.apache.arrow".into(),
                artifact: "arrow-vector".into(),
                version: "15.0.0".into(),
                file: None,
            }],
            max_class_major: Some(61),
            classes_at_max: 1314,
            example_class: Some("io/substrait/proto/Plan.class".into()),
            ..JarFacts::default()
        });
        f.spark.defaults = Some("/opt/spark/conf/spark-defaults.conf".into());
        f.spark.home = Some("/opt/spark".into());
        f.spark.home_source = Some("spark_defaults location".into());
        f.spark.version = Some("3.5.5".into());
        f.spark.core_jar = Some("/opt/spark/jars/spark-core_2.12-3.5.5.jar".into());
        f.spark.scala_binary = Some("2.12".into());
        f.spark.overlapping_jars.push(Library {
            artifact: "arrow-vector".into(),
            version: "12.0.1".into(),
            file: Some("/opt/spark/jars/arrow-vector-12.0.1.jar".into()),
            ..Library::default()
        });
        f.java.selected = Some(jdk("/usr/lib/jvm/java-17", "17.0.21.1", 17));
        f
    }

    fn jdk(home: &str, version: &str, feature: u32) -> JdkFacts {
        JdkFacts {
            home: home.into(),
            source: "spark.executorEnv.JAVA_HOME".into(),
            java_binary: true,
            version: Some(version.into()),
            feature: Some(feature),
            error: None,
        }
    }

    fn run(f: &Facts) -> Verdict {
        evaluate(f, &Settings::default())
    }

    fn only(v: &Verdict) -> (Status, String, String) {
        assert_eq!(v.findings.len(), 1, "{:?}", v.findings);
        let x = &v.findings[0];
        (
            x.status,
            x.rule.clone().unwrap_or_default(),
            x.message.clone(),
        )
    }

    #[test]
    fn matching_bundle_is_ok_with_a_summary_and_inventory() {
        let v = run(&facts());
        assert_eq!(v.status(), Status::Ok, "{:?}", v.findings);
        assert_eq!(
            v.summary(),
            "Gluten 1.7.0 (spark35) on Spark 3.5.5 (Scala 2.12), JDK 17.0.21.1"
        );
        assert!(
            v.inventory
                .contains(&("gluten_runtime.java_version".into(), "17.0.21.1".into()))
        );
        assert_eq!(v.metrics.len(), 2);
    }

    #[test]
    fn spark_minor_scala_and_patch() {
        let mut f = facts();
        f.spark.version = Some("3.4.4".into());
        let (s, rule, m) = only(&run(&f));
        assert_eq!(
            (s, rule.as_str()),
            (Status::Fail, "gluten_runtime.spark_mismatch")
        );
        assert!(m.contains("built for Spark 3.5 (shim spark35)"), "{m}");

        // No shim in the jar: its spark_version decides.
        f.jars[0].shims.clear();
        assert!(only(&run(&f)).2.contains("(its spark_version)"));

        let mut f = facts();
        f.spark.version = Some("3.5.2".into());
        let (s, rule, m) = only(&run(&f));
        assert_eq!(
            (s, rule.as_str()),
            (Status::Warn, "gluten_runtime.spark_patch")
        );
        assert!(
            m.contains("Spark 3.5.5, the executors run Spark 3.5.2"),
            "{m}"
        );

        let mut f = facts();
        f.spark.scala_binary = Some("2.13".into());
        let (s, rule, _) = only(&run(&f));
        assert_eq!(
            (s, rule.as_str()),
            (Status::Fail, "gluten_runtime.scala_mismatch")
        );

        let mut f = facts();
        f.spark.version = None;
        f.spark.home = None;
        let (s, rule, m) = only(&run(&f));
        assert_eq!(
            (s, rule.as_str()),
            (Status::Unknown, "gluten_runtime.spark_unknown")
        );
        assert!(m.contains("SPARK_HOME is not known"), "{m}");
    }

    #[test]
    fn jdk_older_than_the_newest_class_files_fails() {
        let mut f = facts();
        f.java.selected = Some(jdk("/usr/lib/jvm/java-8", "1.8.0_402", 8));
        let (s, rule, m) = only(&run(&f));
        assert_eq!(
            (s, rule.as_str()),
            (Status::Fail, "gluten_runtime.jdk_too_old")
        );
        assert_eq!(
            m,
            "JDK 1.8.0_402 at /usr/lib/jvm/java-8 (from spark.executorEnv.JAVA_HOME) is older than the bundle needs: gluten.jar has 1314 classes of class-file version 61 (Java 17), e.g. io/substrait/proto/Plan.class; the executor fails with UnsupportedClassVersionError"
        );
        // A JDK 21 is fine; a home without bin/java is not.
        f.java.selected = Some(jdk("/usr/lib/jvm/java-21", "21.0.5", 21));
        assert_eq!(run(&f).status(), Status::Ok);
        f.java.selected.as_mut().unwrap().java_binary = false;
        assert_eq!(only(&run(&f)).1, "gluten_runtime.jdk_missing");
        // Candidates only: all too old fails, mixed is unknown, none is unknown.
        f.java.selected = None;
        f.java.candidates = vec![jdk("/a", "11.0.1", 11)];
        assert_eq!(only(&run(&f)).0, Status::Fail);
        f.java.candidates.push(jdk("/b", "17.0.1", 17));
        assert_eq!(only(&run(&f)).1, "gluten_runtime.jdk_ambiguous");
        f.java.candidates.remove(0);
        assert_eq!(run(&f).status(), Status::Ok);
        f.java.candidates.clear();
        assert_eq!(only(&run(&f)).1, "gluten_runtime.jdk_unknown");
    }

    #[test]
    fn classpath_order_decides_conflicts() {
        let mut f = facts();
        f.jars[0].placement = JARS.into();
        let (s, rule, m) = only(&run(&f));
        assert_eq!(
            (s, rule.as_str()),
            (Status::Warn, "gluten_runtime.classpath_conflict")
        );
        assert!(m.contains("arrow-vector 15.0.0"), "{m}");
        assert!(
            m.contains("/opt/spark/jars/arrow-vector-12.0.1.jar is arrow-vector 12.0.1"),
            "{m}"
        );
        assert!(m.contains("Spark's copy loads first"), "{m}");
        assert!(m.contains(REMEDY), "{m}");
        f.spark.user_class_path_first = true;
        assert_eq!(run(&f).status(), Status::Ok);
        f.jars[0].placement = "SPARK_HOME/jars".into();
        assert!(only(&run(&f)).2.contains("unspecified"));
        // Same version: no conflict.
        f.spark.overlapping_jars[0].version = "15.0.0".into();
        assert_eq!(run(&f).status(), Status::Ok);
    }

    #[test]
    fn missing_jars_unresolvable_entries_and_no_jar() {
        let mut f = facts();
        f.spark.unresolvable.push(Unresolvable {
            key: "spark.yarn.jars".into(),
            entry: "hdfs:///spark/jars/*".into(),
            reason: "YARN ships these".into(),
        });
        assert_eq!(only(&run(&f)).1, "gluten_runtime.unresolvable");
        let mut f = facts();
        f.jars[0].found = false;
        f.jars[0].gluten = false;
        let v = run(&f);
        assert_eq!(v.status(), Status::Fail);
        assert!(v.findings[0].message.starts_with(
            "spark.executor.extraClassPath names /opt/gluten/gluten.jar, which does not exist in the host root"
        ));
        let mut f = facts();
        f.jars.clear();
        f.java.selected = None;
        assert_eq!(
            only(&run(&f)),
            (
                Status::Warn,
                "gluten_runtime.no_gluten_jar".to_string(),
                "no Gluten jar found in the host root: none on spark.executor.extraClassPath or spark.jars of /opt/spark/conf/spark-defaults.conf, none named gluten*.jar in SPARK_HOME/jars (/opt/spark), and velox_library.jars is empty".to_string()
            )
        );
        let mut f = facts();
        f.spark.error =
            Some("`spark.executor.userClassPathFirst`: yes is not true or false".into());
        assert_eq!(only(&run(&f)).0, Status::Unknown);
    }
}
