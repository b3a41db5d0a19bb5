//! `velox_library` on the upstream trees (no library: the "nothing installed" warning, CPU flags
//! from their cpuinfo), on trees built here with gcc (a missing dependency, a version need the
//! host lacks, a wrong machine, a truncated file, a non-ELF file, a jar), and on pyvelox's real
//! 270 MB `libvelox.so` with its bundled dependencies.

use checks::check::{Check, Runner};
use checks::host::Host;
use checks::velox_library::{Settings, VeloxLibrary};
use gluten_node_tests::*;
use proto::Status;
use std::path::{Path, PathBuf};
use std::process::Command;

const X86_FLAGS: &str = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2 abm";

fn golden(root: &Path, name: &str, settings: &str) -> proto::CheckResult {
    run_check_golden(root, "velox_library", settings, name)
}

#[test]
fn node_exporter_tree_has_no_library_and_all_default_cpu_flags() {
    let r = golden(
        &upstream("node-exporter-upstream"),
        "velox_library-node-exporter-upstream",
        "",
    );
    assert_eq!(r.status, Status::Warn, "{}", r.summary);
    assert!(
        r.summary
            .contains("no Velox library at /opt/gluten/lib/libvelox.so")
    );
    assert!(r.facts["cpu_flags"].is_array(), "{}", r.facts);
    assert!(!r.summary.contains("cpuinfo"), "{}", r.summary);
}

#[test]
fn procfs_tree_with_a_flag_its_cpu_lacks_fails_naming_it() {
    let r = golden(
        &upstream("procfs-upstream"),
        "velox_library-procfs-upstream-avx512",
        "paths = []\nrequired_cpu_flags = [\"avx2\", \"avx512f\"]",
    );
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.summary
            .contains("needs avx512f: not in /proc/cpuinfo flags"),
        "{}",
        r.summary
    );
}

/// Compiles `src` into a shared object `out` with extra gcc arguments.
fn cc(dir: &Path, out: &Path, src: &str, args: &[&str]) {
    let c = dir.join(format!("{}.c", out.file_name().unwrap().to_string_lossy()));
    std::fs::write(&c, src).unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let o = Command::new("gcc")
        .args(["-shared", "-fPIC", "-nostdlib", "-Wl,--build-id=sha1", "-o"])
        .arg(out)
        .arg(&c)
        .args(args)
        .output()
        .expect("running gcc");
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A host tree: a fake `libc.so.6` defining GLIBC_2.17 and GLIBC_2.35 in the default dir,
/// `/opt/gluten/lib/libvelox.so` needing `libdep.so` (found through RPATH `$ORIGIN/../deps`)
/// and libc, and a cpuinfo with the default x86 flags.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    build: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let build = dir.path().join("build");
    std::fs::create_dir_all(&build).unwrap();
    let vs = build.join("libc.map");
    std::fs::write(
        &vs,
        "GLIBC_2.17 { global: old_fn; local: *; };\nGLIBC_2.35 { global: mid_fn; } GLIBC_2.17;\n",
    )
    .unwrap();
    let libc = root.join("lib/x86_64-linux-gnu/libc.so.6");
    cc(
        &build,
        &libc,
        "int old_fn(void){return 1;} int mid_fn(void){return 2;}",
        &[
            "-Wl,-soname,libc.so.6",
            &format!("-Wl,--version-script={}", vs.display()),
        ],
    );
    let dep = root.join("opt/gluten/deps/libdep.so");
    cc(
        &build,
        &dep,
        "extern int old_fn(void); int dep_fn(void){return old_fn();}",
        &["-Wl,-soname,libdep.so", libc.to_str().unwrap()],
    );
    let velox = root.join("opt/gluten/lib/libvelox.so");
    cc(
        &build,
        &velox,
        "extern int dep_fn(void); extern int mid_fn(void); int v(void){return dep_fn()+mid_fn();}",
        &[
            "-Wl,-soname,libvelox.so",
            "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../deps",
            "-Wl,-z,noexecstack",
            dep.to_str().unwrap(),
            libc.to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/cpuinfo"),
        format!(
            "processor\t: 0\nflags\t\t: {X86_FLAGS}\n\nprocessor\t: 1\nflags\t\t: {X86_FLAGS}\n"
        ),
    )
    .unwrap();
    Tree {
        _dir: dir,
        root,
        build,
    }
}

const ONE: &str = "paths = [\"/opt/gluten/lib/libvelox.so\"]";

#[test]
fn the_loader_is_read_only_when_a_library_is_there_to_load() {
    let t = tree();
    cc(
        &t.build,
        &t.root.join("lib64/ld-linux-x86-64.so.2"),
        "int ld_fn(void){return 0;}",
        &["-Wl,-soname,ld-linux-x86-64.so.2"],
    );
    let host = Host::new(&t.root).with_arch("x86_64");
    let with = |path: &str| {
        Runner::<VeloxLibrary>::new(Settings {
            paths: vec![PathBuf::from(path)],
            ..Settings::default()
        })
    };

    // Nothing installed: no closure, so neither the loader nor libc is read into the cache.
    let nothing = with("/opt/gluten/lib/libmissing.so");
    let o = nothing.run(&host).unwrap();
    assert_eq!(o.facts["host_glibc_version"], "2.35", "{}", o.facts);
    assert_eq!(nothing.check().summaries_cached(), 0);

    // A library: its closure starts from the loader, which is read once.
    let one = with("/opt/gluten/lib/libvelox.so");
    let o = one.run(&host).unwrap();
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    // libvelox.so, libdep.so, libc.so.6 and the loader.
    assert_eq!(one.check().summaries_cached(), 4);
}

#[test]
fn a_complete_tree_is_ok_and_reports_what_it_resolved() {
    let t = tree();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    let lib = &r.facts["libraries"][0];
    assert_eq!(
        lib["resolved"]["libdep.so"],
        "/opt/gluten/lib/../deps/libdep.so"
    );
    assert_eq!(
        lib["resolved"]["libc.so.6"],
        "/lib/x86_64-linux-gnu/libc.so.6"
    );
    assert_eq!(lib["max_glibc_required"], "GLIBC_2.35");
    assert_eq!(lib["exec_stack"], false);
    assert_eq!(lib["machine"], "x86_64");
    assert_eq!(lib["build_id"].as_str().unwrap().len(), 40);
    assert_eq!(r.facts["host_glibc_version"], "2.35");
    assert_eq!(r.facts["ld_so_cache_format"], serde_json::Value::Null);
}

#[test]
fn a_removed_dependency_is_named_with_who_needs_it() {
    let t = tree();
    std::fs::remove_file(t.root.join("opt/gluten/deps/libdep.so")).unwrap();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.summary.starts_with("libvelox.so: libdep.so not found"),
        "{}",
        r.summary
    );
}

