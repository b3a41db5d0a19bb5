//! The release artifacts for real: `docker/release.sh` builds them (static musl binaries in
//! `.tar.gz` archives, a `.deb` and an `.rpm` per architecture, `SHA256SUMS`); lintian and
//! rpmlint judge the packages; the amd64 `.deb` is installed with dpkg into a Debian 12 root made
//! by `debootstrap --variant=minbase --include=systemd,adduser bookworm` (cached per machine as a
//! tarball), where its units pass `systemd-analyze verify`, `gluten-node-agent check` runs as the
//! package's user, a changed conffile survives a reinstall and purge removes it; the `.rpm`'s
//! files, config flags, scripts and requirements are read back with rpm.
//!
//! They need root (chroot, mounts), lintian, rpm, rpmlint and debootstrap (`.ci/deps`), the
//! network the first time (debootstrap) and release builds (minutes), so they are `#[ignore]`d in
//! a plain `cargo test` and run by `.ci/run` (`cargo test ... packages -- --ignored`). When run,
//! nothing is skipped: a missing tool is a failure.

use gluten_node_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Where release.sh leaves the artifacts.
fn artifacts() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = repo_root().join("target/release-artifacts");
        let run = Command::new(repo_root().join("docker/release.sh"))
            .env("RELEASE_DIR", &out)
            .output()
            .unwrap();
        assert!(run.status.success(), "docker/release.sh: {}", text(&run));
        out
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a program; its stdout when it succeeds, else a failure naming the command.
fn ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not start ({e}); .ci/deps installs it"));
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The minor version of the Rust compiler on PATH (`rustc 1.95.0 (...)` gives 95).
fn rustc_minor() -> u32 {
    let v = ok("rustc", &["-V"]);
    v.split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("rustc -V: {v}"))
}

/// The artifacts whose names end with `suffix`, by name.
fn named(suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(artifacts())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// The architectures release.sh must have built here: x86_64 always, aarch64 where the
/// repository sets up its cross linker.
fn expected_arches() -> Vec<&'static str> {
    let config =
        std::fs::read_to_string(repo_root().join(".cargo/config.toml")).unwrap_or_default();
    if config.contains("[target.aarch64-unknown-linux-musl]") {
        vec!["x86_64", "aarch64"]
    } else {
        vec!["x86_64"]
    }
}

fn one(suffix: &str) -> PathBuf {
    let found = named(suffix);
    assert_eq!(found.len(), 1, "one artifact ending {suffix}: {found:?}");
    found.into_iter().next().unwrap()
}

#[test]
#[ignore = "release builds and packaging tools; run by .ci/run"]
fn sums_cover_every_artifact_and_match() {
    let dir = artifacts();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    present.sort();
    assert_eq!(listed, present, "SHA256SUMS lists exactly the artifacts");
    // Three artifacts per architecture.
    assert_eq!(present.len(), 3 * expected_arches().len(), "{present:?}");
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum --check: {}",
        text(&check)
    );
}

