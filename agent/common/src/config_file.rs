//! Config-file plumbing shared by the agent and the aggregator: TOML read strictly, errors that
//! name the file and the full key, `--set KEY=VALUE` overrides, the log format.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A configuration problem: a bad key, a bad value, an unreadable file. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    /// A rule one key (by its full dotted name) breaks, wherever its value came from.
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// The value of config key `key` (its full dotted name) breaks a rule: `message` says which.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Log output format.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A config problem at one key: the full dotted key (`memory.executors_per_node`,
/// `hugepages.pools[0].size`) and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl KeyError {
    /// The error of deserialising a value at `prefix` (a section name, or "" at the top),
    /// with the path serde_path_to_error tracked below it.
    pub fn at(prefix: &str, e: serde_path_to_error::Error<toml::de::Error>) -> Self {
        let below = e.path().to_string();
        let key = match (prefix.is_empty(), below.as_str()) {
            (_, ".") | (_, "") => prefix.to_string(),
            (true, below) => below.to_string(),
            (false, below) => format!("{prefix}.{below}"),
        };
        KeyError {
            key,
            message: e.into_inner().message().to_string(),
        }
    }
}

/// Reads a TOML config file into a table; errors name the file (and, for syntax, the line).
pub fn read_table(file: Option<&Path>) -> Result<toml::Table, ConfigError> {
    let Some(path) = file else {
        return Ok(toml::Table::new());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_table(&text, file)
}

/// Parses TOML text into a table; `file` names the origin in errors.
pub fn parse_table(text: &str, file: Option<&Path>) -> Result<toml::Table, ConfigError> {
    toml::from_str::<toml::Table>(text)
        .map_err(|e| config_error(file, e.to_string().trim_end().to_string()))
}

/// A config error about `file` (or about the flags, when there is no file).
pub fn config_error(file: Option<&Path>, message: String) -> ConfigError {
    match file {
        Some(path) => ConfigError::File {
            path: path.to_path_buf(),
            message,
        },
        None => ConfigError::Invalid(format!("config: {message}")),
    }
}

/// Deserialises a whole config table into `T`; errors name the full key at fault
/// (`push.url: invalid type: ...`), with the file in front.
pub fn deserialize_naming_key<T: DeserializeOwned>(
    table: &toml::Table,
    file: Option<&Path>,
) -> Result<T, ConfigError> {
    deserialize_tracking_path(toml::Value::Table(table.clone()))
        .map_err(|e| config_error(file, KeyError::at("", e).to_string()))
}

/// Deserialises `value` into `T`; an error carries the path of the key at fault.
///
/// The path-tracking deserializer runs only when the plain one fails, and is kept out of line
/// and cold: it is generic over every config type, so running it (or having it inlined beside
/// the plain one) on every start kept a few hundred KiB of code resident in a daemon that never
/// needs it again once its config is good.
pub fn deserialize_tracking_path<T: DeserializeOwned>(
    value: toml::Value,
) -> Result<T, serde_path_to_error::Error<toml::de::Error>> {
    match T::deserialize(value.clone()) {
        Ok(v) => Ok(v),
        Err(_) => deserialize_naming_path(value),
    }
}

#[cold]
#[inline(never)]
fn deserialize_naming_path<T: DeserializeOwned>(
    value: toml::Value,
) -> Result<T, serde_path_to_error::Error<toml::de::Error>> {
    serde_path_to_error::deserialize(value)
}

/// A `--set` argument that is not `KEY=VALUE`: a config problem (exit code 2), naming the
/// argument as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("--set {arg:?}: expected KEY=VALUE, e.g. scratch.write_probe=false")]
    NoEquals { arg: String },
    #[error("--set {arg:?}: bad key {key:?}")]
    BadKey { arg: String, key: String },
}

/// Parses one `--set KEY=VALUE`: the value is TOML (`30`, `true`, `["/a", "/b"]`, `"x"`), and a
/// bare word that is not TOML is taken as a string (`--set push.url=http://a:9900`).
pub fn parse_override(s: &str) -> Result<(String, toml::Value), OverrideError> {
    let (key, raw) = s
        .split_once('=')
        .ok_or_else(|| OverrideError::NoEquals { arg: s.to_string() })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(OverrideError::BadKey {
            arg: s.to_string(),
            key: key.to_string(),
        });
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}
