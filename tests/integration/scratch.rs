//! The `scratch` check on the upstream fixture trees, on a crafted tree (golden reports), and on
//! real mounts made here as root: a small tmpfs filled past the thresholds, a read-only bind
//! mount, a noexec mount, an ext4 loop device whose rotational flag we flip.

use gluten_node_tests::*;
use proto::Status;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Mounts and loop devices made by one test, undone on drop (lazily, so a busy mount cannot
/// leave the test hanging), inside a tempdir removed afterwards.
struct Mounts {
    dir: tempfile::TempDir,
    points: Vec<PathBuf>,
    loops: Vec<String>,
}

impl Mounts {
    fn new() -> Self {
        require_root();
        Mounts {
            dir: tempfile::tempdir().unwrap(),
            points: Vec::new(),
            loops: Vec::new(),
        }
    }

    /// A fresh, empty directory `name` in the tempdir.
    fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn mount(&mut self, args: &[&str], point: &Path) {
        let mut a: Vec<&str> = args.to_vec();
        a.push(point.to_str().unwrap());
        sh("mount", &a);
        self.points.push(point.to_path_buf());
    }

    fn tmpfs(&mut self, name: &str, options: &str) -> PathBuf {
        let p = self.mkdir(name);
        self.mount(&["-t", "tmpfs", "-o", options, "tmpfs"], &p);
        p
    }

    /// An ext4 filesystem on a loop device; returns (mount point, loop device name).
    fn loop_ext4(&mut self, name: &str, size: &str) -> (PathBuf, String) {
        assert!(
            have("losetup") && have("mkfs.ext4"),
            "needs util-linux and e2fsprogs"
        );
        let img = self.dir.path().join(format!("{name}.img"));
        sh("truncate", &["-s", size, img.to_str().unwrap()]);
        let dev = sh("losetup", &["-f", "--show", img.to_str().unwrap()]);
        self.loops.push(dev.clone());
        sh("mkfs.ext4", &["-q", "-F", &dev]);
        let p = self.mkdir(name);
        self.mount(&[&dev], &p);
        (p, dev.trim_start_matches("/dev/").to_string())
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for p in self.points.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
        for l in &self.loops {
            let _ = Command::new("losetup").arg("-d").arg(l).status();
        }
    }
}

/// `[scratch]` settings for `dirs` with free-space thresholds that small test mounts can meet.
fn settings(dirs: &[&Path], extra: &str) -> String {
    let list: Vec<String> = dirs
        .iter()
        .map(|d| format!("{:?}", d.to_str().unwrap()))
        .collect();
    format!("dirs = [{}]\nmin_free_bytes = 0\n{extra}", list.join(", "))
}

fn dir_facts(r: &proto::CheckResult, dir: &Path) -> serde_json::Value {
    r.facts["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == dir.to_str().unwrap())
        .unwrap_or_else(|| panic!("no facts for {}: {}", dir.display(), r.facts))
        .clone()
}

fn messages(r: &proto::CheckResult, status: Status) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.status == status)
        .map(|f| f.message.clone())
        .collect()
}

