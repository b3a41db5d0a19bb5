//! Tests of the hardened server: real sockets on loopback against an in-process server, real
//! TLS with a CA and certificates made here (rcgen), real bcrypt.

use super::*;
use axum::routing::{get, post};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant as StdInstant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops the server and returns how long `serve` took to return.
    async fn stop(mut self) -> Duration {
        let t0 = StdInstant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returned")
            .unwrap()
            .unwrap();
        t0.elapsed()
    }
}

fn app() -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/secret", get(|| async { "secret\n" }))
        .route(
            "/echo",
            post(|body: axum::body::Bytes| async move { format!("{}\n", body.len()) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow\n"
            }),
        )
}

async fn start(limits: Limits, tls: Option<Arc<tls::ReloadingTls>>, app: Router) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, Options { limits, tls }, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn short() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        ..Limits::default()
    }
}

/// A plain HTTP/1.1 GET on a fresh blocking socket: status and body.
fn blocking_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {out:?}")))?;
    Ok((status, out))
}

/// Waits until the peer closes `s` (read gives 0 or an error); how long that took.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = StdInstant::now();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 512];
    while t0.elapsed() < within {
        match s.read(&mut b) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(t0.elapsed()),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_head_is_closed_at_the_deadline_not_extended_by_each_byte() {
    let srv = start(short(), None, app()).await;
    let addr = srv.addr;
    let took = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let t0 = StdInstant::now();
        s.write_all(b"GET /livez HTTP/1.1\r\n").unwrap();
        // One header byte every 100 ms: a byte-by-byte deadline would never fire.
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut b = [0u8; 64];
        loop {
            if s.write_all(b"X").is_err() {
                return t0.elapsed();
            }
            match s.read(&mut b) {
                Ok(0) | Err(_) if t0.elapsed() > Duration::from_secs(10) => panic!("never closed"),
                Ok(0) => return t0.elapsed(),
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return t0.elapsed(),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2000),
        "a trickling head was closed after {took:?} (deadline 800 ms)"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_and_a_silent_one_are_closed_at_the_head_deadline() {
    let srv = start(short(), None, app()).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        // Silent from the start.
        let mut silent = TcpStream::connect(addr).unwrap();
        // Keep-alive: one request answered, then nothing.
        let mut kept = TcpStream::connect(addr).unwrap();
        kept.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut b = [0u8; 256];
        kept.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let n = kept.read(&mut b).unwrap();
        assert!(String::from_utf8_lossy(&b[..n]).starts_with("HTTP/1.1 200"));
        let t_silent = closed_within(&mut silent, Duration::from_secs(5)).expect("silent closed");
        let t_kept = closed_within(&mut kept, Duration::from_secs(5)).expect("idle closed");
        assert!(t_silent < Duration::from_millis(1500), "{t_silent:?}");
        assert!(t_kept < Duration::from_millis(1500), "{t_kept:?}");
    })
    .await
    .unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_larger_than_the_body_fails_at_the_body_deadline() {
    let srv = start(short(), None, app()).await;
    let addr = srv.addr;
    let (took, answer) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let t0 = StdInstant::now();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (t0.elapsed(), String::from_utf8_lossy(&out).into_owned())
    })
    .await
    .unwrap();
    assert!(
        took < Duration::from_millis(2500),
        "took {took:?}: {answer}"
    );
    assert!(
        answer.starts_with("HTTP/1.1 4") || answer.is_empty(),
        "{answer}"
    );
    // A whole body still goes through.
    let ok = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n\r\n0123456789")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("\n10\n"),
        "{ok}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_the_oldest_idle_connections_close_and_a_probe_gets_in() {
    let limits = Limits {
        max_connections: Some(16),
        header_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let srv = start(limits, None, app()).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        let mut idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let t0 = StdInstant::now();
        let (status, _) = blocking_get(addr, "/livez").unwrap();
        let took = t0.elapsed();
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "/livez took {took:?}");
        // The oldest were closed, the newest are still open.
        let closed: Vec<bool> = idle
            .iter_mut()
            .map(|s| closed_within(s, Duration::from_millis(200)).is_some())
            .collect();
        let open = closed.iter().filter(|c| !**c).count();
        assert!(
            open <= 16,
            "{open} idle connections still open over a limit of 16"
        );
        assert!(
            closed[0] && closed[10],
            "the oldest must be the ones closed: {closed:?}"
        );
        assert!(
            !closed[39],
            "the newest idle connection was closed: {closed:?}"
        );
    })
    .await
    .unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_within_a_second_with_partial_idle_and_busy_connections() {
    let srv = start(Limits::default(), None, app()).await;
    let addr = srv.addr;
    let mut partial = TcpStream::connect(addr).unwrap();
    partial
        .write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Half: ")
        .unwrap();
    let _idle = TcpStream::connect(addr).unwrap();
    let busy = tokio::task::spawn_blocking(move || blocking_get(addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = srv.stop().await;
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    // The request in flight finished within the grace.
    let (status, body) = busy.await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(closed_within(&mut partial, Duration::from_millis(500)).is_some());
    // And nothing listens any more.
    assert!(TcpStream::connect(addr).is_err());
}

// ---- TLS ----

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    /// A client certificate of the same CA (for mutual TLS).
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["scraper".to_string()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// GET over TLS trusting `ca_pem`: the response text, or the handshake error.
async fn tls_get(addr: SocketAddr, ca_pem: &str, path: &str) -> Result<String, String> {
    tls_get_with(addr, client_config(ca_pem), path).await
}

/// GET over TLS with `config`.
async fn tls_get_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    Ok(out)
}

fn write_pki(dir: &Path, p: &Pki) -> tls::TlsFiles {
    // Written elsewhere and renamed in, as the kubelet swaps a Secret's files.
    for (name, text) in [("tls.crt", &p.cert_pem), ("tls.key", &p.key_pem)] {
        let tmp = dir.join(format!(".{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
    tls::TlsFiles::new(dir.join("tls.crt"), dir.join("tls.key"))
}

use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_with_the_right_ca_refuses_a_wrong_one_and_follows_a_rotated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = pki(&["localhost"]);
    let files = write_pki(dir.path(), &first);
    let reloading = Arc::new(tls::ReloadingTls::load(files).unwrap());
    let srv = start(short(), Some(reloading.clone()), app()).await;
    let ok = tls_get(srv.addr, &first.ca_pem, "/livez").await.unwrap();
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok\n"),
        "{ok}"
    );

    let other = pki(&["localhost"]);
    let wrong = tls_get(srv.addr, &other.ca_pem, "/livez").await;
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("UnknownIssuer") || e.contains("invalid peer certificate")),
        "a client trusting another CA must fail: {wrong:?}"
    );
    // Plain HTTP on the TLS port gets nothing useful.
    let addr = srv.addr;
    let plain = tokio::task::spawn_blocking(move || blocking_get(addr, "/livez"))
        .await
        .unwrap();
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");

    // Rotation: new files from another CA; picked up on the next connection after a second.
    write_pki(dir.path(), &other);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = tls_get(srv.addr, &other.ca_pem, "/livez").await;
    assert!(
        rotated
            .as_ref()
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200")),
        "{rotated:?}"
    );
    let old = tls_get(srv.addr, &first.ca_pem, "/livez").await;
    assert!(old.is_err(), "the old CA must no longer verify: {old:?}");

    // A broken rotation keeps the last good certificate.
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = tls_get(srv.addr, &other.ca_pem, "/livez").await;
    assert!(
        kept.as_ref().is_ok_and(|r| r.starts_with("HTTP/1.1 200")),
        "{kept:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_that_never_handshakes_is_closed_at_the_head_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_pki(dir.path(), &pki(&["localhost"]));
    let srv = start(
        short(),
        Some(Arc::new(tls::ReloadingTls::load(files).unwrap())),
        app(),
    )
    .await;
    let addr = srv.addr;
    let took = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        // Half a ClientHello record header, then silence.
        s.write_all(&[0x16, 0x03]).unwrap();
        closed_within(&mut s, Duration::from_secs(5))
    })
    .await
    .unwrap()
    .expect("closed");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    srv.stop().await;
}

