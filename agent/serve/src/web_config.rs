//! The web config file (`web_config_file`, flag `--web-config-file`): TLS and basic auth for
//! an HTTP endpoint, in the shape of the Prometheus exporter-toolkit's `web-config.yml`, written
//! as TOML with the same key names:
//!
//! ```toml
//! [tls_server_config]
//! cert_file = "/etc/gluten/tls/tls.crt"     # relative paths: from the web config's directory
//! key_file = "/etc/gluten/tls/tls.key"
//! client_auth_type = "RequireAndVerifyClientCert"   # NoClientCert (default), VerifyClientCertIfGiven
//! client_ca_file = "/etc/gluten/tls/ca.crt"
//! min_version = "TLS12"                     # or TLS13
//!
//! [basic_auth_users]
//! prometheus = "$2y$10$..."                 # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! Unknown keys are errors naming the full key. [`WebConfig::load`] reads the file and its TLS
//! files once, at start; the loaded value is what serves (a caller passes it on rather than
//! loading again). The certificate, key and CA files are re-read when they change, and so are
//! the users (the file checked at most once a second); which TLS files, whether there is TLS
//! and whether there is basic auth at all are read at start. A good password is remembered (as a SHA-256
//! of user, password and hash) so a scrape does not pay bcrypt each time; unknown users cost a
//! bcrypt like known ones (no timing oracle).
//!
//! bcrypt work is bounded and never queued behind an attacker ([`Budget`]): each source address
//! (an IPv6 one by its /64) has a budget of [`BCRYPT_BURST`] verifications, refilled one per
//! [`BCRYPT_REFILL`]; over it, a request gets 429 with `Retry-After` at once (a good password
//! refunds its verification). At most two bcrypt runs go at once, on blocking threads, and one
//! of the two is kept for addresses with a full budget (none of their recent verifications
//! failed): a hostile address with a failure behind it gets a run only when that slot is free
//! right now and the fleet-wide rate of such runs ([`DIRTY_RUNS_PER_SECOND`]) allows, else 429,
//! while a new user's first login waits at most for one run in progress.

use super::tls::{ClientAuth, MinVersion, ReloadingTls, TlsFiles};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A web config file that cannot be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("web config file {}: {problem}", path.display())]
pub struct WebConfigError {
    pub path: PathBuf,
    #[source]
    pub problem: WebConfigProblem,
}

