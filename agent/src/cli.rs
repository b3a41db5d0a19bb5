//! The command line of the one `gluten-node-agent` binary: the clap types of every subcommand
//! and the one mapping from flags to config keys ([`Overrides`]), used by the agent (`run`,
//! `check`) and the aggregator alike. A flag is a field with its doc and `--help` text; the line
//! in its `overrides` method names the config key it sets, so flag and key cannot drift apart.

use agent::config::{Config, ConfigError, LogFormat, parse_override};
use agent::oneshot::{self, DaemonAddr, Format};
use agent::outputs::npd;
#[cfg(feature = "aggregator")]
use aggregator::AggregatorConfig;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gluten-node-agent",
    version,
    about = "Node agent for Spark + Apache Gluten (Velox) worker hosts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: checks in the background, HTTP endpoints, push to the aggregator.
    Run(RunArgs),
    /// Run one round of checks, print it, exit 0 (no check fails), 1 (a check fails) or 2.
    /// With `--output yarn`: the NodeManager health script, always exit 0. With `--output npd`:
    /// a node-problem-detector plugin, exit 0 OK, 1 NonOK, 2 Unknown.
    Check(CheckArgs),
    /// Run the fleet aggregator.
    #[cfg(feature = "aggregator")]
    Aggregator(AggregatorArgs),
}

/// Why a subcommand's arguments cannot be used; exit code 2 either way.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config (its file, the flags that set keys, `--set`) is at fault, naming the key or
    /// the file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flag that sets no config key has a bad value.
    #[error("{flag}: {message}")]
    Usage { flag: &'static str, message: String },
}

/// A value a flag can carry into the config table.
pub trait ToToml {
    fn to_toml(&self) -> toml::Value;
}

impl ToToml for String {
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(self.clone())
    }
}

impl ToToml for PathBuf {
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(self.to_string_lossy().into_owned())
    }
}

impl ToToml for f64 {
    fn to_toml(&self) -> toml::Value {
        toml::Value::Float(*self)
    }
}

