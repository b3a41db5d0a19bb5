//! The loader differential's shared half: what glibc's `ld.so` says in trace mode
//! (`LD_TRACE_LOADED_OBJECTS=1 LD_WARN=1`) and what `velox_library` says, as comparable views,
//! the comparison itself, ELF shared objects found on disk, pinned wheels fetched once, and the
//! crafted objects built for what real libraries rarely show. Used by the x86-64 differential
//! (the host's own loader) and the aarch64 one (Debian 12's arm64 loader under qemu).

use crate::fixtures::repo_root;
use crate::pyvelox::place;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What one side says about one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Dependency name -> the path it binds to.
    pub bound: BTreeMap<String, String>,
    pub not_found: BTreeSet<String>,
    /// (provider path, version).
    pub missing_versions: BTreeSet<(String, String)>,
    /// Paths of files the loader refused (the model's reasons).
    pub refused: BTreeSet<String>,
    /// Objects glibc lists by path only.
    pub listed: BTreeSet<String>,
}

/// Whether `line` is one of `LD_DEBUG`'s lines ("     PID:\t…"), not the loader's own output.
pub fn is_ld_debug_line(line: &str) -> bool {
    let t = line.trim_start();
    t.split_once(":\t")
        .is_some_and(|(pid, _)| !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()))
}

/// glibc's answer for `file`, parsed from a trace-mode run's output (`LD_DEBUG` lines ignored).
pub fn parse_trace(file: &Path, o: &Output) -> Result<View, String> {
    let out = String::from_utf8_lossy(&o.stdout);
    let err: String = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !is_ld_debug_line(l))
        .map(|l| format!("{l}\n"))
        .collect();
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

