//! Per-node push identity on a real aggregator on 127.0.0.1: client certificates from a test CA
//! (the node a DNS SAN names, the CN without a SAN), Kubernetes service-account tokens minted
//! here against a JWKS of an RSA and an EC key (good, expired, wrong audience, issuer, subject
//! or key, another node, no node claim, a rotated JWKS), max_nodes, a junk-check flood that must
//! not hide a real failing check, JSON-only writes, and the refusal to start beyond loopback
//! without push authentication.

use crate::fleet::{body, report, sample};
use gluten_node_tests::*;
use proto::Status;
use proto::fleet::{FleetView, Heartbeat};
use std::process::Command;
use std::time::Duration;

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn heartbeat(node: &str) -> Vec<u8> {
    serde_json::to_vec(&Heartbeat {
        protocol: 2,
        node: node.into(),
        digest: "d".into(),
        sent_at: "2026-11-23T10:15:00Z".into(),
    })
    .unwrap()
}

/// The sentence of a JSON error body.
fn error_of(r: &Response) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

fn refused(agg: &Aggregator, reason: &str, metrics: &str) -> f64 {
    let _ = agg;
    sample(
        metrics,
        &format!("gluten_fleet_push_refused_total{{reason=\"{reason}\"}}"),
    )
}

#[test]
fn client_certificates_bind_pushes_to_the_node_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (ca, cert, key) = pki.write(&dir.path().join("tls"));
    let addr = loopback();
    // Ready when a probe without a client certificate gets 200.
    let agg = Aggregator::start_tls(
        addr,
        dir.path(),
        &cert,
        &key,
        &pki.ca_pem,
        &["--tls-client-ca-file", ca.to_str().unwrap()],
    );
    let node_a = pki.client_cert(&["node-a"], Some("ignored-cn"));
    let cn_only = pki.client_cert(&[], Some("node-cn"));
    let two_sans = pki.client_cert(&["node-x", "node-y"], None);
    let post = |client: Option<&ClientCert>, path: &str, b: &[u8]| {
        request_tls(addr, "POST", path, &pki.ca_pem, client, &[JSON], Some(b)).unwrap()
    };
    let report_of = |n: &str| body(&report(n, &[("numa", Status::Ok)], "b1"));

    let own = post(Some(&node_a), "/api/v1/reports", &report_of("node-a"));
    assert_eq!(own.status, 204, "{}", own.body);
    let other = post(Some(&node_a), "/api/v1/reports", &report_of("node-b"));
    assert_eq!(other.status, 403, "{}", other.body);
    assert!(
        error_of(&other).contains("\"node-a\"") && error_of(&other).contains("\"node-b\""),
        "the refusal names both nodes: {}",
        other.body
    );
    let hb = post(Some(&node_a), "/api/v1/heartbeats", &heartbeat("node-b"));
    assert_eq!(hb.status, 403, "{}", hb.body);
    let hb = post(Some(&node_a), "/api/v1/heartbeats", &heartbeat("node-a"));
    assert_eq!(hb.status, 200, "{}", hb.body);

    // The CN counts only without a SAN; with several DNS SANs any of them may push.
    assert_eq!(
        post(Some(&cn_only), "/api/v1/reports", &report_of("node-cn")).status,
        204
    );
    assert_eq!(
        post(Some(&node_a), "/api/v1/reports", &report_of("ignored-cn")).status,
        403
    );
    assert_eq!(
        post(Some(&two_sans), "/api/v1/reports", &report_of("node-x")).status,
        204
    );
    assert_eq!(
        post(Some(&two_sans), "/api/v1/reports", &report_of("node-y")).status,
        204
    );

    // No certificate: no push, but reading works.
    let anon = post(None, "/api/v1/reports", &report_of("node-a"));
    assert_eq!(anon.status, 401, "{}", anon.body);
    assert!(anon.body.contains("client certificate"), "{}", anon.body);
    let nodes = get_tls(addr, "/api/v1/nodes", &pki.ca_pem, &[]).unwrap();
    assert_eq!(nodes.status, 200, "{}", nodes.body);
    let names: Vec<String> = nodes.json()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["node-a", "node-cn", "node-x", "node-y"]);

    // A certificate of another CA does not get through the handshake.
    let stranger = Pki::new().client_cert(&["node-a"], None);
    assert!(
        request_tls(
            addr,
            "POST",
            "/api/v1/reports",
            &pki.ca_pem,
            Some(&stranger),
            &[JSON],
            Some(&report_of("node-a"))
        )
        .is_err()
    );

    let metrics = get_tls(addr, "/metrics", &pki.ca_pem, &[]).unwrap().body;
    assert_eq!(refused(&agg, "other_node", &metrics), 3.0, "{metrics}");
    assert_eq!(refused(&agg, "unauthenticated", &metrics), 1.0, "{metrics}");
    assert!(
        agg.log().contains("push refused") && agg.log().contains("node-b"),
        "{}",
        agg.log()
    );
}

