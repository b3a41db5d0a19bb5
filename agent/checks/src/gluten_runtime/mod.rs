//! `gluten_runtime`: will Gluten's JVM side start on this executor? Reads the Gluten jar
//! (its build info, Spark shims, class-file versions, bundled libraries, native dirs and OS
//! loaders), the Spark installation and the JDK of the executor root, and judges: the shim and
//! Scala version against Spark's, the JDK against the newest class files, the libraries the
//! bundle carries against Spark's own `jars/` and the classpath order.
//!
//! Code map: `settings` (the `[gluten_runtime]` table), `facts`, `read` (the only part that
//! touches the machine), `evaluate` (pure); `bundle` (jar reader and its cache), `spark`
//! (classpath keys, jar names, release files); `os_gate` (Gluten's own OS gate, per release,
//! self-contained) and `gate` (that gate applied to the facts: the bundle's release, the
//! declared loaders, the libraries found in classpath jars).

mod bundle;
mod evaluate;
mod facts;
mod gate;
pub mod os_gate;
mod read;
mod settings;
mod spark;

pub use bundle::{
    class_major, java_for_major, package_of, parse_services, read_jar, shim_spark_minor,
};
pub use evaluate::evaluate;
pub use facts::{
    Facts, GateDecision, JarFacts, JarLoaders, JavaFacts, JdkFacts, Library, LibraryResource,
    OsGateInputs, PackageClasses, SparkFacts, Unresolvable,
};
pub use settings::Settings;
pub use spark::{classpath, jar_name, java_feature, jdk_release_version, release_version};

use crate::Registration;
use crate::check::{CheckError, NodeCheck, Shared, Verdict};
use crate::host::Host;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<GlutenRuntime>();

/// The check: its settings, the shared inputs it reads, and the jars it has read.
pub struct GlutenRuntime {
    settings: Settings,
    /// `memory.spark_defaults` (a host path).
    spark_defaults: Option<PathBuf>,
    /// `velox_library.executor_root`, `.jars`, `.java_home`.
    executor_root: Option<PathBuf>,
    gluten_jars: Vec<PathBuf>,
    java_home: Option<PathBuf>,
    jars: bundle::JarCache,
}

impl GlutenRuntime {
    /// How many jars this check has opened and read since it was created: a jar is read again
    /// only when its (device, inode, size, mtime) changes. For tests.
    pub fn jar_reads(&self) -> u64 {
        self.jars.reads.load(Ordering::Relaxed)
    }
}

impl NodeCheck for GlutenRuntime {
    const NAME: &'static str = "gluten_runtime";
    type Settings = Settings;
    type Facts = Facts;

    fn build(settings: Settings, shared: &Shared) -> Self {
        GlutenRuntime {
            settings,
            spark_defaults: shared.spark_defaults.clone(),
            executor_root: shared.executor_root.clone(),
            gluten_jars: shared.gluten_jars.clone(),
            java_home: shared.java_home.clone(),
            jars: bundle::JarCache::default(),
        }
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(&self, host: &Host) -> Result<Facts, CheckError> {
        self.read_facts(host)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate::evaluate(facts, settings)
    }
}
