//! Real GCC against the crate: the x86 tables against `gcc -march=X -dM -E` macros, and small
//! libraries built with `gcc -g -shared -fPIC` read back through `read_producers` and judged by
//! `cpu_needs`.

use cpu_isa::{CpuNeeds, Needs, Producers, cpu_needs, read_producers, x86};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `__X__` macros gcc predefines for these options, or `None` when gcc rejects them.
fn gcc_macros(options: &[&str]) -> Option<Vec<String>> {
    let out = Command::new("gcc")
        .args(options)
        .args(["-dM", "-E", "-x", "c", "/dev/null"])
        .output()
        .expect("running gcc");
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("#define "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
    )
}

/// Where the GCC 13.2 tables differ from older GCCs on purpose: GCC 12.2 still put
/// AVX512-VP2INTERSECT into `-march=sapphirerapids`; GCC 13 took it out (the CPU lacks it).
const DIFFERS_BEFORE_GCC_13: &[(&str, &str)] =
    &[("-march=sapphirerapids", "__AVX512VP2INTERSECT__")];

fn gcc_major() -> u32 {
    let out = Command::new("gcc")
        .arg("-dumpversion")
        .output()
        .expect("running gcc");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("gcc -dumpversion")
}

#[test]
fn tables_agree_with_the_installed_gcc() {
    let major = gcc_major();
    let mut configs: Vec<Vec<String>> = Vec::new();
    for c in x86::CPUS {
        for n in c.names {
            configs.push(vec![format!("-march={n}")]);
        }
    }
    for e in x86::EXTENSIONS {
        configs.push(vec!["-march=x86-64".into(), format!("-m{}", e.option)]);
    }
    for combo in [
        "-march=haswell -mno-avx",
        "-march=haswell -mno-sse4.2",
        "-mno-avx2 -march=haswell",
        "-march=skylake-avx512 -mno-avx512f",
        "-march=znver3 -mno-sse4a -mno-sha",
        "-march=icelake-server -mno-avx2",
        "-mavx2 -mno-avx",
        "-march=x86-64-v3 -mno-popcnt",
        "-march=x86-64 -mavx2 -mfma -mavx -mf16c -mlzcnt -mbmi2 -mpclmul",
        "-march=x86-64-v2 -mno-sse4",
        "-march=znver1 -mno-abm",
        "-march=bdver4 -mno-fma4",
    ] {
        configs.push(combo.split(' ').map(str::to_string).collect());
    }
    let (mut agree, mut compared_configs, mut skipped) = (0usize, 0usize, Vec::new());
    let mut known_differences = 0usize;
    let mut disagreements = Vec::new();
    for config in &configs {
        let opts: Vec<&str> = config.iter().map(String::as_str).collect();
        let Some(macros) = gcc_macros(&opts) else {
            skipped.push(config.join(" "));
            continue;
        };
        compared_configs += 1;
        let (enabled, unknown) = x86::resolve(opts.iter().copied());
        assert!(unknown.is_empty(), "{config:?}: {unknown:?}");
        for e in x86::EXTENSIONS.iter().filter(|e| !e.gcc_macro.is_empty()) {
            let table = enabled.contains(&e.option);
            let gcc = macros.iter().any(|m| m == e.gcc_macro);
            let expected_difference = major < 13
                && DIFFERS_BEFORE_GCC_13.contains(&(config.join(" ").as_str(), e.gcc_macro));
            if table == gcc {
                agree += 1;
            } else if expected_difference {
                known_differences += 1;
            } else {
                disagreements.push(format!(
                    "{}: {} table={table} gcc={gcc}",
                    config.join(" "),
                    e.gcc_macro
                ));
            }
        }
    }
    let version = Command::new("gcc")
        .arg("-dumpfullversion")
        .output()
        .unwrap();
    println!(
        "gcc {}: {agree} (configuration, macro) pairs agree over {compared_configs} configurations; \
         {known_differences} differ as known for gcc < 13; {} disagree; skipped (gcc rejects): \
         {skipped:?}",
        String::from_utf8_lossy(&version.stdout).trim(),
        disagreements.len()
    );
    assert!(compared_configs > 50, "too few configurations compared");
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// Builds a shared library from C sources (name, text, extra gcc options per unit), plus
/// options for the link step.
fn build(dir: &Path, lib: &str, units: &[(&str, &str, &[&str])], link: &[&str]) -> PathBuf {
    let mut objects = Vec::new();
    for (name, text, opts) in units {
        let src = dir.join(name);
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        std::fs::write(&src, text).unwrap();
        let obj = dir.join(format!("{}.o", name.replace('/', "_")));
        let st = Command::new("gcc")
            .current_dir(dir)
            .args(["-c", "-fPIC", "-O2"])
            .args(*opts)
            .arg(name)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap();
        assert!(st.success(), "gcc {opts:?} {name}");
        objects.push(obj);
    }
    let out = dir.join(lib);
    let st = Command::new("gcc")
        .args(["-shared", "-o"])
        .arg(&out)
        .args(&objects)
        .args(link)
        .status()
        .unwrap();
    assert!(st.success(), "linking {lib}");
    out
}

fn read(path: &Path) -> Producers {
    let file = std::fs::File::open(path).unwrap();
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    read_producers(&map).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn known(n: CpuNeeds) -> Needs {
    match n {
        CpuNeeds::Known(n) => n,
        other => panic!("expected a judgement, got {other:?}"),
    }
}

const LOOP: &str =
    "void scale(float *a, int n) { for (int i = 0; i < n; i++) a[i] = a[i] * 3.0f + 1.0f; }\n";
const COUNT: &str = "int count(unsigned long x) { return __builtin_popcountl(x); }\n";

#[test]
fn avx512f_library() {
    let dir = tempfile::tempdir().unwrap();
    let g: &[&str] = &["-g", "-mavx512f"];
    let lib = build(
        dir.path(),
        "lib512.so",
        &[("a.c", LOOP, g), ("b.c", COUNT, g)],
        &[],
    );
    let p = read(&lib);
    assert_eq!(p.machine, cpu_isa::Machine::X86_64);
    let names: Vec<&str> = p.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["a.c", "b.c"]);
    assert!(
        p.units[0]
            .producer
            .as_deref()
            .unwrap()
            .contains("-mavx512f")
    );
    let n = known(cpu_needs(&p, x86::flags_of));
    for f in ["avx512f", "avx2", "avx", "sse4_2", "popcnt", "sse2", "cmov"] {
        assert!(n.required.contains(f), "{f} not required: {n:?}");
    }
    assert!(!n.required.contains("avx512bw") && !n.required.contains("fma"));
    assert!(n.minority.is_empty() && n.dispatched.is_empty());
    assert_eq!(n.considered, 2);
}

#[test]
fn skylake_avx512_library_in_dwarf_4_and_5() {
    let dir = tempfile::tempdir().unwrap();
    for dwarf in ["-gdwarf-4", "-gdwarf-5"] {
        let g: &[&str] = &[dwarf, "-march=skylake-avx512"];
        let lib = build(
            dir.path(),
            &format!("skx{dwarf}.so"),
            &[("a.c", LOOP, g)],
            &[],
        );
        let n = known(cpu_needs(&read(&lib), x86::flags_of));
        for f in [
            "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "fma", "bmi1", "movbe",
            "lahf_lm",
        ] {
            assert!(n.required.contains(f), "{dwarf}: {f} not required: {n:?}");
        }
        for f in [
            "aes",
            "pclmulqdq",
            "rdrand",
            "rdseed",
            "xsave",
            "pku",
            "clflushopt",
        ] {
            assert!(
                n.intrinsics_only.contains(f),
                "{dwarf}: {f} not intrinsics-only"
            );
            assert!(!n.required.contains(f), "{dwarf}: {f} required");
        }
    }
}

#[test]
fn x86_64_v2_library_with_gcc_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let g: &[&str] = &["-g", "-march=x86-64-v2", "-frecord-gcc-switches"];
    let lib = build(dir.path(), "v2.so", &[("a.c", COUNT, g)], &[]);
    let p = read(&lib);
    assert!(
        p.command_line
            .iter()
            .any(|s| s.contains("-march=x86-64-v2")),
        "{:?}",
        p.command_line
    );
    let n = known(cpu_needs(&p, x86::flags_of));
    for f in [
        "sse4_2", "sse4_1", "ssse3", "pni", "popcnt", "cx16", "lahf_lm",
    ] {
        assert!(n.required.contains(f), "{f} not required: {n:?}");
    }
    assert!(!n.required.contains("avx"));
}