/// What is wrong in a web config file (the file itself is named by [`WebConfigError`]).
#[derive(Debug, thiserror::Error)]
pub enum WebConfigProblem {
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A key of the file, by its full name, and what is wrong with its value.
    #[error("key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("[tls_server_config]: {0}")]
    Tls(#[from] super::tls::TlsError),
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

impl WebConfigProblem {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        WebConfigProblem::Key {
            key: key.into(),
            message: message.into(),
        }
    }

    fn of_shape(e: serde_path_to_error::Error<toml::de::Error>) -> Self {
        WebConfigProblem::key(e.path().to_string(), e.inner().message())
    }

    fn not_bcrypt(user: &str, e: bcrypt::BcryptError) -> Self {
        WebConfigProblem::key(
            format!("basic_auth_users.{user}"),
            format!("not a bcrypt hash ({e})"),
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    tls_server_config: Option<TlsShape>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsShape {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: ClientAuthType,
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: MinVersionName,
}

#[derive(Deserialize, Default)]
enum ClientAuthType {
    #[default]
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

#[derive(Deserialize, Default)]
enum MinVersionName {
    #[default]
    TLS12,
    TLS13,
}

/// A loaded web config: TLS (if any; its files already read, re-read when they change) and
/// basic auth (if any users).
pub struct WebConfig {
    pub tls: Option<Arc<ReloadingTls>>,
    pub auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.as_ref().map(|t| t.files()))
            .field("basic_auth", &self.auth.is_some())
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks `path`: TOML shape, the TLS files (read here, once: a bad file fails at
    /// start, and the server uses what was read), the bcrypt hashes.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let err = |problem: WebConfigProblem| WebConfigError {
            path: path.to_path_buf(),
            problem,
        };
        let shape = read_shape(path).map_err(err)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match shape.tls_server_config {
            None => None,
            Some(t) => {
                let files = TlsFiles {
                    cert_file: dir.join(t.cert_file),
                    key_file: dir.join(t.key_file),
                    client_ca_file: t.client_ca_file.map(|p| dir.join(p)),
                    client_auth: match t.client_auth_type {
                        ClientAuthType::NoClientCert => ClientAuth::None,
                        ClientAuthType::VerifyClientCertIfGiven => ClientAuth::VerifyIfGiven,
                        ClientAuthType::RequireAndVerifyClientCert => ClientAuth::Require,
                    },
                    min_version: match t.min_version {
                        MinVersionName::TLS12 => MinVersion::Tls12,
                        MinVersionName::TLS13 => MinVersion::Tls13,
                    },
                };
                if files.client_auth != ClientAuth::None && files.client_ca_file.is_none() {
                    return Err(err(WebConfigProblem::key(
                        "tls_server_config.client_ca_file",
                        "needed when client_auth_type verifies client certificates",
                    )));
                }
                Some(Arc::new(
                    ReloadingTls::load(files).map_err(|e| err(e.into()))?,
                ))
            }
        };
        let auth = if shape.basic_auth_users.is_empty() {
            None
        } else {
            Some(Arc::new(
                BasicAuth::new(shape.basic_auth_users)
                    .map_err(err)?
                    .following(path),
            ))
        };
        Ok(WebConfig { tls, auth })
    }
}

/// Basic auth against bcrypt hashes, as an axum middleware ([`BasicAuth::protect`]).
pub struct BasicAuth {
    users: Arc<arc_swap::ArcSwap<BTreeMap<String, String>>>,
    /// The web config file the users came from, re-read when it changes (at most once a second,
    /// on a thread of its own), and when it was last looked at.
    source: Option<(PathBuf, Arc<LastLook>)>,
    /// A look at the file is under way.
    looking: Arc<std::sync::atomic::AtomicBool>,
    /// A hash of the users' cost that no password matches: unknown users pay the same bcrypt.
    dummy: String,
    /// SHA-256 of (user, password, hash) of credentials that verified; bounded.
    good: Mutex<HashSet<[u8; 32]>>,
    /// Both bcrypt runs; one of them is also in `dirty_slot`'s keeping.
    bcrypt_slots: tokio::sync::Semaphore,
    /// The one run addresses with a spent budget may have.
    dirty_slot: tokio::sync::Semaphore,
    budget: Budget,
    /// Runs for addresses with a spent budget, over all of them.
    dirty_rate: Budget,
}

const REMEMBERED: usize = 256;

/// bcrypt verifications an address may run at once before it is throttled.
pub const BCRYPT_BURST: f64 = 4.0;
/// One more verification per this long.
pub const BCRYPT_REFILL: Duration = Duration::from_secs(2);
/// bcrypt runs a second for addresses with a spent budget, all together (a spray of addresses
/// gets no more CPU than this).
pub const DIRTY_RUNS_PER_SECOND: f64 = 4.0;
/// How long a request from an address with a full budget waits for a bcrypt run.
const CLEAN_WAIT: Duration = Duration::from_secs(2);
/// Addresses tracked at once; past it, those with a full budget are forgotten first.
const TRACKED: usize = 4096;

/// The answer to a basic-auth attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are good.
    Allowed,
    /// Wrong user or password.
    Denied,
    /// The address is over its budget, or no bcrypt run is free: retry after this many seconds.
    Throttled(u64),
}

/// Per-address token buckets of bcrypt verifications.
pub struct Budget {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    burst: f64,
    refill: Duration,
}

impl Default for Budget {
    /// [`BCRYPT_BURST`], one more per [`BCRYPT_REFILL`].
    fn default() -> Self {
        Budget::new(BCRYPT_BURST, BCRYPT_REFILL)
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64 (one host has a whole /64 to spray).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Budget {
    /// Buckets of `burst` verifications, one more per `refill`.
    pub fn new(burst: f64, refill: Duration) -> Budget {
        Budget {
            buckets: Mutex::new(HashMap::new()),
            burst,
            refill,
        }
    }

    fn refilled(&self, tokens: f64, since: Instant, now: Instant) -> f64 {
        let gained = now.duration_since(since).as_secs_f64() / self.refill.as_secs_f64();
        (tokens + gained).min(self.burst)
    }

    /// Takes one verification from `ip`'s budget: `Ok(clean)` (whether the budget was full), or
    /// `Err(seconds until one is back)`.
    pub fn take(&self, ip: IpAddr) -> Result<bool, u64> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= TRACKED && !map.contains_key(&client_key(ip)) {
            map.retain(|_, (t, at)| self.refilled(*t, *at, now) < self.burst);
            if map.len() >= TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(client_key(ip)).or_insert((self.burst, now));
        let tokens = self.refilled(entry.0, entry.1, now);
        if tokens < 1.0 {
            let wait = (1.0 - tokens) * self.refill.as_secs_f64();
            return Err(wait.ceil().max(1.0) as u64);
        }
        *entry = (tokens - 1.0, now);
        Ok(tokens >= self.burst)
    }

    /// Gives back a verification taken from `ip` (its password was good).
    pub fn refund(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(&client_key(ip)) {
            *entry = (
                (self.refilled(entry.0, entry.1, now) + 1.0).min(self.burst),
                now,
            );
        }
    }
}

/// Inode, size and modification time of a file.
type FileStamp = (u64, u64, i64, i64);

/// When a file was last looked at, and how it was then.
type LastLook = Mutex<(std::time::Instant, Option<FileStamp>)>;

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// A web config file read and parsed into its shape (unknown keys refused).
fn read_shape(path: &Path) -> Result<FileShape, WebConfigProblem> {
    let text = crate::files::read_text(path)?;
    let table: toml::Table = toml::from_str(&text)?;
    common::config_file::deserialize_tracking_path(toml::Value::Table(table))
        .map_err(WebConfigProblem::of_shape)
}

/// The users of a web config file, their hashes checked.
fn read_users(path: &Path) -> Result<BTreeMap<String, String>, WebConfigProblem> {
    let shape = read_shape(path)?;
    for (user, hash) in &shape.basic_auth_users {
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| WebConfigProblem::not_bcrypt(user, e))?;
    }
    Ok(shape.basic_auth_users)
}

/// Re-reads the users from `path` when its stamp changed since `checked` (at most once a second).
fn reload_if_changed(
    path: &Path,
    checked: &LastLook,
    users: &arc_swap::ArcSwap<BTreeMap<String, String>>,
) {
    let mut checked = checked.lock().unwrap_or_else(|e| e.into_inner());
    if checked.0.elapsed() < std::time::Duration::from_secs(1) {
        return;
    }
    checked.0 = std::time::Instant::now();
    let now = file_stamp(path);
    if now == checked.1 {
        return;
    }
    checked.1 = now;
    drop(checked);
    match read_users(path) {
        Ok(new) => {
            if new.is_empty() {
                tracing::warn!(file = %path.display(), "web config has no basic_auth_users any more: every protected request is refused until users are back or the agent restarts");
            } else {
                tracing::info!(file = %path.display(), users = new.len(), "basic auth users reloaded");
            }
            users.store(Arc::new(new));
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "web config changed but cannot be used; keeping the previous users")
        }
    }
}

impl BasicAuth {
    /// Users and their bcrypt hashes; an error names the user whose hash is not bcrypt.
    pub fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, WebConfigProblem> {
        let mut cost = 4;
        for (user, hash) in &users {
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e| WebConfigProblem::not_bcrypt(user, e))?;
            cost = cost.max(parts.get_cost());
        }
        let dummy = bcrypt::hash("gluten-node-agent: no such user", cost)?;
        Ok(BasicAuth {
            users: Arc::new(arc_swap::ArcSwap::from_pointee(users)),
            source: None,
            looking: Default::default(),
            dummy,
            good: Mutex::new(HashSet::new()),
            bcrypt_slots: tokio::sync::Semaphore::new(2),
            dirty_slot: tokio::sync::Semaphore::new(1),
            budget: Budget::default(),
            dirty_rate: Budget::new(
                DIRTY_RUNS_PER_SECOND,
                Duration::from_secs_f64(1.0 / DIRTY_RUNS_PER_SECOND),
            ),
        })
    }

    /// Re-reads the users from the web config file `path` when it changes (a removed user or a
    /// changed hash takes effect within a second; a file that no longer parses keeps the users
    /// in force, logged once). TLS settings of the file are not re-read: they need a restart.
    pub fn following(mut self, path: &Path) -> Self {
        let seen = file_stamp(path);
        self.source = Some((
            path.to_path_buf(),
            Arc::new(Mutex::new((std::time::Instant::now(), seen))),
        ));
        self
    }

    /// Looks at the web config file (when due) on a thread of its own, waiting at most half a
    /// second: a FIFO, a huge file or a hung filesystem keeps the users in force.
    async fn reload_soon(&self) {
        use std::sync::atomic::Ordering;
        let Some((path, checked)) = &self.source else {
            return;
        };
        if checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .elapsed()
            < Duration::from_secs(1)
            || self.looking.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (path, checked, users, looking) = (
            path.clone(),
            checked.clone(),
            self.users.clone(),
            self.looking.clone(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = crate::files::spawn(move || {
            reload_if_changed(&path, &checked, &users);
            looking.store(false, Ordering::Release);
            let _ = tx.send(());
        });
        match started {
            Ok(()) => {
                if tokio::time::timeout(Duration::from_millis(500), rx)
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "looking at the web config file takes over 0.5 s (a hung filesystem?); the users in force stay"
                    );
                }
            }
            Err(e) => {
                self.looking.store(false, Ordering::Release);
                tracing::warn!(error = %e, "web config file not looked at");
            }
        }
    }

    /// `router` with every path but `open_paths` (the probes) behind basic auth.
    pub fn protect(self: &Arc<Self>, router: Router, open_paths: &[&str]) -> Router {
        let open: Arc<Vec<String>> = Arc::new(open_paths.iter().map(|s| s.to_string()).collect());
        router.layer(axum::middleware::from_fn_with_state(
            (self.clone(), open),
            check,
        ))
    }

    /// Whether `user` with `password` may in (no address: no budget, as from a trusted caller).
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        self.verify_from(None, user, password).await == Verdict::Allowed
    }

