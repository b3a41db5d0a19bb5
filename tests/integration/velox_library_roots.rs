//! `executor_root`: the library is judged against the executor's filesystem (its libc, its
//! libstdc++, its loader), the CPU against the host's. Roots are built here: a host whose fake
//! libc and libstdc++ define up to GLIBC_2.28 / GLIBCXX_3.4.21, an executor root whose copies
//! stop at GLIBC_2.17 / GLIBCXX_3.4.19 (version scripts), and a root of real Debian libraries.

use checks::check::{Check, Runner};
use checks::host::Host;
use checks::velox_library::{Settings, VeloxLibrary};
use gluten_node_tests::*;
use proto::Status;
use std::path::{Path, PathBuf};
use std::process::Command;

const FLAGS: &str = "fpu sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2 abm";

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

/// A fake `soname` under `root/lib/x86_64-linux-gnu` defining `syms` in the version nodes of
/// `script`.
fn fake_lib(root: &Path, soname: &str, script: &str, syms: &[&str]) -> PathBuf {
    let out = root.join("lib/x86_64-linux-gnu").join(soname);
    let map = root.join(format!("{soname}.map"));
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(&map, script).unwrap();
    let src: String = syms
        .iter()
        .map(|s| format!("int {s}(void){{return 0;}}\n"))
        .collect();
    cc(
        &out,
        &src,
        &[
            &format!("-Wl,-soname,{soname}"),
            &format!("-Wl,--version-script={}", map.display()),
        ],
    );
    std::fs::remove_file(map).unwrap();
    out
}

struct Roots {
    _dir: tempfile::TempDir,
    host: PathBuf,
    old: PathBuf,
}

/// The host root (new libc and libstdc++, the library, cpuinfo) and an old executor root (the
/// same library, mounted from the host, and old libc and libstdc++; no /proc).
fn roots() -> Roots {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    let old = dir.path().join("executor");
    let libc = fake_lib(
        &host,
        "libc.so.6",
        "GLIBC_2.17 { global: old_fn; local: *; };\nGLIBC_2.28 { global: new_fn; } GLIBC_2.17;\n",
        &["old_fn", "new_fn"],
    );
    let cxx = fake_lib(
        &host,
        "libstdc++.so.6",
        "GLIBCXX_3.4.19 { global: cxx_old; local: *; };\nGLIBCXX_3.4.21 { global: cxx_new; } GLIBCXX_3.4.19;\n",
        &["cxx_old", "cxx_new"],
    );
    fake_lib(
        &old,
        "libc.so.6",
        "GLIBC_2.17 { global: old_fn; new_fn; local: *; };\n",
        &["old_fn", "new_fn"],
    );
    fake_lib(
        &old,
        "libstdc++.so.6",
        "GLIBCXX_3.4.19 { global: cxx_old; cxx_new; local: *; };\n",
        &["cxx_old", "cxx_new"],
    );
    let velox = host.join("opt/gluten/lib/libvelox.so");
    cc(
        &velox,
        "extern int new_fn(void); extern int cxx_new(void); int v(void){return new_fn()+cxx_new();}",
        &[
            "-Wl,-soname,libvelox.so",
            libc.to_str().unwrap(),
            cxx.to_str().unwrap(),
        ],
    );
    place(&velox, &old.join("opt/gluten/lib/libvelox.so"));
    std::fs::create_dir_all(host.join("proc")).unwrap();
    std::fs::write(
        host.join("proc/cpuinfo"),
        format!("processor\t: 0\nflags\t\t: {FLAGS}\n"),
    )
    .unwrap();
    Roots {
        _dir: dir,
        host,
        old,
    }
}

fn run(host: &Path, executor_root: Option<&Path>) -> checks::check::Outcome {
    let c = Runner::<VeloxLibrary>::new(Settings {
        paths: vec!["/opt/gluten/lib/libvelox.so".into()],
        executor_root: executor_root.map(Path::to_path_buf),
        ..Settings::default()
    });
    c.run(&Host::new(host).with_arch("x86_64")).unwrap()
}

