//! Hardened HTTP serving, shared by the agent and the aggregator: our own accept loop over a
//! tokio `TcpListener`, hyper's HTTP/1 connection driver and an axum `Router` as the service.
//!
//! What it bounds, whatever a peer does (see [`Limits`]):
//! - **Head deadline.** A connection with no request in flight must deliver a complete request
//!   head within `header_timeout` of becoming idle (accepted, or its last response sent), TLS
//!   handshake included. The deadline is total: bytes trickled in do not extend it (slowloris).
//!   Idle keep-alive connections are closed by the same rule.
//! - **Body deadline.** A request body must arrive in full within `body_timeout` of the head; a
//!   `Content-Length` larger than what is sent fails the read instead of hanging.
//! - **Connections.** At most `max_connections` (below `RLIMIT_NOFILE`, with headroom for the
//!   files the process itself opens). At the limit a new connection closes the oldest idle one,
//!   so a probe still gets in when idle connections fill the table.
//! - **Probe reserve.** When every connection is running a request (bodies trickled in, requests
//!   waiting on a slow handler), up to `probe_reserve` more connections are taken into a reserve
//!   that serves only [`Limits::probe_paths`] (`/livez`, `/readyz`, ...): any other path is
//!   answered 503 with `Retry-After` at once, without reaching the application, and the reserve
//!   has a short head deadline and no keep-alive. A full reserve closes its oldest connection for
//!   a new one. Probes never queue behind the connection cap (nginx's answer-at-once, rather than
//!   the Kubernetes API server's exemption of probes from its in-flight limit, done at accept).
//!   A full reserve closes its oldest connection without a request, so a probe whose head has
//!   arrived is answered even while connections keep pouring in.
//! - **Shutdown.** When `shutdown` completes the listener closes, idle connections close at once,
//!   requests in flight get `shutdown_grace`, and then every connection is dropped (also ones
//!   stuck in a partial head): [`serve`] returns within about `shutdown_grace`.
//!
//! It listens on TCP or on a Unix socket ([`Listener`]): the same limits apply to both; on a
//! Unix socket the file's owner, group and mode are the access control (no `ConnectInfo`).
//!
//! TLS is rustls ([`tls`]): the certificate and key are re-read when their files change
//! ([`reload`], which the agent's push client uses for its CA and client certificate too).
//! Basic auth from an exporter-toolkit style web config is [`web_config`]. Beside the server:
//! systemd notification ([`notify`]) and bearer-token files ([`token`]), which both the agent and
//! the aggregator use.

mod body;
mod conns;
pub mod exposition;
pub mod files;
pub mod notify;
pub mod reload;
pub mod tls;
pub mod token;
pub mod web_config;

use axum::Router;
use conns::{ConnState, Signal, Table};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::time::Instant;

/// Limits of one server. `Limits::default()` suits production; tests shorten the timeouts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A complete request head must arrive within this long of the connection becoming idle.
    pub header_timeout: Duration,
    /// A request body must arrive in full within this long of its head.
    pub body_timeout: Duration,
    /// Most connections at once; `None`: [`Limits::connections_for_fd_limit`] of the current
    /// `RLIMIT_NOFILE`, capped at `connection_cap`.
    pub max_connections: Option<usize>,
    /// Upper bound of the derived connection limit (memory: each idle connection holds buffers).
    pub connection_cap: usize,
    /// How long requests in flight may run on after shutdown begins.
    pub shutdown_grace: Duration,
    /// Largest request head (request line and headers), bytes.
    pub max_head_bytes: usize,
    /// Connections beyond the limit kept for probe requests when no connection is idle.
    pub probe_reserve: usize,
    /// Head deadline of a reserve connection.
    pub probe_header_timeout: Duration,
    /// The paths a reserve connection serves.
    pub probe_paths: &'static [&'static str],
}

/// The paths the kubelet and systemd probe: served on reserve connections.
pub const PROBE_PATHS: &[&str] = &["/livez", "/healthz", "/-/healthy", "/readyz", "/-/ready"];

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: None,
            connection_cap: 4096,
            shutdown_grace: Duration::from_millis(500),
            max_head_bytes: 64 * 1024,
            probe_reserve: 64,
            probe_header_timeout: Duration::from_secs(2),
            probe_paths: PROBE_PATHS,
        }
    }
}

