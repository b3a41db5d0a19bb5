//! Golden JSON test of the fleet view (`GET /api/v1/fleet`): locks its wire format.
//! `UPDATE_EXPECT=1 cargo test -p gluten-node-proto` rewrites the golden file after an intended
//! change.

use proto::Status;
use proto::fleet::{ABSENT, CheckCount, DriftDimension, DriftGroup, FleetView};
use std::path::PathBuf;

fn sample() -> FleetView {
    FleetView {
        generated_at: "2026-11-23T10:15:00.250Z".into(),
        stale_after_seconds: 45.0,
        nodes_total: 3,
        by_status: [
            (Status::Ok, 1),
            (Status::Warn, 1),
            (Status::Unknown, 0),
            (Status::Fail, 1),
        ]
        .into_iter()
        .collect(),
        stale: 1,
        failing_checks: vec![CheckCount {
            check: "velox_library".into(),
            nodes: 1,
            node_names: vec!["worker-17".into()],
            node_names_omitted: 0,
        }],
        drift: vec![DriftDimension {
            key: "velox_library.build_id".into(),
            drifted: true,
            groups: vec![
                DriftGroup {
                    value: "3f2a9c0e5b7d11aa".into(),
                    nodes: 2,
                    outlier: false,
                    node_names: vec![],
                    node_names_omitted: 0,
                },
                DriftGroup {
                    value: ABSENT.into(),
                    nodes: 1,
                    outlier: true,
                    node_names: vec!["worker-17".into()],
                    node_names_omitted: 0,
                },
            ],
        }],
    }
}

#[test]
fn fleet_view_matches_golden_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fleet_view.json");
    let text = serde_json::to_string_pretty(&sample()).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_EXPECT=1 writes it)");
    assert_eq!(expected, text, "fleet view wire format changed");
    let back: FleetView = serde_json::from_str(&expected).unwrap();
    assert_eq!(back, sample());
}
