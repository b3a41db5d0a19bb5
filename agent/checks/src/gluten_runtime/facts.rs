//! What the `gluten_runtime` check observed, typed: the jars on the executor classpath (the
//! Gluten bundle's identity, shims, class-file versions, bundled libraries, native dirs and
//! `SharedLibraryLoader` list), the Spark installation, the JDK, and the inputs of the OS gate.
//! Serialised as the report's `facts`; the field names are a contract tools read.

use super::os_gate::{Decision, GlutenGate};
use serde::Serialize;
use std::collections::BTreeMap;

/// A library a jar carries (`META-INF/maven/<group>/<artifact>/pom.properties`) or a jar of
/// Spark's `jars/` named `<artifact>-<version>.jar`.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Library {
    /// Maven group id (empty for a jar known by its file name only).
    pub group: String,
    pub artifact: String,
    pub version: String,
    /// The jar file, for one of Spark's `jars/` (host path in the executor root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The classes of one package (its first three path components, e.g. `org/apache/gluten`) and
/// the highest class-file version among them.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageClasses {
    pub package: String,
    pub classes: usize,
    /// Highest class-file major version (52 = Java 8, 55 = 11, 61 = 17, 65 = 21).
    pub max_major: u16,
    /// Classes at `max_major`.
    pub at_max: usize,
    /// One class at `max_major` (its entry name).
    pub example: String,
}

/// One jar of the executor classpath (or named by `velox_library.jars`).
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct JarFacts {
    /// Path in the executor root.
    pub path: String,
    /// Where it comes from: `spark.executor.extraClassPath`, `spark.jars`, `SPARK_HOME/jars`
    /// (a Gluten jar copied among Spark's own) or `velox_library.jars`.
    pub placement: String,
    pub found: bool,
    /// Why it could not be read.
    pub error: Option<String>,
    /// It carries `gluten-build-info.properties` or `org/apache/gluten` classes.
    pub gluten: bool,
    /// Entries in the jar.
    pub entries: usize,
    /// `gluten-build-info.properties`, every key.
    pub build_info: BTreeMap<String, String>,
    /// Spark shim modules it carries (`spark-sql-columnar-shims-spark35` → `spark35`).
    pub shims: Vec<String>,
    /// `META-INF/maven/*/*/pom.properties`, sorted.
    pub libraries: Vec<Library>,
    /// Dirs holding native libraries (`linux/amd64`, `linux/aarch64`), sorted.
    pub native_dirs: Vec<String>,
    /// `META-INF/services/org.apache.gluten.spi.SharedLibraryLoader`, in file order; `None`
    /// when the jar has no such file.
    pub shared_library_loaders: Option<Vec<String>>,
    /// Shared libraries at the jar root (`libboost_atomic.so.1.84.0`): the resources Gluten's
    /// `JniLibLoader` finds by bare name on the class path. Sorted.
    pub root_libraries: Vec<String>,
    /// Class-file versions per package (Gluten jars only), sorted by package.
    pub packages: Vec<PackageClasses>,
    /// Highest class-file major version of the whole jar, the classes at it, and one of them.
    pub max_class_major: Option<u16>,
    pub classes_at_max: usize,
    pub example_class: Option<String>,
}

/// A classpath entry the agent cannot read on this node.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Unresolvable {
    /// The `spark-defaults.conf` key.
    pub key: String,
    pub entry: String,
    pub reason: String,
}

/// The Spark installation the executors run, and their classpath settings.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct SparkFacts {
    /// The `spark-defaults.conf` read (host path), when configured.
    pub defaults: Option<String>,
    /// `SPARK_HOME` in the executor root, and where it came from (`gluten_runtime.spark_home`,
    /// `spark.executorEnv.SPARK_HOME`, `spark_defaults location`).
    pub home: Option<String>,
    pub home_source: Option<String>,
    /// `$SPARK_HOME/jars` is a directory.
    pub jars_dir: bool,
    /// `jars/spark-core_<scala>-<version>.jar`.
    pub core_jar: Option<String>,
    pub version: Option<String>,
    /// `spark-version-info.properties`, `RELEASE` or the jar name.
    pub version_source: Option<String>,
    /// Scala binary version (`2.12`) from the spark-core jar name, else `scala-library`.
    pub scala_binary: Option<String>,
    pub scala_library: Option<String>,
    /// Spark's `jars/` that a Gluten jar also carries (by artifact id), with their versions.
    pub overlapping_jars: Vec<Library>,
    /// `spark.executor.extraClassPath` entries, in order.
    pub extra_class_path: Vec<String>,
    /// `spark.jars` entries, in order.
    pub jars: Vec<String>,
    /// `spark.executor.userClassPathFirst`.
    pub user_class_path_first: bool,
    pub unresolvable: Vec<Unresolvable>,
    /// Why `spark_defaults` could not be used (unreadable, a bad boolean).
    pub error: Option<String>,
}

