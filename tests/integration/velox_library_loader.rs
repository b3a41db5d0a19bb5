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
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";

/// Wheels with `$ORIGIN` RPATHs and bundled `.libs`, pinned.
const WHEELS: [&str; 4] = [
    "pyarrow==26.0.1",
    "pillow==13.0.0",
    "numpy==2.4.6",
    "psycopg2-binary==2.9.13",
];

/// What one side says about one file.
#[derive(Debug, Default, PartialEq, Eq)]
struct View {
    /// Dependency name -> the path it binds to.
    bound: BTreeMap<String, String>,
    not_found: BTreeSet<String>,
    /// (provider path, version).
    missing_versions: BTreeSet<(String, String)>,
    /// Paths of files the loader refused (the model's reasons).
    refused: BTreeSet<String>,
    /// Objects glibc lists by path only.
    listed: BTreeSet<String>,
}

/// glibc's answer, parsed from trace mode.
fn glibc_view(file: &Path, cwd: &Path) -> Result<View, String> {
    let o = Command::new(LD_SO)
        .arg(file)
        .current_dir(cwd)
        .env_clear()
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .env("LD_WARN", "1")
        .output()
        .map_err(|e| format!("running {LD_SO}: {e}"))?;
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let mut v = View::default();
    if !o.status.success() {
        // "…: error while loading shared libraries: NAME: REASON": the load stops at NAME.
        if let Some(rest) = err.split("error while loading shared libraries: ").nth(1)
            && let Some((name, _)) = rest.split_once(": ")
        {
            v.not_found.insert(name.to_string());
            v.bound.insert("<stopped>".into(), String::new());
            return Ok(v);
        }
        return Err(format!("{}: exit {:?}: {err}", file.display(), o.status));
    }
    for line in out.lines() {
        let line = line.trim();
        if let Some((name, rest)) = line.split_once(" => ") {
            if rest.trim() == "not found" {
                v.not_found.insert(name.to_string());
            } else if let Some((path, _)) = rest.rsplit_once(" (0x") {
                v.bound.insert(name.to_string(), path.to_string());
            }
        } else if let Some((path, _)) = line.rsplit_once(" (0x")
            && path.starts_with('/')
        {
            // Loaded under a name with `/` (or the interpreter): listed by its path only.
            v.listed.insert(path.to_string());
        }
    }
    // "<main>: <provider>: version `V' not found (required by <object>)"
    for line in err.lines().chain(out.lines()) {
        let Some(i) = line.find(": version `") else {
            continue;
        };
        let provider = line[..i]
            .rsplit(": ")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let rest = &line[i + ": version `".len()..];
        let Some(version) = rest.split('\'').next() else {
            continue;
        };
        if rest.contains("not found") && !line.contains("weak version") {
            v.missing_versions.insert((provider, version.to_string()));
        }
    }
    Ok(v)
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

fn view_of(lib: &checks::velox_library::LibraryFacts) -> View {
    View {
        bound: lib.resolved.clone(),
        not_found: lib
            .missing_dependencies
            .iter()
            .map(|m| m.name.clone())
            .collect(),
        refused: lib
            .missing_dependencies
            .iter()
            .filter_map(|m| m.reason.as_ref()?.split(": ").next().map(String::from))
            .collect(),
        missing_versions: lib
            .missing_versions
            .iter()
            .map(|m| (m.provider.clone(), m.version.clone()))
            .collect(),
        listed: BTreeSet::new(),
    }
}

/// Compares both views; `None` when they agree.
fn differs(file: &Path, glibc: &View, model: &View) -> Option<String> {
    let mut why = Vec::new();
    if glibc.bound.contains_key("<stopped>") {
        // glibc stopped at the first file it refused: the model names it among the missing.
        let named: BTreeSet<String> = model.not_found.union(&model.refused).cloned().collect();
        return (!glibc.not_found.is_subset(&named)).then(|| {
            format!(
                "{}: glibc stopped at {:?}, model misses {:?}",
                file.display(),
                glibc.not_found,
                model.not_found
            )
        });
    }
    if glibc.not_found != model.not_found {
        why.push(format!(
            "not found: glibc {:?}, model {:?}",
            glibc.not_found, model.not_found
        ));
    }
    if glibc.missing_versions != model.missing_versions {
        why.push(format!(
            "missing versions: glibc {:?}, model {:?}",
            glibc.missing_versions, model.missing_versions
        ));
    }
    // glibc lists each object once, under the first name it was loaded by; every name it lists
    // must bind where the model says, and the model may not bind a name anywhere glibc did not
    // load (the interpreter is always loaded).
    for (name, path) in &glibc.bound {
        if model.bound.get(name) != Some(path) {
            why.push(format!(
                "{name}: glibc binds {path}, model {:?}",
                model.bound.get(name)
            ));
        }
    }
    // The file itself is glibc's main object, which it does not list.
    let main = file.display().to_string();
    let loaded: BTreeSet<&String> = glibc.bound.values().chain(&glibc.listed).collect();
    for (name, path) in &model.bound {
        if !loaded.contains(path)
            && path != LD_SO
            && *path != main
            && !glibc.bound.contains_key(name)
        {
            why.push(format!(
                "{name}: model binds {path}, glibc loaded no such object"
            ));
        }
    }
    (!why.is_empty()).then(|| format!("{}: {}", file.display(), why.join("; ")))
}

/// ELF shared objects (ET_DYN, x86_64) under `dir` (recursively when `deep`); with `links`,
/// also the symlinks to them (the names programs use: `$ORIGIN` is the link's directory).
fn shared_objects(dir: &Path, deep: bool, out: &mut Vec<PathBuf>) {
    shared_objects_of(dir, deep, false, out)
}

fn shared_objects_of(dir: &Path, deep: bool, links: bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && deep {
            shared_objects_of(&p, deep, links, out);
        } else if ft.is_file() || (links && ft.is_symlink() && p.is_file()) {
            let mut head = [0u8; 20];
            let ok = std::fs::File::open(&p)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if ok
                && head[..4] == *b"\x7fELF"
                && head[4] == 2
                && u16::from_le_bytes([head[16], head[17]]) == 3
                && u16::from_le_bytes([head[18], head[19]]) == 62
                && name.contains(".so")
                && !name.starts_with("ld-linux")
            {
                out.push(p);
            }
        }
    }
}

