//! Probes and logins under hostile load, against the real binaries on loopback: 600 connections
//! sending wrong passwords to the agent (from distinct 127.0.0.x addresses, each with its own
//! bcrypt budget), 4,200 trickled bodies and 1,500 held 1 MiB bodies on the aggregator, a frozen
//! PostgreSQL (SIGSTOP), and FIFOs or `/dev/zero` in place of certificate, token and web config
//! files.

use gluten_node_tests::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A TCP connection to `to` from source address `from` (any 127.0.0.0/8 address is local).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let sa = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let src = sa(from, 0);
        if libc::bind(fd, (&src as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let dst = sa(*to.ip(), to.port());
        if libc::connect(fd, (&dst as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// One request on a fresh connection from `from`; the time to the whole answer, its status and
/// its text.
fn timed(
    from: Ipv4Addr,
    to: SocketAddr,
    request: &str,
    within: Duration,
) -> Result<(Duration, u16, String), String> {
    let t0 = Instant::now();
    let mut s = connect_from(from, to).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(within)).unwrap();
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer after {:?}: {text:?}", t0.elapsed()))?;
    Ok((t0.elapsed(), status, text))
}

fn get_req(path: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// `/livez` and `/readyz` answer (200 or 503) within a second, `n` times each; the slowest.
fn probes_answer(addr: SocketAddr, n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..n {
        for path in ["/livez", "/readyz"] {
            let (took, status, text) =
                timed(LOCAL, addr, &get_req(path, None), Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(status == 200 || status == 503, "{path}: {text}");
            assert!(took < Duration::from_secs(1), "{path} took {took:?}");
            worst = worst.max(took);
        }
    }
    worst
}

#[test]
fn agent_probes_and_first_logins_answer_within_a_second_under_600_wrong_password_connections() {
    raise_fd_limit(4096);
    let dir = tempfile::tempdir().unwrap();
    // Production cost.
    let (alice, bob) = (
        bcrypt::hash("alice-pw", 10).unwrap(),
        bcrypt::hash("bob-pw", 10).unwrap(),
    );
    let web = dir.path().join("web-config.toml");
    std::fs::write(
        &web,
        format!("[basic_auth_users]\nalice = \"{alice}\"\nbob = \"{bob}\"\n"),
    )
    .unwrap();
    let root = upstream("node-exporter-upstream");
    let agent = Proc::start(
        &[
            "run",
            "--host-root",
            root.to_str().unwrap(),
            "--interval-seconds",
            "0.5",
            "--web-config-file",
            web.to_str().unwrap(),
        ],
        "/livez",
    );
    let addr = agent.addr;

    // 600 connections from 30 addresses (127.0.0.10-39), each sending alice with a wrong
    // password every 200 ms; a closed connection is opened again.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, throttled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let wrong =
        get_req("/metrics", Some(&basic("alice", "wrong"))).replace("Connection: close\r\n", "");
    let hostile: Vec<_> = (0..4)
        .map(|t| {
            let (stop, answered, throttled, wrong) = (
                stop.clone(),
                answered.clone(),
                throttled.clone(),
                wrong.clone(),
            );
            std::thread::spawn(move || {
                let from = |i: usize| Ipv4Addr::new(127, 0, 0, 10 + (i % 30) as u8);
                let mut conns: Vec<(usize, Option<TcpStream>)> =
                    (t * 150..(t + 1) * 150).map(|i| (i, None)).collect();
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    for (i, c) in conns.iter_mut() {
                        if c.is_none() {
                            *c = connect_from(from(*i), addr).ok();
                            if let Some(s) = c {
                                s.set_nonblocking(true).unwrap();
                            }
                        }
                        let Some(s) = c else { continue };
                        let mut gone = s.write_all(wrong.as_bytes()).is_err();
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) => {
                                    gone = true;
                                    break;
                                }
                                Ok(n) => {
                                    let text = String::from_utf8_lossy(&buf[..n]);
                                    let heads = text.matches("HTTP/1.1 ").count();
                                    answered.fetch_add(heads, Ordering::Relaxed);
                                    throttled.fetch_add(
                                        text.matches("HTTP/1.1 429").count(),
                                        Ordering::Relaxed,
                                    );
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                                Err(_) => {
                                    gone = true;
                                    break;
                                }
                            }
                        }
                        if gone {
                            *c = None;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    // Let the flood fill the table and spend the addresses' budgets.
    std::thread::sleep(Duration::from_secs(3));
    let worst_probe = probes_answer(addr, 5);
    let login = |from: Ipv4Addr, user: &str, pw: &str| {
        timed(
            from,
            addr,
            &get_req("/metrics", Some(&basic(user, pw))),
            Duration::from_secs(20),
        )
        .unwrap()
    };
    let (bob_first, status, text) = login(Ipv4Addr::new(127, 0, 0, 2), "bob", "bob-pw");
    assert_eq!(status, 200, "{text}");
    let (alice_first, status, text) = login(Ipv4Addr::new(127, 0, 0, 3), "alice", "alice-pw");
    assert_eq!(status, 200, "{text}");
    let (bob_again, status, _) = login(Ipv4Addr::new(127, 0, 0, 2), "bob", "bob-pw");
    assert_eq!(status, 200);
    // A flooding address gets no bcrypt run for a wrong password at once: 429.
    let (_, status, text) = login(Ipv4Addr::new(127, 0, 0, 10), "bob", "nope");
    assert!(status == 429 || status == 401, "{text}");
    let worst_probe = worst_probe.max(probes_answer(addr, 3));
    stop.store(true, Ordering::Relaxed);
    for h in hostile {
        h.join().unwrap();
    }
    let (answered, throttled) = (
        answered.load(Ordering::Relaxed),
        throttled.load(Ordering::Relaxed),
    );
    eprintln!(
        "FIGURE agent under 600 wrong-password connections (30 addresses): probes worst {worst_probe:?}; first logins bob {bob_first:?}, alice {alice_first:?}; bob again {bob_again:?}; {answered} hostile requests answered, {throttled} of them 429"
    );
    for (who, took) in [
        ("bob", bob_first),
        ("alice", alice_first),
        ("bob again", bob_again),
    ] {
        assert!(took < Duration::from_secs(1), "{who}'s login took {took:?}");
    }
    assert!(
        throttled > answered / 2,
        "{throttled} of {answered} throttled"
    );
}

/// An aggregator with its data in `dir`.
fn aggregator(dir: &Path, extra: &[&str]) -> Aggregator {
    let data = dir.join("data");
    let mut args = vec!["--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    Aggregator::start(loopback(), &args, dir)
}

#[test]
fn aggregator_probes_answer_within_a_second_under_4200_trickled_bodies() {
    raise_fd_limit(12_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // LimitNOFILE=1024: 896 connections, so 4,200 bodies overflow the table within the body
    // deadline (10 s) even on a slow machine.
    let agg = Proc::start_limited(
        &["aggregator", "--data-dir", data.to_str().unwrap()],
        "/readyz",
        &[],
        Some(1024),
    );
    let head: &'static str = "POST /api/v1/reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 8000\r\n\r\n{";
    let t0 = Instant::now();
    let addr = agg.addr;
    let openers: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                (t * 525..(t + 1) * 525)
                    .filter_map(|i| {
                        // About 1,000 connects a second in all: a flood of held bodies, not a
                        // SYN flood (that one is the kernel's: SYN cookies, the accept queue).
                        if i % 25 == 0 {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        let from = Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
                        let mut s = connect_from(from, addr).ok()?;
                        s.write_all(head.as_bytes()).ok()?;
                        Some(s)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // While they open: probes mostly answer (a connect burst is partly the kernel's matter: the
    // accept queue), counted for the figure.
    let (mut burst_probes, mut burst_fast) = (0, 0);
    while !openers.iter().all(|h| h.is_finished()) {
        burst_probes += 1;
        if timed(
            LOCAL,
            addr,
            &get_req("/livez", None),
            Duration::from_secs(3),
        )
        .is_ok_and(|(took, status, _)| status == 200 && took < Duration::from_secs(1))
        {
            burst_fast += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let opened = t0.elapsed();
    let mut held: Vec<TcpStream> = openers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(held.len() >= 4100, "only {} connections", held.len());
    // Held (trickling a byte now and then): the table is full of bodies, so an API request is
    // refused at once with Retry-After, and the probes answer within a second.
    let (took, status, text) = timed(
        LOCAL,
        addr,
        &get_req("/api/v1/nodes", None),
        Duration::from_secs(3),
    )
    .unwrap();
    assert!(took < Duration::from_secs(1), "/api/v1/nodes took {took:?}");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    let mut worst = Duration::ZERO;
    for _ in 0..4 {
        for s in &mut held {
            let _ = s.write_all(b" ");
        }
        worst = worst.max(probes_answer(addr, 2));
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "FIGURE aggregator at LimitNOFILE=1024 with {} trickled bodies (opened in {opened:?}; /livez within 1 s in {burst_fast} of {burst_probes} tries meanwhile): held, /livez and /readyz worst {worst:?}, /api/v1/nodes 503 in {took:?}; RSS {} MiB",
        held.len(),
        rss_bytes(agg.child.id()) >> 20
    );
}

#[test]
fn aggregator_memory_stays_bounded_with_1500_held_1mib_bodies() {
    raise_fd_limit(12_000);
    let dir = tempfile::tempdir().unwrap();
    let agg = aggregator(dir.path(), &[]);
    let base = rss_bytes(agg.child.id());
    let body = vec![b' '; 1 << 20];
    let head = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Each connection sends its head and all but the last byte of its body, then holds.
    let mut conns: Vec<(TcpStream, usize, Vec<u8>)> = (0..1500)
        .filter_map(|i| {
            let from = Ipv4Addr::new(127, 0, 10 + (i / 250) as u8, 1 + (i % 250) as u8);
            let mut s = connect_from(from, agg.addr).ok()?;
            s.write_all(head.as_bytes()).ok()?;
            s.set_nonblocking(true).unwrap();
            Some((s, 0, Vec::new()))
        })
        .collect();
    assert!(conns.len() >= 1450, "only {} connections", conns.len());
    let t0 = Instant::now();
    let mut peak = 0;
    let mut worst = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(6) {
        for (s, sent, answer) in conns.iter_mut() {
            while *sent < body.len() - 1 {
                match s.write(&body[*sent..body.len() - 1]) {
                    Ok(n) => *sent += n,
                    Err(_) => break,
                }
            }
            let mut b = [0u8; 4096];
            if let Ok(n) = s.read(&mut b) {
                answer.extend_from_slice(&b[..n]);
            }
        }
        peak = peak.max(rss_bytes(agg.child.id()));
        if t0.elapsed() > Duration::from_secs(2) {
            worst = worst.max(probes_answer(agg.addr, 1));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = conns
        .iter()
        .filter(|(_, _, a)| {
            let a = String::from_utf8_lossy(a).to_ascii_lowercase();
            a.starts_with("http/1.1 503")
                && a.contains("retry-after")
                && a.contains("max_inflight_body_bytes")
        })
        .count();
    eprintln!(
        "FIGURE aggregator with {} held 1 MiB bodies: RSS {} MiB before, peak {} MiB; {refused} refused with 503 at once; probes worst {worst:?}",
        conns.len(),
        base >> 20,
        peak >> 20
    );
    assert!(peak < 200 << 20, "peak RSS {} MiB", peak >> 20);
    assert!(refused >= 1300, "only {refused} bodies refused with 503");
}

/// Pids of the cluster's postmaster (first line of `postmaster.pid`) and its children.
fn postgres_pids(pg: &PgCluster) -> Vec<i32> {
    let pidfile = std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).unwrap();
    let master: i32 = pidfile.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![master];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap_or(0) + 1..];
        if after.split_whitespace().nth(1) == Some(&master.to_string()) {
            pids.push(pid);
        }
    }
    pids
}

fn signal_all(pids: &[i32], sig: nix::sys::signal::Signal) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
    }
}

#[test]
fn a_frozen_postgresql_gets_503_within_the_deadline_while_probes_answer() {
    use nix::sys::signal::Signal;
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let agg = Aggregator::start(loopback(), &["--database-url", &pg.url()], dir.path());
    let report = serde_json::to_vec(&crate::fleet::report("n1", &[], "b1")).unwrap();
    assert_eq!(agg.post(&report, None).status, 204);
    let pids = postgres_pids(&pg);
    signal_all(&pids, Signal::SIGSTOP);
    struct Thaw(Vec<i32>);
    impl Drop for Thaw {
        fn drop(&mut self) {
            signal_all(&self.0, Signal::SIGCONT);
        }
    }
    let thaw = Thaw(pids);
    let addr = agg.addr;
    let post = std::thread::spawn(move || {
        let body = serde_json::to_vec(&crate::fleet::report("n2", &[], "b1")).unwrap();
        let req = format!(
            "POST /api/v1/reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            String::from_utf8(body).unwrap()
        );
        timed(LOCAL, addr, &req, Duration::from_secs(30)).unwrap()
    });
    let detail = std::thread::spawn(move || {
        timed(
            LOCAL,
            addr,
            &get_req("/api/v1/nodes/n1", None),
            Duration::from_secs(30),
        )
        .unwrap()
    });
    // The probes answer all along.
    let mut worst = Duration::ZERO;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        worst = worst.max(probes_answer(addr, 1));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (post_took, post_status, post_text) = post.join().unwrap();
    let (detail_took, detail_status, detail_text) = detail.join().unwrap();
    worst = worst.max(probes_answer(addr, 1));
    drop(thaw);
    eprintln!(
        "FIGURE frozen PostgreSQL: POST report {post_status} after {post_took:?}, node detail {detail_status} after {detail_took:?}; probes worst {worst:?}"
    );
    assert_eq!(post_status, 503, "{post_text}");
    assert_eq!(detail_status, 503, "{detail_text}");
    for took in [post_took, detail_took] {
        assert!(
            took >= Duration::from_secs(9) && took < Duration::from_secs(14),
            "{took:?}"
        );
    }
    assert!(
        agg.log()
            .contains("PostgreSQL did not answer within the deadline"),
        "{}",
        agg.log()
    );
    // Thawed: writes go through again (connections reopened).
    let ok = eventually(Duration::from_secs(20), || {
        (agg.post(&report, None).status == 204).then_some(())
    });
    assert!(ok.is_some(), "{}", agg.log());
}

#[test]
fn fifos_and_dev_zero_in_place_of_tls_and_token_files_keep_the_old_material() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (_, cert, key) = pki.write(&dir.path().join("tls"));
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let addr = loopback();
    let mut agg = Aggregator::start_tls(
        addr,
        dir.path(),
        &cert,
        &key,
        &pki.ca_pem,
        &["--auth-token-file", token.to_str().unwrap()],
    );
    // The certificate becomes a FIFO nobody writes, the token a link to /dev/zero.
    std::fs::remove_file(&cert).unwrap();
    nix::unistd::mkfifo(&cert, nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::remove_file(&token).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &token).unwrap();
    let logged = eventually(Duration::from_secs(15), || {
        // New connections look at the files; the old certificate keeps serving.
        let r = get_tls(addr, "/readyz", &pki.ca_pem, &[]).expect("the old certificate serves");
        assert_eq!(r.status, 200);
        let log = agg.log();
        (log.contains("a FIFO") && log.contains("a character device")).then_some(log)
    });
    assert!(logged.is_some(), "{}", agg.log());
    let pid = nix::unistd::Pid::from_raw(agg.child.id() as i32);
    let t0 = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let exited = eventually(Duration::from_secs(5), || {
        agg.child.try_wait().ok().flatten()
    });
    assert!(exited.is_some(), "{}", agg.log());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn a_fifo_in_place_of_the_web_config_keeps_the_users_and_sigterm_exits() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let web = dir.path().join("web-config.toml");
    std::fs::write(&web, format!("[basic_auth_users]\nu = \"{hash}\"\n")).unwrap();
    let root = upstream("node-exporter-upstream");
    let mut agent = Proc::start(
        &[
            "run",
            "--host-root",
            root.to_str().unwrap(),
            "--interval-seconds",
            "0.5",
            "--web-config-file",
            web.to_str().unwrap(),
        ],
        "/livez",
    );
    let auth = basic("u", "pw");
    let ok = |agent: &Proc| {
        timed(
            LOCAL,
            agent.addr,
            &get_req("/metrics", Some(&auth)),
            Duration::from_secs(5),
        )
        .map(|(took, status, _)| (took, status))
    };
    assert_eq!(ok(&agent).unwrap().1, 200);
    std::fs::remove_file(&web).unwrap();
    nix::unistd::mkfifo(&web, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let logged = eventually(Duration::from_secs(10), || {
        let (took, status) = ok(&agent).unwrap();
        assert_eq!(status, 200, "the users in force stay");
        assert!(took < Duration::from_secs(1), "{took:?}");
        agent.stderr().contains("a FIFO").then_some(())
    });
    assert!(logged.is_some(), "{}", agent.stderr());
    let took = agent
        .signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no exit within 5 s of SIGTERM: {}", agent.stderr()));
    assert!(took < Duration::from_secs(1), "{took:?}");
}
