//! Support for the integration tests: fixture paths, golden files, running checks on a tree, the
//! real `gluten-node-agent` binary as a child process, and a tiny HTTP client.

use agent::check::{Check, Outcome};
use agent::config::Config;
use agent::engine::{Engine, Policy, Snapshot};
use agent::host::Host;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// One of the upstream trees: `node-exporter-upstream`, `procfs-upstream`, ...
pub fn upstream(name: &str) -> PathBuf {
    fixture("upstream").join(name)
}

/// A config from TOML text, with `host_root` set to `root`.
pub fn config(root: &Path, toml_text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, toml_text).unwrap();
    let mut c = Config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("test config: {e}"));
    c.host_root = root.to_path_buf();
    c
}

/// Runs one round of the enabled checks of `config` on its host root (architecture `arch`).
pub fn round(config: &Config, arch: &str) -> Snapshot {
    let host = Host::new(&config.host_root).with_arch(arch);
    let checks: Vec<Arc<dyn Check>> = agent::checks::build(config);
    let node = proto::NodeInfo {
        name: "test-node".into(),
        agent_version: "test".into(),
        ..Default::default()
    };
    let mut engine = Engine::new(
        host,
        node,
        checks,
        &agent::engine::policies(config),
        Policy::with_timeout(Duration::from_secs_f64(config.check_timeout_seconds)),
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine.run_round())
}

/// Runs the single check `name` on `root` with `[name]` settings given as TOML lines.
pub fn run_check(root: &Path, name: &str, settings_toml: &str) -> proto::CheckResult {
    let mut text = String::new();
    for other in agent::checks::NAMES {
        if other != name {
            text.push_str(&format!("[{other}]\nenabled = false\n"));
        }
    }
    text.push_str(&format!("[{name}]\n{settings_toml}\n"));
    let c = config(root, &text);
    let s = round(&c, "x86_64");
    s.report.checks.into_iter().next().expect("the check ran")
}

/// Replaces what changes from run to run (timestamps, durations, the fixture's absolute path)
/// so a report can be compared with a golden file.
pub fn normalize(mut v: serde_json::Value, root: &Path) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value, root: &str) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = matches!(
                        k.as_str(),
                        "checked_at" | "generated_at" | "duration_seconds"
                    ) || k.ends_with("_latency_seconds")
                        || k.ends_with("_age_seconds");
                    if volatile && !x.is_null() {
                        *x = serde_json::Value::String("<volatile>".into());
                    } else {
                        walk(x, root);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, root)),
            serde_json::Value::String(s) if !root.is_empty() && s.contains(root) => {
                *s = s.replace(root, "<root>");
            }
            _ => {}
        }
    }
    walk(&mut v, &root.to_string_lossy());
    v
}

/// Compares `actual` with `tests/fixtures/expected/<name>.json`; `UPDATE_EXPECT=1` rewrites it.
pub fn assert_golden(name: &str, actual: &serde_json::Value) {
    let path = fixture("expected").join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {} (UPDATE_EXPECT=1 writes it)",
            path.display()
        )
    });
    if expected != text {
        panic!(
            "{} differs from the golden file {}\n--- expected\n{expected}\n--- actual\n{text}",
            name,
            path.display()
        );
    }
}

/// Runs the check `name` on `root` (see [`run_check`]) and compares its normalised report with
/// the golden file `golden` (see [`assert_golden`]).
pub fn run_check_golden(
    root: &Path,
    name: &str,
    settings_toml: &str,
    golden: &str,
) -> proto::CheckResult {
    let r = run_check(root, name, settings_toml);
    assert_golden(golden, &normalize(serde_json::to_value(&r).unwrap(), root));
    r
}

/// A golden value of a check's report through the engine (`result`) together with the gauges
/// and inventory of a direct run (`outcome`), which the report does not carry, normalised.
pub fn report_with_gauges(
    root: &Path,
    result: &proto::CheckResult,
    outcome: &Outcome,
) -> serde_json::Value {
    let golden = serde_json::json!({
        "result": serde_json::to_value(result).unwrap(),
        "metrics": outcome.metrics.iter().map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{}{{{}}} {}", s.name, labels.join(","), s.value)
        }).collect::<Vec<_>>(),
        "inventory": outcome.inventory.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    normalize(golden, root)
}

/// A copy of a fixture tree in a tempdir (`cp -a`: links, modes and special files kept), so a
/// test can change or break one file of it.
pub fn copy_tree(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

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
            if get(addr, ready_path).is_ok() {
                return p;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                panic!(
                    "agent did not answer {ready_path} within 30s: {}",
                    p.stderr()
                );
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

/// An HTTP response as the tests see it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` over a fresh connection, 5 s timeout.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(addr, "GET", path, &[], None)
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..nl])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
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

