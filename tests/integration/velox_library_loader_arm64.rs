//! The aarch64 loader model against glibc itself: Debian 12's arm64 `ld.so` (glibc 2.36) in
//! trace mode (`LD_TRACE_LOADED_OBJECTS=1 LD_WARN=1`) under `qemu-aarch64-static`, once per
//! emulated CPU (`cortex-a72` has no LSE atomics, `neoverse-n1` has them), against what
//! `velox_library` says reading the same root with a `/proc/cpuinfo` whose `Features` line
//! names that CPU's `AT_HWCAP` bits. Objects: every arm64 shared object of the Debian packages,
//! real manylinux aarch64 wheels (pyarrow, duckdb), crafted ones (capability subdirectories
//! `tls/`, `aarch64/`, `atomics/` and their combinations, RPATH chains, `$ORIGIN`, `$LIB`,
//! `$PLATFORM`, missing versions, ...) and symlinked and moved copies. Every difference fails.
//!
//! qemu's `-L ROOT` falls back to the host's path when a path is missing in the root. The
//! test keeps everything it adds under one top-level directory the host lacks, gives the root
//! its own `/etc/ld.so.cache` and an empty `/etc/ld.so.preload`, and runs the loader with
//! `LD_DEBUG=libs`: every file it tried that the root lacks must be missing on the host too
//! (and its directory), so no answer comes from the host.

use checks::check::Runner;
use checks::host::Host;
use checks::velox_library::{Facts, Settings, VeloxLibrary};
use gluten_node_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INTERP: &str = "/lib/ld-linux-aarch64.so.1";

/// `e_machine` of aarch64 objects.
const AARCH64: u16 = 183;

/// Everything the test adds to the root lies under this directory.
const TOP: &str = "arm64-loader-differential";

/// Real aarch64 wheels with `$ORIGIN` RPATHs, pinned.
const WHEELS: [&str; 2] = ["pyarrow==26.0.1", "duckdb==2.0.1"];
const PIP_ARGS: [&str; 4] = [
    "--platform",
    "manylinux_2_28_aarch64",
    "--python-version",
    "3.11",
];

/// Emulated CPUs: without LSE atomics, with them.
const CPUS: [&str; 2] = ["cortex-a72", "neoverse-n1"];

/// `AT_HWCAP` bit names, as Linux's `/proc/cpuinfo` and glibc's `_dl_aarch64_cap_flags` spell them.
const HWCAP_NAMES: [&str; 32] = [
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
    "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
    "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
    "paca", "pacg",
];

/// Runs the root's loader under qemu as `cpu`, with only `env` set. qemu takes the loader by
/// its path here; `argv[0]` is the path the root knows it by, which glibc uses as its name.
fn loader(root: &Path, cpu: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new("qemu-aarch64-static")
        .args(["-cpu", cpu, "-0", INTERP, "-L"])
        .arg(root)
        .arg(root.join(INTERP.trim_start_matches('/')))
        .args(args)
        .current_dir(root)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("running qemu-aarch64-static")
}