/// One JDK of the executor root.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct JdkFacts {
    /// `JAVA_HOME` in the executor root.
    pub home: String,
    /// `spark.executorEnv.JAVA_HOME`, `java_home` (the setting), `/usr/bin/java`, `scan`.
    pub source: String,
    /// `bin/java` exists (symlinks followed inside the root).
    pub java_binary: bool,
    /// `JAVA_VERSION` of `$JAVA_HOME/release`.
    pub version: Option<String>,
    /// The feature release (`1.8.0_402` → 8, `17.0.21.1` → 17).
    pub feature: Option<u32>,
    pub error: Option<String>,
}

/// The JDK the executors would run: the one `JAVA_HOME` names, else the JDKs found.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct JavaFacts {
    /// The JDK chosen by `spark.executorEnv.JAVA_HOME`, the setting or `/usr/bin/java`.
    pub selected: Option<JdkFacts>,
    /// JDKs found under `/usr/lib/jvm/*` and `/opt/java/openjdk` when none is chosen.
    pub candidates: Vec<JdkFacts>,
}

/// The `SharedLibraryLoader` list of one jar on the classpath.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct JarLoaders {
    pub jar: String,
    pub loaders: Vec<String>,
}

/// What Gluten's OS gate (`SharedLibraryLoaderUtils`) decides from, minus `/etc/os-release`:
/// the loaders declared by the jars on the classpath and the `spark.gluten.loadLib*` keys.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct OsGateInputs {
    /// Jars with a `META-INF/services/org.apache.gluten.spi.SharedLibraryLoader`, in
    /// classpath order.
    pub jars: Vec<JarLoaders>,
    /// `spark.gluten.loadLibFromJar` (default false): only then is the gate consulted.
    pub load_lib_from_jar: bool,
    /// `spark.gluten.loadLibOS` and `spark.gluten.loadLibOSVersion`, which replace `NAME` and
    /// `VERSION` of `/etc/os-release`.
    pub load_lib_os: Option<String>,
    pub load_lib_os_version: Option<String>,
    /// `NAME` and `VERSION` of the executor root's `/etc/os-release`, read as Gluten reads
    /// them (`java.util.Properties`, then surrounding quotes stripped); `None` when the file
    /// or the key is missing (Gluten then fails with `FileNotFoundException` or on `null`).
    pub os_release_name: Option<String>,
    pub os_release_version: Option<String>,
    /// Why the executor root's `/etc/os-release` could not be read (other than its absence).
    pub os_release_error: Option<String>,
    /// What the gate decides on this node, when the bundle's release is one modelled (or the
    /// gate is off).
    pub decision: Option<GateDecision>,
    /// Why there is no decision although `spark.gluten.loadLibFromJar` is true.
    pub undecided: Option<String>,
}

/// Gluten's OS gate on this node, decided as the bundle's release decides it
/// ([`super::os_gate::decide`]), and where the accepting loader's libraries are.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct GateDecision {
    /// `gluten_version` of the bundle whose gate decides (its build info) and that jar.
    pub gluten_version: Option<String>,
    pub bundle: Option<String>,
    /// `spi` (1.6+) or `fixed_chain` (1.4/1.5).
    pub gate: Option<GlutenGate>,
    /// The loaders the SPI gate asks: every declared one, in classpath order, once each.
    pub loaders: Vec<String>,
    /// `not_loading`, `accepted` (with the loader and its libraries) or Gluten's exception.
    pub outcome: Decision,
    /// Libraries of the accepting loader that a classpath jar holds, with the first such jar.
    pub found: Vec<LibraryResource>,
    /// Libraries of the accepting loader that no classpath jar holds.
    pub missing: Vec<String>,
}

/// A library resource and the jar that holds it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct LibraryResource {
    pub library: String,
    pub jar: String,
}

/// Everything one read observed.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `velox_library.executor_root`, when set.
    pub executor_root: Option<String>,
    pub spark: SparkFacts,
    /// Classpath jars in classpath order, then `velox_library.jars` not on it.
    pub jars: Vec<JarFacts>,
    pub java: JavaFacts,
    pub os_gate: OsGateInputs,
}

impl Facts {
    /// The jars that are Gluten jars (read and carrying Gluten).
    pub fn gluten_jars(&self) -> impl Iterator<Item = &JarFacts> {
        self.jars.iter().filter(|j| j.found && j.gluten)
    }
}
