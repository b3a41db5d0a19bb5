//! Gluten's OS gate as data: the `accepts` rule of every `SharedLibraryLoader` Gluten ships, the
//! fixed chain of Gluten 1.4/1.5, and the libraries each loader loads, per Gluten release.
//!
//! Sources (apache/gluten), transcribed rule by rule:
//! - 1.6.0 (tag `v1.6.0`): `backends-velox/src/main/scala/org/apache/gluten/spi/SharedLibraryLoader{Centos7,Centos8,Centos9,Debian11,Debian12,MacOS,OpenEuler2403,Ubuntu2004,Ubuntu2204}.scala`
//!   and `backends-velox/src/main/resources/META-INF/services/org.apache.gluten.spi.SharedLibraryLoader`.
//! - 1.7.0: the same `accepts` rules and service list (read from the classes of the official bundle
//!   `gluten-velox-bundle-spark3.5_2.12-linux_amd64-1.7.0.jar`, PyPI `velox-spark` 1.7.0.1); the
//!   libraries lose `libprotobuf.so.32` (apache/gluten PR #11974: libvelox.so links protobuf
//!   statically).
//! - 1.4.0 and 1.5.0 (tags `v1.4.0`, `v1.5.0`): `backends-velox/src/main/scala/org/apache/gluten/utils/SharedLibraryLoader.scala`
//!   (`getForOS`, the chain) and `…/utils/SharedLibraryLoader{Centos7,…}.scala` (the libraries;
//!   1.4.0 calls `loadAndCreateLink(lib, link, false)`). 1.6.0 keeps 1.5.0's library lists.
//!
//! Library names are the first argument of `JniLibLoader.loadAndCreateLink(libPath, linkName)`:
//! a bare resource name that `JniLibLoader` looks up on the class path
//! (`gluten-core/src/main/java/org/apache/gluten/jni/JniLibLoader.java`), in Gluten's order.

use super::libraries::*;
use serde::Serialize;