/// Downloads (once) and unpacks the pinned wheels under `target/wheel-cache`.
fn wheels() -> Vec<PathBuf> {
    let cache = repo_root().join("target/wheel-cache");
    let mut dirs = Vec::new();
    for spec in WHEELS {
        let name = spec.split("==").next().unwrap();
        let dir = cache.join(name);
        if !dir.join(".unpacked").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let st = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                ])
                .arg(&dir)
                .arg(spec)
                .status()
                .expect("running python3 -m pip download");
            assert!(st.success(), "pip download {spec} failed");
            let whl = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
                .unwrap();
            let st = Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&whl)
                .arg(&dir)
                .status()
                .unwrap();
            assert!(st.success());
            std::fs::remove_file(&whl).unwrap();
            std::fs::write(dir.join(".unpacked"), spec).unwrap();
        }
        dirs.push(dir);
    }
    dirs
}

/// Compiles `src` into the shared object `out` (no libc) with extra gcc arguments.
fn cc(out: &Path, src: &str, args: &[&str]) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let c = out.with_extension("c");
    std::fs::write(&c, src).unwrap();
    let o = Command::new("gcc")
        .args(["-shared", "-fPIC", "-nostdlib", "-o"])
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
    std::fs::remove_file(c).unwrap();
}

/// Objects built here for what the system libraries rarely show: a missing symbol version, a
/// provider without version definitions, an inherited RPATH and a RUNPATH that stops it,
/// `$LIB` and `$PLATFORM`, `glibc-hwcaps` and legacy subdirectories, `DF_1_NODEFLIB`, a file
/// that is not ELF where the loader looks, a dependency that is the same file under two names.
/// Returns the objects to compare.
fn crafted(w: &Path, platform: &str, lib: &str) -> Vec<PathBuf> {
    let s = |p: &Path| p.display().to_string();
    std::fs::create_dir_all(w).unwrap();
    let v2 = w.join("v2.map");
    std::fs::write(&v2, "V1 { global: a; local: *; };\nV2 { global: b; } V1;\n").unwrap();
    let v1 = w.join("v1.map");
    std::fs::write(&v1, "V1 { global: a; b; local: *; };\n").unwrap();
    let foo_src = "int a(void){return 1;} int b(void){return 2;}";
    // libfoo with V2, to link against; installed copies with V1 only and with no versions.
    cc(
        &w.join("build/libfoo.so"),
        foo_src,
        &[
            "-Wl,-soname,libfoo.so",
            &format!("-Wl,--version-script={}", s(&v2)),
        ],
    );
    cc(
        &w.join("v1/libfoo.so"),
        foo_src,
        &[
            "-Wl,-soname,libfoo.so",
            &format!("-Wl,--version-script={}", s(&v1)),
        ],
    );
    cc(
        &w.join("plain/libfoo.so"),
        foo_src,
        &["-Wl,-soname,libfoo.so"],
    );
    let user = "extern int b(void); int u(void){return b();}";
    let mut out = Vec::new();
    for (name, dir) in [("libneeds_v2.so", "v1"), ("libneeds_plain.so", "plain")] {
        let p = w.join(format!("bin/{name}"));
        cc(
            &p,
            user,
            &[
                &format!("-Wl,--enable-new-dtags,-rpath,{}", s(&w.join(dir))),
                &s(&w.join("build/libfoo.so")),
            ],
        );
        out.push(p);
    }
    // RPATH chain: top (RPATH chain/dir) -> mid (no RPATH) -> leaf, found through top's RPATH.
    cc(
        &w.join("chain/dir/libleaf.so"),
        "int leaf(void){return 0;}",
        &["-Wl,-soname,libleaf.so"],
    );
    cc(
        &w.join("chain/mid/libmid.so"),
        "extern int leaf(void); int mid(void){return leaf();}",
        &["-Wl,-soname,libmid.so", &s(&w.join("chain/dir/libleaf.so"))],
    );
    cc(
        &w.join("chain/runmid/libmid.so"),
        "extern int leaf(void); int mid(void){return leaf();}",
        &[
            "-Wl,-soname,libmid.so",
            "-Wl,--enable-new-dtags,-rpath,/nonexistent",
            &s(&w.join("chain/dir/libleaf.so")),
        ],
    );
    for (name, mid, tags) in [
        ("libtop.so", "mid", "--disable-new-dtags"),
        ("libtop_runmid.so", "runmid", "--disable-new-dtags"),
        ("libtop_runpath.so", "mid", "--enable-new-dtags"),
    ] {
        let p = w.join(format!("chain/{name}"));
        let rp = format!(
            "-Wl,{tags},-rpath,{}:{}",
            s(&w.join("chain/dir")),
            s(&w.join(format!("chain/{mid}")))
        );
        cc(
            &p,
            "extern int mid(void); int top(void){return mid();}",
            &[&rp, &s(&w.join("chain/mid/libmid.so"))],
        );
        out.push(p);
    }
    // $LIB and $PLATFORM.
    let dep = |d: &Path| {
        cc(
            &d.join("libdst.so"),
            "int dst(void){return 0;}",
            &["-Wl,-soname,libdst.so"],
        )
    };
    dep(&w.join("dst/lib").join(lib));
    dep(&w.join("dst/plat").join(platform));
    for (name, rp) in [
        ("libuses_lib.so", "$ORIGIN/lib/$LIB"),
        ("libuses_platform.so", "$ORIGIN/plat/${PLATFORM}"),
    ] {
        let p = w.join(format!("dst/{name}"));
        cc(
            &p,
            "extern int dst(void); int x(void){return dst();}",
            &[
                &format!("-Wl,-rpath,{rp}"),
                &s(&w.join("dst/lib").join(lib).join("libdst.so")),
            ],
        );
        out.push(p);
    }
    // glibc-hwcaps and legacy subdirectories next to a plain copy.
    for sub in [
        "",
        "glibc-hwcaps/x86-64-v2/",
        "glibc-hwcaps/x86-64-v9/",
        "tls/",
        "x86_64/",
    ] {
        dep(&w.join("caps").join(sub));
        let p = w.join(format!(
            "caps-user/{}.so",
            if sub.is_empty() {
                "plain".to_string()
            } else {
                sub.replace('/', "_")
            }
        ));
        cc(
            &p,
            "extern int dst(void); int x(void){return dst();}",
            &[
                &format!("-Wl,-rpath,{}", s(&w.join("caps"))),
                &s(&w.join("caps/libdst.so")),
            ],
        );
        out.push(p);
    }
    // DF_1_NODEFLIB: libfoo only in a default-like place is not searched.
    let p = w.join("nodeflib/libnodeflib.so");
    cc(
        &p,
        "int z(void){return 0;}",
        &["-Wl,-z,nodefaultlib", "-Wl,--no-as-needed", "-lz"],
    );
    out.push(p);
    // Not ELF where the loader looks first: the loader stops there.
    std::fs::create_dir_all(w.join("junk")).unwrap();
    std::fs::write(w.join("junk/libdst.so"), vec![b'#'; 100]).unwrap();
    let p = w.join("junk-user/libjunk.so");
    cc(
        &p,
        "extern int dst(void); int x(void){return dst();}",
        &[
            &format!("-Wl,-rpath,{}:{}", s(&w.join("junk")), s(&w.join("caps"))),
            &s(&w.join("caps/libdst.so")),
        ],
    );
    out.push(p);
    // A DT_NEEDED with `$ORIGIN` in it (a soname that says so): expanded with its loader's origin.
    cc(
        &w.join("originneed/libo.so"),
        "int o(void){return 0;}",
        &["-Wl,-soname,$ORIGIN/libo.so"],
    );
    let p = w.join("originneed/libuses_o.so");
    cc(
        &p,
        "extern int o(void); int x(void){return o();}",
        &[&s(&w.join("originneed/libo.so"))],
    );
    out.push(p);
    // The same file under two names (a symlink): loaded once, both names bind to it.
    std::fs::create_dir_all(w.join("alias")).unwrap();
    std::os::unix::fs::symlink(w.join("caps/libdst.so"), w.join("alias/libdst2.so")).unwrap();
    place(&w.join("caps/libdst.so"), &w.join("alias/libdst.so"));
    cc(
        &w.join("alias-build/libdst2.so"),
        "int dst2(void){return 0;}",
        &["-Wl,-soname,libdst2.so"],
    );
    let p = w.join("alias/libtwo.so");
    cc(
        &p,
        "extern int dst(void); extern int dst2(void); int x(void){return dst()+dst2();}",
        &[
            "-Wl,-rpath,$ORIGIN",
            &s(&w.join("caps/libdst.so")),
            &s(&w.join("alias-build/libdst2.so")),
        ],
    );
    out.push(p);
    out
}