#[test]
fn service_account_tokens_bind_pushes_to_the_node_of_their_claim() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = SigningKey::rsa("rsa1");
    let ec = SigningKey::ec("ec1");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&rsa, &ec])).unwrap();
    let iss = "https://kubernetes.default.svc.cluster.local";
    let aud = "gluten-node-aggregator";
    let sub = "system:serviceaccount:gluten-node-agent:gluten-node-agent";
    let agg = Aggregator::start(
        loopback(),
        &[
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--service-account-jwks-file",
            jwks_file.to_str().unwrap(),
            "--service-account-issuer",
            iss,
        ],
        dir.path(),
    );
    let push = |token: &str, node: &str| {
        let auth = format!("Bearer {token}");
        request(
            agg.addr,
            "POST",
            "/api/v1/reports",
            &[JSON, ("Authorization", &auth)],
            Some(&body(&report(node, &[("numa", Status::Ok)], "b1"))),
        )
        .unwrap()
    };
    let claims = |node: Option<&str>| service_account_claims(iss, aud, sub, node, 0);

    let good_rsa = rsa.sign(&claims(Some("node-a")));
    let good_ec = ec.sign(&claims(Some("node-b")));
    assert_eq!(push(&good_rsa, "node-a").status, 204);
    assert_eq!(push(&good_ec, "node-b").status, 204);

    let other = push(&good_rsa, "node-b");
    assert_eq!(other.status, 403, "{}", other.body);
    assert!(
        error_of(&other).contains("\"node-a\"") && error_of(&other).contains("\"node-b\""),
        "{}",
        other.body
    );

    let mut wrong_aud = claims(Some("node-a"));
    wrong_aud["aud"] = serde_json::json!(["kubernetes"]);
    let mut wrong_iss = claims(Some("node-a"));
    wrong_iss["iss"] = serde_json::json!("https://other.example");
    let mut wrong_sub = claims(Some("node-a"));
    wrong_sub["sub"] = serde_json::json!("system:serviceaccount:default:default");
    let stranger = SigningKey::ec("ec1");
    for (what, token, says) in [
        (
            "expired",
            ec.sign(&service_account_claims(
                iss,
                aud,
                sub,
                Some("node-a"),
                -7200,
            )),
            "expired",
        ),
        ("wrong audience", ec.sign(&wrong_aud), "audience"),
        ("wrong issuer", rsa.sign(&wrong_iss), "issuer"),
        ("wrong subject", rsa.sign(&wrong_sub), "subject"),
        (
            "wrong key",
            stranger.sign(&claims(Some("node-a"))),
            "signature",
        ),
        (
            "no node claim",
            rsa.sign(&claims(None)),
            "kubernetes.io.node.name",
        ),
        ("not a token", "not-a-jwt".to_string(), "wrong bearer token"),
    ] {
        let r = push(&token, "node-a");
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(r.body.contains(says), "{what}: {}", r.body);
    }
    let none = request(
        agg.addr,
        "POST",
        "/api/v1/reports",
        &[JSON],
        Some(&body(&report("node-a", &[], "b1"))),
    )
    .unwrap();
    assert_eq!(none.status, 401, "{}", none.body);

    // Push credentials never read; reads are open here (no read token).
    assert_eq!(agg.node_names(), ["node-a", "node-b"]);

    // The JWKS is re-read when it changes: a rotated key signs from then on.
    let rotated = SigningKey::ec("ec2");
    let tmp = dir.path().join(".jwks.new");
    std::fs::write(&tmp, jwks(&[&rsa, &rotated])).unwrap();
    std::fs::rename(&tmp, &jwks_file).unwrap();
    let token = rotated.sign(&claims(Some("node-c")));
    let took = eventually(Duration::from_secs(10), || {
        (push(&token, "node-c").status == 204).then_some(())
    });
    assert!(took.is_some(), "rotated JWKS not picked up: {}", agg.log());
    assert_eq!(
        push(&good_ec, "node-b").status,
        401,
        "the removed key no longer signs"
    );
}

