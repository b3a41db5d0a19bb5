//! `fleet-load`: the load generator of the fleet benchmark (`benches/fleet/run.sh`). One thread
//! (a current-thread runtime, so it takes at most one core), keep-alive HTTP/1.1 connections,
//! real reports (a template from `gluten-node-agent check`, the node name substituted).
//!
//! - `ingest ADDR TEMPLATE NODES CONNS SECONDS`: full reports as fast as the aggregator takes
//!   them, rotating over NODES names, for SECONDS and until every name was stored once.
//! - `steady ADDR TEMPLATE NODES CONNS SECONDS INTERVAL CHANGE`: every node sends one message per
//!   INTERVAL seconds, spread evenly: a heartbeat with its report's digest, or (a CHANGE
//!   fraction of nodes per interval) a changed full report.
//! - `get ADDR PATH SECONDS`: GET PATH back to back on one connection.
//!
//! Prints one line of figures per phase: rate, latency p50/p99/max, and per-kind counts.

use proto::NodeReport;
use proto::fleet::{Heartbeat, report_digest};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(16 << 10),
        }
    }

    /// One request; returns (status, body). Reconnects once when the connection was closed.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect(&self.addr).await?;
                s.set_nodelay(true)?;
                self.stream = Some(s);
            }
            match self.roundtrip(method, path, body).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 => {
                    let _ = e;
                    self.stream = None;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }

    async fn roundtrip(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let s = self.stream.as_mut().expect("connected");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        s.write_all(&req).await?;
        self.buf.clear();
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut chunk = [0u8; 8192];
        let (head_end, status, len) = loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..p]).to_ascii_lowercase();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad("status"))?;
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                break (p + 4, status, len);
            }
        };
        while self.buf.len() < head_end + len {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("closed in body"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok((status, self.buf[head_end..head_end + len].to_vec()))
    }
}

/// Latencies in microseconds and counts per outcome.
#[derive(Default)]
struct Stats {
    lat_us: Vec<u32>,
    kinds: std::collections::BTreeMap<String, u64>,
}

impl Stats {
    fn add(&mut self, t: Duration, kind: &str) {
        self.lat_us.push(t.as_micros().min(u32::MAX as u128) as u32);
        *self.kinds.entry(kind.to_string()).or_default() += 1;
    }

    fn merge(&mut self, o: Stats) {
        self.lat_us.extend(o.lat_us);
        for (k, v) in o.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
    }

    fn print(&mut self, phase: &str, elapsed: Duration) {
        self.lat_us.sort_unstable();
        let n = self.lat_us.len();
        let pct = |p: f64| {
            if n == 0 {
                0.0
            } else {
                self.lat_us[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0
            }
        };
        println!(
            "{phase}: {n} requests in {:.1}s = {:.0}/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:?}",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            pct(1.0),
            self.kinds
        );
    }
}

fn node_name(i: usize) -> String {
    format!("bench-node-{i:06}")
}

/// A node's report: the template with the name, and a generation in the inventory (a change).
fn report_of(template: &NodeReport, i: usize, generation: u64) -> (Vec<u8>, String) {
    let mut r = template.clone();
    r.node.name = node_name(i);
    r.node
        .inventory
        .insert("bench.generation".into(), generation.to_string());
    (serde_json::to_vec(&r).expect("encodes"), report_digest(&r))
}

async fn ingest(addr: String, template: Arc<NodeReport>, nodes: usize, conns: usize, secs: f64) {
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (addr, template, next) = (addr.clone(), template.clone(), next.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut c = Conn::new(&addr);
            let mut st = Stats::default();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                if Instant::now() >= until && k >= nodes {
                    break;
                }
                let (body, _) = report_of(&template, k % nodes, 0);
                let t = Instant::now();
                match c.send("POST", "/api/v1/reports", &body).await {
                    Ok((s, _)) => st.add(t.elapsed(), &format!("status_{s}")),
                    Err(_) => st.add(t.elapsed(), "io_error"),
                }
            }
            st
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await.expect("task"));
    }
    all.print("ingest (full reports)", t0.elapsed());
}

