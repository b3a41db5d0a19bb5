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
use crate::check::{CheckError, Context, NodeCheck, Verdict};
use crate::host::Host;
use std::sync::atomic::Ordering;

/// This check in the registry (`checks::ALL`).
pub const REGISTRATION: Registration = Registration::of::<GlutenRuntime>();

/// The check: the jars it has read. Its settings and the shared inputs it reads
/// (`memory.spark_defaults`; `velox_library.executor_root`, `.jars`, `.java_home`) come from the
/// runner.
#[derive(Default)]
pub struct GlutenRuntime {
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

    fn read(&self, host: &Host, cx: &Context<Settings>) -> Result<Facts, CheckError> {
        self.read_facts(host, cx)
    }

    fn evaluate(facts: &Facts, settings: &Settings) -> Verdict {
        evaluate::evaluate(facts, settings)
    }
}