impl ToToml for u64 {
    fn to_toml(&self) -> toml::Value {
        toml::Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToToml for LogFormat {
    fn to_toml(&self) -> toml::Value {
        toml::Value::String(match self {
            LogFormat::Json => "json".into(),
            LogFormat::Text => "text".into(),
        })
    }
}

/// Config overrides from flags, in the order given: later ones win.
#[derive(Default, Debug)]
pub struct Overrides(pub Vec<(String, toml::Value)>);

impl Overrides {
    /// Sets config `key` when the flag was given.
    pub fn set<T: ToToml>(&mut self, key: &str, flag: &Option<T>) -> &mut Self {
        if let Some(v) = flag {
            self.0.push((key.to_string(), v.to_toml()));
        }
        self
    }
}

/// Flags of `aggregator`. Each sets the config key of the same name.
#[cfg(feature = "aggregator")]
#[derive(Args)]
pub struct AggregatorArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve HTTP on. Key `listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory of the embedded store. Key `data_dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL connection string, shared by replicas. Key `database_url`.
    #[arg(long, value_name = "URL", env = "GLUTEN_AGGREGATOR_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File holding the bearer token agents must send. Key `auth_token_file`.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// File holding the bearer token readers of /api/v1/* and /metrics must send. Key
    /// `read_token_file`.
    #[arg(long, value_name = "FILE")]
    pub read_token_file: Option<PathBuf>,
    /// Seconds without a report before a node is stale. Key `stale_after_seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub stale_after_seconds: Option<f64>,
    /// Seconds without a report before a node is forgotten. Key `gc_after_seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub gc_after_seconds: Option<f64>,
    /// Largest accepted report. Key `max_report_bytes`.
    #[arg(long, value_name = "BYTES")]
    pub max_report_bytes: Option<u64>,
    /// Log format. Key `log_format`.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// PEM certificate chain to serve HTTPS with, re-read when it changes. Key `tls_cert_file`.
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate. Key `tls_key_file`.
    #[arg(long, value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates verifying client certificates; a push then needs one naming its node
    /// (or another push credential). Key `tls_client_ca_file`.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// The cluster's JWKS (/openid/v1/jwks) verifying service-account tokens, re-read when it
    /// changes. Key `service_account_jwks_file`.
    #[arg(long, value_name = "FILE")]
    pub service_account_jwks_file: Option<PathBuf>,
    /// The issuer (iss) service-account tokens must carry. Key `service_account_issuer`.
    #[arg(long, value_name = "URL")]
    pub service_account_issuer: Option<String>,
    /// The audience (aud) service-account tokens must carry (default gluten-node-aggregator).
    /// Key `service_account_audience`.
    #[arg(long, value_name = "AUDIENCE")]
    pub service_account_audience: Option<String>,
    /// The subject (sub) service-account tokens must carry (default
    /// system:serviceaccount:gluten-node-agent:gluten-node-agent). Key `service_account_subject`.
    #[arg(long, value_name = "SUBJECT")]
    pub service_account_subject: Option<String>,
    /// Most nodes known at once; a new node beyond it gets 429. Key `max_nodes`.
    #[arg(long, value_name = "N")]
    pub max_nodes: Option<u64>,
    /// Start on a non-loopback address without any push authentication. Key
    /// `allow_unauthenticated_push`.
    #[arg(long)]
    pub allow_unauthenticated_push: bool,
    /// Only validate the config, then exit 0 or 2.
    #[arg(long)]
    pub check_config: bool,
}

#[cfg(feature = "aggregator")]
impl AggregatorArgs {
    /// The flags as config overrides (top-level keys).
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.set("listen", &self.listen)
            .set("data_dir", &self.data_dir)
            .set("database_url", &self.database_url)
            .set("auth_token_file", &self.auth_token_file)
            .set("read_token_file", &self.read_token_file)
            .set("stale_after_seconds", &self.stale_after_seconds)
            .set("gc_after_seconds", &self.gc_after_seconds)
            .set("max_report_bytes", &self.max_report_bytes)
            .set("log_format", &self.log_format)
            .set("tls_cert_file", &self.tls_cert_file)
            .set("tls_key_file", &self.tls_key_file)
            .set("tls_client_ca_file", &self.tls_client_ca_file)
            .set("service_account_jwks_file", &self.service_account_jwks_file)
            .set("service_account_issuer", &self.service_account_issuer)
            .set("service_account_audience", &self.service_account_audience)
            .set("service_account_subject", &self.service_account_subject)
            .set("max_nodes", &self.max_nodes);
        if self.allow_unauthenticated_push {
            o.0.push((
                "allow_unauthenticated_push".into(),
                toml::Value::Boolean(true),
            ));
        }
        o
    }

    /// The validated config, or the config error (exit code 2).
    pub fn load(&self) -> Result<AggregatorConfig, CliError> {
        Ok(AggregatorConfig::load(
            self.config.as_deref(),
            &self.overrides().0,
        )?)
    }
}

/// Flags shared by `run` and `check`. Each sets the config key named in its help.
#[derive(Args)]
pub struct CommonArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the host's `/` is (`/host` in a container). Key `host_root`.
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// The executor's root filesystem (`/executor` where its image is mounted). Key
    /// `velox_library.executor_root`.
    #[arg(long, value_name = "DIR")]
    pub executor_root: Option<PathBuf>,
    /// Log format. Key `log_format`.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds between rounds. Key `interval_seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub interval_seconds: Option<f64>,
    /// Deadline of one check. Key `check_timeout_seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub check_timeout_seconds: Option<f64>,
    /// Name of this node in reports. Key `node_name` (default NODE_NAME, else the hostname).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Aggregator base URL. Key `push.url`.
    #[arg(long, value_name = "URL")]
    pub push_url: Option<String>,
    /// File holding the aggregator's bearer token. Key `push.token_file`.
    #[arg(long, value_name = "FILE")]
    pub push_token_file: Option<PathBuf>,
    /// PEM CA certificates for an `https://` push URL, besides the system roots. Key
    /// `push.ca_file`.
    #[arg(long, value_name = "FILE")]
    pub push_ca_file: Option<PathBuf>,
    /// Any config key, e.g. `--set scratch.dirs='["/data1","/data2"]'` (value in TOML syntax).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub set: Vec<(String, toml::Value)>,
    /// Only validate the config (and the host root), then exit 0 or 2.
    #[arg(long)]
    pub check_config: bool,
}

