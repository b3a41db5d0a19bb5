//! The aggregator's configuration: `--config` TOML (unknown keys rejected, errors naming the
//! key) with the `aggregator` flags on top, and its validation.

use common::config_file::{ConfigError, LogFormat};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default address of the aggregator.
pub const DEFAULT_AGGREGATOR_LISTEN: &str = "0.0.0.0:9900";

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
    /// File whose first line is the bearer token agents must send. None: no auth.
    pub auth_token_file: Option<PathBuf>,
    /// File whose first line is the bearer token `/api/v1/*` and `/metrics` require (the write
    /// token reads too). None: reads are open.
    pub read_token_file: Option<PathBuf>,
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
        let config: AggregatorConfig = common::config_file::deserialize_naming_key(&table, file)?;
        config.validate()?;
        Ok(config)
    }

    /// The in-flight body budget in force: `max_inflight_body_bytes`, at least twice
    /// `max_report_bytes`.
    pub fn inflight_body_budget(&self) -> u64 {
        self.max_inflight_body_bytes
            .max(self.max_report_bytes.saturating_mul(2))
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
        if let Some(path) = &self.auth_token_file {
            serve::token::read_token(path).map_err(|why| {
                ConfigError::Invalid(format!("config key `auth_token_file`: {why}"))
            })?;
        }
        self.tls()?;
        if let Some(path) = &self.read_token_file {
            serve::token::read_token(path).map_err(|why| {
                ConfigError::Invalid(format!("config key `read_token_file`: {why}"))
            })?;
        }
        Ok(())
    }

    /// The TLS files to serve with: both of `tls_cert_file` and `tls_key_file`, or neither;
    /// loaded once here so a bad file is an error naming it.
    pub fn tls(&self) -> Result<Option<serve::tls::TlsFiles>, ConfigError> {
        let files = match (&self.tls_cert_file, &self.tls_key_file) {
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
        serve::tls::ReloadingTls::load(files.clone()).map_err(|e| {
            ConfigError::Invalid(format!("config keys `tls_cert_file`/`tls_key_file`: {e}"))
        })?;
        Ok(Some(files))
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
}