#[test]
fn minority_dispatched_runtime_and_units_without_producer() {
    let dir = tempfile::tempdir().unwrap();
    let main: &[&str] = &["-g", "-mavx2", "-mfma"];
    let odd: &[&str] = &["-g", "-mavx2", "-mfma", "-mavx512f"];
    let crc: &[&str] = &["-g", "-x", "c", "-mavx2", "-mfma", "-mpclmul", "-msse4.2"];
    let rt: &[&str] = &["-g", "-march=x86-64"];
    let asm: &[&str] = &["-g"];
    let nodebug: &[&str] = &[];
    // A hand-written DWARF 4 compile unit with a name and no producer.
    let noprod = "\t.section .debug_abbrev,\"\",@progbits\n\
        .Labbrev:\t.uleb128 1\n\t.uleb128 0x11\n\t.byte 0\n\t.uleb128 0x3\n\t.uleb128 0x8\n\t.byte 0,0\n\t.byte 0\n\
        \t.section .debug_info,\"\",@progbits\n\
        \t.long 2f-1f\n1:\t.value 4\n\t.long .Labbrev\n\t.byte 8\n\t.uleb128 1\n\t.string \"noprod.c\"\n2:\n";
    let lib = build(
        dir.path(),
        "mixed.so",
        &[
            ("src/a.c", LOOP, main),
            ("src/b.c", COUNT, main),
            ("src/c.c", "int c(int x) { return x + 1; }\n", main),
            ("src/wide.c", LOOP.replace("scale", "wide").as_str(), odd),
            (
                "folly/hash/detail/Crc32cDetail.cpp",
                "unsigned crc(unsigned c, unsigned x) { return __builtin_ia32_crc32si(c, x); }\n",
                crc,
            ),
            (
                "libgcc/libgcc2.c",
                "long rt(long x) { return x / 3; }\n",
                rt,
            ),
            ("hand.s", "\t.text\n\t.globl h\nh:\tret\n", asm),
            ("plain.c", "int plain(void) { return 7; }\n", nodebug),
            ("noprod.s", noprod, nodebug),
        ],
        &[],
    );
    let p = read(&lib);
    let names: Vec<&str> = p.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "src/a.c",
            "src/b.c",
            "src/c.c",
            "src/wide.c",
            "folly/hash/detail/Crc32cDetail.cpp",
            "libgcc/libgcc2.c",
            "hand.s",
            "noprod.c"
        ],
        "plain.c has no -g, so no unit"
    );
    assert!(
        p.units[6]
            .producer
            .as_deref()
            .unwrap()
            .starts_with("GNU AS")
    );
    assert_eq!(p.units[7].producer, None);
    assert_eq!(p.with_producer(), 7);
    let n = known(cpu_needs(&p, x86::flags_of));
    assert_eq!(n.considered, 4);
    assert_eq!(
        (n.runtime_units, n.without_flags, n.without_producer),
        (1, 1, 1)
    );
    for f in ["avx2", "fma", "avx", "sse4_2"] {
        assert!(n.required.contains(f), "{f} not required: {n:?}");
    }
    assert_eq!(
        n.minority.get("avx512f"),
        Some(&vec!["src/wide.c".to_string()])
    );
    assert_eq!(
        n.dispatched.get("pclmulqdq"),
        Some(&vec!["folly/hash/detail/Crc32cDetail.cpp".to_string()])
    );
    assert!(!n.required.contains("pclmulqdq") && !n.intrinsics_only.contains("pclmulqdq"));
}

