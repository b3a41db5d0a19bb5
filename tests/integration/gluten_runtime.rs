//! `gluten_runtime` on real artifacts in roots built here: the official Gluten 1.7.0 bundle,
//! Spark's own jars of 3.5.5, 3.5.4, 3.4.4 and 4.0.1 (pyspark sdists), Debian's OpenJDK 17 and
//! crafted JDK 8 and 11 homes. Each root is an executor image: Spark under /opt/spark, its
//! `conf/spark-defaults.conf`, the Gluten jar where the test puts it, JDKs under /usr/lib/jvm.

use checks::check::{Check, Outcome, Runner, Shared};
use checks::gluten_runtime::{GlutenRuntime, Settings};
use checks::host::Host;
use gluten_node_tests::*;
use proto::Status;
use std::path::PathBuf;

const CONF: &str = "/opt/spark/conf/spark-defaults.conf";
const JDK17: &str = "/usr/lib/jvm/java-17-openjdk-amd64";

/// An executor root: Spark `spark` under /opt/spark, `conf` as its spark-defaults.conf.
struct Root {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Root {
    fn new(spark: &str, conf: &str) -> Root {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root");
        place_tree(
            &spark_jars(spark).join("jars"),
            &path.join("opt/spark/jars"),
        );
        let r = Root { _dir: dir, path };
        r.write(CONF, conf);
        r
    }

    fn local(&self, p: &str) -> PathBuf {
        self.path.join(p.trim_start_matches('/'))
    }

    fn write(&self, p: &str, text: &str) {
        let l = self.local(p);
        std::fs::create_dir_all(l.parent().unwrap()).unwrap();
        std::fs::write(l, text).unwrap();
    }

    fn gluten(&self, at: &str) -> &Self {
        place(&gluten_170_bundle(), &self.local(at));
        self
    }

    /// Debian's OpenJDK 17 at /usr/lib/jvm/java-17-openjdk-amd64.
    fn jdk17(&self) -> &Self {
        place_tree(&debian_jdk17(), &self.local(JDK17));
        self
    }

    /// A JDK home whose `release` says `version` (the layout of the JDK 8 and 11 packages).
    fn crafted_jdk(&self, home: &str, version: &str) -> &Self {
        self.write(
            &format!("{home}/release"),
            &format!("JAVA_VERSION=\"{version}\"\nOS_NAME=\"Linux\"\nOS_ARCH=\"amd64\"\n"),
        );
        self.write(&format!("{home}/bin/java"), "#!/bin/sh\n");
        self
    }

    fn check(&self, shared: Shared) -> Runner<GlutenRuntime> {
        Runner::<GlutenRuntime>::build(
            Settings::default(),
            Shared {
                spark_defaults: Some(CONF.into()),
                ..shared
            },
        )
    }

