//! Agent configuration: TOML with unknown keys rejected, defaults per check in the check's own
//! file, `--set section.key=value` and dedicated flags layered on top, `validate()` for rules that
//! span fields.

use checks::check::{NodeCheck, Shared};
use checks::{CheckSection, Common, KeyError, Registration, Section};
pub use common::config_file::{
    ConfigError, LogFormat, config_error, deserialize_naming_key, parse_override, parse_table,
    read_table,
};
use serde::{Deserialize, Serialize};
use serve::web_config::{WebConfig, WebConfigError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default address of the agent's HTTP server.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9899";

pub use checks::check::CheckSettings;

/// The whole agent configuration: the top-level keys, `[push]`, and one table per registered
/// check (`checks::ALL`), reached typed with [`Config::check`] or by name with [`Config::common`].
/// Made by [`Config::load`], [`Config::from_toml_str`] or `Default`: serde alone reads only the
/// top-level keys (it is how `from_toml_str` reads them) and leaves the check tables empty.
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
    pub nfd: crate::outputs::nfd::NfdConfig,
    /// The read-only endpoints on a Unix socket, without TLS or auth (`run` serves it,
    /// `check --from-daemon` reads it).
    pub local_socket: crate::local_socket::LocalSocketConfig,
    /// The table of every registered check, in report order (filled from the registry, never
    /// by serde directly).
    #[serde(skip)]
    checks: Vec<(Registration, Box<dyn Section>)>,
    /// The web config of `web_config_file` as [`Config::load`] read it (with its TLS files), and
    /// that path: what the daemon serves with and `check --from-daemon` trusts, so the files are
    /// read once at start.
    #[serde(skip)]
    web: Option<(PathBuf, Arc<WebConfig>)>,
}

impl Default for Config {
    fn default() -> Self {
        Config::default_in(checks::ALL)
    }
}

/// `[push]`: where and how the agent sends its report to the fleet aggregator.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Aggregator base URL, e.g. `http://aggregator:9900`. No URL: no push.
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
    /// PEM CA certificates trusted for an `https://` url, besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and key for mTLS; both or neither.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
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
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