    /// Whether `user` with `password` from `peer` may in, within `peer`'s bcrypt budget.
    pub async fn verify_from(&self, peer: Option<IpAddr>, user: &str, password: &str) -> Verdict {
        self.reload_soon().await;
        let users = self.users.load_full();
        let hash = users.get(user);
        let key = fingerprint(user, password, hash.map_or("", String::as_str));
        if hash.is_some()
            && self
                .good
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&key)
        {
            return Verdict::Allowed;
        }
        let clean = match peer.map(|ip| self.budget.take(ip)) {
            None => true,
            Some(Ok(clean)) => clean,
            Some(Err(retry)) => return Verdict::Throttled(retry),
        };
        // A run: a clean address waits (briefly) for either slot; a dirty one takes the
        // dirty slot and a run slot if both are free now, else it is throttled.
        let (_dirty, _slot) = if clean {
            match tokio::time::timeout(CLEAN_WAIT, self.bcrypt_slots.acquire()).await {
                Ok(Ok(slot)) => (None, slot),
                _ => return Verdict::Throttled(1),
            }
        } else {
            let Ok(dirty) = self.dirty_slot.try_acquire() else {
                return Verdict::Throttled(1);
            };
            if self
                .dirty_rate
                .take(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
                .is_err()
            {
                return Verdict::Throttled(1);
            }
            let Ok(slot) = self.bcrypt_slots.try_acquire() else {
                return Verdict::Throttled(1);
            };
            (Some(dirty), slot)
        };
        let against = hash.cloned().unwrap_or_else(|| self.dummy.clone());
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password, &against).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = matches && hash.is_some();
        if !ok {
            return Verdict::Denied;
        }
        if let Some(ip) = peer {
            self.budget.refund(ip);
        }
        let mut good = self.good.lock().unwrap_or_else(|e| e.into_inner());
        if good.len() >= REMEMBERED {
            good.clear();
        }
        good.insert(key);
        Verdict::Allowed
    }
}

