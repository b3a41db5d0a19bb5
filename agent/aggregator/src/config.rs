//! The aggregator's configuration: `--config` TOML (unknown keys rejected, errors naming the
//! key) with the `aggregator` flags on top, and its validation.

use common::config_file::{ConfigError, LogFormat};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default address of the aggregator.
pub const DEFAULT_AGGREGATOR_LISTEN: &str = "0.0.0.0:9900";

/// Default `aud` of the agents' service-account tokens.
pub const DEFAULT_SERVICE_ACCOUNT_AUDIENCE: &str = "gluten-node-aggregator";
/// Default `sub` of the agents' service-account tokens: the manifests' service account.
pub const DEFAULT_SERVICE_ACCOUNT_SUBJECT: &str =
    "system:serviceaccount:gluten-node-agent:gluten-node-agent";

/// The aggregator's configuration: `--config` TOML (unknown keys rejected) and flags on top.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    pub listen: SocketAddr,
    /// Directory of the embedded store (used unless `database_url` is set).
    pub data_dir: PathBuf,
    /// PostgreSQL connection string (`postgresql://user@host:port/db` or `host=... user=...`):
    /// several replicas share it.
    pub database_url: Option<String>,
    /// File of the shared bearer token(s) agents may send, one a line (all accepted): every
    /// holder may push for every node. None: no shared token.
    pub auth_token_file: Option<PathBuf>,
    /// File of the bearer token(s) `/api/v1/*` and `/metrics` require, one a line. None: reads
    /// are open. Push credentials never read.
    pub read_token_file: Option<PathBuf>,
    /// PEM CA certificates that verify client certificates (optional at the TLS layer; needed
    /// on the push routes, where a certificate speaks for the node its DNS SAN names).
    pub tls_client_ca_file: Option<PathBuf>,
    /// The cluster's JWKS (`/openid/v1/jwks`) to verify service-account tokens with; re-read
    /// when it changes.
    pub service_account_jwks_file: Option<PathBuf>,
    /// The `iss` service-account tokens must carry (the cluster's issuer).
    pub service_account_issuer: Option<String>,
    /// The `aud` service-account tokens must carry.
    pub service_account_audience: String,
    /// The `sub` service-account tokens must carry (the agents' service account).
    pub service_account_subject: String,
    /// Most nodes known at once: a report of a new node beyond it gets 429. None: no limit.
    pub max_nodes: Option<u64>,
    /// Start without any push authentication on a non-loopback address.
    pub allow_unauthenticated_push: bool,
    /// A node without a report or heartbeat for this long is stale (default 3 x the agents' 15 s interval).
    pub stale_after_seconds: f64,
    /// A node without a report or heartbeat for this long is forgotten (default one day).
    pub gc_after_seconds: f64,
    /// Largest accepted report body.
    pub max_report_bytes: u64,
    /// Bytes of request bodies read and decoded at once, over all connections; past it, 503
    /// with `Retry-After`. At least twice `max_report_bytes` is used (a gzip report and what it
    /// inflates to).
    pub max_inflight_body_bytes: u64,
    pub log_format: LogFormat,
    /// PEM certificate chain to serve HTTPS with (with `tls_key_file`); re-read when it changes.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// What the files named above held when [`AggregatorConfig::load`] checked them.
    #[serde(skip)]
    loaded: Option<Arc<Loaded>>,
}