impl Limits {
    /// Connections allowed under a file-descriptor limit of `nofile`: it minus a reserve of an
    /// eighth (at least 32, at most 256) for the process's own files, sockets and probes.
    pub fn connections_for_fd_limit(nofile: u64) -> usize {
        let reserve = (nofile / 8).clamp(32, 256);
        nofile.saturating_sub(reserve).max(8) as usize
    }

    /// The connection limit in force: `max_connections`, or derived from `RLIMIT_NOFILE`.
    pub fn effective_max_connections(&self) -> usize {
        if let Some(n) = self.max_connections {
            return n.max(1);
        }
        let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        Self::connections_for_fd_limit(nofile).min(self.connection_cap.max(1))
    }
}

/// How [`serve`] serves: limits and, optionally, TLS.
#[derive(Clone, Default)]
pub struct Options {
    pub limits: Limits,
    pub tls: Option<Arc<tls::ReloadingTls>>,
}

/// Where [`serve`] accepts connections: a TCP port, or a Unix socket (bound by the caller, who
/// sets its permissions and removes the file afterwards).
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

/// An accepted connection of either kind.
enum Stream {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
}

/// Who is on the other end, for the log.
#[derive(Clone, Copy)]
enum Peer {
    Tcp(SocketAddr),
    Unix,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(a) => a.fmt(f),
            Peer::Unix => f.write_str("unix socket"),
        }
    }
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, a)| Stream::Tcp(s, a)),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
        }
    }
}

/// Pending connections the kernel queues for [`bind`]'s listener (capped by
/// `net.core.somaxconn`): a burst of connects waits in the queue instead of having its SYNs
/// dropped, which a client retries only after a second (a probe behind a burst answered late).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with `SO_REUSEADDR` and a backlog of [`LISTEN_BACKLOG`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` completes, then closes every connection within
/// about `limits.shutdown_grace` and returns. Errors only for a listener that fails for good.
pub async fn serve(
    listener: impl Into<Listener>,
    app: Router,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let listener: Listener = listener.into();
    let limits = Arc::new(options.limits);
    let max = limits.effective_max_connections();
    let table = Arc::new(Table::new());
    // Connections taken beyond `max` for probes (see `Limits::probe_reserve`).
    let reserve = Arc::new(Table::new());
    tracing::debug!(max_connections = max, "serving HTTP");
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE/ENFILE: free an fd by closing the oldest idle connection, then retry.
                // Other errors (ECONNABORTED, ...) concern one connection: retry at once.
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    table.evict_oldest_idle();
                    tracing::warn!(error = %e, "accept: out of file descriptors");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        let mut probe_only = false;
        if table.len() >= max {
            if table.evict_oldest_idle() {
                // Wait (briefly) for the evicted one to close, so fds stay below the limit.
                table.wait_below(max + 1, Duration::from_millis(100)).await;
            } else if limits.probe_reserve == 0 {
                drop(stream);
                continue;
            } else {
                // Every connection is running a request: this one may only probe.
                // A full reserve closes its oldest connection still waiting for a head (one
                // being answered finishes by itself), else its oldest.
                if reserve.len() >= limits.probe_reserve && !reserve.evict_oldest_idle() {
                    reserve.evict_oldest();
                }
                probe_only = true;
            }
        }
        let peer = match &stream {
            Stream::Tcp(s, addr) => {
                let _ = s.set_nodelay(true);
                Peer::Tcp(*addr)
            }
            Stream::Unix(_) => Peer::Unix,
        };
        let conn = if probe_only {
            reserve.register()
        } else {
            table.register()
        };
        let ctx = ConnCtx {
            app: app.clone(),
            limits: limits.clone(),
            tls: options.tls.clone(),
            conn,
            peer,
            probe_only,
        };
        match stream {
            Stream::Tcp(s, _) => tokio::spawn(ctx.run(s)),
            Stream::Unix(s) => tokio::spawn(ctx.run(s)),
        };
    }
    drop(listener);
    table.stop_all();
    reserve.stop_all();
    // Connections close within the grace (then they are dropped); wait a little longer.
    let deadline = Instant::now() + limits.shutdown_grace + Duration::from_millis(200);
    table.wait_below(1, deadline - Instant::now()).await;
    reserve
        .wait_below(1, deadline.saturating_duration_since(Instant::now()))
        .await;
    conns::release_freed_memory();
    Ok(())
}