    fn run(&self) -> Outcome {
        self.check(Shared::default())
            .run(&Host::new(&self.path).with_arch("x86_64"))
            .unwrap()
    }
}

fn rules(o: &Outcome) -> Vec<(Status, String)> {
    o.findings
        .iter()
        .map(|f| (f.status, f.rule.clone().unwrap_or_default()))
        .collect()
}

fn messages(o: &Outcome, rule: &str) -> Vec<String> {
    o.findings
        .iter()
        .filter(|f| f.rule.as_deref() == Some(&format!("gluten_runtime.{rule}")))
        .map(|f| f.message.clone())
        .collect()
}

fn extra_class_path(jdk: &str) -> String {
    format!(
        "spark.executor.extraClassPath /opt/gluten/gluten.jar\nspark.executorEnv.JAVA_HOME {jdk}\n"
    )
}

#[test]
fn bundle_1_7_0_on_spark_3_5_5_with_jdk_17_starts() {
    let r = Root::new("3.5.5", &extra_class_path(JDK17));
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    r.write(
        "/etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
    );
    let c = r.check(Shared::default());
    let host = Host::new(&r.path).with_arch("x86_64");
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Ok, "{:?}", o.findings);
    assert_eq!(
        o.summary(),
        "Gluten 1.7.0 (spark35) on Spark 3.5.5 (Scala 2.12), JDK 17.0.21.1"
    );
    let jar = &o.facts["jars"][0];
    assert_eq!(jar["path"], "/opt/gluten/gluten.jar");
    assert_eq!(jar["placement"], "spark.executor.extraClassPath");
    let bi = &jar["build_info"];
    for (k, v) in [
        ("gluten_version", "1.7.0"),
        ("java_version", "17"),
        ("scala_version", "2.12.18"),
        ("spark_version", "3.5.5"),
        ("hadoop_version", "3.3.4"),
        ("backend_type", "velox"),
        ("velox_revision", "5b248e83b5044bc4f666919ea3d6cbf949db62d6"),
    ] {
        assert_eq!(bi[k], v, "{k}");
    }
    assert_eq!(jar["shims"], serde_json::json!(["spark35"]));
    assert_eq!(jar["native_dirs"], serde_json::json!(["linux/amd64"]));
    assert_eq!(jar["max_class_major"], 61);
    assert_eq!(jar["classes_at_max"], 315 + 22 + 977);
    let pkg = |name: &str| {
        jar["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["package"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(pkg("org/apache/gluten")["at_max"], 315);
    assert_eq!(pkg("org/apache/spark")["at_max"], 22);
    assert_eq!(pkg("io/substrait/proto")["at_max"], 977);
    assert_eq!(pkg("org/eclipse/collections")["max_major"], 52);
    let lib = |a: &str| {
        jar["libraries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["artifact"] == a)
            .map(|l| l["version"].as_str().unwrap().to_string())
    };
    assert_eq!(lib("arrow-vector").as_deref(), Some("15.0.0"));
    assert_eq!(lib("guava").as_deref(), Some("32.1.1-jre"));
    assert_eq!(lib("flatbuffers-java").as_deref(), Some("23.5.26"));
    assert_eq!(lib("eclipse-collections").as_deref(), Some("11.1.0"));
    let loaders = jar["shared_library_loaders"].as_array().unwrap();
    assert_eq!(loaders.len(), 9);
    assert_eq!(
        loaders[0],
        "org.apache.gluten.spi.SharedLibraryLoaderCentos7"
    );
    // The OS gate's inputs.
    assert_eq!(
        o.facts["os_gate"]["jars"][0]["jar"],
        "/opt/gluten/gluten.jar"
    );
    assert_eq!(o.facts["os_gate"]["load_lib_from_jar"], false);
    assert_eq!(o.facts["os_gate"]["os_release_name"], "Debian GNU/Linux");
    assert_eq!(o.facts["os_gate"]["os_release_version"], "12 (bookworm)");
    // Spark and the JDK.
    let s = &o.facts["spark"];
    assert_eq!(s["home"], "/opt/spark");
    assert_eq!(s["home_source"], "spark_defaults location");
    assert_eq!(s["version"], "3.5.5");
    // PyPI's 3.5.5 spark-core has no spark-version-info.properties: its manifest says.
    assert_eq!(s["version_source"], "MANIFEST.MF");
    assert_eq!(s["scala_library"], "2.12.18");
    // Spark's Arrow 12 is there, but Gluten's 15 loads first: facts, no finding.
    assert!(
        s["overlapping_jars"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["artifact"] == "arrow-vector" && l["version"] == "12.0.1")
    );
    assert_eq!(o.facts["java"]["selected"]["feature"], 17);
    assert_eq!(
        o.facts["java"]["selected"]["source"],
        "spark.executorEnv.JAVA_HOME"
    );
    let inv: std::collections::BTreeMap<_, _> = o.inventory.iter().cloned().collect();
    assert_eq!(inv["gluten_runtime.gluten_version"], "1.7.0");
    assert_eq!(inv["gluten_runtime.shims"], "spark35");
    assert_eq!(inv["gluten_runtime.spark_version"], "3.5.5");

    // A warm round reads no jar again; a new version of the jar is read again.
    let reads = c.check().jar_reads();
    assert_eq!(c.run(&host).unwrap().status(), Status::Ok);
    assert_eq!(c.check().jar_reads(), reads);
    std::fs::remove_file(r.local("/opt/gluten/gluten.jar")).unwrap();
    std::fs::copy(gluten_170_bundle(), r.local("/opt/gluten/gluten.jar")).unwrap();
    assert_eq!(c.run(&host).unwrap().status(), Status::Ok);
    assert_eq!(c.check().jar_reads(), reads + 1);
}

#[test]
fn spark_3_4_4_is_another_minor() {
    let r = Root::new("3.4.4", &extra_class_path(JDK17));
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    let o = r.run();
    assert_eq!(o.status(), Status::Fail);
    let m = messages(&o, "spark_mismatch");
    assert_eq!(m.len(), 1, "{:?}", o.findings);
    assert!(
        m[0].contains("gluten.jar is built for Spark 3.5 (shim spark35) but the executors run Spark 3.4.4 (spark-core_2.12-3.4.4.jar in /opt/spark)"),
        "{}",
        m[0]
    );
    assert!(messages(&o, "scala_mismatch").is_empty());
    assert_eq!(
        o.facts["spark"]["version_source"],
        "spark-version-info.properties"
    );
}

#[test]
fn spark_4_0_1_is_another_minor_and_scala_2_13() {
    let r = Root::new("4.0.1", &extra_class_path(JDK17));
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    let o = r.run();
    assert_eq!(o.status(), Status::Fail);
    assert!(messages(&o, "spark_mismatch")[0].contains("Spark 4.0.1"));
    let m = messages(&o, "scala_mismatch");
    assert!(
        m[0].contains("built for Scala 2.12 but Spark 4.0.1 in /opt/spark uses Scala 2.13 (scala-library 2.13.16)"),
        "{}",
        m[0]
    );
}

#[test]
fn spark_3_5_4_is_a_patch_release_apart() {
    let r = Root::new("3.5.4", &extra_class_path(JDK17));
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    let o = r.run();
    assert_eq!(
        rules(&o),
        [(Status::Warn, "gluten_runtime.spark_patch".to_string())]
    );
    assert!(
        o.findings[0]
            .message
            .contains("built against Spark 3.5.5, the executors run Spark 3.5.4")
    );
}

#[test]
fn jdk_8_and_11_are_too_old_for_class_file_61() {
    for (home, version, shown) in [
        (
            "/usr/lib/jvm/java-8-openjdk-amd64",
            "1.8.0_402",
            "JDK 1.8.0_402",
        ),
        (
            "/usr/lib/jvm/java-11-openjdk-amd64",
            "11.0.25",
            "JDK 11.0.25",
        ),
    ] {
        let r = Root::new("3.5.5", &extra_class_path(home));
        r.gluten("/opt/gluten/gluten.jar")
            .crafted_jdk(home, version);
        let o = r.run();
        let m = messages(&o, "jdk_too_old");
        assert_eq!(o.status(), Status::Fail, "{:?}", o.findings);
        assert!(
            m[0].starts_with(&format!("{shown} at {home} (from spark.executorEnv.JAVA_HOME) is older than the bundle needs: gluten.jar has 1314 classes of class-file version 61 (Java 17), e.g. ")),
            "{}",
            m[0]
        );
    }
}

#[test]
fn jdk_found_through_usr_bin_java_or_by_scanning() {
    // No JAVA_HOME: /usr/bin/java -> /etc/alternatives/java -> the JDK 11 binary.
    let r = Root::new(
        "3.5.5",
        "spark.executor.extraClassPath /opt/gluten/gluten.jar\n",
    );
    r.gluten("/opt/gluten/gluten.jar")
        .jdk17()
        .crafted_jdk("/usr/lib/jvm/java-11-openjdk-amd64", "11.0.25");
    std::fs::create_dir_all(r.local("/usr/bin")).unwrap();
    std::fs::create_dir_all(r.local("/etc/alternatives")).unwrap();
    std::os::unix::fs::symlink("/etc/alternatives/java", r.local("/usr/bin/java")).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/jvm/java-11-openjdk-amd64/bin/java",
        r.local("/etc/alternatives/java"),
    )
    .unwrap();
    let o = r.run();
    assert_eq!(o.facts["java"]["selected"]["source"], "/usr/bin/java");
    assert_eq!(
        o.facts["java"]["selected"]["home"],
        "/usr/lib/jvm/java-11-openjdk-amd64"
    );
    assert_eq!(messages(&o, "jdk_too_old").len(), 1);

    // Without /usr/bin/java: two JDKs, one too old: which one runs is not known.
    std::fs::remove_file(r.local("/usr/bin/java")).unwrap();
    let o = r.run();
    assert_eq!(o.facts["java"]["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(o.status(), Status::Unknown);
    assert!(messages(&o, "jdk_ambiguous")[0].contains("set spark.executorEnv.JAVA_HOME"));

    // Only JDK 17 installed: fine.
    std::fs::remove_dir_all(r.local("/usr/lib/jvm/java-11-openjdk-amd64")).unwrap();
    assert_eq!(r.run().status(), Status::Ok);

    // No JDK at all.
    std::fs::remove_dir_all(r.local(JDK17)).unwrap();
    let o = r.run();
    assert_eq!(o.status(), Status::Unknown);
    assert!(messages(&o, "jdk_unknown")[0].starts_with("no JDK found in the host root"));
}

#[test]
fn spark_jars_placement_warns_of_each_older_library_spark_loads_first() {
    let conf =
        format!("spark.jars file:///opt/gluten/gluten.jar\nspark.executorEnv.JAVA_HOME {JDK17}\n");
    let r = Root::new("3.5.5", &conf);
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    let o = r.run();
    assert_eq!(o.status(), Status::Warn);
    let m = messages(&o, "classpath_conflict");
    let arrow = m.iter().find(|m| m.contains("arrow-vector")).unwrap();
    assert!(
        arrow.starts_with("gluten.jar carries arrow-vector 15.0.0 and Spark's /opt/spark/jars/arrow-vector-12.0.1.jar is arrow-vector 12.0.1: Spark's copy loads first (spark.jars come after Spark's jars/ unless spark.executor.userClassPathFirst=true); put the Gluten jar in spark.executor.extraClassPath"),
        "{arrow}"
    );
    assert!(
        m.iter()
            .any(|m| m.contains("guava 32.1.1-jre") && m.contains("guava-14.0.1.jar"))
    );
    assert!(
        m.iter()
            .any(|m| m.contains("flatbuffers-java 23.5.26") && m.contains("1.12.0"))
    );
    // arrow-format and arrow-memory-core too; Spark's arrow-memory-netty has no Gluten twin.
    assert_eq!(m.len(), 5, "{m:#?}");

    // userClassPathFirst puts Gluten's copies first.
    r.write(
        CONF,
        &format!("{conf}spark.executor.userClassPathFirst true\n"),
    );
    assert_eq!(r.run().status(), Status::Ok);
}

#[test]
fn a_gluten_jar_among_sparks_own_jars_has_no_defined_order() {
    let r = Root::new("3.5.5", &format!("spark.executorEnv.JAVA_HOME {JDK17}\n"));
    r.gluten("/opt/spark/jars/gluten-velox-bundle-spark3.5_2.12-linux_amd64-1.7.0.jar")
        .jdk17();
    let o = r.run();
    assert_eq!(o.facts["jars"][0]["placement"], "SPARK_HOME/jars");
    let m = messages(&o, "classpath_conflict");
    assert!(
        m[0].contains(
            "which loads first is the JVM's listing order of jars/*, which is unspecified"
        ),
        "{}",
        m[0]
    );
}

#[test]
fn unreadable_classpath_entries_and_a_missing_jar() {
    let conf = format!(
        "spark.executor.extraClassPath /opt/gluten/gluten.jar:./extra.jar:/opt/libs/*\n\
         spark.jars hdfs://nn/jars/udf.jar,/opt/missing.jar\n\
         spark.yarn.archive hdfs:///spark/spark-libs.zip\n\
         spark.executorEnv.JAVA_HOME {JDK17}\n\
         spark.gluten.loadLibFromJar true\n"
    );
    let r = Root::new("3.5.5", &conf);
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    // A wildcard dir: a second copy of the bundle is found there.
    r.gluten("/opt/libs/gluten-copy.jar");
    let o = r.run();
    assert_eq!(o.status(), Status::Fail);
    let unknown = messages(&o, "unresolvable");
    assert_eq!(unknown.len(), 3, "{unknown:#?}");
    assert!(unknown[0].starts_with("spark.executor.extraClassPath entry ./extra.jar cannot be read on this node (relative to the executor's working directory)"));
    assert!(unknown[1].starts_with("spark.jars entry hdfs://nn/jars/udf.jar cannot be read"));
    assert!(unknown[2].starts_with("spark.yarn.archive entry hdfs:///spark/spark-libs.zip"));
    assert!(
        messages(&o, "jar_missing")[0].starts_with(
            "spark.jars names /opt/missing.jar, which does not exist in the host root"
        )
    );
    assert!(messages(&o, "several_bundles")[0].starts_with("2 Gluten bundles on the executor classpath: /opt/gluten/gluten.jar (spark.executor.extraClassPath, Gluten 1.7.0), /opt/libs/gluten-copy.jar"));
    assert_eq!(o.facts["os_gate"]["load_lib_from_jar"], true);
    assert_eq!(o.facts["os_gate"]["jars"].as_array().unwrap().len(), 2);
}

#[test]
fn spark_home_and_jar_from_velox_library_settings_in_an_executor_root() {
    // spark_defaults on the host names SPARK_HOME; the jar is velox_library's; the executor root
    // is velox_library's.
    let host = tempfile::tempdir().unwrap();
    let conf_path = host.path().join("etc/spark/spark-defaults.conf");
    std::fs::create_dir_all(conf_path.parent().unwrap()).unwrap();
    std::fs::write(
        &conf_path,
        format!("spark.executorEnv.SPARK_HOME /opt/spark\nspark.executorEnv.JAVA_HOME {JDK17}\n"),
    )
    .unwrap();
    let r = Root::new("3.5.5", "");
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    let c = Runner::<GlutenRuntime>::build(
        Settings::default(),
        Shared {
            spark_defaults: Some("/etc/spark/spark-defaults.conf".into()),
            executor_root: Some(r.path.clone()),
            gluten_jars: vec!["/opt/gluten/gluten.jar".into()],
            ..Shared::default()
        },
    );
    let o = c.run(&Host::new(host.path()).with_arch("x86_64")).unwrap();
    assert_eq!(
        o.facts["spark"]["home_source"],
        "spark.executorEnv.SPARK_HOME"
    );
    assert_eq!(o.facts["jars"][0]["placement"], "velox_library.jars");
    assert_eq!(o.facts["executor_root"], r.path.display().to_string());
    // Not on the classpath per spark_defaults: which copy of Arrow loads first is not known.
    assert_eq!(o.status(), Status::Warn, "{:?}", o.findings);
    assert!(messages(&o, "classpath_conflict")[0].contains(
        "is not on spark.executor.extraClassPath or spark.jars of /etc/spark/spark-defaults.conf"
    ));
}

#[test]
fn no_gluten_jar_is_a_warning_like_velox_librarys_empty_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let o = Runner::<GlutenRuntime>::new(Settings::default())
        .run(&Host::new(dir.path()).with_arch("x86_64"))
        .unwrap();
    assert_eq!(o.status(), Status::Warn);
    assert!(messages(&o, "no_gluten_jar")[0].contains("(memory.spark_defaults is not set)"));
}

#[test]
fn a_jdk_8_layout_is_found_through_its_jre_java() {
    // JDK 8 packages put the launcher at jre/bin/java and `release` at the JDK's top.
    let home = "/usr/lib/jvm/java-8-openjdk-amd64";
    let r = Root::new(
        "3.5.5",
        "spark.executor.extraClassPath /opt/gluten/gluten.jar\n",
    );
    r.gluten("/opt/gluten/gluten.jar")
        .crafted_jdk(home, "1.8.0_402");
    r.write(&format!("{home}/jre/bin/java"), "#!/bin/sh\n");
    std::fs::create_dir_all(r.local("/usr/bin")).unwrap();
    std::os::unix::fs::symlink(format!("{home}/jre/bin/java"), r.local("/usr/bin/java")).unwrap();
    let o = r.run();
    assert_eq!(o.facts["java"]["selected"]["home"], home);
    assert_eq!(o.facts["java"]["selected"]["feature"], 8);
    assert!(messages(&o, "jdk_too_old")[0].starts_with(&format!(
        "JDK 1.8.0_402 at {home} (from /usr/bin/java) is older than the bundle needs"
    )));
}

/// `/etc/os-release` as the distributions ship it (the keys Gluten reads, and their neighbours).
const DEBIAN_12: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
const UBUNTU_2204: &str = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n";
const UBUNTU_2404: &str = "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nVERSION=\"24.04.1 LTS (Noble Numbat)\"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n";
const ROCKY_9: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n";
const RHEL_9: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n";
const OPENEULER_2403: &str = "NAME=\"openEuler\"\nVERSION=\"24.03 (LTS)\"\nID=\"openEuler\"\nVERSION_ID=\"24.03\"\nPRETTY_NAME=\"openEuler 24.03 (LTS)\"\nANSI_COLOR=\"0;31\"\n";

/// The libraries Gluten 1.7.0's `loader` loads.
fn libraries_of(loader: &str) -> &'static [&'static str] {
    checks::gluten_runtime::os_gate::GlutenRelease::V1_7
        .spi_rules()
        .iter()
        .find(|r| r.class.ends_with(loader))
        .unwrap()
        .libraries
}

impl Root {
    /// A third-party jar at `at` holding `libs` at its root (stand-ins: a few bytes each), like
    /// the one Gluten ships beside the bundle for each OS.
    fn third_party(&self, at: &str, libs: &[&str]) -> &Self {
        let l = self.local(at);
        std::fs::create_dir_all(l.parent().unwrap()).unwrap();
        let st = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],'w') as z:\n    for n in sys.argv[2:]: z.writestr(n, b'\\x7fELF')\n")
            .arg(&l)
            .args(libs)
            .status()
            .unwrap();
        assert!(st.success());
        self
    }
}