/// Copies a directory tree (files and symlinks as they are).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&src, &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            place(&src, &dst);
        }
    }
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
        match differs(f, &g, &m) {
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
    shared_objects_of(
        Path::new("/usr/lib/x86_64-linux-gnu"),
        false,
        true,
        &mut files,
    );
    let system = files.len();
    for dir in wheels() {
        shared_objects(&dir, true, &mut files);
    }
    shared_objects(&pyvelox_dir(), true, &mut files);
    let wheel_files = files.len() - system;

    // Symlinked and moved variants of pyvelox's libvelox.so.
    let work = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let w = work.path();
    let py = pyvelox_dir();
    // (a) A symlink elsewhere: $ORIGIN is the link's dir, the bundled libs are not there.
    std::fs::create_dir_all(w.join("link")).unwrap();
    std::os::unix::fs::symlink(py.join("pyvelox/libvelox.so"), w.join("link/libvelox.so")).unwrap();
    // (b) The whole tree moved.
    copy_tree(&py.join("pyvelox.libs"), &w.join("moved/pyvelox.libs"));
    std::fs::create_dir_all(w.join("moved/pyvelox")).unwrap();
    place(
        &py.join("pyvelox/libvelox.so"),
        &w.join("moved/pyvelox/libvelox.so"),
    );
    // (c) The library a symlink next to its $ORIGIN deps, pointing at a copy elsewhere.
    copy_tree(&py.join("pyvelox.libs"), &w.join("rev/pyvelox.libs"));
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
    let crafted = crafted(&w.join("crafted"), &loader.platform, &loader.lib);
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