#[test]
#[ignore = "release builds and packaging tools; run by .ci/run"]
fn archives_hold_a_static_binary_the_units_and_example_configs() {
    for arch in expected_arches() {
        let archive = one(&format!("-linux-{arch}.tar.gz"));
        let name = archive
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".tar.gz");
        let listing = ok("tar", &["-tzvf", archive.to_str().unwrap()]);
        for file in [
            "bin/gluten-node-agent",
            "systemd/gluten-node-agent.service",
            "systemd/gluten-node-aggregator.service",
            "systemd/sysusers.d/gluten-node-agent.conf",
            "examples/agent.toml",
            "examples/gluten-node-agent.default",
            "INSTALL",
        ] {
            assert!(
                listing
                    .lines()
                    .any(|l| l.ends_with(&format!(" {name}/{file}"))),
                "{}: no {name}/{file} in\n{listing}",
                archive.display()
            );
        }
        assert!(
            listing
                .lines()
                .all(|l| l.contains(" root/root ") || l.contains(" 0/0 ")),
            "{}: every entry owned by root\n{listing}",
            archive.display()
        );

        let dir = tempfile::tempdir().unwrap();
        ok(
            "tar",
            &[
                "-xzf",
                archive.to_str().unwrap(),
                "-C",
                dir.path().to_str().unwrap(),
            ],
        );
        let top = dir.path().join(name);
        let bin = top.join("bin/gluten-node-agent");
        let headers = ok("readelf", &["-lhW", bin.to_str().unwrap()]);
        assert!(
            !headers.contains("INTERP"),
            "{}: dynamically linked",
            bin.display()
        );
        // A static-pie binary has its relative relocations packed (the binary's build script):
        // a few KiB read at start instead of a 250 KiB table that stays resident. Rust bundles a
        // musl that applies them from 1.93 on; the run below proves the binary relocates itself.
        // (A static binary that is not position-independent has no relocations to pack.)
        let dynamic = ok("readelf", &["-dW", bin.to_str().unwrap()]);
        if rustc_minor() >= 93 && !dynamic.contains("no dynamic section") {
            assert!(
                dynamic.contains("(RELR)"),
                "{}: relative relocations not packed\n{dynamic}",
                bin.display()
            );
        }
        let machine = if arch == "x86_64" {
            "X86-64"
        } else {
            "AArch64"
        };
        assert!(
            headers.contains(machine),
            "{}: not {machine}\n{headers}",
            bin.display()
        );
        // The archive's units run the binary where INSTALL puts it.
        let unit = std::fs::read_to_string(top.join("systemd/gluten-node-agent.service")).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/local/bin/gluten-node-agent run "),
            "{unit}"
        );
        // The shipped example config is the one the unit's ExecStartPre accepts; the aarch64
        // binary runs under qemu-user (.ci/deps installs qemu-user-static).
        let config = top.join("examples/agent.toml");
        let (program, mut args) = if arch == "x86_64" {
            (bin.to_str().unwrap().to_owned(), vec![])
        } else {
            (
                "qemu-aarch64-static".to_owned(),
                vec![bin.to_str().unwrap()],
            )
        };
        args.extend([
            "run",
            "--check-config",
            "--config",
            config.to_str().unwrap(),
        ]);
        ok(&program, &args);
    }
}

/// Lintian's verdict with no error and no warning; the overrides the package ships carry their
/// reasons (usr/share/lintian/overrides/gluten-node-agent).
#[test]
#[ignore = "release builds and packaging tools; run by .ci/run"]
fn debs_pass_lintian() {
    let debs = named(".deb");
    assert_eq!(debs.len(), expected_arches().len(), "{debs:?}");
    for deb in debs {
        let out = Command::new("lintian")
            .args(["--fail-on", "error,warning", "--tag-display-limit", "0"])
            .arg(&deb)
            .output()
            .expect("lintian could not start; .ci/deps installs it");
        assert!(
            out.status.success(),
            "lintian {}: {}",
            deb.display(),
            text(&out)
        );
    }
}

/// rpmlint with no error (its warnings are printed); what it cannot know is filtered, with the
/// reason, in systemd/rpm/rpmlint.toml.
#[test]
#[ignore = "release builds and packaging tools; run by .ci/run"]
fn rpms_pass_rpmlint() {
    let rpms = named(".rpm");
    assert_eq!(rpms.len(), expected_arches().len(), "{rpms:?}");
    let config = repo_root().join("systemd/rpm/rpmlint.toml");
    for rpm in rpms {
        let out = Command::new("rpmlint")
            .arg("--config")
            .arg(&config)
            .arg(&rpm)
            .output()
            .expect("rpmlint could not start; .ci/deps installs it");
        let said = text(&out);
        eprintln!("rpmlint {}:\n{said}", rpm.display());
        assert!(out.status.success(), "rpmlint {}: {said}", rpm.display());
        assert!(
            said.contains(" 0 errors"),
            "rpmlint {}: {said}",
            rpm.display()
        );
    }
}

