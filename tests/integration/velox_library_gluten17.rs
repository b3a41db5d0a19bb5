//! The official Gluten 1.7.0 bundle (PyPI `velox-spark` 1.7.0.1 ships it) in roots built here:
//! a Debian-like root warns about libcurl's RHEL CA bundle (fails when Spark uses object
//! storage), a root without zoneinfo fails, a root with the CA file and zoneinfo passes; the
//! jar's identity is its build info; its RPATH of the build machine is reported. Also pyvelox's
//! bundled OpenSSL (OPENSSLDIR /etc/pki/tls) in a Debian root.

use checks::check::{Check, Runner, Shared};
use checks::host::Host;
use checks::velox_library::{Settings, VeloxLibrary};
use gluten_node_tests::*;
use proto::Status;
use std::path::{Path, PathBuf};

/// The `flags` of a Haswell server (x86-64-v3, PCLMUL, no AVX-512), as the kernel prints them.
pub const HASWELL_FLAGS: &str = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat \
    pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl \
    xtopology cpuid pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave \
    avx f16c rdrand hypervisor lahf_lm abm invpcid_single pti fsgsbase bmi1 avx2 smep bmi2 erms \
    invpcid xsaveopt arat";

/// A two-processor `/proc/cpuinfo` with these flags.
pub fn x86_cpuinfo(flags: &str) -> String {
    format!(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n"
    )
}

