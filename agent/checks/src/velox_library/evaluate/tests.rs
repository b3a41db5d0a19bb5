//! Tests of the velox_library verdict: the rule table, the CPU judged by producer records, gauges and inventory.

use super::*;
use crate::check::Outcome;
use crate::velox_library::facts::{
    JarFacts, MissingDependency, MissingVersion, ProbeResult, TargetOption,
};
use object::elf;
use std::collections::BTreeMap;

fn run(f: &Facts) -> Outcome {
    let settings = Settings {
        paths: vec!["/opt/gluten/lib/libvelox.so".into()],
        ..Settings::default()
    };
    evaluate(f, &settings).with_facts(f)
}

fn lib(name: &str) -> LibraryFacts {
    LibraryFacts {
        library: name.into(),
        path: format!("/opt/gluten/lib/{name}"),
        found: true,
        elf_class_bits: Some(64),
        machine_code: Some(elf::EM_X86_64.0),
        exec_stack: Some(false),
        ..LibraryFacts::default()
    }
}

#[test]
fn evaluate_table() {
    let base = Facts {
        host_arch: "x86_64".into(),
        libraries: vec![lib("libvelox.so")],
        required_cpu_flags: vec!["avx2".into()],
        cpu_flags: Some(vec!["avx2".into()]),
        host_glibc_version: Some("2.41".into()),
        ..Facts::default()
    };
    type Case = (&'static str, fn(&mut Facts), Status, &'static str);
    let cases: Vec<Case> = vec![
        (
            "all good",
            |_| {},
            Status::Ok,
            "libvelox.so: 0 dependencies resolved; CPU has all 1 required flags",
        ),
        (
            "missing file",
            |f| f.libraries[0].found = false,
            Status::Fail,
            "/opt/gluten/lib/libvelox.so: no such file",
        ),
        (
            "broken",
            |f| {
                f.libraries[0].error = Some("x: not an ELF file".into());
                f.libraries[0].broken = true
            },
            Status::Fail,
            "x: not an ELF file",
        ),
        (
            "unreadable",
            |f| f.libraries[0].error = Some("reading x: permission denied".into()),
            Status::Unknown,
            "permission denied",
        ),
        (
            "wrong machine",
            |f| f.libraries[0].machine_code = Some(183),
            Status::Fail,
            "is built for aarch64, host is x86_64",
        ),
        (
            "32-bit",
            |f| f.libraries[0].elf_class_bits = Some(32),
            Status::Fail,
            "is 32-bit ELF, host loads 64-bit",
        ),
        (
            "missing dep",
            |f| {
                f.libraries[0].missing_dependencies.push(MissingDependency {
                    name: "libsodium.so.23".into(),
                    needed_by: "libvelox.so".into(),
                    reason: None,
                })
            },
            Status::Fail,
            "libvelox.so: libsodium.so.23 not found",
        ),
        (
            "missing version",
            |f| {
                f.libraries[0].missing_versions.push(MissingVersion {
                    version: "GLIBC_2.99".into(),
                    file: "libc.so.6".into(),
                    provider: "/lib/libc.so.6".into(),
                    provider_max: Some("GLIBC_2.41".into()),
                    needed_by: "libvelox.so".into(),
                })
            },
            Status::Fail,
            "libvelox.so needs GLIBC_2.99 from libc.so.6, but /lib/libc.so.6 defines up to GLIBC_2.41",
        ),
        (
            "execstack, glibc 2.41",
            |f| f.libraries[0].exec_stack = Some(true),
            Status::Fail,
            "host glibc 2.41 >= 2.41 refuses",
        ),
        (
            "execstack, glibc 2.35",
            |f| {
                f.libraries[0].exec_stack = Some(true);
                f.host_glibc_version = Some("2.35".into())
            },
            Status::Warn,
            "glibc >= 2.41 refuses",
        ),
        (
            "cpu flags missing",
            |f| {
                f.required_cpu_flags = vec!["avx2".into(), "bmi2".into()];
                f.cpu_flags = Some(vec!["sse2".into()])
            },
            Status::Fail,
            "libvelox.so needs avx2, bmi2: not in /proc/cpuinfo flags (SIGILL at load) (judged by the built-in list: the library has no producer record)",
        ),
        (
            "cpuinfo unknown",
            |f| f.cpu_flags = None,
            Status::Unknown,
            "cannot tell whether the CPU has avx2",
        ),
        (
            "jar for another arch",
            |f| {
                f.jars.push(JarFacts {
                    path: "/g.jar".into(),
                    found: true,
                    native_arches: vec!["aarch64".into()],
                    ..JarFacts::default()
                })
            },
            Status::Fail,
            "/g.jar has native libraries for aarch64 only (linux/aarch64/), host is x86_64: it lacks linux/amd64/",
        ),
        (
            "probe crashed",
            |f| {
                f.load_probe.push(ProbeResult {
                    path: "/x.so".into(),
                    result: "crashed".into(),
                    detail: Some("child killed by SIGILL".into()),
                })
            },
            Status::Fail,
            "dlopen probe of /x.so: crashed: child killed by SIGILL",
        ),
    ];
    for (name, change, status, text) in cases {
        let mut f = base.clone();
        change(&mut f);
        let o = run(&f);
        assert_eq!(o.status(), status, "{name}: {}", o.summary());
        assert!(o.summary().contains(text), "{name}: {}", o.summary());
    }
}

