//! Connections as a hostile peer holds them, against the real binaries on 127.0.0.1: idle
//! connections past the fd limit, slowloris heads, bodies shorter than their `Content-Length`,
//! SIGTERM with half-sent requests open, memory after many connections; TLS on the aggregator
//! with certificates made here.

use gluten_node_tests::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn agent_args(root: &std::path::Path) -> Vec<String> {
    vec![
        "run".into(),
        "--host-root".into(),
        root.to_str().unwrap().into(),
        "--interval-seconds".into(),
        "0.5".into(),
    ]
}

fn start_agent(nofile: Option<u64>) -> Proc {
    let root = upstream("node-exporter-upstream");
    let args = agent_args(&root);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start_limited(&args, "/livez", &[], nofile)
}

/// Time to the first byte of the answer to `GET path` on a fresh connection, and its status.
fn first_byte(addr: SocketAddr, path: &str, within: Duration) -> Result<(Duration, u16), String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, within).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(within)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) => {}
        Ok(_) => return Err(format!("closed without an answer after {:?}", t0.elapsed())),
        Err(e) => return Err(format!("no answer after {:?}: {e}", t0.elapsed())),
    }
    let took = t0.elapsed();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let head = String::from_utf8_lossy(&rest);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((took, status))
}

/// `n` connections to `addr`, each having sent `prefix` (empty: idle). Connects that fail (a
/// full backlog) are left out.
fn open_many(addr: SocketAddr, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            if !prefix.is_empty() {
                s.write_all(prefix).ok()?;
            }
            Some(s)
        })
        .collect()
}