/// The check's answer for one library.
pub fn view_of(lib: &checks::velox_library::LibraryFacts) -> View {
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

/// Compares both views of `file` (its path as the loader names it; `interp` the program
/// interpreter, always loaded); `None` when they agree.
pub fn differs(file: &str, interp: &str, glibc: &View, model: &View) -> Option<String> {
    let mut why = Vec::new();
    if glibc.bound.contains_key("<stopped>") {
        // glibc stopped at the first file it refused: the model names it among the missing.
        let named: BTreeSet<String> = model.not_found.union(&model.refused).cloned().collect();
        return (!glibc.not_found.is_subset(&named)).then(|| {
            format!(
                "{file}: glibc stopped at {:?}, model misses {:?}",
                glibc.not_found, model.not_found
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
    let loaded: BTreeSet<&String> = glibc.bound.values().chain(&glibc.listed).collect();
    for (name, path) in &model.bound {
        if !loaded.contains(path)
            && path != interp
            && path != file
            && !glibc.bound.contains_key(name)
        {
            why.push(format!(
                "{name}: model binds {path}, glibc loaded no such object"
            ));
        }
    }
    (!why.is_empty()).then(|| format!("{file}: {}", why.join("; ")))
}

/// ELF64 shared objects (ET_DYN) of machine `e_machine` (62 x86-64, 183 aarch64) under `dir`
/// (recursively when `deep`), sorted by name; with `links`, also the symlinks to them (the names
/// programs use: `$ORIGIN` is the link's directory). Loaders (`ld-linux*`) are left out.
pub fn shared_objects(dir: &Path, deep: bool, links: bool, e_machine: u16, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && deep {
            shared_objects(&p, deep, links, e_machine, out);
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
                && u16::from_le_bytes([head[18], head[19]]) == e_machine
                && name.contains(".so")
                && !name.starts_with("ld-linux")
            {
                out.push(p);
            }
        }
    }
}

/// Downloads (once) and unpacks pinned wheels (`name==version`) under `target/<cache>/<name>`,
/// with extra `pip download` arguments (`--platform …` for another architecture's wheels).
pub fn unpacked_wheels(cache: &str, specs: &[&str], pip_args: &[&str]) -> Vec<PathBuf> {
    let cache = repo_root().join("target").join(cache);
    let mut dirs = Vec::new();
    for spec in specs {
        let name = spec.split("==").next().unwrap();
        let dir = cache.join(name);
        if !dir.join(".unpacked").exists() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let st = Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .args(pip_args)
                .arg("-d")
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

/// Copies a directory tree (files hard-linked where possible, symlinks as they are).
pub fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            link_tree(&src, &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            place(&src, &dst);
        }
    }
}

/// How crafted objects are built and named: the C compiler (`gcc`, `aarch64-linux-gnu-gcc`),
/// the directory that is `/` for the loader (files are made under it, paths inside objects are
/// written as the loader sees them), `$PLATFORM` and `$LIB` of its glibc, the capability
/// subdirectories worth a copy, and how to link against zlib.
pub struct Crafting<'a> {
    pub cc: &'a str,
    pub root: &'a Path,
    pub platform: &'a str,
    pub lib: &'a str,
    pub subdirs: &'a [&'a str],
    pub zlib: &'a str,
}

impl Crafting<'_> {
    /// `p` (under the root) as the loader names it.
    pub fn guest(&self, p: &Path) -> String {
        let rel = p.strip_prefix(self.root).expect("a path under the root");
        format!("/{}", rel.display())
    }

    /// Compiles `src` into the shared object `out` (no libc) with extra compiler arguments.
    pub fn cc(&self, out: &Path, src: &str, args: &[&str]) {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let c = out.with_extension("c");
        std::fs::write(&c, src).unwrap();
        let o = Command::new(self.cc)
            .args(["-shared", "-fPIC", "-nostdlib", "-o"])
            .arg(out)
            .arg(&c)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.cc));
        assert!(
            o.status.success(),
            "{}: {}",
            self.cc,
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::remove_file(c).unwrap();
    }

    /// Objects built under `w` for what the system libraries rarely show: a missing symbol
    /// version, a provider without version definitions, an inherited RPATH and a RUNPATH that
    /// stops it, `$LIB` and `$PLATFORM`, capability subdirectories (all in one directory, and
    /// each alone next to a plain copy), `DF_1_NODEFLIB`, a file that is not ELF where the loader
    /// looks, a `$ORIGIN` soname, a dependency that is the same file under two names. Returns
    /// the objects to compare (as paths under the root).
    pub fn crafted(&self, w: &Path) -> Vec<PathBuf> {
        let s = |p: &Path| self.guest(p);
        let cc = |out: &Path, src: &str, args: &[&str]| self.cc(out, src, args);
        std::fs::create_dir_all(w).unwrap();
        let v2 = w.join("v2.map");
        std::fs::write(&v2, "V1 { global: a; local: *; };\nV2 { global: b; } V1;\n").unwrap();
        let v1 = w.join("v1.map");
        std::fs::write(&v1, "V1 { global: a; b; local: *; };\n").unwrap();
        let foo_src = "int a(void){return 1;} int b(void){return 2;}";
        // libfoo with V2, to link against; installed copies with V1 only and with no versions.
        let script = |m: &Path| format!("-Wl,--version-script={}", m.display());
        cc(
            &w.join("build/libfoo.so"),
            foo_src,
            &["-Wl,-soname,libfoo.so", &script(&v2)],
        );
        cc(
            &w.join("v1/libfoo.so"),
            foo_src,
            &["-Wl,-soname,libfoo.so", &script(&v1)],
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
                    &w.join("build/libfoo.so").display().to_string(),
                ],
            );
            out.push(p);
        }
        // RPATH chain: top (RPATH chain/dir) -> mid (no RPATH) -> leaf, found through top's RPATH.
        let local = |p: &Path| p.display().to_string();
        cc(
            &w.join("chain/dir/libleaf.so"),
            "int leaf(void){return 0;}",
            &["-Wl,-soname,libleaf.so"],
        );
        cc(
            &w.join("chain/mid/libmid.so"),
            "extern int leaf(void); int mid(void){return leaf();}",
            &[
                "-Wl,-soname,libmid.so",
                &local(&w.join("chain/dir/libleaf.so")),
            ],
        );
        cc(
            &w.join("chain/runmid/libmid.so"),
            "extern int leaf(void); int mid(void){return leaf();}",
            &[
                "-Wl,-soname,libmid.so",
                "-Wl,--enable-new-dtags,-rpath,/nonexistent",
                &local(&w.join("chain/dir/libleaf.so")),
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
                &[&rp, &local(&w.join("chain/mid/libmid.so"))],
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
        dep(&w.join("dst/lib").join(self.lib));
        dep(&w.join("dst/plat").join(self.platform));
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
                    &local(&w.join("dst/lib").join(self.lib).join("libdst.so")),
                ],
            );
            out.push(p);
        }
        // Capability subdirectories next to a plain copy: all in `caps`, and each alone in
        // `caps-<sub>` (so each is the best match once).
        let dst_user = |p: &Path, dir: &Path| {
            cc(
                p,
                "extern int dst(void); int x(void){return dst();}",
                &[
                    &format!("-Wl,-rpath,{}", s(dir)),
                    &local(&w.join("caps/libdst.so")),
                ],
            )
        };
        let tag = |sub: &str| {
            if sub.is_empty() {
                "plain".to_string()
            } else {
                sub.trim_end_matches('/').replace('/', "_")
            }
        };
        dep(&w.join("caps"));
        for sub in self.subdirs {
            dep(&w.join("caps").join(sub));
            let p = w.join(format!("caps-user/{}.so", tag(sub)));
            dst_user(&p, &w.join("caps"));
            out.push(p);
            let alone = w.join(format!("caps-{}", tag(sub)));
            dep(&alone);
            dep(&alone.join(sub));
            let p = w.join(format!("caps-alone-user/{}.so", tag(sub)));
            dst_user(&p, &alone);
            out.push(p);
        }
        // DF_1_NODEFLIB: zlib only in a default place is not searched.
        let p = w.join("nodeflib/libnodeflib.so");
        cc(
            &p,
            "int z(void){return 0;}",
            &["-Wl,-z,nodefaultlib", "-Wl,--no-as-needed", self.zlib],
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
                &local(&w.join("caps/libdst.so")),
            ],
        );
        out.push(p);
        // A DT_NEEDED with `$ORIGIN` in it (a soname that says so): expanded with its loader's
        // origin.
        cc(
            &w.join("originneed/libo.so"),
            "int o(void){return 0;}",
            &["-Wl,-soname,$ORIGIN/libo.so"],
        );
        let p = w.join("originneed/libuses_o.so");
        cc(
            &p,
            "extern int o(void); int x(void){return o();}",
            &[&local(&w.join("originneed/libo.so"))],
        );
        out.push(p);
        // The same file under two names (a symlink): loaded once, both names bind to it.
        std::fs::create_dir_all(w.join("alias")).unwrap();
        std::os::unix::fs::symlink("../caps/libdst.so", w.join("alias/libdst2.so")).unwrap();
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
                &local(&w.join("caps/libdst.so")),
                &local(&w.join("alias-build/libdst2.so")),
            ],
        );
        out.push(p);
        out
    }
}