/// pyvelox's wheel unpacked (`pyvelox/libvelox.so` and its 28 dependencies in `pyvelox.libs/`):
/// a real 270 MB Velox build. Downloaded once into `target/pyvelox-cache` with `pip download`
/// and unpacked with `python3 -m zipfile`; needs network to PyPI the first time.
pub fn pyvelox_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo_root().join("target/pyvelox-cache");
        if dir.join("pyvelox/libvelox.so").exists() {
            return dir;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "pyvelox", "-d"])
            .arg(&dir)
            .status()
            .expect("running python3 -m pip download pyvelox");
        assert!(status.success(), "pip download pyvelox failed");
        let wheel = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .expect("a pyvelox wheel after pip download");
        let status = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&dir)
            .status()
            .expect("running python3 -m zipfile");
        assert!(status.success(), "unzipping {} failed", wheel.display());
        assert!(dir.join("pyvelox/libvelox.so").exists());
        dir
    })
    .clone()
}

/// Copies (or hard-links, when on the same filesystem) `src` to `dst`, creating parents.
pub fn place(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dst.display()));
    }
}

/// The value of the first sample line of a Prometheus text body that starts with `prefix` (the
/// metric name with its labels, e.g. `process_threads ` or `x{check="scratch"}`).
pub fn metric(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
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

/// A FUSE filesystem served by a thread of the test process that answers `INIT`, `GETATTR`
/// (the root is an empty 0755 dir), `LOOKUP` (ENOENT) and nothing else promptly, and never
/// answers `STATFS`: `stat` of the mount point works, `statvfs` blocks in the kernel, like an NFS
/// or FUSE mount whose server stopped answering. Mounted with the raw `mount(2)` on an fd of
/// `/dev/fuse` (no libfuse); needs root. Drop unmounts it (lazily) and closes the fd, which aborts
/// the connection: every request still waiting (statfs calls of the agent, even of a SIGKILLed
/// one, which waits uninterruptibly once the server has read its request) fails with ENOTCONN.
pub struct HungFuse {
    pub mount_point: PathBuf,
    /// STATFS requests received (and left unanswered) so far.
    pub statfs_seen: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

mod fuse_abi {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const STATFS: u32 = 17;
    pub const INIT: u32 = 26;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const BATCH_FORGET: u32 = 42;
    /// `struct fuse_in_header`.
    pub const IN_HEADER: usize = 40;
}

impl HungFuse {
    pub fn mount(mount_point: &Path) -> HungFuse {
        use std::ffi::CString;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::sync::atomic::{AtomicBool, AtomicU64};
        std::fs::create_dir_all(mount_point).unwrap();
        // O_CLOEXEC: the agent (and any other child of the test process) must not inherit it,
        // or closing ours would not abort the connection.
        let raw = unsafe {
            libc::open(
                c"/dev/fuse".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        assert!(
            raw >= 0,
            "open /dev/fuse: {} (FUSE is needed: the fuse module and /dev/fuse)",
            std::io::Error::last_os_error()
        );
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let target = CString::new(mount_point.as_os_str().as_encoded_bytes()).unwrap();
        let data = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fd.as_raw_fd()
        ))
        .unwrap();
        let rc = unsafe {
            libc::mount(
                c"gluten-hung".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount fuse on {}: {}",
            mount_point.display(),
            std::io::Error::last_os_error()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let statfs_seen = Arc::new(AtomicU64::new(0));
        let (s, seen) = (stop.clone(), statfs_seen.clone());
        let server = std::thread::Builder::new()
            .name("hung-fuse".into())
            .spawn(move || Self::serve(fd, &s, &seen))
            .unwrap();
        HungFuse {
            mount_point: mount_point.to_path_buf(),
            statfs_seen,
            stop,
            server: Some(server),
        }
    }

    fn serve(
        fd: std::os::fd::OwnedFd,
        stop: &std::sync::atomic::AtomicBool,
        statfs_seen: &std::sync::atomic::AtomicU64,
    ) {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        let raw = fd.as_raw_fd();
        let mut buf = vec![0u8; 256 * 1024];
        let reply = |unique: u64, error: i32, body: &[u8]| {
            let mut out = Vec::with_capacity(16 + body.len());
            out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
            out.extend_from_slice(&error.to_ne_bytes());
            out.extend_from_slice(&unique.to_ne_bytes());
            out.extend_from_slice(body);
            unsafe { libc::write(raw, out.as_ptr().cast(), out.len()) };
        };
        while !stop.load(Ordering::Acquire) {
            let mut pfd = libc::pollfd {
                fd: raw,
                events: libc::POLLIN,
                revents: 0,
            };
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
            if n < fuse_abi::IN_HEADER as isize {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ENOENT) => continue,
                    _ => return, // ENODEV: unmounted
                }
            }
            let u32_at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
            let opcode = u32_at(4);
            let unique = u64::from_ne_bytes(buf[8..16].try_into().unwrap());
            let nodeid = u64::from_ne_bytes(buf[16..24].try_into().unwrap());
            match opcode {
                fuse_abi::INIT => {
                    let major = u32_at(fuse_abi::IN_HEADER);
                    let mut out = [0u8; 64]; // struct fuse_init_out (7.23+)
                    out[0..4].copy_from_slice(&7u32.to_ne_bytes());
                    out[4..8].copy_from_slice(&31u32.to_ne_bytes());
                    out[16..18].copy_from_slice(&1u16.to_ne_bytes()); // max_background
                    out[18..20].copy_from_slice(&1u16.to_ne_bytes()); // congestion_threshold
                    out[20..24].copy_from_slice(&4096u32.to_ne_bytes()); // max_write
                    out[24..28].copy_from_slice(&1u32.to_ne_bytes()); // time_gran
                    if major != 7 {
                        reply(unique, -libc::EPROTO, &[]);
                    } else {
                        reply(unique, 0, &out);
                    }
                }
                fuse_abi::GETATTR if nodeid == 1 => {
                    let mut out = [0u8; 104]; // struct fuse_attr_out
                    out[16..24].copy_from_slice(&1u64.to_ne_bytes()); // ino
                    out[76..80].copy_from_slice(&0o040755u32.to_ne_bytes()); // mode
                    out[80..84].copy_from_slice(&2u32.to_ne_bytes()); // nlink
                    out[96..100].copy_from_slice(&4096u32.to_ne_bytes()); // blksize
                    reply(unique, 0, &out);
                }
                fuse_abi::LOOKUP => reply(unique, -libc::ENOENT, &[]),
                fuse_abi::STATFS => {
                    statfs_seen.fetch_add(1, Ordering::AcqRel);
                }
                fuse_abi::FORGET
                | fuse_abi::BATCH_FORGET
                | fuse_abi::INTERRUPT
                | fuse_abi::DESTROY => {}
                _ => reply(unique, -libc::ENOSYS, &[]),
            }
        }
        // Dropping `fd` (the last one) aborts the connection.
    }
}

impl Drop for HungFuse {
    fn drop(&mut self) {
        use std::ffi::CString;
        let target = CString::new(self.mount_point.as_os_str().as_encoded_bytes()).unwrap();
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}

/// How a [`StubAggregator`] answers `POST`s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StubMode {
    /// Reads the request and answers with this status.
    Status(u16),
    /// Accepts, reads the request, and never answers (holds the connection open).
    Hang,
    /// Sleeps this long, then answers 204.
    SlowOk(Duration),
}

/// A fake aggregator on 127.0.0.1 (std::net, a thread per connection) that records when each
/// request arrived and answers as its [`StubMode`] says; the mode can change while it runs.
/// `close` stops listening (the port then refuses connections) and `reopen` listens again on the
/// same port: a restarting aggregator.
pub struct StubAggregator {
    pub addr: SocketAddr,
    mode: Arc<std::sync::Mutex<StubMode>>,
    hits: Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    open_connections: Arc<std::sync::atomic::AtomicI64>,
    max_open_connections: Arc<std::sync::atomic::AtomicI64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl StubAggregator {
    pub fn start(mode: StubMode) -> StubAggregator {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = StubAggregator {
            addr,
            mode: Arc::new(std::sync::Mutex::new(mode)),
            hits: Default::default(),
            open_connections: Default::default(),
            max_open_connections: Default::default(),
            stop: Default::default(),
            acceptor: None,
        };
        s.listen(listener);
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: StubMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Arrival times of the requests so far, with their request lines.
    pub fn hits(&self) -> Vec<(Instant, String)> {
        self.hits.lock().unwrap().clone()
    }

    /// Most connections open at once so far.
    pub fn max_open_connections(&self) -> i64 {
        self.max_open_connections
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops listening: new connections are refused until [`reopen`](Self::reopen).
    pub fn close(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same port.
    pub fn reopen(&mut self) {
        self.close();
        self.stop = Default::default();
        let listener = eventually(Duration::from_secs(5), || {
            std::net::TcpListener::bind(self.addr).ok()
        })
        .expect("rebinding the stub's port");
        self.listen(listener);
    }

    fn listen(&mut self, listener: std::net::TcpListener) {
        use std::sync::atomic::Ordering;
        listener.set_nonblocking(true).unwrap();
        let (mode, hits, open, max_open, stop) = (
            self.mode.clone(),
            self.hits.clone(),
            self.open_connections.clone(),
            self.max_open_connections.clone(),
            self.stop.clone(),
        );
        self.acceptor = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let (mut conn, _) = match listener.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let n = open.fetch_add(1, Ordering::AcqRel) + 1;
                max_open.fetch_max(n, Ordering::AcqRel);
                let (mode, hits, open, stop) =
                    (mode.clone(), hits.clone(), open.clone(), stop.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    if let Some(line) = read_request(&mut conn) {
                        hits.lock().unwrap().push((Instant::now(), line));
                        let m = *mode.lock().unwrap();
                        match m {
                            StubMode::Status(code) => respond(&mut conn, code),
                            StubMode::SlowOk(d) => {
                                std::thread::sleep(d);
                                respond(&mut conn, 204);
                            }
                            StubMode::Hang => {
                                // Hold the connection until the client gives up (EOF) or the
                                // stub stops; bounded by the read timeout.
                                let mut b = [0u8; 256];
                                let t0 = Instant::now();
                                let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
                                while !stop.load(Ordering::Acquire)
                                    && t0.elapsed() < Duration::from_secs(120)
                                {
                                    match conn.read(&mut b) {
                                        Ok(0) => break,
                                        Ok(_) => {}
                                        Err(e)
                                            if e.kind() == std::io::ErrorKind::WouldBlock
                                                || e.kind() == std::io::ErrorKind::TimedOut => {}
                                        Err(_) => break,
                                    }
                                }
                            }
                        }
                    }
                    open.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }));
    }
}

impl Drop for StubAggregator {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads one HTTP/1.1 request (headers and a `Content-Length` body); returns its request line.
fn read_request(conn: &mut TcpStream) -> Option<String> {
    let mut raw = Vec::new();
    let mut b = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&b[..n]);
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if raw.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = raw.len() - head_end;
    while have < len.min(16 << 20) {
        let n = conn.read(&mut b).ok()?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Some(head.lines().next().unwrap_or_default().to_string())
}

fn respond(conn: &mut TcpStream, code: u16) {
    let body = if code >= 400 {
        "{\"error\":\"stub\"}"
    } else {
        ""
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {code} Stub\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

/// An aggregator on a port chosen by the test (so it can come back on the same one).
pub struct Aggregator {
    pub child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Aggregator {
    pub fn start(addr: SocketAddr, args: &[&str], log_dir: &Path) -> Aggregator {
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
            get(addr, "/readyz").ok().filter(|r| r.status == 200)
        });
        assert!(up.is_some(), "aggregator not ready: {}", a.log());
        a
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

/// A host tree (in a tempdir under target/) holding pyvelox's real `libvelox.so` at the host path
/// `lib`, its bundled libraries at `<dir of lib>/../pyvelox.libs` (where its
/// `RPATH $ORIGIN/../pyvelox.libs` points), this machine's C and C++ runtime libraries under
/// `/lib/x86_64-linux-gnu` (what the loader would find on a real host), and `cpuinfo` as
/// `/proc/cpuinfo`. Assertions about it must be about what was placed, not about this machine.
pub fn pyvelox_tree(lib: &str, cpuinfo: &str) -> (tempfile::TempDir, PathBuf) {
    let src = pyvelox_dir();
    let dir = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let root = dir.path().to_path_buf();
    let lib_local = root.join(lib.trim_start_matches('/'));
    place(&src.join("pyvelox/libvelox.so"), &lib_local);
    let libs = lib_local
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("pyvelox.libs");
    for e in std::fs::read_dir(src.join("pyvelox.libs")).unwrap() {
        let e = e.unwrap();
        place(&e.path(), &libs.join(e.file_name()));
    }
    for name in [
        "libc.so.6",
        "libm.so.6",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libz.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "ld-linux-x86-64.so.2",
    ] {
        let real = std::fs::canonicalize(Path::new("/lib/x86_64-linux-gnu").join(name))
            .unwrap_or_else(|e| panic!("/lib/x86_64-linux-gnu/{name}: {e}"));
        place(&real, &root.join("lib/x86_64-linux-gnu").join(name));
    }
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cpuinfo"), cpuinfo).unwrap();
    (dir, root)
}
