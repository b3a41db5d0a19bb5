//! The real agent pushing to hostile or TLS targets on 127.0.0.1: an endless error body does not
//! grow its memory, a redirect is a failure and is not followed, `https://` with a CA and client
//! certificate generated here (rcgen) works, and a wrong CA fails.

use gluten_node_tests::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the target answers.
#[derive(Clone, Copy)]
enum Mode {
    /// This status with a chunked body that never ends.
    Endless(u16),
    /// 302 to `/elsewhere` on the same target.
    Redirect,
    /// 200 `{}`.
    Accept,
}

#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    client_cert: bool,
}

/// A one-thread-per-connection HTTP(S) target; stops accepting on drop.
struct Target {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

impl Target {
    fn start(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(tcp) = conn else { continue };
                let (h, tls) = (h.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        None => serve(tcp, mode, addr, &h, false),
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let mut stream = rustls::StreamOwned::new(conn, tcp);
                            // Complete the handshake first, so the client certificate is known.
                            while stream.conn.is_handshaking() {
                                if stream.conn.complete_io(&mut stream.sock).is_err() {
                                    return;
                                }
                            }
                            let cert = stream.conn.peer_certificates().is_some();
                            serve(stream, mode, addr, &h, cert)
                        }
                    }
                });
            }
        });
        Target { addr, hits, stop }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// Reads one request (head and Content-Length body), records it, answers per `mode`.
fn serve<S: Read + Write>(
    mut s: S,
    mode: Mode,
    addr: SocketAddr,
    hits: &Mutex<Vec<Hit>>,
    client_cert: bool,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
    hits.lock().unwrap().push(Hit {
        method,
        path,
        client_cert,
    });
    let _ = match mode {
        Mode::Accept => s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        ),
        Mode::Redirect => s.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{addr}/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
        Mode::Endless(code) => {
            let _ = s.write_all(
                format!("HTTP/1.1 {code} Nope\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .as_bytes(),
            );
            let mut piece = format!("{:x}\r\n", 64 * 1024).into_bytes();
            piece.extend(std::iter::repeat_n(b'x', 64 * 1024));
            piece.extend_from_slice(b"\r\n");
            // Until the client hangs up (or 4 GiB, as a bound for a broken client).
            for _ in 0..65_536 {
                if s.write_all(&piece).is_err() {
                    break;
                }
            }
            Ok(())
        }
    };
    let _ = s.flush();
}

fn agent_pushing_to(url: &str, extra: &[&str]) -> Proc {
    let root = upstream("procfs-upstream");
    let mut args = vec![
        "run",
        "--host-root",
        root.to_str().unwrap(),
        "--interval-seconds",
        "0.5",
        "--push-url",
        url,
        "--set",
        "push.timeout_seconds=2",
        "--set",
        "push.max_backoff_seconds=1",
    ];
    args.extend_from_slice(extra);
    Proc::start(&args, "/livez")
}

fn push_counter(p: &Proc, name: &str) -> f64 {
    let body = get(p.addr, "/metrics").unwrap().body;
    metric(&body, &format!("gluten_node_push_{name}_total ")).unwrap_or(0.0)
}

/// Peak resident memory of a process (VmHWM), bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn an_endless_error_body_is_not_read_and_memory_stays_bounded() {
    for code in [401, 500] {
        let target = Target::start(Mode::Endless(code), None);
        let p = agent_pushing_to(&format!("http://{}", target.addr), &[]);
        eventually(Duration::from_secs(30), || {
            (push_counter(&p, "failures") >= 3.0).then_some(())
        })
        .unwrap_or_else(|| panic!("no failed pushes against {code}: {}", p.stderr()));
        assert_eq!(push_counter(&p, "attempts"), push_counter(&p, "failures"));
        let rss = peak_rss(p.child.id());
        assert!(
            rss < 64 << 20,
            "peak RSS {} MiB against an endless {code} body",
            rss >> 20
        );
        assert!(
            p.stderr().contains(&format!("aggregator answered {code}")),
            "{}",
            p.stderr()
        );
    }
}

