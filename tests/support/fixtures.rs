//! Fixture trees and golden files: paths under tests/fixtures, configs with a `host_root`, one
//! round of the checks through the real engine, normalisation and comparison with golden JSON.

use agent::config::Config;
use agent::engine::{Engine, Snapshot};
use checks::check::Outcome;
use checks::host::Host;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// One of the upstream trees: `node-exporter-upstream`, `procfs-upstream`, ...
pub fn upstream(name: &str) -> PathBuf {
    fixture("upstream").join(name)
}

/// A config from TOML text, with `host_root` set to `root`.
pub fn config(root: &Path, toml_text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, toml_text).unwrap();
    let mut c = Config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("test config: {e}"));
    c.host_root = root.to_path_buf();
    c
}

/// Runs one round of the enabled checks of `config` on its host root (architecture `arch`).
pub fn round(config: &Config, arch: &str) -> Snapshot {
    let host = Host::new(&config.host_root).with_arch(arch);
    let node = proto::NodeInfo {
        name: "test-node".into(),
        agent_version: "test".into(),
        ..Default::default()
    };
    let mut engine = Engine::for_host(config, host, node);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine.run_round())
}

/// Runs the single check `name` on `root` with `[name]` settings given as TOML lines.
pub fn run_check(root: &Path, name: &str, settings_toml: &str) -> proto::CheckResult {
    let mut text = String::new();
    for other in checks::NAMES {
        if other != name {
            text.push_str(&format!("[{other}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!("[{name}]\n{settings_toml}\n"));
    let c = config(root, &text);
    let s = round(&c, "x86_64");
    s.report.checks.into_iter().next().expect("the check ran")
}

/// Replaces what changes from run to run (timestamps, durations, the fixture's absolute path)
/// so a report can be compared with a golden file.
pub fn normalize(mut v: serde_json::Value, root: &Path) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value, root: &str) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = matches!(
                        k.as_str(),
                        "checked_at" | "generated_at" | "duration_seconds"
                    ) || k.ends_with("_latency_seconds")
                        || k.ends_with("_age_seconds");
                    if volatile && !x.is_null() {
                        *x = serde_json::Value::String("<volatile>".into());
                    } else {
                        walk(x, root);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, root)),
            serde_json::Value::String(s) if !root.is_empty() && s.contains(root) => {
                *s = s.replace(root, "<root>");
            }
            _ => {}
        }
    }
    walk(&mut v, &root.to_string_lossy());
    v
}

/// Compares `actual` with `tests/fixtures/expected/<name>.json`; `UPDATE_EXPECT=1` rewrites it.
pub fn assert_golden(name: &str, actual: &serde_json::Value) {
    let path = fixture("expected").join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {} (UPDATE_EXPECT=1 writes it)",
            path.display()
        )
    });
    if expected != text {
        panic!(
            "{} differs from the golden file {}\n--- expected\n{expected}\n--- actual\n{text}",
            name,
            path.display()
        );
    }
}

/// Runs the check `name` on `root` (see [`run_check`]) and compares its normalised report with
/// the golden file `golden` (see [`assert_golden`]).
pub fn run_check_golden(
    root: &Path,
    name: &str,
    settings_toml: &str,
    golden: &str,
) -> proto::CheckResult {
    let r = run_check(root, name, settings_toml);
    assert_golden(golden, &normalize(serde_json::to_value(&r).unwrap(), root));
    r
}

/// A golden value of a check's report through the engine (`result`) together with the gauges
/// and inventory of a direct run (`outcome`), which the report does not carry, normalised.
pub fn report_with_gauges(
    root: &Path,
    result: &proto::CheckResult,
    outcome: &Outcome,
) -> serde_json::Value {
    let golden = serde_json::json!({
        "result": serde_json::to_value(result).unwrap(),
        "metrics": outcome.metrics.iter().map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{}{{{}}} {}", s.name, labels.join(","), s.value)
        }).collect::<Vec<_>>(),
        "inventory": outcome.inventory.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    normalize(golden, root)
}

/// A copy of a fixture tree in a tempdir (`cp -a`: links, modes and special files kept), so a
/// test can change or break one file of it.
pub fn copy_tree(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}
