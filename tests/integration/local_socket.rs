//! The daemon's local Unix socket (`[local_socket]`) and `check --from-daemon` over it, real
//! processes: a daemon with TLS and basic auth on its TCP port still answers `check --output
//! yarn` and `--output npd` through the socket, with the socket's group and mode as the only
//! access control; a stale or absent socket gives YARN an UNKNOWN line and NPD exit 2. Also the
//! NPD plugin run as node-problem-detector runs it (timeout, output cut), standalone.

use gluten_node_tests::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Scratch thresholds off, so a fixture's verdict never depends on this machine's free space.
const NO_SPACE_RULES: &str = "[scratch]\nfail_free_ratio = 0\nwarn_free_ratio = 0\n\
                              min_free_bytes = 0\nmin_free_inodes_ratio = 0\n";

/// What node-problem-detector's custom plugin monitor makes of one run: its status (0 OK,
/// 1 NonOK, else Unknown; killed at `timeout`: Unknown) and its message (stdout trimmed, then
/// the first `max_output_length` bytes). The exit code and the raw stdout come along.
struct NpdRun {
    code: Option<i32>,
    raw: String,
    message: String,
    took: Duration,
}

fn run_as_npd(args: &[&str], timeout: Duration, max_output_length: usize) -> NpdRun {
    run_as_npd_with(
        Command::new(agent_bin()).args(args),
        timeout,
        max_output_length,
    )
}

fn run_as_npd_with(cmd: &mut Command, timeout: Duration, max_output_length: usize) -> NpdRun {
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    let mut raw = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    let trimmed = raw.trim().as_bytes();
    let message =
        String::from_utf8_lossy(&trimmed[..trimmed.len().min(max_output_length)]).into_owned();
    NpdRun {
        code,
        raw,
        message,
        took,
    }
}

/// The plugin's output fits NPD's limit as it is: one line, no byte cut needed.
fn assert_fits(run: &NpdRun, max: usize) {
    assert_eq!(run.raw.lines().count(), 1, "{:?}", run.raw);
    assert!(run.raw.trim().len() <= max, "{:?}", run.raw);
    assert_eq!(run.message, run.raw.trim());
}

fn npd_args<'a>(config: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "check",
        "--output",
        "npd",
        "--config",
        config.to_str().unwrap(),
    ];
    v.extend_from_slice(extra);
    v
}