fn gate_conf(extra: &str, more: &str) -> String {
    format!("spark.executor.extraClassPath {extra}\nspark.executorEnv.JAVA_HOME {JDK17}\n{more}")
}

const FROM_JAR: &str = "spark.gluten.loadLibFromJar true\n";

#[test]
fn os_gate_off_decides_nothing_and_finds_nothing() {
    let r = Root::new("3.5.5", &gate_conf("/opt/gluten/gluten.jar", ""));
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    r.write("/etc/os-release", UBUNTU_2404);
    let o = r.run();
    assert_eq!(o.status(), Status::Ok, "{:?}", o.findings);
    let d = &o.facts["os_gate"]["decision"];
    assert_eq!(d["outcome"]["kind"], "not_loading");
    assert_eq!(d["gluten_version"], "1.7.0");
    assert_eq!(
        o.facts["os_gate"]["os_release_version"],
        "24.04.1 LTS (Noble Numbat)"
    );
}

#[test]
fn os_gate_of_the_1_7_0_bundle_on_six_distributions() {
    // (os-release, the loader Gluten 1.7.0 picks, or its refusal)
    let cases = [
        (
            DEBIAN_12,
            Some("SharedLibraryLoaderDebian12"),
            "Debian GNU/Linux 12 (bookworm)",
        ),
        (
            UBUNTU_2204,
            Some("SharedLibraryLoaderUbuntu2204"),
            "Ubuntu 22.04.4 LTS (Jammy Jellyfish)",
        ),
        (
            RHEL_9,
            Some("SharedLibraryLoaderCentos9"),
            "Red Hat Enterprise Linux 9.4 (Plow)",
        ),
        (
            OPENEULER_2403,
            Some("SharedLibraryLoaderOpenEuler2403"),
            "openEuler 24.03 (LTS)",
        ),
        (UBUNTU_2404, None, "Ubuntu 24.04.1 LTS (Noble Numbat)"),
        (ROCKY_9, None, "Rocky Linux 9.4 (Blue Onyx)"),
    ];
    for (os_release, loader, os) in cases {
        let r = Root::new("3.5.5", &gate_conf("/opt/gluten/gluten.jar", FROM_JAR));
        r.gluten("/opt/gluten/gluten.jar").jdk17();
        r.write("/etc/os-release", os_release);
        let o = r.run();
        assert_eq!(o.status(), Status::Fail, "{os}: {:?}", o.findings);
        let d = &o.facts["os_gate"]["decision"];
        assert_eq!(d["gate"], "spi");
        assert_eq!(d["loaders"].as_array().unwrap().len(), 9, "{os}");
        match loader {
            Some(loader) => {
                // Only the bundle: none of the loader's libraries is on the classpath.
                assert_eq!(d["outcome"]["kind"], "accepted", "{os}");
                assert_eq!(
                    d["outcome"]["loader"],
                    format!("org.apache.gluten.spi.{loader}")
                );
                let libs = libraries_of(loader);
                assert_eq!(d["missing"].as_array().unwrap().len(), libs.len(), "{os}");
                let m = &messages(&o, "os_gate_libraries")[0];
                assert!(
                    m.starts_with(&format!(
                        "spark.gluten.loadLibFromJar=true: Gluten 1.7.0 picks {loader} for NAME "
                    )),
                    "{m}"
                );
                assert!(m.contains(libs[0]), "{m}");
                assert!(m.contains("the Gluten bundle carries none of"), "{m}");
            }
            None => {
                assert_eq!(d["outcome"]["kind"], "no_loader", "{os}");
                let m = &messages(&o, "os_gate")[0];
                assert!(
                    m.contains(&format!(
                        "GlutenException: Cannot find SharedLibraryLoader for {os}, pleasecheck"
                    )),
                    "{m}"
                );
            }
        }
    }
}

