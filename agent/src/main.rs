//! `gluten-node-agent`: parses arguments, loads the config, sets up logging, then runs the daemon
//! (`run`), one round (`check`) or the fleet aggregator (`aggregator`). The only place that
//! decides exit codes: 0 fine, 1 a check fails (or the daemon could not start), 2 usage/config.

use agent::aggregator::AggregatorConfig;
use agent::check::Check;
use agent::config::{Config, LogFormat, parse_override};
use agent::engine::{self, Engine, Heartbeat, Policy};
use agent::host::Host;
use agent::http::{self, AppState};
use agent::metrics::MetricsCache;
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use proto::{NodeReport, Status};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gluten-node-agent",
    version,
    about = "Node agent for Spark + Apache Gluten (Velox) worker hosts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: checks in the background, HTTP endpoints, push to the aggregator.
    Run(RunArgs),
    /// Run one round of checks, print it, exit 0 (no check fails), 1 (a check fails) or 2.
    Check(CheckArgs),
    /// Run the fleet aggregator.
    Aggregator(AggregatorArgs),
}

/// Flags of `aggregator`. Each sets the config key of the same name.
#[derive(Args)]
struct AggregatorArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to serve HTTP on. Key `listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory of the embedded store. Key `data_dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL connection string, shared by replicas. Key `database_url`.
    #[arg(long, value_name = "URL", env = "GLUTEN_AGGREGATOR_DATABASE_URL")]
    database_url: Option<String>,
    /// File holding the bearer token agents must send. Key `auth_token_file`.
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// File holding the bearer token readers of /api/v1/* and /metrics must send. Key `read_token_file`.
    #[arg(long, value_name = "FILE")]
    read_token_file: Option<PathBuf>,
    /// Seconds without a report before a node is stale. Key `stale_after_seconds`.
    #[arg(long, value_name = "SECONDS")]
    stale_after_seconds: Option<f64>,
    /// Seconds without a report before a node is forgotten. Key `gc_after_seconds`.
    #[arg(long, value_name = "SECONDS")]
    gc_after_seconds: Option<f64>,
    /// Largest accepted report. Key `max_report_bytes`.
    #[arg(long, value_name = "BYTES")]
    max_report_bytes: Option<u64>,
    /// Log format. Key `log_format`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Only validate the config, then exit 0 or 2.
    #[arg(long)]
    check_config: bool,
}