#[test]
fn max_nodes_rotation_tokens_and_json_only_writes() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("token");
    std::fs::write(&tokens, "new-secret\nold-secret\n").unwrap();
    let read = dir.path().join("read");
    std::fs::write(&read, "reader\n").unwrap();
    let agg = Aggregator::start(
        loopback(),
        &[
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--auth-token-file",
            tokens.to_str().unwrap(),
            "--read-token-file",
            read.to_str().unwrap(),
            "--max-nodes",
            "2",
        ],
        dir.path(),
    );
    let r = |n: &str| body(&report(n, &[("numa", Status::Ok)], "b1"));
    assert_eq!(agg.post(&r("n1"), Some("new-secret")).status, 204);
    assert_eq!(
        agg.post(&r("n2"), Some("old-secret")).status,
        204,
        "both tokens of the file"
    );
    let full = agg.post(&r("n3"), Some("new-secret"));
    assert_eq!(full.status, 429, "{}", full.body);
    assert!(full.body.contains("max_nodes is 2"), "{}", full.body);
    assert_eq!(
        agg.post(&r("n1"), Some("new-secret")).status,
        204,
        "known nodes still push"
    );

    let text = request(
        agg.addr,
        "POST",
        "/api/v1/reports",
        &[
            ("Content-Type", "text/plain"),
            ("Authorization", "Bearer new-secret"),
        ],
        Some(&r("n1")),
    )
    .unwrap();
    assert_eq!(text.status, 415, "{}", text.body);
    assert!(text.body.contains("application/json"), "{}", text.body);
    let untyped = request(
        agg.addr,
        "POST",
        "/api/v1/heartbeats",
        &[("Authorization", "Bearer new-secret")],
        Some(&heartbeat("n1")),
    )
    .unwrap();
    assert_eq!(untyped.status, 415, "{}", untyped.body);

    let metrics = request(
        agg.addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer reader")],
        None,
    )
    .unwrap()
    .body;
    assert_eq!(refused(&agg, "max_nodes", &metrics), 1.0, "{metrics}");
    assert_eq!(refused(&agg, "not_json", &metrics), 2.0, "{metrics}");
    let as_writer = request(
        agg.addr,
        "GET",
        "/api/v1/fleet",
        &[("Authorization", "Bearer new-secret")],
        None,
    )
    .unwrap();
    assert_eq!(as_writer.status, 401, "push credentials never read");
}

#[test]
fn a_junk_check_flood_does_not_hide_a_real_failing_check() {
    let dir = tempfile::tempdir().unwrap();
    let agg = Aggregator::start(
        loopback(),
        &["--data-dir", dir.path().join("data").to_str().unwrap()],
        dir.path(),
    );
    // Five nodes with 64 invented failing checks each (320 names, over the 256 shown) first.
    for j in 0..5 {
        let names: Vec<String> = (0..64).map(|c| format!("junk{j}_{c}")).collect();
        let checks: Vec<(&str, Status)> =
            names.iter().map(|n| (n.as_str(), Status::Fail)).collect();
        let r = agg.post(&body(&report(&format!("junk-{j}"), &checks, "b1")), None);
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let real = agg.post(
        &body(&report(
            "worker-1",
            &[("velox_library", Status::Fail)],
            "b1",
        )),
        None,
    );
    assert_eq!(real.status, 204, "{}", real.body);
    let view: FleetView = agg.fleet();
    assert_eq!(view.failing_checks.len(), 256);
    let shown = view
        .failing_checks
        .iter()
        .find(|c| c.check == "velox_library")
        .expect("the real failing check is shown");
    assert_eq!(shown.node_names, ["worker-1"]);
    let metrics = get(agg.addr, "/metrics").unwrap().body;
    assert_eq!(
        sample(
            &metrics,
            "gluten_fleet_check_failing_nodes{check=\"velox_library\"}"
        ),
        1.0
    );
}

#[test]
fn beyond_loopback_without_push_authentication_it_refuses_to_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let port = loopback().port();
    let out = Command::new(agent_bin())
        .args(["aggregator", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("0.0.0.0:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("allow_unauthenticated_push") && stderr.contains("0.0.0.0"),
        "{stderr}"
    );

    let addr: std::net::SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    let agg = Aggregator::start(
        addr,
        &[
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--allow-unauthenticated-push",
        ],
        dir.path(),
    );
    assert!(
        agg.log().contains("no push authentication configured"),
        "{}",
        agg.log()
    );
}