impl CommonArgs {
    /// The flags as config overrides, after any `--set` (so a dedicated flag wins).
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides(self.set.clone());
        o.set("host_root", &self.host_root)
            .set("velox_library.executor_root", &self.executor_root)
            .set("log_format", &self.log_format)
            .set("interval_seconds", &self.interval_seconds)
            .set("check_timeout_seconds", &self.check_timeout_seconds)
            .set("node_name", &self.node_name)
            .set("push.url", &self.push_url)
            .set("push.token_file", &self.push_token_file)
            .set("push.ca_file", &self.push_ca_file);
        o
    }

    /// The validated config with `extra` overrides on top, or the config error (exit code 2).
    pub fn load(&self, extra: Overrides) -> Result<Config, CliError> {
        let mut o = self.overrides();
        o.0.extend(extra.0);
        let config = Config::load(self.config.as_deref(), &o.0)?;
        if !config.host_root.is_dir() {
            return Err(ConfigError::key(
                "host_root",
                format!("{} is not a directory", config.host_root.display()),
            )
            .into());
        }
        Ok(config)
    }
}

/// Flags of `run`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to serve HTTP on. Key `listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// node-feature-discovery features file to write after every round. Key
    /// `nfd.features_file`.
    #[arg(long, value_name = "FILE")]
    pub nfd_features_file: Option<PathBuf>,
    /// TLS and basic auth of the HTTP endpoints (exporter-toolkit style, TOML). Key
    /// `web_config_file`.
    #[arg(long, value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Also serve the read-only endpoints on this Unix socket, without TLS or auth (its group
    /// and mode 0660 are the access control), for `check --from-daemon`. Key
    /// `local_socket.path`.
    #[arg(long, value_name = "PATH")]
    pub local_socket: Option<PathBuf>,
    /// The socket's group, a name or a numeric id. Key `local_socket.group`.
    #[arg(long, value_name = "GROUP")]
    pub local_socket_group: Option<String>,
}

impl RunArgs {
    pub fn load(&self) -> Result<Config, CliError> {
        let mut o = Overrides::default();
        o.set("listen", &self.listen)
            .set("nfd.features_file", &self.nfd_features_file)
            .set("web_config_file", &self.web_config_file)
            .set("local_socket.path", &self.local_socket)
            .set("local_socket.group", &self.local_socket_group);
        self.common.load(o)
    }
}

/// How `check` prints the round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One line per check, then the node verdict; exit 1 when a check fails.
    Table,
    /// Exactly the `/health` body; exit 1 when a check fails.
    Json,
    /// YARN NodeManager health script: `ERROR <check>: <summary>` per failing check; exit 0.
    Yarn,
    /// node-problem-detector custom plugin: one line; exit 0 OK, 1 NonOK (a check fails), 2
    /// Unknown.
    Npd,
}

/// Flags of `check`.
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// `table` (one line per check), `json` (exactly the `/health` body), `yarn` (the
    /// NodeManager health script's lines, always exit 0) or `npd` (a node-problem-detector
    /// plugin: one line, exit 0 OK, 1 NonOK, 2 Unknown).
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    /// Instead of running a round, read the cached verdict of the daemon running on this node:
    /// `unix:/run/gluten-node-agent/agent.sock`, or a loopback `HOST:PORT` (then the config's
    /// `local_socket.path` is used when it names one, else HTTP(S) to that address).
    #[arg(long, value_name = "ADDR")]
    pub from_daemon: Option<DaemonAddr>,
    /// Longest line of `--output npd`, in bytes (NPD's `max_output_length`).
    #[arg(long, value_name = "BYTES", default_value_t = npd::DEFAULT_MAX_OUTPUT_LENGTH)]
    pub max_output_length: usize,
    /// `yarn` and `npd`: answer "no verdict" after this long, whatever hangs (default: 4.5 for
    /// npd, under NPD's 5 s timeout; the longest check deadline plus 1 for yarn).
    #[arg(long, value_name = "SECONDS")]
    pub deadline_seconds: Option<f64>,
}

impl CheckArgs {
    pub fn load(&self) -> Result<Config, CliError> {
        if let Some(s) = self.deadline_seconds
            && !(s.is_finite() && s > 0.0)
        {
            return Err(CliError::Usage {
                flag: "--deadline-seconds",
                message: format!("must be a positive number of seconds, got {s}"),
            });
        }
        if self.max_output_length == 0 {
            return Err(CliError::Usage {
                flag: "--max-output-length",
                message: "must be at least 1".into(),
            });
        }
        self.common.load(Overrides::default())
    }