fn fingerprint(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, password, hash] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `Authorization: Basic base64(user:password)`, split.
fn credentials(value: &HeaderValue) -> Option<(String, String)> {
    use base64::Engine;
    let v = value.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

async fn check(
    State((auth, open)): State<(Arc<BasicAuth>, Arc<Vec<String>>)>,
    req: Request,
    next: Next,
) -> Response {
    if open.iter().any(|p| p == req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(credentials);
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let verdict = match given {
        Some((user, password)) => auth.verify_from(peer, &user, &password).await,
        None => Verdict::Denied,
    };
    match verdict {
        Verdict::Allowed => next.run(req).await,
        Verdict::Denied => (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"gluten-node-agent\", charset=\"UTF-8\"",
                ),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "Unauthorized\n",
        )
            .into_response(),
        Verdict::Throttled(retry) => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, retry.to_string()),
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
            ],
            "Too many password attempts from this address; retry later\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_429_and_a_good_password_refunds() {
        let b = Budget::new(2.0, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(b.take(ip), Ok(true), "a full budget is clean");
        assert_eq!(b.take(ip), Ok(false));
        let retry = b.take(ip).unwrap_err();
        assert!((1..=60).contains(&retry), "{retry}");
        b.refund(ip);
        assert_eq!(b.take(ip), Ok(false));
        // Another address has its own budget; an IPv6 host is its /64.
        assert_eq!(b.take("10.0.0.2".parse().unwrap()), Ok(true));
        let (v6a, v6b): (IpAddr, IpAddr) = (
            "2001:db8:1:2::1".parse().unwrap(),
            "2001:db8:1:2:ffff::9".parse().unwrap(),
        );
        assert_eq!(b.take(v6a), Ok(true));
        assert_eq!(b.take(v6b), Ok(false));
        assert!(b.take(v6a).is_err());
    }
}
