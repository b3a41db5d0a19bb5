//! The aggregator's PostgreSQL connection over TLS with libpq's `sslmode` meanings, against a
//! throwaway cluster with `ssl=on` and certificates made in the test: what is encrypted (asked of
//! the server through `pg_stat_ssl`), what is verified, and what must fail.

use aggregator::store::pg_connect;
use gluten_node_tests::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Connects with `url`; whether the server sees this session as TLS, or the error.
fn session_ssl(url: &str) -> Result<bool, String> {
    rt().block_on(async {
        let client = pg_connect::connect(url).await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        let timeout = client
            .query_one("SHOW statement_timeout", &[])
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(timeout.get::<_, String>(0), "30s");
        Ok(row.get::<_, bool>(0))
    })
}

#[test]
fn sslmode_means_what_libpq_means() {
    // The server's certificate names only db.invalid: it chains to the CA, but verify-full of
    // 127.0.0.1 must refuse it.
    let pki = Pki::for_names(&["db.invalid"]);
    let pg = PgCluster::start_tls(&pki);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(dir.path());
    let other = Pki::new();
    let (wrong_ca, _, _) = other.write(&dir.path().join("other"));
    let q = |s: &str| pg.url_at("127.0.0.1", s);

    assert_eq!(session_ssl(&q("?sslmode=disable")), Ok(false));
    assert_eq!(session_ssl(&q("?sslmode=prefer")), Ok(true));
    assert_eq!(session_ssl(&q("")), Ok(true), "prefer is the default");
    assert_eq!(
        session_ssl(&q("?sslmode=require")),
        Ok(true),
        "require encrypts without a CA"
    );
    let verify_ca = format!("?sslmode=verify-ca&sslrootcert={}", ca.display());
    assert_eq!(session_ssl(&q(&verify_ca)), Ok(true), "{}", pg.log());
    let wrong = session_ssl(&q(&format!(
        "?sslmode=verify-ca&sslrootcert={}",
        wrong_ca.display()
    )));
    assert!(
        wrong.as_ref().is_err_and(|e| e.contains("certificate")),
        "verify-ca against another CA must fail: {wrong:?}"
    );
    let full = session_ssl(&q(&format!(
        "?sslmode=verify-full&sslrootcert={}",
        ca.display()
    )));
    assert!(
        full.as_ref().is_err_and(|e| e.contains("certificate")),
        "verify-full must check the host name: {full:?}"
    );
    let key_value = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-ca sslrootcert='{}'",
        pg.port,
        ca.display()
    );
    assert_eq!(session_ssl(&key_value), Ok(true));
}

#[test]
fn verify_full_passes_for_the_right_name_and_require_fails_without_tls() {
    let pki = Pki::new(); // localhost and 127.0.0.1
    let pg = PgCluster::start_tls(&pki);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(dir.path());
    let full = format!("?sslmode=verify-full&sslrootcert={}", ca.display());
    assert_eq!(session_ssl(&pg.url_at("127.0.0.1", &full)), Ok(true));
    assert_eq!(session_ssl(&pg.url_at("localhost", &full)), Ok(true));

    let plain = PgCluster::start();
    assert_eq!(
        session_ssl(&plain.url_at("127.0.0.1", "?sslmode=prefer")),
        Ok(false)
    );
    let e = session_ssl(&plain.url_at("127.0.0.1", "?sslmode=require"));
    assert!(e.is_err(), "require against a server without TLS: {e:?}");
}

#[test]
fn the_aggregator_stores_reports_over_verified_tls() {
    let pki = Pki::new();
    let pg = PgCluster::start_tls(&pki);
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki.write(&dir.path().join("ca"));
    let url = pg.url_at(
        "127.0.0.1",
        &format!("?sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let agg = Aggregator::start(loopback(), &["--database-url", &url], dir.path());
    let report = proto::NodeReport {
        schema_version: proto::SCHEMA_VERSION,
        node: proto::NodeInfo {
            name: "tls-node".into(),
            agent_version: "test".into(),
            ..Default::default()
        },
        status: proto::Status::Ok,
        generated_at: "2026-12-03T10:00:00Z".into(),
        checks: vec![],
    };
    let r = agg.post(&serde_json::to_vec(&report).unwrap(), None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(agg.node_names(), ["tls-node"]);
    // A wrong CA: the aggregator does not start, and says why.
    let other = Pki::new();
    let (wrong, _, _) = other.write(&dir.path().join("wrong"));
    let out = std::process::Command::new(agent_bin())
        .args([
            "aggregator",
            "--listen",
            &loopback().to_string(),
            "--database-url",
        ])
        .arg(pg.url_at(
            "127.0.0.1",
            &format!("?sslmode=verify-ca&sslrootcert={}", wrong.display()),
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("database_url") && err.contains("certificate"),
        "{err}"
    );
}