#[test]
fn tls_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let a = pki(&["localhost"]);
    let b = pki(&["localhost"]);
    let files = write_pki(dir.path(), &a);
    std::fs::write(&files.key_file, &b.key_pem).unwrap();
    let e = tls::ReloadingTls::load(files.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("tls.key") && e.contains("does not fit"), "{e}");
    std::fs::write(&files.cert_file, "hello").unwrap();
    let e = tls::ReloadingTls::load(files.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tls.crt") && e.contains("no PEM CERTIFICATE"),
        "{e}"
    );
    let e = tls::ReloadingTls::load(tls::TlsFiles::new(dir.path().join("nope.crt"), "k"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope.crt") && e.contains("No such file"), "{e}");
}

// ---- web config ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_the_web_config_guards_all_but_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let path = dir.path().join("web.toml");
    std::fs::write(&path, format!("[basic_auth_users]\nprom = \"{hash}\"\n")).unwrap();
    let web = web_config::WebConfig::load(&path).unwrap();
    assert!(web.tls.is_none());
    let app = web.auth.unwrap().protect(app(), &["/livez"]);
    let srv = start(short(), None, app).await;
    let addr = srv.addr;
    let ask = move |auth: Option<&str>| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /secret HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let results = tokio::task::spawn_blocking(move || {
        use base64::Engine;
        let b = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        (
            ask(None),
            ask(Some(&b("prom:s3cret"))),
            ask(Some(&b("prom:wrong"))),
            ask(Some(&b("nobody:s3cret"))),
            ask(Some(&b("prom:s3cret").replace("Basic", "basic"))),
            blocking_get(addr, "/livez").unwrap().0,
        )
    })
    .await
    .unwrap();
    assert!(results.0.starts_with("HTTP/1.1 401"), "{}", results.0);
    assert!(
        results.0.contains("www-authenticate: Basic realm"),
        "{}",
        results.0
    );
    assert!(
        results.1.starts_with("HTTP/1.1 200") && results.1.ends_with("secret\n"),
        "{}",
        results.1
    );
    assert!(results.2.starts_with("HTTP/1.1 401"), "{}", results.2);
    assert!(results.3.starts_with("HTTP/1.1 401"), "{}", results.3);
    assert!(results.4.starts_with("HTTP/1.1 200"), "{}", results.4);
    assert_eq!(results.5, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_users_follow_the_web_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.toml");
    let write = |users: &[(&str, &str)]| {
        let mut text = String::from("[basic_auth_users]\n");
        for (u, p) in users {
            text.push_str(&format!("{u} = \"{}\"\n", bcrypt::hash(p, 4).unwrap()));
        }
        let tmp = dir.path().join("web.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(&[("alice", "a-pass"), ("bob", "b-pass")]);
    let auth = web_config::WebConfig::load(&path).unwrap().auth.unwrap();
    assert!(auth.verify("alice", "a-pass").await);
    assert!(auth.verify("bob", "b-pass").await);
    // Bob is removed and Alice's password changed: both take effect within about a second.
    write(&[("alice", "new-pass")]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        !auth.verify("bob", "b-pass").await,
        "a removed user still gets in"
    );
    assert!(
        !auth.verify("alice", "a-pass").await,
        "an old password still works"
    );
    assert!(auth.verify("alice", "new-pass").await);
    // A broken file keeps the users in force.
    std::fs::write(&path, "[basic_auth_users]\nalice = \"plain\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(auth.verify("alice", "new-pass").await);
}

#[test]
fn web_config_errors_name_the_file_and_the_full_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        web_config::WebConfig::load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = load("[tls_server_config]\ncert_file = \"a\"\nkey_file = \"b\"\nciphers = []\n");
    assert!(
        e.contains("web.toml") && e.contains("tls_server_config") && e.contains("ciphers"),
        "{e}"
    );
    let e = load("[basic_auth_users]\nalice = \"plain-text\"\n");
    assert!(
        e.contains("basic_auth_users.alice") && e.contains("not a bcrypt hash"),
        "{e}"
    );
    let e = load(
        "[tls_server_config]\ncert_file = \"a\"\nkey_file = \"b\"\nclient_auth_type = \"RequireAndVerifyClientCert\"\n",
    );
    assert!(e.contains("tls_server_config.client_ca_file"), "{e}");
    let e = load("[tls_server_config]\ncert_file = \"missing.crt\"\nkey_file = \"b\"\n");
    assert!(e.contains("missing.crt"), "{e}");
    let e =
        load("[tls_server_config]\ncert_file = \"a\"\nkey_file = \"b\"\nmin_version = \"TLS10\"\n");
    assert!(e.contains("tls_server_config.min_version"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_from_the_web_config_requires_a_client_certificate_of_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = pki(&["localhost"]);
    write_pki(dir.path(), &server);
    std::fs::write(dir.path().join("ca.crt"), &server.ca_pem).unwrap();
    let path = dir.path().join("web.toml");
    std::fs::write(
        &path,
        "[tls_server_config]\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\nclient_auth_type = \"RequireAndVerifyClientCert\"\nclient_ca_file = \"ca.crt\"\n",
    )
    .unwrap();
    let web = web_config::WebConfig::load(&path).unwrap();
    let srv = start(short(), Some(web.tls.unwrap()), app()).await;
    // Without a client certificate the handshake (or the first read) fails.
    let anon = tls_get(srv.addr, &server.ca_pem, "/livez").await;
    assert!(
        !anon.as_ref().is_ok_and(|r| r.starts_with("HTTP/1.1 200")),
        "{anon:?}"
    );
    // With a client certificate of the CA it gets in; with one of another CA it does not.
    let with_cert = |p: &Pki| {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(server.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let chain = CertificateDer::pem_slice_iter(p.client_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_slice(p.client_key_pem.as_bytes()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .unwrap(),
        )
    };
    let ok = tls_get_with(srv.addr, with_cert(&server), "/livez").await;
    assert!(
        ok.as_ref().is_ok_and(|r| r.starts_with("HTTP/1.1 200")),
        "{ok:?}"
    );
    let stranger = pki(&["localhost"]);
    let refused = tls_get_with(srv.addr, with_cert(&stranger), "/livez").await;
    assert!(
        !refused
            .as_ref()
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200")),
        "{refused:?}"
    );
    srv.stop().await;
}

#[test]
fn the_connection_limit_leaves_headroom_below_the_fd_limit() {
    assert_eq!(Limits::connections_for_fd_limit(1024), 896);
    assert_eq!(Limits::connections_for_fd_limit(256), 224);
    assert_eq!(Limits::connections_for_fd_limit(1 << 20), (1 << 20) - 256);
    assert_eq!(Limits::connections_for_fd_limit(20), 8);
}

#[tokio::test]
async fn a_unix_socket_listener_gets_the_same_server_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        app(),
        Options {
            limits: short(),
            tls: None,
        },
        async move {
            let _ = rx.await;
        },
    ));
    // A request answers.
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("ok\n"),
        "{out}"
    );
    // The head deadline holds: a connection that sends half a head is closed.
    let mut slow = tokio::net::UnixStream::connect(&path).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
    let t0 = StdInstant::now();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf))
        .await
        .expect("closed by the head deadline")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf));
    assert!(t0.elapsed() < Duration::from_secs(3));
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
