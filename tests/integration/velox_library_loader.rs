//! The loader model against glibc itself: for every x86_64 shared object of this system's
//! `/usr/lib/x86_64-linux-gnu` and of real wheels (pyvelox, pyarrow, Pillow, numpy,
//! psycopg2-binary), plus symlinked and moved copies made here, what `velox_library` says is
//! compared with `LD_TRACE_LOADED_OBJECTS=1 LD_WARN=1 /lib64/ld-linux-x86-64.so.2 FILE`: the
//! missing names, the missing symbol versions and the path each dependency binds to. Every
//! difference is a failure. The test compares two views of one machine and asserts nothing
//! about the machine itself.

use checks::check::Runner;
use checks::host::Host;
use checks::velox_library::{Facts, Settings, VeloxLibrary};
use gluten_node_tests::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";

/// `e_machine` of x86-64 objects.
const X86_64: u16 = 62;

/// Wheels with `$ORIGIN` RPATHs and bundled `.libs`, pinned.
const WHEELS: [&str; 4] = [
    "pyarrow==26.0.1",
    "pillow==13.0.0",
    "numpy==2.4.6",
    "psycopg2-binary==2.9.13",
];

/// glibc's answer, from trace mode.
fn glibc_view(file: &Path, cwd: &Path) -> Result<View, String> {
    let o = Command::new(LD_SO)
        .arg(file)
        .current_dir(cwd)
        .env_clear()
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .env("LD_WARN", "1")
        .output()
        .map_err(|e| format!("running {LD_SO}: {e}"))?;
    parse_trace(file, &o)
}

/// The check's answers for `files`, read through `/` in one run (shared caches).
fn model_views(files: &[PathBuf]) -> Vec<View> {
    let settings = Settings {
        paths: files.to_vec(),
        required_cpu_flags: Some(vec![]),
        ..Settings::default()
    };
    let facts: Facts = Runner::<VeloxLibrary>::new(settings)
        .read(&Host::new("/"))
        .unwrap();
    facts.libraries.iter().map(view_of).collect()
}

fn model_view(file: &Path) -> View {
    model_views(&[file.to_path_buf()]).remove(0)
}

/// Runs both sides over `files`; returns (agreeing, differences).
fn compare(files: &[PathBuf], cwd: &Path) -> (usize, Vec<String>) {
    let models = model_views(files);
    let mut agree = 0;
    let mut diffs = Vec::new();
    for (f, m) in files.iter().zip(models) {
        let g = match glibc_view(f, cwd) {
            Ok(g) => g,
            Err(e) => {
                diffs.push(format!("glibc refused: {e}"));
                continue;
            }
        };
        match differs(&f.display().to_string(), LD_SO, &g, &m) {
            None => agree += 1,
            Some(d) => diffs.push(d),
        }
    }
    (agree, diffs)
}