#[test]
fn nothing_installed_at_the_default_paths_warns() {
    let mut l = lib("libvelox.so");
    l.found = false;
    l.role = "configured".into();
    let f = Facts {
        host_arch: "x86_64".into(),
        libraries: vec![l],
        ..Facts::default()
    };
    let o = evaluate(&f, &Settings::default()).with_facts(&f);
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary()
            .contains("no Velox library at /opt/gluten/lib/libvelox.so")
    );
}

fn record(required: &[&str]) -> CpuNeedsFacts {
    CpuNeedsFacts {
        record: "known".into(),
        required: required.iter().map(|s| s.to_string()).collect(),
        target_options: vec![
            TargetOption {
                option: "-mavx2".into(),
                units: 121,
            },
            TargetOption {
                option: "-mbmi2".into(),
                units: 121,
            },
            TargetOption {
                option: "-march=x86-64".into(),
                units: 121,
            },
        ],
        units_considered: 121,
        ..CpuNeedsFacts::default()
    }
}

fn judged_by(l: &mut LibraryFacts, n: CpuNeedsFacts) {
    l.cpu_needs_source = Some("producer".into());
    l.cpu_needs = Some(n);
}

#[test]
fn cpu_judged_by_the_producer_record() {
    let strs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut l = lib("libvelox.so");
    judged_by(&mut l, record(&["avx", "avx2", "bmi2", "sse2"]));
    let base = Facts {
        host_arch: "x86_64".into(),
        libraries: vec![l],
        // The built-in list would fail this CPU (no fma): the record decides.
        required_cpu_flags: strs(&["fma"]),
        cpu_flags: Some(strs(&["avx", "avx2", "bmi2", "sse2"])),
        ..Facts::default()
    };
    let o = run(&base);
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert!(o.summary().contains("CPU has all 4 required flags"));

    let mut f = base.clone();
    f.cpu_flags = Some(strs(&["avx", "avx2", "sse2"]));
    let o = run(&f);
    assert_eq!(o.status(), Status::Fail);
    assert!(
        o.summary()
            .contains("libvelox.so was compiled with -mbmi2 throughout; this CPU lacks bmi2"),
        "{}",
        o.summary()
    );
    let gauge = o
        .metrics
        .iter()
        .find(|s| s.name == "gluten_node_velox_library_missing_cpu_flags")
        .unwrap();
    assert_eq!(gauge.value, 1.0);

    // A flag of a few units warns, naming some and counting the rest.
    let mut f = base.clone();
    let n = f.libraries[0].cpu_needs.as_mut().unwrap();
    n.minority.insert(
        "avx512f".into(),
        strs(&["a.cpp", "b.cpp", "c.cpp", "d.cpp", "e.cpp"]),
    );
    n.dispatched.insert("pclmulqdq".into(), strs(&["crc.cpp"]));
    let o = run(&f);
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary().contains(
            "libvelox.so: 5 of its 121 compile units were built with avx512f, which this CPU lacks: a.cpp, b.cpp, c.cpp and 2 more"
        ),
        "{}",
        o.summary()
    );
    assert!(!o.summary().contains("pclmulqdq"), "dispatched: no finding");

    // arm64: the option and the core are named.
    let mut l = lib("libvelox.so");
    l.machine_code = Some(object::elf::EM_AARCH64.0);
    let mut n = record(&["asimd", "bf16", "i8mm", "sve2"]);
    n.target_options = vec![TargetOption {
        option: "-mcpu=neoverse-v2".into(),
        units: 10,
    }];
    judged_by(&mut l, n);
    let f = Facts {
        host_arch: "aarch64".into(),
        libraries: vec![l],
        cpu_flags: Some(strs(&["asimd", "fp"])),
        cpu_core: Some(crate::velox_library::facts::CpuCoreFacts {
            core: Some("neoverse-n1".into()),
            label: "neoverse-n1".into(),
            ..Default::default()
        }),
        ..Facts::default()
    };
    let o = run(&f);
    assert!(
        o.summary().contains(
            "libvelox.so was built with -mcpu=neoverse-v2 (bf16, i8mm, sve2); this Neoverse N1 lacks bf16, i8mm, sve2"
        ),
        "{}",
        o.summary()
    );
    let inv: BTreeMap<_, _> = o.inventory.iter().cloned().collect();
    assert_eq!(inv["cpu.core"], "neoverse-n1");
}