impl AggregatorArgs {
    fn load(&self) -> Result<AggregatorConfig, String> {
        use toml::Value as V;
        let path = |p: &PathBuf| V::String(p.to_string_lossy().into_owned());
        let o: Vec<(String, V)> = [
            ("listen", self.listen.clone().map(V::String)),
            ("data_dir", self.data_dir.as_ref().map(path)),
            ("database_url", self.database_url.clone().map(V::String)),
            ("auth_token_file", self.auth_token_file.as_ref().map(path)),
            ("read_token_file", self.read_token_file.as_ref().map(path)),
            (
                "stale_after_seconds",
                self.stale_after_seconds.map(V::Float),
            ),
            ("gc_after_seconds", self.gc_after_seconds.map(V::Float)),
            (
                "max_report_bytes",
                self.max_report_bytes
                    .map(|b| V::Integer(i64::try_from(b).unwrap_or(i64::MAX))),
            ),
            (
                "log_format",
                self.log_format
                    .map(|f| V::String(if f == LogFormat::Json { "json" } else { "text" }.into())),
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
        AggregatorConfig::load(self.config.as_deref(), &o).map_err(|e| e.to_string())
    }
}

/// Flags shared by `run` and `check`. Each sets the config key of the same name.
#[derive(Args)]
struct CommonArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the host's `/` is (`/host` in a container). Key `host_root`.
    #[arg(long, value_name = "DIR")]
    host_root: Option<PathBuf>,
    /// Log format. Key `log_format`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Seconds between rounds. Key `interval_seconds`.
    #[arg(long, value_name = "SECONDS")]
    interval_seconds: Option<f64>,
    /// Deadline of one check. Key `check_timeout_seconds`.
    #[arg(long, value_name = "SECONDS")]
    check_timeout_seconds: Option<f64>,
    /// Name of this node in reports. Key `node_name` (default NODE_NAME, else the hostname).
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// Aggregator base URL. Key `push.url`.
    #[arg(long, value_name = "URL")]
    push_url: Option<String>,
    /// File holding the aggregator's bearer token. Key `push.token_file`.
    #[arg(long, value_name = "FILE")]
    push_token_file: Option<PathBuf>,
    /// Any config key, e.g. `--set scratch.dirs='["/data1","/data2"]'` (value in TOML syntax).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    set: Vec<(String, toml::Value)>,
    /// Only validate the config (and the host root), then exit 0 or 2.
    #[arg(long)]
    check_config: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to serve HTTP on. Key `listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// `table` (one line per check) or `json` (exactly the `/health` body).
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

impl CommonArgs {
    /// The flags as config overrides, after any `--set`.
    fn overrides(&self, listen: Option<&str>) -> Vec<(String, toml::Value)> {
        use toml::Value as V;
        let mut o = self.set.clone();
        let path = |p: &PathBuf| V::String(p.to_string_lossy().into_owned());
        let mut add = |k: &str, v: Option<V>| {
            if let Some(v) = v {
                o.push((k.to_string(), v));
            }
        };
        add("host_root", self.host_root.as_ref().map(path));
        add(
            "log_format",
            self.log_format
                .map(|f| V::String(if f == LogFormat::Json { "json" } else { "text" }.into())),
        );
        add("interval_seconds", self.interval_seconds.map(V::Float));
        add(
            "check_timeout_seconds",
            self.check_timeout_seconds.map(V::Float),
        );
        add("node_name", self.node_name.clone().map(V::String));
        add("push.url", self.push_url.clone().map(V::String));
        add("push.token_file", self.push_token_file.as_ref().map(path));
        add("listen", listen.map(|l| V::String(l.to_string())));
        o
    }

    /// The validated config, or the message for exit code 2.
    fn load(&self, listen: Option<&str>) -> Result<Config, String> {
        let config = Config::load(self.config.as_deref(), &self.overrides(listen))
            .map_err(|e| e.to_string())?;
        if !config.host_root.is_dir() {
            return Err(format!(
                "config key `host_root`: {} is not a directory",
                config.host_root.display()
            ));
        }
        Ok(config)
    }
}

fn init_logging(format: LogFormat) {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match args.common.load(args.listen.as_deref()) {
            Err(e) => config_error(&e),
            Ok(_) if args.common.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                match run(config) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        eprintln!("gluten-node-agent: {e:#}");
                        ExitCode::from(1)
                    }
                }
            }
        },
        Command::Check(args) => match args.common.load(None) {
            Err(e) => config_error(&e),
            Ok(_) if args.common.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                check(config, args.output)
            }
        },
        Command::Aggregator(args) => match args.load() {
            Err(e) => config_error(&e),
            Ok(_) if args.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                let served = runtime().block_on(agent::aggregator::serve(config, async {
                    shutdown_signal().await;
                    tracing::info!("shutting down");
                }));
                match served {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        eprintln!("gluten-node-agent: {:#}", anyhow::Error::from(e));
                        ExitCode::from(1)
                    }
                }
            }
        },
    }
}

fn config_error(message: &str) -> ExitCode {
    eprintln!("gluten-node-agent: {message}");
    ExitCode::from(2)
}

/// The engine and everything it needs, from a validated config.
fn engine_for(config: &Config) -> Engine {
    let host = Host::new(&config.host_root);
    let checks: Vec<Arc<dyn Check>> = agent::checks::build(config);
    let node = engine::node_info(&host, config.effective_node_name());
    Engine::new(
        host,
        node,
        checks,
        &engine::policies(config),
        Policy::with_timeout(Duration::from_secs_f64(config.check_timeout_seconds)),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn check(config: Config, output: Output) -> ExitCode {
    let mut engine = engine_for(&config);
    let snapshot = runtime().block_on(engine.run_round());
    let report = &snapshot.report;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        ),
        Output::Table => print!("{}", table(report)),
    }
    // Exit at once: a check stuck in the kernel must not keep the process alive.
    let code = if report.status == Status::Fail { 1 } else { 0 };
    std::process::exit(code)
}

/// One line per check: name, status, duration, summary; then the node verdict.
fn table(report: &NodeReport) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:7}  {:>9}  SUMMARY\n",
        "CHECK", "STATUS", "DURATION"
    );
    for c in &report.checks {
        out.push_str(&format!(
            "{:width$}  {:7}  {:>8.3}s  {}\n",
            c.name,
            c.status.as_str(),
            c.duration_seconds,
            c.summary
        ));
    }
    out.push_str(&format!("node {}: {}\n", report.node.name, report.status));
    out
}

fn run(config: Config) -> anyhow::Result<()> {
    let rt = runtime();
    rt.block_on(async move {
        let engine = engine_for(&config);
        let names: Vec<String> = engine.check_names().iter().map(|s| s.to_string()).collect();
        let interval = Duration::from_secs_f64(config.interval_seconds);
        let longest = Duration::from_secs_f64(config.check_timeout_seconds.max(
            [&config.velox_library.timeout_seconds, &config.hugepages.timeout_seconds, &config.numa.timeout_seconds,
             &config.scratch.timeout_seconds, &config.memory.timeout_seconds]
                .iter()
                .filter_map(|t| **t)
                .fold(0.0, f64::max),
        ));
        let heartbeat = Arc::new(Heartbeat::default());
        heartbeat.beat();
        let push_stats = Arc::new(agent::push::PushStats::default());
        let (tx, rx) = tokio::sync::watch::channel(None);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

        // Three intervals, plus the longest deadline a round may wait on.
        let live_threshold = interval * 3 + longest;
        // systemd Type=notify: READY=1 after the first round, WATCHDOG=1 on the /livez rule.
        let notifier = agent::notify::Notifier::from_env().map(Arc::new);
        let _notify_task = notifier.clone().map(|n| {
            let watchdog = agent::notify::watchdog_interval();
            tokio::spawn(agent::notify::supervise(
                n, rx.clone(), heartbeat.clone(), live_threshold, watchdog, stop_rx.clone(),
            ))
        });
        let state = Arc::new(AppState::new(
            rx,
            heartbeat.clone(),
            live_threshold,
            MetricsCache::new(config.interval_seconds, Some(push_stats.clone())),
            names,
        ));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {} (config key `listen`)", config.listen))?;
        tracing::info!(listen = %listener.local_addr()?, host_root = %config.host_root.display(), "serving");

        if let Some(settings) = agent::push::PushSettings::from_config(&config) {
            tracing::info!(endpoint = %settings.endpoint, node = %config.effective_node_name(), "pushing reports");
            tokio::spawn(agent::push::run(settings, tx.subscribe(), push_stats, stop_rx.clone()));
        }
        let engine_task = tokio::spawn(engine.run_loop(interval, tx, heartbeat, stop_rx.clone()));
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, http::router(state))
                .with_graceful_shutdown(async move {
                    let _ = server_stop.changed().await;
                })
                .await
        });

        shutdown_signal().await;
        tracing::info!("shutting down");
        if let Some(n) = &notifier {
            n.send("STOPPING=1");
        }
        let _ = stop_tx.send(true);
        // Give in-flight requests a moment, but never more than a second in all.
        let _ = tokio::time::timeout(Duration::from_millis(900), async {
            let _ = engine_task.await;
            let _ = server.await;
        })
        .await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
