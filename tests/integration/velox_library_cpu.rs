//! `velox_library` judges the CPU by the library's own DWARF producer record: libraries compiled
//! here with `gcc -g` (every unit with `-mavx512f`; `-march=x86-64-v2`; one unit of four with
//! `-mavx512f`; no `-g`, so the built-in list) and with `aarch64-linux-gnu-gcc -g
//! -mcpu=neoverse-v1` judged on a Graviton 2 (Neoverse N1) fixture.

use checks::check::{Check, Runner};
use checks::host::Host;
use checks::velox_library::{Settings, VeloxLibrary};
use gluten_node_tests::*;
use proto::Status;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Haswell server's `flags` (x86-64-v3, no AVX-512).
const HASWELL: &str = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 \
    clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl \
    xtopology cpuid pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes \
    xsave avx f16c rdrand hypervisor lahf_lm abm fsgsbase bmi1 avx2 smep bmi2 erms invpcid \
    xsaveopt arat";

/// What a Westmere lacks of Haswell's: the x86-64-v3 additions.
const V3_ONLY: [&str; 10] = [
    "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe", "xsaveopt", "fsgsbase",
];

fn cpuinfo(flags: &str) -> String {
    format!(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n"
    )
}

fn westmere() -> String {
    HASWELL
        .split_whitespace()
        .filter(|f| !V3_ONLY.contains(f))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compiles each `(file name, source, flags)` unit with `compiler -c -fPIC` and links them into
/// `out` (`-shared -nostdlib`: no dependency to resolve).
fn build(compiler: &str, dir: &Path, out: &Path, units: &[(&str, &str, &[&str])]) {
    let mut objs = Vec::new();
    for (name, src, flags) in units {
        let c = dir.join(name);
        std::fs::write(&c, src).unwrap();
        let o = c.with_extension("o");
        let r = Command::new(compiler)
            .args(["-c", "-fPIC", "-O2"])
            .args(*flags)
            .arg("-o")
            .arg(&o)
            .arg(&c)
            .output()
            .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
        assert!(
            r.status.success(),
            "{compiler}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        objs.push(o);
    }
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let r = Command::new(compiler)
        .args(["-shared", "-nostdlib", "-o"])
        .arg(out)
        .args(&objs)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "{compiler}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

struct Root {
    _dir: tempfile::TempDir,
    root: PathBuf,
    build: PathBuf,
}

fn root(cpu: &str) -> Root {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let build = dir.path().join("build");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(root.join("proc/cpuinfo"), cpu).unwrap();
    Root {
        _dir: dir,
        root,
        build,
    }
}

const LIB: &str = "/opt/gluten/lib/libvelox.so";

fn check() -> Runner<VeloxLibrary> {
    Runner::<VeloxLibrary>::new(Settings {
        paths: vec![LIB.into()],
        ..Settings::default()
    })
}

fn lib_path(r: &Root) -> PathBuf {
    r.root.join(LIB.trim_start_matches('/'))
}

const SRC: &str = "double dot(const double *a, const double *b, int n) { double s = 0; \
    for (int i = 0; i < n; i++) s += a[i] * b[i]; return s; }\n";

#[test]
fn every_unit_with_avx512f_fails_on_a_cpu_without_it() {
    let r = root(&cpuinfo(HASWELL));
    build(
        "gcc",
        &r.build,
        &lib_path(&r),
        &[
            ("dot.c", SRC, &["-g", "-mavx512f"]),
            (
                "sum.c",
                "int sum(int a, int b) { return a + b; }\n",
                &["-g", "-mavx512f"],
            ),
        ],
    );
    let o = check()
        .run(&Host::new(&r.root).with_arch("x86_64"))
        .unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary()
            .contains("libvelox.so was compiled with -mavx512f throughout; this CPU lacks avx512f"),
        "{}",
        o.summary()
    );
    let l = &o.facts["libraries"][0];
    assert_eq!(l["cpu_needs_source"], "producer");
    assert_eq!(l["cpu_needs"]["units_considered"], 2);
    assert!(
        l["cpu_needs"]["required"]
            .as_array()
            .unwrap()
            .contains(&"avx512f".into())
    );
}

/// A library built for x86-64-v2 runs on a CPU without AVX2, which the built-in list (Velox's
/// default AVX2 build) would fail; the same library without `-g` has no record and is judged by
/// that list, saying so.
#[test]
fn an_x86_64_v2_library_passes_without_avx2_and_without_a_record_the_list_judges() {
    let r = root(&cpuinfo(&westmere()));
    build(
        "gcc",
        &r.build,
        &lib_path(&r),
        &[("dot.c", SRC, &["-g", "-march=x86-64-v2"])],
    );
    let c = check();
    let host = Host::new(&r.root).with_arch("x86_64");
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    let l = &o.facts["libraries"][0];
    assert_eq!(l["cpu_needs_source"], "producer");
    assert_eq!(
        l["cpu_needs"]["target_options"][0]["option"],
        "-march=x86-64-v2"
    );
    assert!(
        !l["cpu_needs"]["required"]
            .as_array()
            .unwrap()
            .contains(&"avx2".into())
    );

    // The same source without -g: no producer record.
    build("gcc", &r.build, &lib_path(&r), &[("dot.c", SRC, &[])]);
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary().contains(
            "libvelox.so needs avx, avx2, fma, f16c, bmi2, abm: not in /proc/cpuinfo flags (SIGILL at load) (judged by the built-in list: the library has no producer record)"
        ),
        "{}",
        o.summary()
    );
    let l = &o.facts["libraries"][0];
    assert_eq!(l["cpu_needs_source"], "builtin");
    assert_eq!(l["cpu_needs"]["record"], "no_producer");
}

#[test]
fn one_unit_of_four_with_avx512f_warns_naming_it() {
    let r = root(&cpuinfo(HASWELL));
    build(
        "gcc",
        &r.build,
        &lib_path(&r),
        &[
            ("a.c", "int a(int x) { return x + 1; }\n", &["-g"]),
            ("b.c", "int b(int x) { return x + 2; }\n", &["-g"]),
            ("c.c", "int c(int x) { return x + 3; }\n", &["-g"]),
            ("simd_kernel.c", SRC, &["-g", "-mavx512f"]),
        ],
    );
    let c = check();
    let host = Host::new(&r.root).with_arch("x86_64");
    let o = c.run(&host).unwrap();
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary().contains(
            "libvelox.so: 1 of its 4 compile units was built with avx512f, which this CPU lacks:"
        ) && o.summary().contains("simd_kernel.c"),
        "{}",
        o.summary()
    );
    // The warm round reads the record from the cache.
    let _ = c.run(&host).unwrap();
    assert_eq!(c.check().cpu_records_read().0, 1);
}