/// The `Features` line of `cpu`: its `AT_HWCAP` bits (`LD_SHOW_AUXV`) by name.
fn features(root: &Path, cpu: &str) -> String {
    let o = loader(
        root,
        cpu,
        &[("LD_SHOW_AUXV", "1")],
        &["--list", "/lib/aarch64-linux-gnu/libc.so.6"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let hex = out
        .lines()
        .find_map(|l| l.strip_prefix("AT_HWCAP:"))
        .unwrap_or_else(|| panic!("no AT_HWCAP from {cpu}: {out}"))
        .trim()
        .trim_start_matches("0x");
    let bits = u64::from_str_radix(hex, 16).unwrap();
    HWCAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// glibc's answer for `file` (as the loader names it), and the files it tried.
fn glibc_view(root: &Path, cpu: &str, file: &str) -> Result<(View, Vec<String>), String> {
    let o = loader(
        root,
        cpu,
        &[
            ("LD_TRACE_LOADED_OBJECTS", "1"),
            ("LD_WARN", "1"),
            ("LD_DEBUG", "libs"),
        ],
        &[file],
    );
    let tried = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| is_ld_debug_line(l))
        .filter_map(|l| l.split_once("trying file=").map(|(_, p)| p.to_string()))
        .collect();
    Ok((parse_trace(Path::new(file), &o)?, tried))
}

/// Where the loader could have read the host instead of the root: `path` and its directory,
/// missing in the root but present on the host.
fn host_leak(root: &Path, path: &str) -> Option<String> {
    let mut p = Path::new(path);
    loop {
        let inside = root.join(p.strip_prefix("/").ok()?);
        if inside.symlink_metadata().is_err() && p.symlink_metadata().is_ok() {
            return Some(format!(
                "{path}: {} is on the host, not in the root",
                p.display()
            ));
        }
        p = p.parent()?;
        if p == Path::new("/") {
            return None;
        }
    }
}

/// The check's answers for `files` (as the loader names them), read through `root`.
fn model_views(root: &Path, files: &[String]) -> Vec<View> {
    let settings = Settings {
        paths: files.iter().map(PathBuf::from).collect(),
        required_cpu_flags: Some(vec![]),
        ..Settings::default()
    };
    let facts: Facts = Runner::<VeloxLibrary>::new(settings)
        .read(&Host::new(root).with_arch("aarch64"))
        .unwrap();
    facts.libraries.iter().map(view_of).collect()
}

#[test]
fn the_aarch64_model_agrees_with_debian_12_arm64_glibc_under_qemu() {
    let debian = debian12_arm64_root();
    let run = tempfile::tempdir_in(artifact_cache()).unwrap();
    let root = run.path();
    link_tree(&debian, root);
    let top = root.join(TOP);
    assert!(
        !Path::new("/").join(TOP).exists(),
        "/{TOP} must not exist on the host (qemu -L would fall back to it)"
    );
    let guest = |p: &Path| format!("/{}", p.strip_prefix(root).unwrap().display());

    // Objects: Debian's (by every name, as programs use them), the wheels', crafted ones.
    let mut files = Vec::new();
    for dir in ["lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu"] {
        shared_objects(&root.join(dir), false, true, AARCH64, &mut files);
    }
    let system = files.len();
    for dir in unpacked_wheels("wheel-cache-aarch64", &WHEELS, &PIP_ARGS) {
        let name = dir.file_name().unwrap().to_owned();
        link_tree(&dir, &top.join("wheels").join(&name));
        shared_objects(
            &top.join("wheels").join(name),
            true,
            false,
            AARCH64,
            &mut files,
        );
    }
    let wheel_files = files.len() - system;
    let crafting = Crafting {
        cc: "aarch64-linux-gnu-gcc",
        root,
        platform: "aarch64",
        lib: "lib/aarch64-linux-gnu",
        subdirs: &[
            "",
            "tls/",
            "aarch64/",
            "atomics/",
            "tls/aarch64/",
            "tls/atomics/",
            "aarch64/atomics/",
            "tls/aarch64/atomics/",
            "atomics/aarch64/",
            "glibc-hwcaps/aarch64/",
        ],
        zlib: &root
            .join("lib/aarch64-linux-gnu/libz.so.1")
            .display()
            .to_string(),
    };
    let crafted = crafting.crafted(&top.join("crafted"));
    let mut n_crafted = crafted.len();
    files.extend(crafted);

    // Symlinked and moved variants of pyarrow's libarrow_python (RPATH `$ORIGIN`).
    let arrow = top.join("wheels/pyarrow/pyarrow");
    let py = "libarrow_python.so.2600";
    let v = top.join("variants");
    // (a) A symlink elsewhere: $ORIGIN is the link's dir, libarrow is not there.
    std::fs::create_dir_all(v.join("link")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../wheels/pyarrow/pyarrow/{py}"),
        v.join("link").join(py),
    )
    .unwrap();
    // (b) The whole directory moved.
    link_tree(&arrow, &v.join("moved/pyarrow"));
    // (c) The library a symlink next to its $ORIGIN deps, pointing at a copy elsewhere.
    link_tree(&arrow, &v.join("rev/pyarrow"));
    std::fs::remove_file(v.join("rev/pyarrow").join(py)).unwrap();
    place(&arrow.join(py), &v.join("store").join(py));
    std::os::unix::fs::symlink(format!("../../store/{py}"), v.join("rev/pyarrow").join(py))
        .unwrap();
    // (d) A directory on the path that is a symlink.
    std::os::unix::fs::symlink("moved/pyarrow", v.join("dirlink")).unwrap();
    let variants = ["link", "moved/pyarrow", "rev/pyarrow", "dirlink"].map(|d| v.join(d).join(py));
    files.extend(variants.iter().cloned());

    // Libraries the cache knows from `tls/` and `atomics/` subdirs (ldconfig records them with
    // legacy hwcap bits), used by objects without RPATH.
    let cache_dir = top.join("cachedir");
    for (lib, subs) in [
        ("libcboth.so", &["", "tls/", "atomics/", "tls/atomics/"][..]),
        ("libcatomics.so", &["", "atomics/"][..]),
        ("libconly.so", &["atomics/"][..]),
    ] {
        for sub in subs {
            crafting.cc(
                &cache_dir.join(sub).join(lib),
                "int c(void){return 0;}",
                &[&format!("-Wl,-soname,{lib}")],
            );
        }
        let p = top.join(format!("cache-user/{lib}"));
        crafting.cc(
            &p,
            "extern int c(void); int x(void){return c();}",
            &[
                "-Wl,--no-as-needed",
                &cache_dir.join(subs[0]).join(lib).display().to_string(),
            ],
        );
        files.push(p);
        n_crafted += 1;
    }
    std::fs::write(
        root.join("etc/ld.so.conf.d/zz-differential.conf"),
        format!("{}\n", guest(&cache_dir)),
    )
    .unwrap();

    // The root's own ld.so.cache, built by its arm64 ldconfig (chrooted into the root, so
    // what it writes stays there), and an empty preload list.
    std::fs::write(root.join("etc/ld.so.preload"), "").unwrap();
    let _ = std::fs::remove_file(root.join("etc/ld.so.cache"));
    let o = Command::new("qemu-aarch64-static")
        .arg("-L")
        .arg(root)
        .arg(root.join("sbin/ldconfig"))
        .args(["-X", "-r"])
        .arg(root)
        .env_clear()
        .output()
        .expect("running the arm64 ldconfig under qemu");
    assert!(
        o.status.success() && root.join("etc/ld.so.cache").exists(),
        "ldconfig: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let guests: Vec<String> = files.iter().map(|f| guest(f)).collect();
    let t0 = std::time::Instant::now();
    let mut agree = 0;
    let mut diffs = Vec::new();
    let mut bindings = Vec::new();
    for cpu in CPUS {
        let features = features(root, cpu);
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::write(
            root.join("proc/cpuinfo"),
            format!("processor\t: 0\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"),
        )
        .unwrap();
        let models = model_views(root, &guests);
        for (f, m) in guests.iter().zip(&models) {
            let (g, tried) = match glibc_view(root, cpu, f) {
                Ok(g) => g,
                Err(e) => {
                    diffs.push(format!("{cpu}: glibc refused: {e}"));
                    continue;
                }
            };
            diffs.extend(
                tried
                    .iter()
                    .filter_map(|p| host_leak(root, p))
                    .map(|l| format!("{cpu}: {f}: {l}")),
            );
            match differs(f, INTERP, &g, m) {
                None => agree += 1,
                Some(d) => diffs.push(format!("{cpu}: {d}")),
            }
            if f.contains("/caps-alone-user/") || f.contains("/cache-user/") {
                bindings.push((cpu, f.clone(), m.bound.clone()));
            }
        }
    }
    let total = guests.len() * CPUS.len();
    eprintln!(
        "aarch64 loader differential: {agree} of {total} agree ({} objects x {} CPUs: {system} Debian names, {wheel_files} wheel, {n_crafted} crafted, {} variants) in {:?}",
        guests.len(),
        CPUS.len(),
        variants.len(),
        t0.elapsed()
    );
    assert!(system > 30, "only {system} Debian arm64 libraries found");
    assert!(wheel_files > 10, "only {wheel_files} wheel libraries found");
    assert!(
        diffs.is_empty(),
        "{} of {total} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );

    // The capability subdirectories were really exercised: `atomics/` binds on the CPU with
    // atomics only, `tls/` and `aarch64/` on both, `glibc-hwcaps/` on neither; so were the
    // cache entries from `tls/` and `atomics/`.
    let bound = |cpu: &str, user: &str, name: &str| {
        bindings
            .iter()
            .find(|(c, f, _)| *c == cpu && f.ends_with(user))
            .and_then(|(_, _, b)| b.get(name).cloned())
    };
    let caps = |tag: &str, sub: &str| Some(format!("/{TOP}/crafted/caps-{tag}/{sub}libdst.so"));
    for (tag, sub, without, with) in [
        ("atomics", "atomics/", false, true),
        ("aarch64_atomics", "aarch64/atomics/", false, true),
        ("tls_aarch64", "tls/aarch64/", true, true),
        ("aarch64", "aarch64/", true, true),
        (
            "glibc-hwcaps_aarch64",
            "glibc-hwcaps/aarch64/",
            false,
            false,
        ),
    ] {
        let user = format!("/caps-alone-user/{tag}.so");
        let want = |yes: bool| caps(tag, if yes { sub } else { "" });
        let (a72, n1) = (CPUS[0], CPUS[1]);
        assert_eq!(bound(a72, &user, "libdst.so"), want(without), "{tag}");
        assert_eq!(bound(n1, &user, "libdst.so"), want(with), "{tag}");
    }
    let cached = |sub: &str, lib: &str| Some(format!("/{TOP}/cachedir/{sub}{lib}"));
    let user = |lib: &str| format!("/cache-user/{lib}");
    for (lib, a72, n1) in [
        (
            "libcboth.so",
            cached("tls/", "libcboth.so"),
            cached("tls/atomics/", "libcboth.so"),
        ),
        (
            "libcatomics.so",
            cached("", "libcatomics.so"),
            cached("atomics/", "libcatomics.so"),
        ),
        ("libconly.so", None, cached("atomics/", "libconly.so")),
    ] {
        assert_eq!(bound(CPUS[0], &user(lib), lib), a72, "{lib}");
        assert_eq!(bound(CPUS[1], &user(lib), lib), n1, "{lib}");
    }
}
