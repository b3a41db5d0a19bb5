//! Tests of the pure verdict: crafted facts of the 1.7.0 bundle on Spark 3.5.5 with JDK 17,
//! one rule at a time, and the OS gate decided over os-release bytes.

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
    f.spark.error = Some("`spark.executor.userClassPathFirst`: yes is not true or false".into());
    assert_eq!(only(&run(&f)).0, Status::Unknown);
}

/// `facts()` with the gate on, decided over `os_release` as the read decides it.
fn gate(mut f: Facts, os_release: Option<&[u8]>) -> Facts {
    use crate::gluten_runtime::facts::JarLoaders;
    use crate::gluten_runtime::os_gate::GlutenRelease;
    let loaders: Vec<String> = GlutenRelease::V1_7
        .bundled_loaders()
        .iter()
        .map(|s| s.to_string())
        .collect();
    f.jars[0].shared_library_loaders = Some(loaders.clone());
    if f.os_gate.jars.is_empty() {
        f.os_gate.jars.push(JarLoaders {
            jar: f.jars[0].path.clone(),
            loaders,
        });
    }
    f.os_gate.load_lib_from_jar = true;
    if let Some(Ok(r)) = os_release.map(crate::gluten_runtime::os_gate::parse_os_release) {
        f.os_gate.os_release_name = r.name;
        f.os_gate.os_release_version = r.version;
    }
    let (d, u) = super::super::gate::decide_gate(&f.jars, &f.os_gate, os_release);
    f.os_gate.decision = d;
    f.os_gate.undecided = u;
    f
}

const DEBIAN_12: &[u8] = b"NAME=\"Debian GNU/Linux\"\nVERSION=\"12 (bookworm)\"\n";

#[test]
fn os_gate_with_only_the_bundle_misses_the_loaders_libraries() {
    let f = gate(facts(), Some(DEBIAN_12));
    let (s, rule, m) = only(&run(&f));
    assert_eq!(
        (s, rule.as_str()),
        (Status::Fail, "gluten_runtime.os_gate_libraries")
    );
    assert!(
        m.starts_with("spark.gluten.loadLibFromJar=true: Gluten 1.7.0 picks SharedLibraryLoaderDebian12 for NAME Debian GNU/Linux VERSION 12 (bookworm) of /etc/os-release in the host root, which loads 29 libraries from the class path; in no jar it can see (29): libcrypto.so.3, "),
        "{m}"
    );
    assert!(
        m.contains("the Gluten bundle carries none of SharedLibraryLoaderDebian12's libraries"),
        "{m}"
    );
    assert!(m.contains("FileNotFoundException: libcrypto.so.3\""), "{m}");

    // A jar holding them all: ok, and the summary says who loads them.
    let mut f = facts();
    let Some(Decision::Accepted { libraries, .. }) = gate(facts(), Some(DEBIAN_12))
        .os_gate
        .decision
        .map(|d| d.outcome)
    else {
        panic!()
    };
    f.jars.push(JarFacts {
        path: "/opt/gluten/thirdparty.jar".into(),
        placement: EXTRA_CLASS_PATH.into(),
        found: true,
        root_libraries: libraries.iter().map(|s| s.to_string()).collect(),
        ..JarFacts::default()
    });
    let v = run(&gate(f, Some(DEBIAN_12)));
    assert_eq!(v.status(), Status::Ok, "{:?}", v.findings);
    assert!(
        v.summary()
            .ends_with(", OS libraries from jars by SharedLibraryLoaderDebian12")
    );
}

#[test]
fn os_gate_refusals_are_glutens_own_exceptions() {
    let f = gate(
        facts(),
        Some(b"NAME=\"Ubuntu\"\nVERSION=\"24.04 LTS (Noble Numbat)\"\n"),
    );
    let (s, rule, m) = only(&run(&f));
    assert_eq!((s, rule.as_str()), (Status::Fail, "gluten_runtime.os_gate"));
    assert_eq!(
        m,
        "spark.gluten.loadLibFromJar=true and Gluten 1.7.0's OS gate refuses NAME Ubuntu VERSION 24.04 LTS (Noble Numbat) of /etc/os-release in the host root: org.apache.gluten.exception.GlutenException: Cannot find SharedLibraryLoader for Ubuntu 24.04 LTS (Noble Numbat), pleasecheck whether your custom SharedLibraryLoader is implemented and loadable.; the executor does not start"
    );

    // No /etc/os-release: Gluten's FileNotFoundException; unreadable here: unknown.
    let f = gate(facts(), None);
    assert!(
        only(&run(&f))
            .2
            .contains("java.io.FileNotFoundException: /etc/os-release")
    );
    let mut f = facts();
    f.os_gate.os_release_error = Some("/etc/os-release: Permission denied".into());
    let (s, rule, _) = only(&run(&gate(f, None)));
    assert_eq!(
        (s, rule.as_str()),
        (Status::Unknown, "gluten_runtime.os_gate_unknown")
    );

    // An incomplete override.
    let mut f = facts();
    f.os_gate.load_lib_os = Some("Ubuntu".into());
    let (s, rule, m) = only(&run(&gate(f, Some(DEBIAN_12))));
    assert_eq!(
        (s, rule.as_str()),
        (Status::Fail, "gluten_runtime.load_lib_os_version")
    );
    assert!(
        m.contains("must be specified when specifies the spark.gluten.loadLibOS"),
        "{m}"
    );

    // A loader Gluten does not ship.
    let mut f = facts();
    f.os_gate
        .jars
        .push(crate::gluten_runtime::facts::JarLoaders {
            jar: "/opt/custom.jar".into(),
            loaders: vec!["com.example.MyLoader".into()],
        });
    let (s, rule, m) = only(&run(&gate(f, Some(DEBIAN_12))));
    assert_eq!(
        (s, rule.as_str()),
        (Status::Unknown, "gluten_runtime.os_gate_unknown_loader")
    );
    assert!(
        m.contains("/opt/custom.jar declares the SharedLibraryLoader com.example.MyLoader"),
        "{m}"
    );

    // A release whose gate is not modelled.
    let mut f = facts();
    f.jars[0]
        .build_info
        .insert("gluten_version".into(), "1.3.0".into());
    let (s, rule, _) = only(&run(&gate(f, Some(DEBIAN_12))));
    assert_eq!(
        (s, rule.as_str()),
        (Status::Unknown, "gluten_runtime.os_gate_unknown")
    );

    // The gate off: no finding, the decision says so.
    let mut f = gate(facts(), Some(DEBIAN_12));
    f.os_gate.load_lib_from_jar = false;
    assert_eq!(run(&f).status(), Status::Ok);
}