#[test]
#[ignore = "release builds and packaging tools; run by .ci/run"]
fn rpms_install_the_files_config_scripts_and_nothing_newer_than_el8_needs() {
    for arch in expected_arches() {
        let rpm = one(&format!(".{arch}.rpm"));
        let path = rpm.to_str().unwrap();
        let files = ok("rpm", &["-qpl", path]);
        let mut files: Vec<&str> = files.lines().collect();
        files.sort();
        assert_eq!(
            files,
            [
                "/etc/default/gluten-node-agent",
                "/etc/gluten-node-agent/agent.toml",
                "/usr/bin/gluten-node-agent",
                "/usr/lib/systemd/system/gluten-node-agent.service",
                "/usr/lib/systemd/system/gluten-node-aggregator.service",
                "/usr/lib/sysusers.d/gluten-node-agent.conf",
            ],
            "{path}"
        );
        // Config files kept on upgrade: %config(noreplace) shows as the flags "cn".
        let flags = ok(
            "rpm",
            &["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", path],
        );
        for config in [
            "/etc/gluten-node-agent/agent.toml",
            "/etc/default/gluten-node-agent",
        ] {
            assert!(
                flags.lines().any(|l| l == format!("{config} cn")),
                "{path}: {config} is not %config(noreplace)\n{flags}"
            );
        }
        let conffiles = ok("rpm", &["-qp", "--configfiles", path]);
        assert_eq!(conffiles.lines().count(), 2, "{path}: {conffiles}");

        let scripts = ok("rpm", &["-qp", "--scripts", path]);
        for (what, needle) in [
            (
                "post creates the user",
                "systemd-sysusers /usr/lib/sysusers.d/gluten-node-agent.conf",
            ),
            ("post falls back to useradd", "useradd --system"),
            (
                "preun disables and stops on erase",
                "systemctl stop gluten-node-agent.service",
            ),
            (
                "postun restarts after an upgrade",
                "try-restart gluten-node-agent.service",
            ),
        ] {
            assert!(
                scripts.contains(needle),
                "{path}: {what}: no `{needle}` in\n{scripts}"
            );
        }
        for section in [
            "postinstall scriptlet",
            "preuninstall scriptlet",
            "postuninstall scriptlet",
        ] {
            assert!(
                scripts.contains(section),
                "{path}: no {section} in\n{scripts}"
            );
        }

        let packaged_arch = ok(
            "rpm",
            &["-qp", "--qf", "%{ARCH} %{PAYLOADCOMPRESSOR}", path],
        );
        assert_eq!(packaged_arch, format!("{arch} gzip"), "{path}");
        // Every rpmlib() feature it needs is older than EL8's rpm 4.14.3; no zstd payload.
        let requires = ok("rpm", &["-qp", "--requires", path]);
        for line in requires.lines().filter(|l| l.starts_with("rpmlib(")) {
            let feature = line.split(')').next().unwrap();
            assert!(
                [
                    "rpmlib(CompressedFileNames",
                    "rpmlib(FileDigests",
                    "rpmlib(PayloadFilesHavePrefix",
                ]
                .contains(&feature),
                "{path}: needs {line}\n{requires}"
            );
        }
        assert!(
            requires.lines().any(|l| l.trim() == "/bin/sh"),
            "{path}: {requires}"
        );
        assert!(
            !requires.contains(".so"),
            "{path}: a static binary needs no library: {requires}"
        );

        // The packaged unit runs /usr/bin/gluten-node-agent.
        let dir = tempfile::tempdir().unwrap();
        let cpio = Command::new("sh")
            .arg("-c")
            .arg(format!("rpm2cpio '{path}' | cpio -idm --quiet"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(cpio.status.success(), "rpm2cpio {path}: {}", text(&cpio));
        let unit = std::fs::read_to_string(
            dir.path()
                .join("usr/lib/systemd/system/gluten-node-agent.service"),
        )
        .unwrap();
        assert!(
            unit.contains("ExecStart=/usr/bin/gluten-node-agent run "),
            "{unit}"
        );
        assert!(!unit.contains("/usr/local/bin"), "{unit}");
    }
}

/// The cached Debian 12 root: `debootstrap` once per machine (a few minutes, network), then a
/// tarball extracted in seconds.
const DEBIAN_ROOT_CACHE: &str =
    "/var/tmp/gluten-node-agent-test-cache/debian12-minbase-systemd-adduser-amd64.tar.gz";

/// A throwaway Debian 12 root with its own /proc and /sys, unmounted on drop.
struct DebianRoot {
    dir: tempfile::TempDir,
}

impl DebianRoot {
    fn new() -> DebianRoot {
        require_root();
        // One debootstrap for all the tests of this process.
        static CACHED: OnceLock<()> = OnceLock::new();
        CACHED.get_or_init(make_debian_root_cache);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        ok(
            "tar",
            &["-xzf", DEBIAN_ROOT_CACHE, "--numeric-owner", "-C", &path],
        );
        let root = DebianRoot { dir };
        // Fresh proc and sysfs instances, not binds of the host's: nothing to propagate back.
        ok("mount", &["-t", "proc", "proc", &format!("{path}/proc")]);
        ok("mount", &["-t", "sysfs", "sysfs", &format!("{path}/sys")]);
        root
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// A command inside the root, as root or as `user`.
    fn run(&self, user: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new("chroot");
        if let Some(user) = user {
            cmd.arg(format!("--userspec={user}:{user}"));
        }
        cmd.arg(self.dir.path())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .current_dir("/");
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(None, args);
        assert!(
            out.status.success(),
            "in the Debian root: {args:?}: {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The Debian 12 root's tarball, made by debootstrap when this machine has none yet.
fn make_debian_root_cache() {
    let cache = Path::new(DEBIAN_ROOT_CACHE);
    if cache.exists() {
        return;
    }
    let parent = cache.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let work = tempfile::tempdir_in(parent).unwrap();
    let root = work.path().join("root");
    let root = root.to_str().unwrap();
    ok(
        "debootstrap",
        &[
            "--variant=minbase",
            "--include=systemd,adduser",
            "bookworm",
            root,
        ],
    );
    let partial = work.path().join("root.tar.gz");
    let partial_path = partial.to_str().unwrap();
    ok(
        "tar",
        &["-C", root, "--numeric-owner", "-czf", partial_path, "."],
    );
    std::fs::rename(&partial, cache).unwrap();
}

impl Drop for DebianRoot {
    fn drop(&mut self) {
        for mount in ["sys", "proc"] {
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(self.dir.path().join(mount))
                .status();
        }
    }
}

const USER_ENTRY: &str = ":/nonexistent:/usr/sbin/nologin";

#[test]
#[ignore = "release builds, debootstrap and root; run by .ci/run"]
fn deb_installs_into_debian_12_creates_its_user_and_its_units_verify() {
    let deb = one("_amd64.deb");
    let root = DebianRoot::new();
    std::fs::copy(&deb, root.path("/tmp/package.deb")).unwrap();
    root.ok(&["dpkg", "-i", "/tmp/package.deb"]);

    // The user, from the sysusers.d entry (the root has systemd, not running).
    let user = root.ok(&["getent", "passwd", "gluten-node-agent"]);
    assert!(user.trim_end().ends_with(USER_ENTRY), "{user}");
    root.ok(&["getent", "group", "gluten-node-agent"]);

    let listed = root.ok(&["dpkg", "-L", "gluten-node-agent"]);
    for file in [
        "/usr/bin/gluten-node-agent",
        "/usr/lib/systemd/system/gluten-node-agent.service",
        "/usr/lib/systemd/system/gluten-node-aggregator.service",
        "/usr/lib/sysusers.d/gluten-node-agent.conf",
        "/etc/gluten-node-agent/agent.toml",
        "/etc/default/gluten-node-agent",
    ] {
        assert!(
            listed.lines().any(|l| l == file),
            "dpkg -L: no {file}\n{listed}"
        );
    }
    let conffiles = root.ok(&["dpkg-query", "-W", "-f=${Conffiles}\n", "gluten-node-agent"]);
    for file in [
        "/etc/gluten-node-agent/agent.toml",
        "/etc/default/gluten-node-agent",
    ] {
        assert!(
            conffiles.contains(&format!(" {file} ")),
            "not a conffile: {file}\n{conffiles}"
        );
    }

    // Both units as installed, against the root's own systemd (252): no output at all.
    for unit in [
        "gluten-node-agent.service",
        "gluten-node-aggregator.service",
    ] {
        let path = format!("/usr/lib/systemd/system/{unit}");
        let unit_text = std::fs::read_to_string(root.path(&path)).unwrap();
        assert!(
            unit_text.contains("ExecStart=/usr/bin/gluten-node-agent "),
            "{path}: {unit_text}"
        );
        let out = root.run(
            None,
            &[
                "env",
                "SYSTEMD_LOG_LEVEL=notice",
                "systemd-analyze",
                "verify",
                &path,
            ],
        );
        let said = text(&out);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {path} in Debian 12: {}\n{said}",
            out.status
        );
    }

    // The agent as the unit runs it: the package's user, the packaged config.
    let agent = |args: &[&str]| root.run(Some("gluten-node-agent"), args);
    let check_config = agent(&[
        "/usr/bin/gluten-node-agent",
        "run",
        "--check-config",
        "--config",
        "/etc/gluten-node-agent/agent.toml",
    ]);
    assert!(
        check_config.status.success(),
        "--check-config: {}",
        text(&check_config)
    );
    let check = agent(&[
        "/usr/bin/gluten-node-agent",
        "check",
        "--config",
        "/etc/gluten-node-agent/agent.toml",
    ]);
    let report = text(&check);
    // 0: no check fails, 1: one does (this is no Gluten worker); 2 would be a config error.
    assert!(
        matches!(check.status.code(), Some(0 | 1)),
        "check: {}\n{report}",
        check.status
    );
    for name in ["velox_library", "memory", "scratch"] {
        assert!(report.contains(name), "check names no {name}:\n{report}");
    }
}

/// The conffile survives a reinstall, purge removes the package's files, and without
/// systemd-sysusers the user comes from adduser.
#[test]
#[ignore = "release builds, debootstrap and root; run by .ci/run"]
fn deb_keeps_a_changed_conffile_purges_cleanly_and_falls_back_to_adduser() {
    let deb = one("_amd64.deb");
    let root = DebianRoot::new();
    std::fs::copy(&deb, root.path("/tmp/package.deb")).unwrap();
    // No systemd-sysusers: the user must come from adduser.
    std::fs::rename(
        root.path("/usr/bin/systemd-sysusers"),
        root.path("/usr/bin/systemd-sysusers.hidden"),
    )
    .unwrap();
    root.ok(&["dpkg", "-i", "/tmp/package.deb"]);
    let user = root.ok(&["getent", "passwd", "gluten-node-agent"]);
    assert!(user.trim_end().ends_with(USER_ENTRY), "{user}");

    let config = root.path("/etc/gluten-node-agent/agent.toml");
    let changed = format!(
        "{}interval_seconds = 30\n",
        std::fs::read_to_string(&config).unwrap()
    )
    .replacen("interval_seconds = 15\n", "", 1);
    std::fs::write(&config, &changed).unwrap();
    root.ok(&["dpkg", "-i", "/tmp/package.deb"]);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        changed,
        "the local change survives"
    );

    root.ok(&["dpkg", "--purge", "gluten-node-agent"]);
    for gone in [
        "/usr/bin/gluten-node-agent",
        "/usr/lib/systemd/system/gluten-node-agent.service",
        "/etc/gluten-node-agent/agent.toml",
        "/etc/default/gluten-node-agent",
    ] {
        assert!(!root.path(gone).exists(), "{gone} is left after purge");
    }
}