#[test]
fn an_old_executor_root_fails_naming_both_versions_while_the_host_passes() {
    let r = roots();
    let o = run(&r.host, None);
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert!(
        o.summary()
            .contains("needs GLIBC_2.28 (host defines up to 2.28)"),
        "{}",
        o.summary()
    );

    let o = run(&r.host, Some(&r.old));
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    let root = r.old.display();
    for expect in [
        format!(
            "libvelox.so needs GLIBC_2.28 from libc.so.6, but /lib/x86_64-linux-gnu/libc.so.6 in the executor root {root} defines up to GLIBC_2.17"
        ),
        format!(
            "libvelox.so needs GLIBCXX_3.4.21 from libstdc++.so.6, but /lib/x86_64-linux-gnu/libstdc++.so.6 in the executor root {root} defines up to GLIBCXX_3.4.19"
        ),
    ] {
        assert!(o.summary().contains(&expect), "{}", o.summary());
    }
    // The libc compared is the executor's; the CPU flags are the host's (the executor root
    // has no /proc).
    assert_eq!(o.facts["executor_root"], root.to_string());
    assert_eq!(o.facts["host_glibc_version"], "2.17");
    assert_eq!(o.facts["host_glibcxx_version"], "GLIBCXX_3.4.19");
    assert!(o.facts["cpu_flags"].is_array(), "{}", o.facts);
}

#[test]
fn an_executor_root_of_real_debian_libraries_passes_and_its_loader_is_read() {
    let r = roots();
    let deb = r.old.parent().unwrap().join("debian");
    for name in [
        "libc.so.6",
        "libm.so.6",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
    ] {
        let real = std::fs::canonicalize(Path::new("/lib/x86_64-linux-gnu").join(name))
            .unwrap_or_else(|e| panic!("/lib/x86_64-linux-gnu/{name}: {e}"));
        place(&real, &deb.join("lib/x86_64-linux-gnu").join(name));
    }
    std::fs::create_dir_all(deb.join("lib64")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        deb.join("lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    place(
        &r.host.join("opt/gluten/lib/libvelox.so"),
        &deb.join("opt/gluten/lib/libvelox.so"),
    );
    let o = run(&r.host, Some(&deb));
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert_eq!(o.facts["loader"]["default_dirs_source"], "ld.so");
    assert!(o.facts["loader"]["glibc_release"].is_string());
    assert_eq!(
        o.facts["libraries"][0]["resolved"]["libc.so.6"],
        "/lib/x86_64-linux-gnu/libc.so.6"
    );
}

#[test]
fn an_executor_root_that_is_not_a_directory_is_unknown_and_the_flag_sets_the_key() {
    let r = roots();
    let c = Runner::<VeloxLibrary>::new(Settings {
        executor_root: Some(r.host.join("nope")),
        ..Settings::default()
    });
    let e = c.run(&Host::new(&r.host)).unwrap_err().to_string();
    assert!(e.contains("executor_root") && e.contains("nope"), "{e}");

    let o = Command::new(agent_bin())
        .args(["check", "--output", "json", "--host-root"])
        .arg(&r.host)
        .arg("--executor-root")
        .arg(&r.old)
        .args([
            "--set",
            "velox_library.paths=[\"/opt/gluten/lib/libvelox.so\"]",
        ])
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let v = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "velox_library")
        .unwrap();
    assert_eq!(v["facts"]["executor_root"], r.old.display().to_string());
    assert_eq!(v["status"], "fail");
}

/// The check on the host tree with `spark_defaults` at /opt/spark/conf/spark-defaults.conf.
fn run_with_spark(host: &Path, conf: &str, settings: Settings) -> checks::check::Outcome {
    std::fs::create_dir_all(host.join("opt/spark/conf")).unwrap();
    std::fs::write(host.join("opt/spark/conf/spark-defaults.conf"), conf).unwrap();
    let c = Runner::<VeloxLibrary>::build(
        settings,
        checks::check::Shared {
            spark_defaults: Some("/opt/spark/conf/spark-defaults.conf".into()),
            executors_per_node: 1,
            ..Default::default()
        },
    );
    c.run(&Host::new(host).with_arch("x86_64")).unwrap()
}

