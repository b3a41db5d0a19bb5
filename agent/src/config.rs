//! Agent configuration: TOML with unknown keys rejected, defaults per check in the check's own
//! file, `--set section.key=value` and dedicated flags layered on top, `validate()` for rules that
//! span fields.

use crate::checks::{hugepages, memory, numa, scratch, velox_library};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default address of the agent's HTTP server.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9899";

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
    #[error("{0}")]
    Invalid(String),
}

/// Log output format.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub use crate::check::CheckSettings;

/// The whole agent configuration.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP server (`run` only).
    pub listen: SocketAddr,
    /// Where the host's `/` is: `/` on a host, `/host` in a container.
    pub host_root: PathBuf,
    /// Seconds between rounds.
    pub interval_seconds: f64,
    /// Deadline of one check, unless its table sets `timeout_seconds`.
    pub check_timeout_seconds: f64,
    /// Name of this node in reports; default `NODE_NAME`, else the hostname.
    pub node_name: Option<String>,
    pub log_format: LogFormat,
    /// TLS and basic auth of the HTTP endpoints: an exporter-toolkit style web config (TOML).
    pub web_config_file: Option<PathBuf>,
    pub push: PushConfig,
    pub velox_library: CheckSection<velox_library::Settings>,
    pub hugepages: CheckSection<hugepages::Settings>,
    pub numa: CheckSection<numa::Settings>,
    pub scratch: CheckSection<scratch::Settings>,
    pub memory: CheckSection<memory::Settings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            host_root: PathBuf::from("/"),
            interval_seconds: 15.0,
            check_timeout_seconds: 5.0,
            node_name: None,
            log_format: LogFormat::Text,
            web_config_file: None,
            push: PushConfig::default(),
            velox_library: CheckSection::default(),
            hugepages: CheckSection::default(),
            numa: CheckSection::default(),
            scratch: CheckSection::default(),
            memory: CheckSection::default(),
        }
    }
}

/// `[push]`: where and how the agent sends its report to the fleet aggregator.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Aggregator base URL, e.g. `http://aggregator:9000`. No URL: no push.
    pub url: Option<String>,
    /// Overrides the top-level `node_name` for pushes and reports.
    pub node_name: Option<String>,
    /// File holding the bearer token (first line).
    pub token_file: Option<PathBuf>,
    /// Deadline of one push request.
    pub timeout_seconds: f64,
    /// Longest wait between retries after failures.
    pub max_backoff_seconds: f64,
    /// Seconds between pushes while nothing changes; default the round interval.
    pub interval_seconds: Option<f64>,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            url: None,
            node_name: None,
            token_file: None,
            timeout_seconds: 5.0,
            max_backoff_seconds: 60.0,
            interval_seconds: None,
        }
    }
}

/// The table of one check: the keys every check has, plus the check's own `settings`.
#[derive(Serialize, Clone, Debug)]
pub struct CheckSection<T> {
    pub enabled: bool,
    /// Deadline of this check; default the top-level `check_timeout_seconds`.
    pub timeout_seconds: Option<f64>,
    /// Flap damping (Consul's names): consecutive `ok` rounds before `ok` is reported again.
    pub success_before_passing: u32,
    /// Consecutive failing rounds before `warn` is reported (0: never warn first).
    pub failures_before_warning: u32,
    /// Consecutive failing rounds before `fail` is reported.
    pub failures_before_critical: u32,
    #[serde(flatten)]
    pub settings: T,
}

impl<T: Default> Default for CheckSection<T> {
    fn default() -> Self {
        CheckSection {
            enabled: true,
            timeout_seconds: None,
            success_before_passing: 0,
            failures_before_warning: 0,
            failures_before_critical: 0,
            settings: T::default(),
        }
    }
}

impl<'de, T: CheckSettings> Deserialize<'de> for CheckSection<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde cannot combine `flatten` with `deny_unknown_fields`, so split the common keys off
        // by hand and give the rest to the check's own strict settings type.
        let mut table = toml::Table::deserialize(d)?;
        let mut section = CheckSection::<T>::default();
        fn take<'de, V: DeserializeOwned, D: Deserializer<'de>>(
            table: &mut toml::Table,
            key: &str,
        ) -> Result<Option<V>, D::Error> {
            match table.remove(key) {
                None => Ok(None),
                Some(v) => V::deserialize(v)
                    .map(Some)
                    .map_err(|e| D::Error::custom(format!("key `{key}`: {}", e.message()))),
            }
        }
        if let Some(v) = take::<bool, D>(&mut table, "enabled")? {
            section.enabled = v;
        }
        section.timeout_seconds = take::<f64, D>(&mut table, "timeout_seconds")?;
        if let Some(v) = take::<u32, D>(&mut table, "success_before_passing")? {
            section.success_before_passing = v;
        }
        if let Some(v) = take::<u32, D>(&mut table, "failures_before_warning")? {
            section.failures_before_warning = v;
        }
        if let Some(v) = take::<u32, D>(&mut table, "failures_before_critical")? {
            section.failures_before_critical = v;
        }
        section.settings =
            T::deserialize(toml::Value::Table(table)).map_err(|e| D::Error::custom(e.message()))?;
        Ok(section)
    }
}

