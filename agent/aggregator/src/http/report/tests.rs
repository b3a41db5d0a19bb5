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
    let e = within_limits(&r, usize::MAX).unwrap_err().to_string();
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
            .to_string()
            .contains("MAX_INVENTORY_VALUE_BYTES")
    );
    let mut r = ok.clone();
    r.node.inventory.insert("k".repeat(200), "v".into());
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .to_string()
            .contains("MAX_INVENTORY_KEY_BYTES")
    );
    let mut r = ok.clone();
    r.checks = (0..MAX_CHECKS + 1).map(|_| ok.checks[0].clone()).collect();
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .to_string()
            .contains("MAX_CHECKS")
    );
    let mut r = ok.clone();
    r.checks[0].name = "c".repeat(65);
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .to_string()
            .contains("MAX_CHECK_NAME_BYTES")
    );
    let mut r = ok.clone();
    r.checks[0].findings = vec![proto::Finding::new(Status::Warn, "m"); MAX_FINDINGS_PER_CHECK + 1];
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .to_string()
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
            .to_string()
            .contains("MAX_TEXT_BYTES")
    );
    let mut r = ok.clone();
    r.checks[0].facts = serde_json::json!({"big": "x".repeat(MAX_FACTS_BYTES)});
    assert!(
        within_limits(&r, usize::MAX)
            .unwrap_err()
            .to_string()
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

fn budget() -> crate::http::budget::BodyBudget {
    crate::http::budget::BodyBudget::new(64 << 20)
}

async fn read(
    enc: Option<&str>,
    body: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, (StatusCode, String)> {
    read_body(
        &headers(enc),
        Body::from(body),
        limit,
        "max_report_bytes",
        &budget(),
    )
    .await
    .map(|r| r.bytes.to_vec())
}

#[tokio::test]
async fn bodies_are_read_plain_or_gzipped_with_the_limit_after_decompression() {
    let plain = b"{\"x\": 1}".to_vec();
    assert_eq!(read(None, plain.clone(), 1024).await.unwrap(), plain);
    assert_eq!(read(Some("gzip"), gzip(&plain), 1024).await.unwrap(), plain);
    // A bomb: 64 MiB of zeros in ~64 KiB; refused having inflated at most the limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let (status, why) = read(Some("gzip"), bomb, 1 << 20).await.unwrap_err();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(why.contains("after gzip decompression"), "{why}");
    assert!(why.contains("max_report_bytes"), "{why}");
    let (status, _) = read(Some("gzip"), plain.clone(), 1024).await.unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = read(Some("br"), plain.clone(), 1024).await.unwrap_err();
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A second member, or bytes after the first, are refused (not silently dropped).
    let mut two = gzip(&plain);
    two.extend(gzip(b"{}"));
    let (status, why) = read(Some("gzip"), two, 1024).await.unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(why.contains("after the end of the gzip member"), "{why}");
    let mut trailing = gzip(&plain);
    trailing.extend(b"junk");
    let (status, why) = read(Some("gzip"), trailing, 1024).await.unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{why}");
}

#[tokio::test]
async fn bodies_over_the_in_flight_budget_are_refused_with_503_and_the_limit_named() {
    let budget = crate::http::budget::BodyBudget::new(3000);
    let mut h = headers(None);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2000"));
    let held = read_body(
        &h,
        Body::from(vec![b' '; 2000]),
        4096,
        "max_report_bytes",
        &budget,
    )
    .await
    .unwrap();
    let (status, why) = read_body(
        &h,
        Body::from(vec![b' '; 2000]),
        4096,
        "max_report_bytes",
        &budget,
    )
    .await
    .unwrap_err();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(why.contains("max_inflight_body_bytes"), "{why}");
    drop(held);
    assert_eq!(budget.used(), 0);
    // The heartbeat's 413 names its own limit.
    let (status, why) = read_body(
        &headers(None),
        Body::from(vec![b' '; 5000]),
        4096,
        "the heartbeat limit",
        &self::budget(),
    )
    .await
    .unwrap_err();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        why.contains("the heartbeat limit") && !why.contains("max_report_bytes"),
        "{why}"
    );
}

#[test]
fn duplicate_keys_bad_times_and_unknown_protocols_are_refused_with_422() {
    let good =
        serde_json::to_string(&report("n1", &[("memory", Status::Ok)], &[("k", "v")])).unwrap();
    assert!(decode_report(good.as_bytes()).is_ok());
    // A duplicate key at the top, and deep in a map serde would silently take the last of.
    let top = good.replacen("{", "{\"status\":\"fail\",", 1);
    let e = decode_report(top.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, Rejected::Unprocessable(w) if w.contains("\"status\" appears twice")),
        "{e:?}"
    );
    let deep = good.replacen(
        "\"inventory\":{",
        "\"inventory\":{\"a\":\"1\",\"a\":\"2\",",
        1,
    );
    assert_ne!(deep, good);
    let e = decode_report(deep.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, Rejected::Unprocessable(w) if w.contains("\"a\" appears twice")),
        "{e:?}"
    );
    assert_eq!(duplicate_key(b"{\"a\":[{\"b\":1},{\"b\":2}]}"), None);
    assert_eq!(duplicate_key(b"not json"), None);
    // generated_at must be a time.
    let mut r = report("n1", &[], &[]);
    r.generated_at = "yesterday".into();
    let e = decode_report(&serde_json::to_vec(&r).unwrap()).unwrap_err();
    assert!(
        matches!(&e, Rejected::Unprocessable(w) if w.contains("generated_at")),
        "{e:?}"
    );

    let hb = |protocol: u32, sent_at: &str| {
        serde_json::to_vec(&proto::fleet::Heartbeat {
            protocol,
            node: "n1".into(),
            digest: "d".into(),
            sent_at: sent_at.into(),
        })
        .unwrap()
    };
    assert!(decode_heartbeat(&hb(PROTOCOL_VERSION, "2026-12-03T10:00:00Z")).is_ok());
    for (bytes, what) in [
        (hb(99, "2026-12-03T10:00:00Z"), "protocol 99"),
        (hb(PROTOCOL_VERSION, "soon"), "sent_at"),
        (
            br#"{"protocol":2,"node":"n1","node":"n2","digest":"d","sent_at":"2026-12-03T10:00:00Z"}"#.to_vec(),
            "\"node\" appears twice",
        ),
    ] {
        let e = decode_heartbeat(&bytes).unwrap_err();
        assert!(matches!(&e, Rejected::Unprocessable(w) if w.contains(what)), "{what}: {e:?}");
    }
    assert!(matches!(
        decode_heartbeat(b"{}"),
        Err(Rejected::Malformed(_))
    ));
}
