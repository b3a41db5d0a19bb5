//! The pure verdict: facts in, findings, summary, gauges and inventory out. One function per
//! rule, called in report order by [`evaluate`]. Sources of the rules: the status table of
//! docs/checks/gluten_runtime.md.

use super::bundle::{java_for_major, shim_spark_minor};
use super::facts::{Facts, JarFacts, JdkFacts};
use super::os_gate::Decision;
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
    os_gate(f, &mut o);
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

/// Gluten's OS gate with `spark.gluten.loadLibFromJar=true` (`SharedLibraryLoaderUtils`, or
/// `SharedLibraryLoader.getForOS` before 1.6): the exception it throws instead of picking a
/// loader, or the libraries of the loader it picks that no jar it can see holds (`JniLibLoader`
/// then throws `FileNotFoundException` for the first of them).
fn os_gate(f: &Facts, o: &mut Verdict) {
    let g = &f.os_gate;
    if !g.load_lib_from_jar {
        return;
    }
    let Some(d) = &g.decision else {
        if let Some(why) = &g.undecided
            && f.gluten_jars().next().is_some()
        {
            o.push(finding(
                Status::Unknown,
                "os_gate_unknown",
                format!("{LOAD_LIB_FROM_JAR}=true, but which SharedLibraryLoader Gluten picks is not known: {why}"),
            ));
        }
        return;
    };
    let gluten = d
        .gluten_version
        .as_deref()
        .map(|v| format!("Gluten {v}"))
        .unwrap_or_else(|| "Gluten".to_string());
    let os = || match (&g.load_lib_os, &g.load_lib_os_version) {
        (Some(n), Some(v)) => format!("{n} {v} (from {LOAD_LIB_OS} and {LOAD_LIB_OS_VERSION})"),
        _ => format!(
            "NAME {} VERSION {} of /etc/os-release in {}",
            g.os_release_name.as_deref().unwrap_or("(none)"),
            g.os_release_version.as_deref().unwrap_or("(none)"),
            root(f)
        ),
    };
    let fail = |rule: &str, message: &str| {
        finding(
            Status::Fail,
            rule,
            format!(
                "{LOAD_LIB_FROM_JAR}=true and {gluten}'s OS gate refuses {}: {message}; the executor does not start",
                os()
            ),
        )
    };
    match &d.outcome {
        Decision::NotLoading => {}
        Decision::Accepted { loader, libraries } => {
            if d.missing.is_empty() {
                return;
            }
            let in_bundle = f
                .gluten_jars()
                .any(|j| j.root_libraries.iter().any(|r| libraries.contains(&r.as_str())));
            o.push(finding(
                Status::Fail,
                "os_gate_libraries",
                format!(
                    "{LOAD_LIB_FROM_JAR}=true: {gluten} picks {} for {}, which loads {} libraries from the class path; in no jar it can see ({}): {}{}; Gluten throws \"GlutenException: java.io.FileNotFoundException: {}\" and the executor does not start",
                    simple(loader),
                    os(),
                    libraries.len(),
                    d.missing.len(),
                    d.missing.join(", "),
                    if in_bundle || !d.found.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (the Gluten bundle carries none of {}'s libraries: Gluten ships them in a separate third-party jar for this OS, which must be on the classpath with the bundle, or set {LOAD_LIB_FROM_JAR}=false and install them on the node)",
                            simple(loader)
                        )
                    },
                    d.missing[0]
                ),
            ));
        }
        Decision::NoLoader { message }
        | Decision::Ambiguous { message, .. }
        | Decision::MissingName { message }
        | Decision::MissingVersion { message } => {
            o.push(fail("os_gate", message));
        }
        Decision::OsReleaseUnusable { message } => match &g.os_release_error {
            Some(e) => o.push(finding(
                Status::Unknown,
                "os_gate_unknown",
                format!("{LOAD_LIB_FROM_JAR}=true, but the agent cannot read /etc/os-release of {}: {e}", root(f)),
            )),
            None => o.push(fail("os_gate", message)),
        },
        Decision::OverrideIncomplete { message } => {
            o.push(finding(
                Status::Fail,
                "load_lib_os_version",
                format!(
                    "{LOAD_LIB_OS} is {} but {LOAD_LIB_OS_VERSION} is not set, with {LOAD_LIB_FROM_JAR}=true: Gluten throws \"{message}\" and the executor does not start",
                    g.load_lib_os.as_deref().unwrap_or("")
                ),
            ));
        }
        Decision::UnknownLoader { class } => {
            let jars: Vec<&str> = g
                .jars
                .iter()
                .filter(|j| j.loaders.iter().any(|l| l == class))
                .map(|j| j.jar.as_str())
                .collect();
            o.push(
                finding(
                    Status::Unknown,
                    "os_gate_unknown_loader",
                    format!(
                        "{LOAD_LIB_FROM_JAR}=true and {} declares the SharedLibraryLoader {class}, which {gluten} does not ship: whether it accepts this OS is not known",
                        jars.join(", ")
                    ),
                )
                .about(class.clone()),
            );
        }
    }
}

/// `org.apache.gluten.spi.SharedLibraryLoaderDebian12` → `SharedLibraryLoaderDebian12`.
fn simple(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
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
    let gate = match f.os_gate.decision.as_ref().map(|d| &d.outcome) {
        Some(Decision::Accepted { loader, .. }) => {
            format!(", OS libraries from jars by {}", simple(loader))
        }
        _ => String::new(),
    };
    format!(
        "{} on Spark {} (Scala {}){jdk}{gate}",
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
mod tests;