impl Config {
    /// What the pusher needs from `[push]`, or `None` when no `push.url` is set.
    pub fn push_settings(&self) -> Option<crate::outputs::push::PushSettings> {
        let c = self;
        let url = c.push.url.as_deref()?;
        Some(crate::outputs::push::PushSettings {
            endpoint: crate::outputs::push::endpoint(url),
            token_file: c.push.token_file.clone(),
            timeout: Duration::from_secs_f64(c.push.timeout_seconds),
            max_backoff: Duration::from_secs_f64(c.push.max_backoff_seconds),
            interval: Duration::from_secs_f64(
                c.push.interval_seconds.unwrap_or(c.interval_seconds),
            ),
            tls: crate::outputs::push::client::PushTlsFiles {
                ca_file: c.push.ca_file.clone(),
                client_cert_file: c.push.client_cert_file.clone(),
                client_key_file: c.push.client_key_file.clone(),
            },
        })
    }

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
        Config::from_toml_str_in(checks::ALL, text, file, overrides)
    }

    /// [`Config::from_toml_str`] with the checks of `registry` instead of `checks::ALL`.
    pub fn from_toml_str_in(
        registry: &[Registration],
        text: &str,
        file: Option<&Path>,
        overrides: &[(String, toml::Value)],
    ) -> Result<Config, ConfigError> {
        let mut table = parse_table(text, file)?;
        for (key, value) in overrides {
            set_key(&mut table, key, value.clone())?;
        }
        let in_file = |e: KeyError| config_error(file, e.to_string());
        // Each check's table to its registration; the rest are the top-level keys.
        let mut sections = Vec::with_capacity(registry.len());
        for r in registry {
            let section = match table.remove(r.name) {
                None => r.default_section(),
                Some(v) => r.parse_section(v).map_err(in_file)?,
            };
            sections.push((*r, section));
        }
        let mut config: Config = common::config_file::deserialize_tracking_path(
            toml::Value::Table(table),
        )
        .map_err(|e| {
            let mut e = KeyError::at("", e);
            if e.message.starts_with("unknown field") {
                let names: Vec<String> = registry.iter().map(|r| format!("`{}`", r.name)).collect();
                e.message = format!("{}, or a check: {}", e.message, names.join(", "));
            }
            in_file(e)
        })?;
        config.checks = sections;
        if let Some(path) = &config.web_config_file {
            let web = WebConfig::load(path)
                .map_err(|e| ConfigError::key("web_config_file", e.to_string()))?;
            config.web = Some((path.clone(), Arc::new(web)));
        }
        config.validate()?;
        Ok(config)
    }

    /// The defaults, with the checks of `registry` instead of `checks::ALL`.
    pub fn default_in(registry: &[Registration]) -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            host_root: PathBuf::from("/"),
            interval_seconds: 15.0,
            check_timeout_seconds: 5.0,
            node_name: None,
            log_format: LogFormat::Text,
            web_config_file: None,
            push: PushConfig::default(),
            nfd: Default::default(),
            local_socket: Default::default(),
            checks: registry.iter().map(|r| (*r, r.default_section())).collect(),
            web: None,
        }
    }

    /// Every check's registration and table, in report order.
    pub fn sections(&self) -> impl Iterator<Item = (&Registration, &dyn Section)> {
        self.checks.iter().map(|(r, s)| (r, s.as_ref()))
    }

    /// The table of the check named `name`, if registered.
    pub fn section(&self, name: &str) -> Option<&dyn Section> {
        self.sections()
            .find(|(r, _)| r.name == name)
            .map(|(_, s)| s)
    }

    /// The common keys (`enabled`, `timeout_seconds`, damping) of the check named `name`.
    /// Panics when no such check is registered: for tests and fixed names.
    pub fn common(&self, name: &str) -> &Common {
        match self.section(name) {
            Some(s) => s.common(),
            None => panic!("no check named {name:?} is registered"),
        }
    }

    /// The common keys of the check named `name`, to change (`config.common_mut("numa").enabled
    /// = false`). Panics when no such check is registered.
    pub fn common_mut(&mut self, name: &str) -> &mut Common {
        match self.checks.iter_mut().find(|(r, _)| r.name == name) {
            Some((_, s)) => s.common_mut(),
            None => panic!("no check named {name:?} is registered"),
        }
    }

    /// The typed table of check `C` (`config.check::<Memory>().settings.executors_per_node`).
    /// Panics when `C` is not registered in this config.
    pub fn check<C: NodeCheck>(&self) -> &CheckSection<C::Settings> {
        self.section(C::NAME)
            .and_then(checks::typed::<C>)
            .unwrap_or_else(|| panic!("check {:?} is not registered", C::NAME))
    }

    /// The typed table of check `C`, to change. Panics when `C` is not registered.
    pub fn check_mut<C: NodeCheck>(&mut self) -> &mut CheckSection<C::Settings> {
        self.checks
            .iter_mut()
            .find(|(r, _)| r.name == C::NAME)
            .and_then(|(_, s)| s.as_any_mut().downcast_mut())
            .unwrap_or_else(|| panic!("check {:?} is not registered", C::NAME))
    }

    /// What the check tables give to every check (`memory.spark_defaults`,
    /// `memory.executors_per_node`, `velox_library.executor_root`, `.jars`, `.java_home`), taken whether or not the giving check is enabled.
    pub fn shared(&self) -> Shared {
        let mut shared = Shared::default();
        for (r, s) in self.sections() {
            r.share(s, &mut shared);
        }
        shared
    }

    /// The longest deadline any check may run under: `check_timeout_seconds` or a longer
    /// `timeout_seconds` of any check's table.
    pub fn longest_timeout(&self) -> Duration {
        let longest = self
            .sections()
            .filter_map(|(_, s)| s.common().timeout_seconds)
            .fold(self.check_timeout_seconds, f64::max);
        Duration::from_secs_f64(longest)
    }

    /// The web config of `web_config_file`: the one [`Config::load`] read, or (for a config
    /// made another way, or pointed at another file since) the file read now. `None` without
    /// `web_config_file`.
    pub fn web_config(&self) -> Result<Option<Arc<WebConfig>>, WebConfigError> {
        let Some(path) = &self.web_config_file else {
            return Ok(None);
        };
        match &self.web {
            Some((loaded, web)) if loaded == path => Ok(Some(web.clone())),
            _ => WebConfig::load(path).map(|w| Some(Arc::new(w))),
        }
    }

    /// Rules one key alone cannot state (the web config file is read, and checked, by
    /// [`Config::load`]). Messages name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError::key(key, why));
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
        for (key, name) in [
            ("node_name", &self.node_name),
            ("push.node_name", &self.push.node_name),
        ] {
            if let Some(name) = name
                && !proto::valid_node_name(name)
            {
                return bad(
                    key,
                    format!(
                        "{name:?} is not a node name (1-253 ASCII letters, digits, '.', '_', '-'; \
                         not \".\" or \"..\")"
                    ),
                );
            }
        }
        if let Some(url) = &self.push.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(
                "push.url",
                format!("must start with http:// or https://, got {url:?}"),
            );
        }
        if self.push.client_cert_file.is_some() != self.push.client_key_file.is_some() {
            return bad(
                "push.client_cert_file",
                "push.client_cert_file and push.client_key_file go together".into(),
            );
        }
        for (key, path) in [
            ("push.ca_file", &self.push.ca_file),
            ("push.client_cert_file", &self.push.client_cert_file),
            ("push.client_key_file", &self.push.client_key_file),
        ] {
            if let Some(p) = path
                && !p.is_file()
            {
                return bad(key, format!("{} is not a readable file", p.display()));
            }
        }
        self.nfd.validate()?;
        self.local_socket.validate()?;
        for (r, s) in self.sections() {
            if let Some(t) = s.common().timeout_seconds
                && !(t.is_finite() && t > 0.0)
            {
                return bad(
                    &format!("{}.timeout_seconds", r.name),
                    format!("must be a positive number of seconds, got {t}"),
                );
            }
            s.validate_settings(r.name)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
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
        assert!(checks::NAMES.iter().all(|n| c.common(n).enabled));
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
        assert!(!c.common("numa").enabled);
        assert_eq!(c.common("memory").failures_before_critical, 3);
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
        let e = load_str("[push]\nurl = \"aggregator:9900\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("push.url"), "{e}");
    }

    #[test]
    fn overrides_layer_on_top_and_are_checked_the_same_way() {
        let o = vec![
            parse_override("interval_seconds=2").unwrap(),
            parse_override("numa.enabled=false").unwrap(),
            parse_override("push.url=http://agg:9900").unwrap(),
        ];
        let c = Config::load(None, &o).unwrap();
        assert_eq!(c.interval_seconds, 2.0);
        assert!(!c.common("numa").enabled);
        assert_eq!(c.push.url.as_deref(), Some("http://agg:9900"));
        let e = Config::load(None, &[parse_override("numa.bogus=1").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        assert!(parse_override("novalue").is_err());
    }

    #[test]
    fn errors_name_the_full_key_after_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path), &[]).unwrap_err().to_string()
        };
        let file = path.display();
        assert_eq!(
            load("[memory]\nexecutors_per_node = \"two\"\n"),
            format!(
                "config file {file}: memory.executors_per_node: invalid type: string \"two\", \
                 expected u32"
            )
        );
        assert_eq!(
            load("interval_seconds = \"x\"\n"),
            format!(
                "config file {file}: interval_seconds: invalid type: string \"x\", expected f64"
            )
        );
        assert_eq!(
            load("[push]\ntimeout_seconds = true\n"),
            format!(
                "config file {file}: push.timeout_seconds: invalid type: boolean `true`, expected f64"
            )
        );
        assert_eq!(
            load("[[hugepages.pools]]\nsize_bytes = 2097152\nmin_total = -1\n"),
            format!(
                "config file {file}: hugepages.pools[0].min_total: invalid value: integer `-1`, \
                 expected u64"
            )
        );
        assert_eq!(
            load("[numa]\nenabled = 1\n"),
            format!(
                "config file {file}: numa.enabled: invalid type: integer `1`, expected a boolean"
            )
        );
        let e = load("[scratch]\nbogus = 1\n");
        assert!(
            e.starts_with(&format!(
                "config file {file}: scratch.bogus: unknown field `bogus`"
            )),
            "{e}"
        );
        let e = load("[nosuchcheck]\n");
        assert!(
            e.starts_with(&format!(
                "config file {file}: nosuchcheck: unknown field `nosuchcheck`"
            )),
            "{e}"
        );
        assert!(e.contains("or a check: `velox_library`"), "{e}");
    }

    #[test]
    fn set_reaches_every_key_of_every_section() {
        let o = [
            parse_override("memory.executors_per_node=3").unwrap(),
            parse_override("memory.timeout_seconds=9").unwrap(),
            parse_override("hugepages.thp_expected=always").unwrap(),
            parse_override("push.timeout_seconds=2").unwrap(),
        ];
        let c = Config::load(None, &o).unwrap();
        assert_eq!(
            c.check::<checks::memory::Memory>()
                .settings
                .executors_per_node,
            3
        );
        assert_eq!(c.longest_timeout(), Duration::from_secs(9));
        assert_eq!(
            c.check::<checks::hugepages::Hugepages>()
                .settings
                .thp_expected,
            checks::hugepages::ThpMode::Always
        );
        assert_eq!(c.push.timeout_seconds, 2.0);
        let e = Config::load(
            None,
            &[parse_override("memory.executors_per_node=two").unwrap()],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "config: memory.executors_per_node: invalid type: string \"two\", expected u32"
        );
    }

    #[test]
    fn node_names_the_aggregator_cannot_address_are_refused() {
        for (key, value) in [
            ("node_name", "."),
            ("push.node_name", ".."),
            ("node_name", "a/b"),
        ] {
            let e = Config::load(
                None,
                &[parse_override(&format!("{key}=\"{value}\"")).unwrap()],
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with(&format!("config key `{key}`: ")), "{e}");
        }
        let c = Config::load(None, &[parse_override("node_name=\"worker-1\"").unwrap()]).unwrap();
        assert_eq!(c.effective_node_name(), "worker-1");
    }
}