fn velox_only() -> Settings {
    Settings {
        paths: vec!["/opt/gluten/lib/libvelox.so".into()],
        ..Settings::default()
    }
}

#[test]
fn ld_preload_and_ld_library_path_from_spark_defaults() {
    let r = roots();
    // A preload that does not exist: a warning naming the key (ld.so only warns).
    let o = run_with_spark(
        &r.host,
        "spark.executorEnv.LD_PRELOAD /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n",
        velox_only(),
    );
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary().contains(
            "spark.executorEnv.LD_PRELOAD: /usr/lib/x86_64-linux-gnu/libjemalloc.so.2: no such file"
        ),
        "{}",
        o.summary()
    );
    // It exists but needs a library found only through spark.executorEnv.LD_LIBRARY_PATH.
    cc(
        &r.host.join("opt/extra/libextra.so"),
        "int extra(void){return 0;}",
        &["-Wl,-soname,libextra.so"],
    );
    cc(
        &r.host.join("usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
        "extern int extra(void); int je(void){return extra();}",
        &[
            "-Wl,-soname,libjemalloc.so.2",
            r.host.join("opt/extra/libextra.so").to_str().unwrap(),
        ],
    );
    let o = run_with_spark(
        &r.host,
        "spark.executorEnv.LD_PRELOAD libjemalloc.so.2\n",
        velox_only(),
    );
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary()
            .contains("libjemalloc.so.2: libextra.so not found"),
        "{}",
        o.summary()
    );
    let o = run_with_spark(
        &r.host,
        "spark.executorEnv.LD_PRELOAD libjemalloc.so.2\nspark.executorEnv.LD_LIBRARY_PATH /opt/extra\n",
        velox_only(),
    );
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    let pre = o.facts["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "preload")
        .unwrap()
        .clone();
    assert_eq!(pre["path"], "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
    assert_eq!(pre["resolved"]["libextra.so"], "/opt/extra/libextra.so");
}

#[test]
fn hdfs_needs_libhdfs3_or_libhdfs_with_libjvm() {
    let r = roots();
    let conf = "spark.sql.warehouse.dir hdfs://nn:8020/warehouse\nspark.executorEnv.HADOOP_HOME /opt/hadoop\n";
    let o = run_with_spark(&r.host, conf, velox_only());
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary()
            .contains("spark.sql.warehouse.dir in spark_defaults names hdfs://")
            && o.summary()
                .contains("/opt/hadoop/lib/native/libhdfs.so does not exist")
            && o.summary().contains("apache/gluten#9258"),
        "{}",
        o.summary()
    );
    // libhdfs.so without JAVA_HOME: still a failure, now about libjvm.so.
    cc(
        &r.host.join("opt/hadoop/lib/native/libhdfs.so"),
        "int hdfs(void){return 0;}",
        &[],
    );
    let o = run_with_spark(&r.host, conf, velox_only());
    assert!(
        o.summary()
            .contains("needs libjvm.so but JAVA_HOME is not set"),
        "{}",
        o.summary()
    );
    // With libjvm.so under java_home: ok.
    cc(
        &r.host.join("opt/java/lib/server/libjvm.so"),
        "int jvm(void){return 0;}",
        &[],
    );
    let o = run_with_spark(
        &r.host,
        conf,
        Settings {
            java_home: Some("/opt/java".into()),
            ..velox_only()
        },
    );
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert_eq!(
        o.facts["executor_files"]["hdfs"]["libjvm"],
        "/opt/java/lib/server/libjvm.so"
    );
}

