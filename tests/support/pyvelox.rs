//! pyvelox's real Velox build (`libvelox.so` and its bundled libraries) downloaded once, and host
//! trees that place it where an executor image would.

use crate::fixtures::repo_root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// pyvelox's wheel unpacked (`pyvelox/libvelox.so` and its 28 dependencies in `pyvelox.libs/`):
/// a real 270 MB Velox build. Downloaded once into `target/pyvelox-cache` with `pip download`
/// and unpacked with `python3 -m zipfile`; needs network to PyPI the first time.
pub fn pyvelox_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo_root().join("target/pyvelox-cache");
        if dir.join("pyvelox/libvelox.so").exists() {
            return dir;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "pyvelox", "-d"])
            .arg(&dir)
            .status()
            .expect("running python3 -m pip download pyvelox");
        assert!(status.success(), "pip download pyvelox failed");
        let wheel = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .expect("a pyvelox wheel after pip download");
        let status = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&dir)
            .status()
            .expect("running python3 -m zipfile");
        assert!(status.success(), "unzipping {} failed", wheel.display());
        assert!(dir.join("pyvelox/libvelox.so").exists());
        dir
    })
    .clone()
}

/// Copies (or hard-links, when on the same filesystem) `src` to `dst`, creating parents.
pub fn place(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dst.display()));
    }
}

/// A host tree (in a tempdir under target/) holding pyvelox's real `libvelox.so` at the host path
/// `lib`, its bundled libraries at `<dir of lib>/../pyvelox.libs` (where its
/// `RPATH $ORIGIN/../pyvelox.libs` points), this machine's C and C++ runtime libraries under
/// `/lib/x86_64-linux-gnu` (what the loader would find on a real host), and `cpuinfo` as
/// `/proc/cpuinfo`. Assertions about it must be about what was placed, not about this machine.
pub fn pyvelox_tree(lib: &str, cpuinfo: &str) -> (tempfile::TempDir, PathBuf) {
    let src = pyvelox_dir();
    let dir = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let root = dir.path().to_path_buf();
    let lib_local = root.join(lib.trim_start_matches('/'));
    place(&src.join("pyvelox/libvelox.so"), &lib_local);
    let libs = lib_local
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("pyvelox.libs");
    for e in std::fs::read_dir(src.join("pyvelox.libs")).unwrap() {
        let e = e.unwrap();
        place(&e.path(), &libs.join(e.file_name()));
    }
    for name in [
        "libc.so.6",
        "libm.so.6",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libz.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "ld-linux-x86-64.so.2",
    ] {
        let real = std::fs::canonicalize(Path::new("/lib/x86_64-linux-gnu").join(name))
            .unwrap_or_else(|e| panic!("/lib/x86_64-linux-gnu/{name}: {e}"));
        place(&real, &root.join("lib/x86_64-linux-gnu").join(name));
    }
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cpuinfo"), cpuinfo).unwrap();
    (dir, root)
}