/// What the configuration's files held when it was loaded: the tokens, the service-account
/// verifier and the TLS material are read once, by [`AggregatorConfig::load`], and the
/// aggregator starts with exactly what was checked (its tasks re-read the files when they
/// change).
#[derive(Clone, Default)]
pub struct Loaded {
    /// `auth_token_file`'s tokens.
    pub auth_tokens: Option<Vec<String>>,
    /// `read_token_file`'s tokens.
    pub read_tokens: Option<Vec<String>>,
    /// The verifier of `service_account_jwks_file`.
    pub service_accounts: Option<Arc<crate::identity::jwt::Verifier>>,
    /// The TLS material of `tls_cert_file`, `tls_key_file` and `tls_client_ca_file`.
    pub tls: Option<Arc<serve::tls::ReloadingTls>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("auth_tokens", &self.auth_tokens.as_ref().map(Vec::len))
            .field("read_tokens", &self.read_tokens.as_ref().map(Vec::len))
            .field("service_accounts", &self.service_accounts.is_some())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            listen: DEFAULT_AGGREGATOR_LISTEN
                .parse()
                .expect("valid default address"),
            data_dir: PathBuf::from("/var/lib/gluten-node-aggregator"),
            database_url: None,
            auth_token_file: None,
            read_token_file: None,
            stale_after_seconds: 45.0,
            gc_after_seconds: 86_400.0,
            max_report_bytes: 1 << 20,
            max_inflight_body_bytes: 64 << 20,
            log_format: LogFormat::Text,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            service_account_jwks_file: None,
            service_account_issuer: None,
            service_account_audience: DEFAULT_SERVICE_ACCOUNT_AUDIENCE.into(),
            service_account_subject: DEFAULT_SERVICE_ACCOUNT_SUBJECT.into(),
            max_nodes: None,
            allow_unauthenticated_push: false,
            loaded: None,
        }
    }
}

impl AggregatorConfig {
    /// Loads `file` (if any), applies `overrides` (top-level key, value), checks the result.
    pub fn load(
        file: Option<&Path>,
        overrides: &[(String, toml::Value)],
    ) -> Result<AggregatorConfig, ConfigError> {
        let mut table = common::config_file::read_table(file)?;
        for (k, v) in overrides {
            table.insert(k.clone(), v.clone());
        }
        let mut config: AggregatorConfig =
            common::config_file::deserialize_naming_key(&table, file)?;
        config.loaded = Some(Arc::new(config.validate()?));
        Ok(config)
    }

    /// What the configuration's files held when [`AggregatorConfig::load`] checked them; a
    /// configuration built otherwise is checked and its files read now.
    pub fn loaded(&self) -> Result<Arc<Loaded>, ConfigError> {
        match &self.loaded {
            Some(loaded) => Ok(loaded.clone()),
            None => self.validate().map(Arc::new),
        }
    }

    /// The in-flight body budget in force: `max_inflight_body_bytes`, at least twice
    /// `max_report_bytes`.
    pub fn inflight_body_budget(&self) -> u64 {
        self.max_inflight_body_bytes
            .max(self.max_report_bytes.saturating_mul(2))
    }

