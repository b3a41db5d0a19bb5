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
//! Unknown keys are errors naming the full key. The certificate, key and CA files are re-read
//! when they change, and so are the users (the file checked at most once a second); which TLS
//! files, whether there is TLS and whether there is basic auth at all are read at start. A good password is remembered (as a SHA-256
//! of user, password and hash) so a scrape does not pay bcrypt each time; unknown users cost a
//! bcrypt like known ones (no timing oracle), and at most two bcrypt runs go at once, on blocking
//! threads.

use super::tls::{ClientAuth, MinVersion, TlsFiles};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A web config file that cannot be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("web config file {}: {message}", path.display())]
pub struct WebConfigError {
    pub path: PathBuf,
    pub message: String,
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

/// A loaded web config: TLS files (if any) and basic auth (if any users).
pub struct WebConfig {
    pub tls: Option<TlsFiles>,
    pub auth: Option<Arc<BasicAuth>>,
}

impl WebConfig {
    /// Reads and checks `path`: TOML shape, the TLS files (loaded once here, so a bad file
    /// fails at start), the bcrypt hashes.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let err = |message: String| WebConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let shape: FileShape = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| err(format!("key `{}`: {}", e.path(), e.inner().message())))?;
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
                    return Err(err(
                        "key `tls_server_config.client_ca_file`: needed when client_auth_type verifies client certificates".into(),
                    ));
                }
                super::tls::ReloadingTls::load(files.clone())
                    .map_err(|e| err(format!("[tls_server_config]: {e}")))?;
                Some(files)
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
    users: arc_swap::ArcSwap<BTreeMap<String, String>>,
    /// The web config file the users came from, re-read when it changes (at most once a second),
    /// and when it was last looked at.
    source: Option<(PathBuf, LastLook)>,
    /// A hash of the users' cost that no password matches: unknown users pay the same bcrypt.
    dummy: String,
    /// SHA-256 of (user, password, hash) of credentials that verified; bounded.
    good: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slots: tokio::sync::Semaphore,
}

const REMEMBERED: usize = 256;

/// Inode, size and modification time of a file.
type FileStamp = (u64, u64, i64, i64);

/// When a file was last looked at, and how it was then.
type LastLook = Mutex<(std::time::Instant, Option<FileStamp>)>;

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The users of a web config file, their hashes checked.
fn read_users(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
    let shape: FileShape = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| format!("key `{}`: {}", e.path(), e.inner().message()))?;
    for (user, hash) in &shape.basic_auth_users {
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| format!("key `basic_auth_users.{user}`: not a bcrypt hash ({e})"))?;
    }
    Ok(shape.basic_auth_users)
}

impl BasicAuth {
    /// Users and their bcrypt hashes; an error names the user whose hash is not bcrypt.
    pub fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
        let mut cost = 4;
        for (user, hash) in &users {
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e| format!("key `basic_auth_users.{user}`: not a bcrypt hash ({e})"))?;
            cost = cost.max(parts.get_cost());
        }
        let dummy = bcrypt::hash("gluten-node-agent: no such user", cost)
            .map_err(|e| format!("bcrypt: {e}"))?;
        Ok(BasicAuth {
            users: arc_swap::ArcSwap::from_pointee(users),
            source: None,
            dummy,
            good: Mutex::new(HashSet::new()),
            bcrypt_slots: tokio::sync::Semaphore::new(2),
        })
    }

    /// Re-reads the users from the web config file `path` when it changes (a removed user or a
    /// changed hash takes effect within a second; a file that no longer parses keeps the users
    /// in force, logged once). TLS settings of the file are not re-read: they need a restart.
    pub fn following(mut self, path: &Path) -> Self {
        let seen = file_stamp(path);
        self.source = Some((
            path.to_path_buf(),
            Mutex::new((std::time::Instant::now(), seen)),
        ));
        self
    }

    fn reload_if_changed(&self) {
        let Some((path, checked)) = &self.source else {
            return;
        };
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
            Ok(users) => {
                if users.is_empty() {
                    tracing::warn!(file = %path.display(), "web config has no basic_auth_users any more: every protected request is refused until users are back or the agent restarts");
                } else {
                    tracing::info!(file = %path.display(), users = users.len(), "basic auth users reloaded");
                }
                self.users.store(Arc::new(users));
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "web config changed but cannot be used; keeping the previous users")
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

    /// Whether `user` with `password` may in.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        self.reload_if_changed();
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
            return true;
        }
        let Ok(_slot) = self.bcrypt_slots.acquire().await else {
            return false;
        };
        let against = hash.cloned().unwrap_or_else(|| self.dummy.clone());
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password, &against).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = matches && hash.is_some();
        if ok {
            let mut good = self.good.lock().unwrap_or_else(|e| e.into_inner());
            if good.len() >= REMEMBERED {
                good.clear();
            }
            good.insert(key);
        }
        ok
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
    if let Some((user, password)) = given
        && auth.verify(&user, &password).await
    {
        return next.run(req).await;
    }
    (
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
        .into_response()
}
