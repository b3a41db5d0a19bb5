//! The NFD features file written by the real daemon on a fixture tree: content and order, expiry,
//! atomic replacement under a concurrent reader, flips when a check starts failing, after flap
//! damping, and back.

use gluten_node_tests::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

struct Agent {
    proc_: Proc,
    file: PathBuf,
    dir: tempfile::TempDir,
}

fn agent(root: &Path, interval: &str, extra: &[&str]) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gluten-node-agent");
    let mut args = vec![
        "run",
        "--host-root",
        root.to_str().unwrap(),
        "--interval-seconds",
        interval,
        "--nfd-features-file",
        file.to_str().unwrap(),
        // A fixture's verdict must not depend on this machine's free space.
        "--set",
        "scratch.fail_free_ratio=0",
        "--set",
        "scratch.warn_free_ratio=0",
        "--set",
        "scratch.min_free_bytes=0",
        "--set",
        "scratch.min_free_inodes_ratio=0",
    ];
    args.extend_from_slice(extra);
    let proc_ = Proc::start(&args, "/livez");
    Agent { proc_, file, dir }
}

fn read(a: &Agent) -> Option<String> {
    std::fs::read_to_string(&a.file).ok()
}

fn label<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("gluten-node-agent.{name}=")))
}

fn wait_for(a: &Agent, within: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
    eventually(within, || read(a).filter(|t| f(t))).unwrap_or_else(|| {
        panic!(
            "{what}: never seen; last file: {:?}\n{}",
            read(a),
            a.proc_.stderr()
        )
    })
}

/// Whether `text` is one whole file as the agent writes it.
fn whole(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    text.ends_with('\n')
        && lines.len() == 2 + checks::NAMES.len()
        && lines[0].starts_with("# +expiry-time=")
        && lines[1].starts_with("gluten-node-agent.ready=")
}

#[test]
fn features_file_content_order_and_expiry() {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    std::fs::create_dir(root.path().join("tmp")).unwrap();
    let a = agent(root.path(), "1", &[]);
    let text = wait_for(&a, Duration::from_secs(20), "first write", |_| true);
    let lines: Vec<&str> = text.lines().collect();
    // Expiry first: now + 3 intervals (written within the last interval, cut to whole seconds).
    let expiry = lines[0].strip_prefix("# +expiry-time=").unwrap();
    assert!(expiry.ends_with('Z') && !expiry.contains('.'), "{expiry}");
    let expiry = common::time::parse_rfc3339(expiry).unwrap();
    let now = SystemTime::now();
    assert!(expiry <= now + Duration::from_secs(3), "{text}");
    assert!(expiry + Duration::from_secs(2) >= now, "{text}");
    assert_eq!(lines[1], "gluten-node-agent.ready=true", "{text}");
    let health: proto::NodeReport =
        serde_json::from_str(&get(a.proc_.addr, "/health").unwrap().body).unwrap();
    let expected: Vec<String> = checks::NAMES
        .iter()
        .map(|n| format!("gluten-node-agent.{n}={}", health.check(n).unwrap().status))
        .collect();
    assert_eq!(lines[2..], expected, "{text}");
    // No Velox library in this tree: no identity, no velox-build line.
    assert!(label(&text, "velox-build").is_none(), "{text}");
}

#[test]
fn features_file_flips_on_failure_and_back_and_is_always_whole() {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let a = agent(root.path(), "0.1", &[]);
    wait_for(&a, Duration::from_secs(20), "ready=true", |t| {
        label(t, "ready") == Some("true")
    });

    // A reader polling as fast as it can never sees a partial file or a stray temp file.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (file, dir, stop) = (a.file.clone(), a.dir.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&file).unwrap();
                assert!(whole(&text), "partial or malformed read: {text:?}");
                for e in std::fs::read_dir(&dir).unwrap() {
                    let name = e.unwrap().file_name().to_string_lossy().into_owned();
                    // The dotfile temp (`.gluten-node-agent.<16 hex digits>.tmp`) exists
                    // only between create and rename.
                    let temp = name
                        .strip_prefix(".gluten-node-agent.")
                        .and_then(|r| r.strip_suffix(".tmp"))
                        .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()));
                    assert!(name == "gluten-node-agent" || temp, "{name}");
                }
                reads += 1;
            }
            reads
        })
    };

    std::fs::remove_dir(&tmp).unwrap();
    let t = wait_for(&a, Duration::from_secs(10), "ready=false", |t| {
        label(t, "ready") == Some("false")
    });
    assert_eq!(label(&t, "scratch"), Some("fail"), "{t}");
    std::fs::create_dir(&tmp).unwrap();
    let t = wait_for(&a, Duration::from_secs(10), "ready=true again", |t| {
        label(t, "ready") == Some("true")
    });
    assert_eq!(label(&t, "scratch"), Some("ok"), "{t}");

    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 10);
    // Between rounds nothing but the file is in the directory.
    std::thread::sleep(Duration::from_millis(30));
    let names: Vec<String> = eventually(Duration::from_secs(2), || {
        let n: Vec<String> = std::fs::read_dir(a.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        (n.len() == 1).then_some(n)
    })
    .expect("a temp file stayed behind");
    assert_eq!(names, ["gluten-node-agent"]);
}

#[test]
fn features_file_follows_flap_damping() {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // Three failing rounds 0.5 s apart before `fail`: about 1 s after the dir goes (the first
    // failing round may have started just before).
    let a = agent(
        root.path(),
        "0.5",
        &[
            "--set",
            "scratch.failures_before_critical=3",
            "--set",
            "scratch.success_before_passing=2",
        ],
    );
    wait_for(&a, Duration::from_secs(20), "ready=true", |t| {
        label(t, "ready") == Some("true")
    });
    std::fs::remove_dir(&tmp).unwrap();
    let gone = Instant::now();
    while gone.elapsed() < Duration::from_millis(900) {
        let t = read(&a).unwrap();
        assert_eq!(
            label(&t, "ready"),
            Some("true"),
            "flipped before damping: {t}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = wait_for(&a, Duration::from_secs(10), "ready=false", |t| {
        label(t, "ready") == Some("false")
    });
    assert_eq!(label(&t, "scratch"), Some("fail"), "{t}");
    assert!(gone.elapsed() >= Duration::from_millis(900));
    // Back after two passing rounds.
    std::fs::create_dir(&tmp).unwrap();
    wait_for(&a, Duration::from_secs(10), "ready=true again", |t| {
        label(t, "ready") == Some("true")
    });
}

#[test]
fn features_file_carries_the_real_velox_build_identity() {
    // pyvelox's real libvelox.so, which has a GNU build-id note.
    let lib = "/opt/pyvelox/pyvelox/libvelox.so";
    let (_dir, root) = pyvelox_tree(lib, "processor\t: 0\nflags\t\t: fpu sse2 avx avx2\n");
    let a = agent(
        &root,
        "1",
        &["--set", &format!("velox_library.paths=[{lib:?}]")],
    );
    let text = wait_for(&a, Duration::from_secs(60), "a velox-build line", |t| {
        label(t, "velox-build").is_some()
    });
    let health: proto::NodeReport =
        serde_json::from_str(&get(a.proc_.addr, "/health").unwrap().body).unwrap();
    let id = &health.node.inventory["velox_library.identity"];
    // pyvelox has a GNU build-id note, so its identity is that build id.
    assert_eq!(id, &health.node.inventory["velox_library.build_id"]);
    assert_eq!(label(&text, "velox-build"), Some(id.as_str()), "{text}");
    assert!(
        id.len() == 40 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
}