    /// Checks the values and reads the files they name, once.
    fn validate(&self) -> Result<Loaded, ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError::Invalid(format!("config key `{key}`: {why}")))
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.stale_after_seconds) {
            return bad(
                "stale_after_seconds",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.stale_after_seconds
                ),
            );
        }
        if !(positive(self.gc_after_seconds) && self.gc_after_seconds >= self.stale_after_seconds) {
            return bad(
                "gc_after_seconds",
                format!(
                    "must be at least stale_after_seconds ({}), got {}",
                    self.stale_after_seconds, self.gc_after_seconds
                ),
            );
        }
        if self.max_report_bytes < 1024 {
            return bad(
                "max_report_bytes",
                format!("must be at least 1024, got {}", self.max_report_bytes),
            );
        }
        if let Some(url) = &self.database_url
            && url.trim().is_empty()
        {
            return bad("database_url", "must not be empty".into());
        }
        if let Some(url) = &self.database_url {
            super::store::pg_connect::parse(url)
                .map_err(|why| ConfigError::Invalid(format!("config key `database_url`: {why}")))?;
        }
        if self.database_url.is_none() && self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty".into());
        }
        if self.max_nodes == Some(0) {
            return bad("max_nodes", "must be at least 1".into());
        }
        let tokens = |key: &str, path: &Option<PathBuf>| {
            path.as_ref()
                .map(|path| {
                    serve::token::read_tokens(path)
                        .map_err(|why| ConfigError::Invalid(format!("config key `{key}`: {why}")))
                })
                .transpose()
        };
        let loaded = Loaded {
            auth_tokens: tokens("auth_token_file", &self.auth_token_file)?,
            tls: self.tls()?.map(Arc::new),
            read_tokens: tokens("read_token_file", &self.read_token_file)?,
            service_accounts: self.service_accounts()?.map(Arc::new),
        };
        if !self.push_authenticated()
            && !self.listen.ip().is_loopback()
            && !self.allow_unauthenticated_push
        {
            return bad(
                "listen",
                format!(
                    "{} is not a loopback address and no push authentication is configured \
                         (auth_token_file, tls_client_ca_file or service_account_jwks_file): \
                         anyone who reaches it could push any node's report. Configure one, or \
                         set allow_unauthenticated_push (--allow-unauthenticated-push) to accept that",
                    self.listen
                ),
            );
        }
        Ok(loaded)
    }

    /// Whether any push authentication is configured.
    pub fn push_authenticated(&self) -> bool {
        self.auth_token_file.is_some()
            || self.tls_client_ca_file.is_some()
            || self.service_account_jwks_file.is_some()
    }

    /// The service-account token verifier, when `service_account_jwks_file` is set (with
    /// `service_account_issuer`); the JWKS is read now, so a bad file is an error naming it.
    fn service_accounts(&self) -> Result<Option<crate::identity::jwt::Verifier>, ConfigError> {
        let (file, issuer) = match (
            &self.service_account_jwks_file,
            &self.service_account_issuer,
        ) {
            (None, None) => return Ok(None),
            (Some(f), Some(i)) if !i.trim().is_empty() => (f, i),
            (Some(_), _) => {
                return Err(ConfigError::Invalid(
                    "config key `service_account_issuer`: needed with service_account_jwks_file (the cluster's issuer, e.g. https://kubernetes.default.svc.cluster.local)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "config key `service_account_jwks_file`: needed with service_account_issuer"
                        .into(),
                ));
            }
        };
        for (key, v) in [
            ("service_account_audience", &self.service_account_audience),
            ("service_account_subject", &self.service_account_subject),
        ] {
            if v.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "config key `{key}`: must not be empty"
                )));
            }
        }
        let expect = crate::identity::jwt::Expect {
            issuer: issuer.clone(),
            audience: self.service_account_audience.clone(),
            subject: self.service_account_subject.clone(),
        };
        crate::identity::jwt::Verifier::load(file, expect)
            .map(Some)
            .map_err(|why| {
                ConfigError::Invalid(format!("config key `service_account_jwks_file`: {why}"))
            })
    }

    /// The TLS material to serve with: both of `tls_cert_file` and `tls_key_file`, or neither;
    /// read here so a bad file is an error naming it.
    fn tls(&self) -> Result<Option<serve::tls::ReloadingTls>, ConfigError> {
        let mut files = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) if self.tls_client_ca_file.is_some() => {
                return Err(ConfigError::Invalid(
                    "config key `tls_client_ca_file`: needs HTTPS (tls_cert_file and tls_key_file)"
                        .into(),
                ));
            }
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => serve::tls::TlsFiles::new(c, k),
            (Some(_), None) => {
                return Err(ConfigError::Invalid(
                    "config key `tls_key_file`: needed with tls_cert_file".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "config key `tls_cert_file`: needed with tls_key_file".into(),
                ));
            }
        };
        if let Some(ca) = &self.tls_client_ca_file {
            // Optional at the TLS layer (probes and readers connect without one); the push
            // routes require one when no other credential is presented.
            files.client_ca_file = Some(ca.clone());
            files.client_auth = serve::tls::ClientAuth::VerifyIfGiven;
        }
        serve::tls::ReloadingTls::load(files)
            .map(Some)
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "config keys `tls_cert_file`/`tls_key_file`/`tls_client_ca_file`: {e}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_key() {
        let e = AggregatorConfig::load(
            None,
            &[("stale_after_secs".into(), toml::Value::Float(1.0))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("stale_after_secs"), "{e}");
        let e = AggregatorConfig::load(
            None,
            &[(
                "stale_after_seconds".into(),
                toml::Value::String("x".into()),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("stale_after_seconds"), "{e}");
        let e = AggregatorConfig::load(
            None,
            &[("gc_after_seconds".into(), toml::Value::Float(1.0))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("gc_after_seconds"), "{e}");
    }

    #[test]
    fn no_push_authentication_beyond_loopback_only_when_allowed() {
        let s = |v: &str| toml::Value::String(v.into());
        let e = AggregatorConfig::load(None, &[("listen".into(), s("0.0.0.0:9900"))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`listen`") && e.contains("allow_unauthenticated_push"),
            "{e}"
        );
        AggregatorConfig::load(
            None,
            &[
                ("listen".into(), s("0.0.0.0:9900")),
                (
                    "allow_unauthenticated_push".into(),
                    toml::Value::Boolean(true),
                ),
            ],
        )
        .unwrap();
        AggregatorConfig::load(None, &[("listen".into(), s("127.0.0.1:9900"))]).unwrap();
        AggregatorConfig::load(None, &[("listen".into(), s("[::1]:9900"))]).unwrap();
        let e = AggregatorConfig::load(
            None,
            &[
                ("listen".into(), s("127.0.0.1:9900")),
                ("tls_client_ca_file".into(), s("/nonexistent/ca.crt")),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tls_client_ca_file") && e.contains("HTTPS"),
            "{e}"
        );
        let e = AggregatorConfig::load(
            None,
            &[
                ("listen".into(), s("127.0.0.1:9900")),
                ("service_account_jwks_file".into(), s("/nonexistent/jwks")),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("service_account_issuer"), "{e}");
        let e = AggregatorConfig::load(
            None,
            &[
                ("listen".into(), s("127.0.0.1:9900")),
                ("max_nodes".into(), toml::Value::Integer(0)),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_nodes"), "{e}");
    }

    /// The files are read once, by `load`: once it has returned, the aggregator starts and
    /// serves with what was checked even if every file is gone.
    #[test]
    fn files_are_read_once_at_load() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(path("tls.crt"), cert.cert.pem()).unwrap();
        std::fs::write(path("tls.key"), cert.signing_key.serialize_pem()).unwrap();
        std::fs::write(path("ca.crt"), cert.cert.pem()).unwrap();
        std::fs::write(path("push.token"), "push-secret-1\npush-secret-2\n").unwrap();
        std::fs::write(path("read.token"), "read-secret\n").unwrap();
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let p = kp.public_key_raw();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "alg": "ES256",
            "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])}]});
        std::fs::write(path("jwks.json"), jwks.to_string()).unwrap();
        let s = |p: std::path::PathBuf| toml::Value::String(p.display().to_string());
        let config = AggregatorConfig::load(
            None,
            &[
                ("listen".into(), toml::Value::String("127.0.0.1:0".into())),
                ("data_dir".into(), s(path("data"))),
                ("tls_cert_file".into(), s(path("tls.crt"))),
                ("tls_key_file".into(), s(path("tls.key"))),
                ("tls_client_ca_file".into(), s(path("ca.crt"))),
                ("auth_token_file".into(), s(path("push.token"))),
                ("read_token_file".into(), s(path("read.token"))),
                ("service_account_jwks_file".into(), s(path("jwks.json"))),
                (
                    "service_account_issuer".into(),
                    toml::Value::String("https://kubernetes.default.svc".into()),
                ),
            ],
        )
        .unwrap();
        for name in [
            "tls.crt",
            "tls.key",
            "ca.crt",
            "push.token",
            "read.token",
            "jwks.json",
        ] {
            std::fs::remove_file(path(name)).unwrap();
        }
        let loaded = config.clone().loaded().unwrap();
        assert_eq!(
            loaded.auth_tokens.as_deref(),
            Some(&["push-secret-1".to_string(), "push-secret-2".to_string()][..])
        );
        assert_eq!(
            loaded.read_tokens.as_deref(),
            Some(&["read-secret".to_string()][..])
        );
        assert!(loaded.tls.is_some() && loaded.service_accounts.is_some());

        // A configuration that did not come through `load` is checked (and its files read) when
        // it is served: here they are gone, so that fails naming the key.
        let mut unloaded = config.clone();
        unloaded.loaded = None;
        let e = unloaded.loaded().unwrap_err().to_string();
        assert!(e.contains("auth_token_file"), "{e}");

        // And the aggregator starts from the loaded material: a re-read would fail here.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(crate::serve(config, async {}))
            .expect("the aggregator starts with the files gone");
    }
}
