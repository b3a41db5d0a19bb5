//! TLS and authentication of the real binaries on 127.0.0.1, with a CA and certificates made in
//! the test: the aggregator's `--tls-cert-file`/`--tls-key-file` (a wrong CA fails, a rotated
//! certificate is picked up), the agent's `--web-config-file` (TLS and basic auth, probes open).

use gluten_node_tests::*;
use std::time::Duration;

#[test]
fn the_aggregator_serves_https_refuses_a_wrong_ca_and_follows_a_rotated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (_, cert, key) = pki.write(&dir.path().join("tls"));
    let addr = loopback();
    let agg = Aggregator::start_tls(addr, dir.path(), &cert, &key, &pki.ca_pem, &[]);
    let nodes = get_tls(addr, "/api/v1/nodes", &pki.ca_pem, &[]).unwrap();
    assert_eq!(nodes.status, 200, "{}", nodes.body);
    assert!(nodes.json()["nodes"].is_array(), "{}", nodes.body);

    let other = Pki::new();
    let wrong = get_tls(addr, "/readyz", &other.ca_pem, &[]);
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("InvalidCertificate")),
        "a client trusting another CA must fail: {wrong:?}"
    );
    assert!(
        !get(addr, "/readyz").is_ok_and(|r| r.status == 200),
        "plain HTTP must not be served on the TLS port"
    );

    // cert-manager rotates the Secret: new files, here even from another CA.
    other.write(&dir.path().join("tls"));
    let rotated = eventually(Duration::from_secs(5), || {
        get_tls(addr, "/readyz", &other.ca_pem, &[]).ok()
    })
    .unwrap_or_else(|| panic!("the rotated certificate was never served: {}", agg.log()));
    assert_eq!(rotated.status, 200);
    assert!(get_tls(addr, "/readyz", &pki.ca_pem, &[]).is_err());
    assert!(
        agg.log().contains("TLS certificate reloaded"),
        "{}",
        agg.log()
    );
}

#[test]
fn the_aggregator_checks_its_tls_keys_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = Pki::new().write(dir.path());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(agent_bin())
            .arg("aggregator")
            .args(["--check-config", "--data-dir", dir.path().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--tls-cert-file", cert.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tls_key_file"), "{err}");
    let (code, err) = run(&[
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        cert.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tls.crt") && err.contains("private key"),
        "{err}"
    );
}

#[test]
fn the_agent_serves_its_web_config_tls_and_basic_auth_with_the_probes_open() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write(dir.path());
    // A fast bcrypt (cost 4) for the test; production hashes use 10 or more.
    let hash = bcrypt::hash("gluten", 4).unwrap();
    let web = dir.path().join("web-config.toml");
    std::fs::write(
        &web,
        format!(
            "[tls_server_config]\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\n\n[basic_auth_users]\nprometheus = \"{hash}\"\n"
        ),
    )
    .unwrap();
    let root = upstream("node-exporter-upstream");
    let ca = pki.ca_pem.clone();
    let agent = Proc::start_when(
        &[
            "run",
            "--host-root",
            root.to_str().unwrap(),
            "--interval-seconds",
            "0.5",
            "--web-config-file",
            web.to_str().unwrap(),
        ],
        &[],
        None,
        "https /livez",
        move |addr| get_tls(addr, "/livez", &ca, &[]).is_ok(),
    );
    let addr = agent.addr;
    // The probes stay open (the kubelet sends no credentials).
    let ready = eventually(Duration::from_secs(20), || {
        get_tls(addr, "/readyz", &pki.ca_pem, &[])
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(ready.is_some(), "{}", agent.stderr());
    let denied = get_tls(addr, "/health", &pki.ca_pem, &[]).unwrap();
    assert_eq!(denied.status, 401, "{}", denied.body);
    assert!(
        denied
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    // prometheus:gluten, base64.
    let good = [("Authorization", "Basic cHJvbWV0aGV1czpnbHV0ZW4=")];
    let metrics = get_tls(addr, "/metrics", &pki.ca_pem, &good).unwrap();
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(metrics.body.contains("gluten_node_"), "{}", metrics.body);
    // prometheus:wrong
    let bad = [("Authorization", "Basic cHJvbWV0aGV1czp3cm9uZw==")];
    assert_eq!(
        get_tls(addr, "/metrics", &pki.ca_pem, &bad).unwrap().status,
        401
    );
    assert!(get_tls(addr, "/livez", &Pki::new().ca_pem, &[]).is_err());
}

#[test]
fn a_bad_web_config_fails_check_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.toml");
    std::fs::write(&web, "[basic_auth_users]\nalice = \"password\"\n").unwrap();
    let out = std::process::Command::new(agent_bin())
        .args([
            "run",
            "--check-config",
            "--web-config-file",
            web.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("web_config_file") && err.contains("basic_auth_users.alice"),
        "{err}"
    );
}