#[allow(clippy::too_many_arguments)]
async fn steady(
    addr: String,
    template: Arc<NodeReport>,
    nodes: usize,
    conns: usize,
    secs: f64,
    interval: f64,
    change: f64,
) {
    // Every node's current digest (generation 0, as ingested).
    let digests: Vec<String> = (0..nodes).map(|i| report_of(&template, i, 0).1).collect();
    let digests = Arc::new(std::sync::Mutex::new(digests));
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs_f64(secs);
    let slot = Duration::from_secs_f64(interval / nodes as f64);
    let change_every = (1.0 / change).round().max(1.0) as u64;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (addr, template, digests) = (addr.clone(), template.clone(), digests.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(&addr);
            let mut st = Stats::default();
            // This connection's messages: k = c, c + conns, ...; message k is node k % nodes,
            // due at t0 + k * slot.
            let mut k = c as u64;
            loop {
                let due = t0 + slot.mul_f64(k as f64);
                if due >= until {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let i = (k % nodes as u64) as usize;
                let round = k / nodes as u64;
                let t = Instant::now();
                // A fixed 1% of the nodes change each interval (a different 1% every round).
                if (i as u64 + round * 7919).is_multiple_of(change_every) {
                    let (body, d) = report_of(&template, i, round + 1);
                    digests.lock().unwrap()[i] = d;
                    match conn.send("POST", "/api/v1/reports", &body).await {
                        Ok((s, _)) => st.add(t.elapsed(), &format!("full_{s}")),
                        Err(_) => st.add(t.elapsed(), "io_error"),
                    }
                } else {
                    let hb = Heartbeat {
                        protocol: 2,
                        node: node_name(i),
                        digest: digests.lock().unwrap()[i].clone(),
                        sent_at: "2026-01-01T00:00:00Z".into(),
                    };
                    let body = serde_json::to_vec(&hb).expect("encodes");
                    match conn.send("POST", "/api/v1/heartbeats", &body).await {
                        Ok((200, b))
                            if b.windows(27).any(|w| w == b"\"full_report_required\":true") =>
                        {
                            st.add(t.elapsed(), "heartbeat_full_required")
                        }
                        Ok((s, _)) => st.add(t.elapsed(), &format!("heartbeat_{s}")),
                        Err(_) => st.add(t.elapsed(), "io_error"),
                    }
                }
                k += conns as u64;
            }
            st
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await.expect("task"));
    }
    all.print(
        &format!(
            "steady ({nodes} nodes every {interval}s, {:.1}% changing)",
            change * 100.0
        ),
        t0.elapsed(),
    );
}

async fn get_loop(addr: String, path: String, secs: f64) {
    let mut c = Conn::new(&addr);
    let mut st = Stats::default();
    let t0 = Instant::now();
    let mut bytes = 0;
    while t0.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        match c.send("GET", &path, b"").await {
            Ok((s, b)) => {
                bytes = b.len();
                st.add(t.elapsed(), &format!("status_{s}"))
            }
            Err(_) => st.add(t.elapsed(), "io_error"),
        }
    }
    st.print(&format!("GET {path} ({bytes} bytes)"), t0.elapsed());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: fleet-load ingest ADDR TEMPLATE NODES CONNS SECONDS | steady ADDR TEMPLATE NODES CONNS SECONDS INTERVAL CHANGE | get ADDR PATH SECONDS";
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("{usage}"));
    let num = |i: usize| arg(i).parse::<f64>().unwrap_or_else(|_| panic!("{usage}"));
    let template = || -> Arc<NodeReport> {
        let text = std::fs::read_to_string(arg(3)).expect("template");
        Arc::new(serde_json::from_str(&text.replace("__NODE__", "template")).expect("a report"))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        match arg(1).as_str() {
            "ingest" => ingest(arg(2), template(), num(4) as usize, num(5) as usize, num(6)).await,
            "steady" => {
                steady(
                    arg(2),
                    template(),
                    num(4) as usize,
                    num(5) as usize,
                    num(6),
                    num(7),
                    num(8),
                )
                .await
            }
            "get" => get_loop(arg(2), arg(3), num(4)).await,
            _ => panic!("{usage}"),
        }
    });
}