/// An arm64 library built for Neoverse V1 (Graviton 3) on a Graviton 2 (Neoverse N1): fail,
/// naming the option, the features and the core read from MIDR_EL1.
#[test]
fn a_neoverse_v1_library_fails_on_a_graviton_2_naming_the_core() {
    let fixture = std::fs::read_to_string(
        repo_root().join("agent/cpu-isa/tests/data/aarch64/graviton2.cpuinfo"),
    )
    .unwrap();
    let r = root(&fixture);
    let midr = fixture
        .lines()
        .find_map(|l| l.strip_prefix("midr_el1"))
        .and_then(|v| v.split(':').nth(1))
        .unwrap()
        .trim()
        .to_string();
    let sys = r
        .root
        .join("sys/devices/system/cpu/cpu0/regs/identification");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::write(sys.join("midr_el1"), format!("{midr}\n")).unwrap();
    build(
        "aarch64-linux-gnu-gcc",
        &r.build,
        &lib_path(&r),
        &[("dot.c", SRC, &["-g", "-mcpu=neoverse-v1"])],
    );
    let o = check()
        .run(&Host::new(&r.root).with_arch("aarch64"))
        .unwrap();
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    let s = o.summary();
    assert!(
        s.contains("libvelox.so was built with -mcpu=neoverse-v1 (")
            && s.contains("); this Neoverse N1 lacks "),
        "{s}"
    );
    for f in ["sve", "i8mm", "bf16"] {
        assert!(s.contains(f), "{f}: {s}");
    }
    assert_eq!(o.facts["cpu_core"]["core"], "neoverse-n1");
    assert_eq!(o.facts["cpu_core"]["midr_source"], "sysfs");
    assert!(
        o.inventory
            .contains(&("cpu.core".into(), "neoverse-n1".into()))
    );
}