impl Config {
    /// Loads `file` (if any), applies `overrides` (`section.key`, value), checks the result.
    pub fn load(
        file: Option<&Path>,
        overrides: &[(String, toml::Value)],
    ) -> Result<Config, ConfigError> {
        match file {
            None => Config::from_toml_str("", None, overrides),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Config::from_toml_str(&text, Some(path), overrides)
            }
        }
    }

    /// Parses config text, applies `overrides`, checks the result (pure). `file` names the
    /// origin in error messages.
    pub fn from_toml_str(
        text: &str,
        file: Option<&Path>,
        overrides: &[(String, toml::Value)],
    ) -> Result<Config, ConfigError> {
        let mut table = parse_table(text, file)?;
        for (key, value) in overrides {
            set_key(&mut table, key, value.clone())?;
        }
        let in_file = |message: String| config_error(file, message);
        // Each table alone first, so that an error names its section.
        check_section::<velox_library::Settings>(&table, "velox_library").map_err(in_file)?;
        check_section::<hugepages::Settings>(&table, "hugepages").map_err(in_file)?;
        check_section::<numa::Settings>(&table, "numa").map_err(in_file)?;
        check_section::<scratch::Settings>(&table, "scratch").map_err(in_file)?;
        check_section::<memory::Settings>(&table, "memory").map_err(in_file)?;
        if let Some(v) = table.get("push") {
            PushConfig::deserialize(v.clone())
                .map_err(|e| in_file(format!("[push]: {}", e.message())))?;
        }
        let config: Config = deserialize_naming_key(&table, file)?;
        config.validate()?;
        Ok(config)
    }

    /// Rules one key alone cannot state. Messages name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| {
            Err(ConfigError::Invalid(format!("config key `{key}`: {why}")))
        };
        if let Some(path) = &self.web_config_file
            && let Err(e) = crate::server::web_config::WebConfig::load(path)
        {
            return bad("web_config_file", e.to_string());
        }
        if !(self.interval_seconds.is_finite() && self.interval_seconds > 0.0) {
            return bad(
                "interval_seconds",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.interval_seconds
                ),
            );
        }
        if !(self.check_timeout_seconds.is_finite() && self.check_timeout_seconds > 0.0) {
            return bad(
                "check_timeout_seconds",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.check_timeout_seconds
                ),
            );
        }
        if self.host_root.as_os_str().is_empty() {
            return bad("host_root", "must not be empty".into());
        }
        if !(self.push.timeout_seconds.is_finite() && self.push.timeout_seconds > 0.0) {
            return bad(
                "push.timeout_seconds",
                format!("must be positive, got {}", self.push.timeout_seconds),
            );
        }
        if !(self.push.max_backoff_seconds.is_finite() && self.push.max_backoff_seconds > 0.0) {
            return bad(
                "push.max_backoff_seconds",
                format!("must be positive, got {}", self.push.max_backoff_seconds),
            );
        }
        if let Some(url) = &self.push.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(
                "push.url",
                format!("must start with http:// or https://, got {url:?}"),
            );
        }
        validate_section("velox_library", &self.velox_library)?;
        validate_section("hugepages", &self.hugepages)?;
        validate_section("numa", &self.numa)?;
        validate_section("scratch", &self.scratch)?;
        validate_section("memory", &self.memory)?;
        Ok(())
    }

    /// The node name reports carry: `[push] node_name`, `node_name`, `NODE_NAME`, the hostname.
    pub fn effective_node_name(&self) -> String {
        self.push
            .node_name
            .clone()
            .or_else(|| self.node_name.clone())
            .or_else(|| std::env::var("NODE_NAME").ok().filter(|s| !s.is_empty()))
            .or_else(|| {
                nix::unistd::gethostname()
                    .ok()
                    .map(|h| h.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "unknown".to_string())
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

/// Deserialises a whole config table into `T`; on failure the message names the top-level key
/// at fault (serde's messages for a nested value do not), found by trying each entry alone.
pub fn deserialize_naming_key<T: DeserializeOwned>(
    table: &toml::Table,
    file: Option<&Path>,
) -> Result<T, ConfigError> {
    T::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let culprit = table.iter().find(|(k, v)| {
            let one = toml::Table::from_iter([((*k).clone(), (*v).clone())]);
            T::deserialize(toml::Value::Table(one)).is_err()
        });
        match culprit {
            Some((k, _)) => config_error(file, format!("key `{k}`: {}", e.message())),
            None => config_error(file, e.message().to_string()),
        }
    })
}

fn check_section<T: CheckSettings>(table: &toml::Table, name: &str) -> Result<(), String> {
    match table.get(name) {
        None => Ok(()),
        Some(v) => CheckSection::<T>::deserialize(v.clone())
            .map(|_| ())
            .map_err(|e| format!("[{name}]: {}", e.message())),
    }
}

fn validate_section<T: CheckSettings>(name: &str, s: &CheckSection<T>) -> Result<(), ConfigError> {
    if let Some(t) = s.timeout_seconds
        && !(t.is_finite() && t > 0.0)
    {
        return Err(ConfigError::Invalid(format!(
            "config key `{name}.timeout_seconds`: must be a positive number of seconds, got {t}"
        )));
    }
    s.settings
        .validate()
        .map_err(|why| ConfigError::Invalid(format!("config [{name}]: {why}")))
}

/// Parses one `--set KEY=VALUE`: the value is TOML (`30`, `true`, `["/a", "/b"]`, `"x"`), and a
/// bare word that is not TOML is taken as a string (`--set push.url=http://a:9000`).
pub fn parse_override(s: &str) -> Result<(String, toml::Value), String> {
    let (key, raw) = s.split_once('=').ok_or_else(|| {
        format!("--set {s:?}: expected KEY=VALUE, e.g. scratch.write_probe=false")
    })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(format!("--set {s:?}: bad key {key:?}"));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

fn set_key(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), ConfigError> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| {
            ConfigError::Invalid(format!("config key `{key}`: `{p}` is not a table"))
        })?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &[])
    }

    #[test]
    fn no_file_gives_the_documented_defaults() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.interval_seconds, 15.0);
        assert_eq!(c.check_timeout_seconds, 5.0);
        assert_eq!(c.host_root, PathBuf::from("/"));
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.velox_library.enabled && c.hugepages.enabled && c.memory.enabled);
    }

    #[test]
    fn top_level_and_section_keys_are_read() {
        let c = load_str(
            "listen = \"127.0.0.1:1\"\nhost_root = \"/host\"\ninterval_seconds = 30\n\
             check_timeout_seconds = 2.5\n[numa]\nenabled = false\n[memory]\nfailures_before_critical = 3\n",
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1");
        assert_eq!(c.host_root, PathBuf::from("/host"));
        assert_eq!(c.interval_seconds, 30.0);
        assert_eq!(c.check_timeout_seconds, 2.5);
        assert!(!c.numa.enabled);
        assert_eq!(c.memory.failures_before_critical, 3);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = load_str("intervall_seconds = 3\n").unwrap_err().to_string();
        assert!(e.contains("intervall_seconds"), "{e}");
        let e = load_str("[hugepages]\nthp_expectd = \"always\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("thp_expectd"), "{e}");
        let e = load_str("[nosuchcheck]\nenabled = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nosuchcheck"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load_str("interval_seconds = -1\n").unwrap_err().to_string();
        assert!(e.contains("interval_seconds"), "{e}");
        let e = load_str("[scratch]\nenabled = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("enabled"), "{e}");
        let e = load_str("[push]\nurl = \"aggregator:9000\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("push.url"), "{e}");
    }

    #[test]
    fn overrides_layer_on_top_and_are_checked_the_same_way() {
        let o = vec![
            parse_override("interval_seconds=2").unwrap(),
            parse_override("numa.enabled=false").unwrap(),
            parse_override("push.url=http://agg:9000").unwrap(),
        ];
        let c = Config::load(None, &o).unwrap();
        assert_eq!(c.interval_seconds, 2.0);
        assert!(!c.numa.enabled);
        assert_eq!(c.push.url.as_deref(), Some("http://agg:9000"));
        let e = Config::load(None, &[parse_override("numa.bogus=1").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        assert!(parse_override("novalue").is_err());
    }
}