#[test]
fn a_version_the_host_libc_lacks_fails_naming_both() {
    let t = tree();
    // Rebuild libc with GLIBC_2.17 only: libvelox.so's GLIBC_2.35 need is now unmet.
    let vs = t.build.join("old.map");
    std::fs::write(&vs, "GLIBC_2.17 { global: old_fn; mid_fn; local: *; };\n").unwrap();
    cc(
        &t.build,
        &t.root.join("lib/x86_64-linux-gnu/libc.so.6"),
        "int old_fn(void){return 1;} int mid_fn(void){return 2;}",
        &[
            "-Wl,-soname,libc.so.6",
            &format!("-Wl,--version-script={}", vs.display()),
        ],
    );
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.summary.contains(
            "libvelox.so needs GLIBC_2.35 from libc.so.6, but /lib/x86_64-linux-gnu/libc.so.6 defines up to GLIBC_2.17"
        ),
        "{}",
        r.summary
    );
}

#[test]
fn broken_copies_fail_with_a_sentence_naming_the_file() {
    let t = tree();
    let velox = t.root.join("opt/gluten/lib/libvelox.so");
    let good = std::fs::read(&velox).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "truncated ELF: section headers at offset",
        ),
        (
            "non-ELF",
            b"#!/bin/sh\necho not a library\n".to_vec(),
            "not an ELF file",
        ),
        (
            "aarch64",
            {
                let mut b = good.clone();
                b[18..20].copy_from_slice(&183u16.to_le_bytes());
                b
            },
            "is built for aarch64, host is x86_64",
        ),
    ];
    for (what, bytes, expect) in cases {
        std::fs::write(&velox, &bytes).unwrap();
        let r = run_check(&t.root, "velox_library", ONE);
        assert_eq!(r.status, Status::Fail, "{what}: {}", r.summary);
        assert!(r.summary.contains(expect), "{what}: {}", r.summary);
        assert!(
            r.summary.contains("/opt/gluten/lib/libvelox.so"),
            "{what}: {}",
            r.summary
        );
    }
}