#[test]
fn os_gate_debian_12_with_the_third_party_jar_starts() {
    let libs = libraries_of("SharedLibraryLoaderDebian12");
    // The third-party jar through a wildcard dir on the classpath.
    let r = Root::new(
        "3.5.5",
        &gate_conf("/opt/gluten/gluten.jar:/opt/thirdparty/*", FROM_JAR),
    );
    r.gluten("/opt/gluten/gluten.jar").jdk17().third_party(
        "/opt/thirdparty/gluten-thirdparty-lib-debian-12-x86_64.jar",
        libs,
    );
    r.write("/etc/os-release", DEBIAN_12);
    let o = r.run();
    assert_eq!(o.status(), Status::Ok, "{:?}", o.findings);
    assert!(
        o.summary()
            .ends_with(", OS libraries from jars by SharedLibraryLoaderDebian12")
    );
    let d = &o.facts["os_gate"]["decision"];
    assert_eq!(d["missing"].as_array().unwrap().len(), 0);
    assert_eq!(d["found"].as_array().unwrap().len(), libs.len());
    assert_eq!(
        d["found"][0]["jar"],
        "/opt/thirdparty/gluten-thirdparty-lib-debian-12-x86_64.jar"
    );

    // One library short: named.
    let r = Root::new(
        "3.5.5",
        &gate_conf("/opt/gluten/gluten.jar:/opt/tp.jar", FROM_JAR),
    );
    r.gluten("/opt/gluten/gluten.jar")
        .jdk17()
        .third_party("/opt/tp.jar", &libs[1..]);
    r.write("/etc/os-release", DEBIAN_12);
    let o = r.run();
    let m = &messages(&o, "os_gate_libraries")[0];
    assert!(
        m.contains(&format!("in no jar it can see (1): {};", libs[0])),
        "{m}"
    );
    assert!(!m.contains("carries none"), "{m}");

    // In spark.jars, out of reach of the bundle's class loader (the JVM's own classpath).
    let r = Root::new(
        "3.5.5",
        &gate_conf(
            "/opt/gluten/gluten.jar",
            &format!("{FROM_JAR}spark.jars /opt/tp.jar\n"),
        ),
    );
    r.gluten("/opt/gluten/gluten.jar")
        .jdk17()
        .third_party("/opt/tp.jar", libs);
    r.write("/etc/os-release", DEBIAN_12);
    assert_eq!(messages(&r.run(), "os_gate_libraries").len(), 1);
}

