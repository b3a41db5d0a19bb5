//! The real agent pushing over HTTPS to a real aggregator on 127.0.0.1 while its TLS files
//! rotate under it, without a restart: a rolled CA (the aggregator comes back with a certificate
//! of a new CA; pushes fail until the agent's CA file holds the new CA, then resume), a rotated
//! client certificate under the aggregator's per-node mTLS identity (the aggregator sees each new
//! certificate), and a FIFO, `/dev/zero` or garbage in place of the CA file (the agent keeps the
//! material in force, says why with the path, keeps pushing and answering `/livez`).

use gluten_node_tests::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes `text` to `path` as the kubelet and cert-manager do: a new file renamed into place.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A mounted Secret as the kubelet lays it out: `tls.crt` and `tls.key` are symlinks through
/// `..data`, a symlink to a versioned directory, so one rename swaps both files at once.
struct SecretDir {
    dir: PathBuf,
    version: u32,
}

impl SecretDir {
    fn new(dir: &Path, client: &ClientCert) -> SecretDir {
        std::fs::create_dir_all(dir).unwrap();
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        let mut s = SecretDir {
            dir: dir.to_path_buf(),
            version: 0,
        };
        s.update(client);
        s
    }

    /// Swaps in a new certificate and key at once.
    fn update(&mut self, client: &ClientCert) {
        self.version += 1;
        let v = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.join(&v)).unwrap();
        std::fs::write(self.dir.join(&v).join("tls.crt"), &client.cert_pem).unwrap();
        std::fs::write(self.dir.join(&v).join("tls.key"), &client.key_pem).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&v, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    fn cert(&self) -> String {
        self.dir.join("tls.crt").to_str().unwrap().to_string()
    }

    fn key(&self) -> String {
        self.dir.join("tls.key").to_str().unwrap().to_string()
    }
}