#[test]
fn missing_cpu_flags_fail_naming_each() {
    let t = tree();
    std::fs::write(
        t.root.join("proc/cpuinfo"),
        "processor\t: 0\nflags\t\t: fpu sse4_2 popcnt avx\n",
    )
    .unwrap();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.summary
            .contains("libvelox.so needs avx2, fma, f16c, bmi2, abm: not in /proc/cpuinfo flags"),
        "{}",
        r.summary
    );
    std::fs::remove_file(t.root.join("proc/cpuinfo")).unwrap();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Unknown, "{}", r.summary);
    assert_eq!(r.facts["cpu_flags"], serde_json::Value::Null);
}

#[test]
fn a_configured_library_that_is_absent_fails() {
    let t = tree();
    let r = run_check(
        &t.root,
        "velox_library",
        "paths = [\"/opt/gluten/lib/libvelox.so\", \"/opt/gluten/lib/libgluten.so\"]",
    );
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.summary
            .contains("/opt/gluten/lib/libgluten.so: no such file"),
        "{}",
        r.summary
    );
}

/// `/opt/spark/jars/gluten.jar` in the tree: the tree's libvelox.so and libdep.so under
/// `linux/amd64/`, and a `gluten-build-info.properties`.
fn gluten_jar(t: &Tree) -> PathBuf {
    let jar = t.root.join("opt/spark/jars/gluten.jar");
    std::fs::create_dir_all(jar.parent().unwrap()).unwrap();
    let stage = t.build.join("jar");
    let velox = std::fs::read(t.root.join("opt/gluten/lib/libvelox.so")).unwrap();
    let dep = std::fs::read(t.root.join("opt/gluten/deps/libdep.so")).unwrap();
    std::fs::create_dir_all(stage.join("linux/amd64")).unwrap();
    std::fs::write(stage.join("linux/amd64/libvelox.so"), velox).unwrap();
    std::fs::write(stage.join("linux/amd64/libdep.so"), dep).unwrap();
    std::fs::write(
        stage.join("gluten-build-info.properties"),
        "gluten_version=1.6.0\nbackend_type=velox\n",
    )
    .unwrap();
    let o = Command::new("python3")
        .current_dir(&stage)
        .args(["-m", "zipfile", "-c"])
        .arg(&jar)
        .args(["linux", "gluten-build-info.properties"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    jar
}

#[test]
fn a_jar_is_read_in_memory_with_its_build_info() {
    let t = tree();
    gluten_jar(&t);
    let r = run_check(
        &t.root,
        "velox_library",
        "paths = []\njars = [\"/opt/spark/jars/gluten.jar\"]",
    );
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(r.facts["jars"][0]["build_info"]["gluten_version"], "1.6.0");
    assert_eq!(
        r.facts["jars"][0]["native_arches"],
        serde_json::json!(["amd64"])
    );
    let libs = r.facts["libraries"].as_array().unwrap();
    assert_eq!(libs.len(), 2);
    let v = libs.iter().find(|l| l["library"] == "libvelox.so").unwrap();
    assert_eq!(
        v["resolved"]["libdep.so"],
        "/opt/spark/jars/gluten.jar!linux/amd64/libdep.so"
    );

    // The same jar seen from an aarch64 host has no libraries for it.
    let mut c = config(
        &t.root,
        "[velox_library]\npaths = []\njars = [\"/opt/spark/jars/gluten.jar\"]\nrequired_cpu_flags = []\n",
    );
    for other in ["gluten_runtime", "hugepages", "numa", "scratch", "memory"] {
        c.common_mut(other).enabled = false;
    }
    let s = round(&c, "aarch64");
    let r = &s.report.checks[0];
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.summary.contains(
            "has native libraries for amd64 only (linux/amd64/), host is aarch64: it lacks linux/aarch64/"
        ),
        "{}",
        r.summary
    );
}

#[test]
fn pyvelox_libvelox_resolves_every_bundled_dependency() {
    let (_dir, root) = pyvelox_tree(
        "/opt/pyvelox/pyvelox/libvelox.so",
        &format!("processor\t: 0\nflags\t\t: {X86_FLAGS}\n"),
    );
    let settings = Settings {
        paths: vec![PathBuf::from("/opt/pyvelox/pyvelox/libvelox.so")],
        ..Settings::default()
    };
    let check = Runner::<VeloxLibrary>::new(settings.clone());
    let host = Host::new(&root).with_arch("x86_64");
    let t0 = std::time::Instant::now();
    let o = check.run(&host).unwrap();
    let cold = t0.elapsed();
    let t1 = std::time::Instant::now();
    let warm_runs = 20;
    for _ in 0..warm_runs {
        check.run(&host).unwrap();
    }
    let warm = t1.elapsed() / warm_runs;
    eprintln!("pyvelox libvelox.so: cold {cold:?}, warm {warm:?} per run");
    let lib = &o.facts["libraries"][0];
    assert_eq!(
        lib["missing_dependencies"],
        serde_json::json!([]),
        "{}",
        o.summary()
    );
    assert_eq!(lib["rpath"], serde_json::json!(["$ORIGIN/../pyvelox.libs"]));
    let resolved = lib["resolved"].as_object().unwrap();
    let bundled = resolved
        .values()
        .filter(|p| {
            p.as_str()
                .unwrap()
                .starts_with("/opt/pyvelox/pyvelox/../pyvelox.libs/")
        })
        .count();
    let shipped = std::fs::read_dir(root.join("opt/pyvelox/pyvelox.libs"))
        .unwrap()
        .count();
    assert_eq!(bundled, shipped, "{resolved:?}");
    assert_eq!(
        lib["size_bytes"],
        std::fs::metadata(root.join("opt/pyvelox/pyvelox/libvelox.so"))
            .unwrap()
            .len()
    );

    // A bundled dependency removed: named, with the library that needs it.
    std::fs::remove_file(root.join("opt/pyvelox/pyvelox.libs/libsodium-2d1e6a3a.so.23.3.0"))
        .unwrap();
    let o = Runner::<VeloxLibrary>::new(settings).run(&host).unwrap();
    assert_eq!(o.status(), Status::Fail);
    assert!(
        o.summary().contains("libsodium-2d1e6a3a.so.23.3.0"),
        "{}",
        o.summary()
    );
}

#[test]
fn load_probe_dlopens_in_a_child_and_survives_a_crashing_constructor() {
    // dlopen cannot be rooted, so the probe runs against `/` with libraries built here.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("libgood.so");
    let bad = dir.path().join("libbad.so");
    cc(dir.path(), &good, "int g(void){return 1;}", &[]);
    cc(
        dir.path(),
        &bad,
        "__attribute__((constructor)) static void boom(void){ __builtin_trap(); }",
        &[],
    );
    let settings = Settings {
        paths: vec![good.clone(), bad.clone()],
        required_cpu_flags: Some(vec![]),
        load_probe: true,
        ..Settings::default()
    };
    let o = Runner::<VeloxLibrary>::new(settings)
        .run(&Host::new("/"))
        .unwrap();
    let probes = o.facts["load_probe"].as_array().unwrap();
    assert_eq!(probes[0]["result"], "loaded", "{probes:?}");
    assert_eq!(probes[1]["result"], "crashed", "{probes:?}");
    assert!(
        o.summary()
            .contains(&format!("dlopen probe of {}: crashed", bad.display())),
        "{}",
        o.summary()
    );

    // Under another root the probe is skipped with a reason.
    let t = tree();
    let r = run_check(
        &t.root,
        "velox_library",
        &format!("{ONE}\nload_probe = true"),
    );
    assert_eq!(r.facts["load_probe"][0]["result"], "skipped");
    assert_eq!(r.status, Status::Unknown, "{}", r.summary);
}

/// A `glibc-ld.so.cache1.1` file mapping each soname to a path.
fn ld_so_cache(entries: &[(&str, &str)]) -> Vec<u8> {
    let base = 48 + 24 * entries.len();
    let (mut strings, mut offs) = (Vec::new(), Vec::new());
    for (k, v) in entries {
        let ko = (base + strings.len()) as u32;
        strings.extend_from_slice(k.as_bytes());
        strings.push(0);
        let vo = (base + strings.len()) as u32;
        strings.extend_from_slice(v.as_bytes());
        strings.push(0);
        offs.push((ko, vo));
    }
    let mut b = b"glibc-ld.so.cache1.1".to_vec();
    b.extend((entries.len() as u32).to_le_bytes());
    b.extend((strings.len() as u32).to_le_bytes());
    b.extend([2u8, 0, 0, 0]);
    b.extend([0u8; 16]);
    for (k, v) in offs {
        b.extend(0x0303i32.to_le_bytes());
        b.extend(k.to_le_bytes());
        b.extend(v.to_le_bytes());
        b.extend([0u8; 12]);
    }
    b.extend(strings);
    b
}

#[test]
fn the_ld_so_cache_finds_what_rpath_does_not() {
    let t = tree();
    let moved = t.root.join("usr/local/lib/libdep.so");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(t.root.join("opt/gluten/deps/libdep.so"), &moved).unwrap();
    std::fs::create_dir_all(t.root.join("etc")).unwrap();
    std::fs::write(
        t.root.join("etc/ld.so.cache"),
        ld_so_cache(&[("libdep.so", "/usr/local/lib/libdep.so")]),
    )
    .unwrap();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    assert_eq!(
        r.facts["libraries"][0]["resolved"]["libdep.so"],
        "/usr/local/lib/libdep.so"
    );
    assert_eq!(r.facts["ld_so_cache_format"], "glibc-ld.so.cache1.1");

    // Without a cache the loader searches only its default dirs: ld.so.conf is ldconfig's
    // input, never read by ld.so. The finding says so and names the dirs it lists.
    std::fs::remove_file(t.root.join("etc/ld.so.cache")).unwrap();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    std::fs::create_dir_all(t.root.join("etc/ld.so.conf.d")).unwrap();
    std::fs::write(
        t.root.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        t.root.join("etc/ld.so.conf.d/local.conf"),
        "/usr/local/lib\n",
    )
    .unwrap();
    let r = run_check(&t.root, "velox_library", ONE);
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        r.summary.contains(
            "there is no /etc/ld.so.cache, so the ld.so.conf dirs /usr/local/lib are not searched: run ldconfig"
        ),
        "{}",
        r.summary
    );
    assert_eq!(
        r.facts["ld_so_conf_dirs"],
        serde_json::json!(["/usr/local/lib"])
    );
}