/// One string test Gluten applies, in its own terms (`java.lang.String` methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "test", content = "arg", rename_all = "snake_case")]
pub enum Test {
    /// `osName.contains(arg)`
    NameContains(&'static str),
    /// `osName.startsWith(arg)`
    NameStartsWith(&'static str),
    /// `osVersion.startsWith(arg)`
    VersionStartsWith(&'static str),
    /// `osVersion.contains(arg)`
    VersionContains(&'static str),
    /// `system.contains(arg)`: the whole `cat /etc/os-release` output (Gluten ≤ 1.5's
    /// tencentos rule; the empty string when the OS comes from the Spark settings).
    TextContains(&'static str),
}

/// A boolean expression over [`Test`]s, evaluated left to right with short-circuit `&&`/`||`
/// exactly as Scala does, so a test that is never reached never dereferences a null.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expr {
    Test(Test),
    All(&'static [Expr]),
    Any(&'static [Expr]),
}

/// Which input a test dereferenced while it was null: Java throws a `NullPointerException`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NullField {
    Name,
    Version,
}

/// What a rule sees: the OS name and version as Gluten holds them (null is `None`), and the
/// whole os-release text (Gluten ≤ 1.5 only).
#[derive(Clone, Copy, Debug)]
pub struct Operands<'a> {
    pub name: Option<&'a str>,
    pub version: Option<&'a str>,
    pub text: &'a str,
}

impl Test {
    fn eval(self, o: &Operands<'_>) -> Result<bool, NullField> {
        let name = || o.name.ok_or(NullField::Name);
        let version = || o.version.ok_or(NullField::Version);
        Ok(match self {
            Test::NameContains(s) => name()?.contains(s),
            Test::NameStartsWith(s) => name()?.starts_with(s),
            Test::VersionStartsWith(s) => version()?.starts_with(s),
            Test::VersionContains(s) => version()?.contains(s),
            Test::TextContains(s) => o.text.contains(s),
        })
    }
}

impl Expr {
    /// Evaluates like the JVM: `Err` is the `NullPointerException` of the first test that
    /// dereferenced a null operand.
    pub fn eval(&self, o: &Operands<'_>) -> Result<bool, NullField> {
        match self {
            Expr::Test(t) => t.eval(o),
            Expr::All(es) => {
                for e in *es {
                    if !e.eval(o)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Expr::Any(es) => {
                for e in *es {
                    if e.eval(o)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// `osName.contains(name) && osVersion.startsWith(version)`
macro_rules! nv {
    ($name:literal, $version:literal) => {
        Expr::All(&[
            Expr::Test(Test::NameContains($name)),
            Expr::Test(Test::VersionStartsWith($version)),
        ])
    };
}

/// One `org.apache.gluten.spi.SharedLibraryLoader` implementation (Gluten ≥ 1.6).
#[derive(Clone, Copy, Debug)]
pub struct LoaderRule {
    /// The class name as `META-INF/services/org.apache.gluten.spi.SharedLibraryLoader` lists it.
    pub class: &'static str,
    /// Its `accepts(osName, osVersion)`.
    pub accepts: Expr,
    /// What its `loadLib` loads, in order.
    pub libraries: &'static [&'static str],
}

impl LoaderRule {
    /// `accepts(osName, osVersion)`; `Err` is the `NullPointerException` it would throw.
    pub fn accepts(&self, name: Option<&str>, version: Option<&str>) -> Result<bool, NullField> {
        self.accepts.eval(&Operands {
            name,
            version,
            text: "",
        })
    }
}

/// `SharedLibraryLoaderCentos7.accepts` (1.6.0, 1.7.0).
const ACCEPTS_CENTOS7: Expr = Expr::Any(&[
    nv!("CentOS", "7"),
    nv!("Oracle", "7"),
    nv!("Anolis", "7"),
    nv!("Red Hat", "7"),
    nv!("Alibaba Cloud Linux", "2"),
    Expr::All(&[
        Expr::Test(Test::NameContains("tencentos")),
        Expr::Test(Test::VersionContains("2.4")),
    ]),
]);
/// `SharedLibraryLoaderCentos8.accepts` (1.6.0, 1.7.0).
const ACCEPTS_CENTOS8: Expr = Expr::Any(&[
    nv!("CentOS", "8"),
    nv!("Oracle", "8"),
    nv!("Anolis", "8"),
    nv!("Red Hat", "8"),
    nv!("Alibaba Cloud Linux", "3"),
    Expr::All(&[
        Expr::Test(Test::NameContains("tencentos")),
        Expr::Test(Test::VersionContains("3.2")),
    ]),
]);
/// `SharedLibraryLoaderCentos9.accepts` (1.6.0, 1.7.0): CentOS and Red Hat only (not Rocky,
/// Alma or Oracle 9).
const ACCEPTS_CENTOS9: Expr = Expr::Any(&[nv!("CentOS", "9"), nv!("Red Hat", "9")]);
const ACCEPTS_DEBIAN11: Expr = nv!("Debian", "11");
const ACCEPTS_DEBIAN12: Expr = nv!("Debian", "12");
/// `osName.startsWith("Mac OS X") || osName.startsWith("macOS")`; loads nothing.
const ACCEPTS_MACOS: Expr = Expr::Any(&[
    Expr::Test(Test::NameStartsWith("Mac OS X")),
    Expr::Test(Test::NameStartsWith("macOS")),
]);
const ACCEPTS_OPENEULER2403: Expr = nv!("openEuler", "24.03");
const ACCEPTS_UBUNTU2004: Expr = nv!("Ubuntu", "20.04");
const ACCEPTS_UBUNTU2204: Expr = nv!("Ubuntu", "22.04");

macro_rules! spi_table {
    ($($class:literal => $accepts:ident, $libs:expr;)*) => {
        &[$(LoaderRule { class: concat!("org.apache.gluten.spi.", $class), accepts: $accepts, libraries: $libs },)*]
    };
}

/// The loaders of Gluten 1.6.0, in the order of its service file.
pub const SPI_1_6: &[LoaderRule] = spi_table! {
    "SharedLibraryLoaderCentos7" => ACCEPTS_CENTOS7, V15_CENTOS7;
    "SharedLibraryLoaderCentos8" => ACCEPTS_CENTOS8, V15_CENTOS8;
    "SharedLibraryLoaderCentos9" => ACCEPTS_CENTOS9, V15_CENTOS9;
    "SharedLibraryLoaderDebian11" => ACCEPTS_DEBIAN11, V15_DEBIAN11;
    "SharedLibraryLoaderDebian12" => ACCEPTS_DEBIAN12, V15_DEBIAN12;
    "SharedLibraryLoaderMacOS" => ACCEPTS_MACOS, &[];
    "SharedLibraryLoaderOpenEuler2403" => ACCEPTS_OPENEULER2403, V15_OPENEULER2403;
    "SharedLibraryLoaderUbuntu2004" => ACCEPTS_UBUNTU2004, V15_UBUNTU2004;
    "SharedLibraryLoaderUbuntu2204" => ACCEPTS_UBUNTU2204, V15_UBUNTU2204;
};

/// The loaders of Gluten 1.7.0, in the order of its service file.
pub const SPI_1_7: &[LoaderRule] = spi_table! {
    "SharedLibraryLoaderCentos7" => ACCEPTS_CENTOS7, V17_CENTOS7;
    "SharedLibraryLoaderCentos8" => ACCEPTS_CENTOS8, V17_CENTOS8;
    "SharedLibraryLoaderCentos9" => ACCEPTS_CENTOS9, V17_CENTOS9;
    "SharedLibraryLoaderDebian11" => ACCEPTS_DEBIAN11, V17_DEBIAN11;
    "SharedLibraryLoaderDebian12" => ACCEPTS_DEBIAN12, V17_DEBIAN12;
    "SharedLibraryLoaderMacOS" => ACCEPTS_MACOS, &[];
    "SharedLibraryLoaderOpenEuler2403" => ACCEPTS_OPENEULER2403, V17_OPENEULER2403;
    "SharedLibraryLoaderUbuntu2004" => ACCEPTS_UBUNTU2004, V17_UBUNTU2004;
    "SharedLibraryLoaderUbuntu2204" => ACCEPTS_UBUNTU2204, V17_UBUNTU2204;
};

/// The class-name prefix of the SPI loaders.
pub const SPI_PACKAGE: &str = "org.apache.gluten.spi.";

/// One step of Gluten ≤ 1.5's `SharedLibraryLoader.getForOS`: the first step whose test holds
/// picks its loader.
#[derive(Clone, Copy, Debug)]
pub struct ChainStep {
    pub when: Expr,
    /// The simple class name in `org.apache.gluten.utils`.
    pub loader: &'static str,
}

/// The libraries one fixed-chain loader loads.
#[derive(Clone, Copy, Debug)]
pub struct ChainLoader {
    pub class: &'static str,
    pub libraries: &'static [&'static str],
}

macro_rules! step {
    ($when:expr => $loader:literal) => {
        ChainStep {
            when: $when,
            loader: concat!("org.apache.gluten.utils.", $loader),
        }
    };
}

/// `(systemName.contains("CentOS") || systemName.contains("Oracle")) && systemVersion.startsWith(v)`
macro_rules! centos_or_oracle {
    ($version:literal) => {
        Expr::All(&[
            Expr::Any(&[
                Expr::Test(Test::NameContains("CentOS")),
                Expr::Test(Test::NameContains("Oracle")),
            ]),
            Expr::Test(Test::VersionStartsWith($version)),
        ])
    };
}

/// `system.contains(a) && system.contains(b)` over the whole os-release text.
macro_rules! text_both {
    ($a:literal, $b:literal) => {
        Expr::All(&[
            Expr::Test(Test::TextContains($a)),
            Expr::Test(Test::TextContains($b)),
        ])
    };
}

/// `getForOS` of Gluten 1.4.0 (no openEuler).
pub const CHAIN_1_4: &[ChainStep] = &[
    step!(nv!("Ubuntu", "20.04") => "SharedLibraryLoaderUbuntu2004"),
    step!(nv!("Ubuntu", "22.04") => "SharedLibraryLoaderUbuntu2204"),
    step!(nv!("CentOS", "9") => "SharedLibraryLoaderCentos9"),
    step!(centos_or_oracle!("8") => "SharedLibraryLoaderCentos8"),
    step!(centos_or_oracle!("7") => "SharedLibraryLoaderCentos7"),
    step!(nv!("Alibaba Cloud Linux", "3") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Alibaba Cloud Linux", "2") => "SharedLibraryLoaderCentos7"),
    step!(nv!("Anolis", "8") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Anolis", "7") => "SharedLibraryLoaderCentos7"),
    step!(text_both!("tencentos", "2.4") => "SharedLibraryLoaderCentos7"),
    step!(text_both!("tencentos", "3.2") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Red Hat", "9") => "SharedLibraryLoaderCentos9"),
    step!(nv!("Red Hat", "8") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Red Hat", "7") => "SharedLibraryLoaderCentos7"),
    step!(nv!("Debian", "11") => "SharedLibraryLoaderDebian11"),
    step!(nv!("Debian", "12") => "SharedLibraryLoaderDebian12"),
];

/// `getForOS` of Gluten 1.5.0: 1.4.0's chain with openEuler 24.03 after CentOS/Oracle 7.
pub const CHAIN_1_5: &[ChainStep] = &[
    step!(nv!("Ubuntu", "20.04") => "SharedLibraryLoaderUbuntu2004"),
    step!(nv!("Ubuntu", "22.04") => "SharedLibraryLoaderUbuntu2204"),
    step!(nv!("CentOS", "9") => "SharedLibraryLoaderCentos9"),
    step!(centos_or_oracle!("8") => "SharedLibraryLoaderCentos8"),
    step!(centos_or_oracle!("7") => "SharedLibraryLoaderCentos7"),
    step!(nv!("openEuler", "24.03") => "SharedLibraryLoaderOpenEuler2403"),
    step!(nv!("Alibaba Cloud Linux", "3") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Alibaba Cloud Linux", "2") => "SharedLibraryLoaderCentos7"),
    step!(nv!("Anolis", "8") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Anolis", "7") => "SharedLibraryLoaderCentos7"),
    step!(text_both!("tencentos", "2.4") => "SharedLibraryLoaderCentos7"),
    step!(text_both!("tencentos", "3.2") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Red Hat", "9") => "SharedLibraryLoaderCentos9"),
    step!(nv!("Red Hat", "8") => "SharedLibraryLoaderCentos8"),
    step!(nv!("Red Hat", "7") => "SharedLibraryLoaderCentos7"),
    step!(nv!("Debian", "11") => "SharedLibraryLoaderDebian11"),
    step!(nv!("Debian", "12") => "SharedLibraryLoaderDebian12"),
];

/// The tail of Gluten 1.4.0's "Found unsupported OS" message (its missing ", " included).
pub const UNSUPPORTED_TAIL_1_4: &str = "! Currently, Gluten's Velox backend only supports Ubuntu 20.04/22.04, CentOS 7/8, Oracle 7/8Alibaba Cloud Linux 2/3 & Anolis 7/8, tencentos 2.4/3.2, RedHat 7/8, Debian 11/12.";
/// The tail of Gluten 1.5.0's "Found unsupported OS" message.
pub const UNSUPPORTED_TAIL_1_5: &str = "! Currently, Gluten's Velox backend only supports Ubuntu 20.04/22.04, CentOS 7/8, Oracle 7/8, openEuler 24.03, Alibaba Cloud Linux 2/3 & Anolis 7/8, tencentos 2.4/3.2, RedHat 7/8, Debian 11/12.";

macro_rules! chain_libs {
    ($($class:literal => $libs:expr;)*) => {
        &[$(ChainLoader { class: concat!("org.apache.gluten.utils.", $class), libraries: $libs },)*]
    };
}

/// The fixed-chain loaders of Gluten 1.4.0 and what they load.
pub const CHAIN_LOADERS_1_4: &[ChainLoader] = chain_libs! {
    "SharedLibraryLoaderCentos7" => V14_CENTOS7;
    "SharedLibraryLoaderCentos8" => V14_CENTOS8;
    "SharedLibraryLoaderCentos9" => V14_CENTOS9;
    "SharedLibraryLoaderDebian11" => V14_DEBIAN11;
    "SharedLibraryLoaderDebian12" => V14_DEBIAN12;
    "SharedLibraryLoaderUbuntu2004" => V14_UBUNTU2004;
    "SharedLibraryLoaderUbuntu2204" => V14_UBUNTU2204;
};

/// The fixed-chain loaders of Gluten 1.5.0 and what they load.
pub const CHAIN_LOADERS_1_5: &[ChainLoader] = chain_libs! {
    "SharedLibraryLoaderCentos7" => V15_CENTOS7;
    "SharedLibraryLoaderCentos8" => V15_CENTOS8;
    "SharedLibraryLoaderCentos9" => V15_CENTOS9;
    "SharedLibraryLoaderDebian11" => V15_DEBIAN11;
    "SharedLibraryLoaderDebian12" => V15_DEBIAN12;
    "SharedLibraryLoaderOpenEuler2403" => V15_OPENEULER2403;
    "SharedLibraryLoaderUbuntu2004" => V15_UBUNTU2004;
    "SharedLibraryLoaderUbuntu2204" => V15_UBUNTU2204;
};