/// `HASWELL_FLAGS` without `flag`.
fn without(flag: &str) -> String {
    HASWELL_FLAGS
        .split_whitespace()
        .filter(|f| *f != flag)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 1.7.0 bundle jar, fetched once per machine and made to appear by an atomic rename (the
/// tests of this file run at once: none may see a half-extracted jar).
pub fn gluten_170_jar() -> PathBuf {
    gluten_170_bundle()
}

/// A Debian-like executor root: the C runtime from this system's Debian libraries (and its
/// ld.so), `/etc/ssl/certs/ca-certificates.crt`, zoneinfo, the jar at /opt/spark/jars.
fn debian_root(dir: &Path, jar: &Path) -> PathBuf {
    let root = dir.join("root");
    for name in [
        "libc.so.6",
        "libm.so.6",
        "librt.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libz.so.1",
        "ld-linux-x86-64.so.2",
    ] {
        let real = std::fs::canonicalize(Path::new("/lib/x86_64-linux-gnu").join(name))
            .unwrap_or_else(|e| panic!("/lib/x86_64-linux-gnu/{name}: {e}"));
        place(&real, &root.join("lib/x86_64-linux-gnu").join(name));
    }
    std::fs::create_dir_all(root.join("lib64")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        root.join("lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc/ssl/certs")).unwrap();
    std::fs::write(root.join("etc/ssl/certs/ca-certificates.crt"), "# bundle\n").unwrap();
    std::fs::create_dir_all(root.join("usr/share/zoneinfo/Europe")).unwrap();
    std::fs::write(root.join("usr/share/zoneinfo/Europe/Berlin"), "TZif").unwrap();
    place(jar, &root.join("opt/spark/jars/gluten.jar"));
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cpuinfo"), x86_cpuinfo(HASWELL_FLAGS)).unwrap();
    root
}

fn check(spark_defaults: Option<&str>) -> Runner<VeloxLibrary> {
    Runner::<VeloxLibrary>::build(
        Settings {
            paths: vec![],
            jars: vec!["/opt/spark/jars/gluten.jar".into()],
            ..Settings::default()
        },
        Shared {
            spark_defaults: spark_defaults.map(PathBuf::from),
            executors_per_node: 1,
            ..Default::default()
        },
    )
}

#[test]
fn the_gluten_1_7_0_jar_in_debian_rhel_and_slim_roots() {
    let jar = gluten_170_jar();
    let dir = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let root = debian_root(dir.path(), &jar);
    let host = Host::new(&root).with_arch("x86_64");
    let c = check(Some("/opt/spark/conf/spark-defaults.conf"));

    // Debian-like: libcurl's compiled bundle /etc/pki/tls/certs/ca-bundle.crt is missing.
    let t0 = std::time::Instant::now();
    let o = c.run(&host).unwrap();
    eprintln!("cold check of the 1.7.0 jar: {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    let _ = c.run(&host).unwrap();
    eprintln!("warm check of the 1.7.0 jar: {:?}", t0.elapsed());
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary().contains(
            "libvelox.so: its libcurl 8.18.0 reads the CA bundle /etc/pki/tls/certs/ca-bundle.crt"
        ),
        "{}",
        o.summary()
    );
    let libs = o.facts["libraries"].as_array().unwrap();
    let velox = libs.iter().find(|l| l["library"] == "libvelox.so").unwrap();
    assert_eq!(
        velox["missing_dependencies"],
        serde_json::json!([]),
        "{velox}"
    );
    assert_eq!(velox["build_id"], serde_json::Value::Null);
    assert_eq!(velox["identity"], "gluten-1.7.0-velox-5b248e83b504");
    assert_eq!(velox["identity_source"], "jar_build_info");
    assert_eq!(velox["max_glibc_required"], "GLIBC_2.17");
    assert_eq!(
        velox["rpath"],
        serde_json::json!(["/workspace/cpp/build/releases"])
    );
    assert_eq!(
        velox["rpath_missing"][0]["dir"],
        "/workspace/cpp/build/releases"
    );
    assert!(
        o.findings.iter().any(|f| f.status == Status::Ok
            && f.message
                .contains("RPATH/RUNPATH dir /workspace/cpp/build/releases does not exist")),
        "{:?}",
        o.findings
    );
    assert!(o.inventory.contains(&(
        "velox_library.identity".into(),
        "gluten-1.7.0-velox-5b248e83b504".into()
    )));
    assert_eq!(
        velox["resolved"]["libgluten.so"],
        "/opt/spark/jars/gluten.jar!linux/amd64/libgluten.so"
    );

    // Spark uses S3: the same finding fails, naming the key.
    std::fs::create_dir_all(root.join("opt/spark/conf")).unwrap();
    std::fs::write(
        root.join("opt/spark/conf/spark-defaults.conf"),
        "spark.hadoop.fs.s3a.endpoint https://s3.example\n",
    )
    .unwrap();
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary()
            .contains("spark.hadoop.fs.s3a.endpoint in spark_defaults uses object storage"),
        "{}",
        o.summary()
    );
    std::fs::remove_file(root.join("opt/spark/conf/spark-defaults.conf")).unwrap();

    // A slim image without tzdata: fail, naming the fix.
    std::fs::remove_dir_all(root.join("usr/share/zoneinfo")).unwrap();
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary()
            .contains("libgluten.so, libvelox.so needs the IANA time zone database")
            && o.summary()
                .contains("Install tzdata in the image, or set spark.executorEnv.TZDIR"),
        "{}",
        o.summary()
    );
    // TZDIR pointing at a zoneinfo copy is the other fix.
    std::fs::create_dir_all(root.join("opt/tz")).unwrap();
    std::fs::write(
        root.join("opt/spark/conf/spark-defaults.conf"),
        "spark.executorEnv.TZDIR /opt/tz\n",
    )
    .unwrap();
    let o = c.run(&host).unwrap();
    assert!(!o.summary().contains("time zone"), "{}", o.summary());

    // RHEL-like: the CA file and zoneinfo exist: no finding but the RPATH information.
    std::fs::create_dir_all(root.join("usr/share/zoneinfo")).unwrap();
    std::fs::create_dir_all(root.join("etc/pki/tls/certs")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("etc/pki/tls/certs/ca-bundle.crt"),
    )
    .unwrap();
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert_eq!(
        c.check().jar_entries_decompressed(),
        2,
        "every round after the first used the cached jar"
    );
}