/// How many of `conns` the peer has closed, waiting at most `within` in all.
fn count_closed(conns: &mut [TcpStream], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut closed = vec![false; conns.len()];
    let mut b = [0u8; 256];
    loop {
        for (i, s) in conns.iter_mut().enumerate() {
            if closed[i] {
                continue;
            }
            s.set_nonblocking(true).unwrap();
            match s.read(&mut b) {
                Ok(0) => closed[i] = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => closed[i] = true,
            }
        }
        let n = closed.iter().filter(|c| **c).count();
        if n == conns.len() || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn livez_answers_within_a_second_with_1100_idle_connections_open_at_1024_fds() {
    raise_fd_limit(8192);
    let agent = start_agent(Some(1024));
    let idle = open_many(agent.addr, 1100, b"");
    assert!(idle.len() >= 1000, "only {} connections opened", idle.len());
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let (took, status) = first_byte(agent.addr, "/livez", Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("/livez under {} idle connections: {e}", idle.len()));
        assert_eq!(status, 200);
        worst = worst.max(took);
    }
    eprintln!(
        "FIGURE livez first byte under {} idle connections at 1024 fds: worst of 5 {:?}; agent RSS {} KiB",
        idle.len(),
        worst,
        rss_bytes(agent.child.id()) / 1024
    );
    assert!(worst < Duration::from_secs(1), "/livez took {worst:?}");
    // The connection cap keeps memory inside the DaemonSet's 48 MiB limit.
    let rss = rss_bytes(agent.child.id());
    assert!(
        rss < 40 << 20,
        "agent RSS {} KiB under idle connections",
        rss >> 10
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", agent.child.id()))
        .unwrap()
        .count();
    assert!(fds < 1024, "the agent holds {fds} fds at a limit of 1024");
}

#[test]
fn slowloris_heads_are_closed_within_the_deadline_while_probes_answer() {
    raise_fd_limit(8192);
    let agent = start_agent(None);
    let t0 = Instant::now();
    let mut slow = open_many(agent.addr, 500, b"GET /health HTTP/1.1\r\nHost: t\r\n");
    assert_eq!(slow.len(), 500);
    // Trickle a header byte now and then: it must not buy time.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(1));
        for s in &mut slow {
            let _ = s.write_all(b"X");
        }
        let (took, status) = first_byte(agent.addr, "/livez", Duration::from_secs(2)).unwrap();
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "/livez took {took:?}");
    }
    let closed = count_closed(&mut slow, Duration::from_secs(15));
    eprintln!(
        "FIGURE {closed} of 500 slowloris connections closed {:?} after they opened",
        t0.elapsed()
    );
    assert_eq!(
        closed,
        500,
        "{} of 500 partial-header connections still open after {:?}",
        500 - closed,
        t0.elapsed()
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

#[test]
fn memory_of_closed_connections_is_given_back() {
    raise_fd_limit(8192);
    let agent = start_agent(None);
    let pid = agent.child.id();
    // Warm up: one of everything, then the baseline.
    for _ in 0..50 {
        first_byte(agent.addr, "/livez", Duration::from_secs(2)).unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let base = rss_bytes(pid);
    // 10,000 connections opened and closed (four at a time), each with a request.
    let addr = agent.addr;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..2500 {
                    first_byte(addr, "/livez", Duration::from_secs(5)).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // 1,000 idle connections at once, then closed.
    let idle = open_many(addr, 1000, b"");
    std::thread::sleep(Duration::from_millis(500));
    let peak = rss_bytes(pid);
    drop(idle);
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_bytes(pid);
    eprintln!(
        "FIGURE agent RSS: baseline {} KiB, with 1000 idle connections {} KiB, after 10,000 connections opened and closed and the 1000 closed {} KiB",
        base / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(
        after <= base + 4 * 1024 * 1024,
        "RSS after closing: {} KiB, baseline {} KiB (peak {} KiB)",
        after / 1024,
        base / 1024,
        peak / 1024
    );
}

#[test]
fn the_agent_exits_within_a_second_on_sigterm_with_half_sent_requests_open() {
    let mut agent = start_agent(None);
    eventually(Duration::from_secs(20), || {
        (get(agent.addr, "/readyz").ok()?.status == 200).then_some(())
    })
    .expect("ready");
    let _partial = open_many(agent.addr, 5, b"GET /health HTTP/1.1\r\nHost: t\r\nX-");
    let _idle = open_many(agent.addr, 5, b"");
    std::thread::sleep(Duration::from_millis(200));
    let took = agent
        .signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no exit within 5 s of SIGTERM: {}", agent.stderr()));
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn the_aggregator_exits_on_sigterm_with_a_half_sent_request_open_and_bounds_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = loopback();
    let mut agg = Aggregator::start(addr, &["--data-dir", data.to_str().unwrap()], dir.path());
    // A Content-Length larger than the body: answered (an error) at the body deadline.
    let mut short = TcpStream::connect(addr).unwrap();
    short
        .write_all(b"POST /api/v1/reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"schema_version\":")
        .unwrap();
    short
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let t0 = Instant::now();
    let mut answer = Vec::new();
    let _ = short.read_to_end(&mut answer);
    let took = t0.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        took < Duration::from_secs(15),
        "a short body hung for {took:?}: {answer}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );

    let _partial = open_many(addr, 3, b"GET /api/v1/nodes HTTP/1.1\r\nHost: t\r\nX-");
    std::thread::sleep(Duration::from_millis(200));
    let pid = nix::unistd::Pid::from_raw(agg.child.id() as i32);
    let t0 = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let exited = eventually(Duration::from_secs(5), || {
        agg.child.try_wait().ok().flatten()
    });
    let took = t0.elapsed();
    assert!(
        exited.is_some(),
        "no exit within 5 s of SIGTERM: {}",
        agg.log()
    );
    assert!(
        took < Duration::from_secs(1),
        "took {took:?}: {}",
        agg.log()
    );
}

/// Every HTTP server of the binary goes through `serve` (the limits above hold for all
/// of them): no `axum::serve` or hand-rolled hyper connection elsewhere in `agent/src`.
#[test]
fn no_server_bypasses_the_hardened_serving() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("server") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if line.contains("axum::serve(") || line.contains("serve_connection(") {
                        out.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo_root().join("agent/src"), &mut found);
    assert!(
        found.is_empty(),
        "serve through serve::serve:\n{}",
        found.join("\n")
    );
}