#[test]
fn a_warm_round_does_not_decompress_the_jar_again() {
    let t = tree();
    let jar = gluten_jar(&t);
    let settings = Settings {
        paths: vec![],
        jars: vec!["/opt/spark/jars/gluten.jar".into()],
        ..Settings::default()
    };
    let check = Runner::<VeloxLibrary>::new(settings);
    let host = Host::new(&t.root).with_arch("x86_64");
    let cold = check.run(&host).unwrap();
    assert_eq!(cold.status(), Status::Ok, "{}", cold.summary());
    assert_eq!(
        check.check().jar_entries_decompressed(),
        2,
        "libvelox.so and libdep.so"
    );
    let warm = check.run(&host).unwrap();
    assert_eq!(
        check.check().jar_entries_decompressed(),
        2,
        "the warm round read no entry"
    );
    assert_eq!(warm.facts, cold.facts);
    assert_eq!(warm.findings, cold.findings);

    // A new version of the jar (here: a new mtime) is read again.
    let f = std::fs::File::options().write(true).open(&jar).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let again = check.run(&host).unwrap();
    assert_eq!(check.check().jar_entries_decompressed(), 4);
    assert_eq!(again.facts, cold.facts);
}

#[test]
fn a_jar_entry_that_inflates_past_its_declared_size_is_refused() {
    let t = tree();
    let jar = gluten_jar(&t);
    // Patch libvelox.so's uncompressed size (local header and central directory) to 64 bytes.
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import struct, sys, zipfile
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
z = zipfile.ZipFile(p)
i = [x for x in z.infolist() if x.filename.endswith('libvelox.so')][0]
struct.pack_into('<I', b, i.header_offset + 22, 64)
cd = b.find(b'PK\x01\x02')
while cd >= 0:
    n = struct.unpack_from('<H', b, cd + 28)[0]
    if bytes(b[cd + 46:cd + 46 + n]).endswith(b'libvelox.so'):
        struct.pack_into('<I', b, cd + 24, 64)
        break
    cd = b.find(b'PK\x01\x02', cd + 4)
open(p, 'wb').write(b)
"#,
        )
        .arg(&jar)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = run_check(
        &t.root,
        "velox_library",
        "paths = []\njars = [\"/opt/spark/jars/gluten.jar\"]",
    );
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    // The zip reader stops at the declared size (and the check's own guard would too).
    assert!(
        r.summary.contains("gluten.jar!linux/amd64/libvelox.so")
            && (r
                .summary
                .contains("larger than its declared uncompressed size")
                || r.summary.contains("beyond its declared size of 64 bytes")),
        "{}",
        r.summary
    );
}