fn fill(dir: &Path, name: &str, bytes: u64) {
    let f = std::fs::File::create(dir.join(name)).unwrap();
    use std::io::Write;
    let mut w = std::io::BufWriter::new(f);
    let chunk = vec![7u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    w.flush().unwrap();
}

#[test]
fn small_tmpfs_filled_past_warn_then_past_fail() {
    let mut m = Mounts::new();
    let dir = m.tmpfs("small", "size=16m");
    let s = settings(&[&dir], "");
    // 16 MiB, 13.5 MiB used: 15.6% available (below 20%, above 5%), room for the 1 MiB probe.
    fill(&dir, "a", 13 * 1024 * 1024 + 512 * 1024);
    let r = run_check(Path::new("/"), "scratch", &s);
    let d = dir_facts(&r, &dir);
    assert_eq!(d["fs_type"], "tmpfs");
    assert_eq!(d["mount_point"], dir.to_str().unwrap());
    assert_eq!(d["total_bytes"], 16 * 1024 * 1024);
    assert_eq!(d["write_probe_ok"], true, "{d}");
    assert_eq!(
        d["rotational"],
        serde_json::Value::Null,
        "tmpfs has no block device"
    );
    assert_eq!(r.status, Status::Warn, "{:?}", r.findings);
    let warns = messages(&r, Status::Warn).join("\n");
    assert!(warns.contains("below warn_free_ratio 20.0%"), "{warns}");
    assert!(warns.contains("is on tmpfs"), "{warns}");

    // 15.5 MiB used: 3% available.
    fill(&dir, "b", 2 * 1024 * 1024);
    let r = run_check(Path::new("/"), "scratch", &s);
    assert_eq!(r.status, Status::Fail);
    let fails = messages(&r, Status::Fail).join("\n");
    assert!(fails.contains("below fail_free_ratio 5.0%"), "{fails}");
    // The 1 MiB probe no longer fits either.
    assert!(fails.contains("No space left on device"), "{fails}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "the probe file was removed"
    );
}

#[test]
fn read_only_bind_mount_fails() {
    let mut m = Mounts::new();
    let src = m.mkdir("src");
    let ro = m.mkdir("ro");
    m.mount(&["--bind", src.to_str().unwrap()], &ro);
    sh("mount", &["-o", "remount,bind,ro", ro.to_str().unwrap()]);
    let r = run_check(
        Path::new("/"),
        "scratch",
        &settings(&[&ro, &src], "warn_free_ratio = 0\nfail_free_ratio = 0"),
    );
    let d = dir_facts(&r, &ro);
    assert_eq!(d["read_only"], true);
    assert_eq!(d["write_probe_ok"], false);
    let fails = messages(&r, Status::Fail).join("\n");
    assert!(
        fails.contains(&format!("{} is on a read-only mount", ro.display())),
        "{fails}"
    );
    assert!(fails.contains("Read-only file system"), "{fails}");
    // The writable source of the bind stays fine.
    let s = dir_facts(&r, &src);
    assert_eq!(s["write_probe_ok"], true);
    assert!(!fails.contains(&format!("{} ", src.display())), "{fails}");
}

#[test]
fn noexec_mount_fails() {
    let mut m = Mounts::new();
    let dir = m.tmpfs("noexec", "size=8m,noexec");
    let r = run_check(Path::new("/"), "scratch", &settings(&[&dir], ""));
    let d = dir_facts(&r, &dir);
    assert_eq!(d["noexec"], true);
    assert_eq!(
        d["write_probe_ok"], true,
        "writable, but no library can be loaded from it"
    );
    assert_eq!(r.status, Status::Fail);
    let fails = messages(&r, Status::Fail).join("\n");
    assert!(
        fails.contains("noexec mount") && fails.contains("dlopen fails"),
        "{fails}"
    );
}

/// On YARN the executors' local dirs are the NodeManager's: a `yarn-site.xml` naming a dir on a
/// noexec mount fails, and the finding says why Gluten dies there.
#[test]
fn yarn_local_dirs_from_yarn_site_are_checked() {
    let mut m = Mounts::new();
    let dir = m.tmpfs("yarn-local", "size=8m,noexec");
    let site = m.dir.path().join("yarn-site.xml");
    std::fs::write(
        &site,
        format!(
            "<?xml version=\"1.0\"?>\n<configuration>\n  <property>\n    \
             <name>yarn.nodemanager.local-dirs</name>\n    <value>file://{}</value>\n  \
             </property>\n</configuration>\n",
            dir.display()
        ),
    )
    .unwrap();
    // No `dirs`: the dirs come from spark.local.dir (none here) and the yarn-site.
    let r = run_with_spark_conf(
        &m,
        "spark.executor.memory 1g\n",
        "",
        &format!(
            "min_free_bytes = 0\nyarn_site = {:?}\n",
            site.to_str().unwrap()
        ),
    );
    let d = dir_facts(&r, &dir);
    assert_eq!(d["noexec"], true);
    assert!(
        r.facts["dirs_source"]
            .as_str()
            .unwrap()
            .starts_with("yarn.nodemanager.local-dirs in "),
        "{}",
        r.facts
    );
    assert_eq!(r.status, Status::Fail);
    let fails = messages(&r, Status::Fail).join("\n");
    assert!(
        fails.contains("noexec mount")
            && fails.contains("libvelox.so")
            && fails.contains("failed to map segment from shared object"),
        "{fails}"
    );
}

#[test]
fn loop_ext4_reports_its_disk_and_follows_the_rotational_flag() {
    let mut m = Mounts::new();
    let (dir, name) = m.loop_ext4("ext4", "64M");
    let rot = PathBuf::from(format!("/sys/block/{name}/queue/rotational"));
    let s = settings(&[&dir], "warn_free_ratio = 0\nfail_free_ratio = 0");

    std::fs::write(&rot, "0").unwrap();
    let r = run_check(Path::new("/"), "scratch", &s);
    let d = dir_facts(&r, &dir);
    assert_eq!(d["fs_type"], "ext4");
    assert_eq!(d["disk"], name.as_str());
    assert_eq!(d["nvme"], false);
    assert_eq!(d["partition"], false);
    assert_eq!(d["disk_size_bytes"], 64 * 1024 * 1024);
    assert_eq!(d["rotational"], false);
    assert_eq!(d["write_probe_ok"], true);
    assert_eq!(r.status, Status::Ok, "{:?}", r.findings);

    std::fs::write(&rot, "1").unwrap();
    let r = run_check(Path::new("/"), "scratch", &s);
    assert_eq!(dir_facts(&r, &dir)["rotational"], true);
    assert_eq!(r.status, Status::Warn, "{:?}", r.findings);
    let warns = messages(&r, Status::Warn).join("\n");
    assert!(
        warns.contains(&format!("rotational disk ({name})")),
        "{warns}"
    );
}

#[test]
fn two_dirs_on_one_filesystem_warn_and_leftovers_are_counted() {
    let mut m = Mounts::new();
    let (dir, _) = m.loop_ext4("shared", "32M");
    std::fs::create_dir_all(dir.join("a/gluten-dead/jni")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(dir.join("a/gluten-dead/jni/libvelox.so"), vec![1u8; 65536]).unwrap();
    // Old enough: back-date everything by two days.
    sh(
        "touch",
        &[
            "-d",
            "2 days ago",
            dir.join("a/gluten-dead/jni/libvelox.so").to_str().unwrap(),
        ],
    );
    sh(
        "touch",
        &[
            "-d",
            "2 days ago",
            dir.join("a/gluten-dead/jni").to_str().unwrap(),
        ],
    );
    sh(
        "touch",
        &[
            "-d",
            "2 days ago",
            dir.join("a/gluten-dead").to_str().unwrap(),
        ],
    );
    let (a, b) = (dir.join("a"), dir.join("b"));
    let s = settings(
        &[&a, &b],
        "warn_free_ratio = 0\nfail_free_ratio = 0\nleftover_warn_bytes = 1024",
    );
    let r = run_check(Path::new("/"), "scratch", &s);
    let warns = messages(&r, Status::Warn).join("\n");
    assert!(
        warns.contains(&format!(
            "{} and {} are on the same device",
            a.display(),
            b.display()
        )),
        "{warns}"
    );
    let d = dir_facts(&r, &a);
    assert_eq!(d["leftover_count"], 1);
    assert_eq!(d["leftovers"], serde_json::json!(["gluten-dead"]));
    assert!(d["leftover_bytes"].as_u64().unwrap() >= 65536);
    assert!(warns.contains("leftover(s) of killed executors"), "{warns}");
}

/// Runs the check on an upstream tree with the defaults: `/tmp` does not exist there.
fn upstream_golden(tree: &str) {
    let root = upstream(tree);
    let golden = format!("scratch-{}", tree.replace('/', "-"));
    let r = run_check_golden(&root, "scratch", "", &golden);
    assert_eq!(r.status, Status::Fail);
}

#[test]
fn golden_node_exporter_upstream() {
    upstream_golden("node-exporter-upstream");
}

#[test]
fn golden_procfs_upstream() {
    upstream_golden("procfs-upstream");
}

#[test]
fn golden_bindmount_variant() {
    upstream_golden("node-exporter-upstream-variants/bindmount");
}

/// A crafted host: mountinfo with an NVMe partition, a SATA disk, ro, noexec and tmpfs mounts,
/// sysfs with the `/sys/dev/block` links a kernel has (pointing into copies of the upstream
/// NVMe files), and the dirs themselves.
fn crafted_tree(root: &Path) {
    let mountinfo = "\
21 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n\
40 21 259:1 / /data/nvme rw,relatime shared:2 - xfs /dev/nvme0n1p1 rw,attr2,inode64\n\
41 21 8:16 / /data/hdd rw,relatime shared:3 - ext4 /dev/sdb rw\n\
42 21 259:1 /ro /data/ro ro,relatime shared:4 - xfs /dev/nvme0n1p1 rw\n\
43 21 0:50 / /data/noexec\\040dir rw,nosuid,nodev,noexec shared:5 - tmpfs tmpfs rw,size=1024k\n";
    std::fs::create_dir_all(root.join("proc/1")).unwrap();
    std::fs::write(root.join("proc/1/mountinfo"), mountinfo).unwrap();
    for d in [
        "data/nvme/spark",
        "data/nvme/other",
        "data/hdd",
        "data/ro",
        "data/noexec dir",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("data/hdd/not-a-dir"), b"x").unwrap();
    // The NVMe controller and namespace, copied from node-exporter-upstream.
    let up = upstream(
        "node-exporter-upstream/sys/devices/pci0000:00/0000:00:02.1/0000:01:00.0/nvme/nvme0",
    );
    let ctrl = root.join("sys/devices/pci0000:00/0000:00:02.1/0000:01:00.0/nvme/nvme0");
    for f in [
        "model",
        "nvme0n1/size",
        "nvme0n1/queue/rotational",
        "nvme0n1/nvme0n1p1/partition",
        "nvme0n1/nvme0n1p1/size",
    ] {
        std::fs::create_dir_all(ctrl.join(f).parent().unwrap()).unwrap();
        std::fs::copy(up.join(f), ctrl.join(f)).unwrap();
    }
    // sdb: a SATA disk that says it spins (procfs-upstream's sda has rotational 1 too).
    let sdb = root.join("sys/devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0");
    std::fs::create_dir_all(sdb.join("block/sdb/queue")).unwrap();
    std::fs::write(sdb.join("model"), "ST4000DM004-2CV1\n").unwrap();
    std::fs::write(sdb.join("block/sdb/size"), "7814037168\n").unwrap();
    std::fs::write(sdb.join("block/sdb/queue/rotational"), "1\n").unwrap();
    symlink("../../../1:0:0:0", sdb.join("block/sdb/device")).unwrap();
    std::fs::create_dir_all(root.join("sys/dev/block")).unwrap();
    symlink(
        "../../devices/pci0000:00/0000:00:02.1/0000:01:00.0/nvme/nvme0/nvme0n1/nvme0n1p1",
        root.join("sys/dev/block/259:1"),
    )
    .unwrap();
    symlink(
        "../../devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0/block/sdb",
        root.join("sys/dev/block/8:16"),
    )
    .unwrap();
}

#[test]
fn golden_crafted_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crafted_tree(root);
    let s = "dirs = [\"/data/nvme/spark\", \"/data/nvme/other\", \"/data/hdd\", \"/data/ro\", \
             \"/data/noexec dir\", \"/data/hdd/not-a-dir\", \"/data/missing\"]\n\
             warn_free_ratio = 0\nfail_free_ratio = 0\nmin_free_bytes = 0\nmin_free_inodes_ratio = 0\n";
    let r = run_check(root, "scratch", s);
    let mut v = normalize(serde_json::to_value(&r).unwrap(), root);
    // statvfs and the write probe act on the tempdir's real filesystem: mask what it measures.
    for d in v["facts"]["dirs"].as_array_mut().unwrap() {
        for k in [
            "total_bytes",
            "free_bytes",
            "avail_bytes",
            "total_inodes",
            "free_inodes",
        ] {
            if !d[k].is_null() {
                d[k] = "<this machine>".into();
            }
        }
    }
    assert_golden("scratch-crafted", &v);
}

/// Runs `scratch` alone on `/` with `[memory]` (disabled) pointing at a `spark-defaults.conf`.
fn run_with_spark_conf(m: &Mounts, conf: &str, memory: &str, scratch: &str) -> proto::CheckResult {
    let path = m.dir.path().join("spark-defaults.conf");
    std::fs::write(&path, conf).unwrap();
    let mut text = String::new();
    for other in checks::NAMES {
        if other != "scratch" && other != "memory" {
            text.push_str(&format!("[{other}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!(
        "[memory]\nenabled = false\nspark_defaults = {:?}\n{memory}\n[scratch]\n{scratch}\n",
        path.to_str().unwrap()
    ));
    let c = config(Path::new("/"), &text);
    let s = round(&c, "x86_64");
    s.report.checks.into_iter().next().expect("the check ran")
}

#[test]
fn velox_ssd_cache_larger_than_its_tmpfs_fails_and_o_direct_on_tmpfs_fails() {
    let mut m = Mounts::new();
    let cache = m.tmpfs("ssdcache", "size=16m");
    let scratch = m.mkdir("scratch");
    let s = settings(
        &[&scratch],
        "warn_free_ratio = 0.0\nfail_free_ratio = 0.0\nmin_free_inodes_ratio = 0.0\n",
    );
    let conf = |extra: &str| {
        format!(
            "spark.local.dir /nowhere\n\
             spark.gluten.sql.columnar.backend.velox.cacheEnabled true\n\
             spark.gluten.sql.columnar.backend.velox.ssdCacheSize 10m\n\
             spark.gluten.sql.columnar.backend.velox.ssdCachePath {}\n{extra}",
            cache.display()
        )
    };
    // 2 executors x 10 MiB = 20 MiB needed on a 16 MiB tmpfs.
    let r = run_with_spark_conf(&m, &conf(""), "executors_per_node = 2", &s);
    let c = &r.facts["ssd_cache"];
    assert_eq!(c["path"], cache.to_str().unwrap(), "{c}");
    assert_eq!(c["size_bytes"], 10 * 1024 * 1024);
    assert_eq!(c["required_bytes"], 20 * 1024 * 1024);
    assert_eq!(c["avail_bytes"], 16 * 1024 * 1024);
    assert_eq!(c["o_direct"], false);
    assert_eq!(c["fs_type"], "tmpfs");
    assert_eq!(r.status, Status::Fail, "{:?}", r.findings);
    let fails = messages(&r, Status::Fail).join("\n");
    assert!(
        fails.contains("16.0 MiB (16777216 bytes) available")
            && fails.contains("= 20.0 MiB (20971520 bytes)")
            && fails.contains("Velox init aborts: not enough space for ssd cache"),
        "{fails}"
    );
    // The cache path is not a scratch dir: it has no entry of its own there.
    assert_eq!(r.facts["dirs"].as_array().unwrap().len(), 1);

    // One executor fits; O_DIRECT on tmpfs does not.
    let r = run_with_spark_conf(&m, &conf(""), "executors_per_node = 1", &s);
    assert!(messages(&r, Status::Fail).is_empty(), "{:?}", r.findings);
    let r = run_with_spark_conf(
        &m,
        &conf("spark.gluten.sql.columnar.backend.velox.ssdODirect true\n"),
        "executors_per_node = 1",
        &s,
    );
    let fails = messages(&r, Status::Fail).join("\n");
    assert!(fails.contains("tmpfs has no O_DIRECT"), "{fails}");
    assert_eq!(r.facts["ssd_cache"]["o_direct"], true);
}
