//! A stub aggregator on loopback (std::net, a thread per connection) whose answers the test
//! chooses: a status, a hang, a slow success; it can close and reopen its port.

use crate::processes::eventually;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