#[test]
fn an_rpath_dir_a_non_root_user_could_create_warns() {
    use std::os::unix::fs::PermissionsExt;
    let r = roots();
    let velox = r.host.join("opt/gluten/lib/libvelox.so");
    cc(
        &velox,
        "int v(void){return 0;}",
        &[
            "-Wl,-soname,libvelox.so",
            "-Wl,--disable-new-dtags,-rpath,/workspace/build/releases:/scratch/build",
        ],
    );
    std::fs::create_dir_all(r.host.join("scratch")).unwrap();
    std::fs::set_permissions(
        r.host.join("scratch"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    let o = run(&r.host, None);
    assert_eq!(o.status(), Status::Warn, "{}", o.summary());
    assert!(
        o.summary().contains(
            "libvelox.so: RPATH/RUNPATH dir /scratch/build does not exist in the host root and a non-root user can create it (/scratch is writable by others)"
        ),
        "{}",
        o.summary()
    );
    let info = o
        .findings
        .iter()
        .find(|f| f.message.contains("/workspace/build/releases"))
        .unwrap();
    assert_eq!(info.status, Status::Ok, "{}", info.message);
}

#[test]
fn the_roots_glibc_decides_hwcaps_subdirs_and_default_dirs() {
    let r = roots();
    // An RHEL-like executor root: libc in /lib64, a dependency only in a glibc-hwcaps subdir.
    let e = r.old.parent().unwrap().join("rhel");
    let libc = fake_lib(
        &e,
        "libc.so.6",
        "GLIBC_2.17 { global: old_fn; new_fn; local: *; };\n",
        &["old_fn", "new_fn"],
    );
    std::fs::create_dir_all(e.join("lib64/glibc-hwcaps/x86-64-v2")).unwrap();
    std::fs::rename(&libc, e.join("lib64/libc.so.6")).unwrap();
    cc(
        &e.join("lib64/glibc-hwcaps/x86-64-v2/libdep.so"),
        "int dep(void){return 0;}",
        &["-Wl,-soname,libdep.so"],
    );
    cc(
        &e.join("opt/gluten/lib/libvelox.so"),
        "extern int dep(void); int v(void){return dep();}",
        &[
            "-Wl,-soname,libvelox.so",
            e.join("lib64/glibc-hwcaps/x86-64-v2/libdep.so")
                .to_str()
                .unwrap(),
        ],
    );
    // The host CPU is x86-64-v2.
    std::fs::write(
        r.host.join("proc/cpuinfo"),
        "processor\t: 0\nflags\t\t: cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3\n",
    )
    .unwrap();
    let loader = |release: &str| {
        std::fs::write(
            e.join("lib64/ld-linux-x86-64.so.2"),
            format!("ld.so (GNU libc) stable release version {release}.\0/lib64/\0/usr/lib64/\0"),
        )
        .unwrap();
        let c = Runner::<VeloxLibrary>::new(Settings {
            paths: vec!["/opt/gluten/lib/libvelox.so".into()],
            required_cpu_flags: Some(vec![]),
            executor_root: Some(e.clone()),
            ..Settings::default()
        });
        c.run(&Host::new(&r.host).with_arch("x86_64")).unwrap()
    };
    // glibc 2.17 has no glibc-hwcaps: the dependency is not found.
    let o = loader("2.17");
    assert_eq!(o.status(), Status::Fail, "{}", o.summary());
    assert!(
        o.summary().contains("libdep.so not found"),
        "{}",
        o.summary()
    );
    assert_eq!(
        o.facts["loader"]["default_dirs"],
        serde_json::json!(["/lib64/", "/usr/lib64/"])
    );
    assert_eq!(o.facts["loader"]["lib"], "lib64");
    // glibc 2.34 searches glibc-hwcaps/x86-64-v2 on this CPU: found there.
    let o = loader("2.34");
    assert_eq!(o.status(), Status::Ok, "{}", o.summary());
    assert_eq!(
        o.facts["libraries"][0]["resolved"]["libdep.so"],
        "/lib64/glibc-hwcaps/x86-64-v2/libdep.so"
    );
    assert_eq!(o.facts["loader"]["glibc_release"], "2.34");
}