#[test]
fn the_model_agrees_with_glibc_on_every_system_library_and_wheel() {
    if !Path::new(LD_SO).exists() {
        panic!("{LD_SO} is needed: this test compares with glibc's loader");
    }
    let cwd = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    shared_objects(
        Path::new("/usr/lib/x86_64-linux-gnu"),
        false,
        true,
        X86_64,
        &mut files,
    );
    let system = files.len();
    for dir in unpacked_wheels("wheel-cache", &WHEELS, &[]) {
        shared_objects(&dir, true, false, X86_64, &mut files);
    }
    shared_objects(&pyvelox_dir(), true, false, X86_64, &mut files);
    let wheel_files = files.len() - system;

    // Symlinked and moved variants of pyvelox's libvelox.so.
    let work = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let w = work.path();
    let py = pyvelox_dir();
    // (a) A symlink elsewhere: $ORIGIN is the link's dir, the bundled libs are not there.
    std::fs::create_dir_all(w.join("link")).unwrap();
    std::os::unix::fs::symlink(py.join("pyvelox/libvelox.so"), w.join("link/libvelox.so")).unwrap();
    // (b) The whole tree moved.
    link_tree(&py.join("pyvelox.libs"), &w.join("moved/pyvelox.libs"));
    std::fs::create_dir_all(w.join("moved/pyvelox")).unwrap();
    place(
        &py.join("pyvelox/libvelox.so"),
        &w.join("moved/pyvelox/libvelox.so"),
    );
    // (c) The library a symlink next to its $ORIGIN deps, pointing at a copy elsewhere.
    link_tree(&py.join("pyvelox.libs"), &w.join("rev/pyvelox.libs"));
    std::fs::create_dir_all(w.join("rev/pyvelox")).unwrap();
    std::fs::create_dir_all(w.join("store")).unwrap();
    place(
        &py.join("pyvelox/libvelox.so"),
        &w.join("store/libvelox.so"),
    );
    std::os::unix::fs::symlink(
        w.join("store/libvelox.so"),
        w.join("rev/pyvelox/libvelox.so"),
    )
    .unwrap();
    // (d) A directory on the path that is a symlink: `..` is taken from its target.
    std::os::unix::fs::symlink(w.join("moved/pyvelox"), w.join("dirlink")).unwrap();
    let loader = Runner::<VeloxLibrary>::new(Settings {
        paths: vec![],
        required_cpu_flags: Some(vec![]),
        ..Settings::default()
    })
    .read(&Host::new("/"))
    .unwrap()
    .loader;
    let crafted = Crafting {
        cc: "gcc",
        root: Path::new("/"),
        platform: &loader.platform,
        lib: &loader.lib,
        subdirs: &[
            "",
            "glibc-hwcaps/x86-64-v2/",
            "glibc-hwcaps/x86-64-v9/",
            "tls/",
            "x86_64/",
        ],
        zlib: "-lz",
    }
    .crafted(&w.join("crafted"));
    let n_crafted = crafted.len();
    files.extend(crafted);
    let variants = [
        w.join("link/libvelox.so"),
        w.join("moved/pyvelox/libvelox.so"),
        w.join("rev/pyvelox/libvelox.so"),
        w.join("dirlink/libvelox.so"),
    ];
    files.extend(variants.iter().cloned());

    let t0 = std::time::Instant::now();
    let (agree, diffs) = compare(&files, cwd.path());
    eprintln!(
        "loader differential: {agree} of {} agree ({system} system names, {wheel_files} wheel, {n_crafted} crafted, {} variants) in {:?}",
        files.len(),
        variants.len(),
        t0.elapsed()
    );
    assert!(system > 100, "only {system} system libraries found");
    assert!(wheel_files > 20, "only {wheel_files} wheel libraries found");
    assert!(
        diffs.is_empty(),
        "{} of {} differ:\n{}",
        diffs.len(),
        files.len(),
        diffs.join("\n")
    );

    // The crafted objects and the variants really are the cases they stand for.
    let c = |rel: &str| model_view(&w.join("crafted").join(rel));
    assert_eq!(
        c("bin/libneeds_v2.so").missing_versions,
        BTreeSet::from([(
            w.join("crafted/v1/libfoo.so").display().to_string(),
            "V2".to_string()
        )])
    );
    assert!(c("bin/libneeds_plain.so").missing_versions.is_empty());
    assert!(c("chain/libtop.so").not_found.is_empty());
    assert_eq!(
        c("chain/libtop_runpath.so").not_found,
        BTreeSet::from(["libleaf.so".to_string()])
    );
    assert_eq!(
        c("chain/libtop_runmid.so").not_found,
        BTreeSet::from(["libleaf.so".to_string()])
    );
    assert!(c("dst/libuses_lib.so").not_found.is_empty());
    assert!(c("dst/libuses_platform.so").not_found.is_empty());
    assert_eq!(
        c("nodeflib/libnodeflib.so").not_found,
        BTreeSet::from(["libz.so.1".to_string()])
    );
    assert_eq!(
        c("originneed/libuses_o.so").bound.get("$ORIGIN/libo.so"),
        Some(&w.join("crafted/originneed/libo.so").display().to_string())
    );
    assert!(
        c("junk-user/libjunk.so")
            .refused
            .iter()
            .any(|p| p.ends_with("junk/libdst.so"))
    );
    let link = model_view(&variants[0]);
    assert!(
        link.not_found.iter().any(|n| n.starts_with("libsodium")),
        "a symlink elsewhere must miss the bundled libs: {link:?}"
    );
    for v in &variants[1..] {
        assert!(model_view(v).not_found.is_empty(), "{}", v.display());
    }
}

#[test]
fn a_symlinked_library_takes_origin_from_the_link_inside_a_root() {
    // The reported case in a rooted tree: /opt/gluten/lib/libvelox.so -> the real install.
    let (_dir, root) = pyvelox_tree("/opt/pyvelox/pyvelox/libvelox.so", "flags : avx2\n");
    std::fs::create_dir_all(root.join("usr/share/zoneinfo")).unwrap();
    std::fs::create_dir_all(root.join("etc/pki/tls/certs")).unwrap();
    std::fs::create_dir_all(root.join("opt/gluten/lib")).unwrap();
    std::os::unix::fs::symlink(
        "/opt/pyvelox/pyvelox/libvelox.so",
        root.join("opt/gluten/lib/libvelox.so"),
    )
    .unwrap();
    let run = |path: &str| {
        let c = Runner::<VeloxLibrary>::new(Settings {
            paths: vec![path.into()],
            required_cpu_flags: Some(vec![]),
            ..Settings::default()
        });
        checks::check::Check::run(&c, &Host::new(&root).with_arch("x86_64")).unwrap()
    };
    let o = run("/opt/gluten/lib/libvelox.so");
    assert_eq!(o.status(), proto::Status::Fail, "{}", o.summary());
    assert!(
        o.summary().contains("libsodium-2d1e6a3a.so.23.3.0"),
        "{}",
        o.summary()
    );
    // The reverse: the library a link next to its deps, the file elsewhere.
    std::fs::create_dir_all(root.join("store")).unwrap();
    std::fs::rename(
        root.join("opt/pyvelox/pyvelox/libvelox.so"),
        root.join("store/libvelox.so"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../../store/libvelox.so",
        root.join("opt/pyvelox/pyvelox/libvelox.so"),
    )
    .unwrap();
    let o = run("/opt/pyvelox/pyvelox/libvelox.so");
    assert_eq!(o.status(), proto::Status::Ok, "{}", o.summary());
    assert_eq!(
        o.facts["libraries"][0]["resolved"]["libsodium-2d1e6a3a.so.23.3.0"],
        "/opt/pyvelox/pyvelox/../pyvelox.libs/libsodium-2d1e6a3a.so.23.3.0"
    );
}