/// An aggregator serving HTTPS with `server`'s certificate (for localhost), optionally
/// requiring client certificates of the CAs in `client_ca`.
fn https_aggregator(
    addr: std::net::SocketAddr,
    dir: &Path,
    server: &Pki,
    client_ca: Option<&Path>,
) -> Aggregator {
    let (_, cert, key) = server.write(&dir.join("server-tls"));
    let data = dir.join("data");
    let mut args = vec![
        "--data-dir".to_string(),
        data.to_str().unwrap().to_string(),
        "--tls-cert-file".to_string(),
        cert.to_str().unwrap().to_string(),
        "--tls-key-file".to_string(),
        key.to_str().unwrap().to_string(),
    ];
    if let Some(ca) = client_ca {
        args.push("--tls-client-ca-file".into());
        args.push(ca.to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ca = server.ca_pem.clone();
    Aggregator::start_with(addr, &args, dir, move |a| {
        get_tls(a, "/readyz", &ca, &[]).is_ok_and(|r| r.status == 200)
    })
}

fn agent_pushing_over_https(aggregator: std::net::SocketAddr, extra: &[&str]) -> Proc {
    let root = upstream("procfs-upstream");
    let url = format!("https://localhost:{}", aggregator.port());
    let mut args = vec![
        "run",
        "--host-root",
        root.to_str().unwrap(),
        "--interval-seconds",
        "0.5",
        "--node-name",
        "node-a",
        "--push-url",
        &url,
        "--set",
        "push.timeout_seconds=2",
        "--set",
        "push.max_backoff_seconds=1",
    ];
    args.extend_from_slice(extra);
    Proc::start(&args, "/livez")
}

/// (attempts, failures) of the agent's pushes.
fn pushes(p: &Proc) -> (f64, f64) {
    let body = get(p.addr, "/metrics").unwrap().body;
    let m = |n: &str| metric(&body, &format!("gluten_node_push_{n}_total ")).unwrap_or(0.0);
    (m("attempts"), m("failures"))
}

fn successes(p: &Proc) -> f64 {
    let (a, f) = pushes(p);
    a - f
}

/// Waits until `n` more pushes than now succeeded, at most 20 s.
fn more_successes(p: &Proc, n: f64, what: &str) {
    let from = successes(p);
    eventually(Duration::from_secs(20), || {
        (successes(p) >= from + n).then_some(())
    })
    .unwrap_or_else(|| panic!("{what}: pushes did not succeed: {}", p.stderr()));
}

/// Waits until the agent's log holds `needle` `times` times, at most 20 s.
fn logged(p: &Proc, needle: &str, times: usize) {
    eventually(Duration::from_secs(20), || {
        (p.stderr().matches(needle).count() >= times).then_some(())
    })
    .unwrap_or_else(|| panic!("{needle:?} not logged {times}x: {}", p.stderr()));
}

const RELOADED: &str = "push TLS material reloaded";

#[test]
fn a_rolled_ca_is_picked_up_from_the_ca_file_without_restarting_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let addr = loopback();
    let old = Pki::new();
    let mut agg = https_aggregator(addr, dir.path(), &old, None);
    let ca_file = dir.path().join("push-ca.pem");
    put(&ca_file, &old.ca_pem);
    let agent = agent_pushing_over_https(addr, &["--push-ca-file", ca_file.to_str().unwrap()]);
    more_successes(&agent, 2.0, "with the first CA");
    assert_eq!(pushes(&agent).1, 0.0, "{}", agent.stderr());

    // The CA rolls: the aggregator comes back with a certificate of a new CA.
    agg.stop();
    let new = Pki::new();
    let agg = https_aggregator(addr, dir.path(), &new, None);
    // Red: the agent, still trusting the old CA only, cannot push.
    eventually(Duration::from_secs(20), || {
        let log = agent.stderr();
        (log.contains("UnknownIssuer") || log.contains("invalid peer certificate")).then_some(())
    })
    .unwrap_or_else(|| panic!("no certificate failure: {}", agent.stderr()));
    let stuck = successes(&agent);
    let failures = pushes(&agent).1;
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(successes(&agent), stuck, "pushed with the old CA");
    assert!(
        pushes(&agent).1 > failures,
        "no retries: {}",
        agent.stderr()
    );

    // Green: the CA file now holds the new CA (a bundle with both, as during a roll).
    put(&ca_file, &format!("{}{}", new.ca_pem, old.ca_pem));
    more_successes(&agent, 2.0, "after the CA file was replaced");
    assert!(agent.stderr().contains(RELOADED), "{}", agent.stderr());
    let nodes = get_tls(addr, "/api/v1/nodes", &new.ca_pem, &[]).unwrap();
    assert!(nodes.body.contains("node-a"), "{}", nodes.body);
    drop(agg);
}

#[test]
fn a_rotated_client_certificate_is_presented_from_the_next_push_on() {
    let dir = tempfile::tempdir().unwrap();
    let addr = loopback();
    let server = Pki::new();
    // Two client CAs: the one rotated away from, and the one rotated to.
    let (ca_a, ca_b) = (Pki::new(), Pki::new());
    let client_ca = dir.path().join("client-ca.pem");
    put(&client_ca, &format!("{}{}", ca_a.ca_pem, ca_b.ca_pem));
    let _agg = https_aggregator(addr, dir.path(), &server, Some(&client_ca));
    let server_ca = dir.path().join("server-ca.pem");
    put(&server_ca, &server.ca_pem);
    let mut secret = SecretDir::new(
        &dir.path().join("secret"),
        &ca_a.client_cert(&["node-a"], None),
    );
    let (cert, key) = (secret.cert(), secret.key());
    let agent = agent_pushing_over_https(
        addr,
        &[
            "--push-ca-file",
            server_ca.to_str().unwrap(),
            "--set",
            &format!("push.client_cert_file={cert:?}"),
            "--set",
            &format!("push.client_key_file={key:?}"),
        ],
    );
    more_successes(&agent, 2.0, "with the first certificate");

    // A key that does not fit its certificate is not taken; the pair in force stays.
    let b = ca_b.client_cert(&["node-a"], None);
    let mismatched = ClientCert {
        cert_pem: b.cert_pem.clone(),
        key_pem: ca_b.client_cert(&["node-a"], None).key_pem,
    };
    secret.update(&mismatched);
    logged(&agent, "does not match push.client_cert_file", 1);
    assert!(agent.stderr().contains(&key), "{}", agent.stderr());
    more_successes(&agent, 2.0, "with a mismatched key on disk");

    // Rotation to a certificate of the second CA for the same node.
    secret.update(&b);
    logged(&agent, RELOADED, 1);
    // The aggregator stops trusting the first CA: only the new certificate gets through now.
    put(&client_ca, &ca_b.ca_pem);
    let old_cert = ca_a.client_cert(&["node-a"], None);
    eventually(Duration::from_secs(10), || {
        request_tls(
            addr,
            "GET",
            "/readyz",
            &server.ca_pem,
            Some(&old_cert),
            &[],
            None,
        )
        .is_err()
        .then_some(())
    })
    .expect("the aggregator still takes certificates of the first CA");
    more_successes(&agent, 3.0, "with the rotated certificate");
    assert_eq!(pushes(&agent).1, 0.0, "{}", agent.stderr());

    // The aggregator sees each new certificate: one naming another node is refused ...
    secret.update(&ca_b.client_cert(&["node-z"], None));
    logged(&agent, "aggregator answered 403", 1);
    // ... and one naming this node again is taken.
    secret.update(&ca_b.client_cert(&["node-a"], None));
    logged(&agent, RELOADED, 3);
    more_successes(&agent, 2.0, "with the certificate for this node again");
}

#[test]
fn a_fifo_dev_zero_or_garbage_in_place_of_the_ca_file_keeps_the_ca_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let addr = loopback();
    let server = Pki::new();
    let _agg = https_aggregator(addr, dir.path(), &server, None);
    let ca_file = dir.path().join("push-ca.pem");
    put(&ca_file, &server.ca_pem);
    let agent = agent_pushing_over_https(addr, &["--push-ca-file", ca_file.to_str().unwrap()]);
    more_successes(&agent, 2.0, "with the CA file");
    let path = ca_file.to_str().unwrap();

    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::rename(&fifo, &ca_file).unwrap();
    logged(&agent, "is a FIFO", 1);
    more_successes(&agent, 3.0, "with a FIFO as the CA file");
    let livez = get(agent.addr, "/livez").unwrap();
    assert_eq!(livez.status, 200, "{}", livez.body);

    let zero = dir.path().join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    std::fs::rename(&zero, &ca_file).unwrap();
    logged(&agent, "is a character device", 1);
    more_successes(&agent, 3.0, "with /dev/zero as the CA file");

    let named = agent.stderr().matches("push.ca_file").count();
    put(&ca_file, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
    logged(&agent, "push.ca_file", named + 1);
    more_successes(&agent, 3.0, "with garbage as the CA file");
    assert_eq!(pushes(&agent).1, 0.0, "{}", agent.stderr());
    let log = agent.stderr();
    assert_eq!(
        log.matches(path).count(),
        3,
        "each bad version is named once with its path: {log}"
    );
    assert!(!log.contains(RELOADED), "{log}");
    assert_eq!(get(agent.addr, "/livez").unwrap().status, 200);
}