#[test]
fn an_unreadable_record_is_judged_by_the_list_saying_why() {
    let mut l = lib("libvelox.so");
    l.cpu_needs_source = Some("builtin".into());
    l.cpu_needs = Some(CpuNeedsFacts {
        record: "unreadable".into(),
        error: Some("creating a temporary file in /tmp: Read-only file system".into()),
        ..CpuNeedsFacts::default()
    });
    let f = Facts {
        host_arch: "x86_64".into(),
        libraries: vec![l],
        required_cpu_flags: vec!["avx2".into()],
        cpu_flags: Some(vec!["sse2".into()]),
        ..Facts::default()
    };
    let o = run(&f);
    assert_eq!(o.status(), Status::Fail);
    assert!(
        o.summary().contains(
            "libvelox.so needs avx2: not in /proc/cpuinfo flags (SIGILL at load) (judged by the built-in list: libvelox.so's producer record could not be read: creating a temporary file in /tmp: Read-only file system)"
        ),
        "{}",
        o.summary()
    );
}

#[test]
fn evaluate_exports_gauges_and_inventory() {
    let mut l = lib("libvelox.so");
    l.build_id = Some("abcd".into());
    l.size_bytes = Some(10);
    let f = Facts {
        host_arch: "x86_64".into(),
        libraries: vec![l, lib("libgluten.so")],
        isa_cpu_flags: Some(vec!["avx".into(), "avx2".into()]),
        jars: vec![JarFacts {
            build_info: [("gluten_version".to_string(), "1.6.0".to_string())].into(),
            found: true,
            native_arches: vec!["amd64".into()],
            ..JarFacts::default()
        }],
        cpu_flags: Some(vec![]),
        ..Facts::default()
    };
    let o = run(&f);
    let inv: BTreeMap<_, _> = o.inventory.iter().cloned().collect();
    assert_eq!(inv["velox_library.build_id"], "abcd");
    assert_eq!(inv["cpu.flags"], "avx avx2");
    assert_eq!(inv["velox_library.gluten_version"], "1.6.0");
    let info: Vec<_> = o
        .metrics
        .iter()
        .filter(|s| s.name == "gluten_node_velox_library_info")
        .collect();
    assert_eq!(info.len(), 2);
    assert_eq!(
        info[0].labels,
        vec![
            ("library", "libvelox.so".to_string()),
            ("build_id", "abcd".to_string())
        ]
    );
}