/// The bundle's own record judges the CPU: its 121 Velox/folly units are built with
/// `-mavx2 -mfma -mavx -mf16c -mlzcnt -mbmi2`, its four CRC units add PCLMUL behind folly's own
/// CPU check. On an arm64 host the jar, which has only `linux/amd64/`, fails naming
/// `linux/aarch64/`.
#[test]
fn the_gluten_1_7_0_jar_is_judged_by_its_producer_record() {
    let jar = gluten_170_jar();
    let dir = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let root = debian_root(dir.path(), &jar);
    // CA file and zoneinfo in place: only the CPU decides.
    std::fs::create_dir_all(root.join("etc/pki/tls/certs")).unwrap();
    std::fs::write(root.join("etc/pki/tls/certs/ca-bundle.crt"), "# bundle\n").unwrap();
    let host = Host::new(&root).with_arch("x86_64");
    let c = check(None);
    let cpuinfo = root.join("proc/cpuinfo");

    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    let libs = o.facts["libraries"].as_array().unwrap();
    let velox = libs.iter().find(|l| l["library"] == "libvelox.so").unwrap();
    assert_eq!(
        velox["cpu_needs_source"], "producer",
        "{}",
        velox["cpu_needs"]
    );
    let needs = &velox["cpu_needs"];
    assert_eq!(needs["units"], 264);
    assert_eq!(needs["units_with_producer"], 264);
    assert_eq!(needs["units_without_producer"], 0);
    assert_eq!(needs["units_considered"], 121);
    assert_eq!(
        needs["required"],
        serde_json::json!([
            "abm", "avx", "avx2", "bmi2", "cmov", "cx8", "f16c", "fma", "fpu", "fxsr", "lm", "mmx",
            "pni", "popcnt", "sse", "sse2", "sse4_1", "sse4_2", "ssse3"
        ])
    );
    assert_eq!(
        needs["dispatched"]["pclmulqdq"].as_array().unwrap().len(),
        4
    );
    assert_eq!(
        o.facts["cpu_flags"].as_array().unwrap().len(),
        HASWELL_FLAGS.split_whitespace().count()
    );
    let (read, spooled) = c.check().cpu_records_read();
    eprintln!("producer records read from files: {read}; bytes spooled out of the jar: {spooled}");
    assert!(
        spooled > 0 && spooled < 260_293_336,
        "only what lies outside PT_LOAD: {spooled}"
    );

    // Without BMI2: fail, naming the option and the flag.
    std::fs::write(&cpuinfo, x86_cpuinfo(&without("bmi2"))).unwrap();
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary()
            .contains("libvelox.so was compiled with -mbmi2 throughout; this CPU lacks bmi2"),
        "{}",
        o.summary()
    );

    // Without PCLMUL: only the dispatched CRC units use it: ok, reported in the facts.
    std::fs::write(&cpuinfo, x86_cpuinfo(&without("pclmulqdq"))).unwrap();
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert!(!o.summary().contains("pclmulqdq"), "{}", o.summary());
    let velox = o.facts["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["library"] == "libvelox.so")
        .unwrap()
        .clone();
    let units = velox["cpu_needs"]["dispatched"]["pclmulqdq"]
        .as_array()
        .unwrap();
    assert!(
        units.iter().any(|u| u
            .as_str()
            .unwrap()
            .ends_with("folly/hash/detail/Crc32cDetail.cpp")),
        "{units:?}"
    );
    assert_eq!(
        c.check().jar_entries_decompressed(),
        2,
        "the jar was read once"
    );

    // An arm64 host (Graviton 2): the jar has linux/amd64/ only.
    std::fs::write(
        &cpuinfo,
        std::fs::read_to_string(
            repo_root().join("agent/cpu-isa/tests/data/aarch64/graviton2.cpuinfo"),
        )
        .unwrap(),
    )
    .unwrap();
    let o = c.run(&Host::new(&root).with_arch("aarch64")).unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary().contains(
            "/opt/spark/jars/gluten.jar has native libraries for amd64 only (linux/amd64/), host is aarch64: it lacks linux/aarch64/"
        ),
        "{}",
        o.summary()
    );
}

#[test]
fn pyvelox_openssl_in_a_debian_root_warns_naming_its_openssldir() {
    let (_dir, root) = pyvelox_tree(
        "/opt/pyvelox/pyvelox/libvelox.so",
        "processor\t: 0\nflags\t\t: avx avx2 fma f16c bmi2 abm sse4_2 popcnt\n",
    );
    std::fs::create_dir_all(root.join("usr/share/zoneinfo")).unwrap();
    std::fs::create_dir_all(root.join("etc/ssl/certs")).unwrap();
    let c = Runner::<VeloxLibrary>::new(Settings {
        paths: vec!["/opt/pyvelox/pyvelox/libvelox.so".into()],
        ..Settings::default()
    });
    let o = c.run(&Host::new(&root).with_arch("x86_64")).unwrap();
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary()
            .contains("reads CA certificates from OPENSSLDIR /etc/pki/tls"),
        "{}",
        o.summary()
    );
    let tls = &o.facts["libraries"][0]["needs"]["tls"];
    assert_eq!(tls["stack"], "OpenSSL");
    assert!(tls["by"].as_str().unwrap().contains("libcrypto"), "{tls}");
}