#[test]
fn os_gate_overrides_replace_os_release() {
    let libs = libraries_of("SharedLibraryLoaderDebian12");
    // Rocky 9 has no loader, but the override names Debian 12.
    let r = Root::new(
        "3.5.5",
        &gate_conf(
            "/opt/gluten/gluten.jar:/opt/tp.jar",
            &format!(
                "{FROM_JAR}spark.gluten.loadLibOS Debian GNU/Linux\nspark.gluten.loadLibOSVersion 12\n"
            ),
        ),
    );
    r.gluten("/opt/gluten/gluten.jar")
        .jdk17()
        .third_party("/opt/tp.jar", libs);
    r.write("/etc/os-release", ROCKY_9);
    let o = r.run();
    assert_eq!(o.status(), Status::Ok, "{:?}", o.findings);
    assert_eq!(
        o.facts["os_gate"]["decision"]["outcome"]["loader"],
        "org.apache.gluten.spi.SharedLibraryLoaderDebian12"
    );

    // The name without the version: Gluten throws before it reads anything.
    let r = Root::new(
        "3.5.5",
        &gate_conf(
            "/opt/gluten/gluten.jar",
            &format!("{FROM_JAR}spark.gluten.loadLibOS Ubuntu\n"),
        ),
    );
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    r.write("/etc/os-release", DEBIAN_12);
    let o = r.run();
    assert_eq!(
        rules(&o),
        [(
            Status::Fail,
            "gluten_runtime.load_lib_os_version".to_string()
        )]
    );
    assert!(messages(&o, "load_lib_os_version")[0].contains(
        "spark.gluten.loadLibOSVersion must be specified when specifies the spark.gluten.loadLibOS"
    ));

    // The override of a distribution Gluten has no loader for.
    let r = Root::new(
        "3.5.5",
        &gate_conf(
            "/opt/gluten/gluten.jar",
            &format!(
                "{FROM_JAR}spark.gluten.loadLibOS Ubuntu\nspark.gluten.loadLibOSVersion 24.04\n"
            ),
        ),
    );
    r.gluten("/opt/gluten/gluten.jar").jdk17();
    r.write("/etc/os-release", UBUNTU_2204);
    let m = &messages(&r.run(), "os_gate")[0];
    assert!(
        m.contains(
            "refuses Ubuntu 24.04 (from spark.gluten.loadLibOS and spark.gluten.loadLibOSVersion)"
        ),
        "{m}"
    );
    assert!(
        m.contains("Cannot find SharedLibraryLoader for Ubuntu 24.04,"),
        "{m}"
    );
}