    /// What to print and where the verdict comes from.
    pub fn request(&self) -> oneshot::Request {
        oneshot::Request {
            format: match self.output {
                Output::Table => Format::Table,
                Output::Json => Format::Json,
                Output::Yarn => Format::Yarn,
                Output::Npd => Format::Npd {
                    max_output_length: self.max_output_length,
                },
            },
            from_daemon: self.from_daemon.clone(),
            deadline: self.deadline_seconds.map(Duration::from_secs_f64),
        }
    }
}

/// Logs to stderr in `format`; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("gluten-node-agent").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    #[test]
    fn agent_flags_map_to_their_config_keys_and_win_over_set() {
        let Command::Run(run) = parse(&[
            "run",
            "--set",
            "interval_seconds=9",
            "--interval-seconds",
            "2.5",
            "--push-url",
            "http://agg:9900",
            "--push-token-file",
            "/t",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:1",
            "--nfd-features-file",
            "/etc/kubernetes/node-feature-discovery/features.d/gluten",
        ]) else {
            panic!("not run")
        };
        let c = run.load().unwrap();
        assert_eq!(c.interval_seconds, 2.5);
        assert_eq!(c.push.url.as_deref(), Some("http://agg:9900"));
        assert_eq!(c.push.token_file, Some(PathBuf::from("/t")));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.listen.to_string(), "127.0.0.1:1");
        assert_eq!(
            c.nfd.features_file,
            Some(PathBuf::from(
                "/etc/kubernetes/node-feature-discovery/features.d/gluten"
            ))
        );
        let Command::Run(run) = parse(&["run", "--nfd-features-file", ".hidden"]) else {
            panic!("not run")
        };
        let e = run.load().unwrap_err();
        assert!(
            matches!(&e, CliError::Config(ConfigError::Key { key, .. }) if key == "nfd.features_file"),
            "{e}"
        );
        assert!(e.to_string().contains("nfd.features_file"), "{e}");
    }

    #[cfg(feature = "aggregator")]
    #[test]
    fn aggregator_flags_map_to_their_config_keys() {
        let Command::Aggregator(a) = parse(&[
            "aggregator",
            "--listen",
            "127.0.0.1:2",
            "--stale-after-seconds",
            "30",
            "--gc-after-seconds",
            "60",
            "--max-report-bytes",
            "4096",
            "--data-dir",
            "/d",
        ]) else {
            panic!("not aggregator")
        };
        let c = a.load().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:2");
        assert_eq!(c.stale_after_seconds, 30.0);
        assert_eq!(c.gc_after_seconds, 60.0);
        assert_eq!(c.max_report_bytes, 4096);
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        let bad = parse(&["aggregator", "--max-report-bytes", "10"]);
        let Command::Aggregator(a) = bad else {
            panic!()
        };
        let e = a.load().unwrap_err();
        assert!(matches!(e, CliError::Config(_)), "{e}");
        assert!(e.to_string().contains("max_report_bytes"), "{e}");
    }

    #[test]
    fn push_tls_files_are_checked_naming_their_keys() {
        let Command::Run(run) = parse(&["run", "--push-ca-file", "/nonexistent/ca.pem"]) else {
            panic!("not run")
        };
        let e = run.load().unwrap_err().to_string();
        assert!(
            e.contains("push.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let Command::Run(run) = parse(&[
            "run",
            "--set",
            "push.client_cert_file=\"/nonexistent/c.pem\"",
        ]) else {
            panic!("not run")
        };
        let e = run.load().unwrap_err().to_string();
        assert!(e.contains("push.client_key_file"), "{e}");
    }

    #[test]
    fn from_daemon_is_loopback_or_a_unix_socket() {
        let bad = Cli::try_parse_from([
            "gluten-node-agent",
            "check",
            "--from-daemon",
            "10.0.0.1:9899",
        ]);
        assert!(bad.err().unwrap().to_string().contains("loopback"));
        let Command::Check(c) = parse(&[
            "check",
            "--output",
            "npd",
            "--from-daemon",
            "unix:/run/a.sock",
            "--max-output-length",
            "60",
        ]) else {
            panic!()
        };
        let r = c.request();
        assert_eq!(
            r.format,
            Format::Npd {
                max_output_length: 60
            }
        );
        assert_eq!(r.from_daemon, Some(DaemonAddr::Unix("/run/a.sock".into())));
    }
}