/// One connection's task.
struct ConnCtx {
    app: Router,
    limits: Arc<Limits>,
    tls: Option<Arc<tls::ReloadingTls>>,
    conn: Arc<ConnState>,
    peer: Peer,
    /// A reserve connection: probe paths only, no keep-alive, a short head deadline.
    probe_only: bool,
}

impl ConnCtx {
    fn header_timeout(&self) -> Duration {
        if self.probe_only {
            self.limits
                .probe_header_timeout
                .min(self.limits.header_timeout)
        } else {
            self.limits.header_timeout
        }
    }

    async fn run<S>(mut self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let conn = self.conn.clone();
        let head_deadline = Instant::now() + self.header_timeout();
        match self.tls.clone() {
            None => self.drive(stream, None).await,
            Some(tls) => {
                let acceptor = tls.fresh_acceptor().await;
                let handshake = tokio::select! {
                    r = tokio::time::timeout_at(head_deadline, acceptor.accept(stream)) => r,
                    _ = conn.signalled(Signal::Stop) => return,
                };
                match handshake {
                    Ok(Ok(s)) => {
                        // The verified client certificate chain, for the handlers (client
                        // identity): only present when a client CA is configured.
                        let peer = s
                            .get_ref()
                            .1
                            .peer_certificates()
                            .filter(|c| !c.is_empty())
                            .map(|c| tls::PeerCertificates(Arc::new(c.to_vec())));
                        self.drive(s, peer).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn drive<IO>(&mut self, io: IO, peer_certs: Option<tls::PeerCertificates>)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let state = self.conn.clone();
        let (app, limits, peer) = (self.app.clone(), self.limits.clone(), self.peer);
        let probe_only = self.probe_only;
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = body::InFlight::begin(state.clone());
            let refused = probe_only && !limits.probe_paths.contains(&req.uri().path());
            let mut req =
                req.map(|b| axum::body::Body::new(body::Deadline::new(b, limits.body_timeout)));
            if let Peer::Tcp(addr) = peer {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(addr));
            }
            if let Some(certs) = &peer_certs {
                req.extensions_mut().insert(certs.clone());
            }
            let call = (!refused).then(|| tower::ServiceExt::oneshot(app.clone(), req));
            async move {
                let resp = match call {
                    None => busy_response(),
                    Some(call) => match call.await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    },
                };
                Ok::<_, Infallible>(resp.map(|b| body::Guarded::new(b, guard)))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // Our own deadline covers the head; hyper's would start only at the first byte.
            .header_read_timeout(None)
            .max_buf_size(self.limits.max_head_bytes.max(8192))
            .keep_alive(!self.probe_only);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let grace = self.limits.shutdown_grace;
        let header_timeout = self.header_timeout();
        // One timer, looked at lazily: requests never wake this task (a wake-up per request
        // start and end cost a fifth of the requests per second). When it fires, an idle
        // connection past `idle_since + header_timeout` is closed; otherwise it is re-armed
        // for the idle deadline, or (a request running) for a look one header_timeout later.
        // It never fires after the deadline, and it closes nothing before it.
        let sleep = tokio::time::sleep_until(self.conn.idle_since() + header_timeout);
        tokio::pin!(sleep);
        let mut stopping = false;
        loop {
            let next = if stopping { Signal::Kill } else { Signal::Stop };
            tokio::select! {
                biased;
                _ = conn.as_mut() => return,
                signal = self.conn.signalled(next) => {
                    if signal == Signal::Kill {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    stopping = true;
                    sleep.as_mut().reset(Instant::now() + grace);
                }
                _ = sleep.as_mut() => {
                    if stopping {
                        return;
                    }
                    let now = Instant::now();
                    if self.conn.in_flight.load(Ordering::Acquire) > 0 {
                        sleep.as_mut().reset(now + header_timeout);
                        continue;
                    }
                    let due = self.conn.idle_since() + header_timeout;
                    if due <= now {
                        tracing::debug!(peer = %self.peer, "closing: no complete request head in time");
                        return;
                    }
                    sleep.as_mut().reset(due);
                }
            }
        }
    }
}

/// What a reserve connection answers for anything but a probe: 503, try again in a second.
fn busy_response() -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, "1"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONNECTION, "close"),
        ],
        "every connection is busy: only probes are served now; retry later\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests;