fn write_config(dir: &Path, root: &Path, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "host_root = \"{}\"\ninterval_seconds = 0.3\n{extra}\n{NO_SPACE_RULES}",
            root.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_npd_plugin_standalone_on_healthy_failing_and_unknown_roots() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(5);
    // Failing: no /tmp in this tree, scratch fails. NonOK, the failing check in the message.
    let failing = write_config(dir.path(), &upstream("node-exporter-upstream"), "");
    let run = run_as_npd(&npd_args(&failing, &[]), timeout, 80);
    assert_eq!(run.code, Some(1), "{:?}", run.raw);
    assert_eq!(run.message, "fail scratch: /tmp does not exist");
    assert_fits(&run, 80);
    // A smaller limit: still one line within it, cut on a character boundary.
    let run = run_as_npd(
        &npd_args(&failing, &["--max-output-length", "20"]),
        timeout,
        20,
    );
    assert_eq!(run.code, Some(1));
    assert_fits(&run, 20);
    assert!(
        run.message.starts_with("fail scratch:"),
        "{:?}",
        run.message
    );

    // Healthy: /tmp exists, and a NodeManager whose limits are generous. OK (warnings, if any,
    // stay 0).
    let healthy_root = copy_tree(&upstream("node-exporter-upstream"));
    std::fs::create_dir(healthy_root.path().join("tmp")).unwrap();
    std::fs::write(
        healthy_root.path().join("tmp/hadoop-yarn-nodemanager.pid"),
        "4242\n",
    )
    .unwrap();
    std::fs::create_dir_all(healthy_root.path().join("proc/4242")).unwrap();
    std::fs::copy(
        repo_root().join("tests/fixtures/limits/soft-1024-hard-524288.limits"),
        healthy_root.path().join("proc/4242/limits"),
    )
    .unwrap();
    let healthy_dir = tempfile::tempdir().unwrap();
    let healthy = write_config(healthy_dir.path(), healthy_root.path(), "");
    let run = run_as_npd(&npd_args(&healthy, &[]), timeout, 80);
    assert_eq!(run.code, Some(0), "{:?}", run.raw);
    assert!(run.message.starts_with("ok"), "{:?}", run.message);
    assert_fits(&run, 80);

    // Unknown: /proc/meminfo is a FIFO nobody writes, so memory and hugepages time out.
    let meminfo = healthy_root.path().join("proc/meminfo");
    std::fs::remove_file(&meminfo).unwrap();
    nix::unistd::mkfifo(&meminfo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let run = run_as_npd(
        &npd_args(&healthy, &["--check-timeout-seconds", "0.5"]),
        timeout,
        80,
    );
    assert_eq!(run.code, Some(2), "{:?}", run.raw);
    assert!(run.message.starts_with("unknown "), "{:?}", run.message);
    assert!(run.message.contains("timed out"), "{:?}", run.message);
    assert_fits(&run, 80);
    // A round longer than NPD's timeout: the plugin answers Unknown before NPD kills it.
    let run = run_as_npd(
        &npd_args(&healthy, &["--check-timeout-seconds", "30"]),
        timeout,
        80,
    );
    assert_eq!(run.code, Some(2), "{:?}", run.raw);
    assert!(run.took < timeout, "took {:?}", run.took);
    assert!(
        run.message.starts_with("unknown: no verdict within"),
        "{:?}",
        run.message
    );
}

/// A daemon on `root` with TLS and basic auth on its TCP port and its local socket at
/// `dir/sock/agent.sock` (group `group`, mode 0660). Returns it, its config and the socket.
fn daemon_with_tls_auth_and_socket(
    dir: &Path,
    root: &Path,
    group: &str,
) -> (Proc, PathBuf, PathBuf, Pki) {
    let pki = Pki::new();
    pki.write(dir);
    let hash = bcrypt::hash("gluten", 4).unwrap();
    let web = dir.join("web-config.toml");
    std::fs::write(
        &web,
        format!(
            "[tls_server_config]\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\n\n\
             [basic_auth_users]\nprometheus = \"{hash}\"\n"
        ),
    )
    .unwrap();
    let sock_dir = dir.join("sock");
    std::fs::create_dir(&sock_dir).unwrap();
    std::fs::set_permissions(&sock_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = sock_dir.join("agent.sock");
    let config = write_config(
        dir,
        root,
        &format!(
            "web_config_file = \"{}\"\n\n[local_socket]\npath = \"{}\"\ngroup = {group}\nmode = 0o660\n",
            web.display(),
            socket.display()
        ),
    );
    let ca = pki.ca_pem.clone();
    let daemon = Proc::start_when(
        &["run", "--config", config.to_str().unwrap()],
        &[],
        None,
        "https /readyz",
        move |addr| get_tls(addr, "/readyz", &ca, &[]).is_ok_and(|r| r.status == 200),
    );
    (daemon, config, socket, pki)
}

fn yarn_lines(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = Command::new(agent_bin())
        .args(["check", "--output", "yarn"])
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn check_from_daemon_reads_a_tls_and_basic_auth_daemon_through_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = upstream("node-exporter-upstream");
    let root_user = nix::unistd::geteuid().is_root();
    // As root the socket goes to another group than ours (nobody's 65534), by name when the
    // system has one; otherwise to our own group, by number.
    let (gid, group) = if root_user {
        match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534)) {
            Ok(Some(g)) => (65534, format!("\"{}\"", g.name)),
            _ => (65534, "65534".to_string()),
        }
    } else {
        let g = nix::unistd::getegid().as_raw();
        (g, g.to_string())
    };
    let (daemon, config, socket, pki) = daemon_with_tls_auth_and_socket(dir.path(), &root, &group);
    // The TCP port wants credentials; the socket file carries the access control instead.
    let denied = get_tls(daemon.addr, "/health", &pki.ca_pem, &[]).unwrap();
    assert_eq!(denied.status, 401);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o660, "{}", daemon.stderr());
    assert_eq!(meta.gid(), gid);

    // The YARN health script as the brief has it: the TCP address and the daemon's config,
    // nothing else. The config names the socket, so the socket is read: the real verdict.
    let addr = daemon.addr.to_string();
    let (code, lines) = yarn_lines(&["--from-daemon", &addr, "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(lines[0], "ERROR scratch: /tmp does not exist", "{lines:#?}");
    assert!(lines.len() > 1, "{lines:#?}");
    // Explicitly: unix:PATH, and JSON equal to what the daemon serves over TLS with auth.
    let out = Command::new(agent_bin())
        .args(["check", "--output", "json", "--host-root", "/"])
        .arg("--from-daemon")
        .arg(format!("unix:{}", socket.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let via_socket: proto::NodeReport = serde_json::from_slice(&out.stdout).unwrap();
    let good = [("Authorization", "Basic cHJvbWV0aGV1czpnbHV0ZW4=")];
    let via_tcp: proto::NodeReport = serde_json::from_str(
        &get_tls(daemon.addr, "/health", &pki.ca_pem, &good)
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(via_socket.node, via_tcp.node);
    assert_eq!(via_socket.status, proto::Status::Fail);

    // The NPD plugin against the running daemon, as NPD runs it.
    let sock_arg = format!("unix:{}", socket.display());
    let run = run_as_npd(
        &npd_args(&config, &["--from-daemon", &sock_arg]),
        Duration::from_secs(5),
        80,
    );
    assert_eq!(run.code, Some(1), "{:?}", run.raw);
    assert_eq!(run.message, "fail scratch: /tmp does not exist");
    assert_fits(&run, 80);

    // Over TCP, with the web config trusted (its CA as push.ca_file) but no socket in the
    // config: TLS works, basic auth cannot be answered: UNKNOWN saying to use the socket.
    let web = dir.path().join("web-config.toml");
    let ca = dir.path().join("ca.crt");
    let (code, lines) = yarn_lines(&[
        "--from-daemon",
        &addr,
        "--host-root",
        "/",
        "--set",
        &format!("web_config_file=\"{}\"", web.display()),
        "--set",
        &format!("push.ca_file=\"{}\"", ca.display()),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("UNKNOWN gluten-node-agent:") && lines[0].contains("basic auth"),
        "{lines:#?}"
    );

    if root_user {
        // Only the socket's group gets in: nobody (gid 65534) may, another uid/gid may not.
        let as_user = |uid: u32, gid: u32| {
            let mut cmd = Command::new(agent_bin());
            cmd.args([
                "check",
                "--output",
                "npd",
                "--host-root",
                "/",
                "--from-daemon",
            ])
            .arg(&sock_arg);
            use std::os::unix::process::CommandExt;
            // As root, std also drops the supplementary groups when it sets the uid.
            cmd.uid(uid).gid(gid);
            run_as_npd_with(&mut cmd, Duration::from_secs(5), 80)
        };
        let member = as_user(65534, 65534);
        assert_eq!(member.code, Some(1), "{:?}", member.raw);
        let stranger = as_user(54321, 54321);
        assert_eq!(stranger.code, Some(2), "{:?}", stranger.raw);
        assert!(
            stranger.raw.to_lowercase().contains("permission denied"),
            "{:?}",
            stranger.raw
        );
    }

    // The daemon dies without cleaning up (SIGKILL): the socket file stays, nobody answers.
    let mut daemon = daemon;
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    assert!(socket.exists());
    let (code, lines) = yarn_lines(&["--from-daemon", &addr, "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("UNKNOWN gluten-node-agent: cannot reach the daemon's socket"),
        "{lines:#?}"
    );
    let run = run_as_npd(
        &npd_args(&config, &["--from-daemon", &sock_arg]),
        Duration::from_secs(5),
        80,
    );
    assert_eq!(run.code, Some(2), "{:?}", run.raw);
    assert!(
        run.message.starts_with("unknown: cannot reach"),
        "{:?}",
        run.message
    );
    assert_fits(&run, 80);
    // Absent: the same.
    std::fs::remove_file(&socket).unwrap();
    let run = run_as_npd(
        &npd_args(&config, &["--from-daemon", &sock_arg]),
        Duration::from_secs(5),
        80,
    );
    assert_eq!(run.code, Some(2), "{:?}", run.raw);
    let (code, lines) = yarn_lines(&["--from-daemon", &addr, "--config", config.to_str().unwrap()]);
    assert_eq!((code, lines.len()), (Some(0), 1), "{lines:#?}");
    assert!(lines[0].starts_with("UNKNOWN"), "{lines:#?}");
}

#[test]
fn a_restarted_daemon_replaces_its_stale_socket_and_removes_it_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let root = upstream("node-exporter-upstream");
    let socket = dir.path().join("agent.sock");
    let config = write_config(
        dir.path(),
        &root,
        &format!("[local_socket]\npath = \"{}\"\n", socket.display()),
    );
    // A socket file nobody listens on, as a killed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut daemon = Proc::start(&["run", "--config", config.to_str().unwrap()], "/livez");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    // A second daemon with the same socket refuses to start, naming the key.
    let out = Command::new(agent_bin())
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("local_socket.path") && err.contains("another daemon"),
        "{err}"
    );
    daemon.signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(5));
    assert!(!socket.exists());
}