#[test]
fn a_redirect_is_a_failure_and_is_not_followed() {
    let target = Target::start(Mode::Redirect, None);
    let p = agent_pushing_to(&format!("http://{}", target.addr), &[]);
    eventually(Duration::from_secs(30), || {
        (push_counter(&p, "failures") >= 2.0).then_some(())
    })
    .unwrap_or_else(|| panic!("redirect counted as success: {}", p.stderr()));
    assert_eq!(push_counter(&p, "attempts"), push_counter(&p, "failures"));
    let hits = target.hits();
    assert!(
        hits.iter()
            .all(|h| h.method == "POST" && h.path == "/api/v1/reports"),
        "{hits:?}"
    );
    assert!(
        p.stderr().contains("redirects are not followed"),
        "{}",
        p.stderr()
    );
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    server: (rcgen::Certificate, rcgen::KeyPair),
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gluten test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert, key)
        };
        let server = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let client = leaf(vec!["agent.example".into()]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("client.pem"), client.0.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client.1.serialize_pem()).unwrap();
        Pki { dir, ca, server }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// The server side: this CA's server certificate, client certificates of this CA required.
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::try_from(self.server.1.serialize_der()).unwrap();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(vec![self.server.0.der().clone()], key)
                .unwrap(),
        )
    }
}

#[test]
fn https_push_with_a_private_ca_and_a_client_certificate() {
    let pki = Pki::new();
    let target = Target::start(Mode::Accept, Some(pki.server_config()));
    let url = format!("https://localhost:{}", target.addr.port());
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let p = agent_pushing_to(
        &url,
        &[
            "--push-ca-file",
            &ca,
            "--set",
            &format!("push.client_cert_file={cert:?}"),
            "--set",
            &format!("push.client_key_file={key:?}"),
        ],
    );
    eventually(Duration::from_secs(30), || {
        (push_counter(&p, "attempts") >= 1.0).then_some(())
    })
    .unwrap();
    assert_eq!(push_counter(&p, "failures"), 0.0, "{}", p.stderr());
    let hits = target.hits();
    assert!(!hits.is_empty());
    assert!(
        hits.iter()
            .all(|h| h.method == "POST" && h.path == "/api/v1/reports" && h.client_cert),
        "{hits:?}"
    );
}

#[test]
fn https_push_fails_with_a_wrong_ca_or_without_the_client_certificate() {
    let pki = Pki::new();
    let other = Pki::new();
    let target = Target::start(Mode::Accept, Some(pki.server_config()));
    let url = format!("https://localhost:{}", target.addr.port());
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let wrong_ca = other.path("ca.pem");
    let cert_set = format!("push.client_cert_file={cert:?}");
    let key_set = format!("push.client_key_file={key:?}");
    let right_ca = pki.path("ca.pem");
    for extra in [
        vec![
            "--push-ca-file",
            &wrong_ca,
            "--set",
            &cert_set,
            "--set",
            &key_set,
        ],
        vec!["--push-ca-file", &right_ca],
    ] {
        let p = agent_pushing_to(&url, &extra);
        eventually(Duration::from_secs(30), || {
            (push_counter(&p, "failures") >= 1.0).then_some(())
        })
        .unwrap_or_else(|| panic!("{extra:?}: no failure: {}", p.stderr()));
        assert_eq!(push_counter(&p, "attempts"), push_counter(&p, "failures"));
    }
    assert!(target.hits().is_empty(), "{:?}", target.hits());
}

#[test]
fn a_token_over_plain_http_to_a_remote_host_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0k3n\n").unwrap();
    let token = token.to_str().unwrap().to_string();
    let target = Target::start(Mode::Accept, None);
    // 0.0.0.0 is not a loopback address, so it gets the warning, yet a connection to it stays on
    // this host (Linux routes it to the local machine): nothing leaves 127.0.0.0/8's machine.
    let p = agent_pushing_to(
        &format!("http://0.0.0.0:{}", target.addr.port()),
        &["--push-token-file", &token],
    );
    let warned = |p: &Proc| p.stderr().contains("travels in clear text");
    eventually(Duration::from_secs(10), || warned(&p).then_some(())).expect("no warning");
    let local = agent_pushing_to(
        &format!("http://{}", target.addr),
        &["--push-token-file", &token],
    );
    eventually(Duration::from_secs(30), || {
        (push_counter(&local, "attempts") >= 1.0).then_some(())
    })
    .unwrap();
    assert!(!warned(&local), "{}", local.stderr());
}
