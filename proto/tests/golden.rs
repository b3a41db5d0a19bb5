//! Golden JSON test: locks the wire format of the node report. An accidental rename, a changed
//! casing or a dropped field fails here. `UPDATE_EXPECT=1 cargo test -p gluten-node-proto`
//! rewrites the golden file after an intended change (then bump `SCHEMA_VERSION` if an older
//! reader would misread it).

use proto::{CheckResult, Finding, NodeInfo, NodeReport, SCHEMA_VERSION, Status};
use std::path::PathBuf;

fn sample() -> NodeReport {
    let mut inventory = std::collections::BTreeMap::new();
    inventory.insert("hugepages.thp_enabled".to_string(), "madvise".to_string());
    inventory.insert(
        "velox_library.build_id".to_string(),
        "3f2a9c0e5b7d11aa".to_string(),
    );
    NodeReport {
        schema_version: SCHEMA_VERSION,
        node: NodeInfo {
            name: "worker-17".into(),
            agent_version: "0.1.0".into(),
            boot_id: Some("6e9b2a44-0e4c-4b57-8d1e-2f7c1f0c9a31".into()),
            kernel_release: Some("6.1.0-18-amd64".into()),
            arch: Some("x86_64".into()),
            inventory,
        },
        status: Status::Fail,
        generated_at: "2026-11-23T10:15:00.250Z".into(),
        checks: vec![
            CheckResult {
                name: "velox_library".into(),
                status: Status::Fail,
                summary: "libvelox.so needs avx2, bmi2: not in /proc/cpuinfo flags".into(),
                duration_seconds: 0.012,
                checked_at: "2026-11-23T10:15:00.240Z".into(),
                findings: vec![
                    Finding::new(
                        Status::Fail,
                        "libvelox.so needs avx2, bmi2: not in /proc/cpuinfo flags",
                    )
                    .about("/opt/gluten/lib/libvelox.so"),
                ],
                facts: serde_json::json!({"libraries": [{"path": "/opt/gluten/lib/libvelox.so", "size_bytes": 283115520u64}]}),
                observed_status: None,
            },
            CheckResult {
                name: "memory".into(),
                status: Status::Unknown,
                summary: "timed out after 5s".into(),
                duration_seconds: 5.0,
                checked_at: "2026-11-23T10:15:00.250Z".into(),
                findings: vec![Finding::new(Status::Unknown, "timed out after 5s")],
                facts: serde_json::Value::Null,
                observed_status: Some(Status::Unknown),
            },
        ],
    }
}

#[test]
fn node_report_matches_golden_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/node_report.json");
    let actual = serde_json::to_string_pretty(&sample()).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_EXPECT=1 writes it)");
    assert_eq!(
        actual,
        expected,
        "wire format changed: see {}",
        path.display()
    );
    // And it reads back to the same value.
    let back: NodeReport = serde_json::from_str(&expected).unwrap();
    assert_eq!(back, sample());
}
