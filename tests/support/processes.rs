//! Real processes: the `gluten-node-agent` binary built once, agents and aggregators as child
//! processes on loopback ports, polling, and the environment the tests need (root, programs).

use crate::fixtures::repo_root;
use crate::http::{Response, get, request};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the real `gluten-node-agent` binary, built once per test process (same profile).
pub fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("GLUTEN_NODE_AGENT_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(cargo);
        cmd.current_dir(repo_root()).args([
            "build",
            "-q",
            "-p",
            "gluten-node-agent",
            "--bin",
            "gluten-node-agent",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build of the agent binary failed");
        // target/<profile>/deps/<test-binary> -> target/<profile>/gluten-node-agent
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let bin = profile_dir.join("gluten-node-agent");
        assert!(bin.exists(), "{} not found after building", bin.display());
        bin
    })
    .clone()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running agent (or aggregator) process; killed on drop.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Starts `gluten-node-agent <args>` listening on a fresh port (passed as `--listen`), and
    /// waits until `ready_path` answers (any status), at most 30 s.
    pub fn start(args: &[&str], ready_path: &str) -> Proc {
        Self::start_with_env(args, ready_path, &[])
    }

    pub fn start_with_env(args: &[&str], ready_path: &str, env: &[(&str, &str)]) -> Proc {
        Self::start_limited(args, ready_path, env, None)
    }

    /// As [`start_with_env`](Self::start_with_env), with `RLIMIT_NOFILE` (soft and hard) set to
    /// `nofile` in the child before it runs the agent, as systemd's `LimitNOFILE=` would.
    pub fn start_limited(
        args: &[&str],
        ready_path: &str,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Proc {
        Self::start_when(args, env, nofile, ready_path, |addr| {
            get(addr, ready_path).is_ok()
        })
    }

    /// Starts the agent and waits until `ready(addr)` holds (e.g. an HTTPS request answers),
    /// at most 30 s; `what` names the wait in the panic.
    pub fn start_when(
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
        what: &str,
        ready: impl Fn(SocketAddr) -> bool,
    ) -> Proc {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = Command::new(agent_bin());
        cmd.args(args)
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("starting gluten-node-agent");
        let mut p = Proc {
            child,
            addr,
            stderr_path,
            _dir: dir,
        };
        let t0 = Instant::now();
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("agent exited early with {status}: {}", p.stderr());
            }
            if ready(addr) {
                return p;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                panic!("agent did not answer {what} within 30s: {}", p.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends a signal and waits up to `within` for the process to exit; returns how long it took.
    pub fn signal_and_wait(
        &mut self,
        sig: nix::sys::signal::Signal,
        within: Duration,
    ) -> Option<Duration> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let t0 = Instant::now();
        nix::sys::signal::kill(pid, sig).unwrap();
        while t0.elapsed() < within {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 20 ms until it returns `Some`, at most `within`.
pub fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Tests that mount filesystems (tmpfs, loop devices, binds) need root; CI runs as root. Fails
/// loudly rather than skipping, so a green run always means the mounts were exercised.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test mounts filesystems and must run as root (CI does)"
    );
}

/// Least-squares slope of `y` over `x` (per unit of `x`); `None` with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// An aggregator on a port chosen by the test (so it can come back on the same one).
pub struct Aggregator {
    pub child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Aggregator {
    pub fn start(addr: SocketAddr, args: &[&str], log_dir: &Path) -> Aggregator {
        Self::start_with(addr, args, log_dir, |addr| {
            get(addr, "/readyz").is_ok_and(|r| r.status == 200)
        })
    }

    /// As [`start`](Self::start), ready when `ready(addr)` says so (e.g. over HTTPS).
    pub fn start_with(
        addr: SocketAddr,
        args: &[&str],
        log_dir: &Path,
        ready: impl Fn(SocketAddr) -> bool,
    ) -> Aggregator {
        let log = log_dir.join(format!("aggregator-{}.log", addr.port()));
        let child = Command::new(agent_bin())
            .arg("aggregator")
            .args(args)
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .expect("starting the aggregator");
        let mut a = Aggregator { child, addr, log };
        let up = eventually(Duration::from_secs(30), || {
            if let Ok(Some(s)) = a.child.try_wait() {
                panic!("aggregator exited with {s}: {}", a.log());
            }
            ready(addr).then_some(())
        });
        assert!(up.is_some(), "aggregator not ready: {}", a.log());
        a
    }

    /// An aggregator serving TLS with `cert` and `key`, its data under `dir/data` and its log in
    /// `dir`, ready once `/readyz` answers 200 over TLS trusting `ca_pem`; `extra` flags follow.
    pub fn start_tls(
        addr: SocketAddr,
        dir: &Path,
        cert: &Path,
        key: &Path,
        ca_pem: &str,
        extra: &[&str],
    ) -> Aggregator {
        let data = dir.join("data");
        let mut args = vec![
            "--data-dir",
            data.to_str().unwrap(),
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let ca = ca_pem.to_string();
        Self::start_with(addr, &args, dir, move |addr| {
            crate::tls::get_tls(addr, "/readyz", &ca, &[]).is_ok_and(|r| r.status == 200)
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// The names `/api/v1/nodes` lists, every page.
    pub fn node_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut path = "/api/v1/nodes?limit=5000".to_string();
        loop {
            let r = get(self.addr, &path).unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            let page: proto::fleet::NodeList = serde_json::from_str(&r.body).unwrap();
            names.extend(page.nodes.into_iter().map(|n| n.name));
            match page.next {
                Some(c) => path = format!("/api/v1/nodes?limit=5000&cursor={c}"),
                None => return names,
            }
        }
    }

    /// SIGTERM, then wait.
    pub fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }

    pub fn nodes(&self) -> proto::fleet::NodeList {
        let r = get(self.addr, "/api/v1/nodes").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    pub fn fleet(&self) -> proto::fleet::FleetView {
        let r = get(self.addr, "/api/v1/fleet").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    pub fn node(&self, name: &str) -> proto::fleet::NodeDetail {
        let r = get(self.addr, &format!("/api/v1/nodes/{name}")).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    pub fn post(&self, body: &[u8], token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        request(self.addr, "POST", "/api/v1/reports", &headers, Some(body)).unwrap()
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh 127.0.0.1 address with a free port.
pub fn loopback() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// Raises this process's `RLIMIT_NOFILE` soft limit to its hard limit, so tests running at once
/// can hold their sockets; panics when the hard limit is below `n`.
pub fn raise_fd_limit(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max >= n,
        "this test needs {n} file descriptors; the hard limit is {}",
        lim.rlim_max
    );
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// Resident set size of process `pid`, bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}
