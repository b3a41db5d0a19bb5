//! Golden JSON of the push protocol's messages: the heartbeat and its reply (protocol 2). The
//! full report (protocol 1 and 2) is locked by `golden.rs`. `UPDATE_EXPECT=1 cargo test -p
//! gluten-node-proto` rewrites the golden files after an intended change.

use proto::fleet::{Heartbeat, HeartbeatReply, PROTOCOL_VERSION};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

fn golden<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(file: &str, v: &T) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_EXPECT=1 writes it)");
    assert_eq!(expected, text, "{file}: wire format changed");
    assert_eq!(&serde_json::from_str::<T>(&expected).unwrap(), v);
}

#[test]
fn heartbeat_matches_golden_file() {
    golden(
        "heartbeat.json",
        &Heartbeat {
            protocol: PROTOCOL_VERSION,
            node: "worker-17".into(),
            digest: "v1-0123456789abcdef0123456789abcdef".into(),
            sent_at: "2026-11-23T10:15:00.250Z".into(),
        },
    );
}

#[test]
fn heartbeat_replies_match_golden_files() {
    golden(
        "heartbeat_reply_known.json",
        &HeartbeatReply {
            full_report_required: false,
            reason: None,
        },
    );
    golden(
        "heartbeat_reply_unknown.json",
        &HeartbeatReply {
            full_report_required: true,
            reason: Some("digest unknown for node worker-17: send the full report".into()),
        },
    );
}
