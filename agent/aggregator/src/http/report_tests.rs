//! Tests of report intake: node names, the documented limits, and bodies (gzip, bombs).

use super::*;
use crate::fleet::tests::report;
use proto::Status;
use std::io::Write;

#[test]
fn node_names_are_checked() {
    assert!(valid_node_name("worker-17.dc1_a"));
    assert!(valid_node_name("a.b"));
    assert!(!valid_node_name(""));
    assert!(!valid_node_name("a b"));
    assert!(!valid_node_name("../x/y"));
    assert!(!valid_node_name(&"a".repeat(254)));
    assert!(!valid_node_name("."), "unreachable as a path segment");
    assert!(!valid_node_name(".."), "unreachable as a path segment");
}

#[test]
fn reports_over_a_limit_are_refused_naming_it() {
    let ok = report("a", &[("numa", Status::Ok)], &[("k", "v")]);
    assert_eq!(within_limits(&ok, usize::MAX), Ok(()));
    let mut r = ok.clone();
    for i in 0..45_000 {
        r.node.inventory.insert(format!("k{i}"), "v".into());
    }
    let e = within_limits(&r, usize::MAX).unwrap_err();
    assert!(
        e.contains("MAX_INVENTORY_KEYS") && e.contains("45001"),
        "{e}"
    );
    let bytes = serde_json::to_vec(&r).unwrap();
    assert!(
        matches!(decode_report(&bytes), Err(Rejected::Unprocessable(e)) if e.contains("MAX_INVENTORY_KEYS"))
    );

    let mut r = ok.clone();
    r.node
        .inventory
        .insert("k".into(), "x".repeat(MAX_INVENTORY_VALUE_BYTES + 1));
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_INVENTORY_VALUE_BYTES")
    );
    let mut r = ok.clone();
    r.node.inventory.insert("k".repeat(200), "v".into());
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_INVENTORY_KEY_BYTES")
    );
    let mut r = ok.clone();
    r.checks = (0..MAX_CHECKS + 1).map(|_| ok.checks[0].clone()).collect();
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_CHECKS")
    );
    let mut r = ok.clone();
    r.checks[0].name = "c".repeat(65);
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_CHECK_NAME_BYTES")
    );
    let mut r = ok.clone();
    r.checks[0].findings = vec![proto::Finding::new(Status::Warn, "m"); MAX_FINDINGS_PER_CHECK + 1];
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_FINDINGS_PER_CHECK")
    );
    let mut r = ok.clone();
    r.checks[0].findings = vec![proto::Finding::new(
        Status::Warn,
        "m".repeat(MAX_TEXT_BYTES + 1),
    )];
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_TEXT_BYTES")
    );
    let mut r = ok.clone();
    r.checks[0].facts = serde_json::json!({"big": "x".repeat(MAX_FACTS_BYTES)});
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .contains("MAX_FACTS_BYTES")
    );
    let bytes = serde_json::to_vec(&r).unwrap();
    assert!(
        matches!(decode_report(&bytes), Err(Rejected::Unprocessable(e)) if e.contains("MAX_FACTS_BYTES"))
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn headers(encoding: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_str(e).unwrap());
    }
    h
}

#[tokio::test]
async fn bodies_are_read_plain_or_gzipped_with_the_limit_after_decompression() {
    let plain = b"{\"x\": 1}".to_vec();
    let got = read_body(&headers(None), Body::from(plain.clone()), 1024)
        .await
        .unwrap();
    assert_eq!(&got[..], &plain[..]);
    let got = read_body(&headers(Some("gzip")), Body::from(gzip(&plain)), 1024)
        .await
        .unwrap();
    assert_eq!(&got[..], &plain[..]);
    // A bomb: 64 MiB of zeros in ~64 KiB; refused having inflated at most the limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let (status, why) = read_body(&headers(Some("gzip")), Body::from(bomb), 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(why.contains("after gzip decompression"), "{why}");
    let (status, _) = read_body(&headers(Some("gzip")), Body::from(plain.clone()), 1024)
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = read_body(&headers(Some("br")), Body::from(plain), 1024)
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