#[test]
fn compressed_debug_sections_and_lto() {
    let dir = tempfile::tempdir().unwrap();
    let g: &[&str] = &["-g", "-gz", "-mavx2"];
    let lib = build(
        dir.path(),
        "gz.so",
        &[("a.c", LOOP, g), ("b.c", COUNT, g)],
        &["-gz"],
    );
    let p = read(&lib);
    assert!(p.compressed, "-gz gives SHF_COMPRESSED .debug_info");
    assert_eq!(p.units.len(), 2);
    assert!(
        known(cpu_needs(&p, x86::flags_of))
            .required
            .contains("avx2")
    );

    // The older GNU form: `.zdebug_info` with a "ZLIB" header.
    let g: &[&str] = &["-g", "-gz=zlib-gnu", "-mavx2"];
    let lib = build(
        dir.path(),
        "zgnu.so",
        &[("a.c", LOOP, g)],
        &["-gz=zlib-gnu"],
    );
    let p = read(&lib);
    assert!(p.compressed, ".zdebug_info counts as compressed");
    assert_eq!(p.units.len(), 1);
    let n = known(cpu_needs(&p, x86::flags_of));
    assert!(n.required.contains("avx2"));

    let lto: &[&str] = &["-g", "-flto", "-mbmi2", "-mavx2"];
    let lib = build(
        dir.path(),
        "lto.so",
        &[("a.c", LOOP, lto), ("b.c", COUNT, lto)],
        &["-flto", "-O2"],
    );
    let p = read(&lib);
    assert!(
        p.units.iter().any(|u| u
            .producer
            .as_deref()
            .is_some_and(|s| s.starts_with("GNU GIMPLE"))),
        "{p:?}"
    );
    let n = known(cpu_needs(&p, x86::flags_of));
    assert!(
        n.required.contains("bmi2") && n.required.contains("avx2"),
        "{n:?}"
    );
}

#[test]
fn no_debug_info_and_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(dir.path(), "bare.so", &[("a.c", LOOP, &["-mavx2"])], &[]);
    let p = read(&lib);
    assert!(p.units.is_empty());
    assert_eq!(
        cpu_needs(&p, x86::flags_of),
        CpuNeeds::NoProducer { units: 0 }
    );

    let g: &[&str] = &["-g", "-gno-record-gcc-switches", "-mavx2"];
    let lib = build(dir.path(), "norecord.so", &[("a.c", LOOP, g)], &[]);
    assert_eq!(
        cpu_needs(&read(&lib), x86::flags_of),
        CpuNeeds::NoFlagRecord {
            units: 1,
            with_producer: 1
        }
    );
    assert!(read_producers(b"not an elf").is_err());
}
