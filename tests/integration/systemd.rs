//! systemd integration: the real binary speaks the notify protocol (READY=1 after the first round,
//! WATCHDOG=1 while the loop beats, STOPPING=1 on SIGTERM) to a socket this test reads, and every
//! unit under `systemd/` passes `systemd-analyze verify` with no warning at all.

use gluten_node_tests::*;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

/// Every datagram that arrives within `for_`, or until `until` matches one.
fn receive(
    sock: &UnixDatagram,
    for_: Duration,
    until: impl Fn(&str) -> bool,
) -> Vec<(Instant, String)> {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < for_ {
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = until(&msg);
            got.push((Instant::now(), msg));
            if done {
                break;
            }
        }
    }
    got
}

fn run_notified(notify_socket: &str) -> Proc {
    Proc::start_with_env(
        &[
            "run",
            "--host-root",
            upstream("node-exporter-upstream").to_str().unwrap(),
            "--interval-seconds",
            "0.5",
        ],
        "/livez",
        &[
            ("NOTIFY_SOCKET", notify_socket),
            ("WATCHDOG_USEC", "200000"),
        ],
    )
}

#[test]
fn notify_ready_after_first_round_watchdog_while_beating_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut agent = run_notified(path.to_str().unwrap());

    // READY=1 comes exactly when the first round is published: /readyz is 200 by then.
    let got = receive(&sock, Duration::from_secs(20), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    let ready = got
        .iter()
        .find(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {got:?}: {}", agent.stderr()));
    assert!(
        ready.1.lines().any(|l| l.starts_with("STATUS=node ")),
        "READY=1 carries the verdict: {:?}",
        ready.1
    );
    assert_eq!(get(agent.addr, "/readyz").unwrap().status, 200);
    assert_eq!(
        got.iter().filter(|(_, m)| m.contains("READY=1")).count(),
        1,
        "{got:?}"
    );

    // WATCHDOG=1 every WATCHDOG_USEC/2 = 100 ms while the loop beats.
    let got = receive(&sock, Duration::from_millis(1500), |_| false);
    let pings = got.iter().filter(|(_, m)| m == "WATCHDOG=1").count();
    assert!((8..=20).contains(&pings), "{pings} pings in 1.5 s: {got:?}");
    assert!(!got.iter().any(|(_, m)| m.contains("READY=1")), "{got:?}");

    // SIGTERM: STOPPING=1, then a prompt exit.
    let took = agent.signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(3));
    assert!(took.is_some(), "agent did not exit on SIGTERM");
    let got = receive(&sock, Duration::from_millis(200), |m| m == "STOPPING=1");
    assert!(
        got.iter().any(|(_, m)| m == "STOPPING=1"),
        "no STOPPING=1: {got:?}"
    );
}

#[test]
fn notify_reaches_an_abstract_socket() {
    let name = format!("gluten-node-agent-test-{}", std::process::id());
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let _agent = run_notified(&format!("@{name}"));
    let got = receive(&sock, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert!(got.iter().any(|(_, m)| m.contains("READY=1")), "{got:?}");
}

#[test]
fn aggregator_notifies_ready_once_serving_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let data = dir.path().join("data");
    let mut agg = Proc::start_with_env(
        &["aggregator", "--data-dir", data.to_str().unwrap()],
        "/livez",
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    let got = receive(&sock, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert!(got.iter().any(|(_, m)| m == "READY=1"), "{got:?}");
    // Ready means serving.
    assert_eq!(get(agg.addr, "/readyz").unwrap().status, 200);
    agg.signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(5))
        .expect("aggregator did not stop on SIGTERM");
    let got = receive(&sock, Duration::from_secs(2), |m| m.contains("STOPPING=1"));
    assert!(got.iter().any(|(_, m)| m == "STOPPING=1"), "{got:?}");
}

#[test]
fn without_notify_socket_the_agent_runs_as_before() {
    let agent = Proc::start(
        &[
            "run",
            "--host-root",
            upstream("node-exporter-upstream").to_str().unwrap(),
        ],
        "/livez",
    );
    assert!(
        eventually(Duration::from_secs(20), || {
            (get(agent.addr, "/readyz").ok()?.status == 200).then_some(())
        })
        .is_some()
    );
}

/// `systemd-analyze verify` on a copy of each unit whose binary paths point at the binary under
/// test (verify refuses a unit whose ExecStart does not exist). Any output is a failure: verify
/// only warns (exit 0) about unknown keys and bad values.
#[test]
fn systemd_units_verify_cleanly() {
    assert!(
        have("systemd-analyze"),
        "systemd-analyze is missing (apt-get install systemd)"
    );
    let bin = agent_bin();
    let dir = tempfile::tempdir().unwrap();
    let units_dir = repo_root().join("systemd");
    let mut verified = 0;
    for entry in std::fs::read_dir(&units_dir).unwrap() {
        let unit = entry.unwrap().path();
        if unit.extension().and_then(|e| e.to_str()) != Some("service") {
            continue;
        }
        let text = std::fs::read_to_string(&unit).unwrap();
        assert!(
            text.contains("ExecStart=/usr/local/bin/gluten-node-agent "),
            "{}: the binary is expected at /usr/local/bin/gluten-node-agent",
            unit.display()
        );
        let copy = dir.path().join(unit.file_name().unwrap());
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/gluten-node-agent", bin.to_str().unwrap()),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {}: {}\n{said}",
            unit.display(),
            out.status
        );
        verified += 1;
    }
    assert_eq!(verified, 2, "expected the agent and the aggregator unit");
}

/// The example config the agent unit's ExecStartPre validates is valid.
#[test]
fn systemd_example_config_passes_check_config() {
    let out = Command::new(agent_bin())
        .args(["run", "--check-config", "--config"])
        .arg(repo_root().join("systemd/agent.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
