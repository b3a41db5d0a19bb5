//! Wiring of the agent daemon (`gluten-node-agent run`), mirroring `aggregator::serve`: the
//! engine publishes each round's snapshot on a `watch` channel; the outputs (HTTP, metrics,
//! push, systemd notify, the NFD features file) each read that channel and nothing else of
//! each other. Also the one-shot round of `gluten-node-agent check`.

use crate::config::Config;
use crate::engine::{Engine, LoopHeartbeat, Snapshot};
use crate::outputs::PushStats;
use crate::outputs::http::{self, AppState};
use crate::outputs::metrics::MetricsCache;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why the daemon could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("listening on {addr} (config key `listen`): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
    #[error(transparent)]
    Push(#[from] crate::outputs::push::client::ClientError),
    #[error("config key `web_config_file`: {0}")]
    WebConfig(#[source] Box<serve::web_config::WebConfigError>),
    #[error(transparent)]
    LocalSocket(#[from] crate::local_socket::LocalSocketError),
}

/// Paths that stay open under basic auth: the kubelet's and systemd's probes.
pub const OPEN_PATHS: &[&str] = serve::PROBE_PATHS;

/// The router and serving options the web config asks for: TLS (certificate reloaded when its
/// files change) and basic auth on everything but [`OPEN_PATHS`]. Uses the web config that
/// [`Config::load`] read (see [`Config::web_config`]): its files are not read again here.
pub fn serving(
    config: &Config,
    router: axum::Router,
) -> Result<(axum::Router, serve::Options), DaemonError> {
    let mut options = serve::Options::default();
    // Each idle connection holds ~15 KiB: 512 stay well inside the DaemonSet's 48 MiB.
    options.limits.connection_cap = 512;
    let Some(web) = config
        .web_config()
        .map_err(|e| DaemonError::WebConfig(Box::new(e)))?
    else {
        return Ok((router, options));
    };
    options.tls = web.tls.clone();
    let router = match &web.auth {
        Some(auth) => auth.protect(router, OPEN_PATHS),
        None => router,
    };
    Ok((router, options))
}

/// The runtime both the daemon and the aggregator run on: two workers (checks run on their own
/// threads, the async side only serves and pushes).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// One round, for `check`: bounded by the longest check deadline.
pub async fn run_once(config: &Config) -> Snapshot {
    Engine::from_config(config).run_round().await
}

/// Runs the daemon until `shutdown` completes; then stops within a second.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    common::allocator::configure();
    let engine = Engine::from_config(&config);
    let names: Vec<String> = engine.check_names().iter().map(|s| s.to_string()).collect();
    let interval = Duration::from_secs_f64(config.interval_seconds);
    let heartbeat = Arc::new(LoopHeartbeat::default());
    heartbeat.beat();
    let push_stats = Arc::new(PushStats::default());
    let (tx, rx) = watch::channel::<Option<Arc<Snapshot>>>(None);
    let (stop_tx, stop_rx) = watch::channel(false);

    // Three intervals, plus the longest deadline a round may wait on.
    let live_threshold = interval * 3 + config.longest_timeout();
    // systemd Type=notify: READY=1 after the first round, WATCHDOG=1 on the /livez rule.
    let notifier = serve::notify::Notifier::from_env().map(Arc::new);
    if let Some(n) = notifier.clone() {
        tokio::spawn(crate::outputs::notify::supervise(
            n,
            rx.clone(),
            heartbeat.clone(),
            live_threshold,
            serve::notify::watchdog_interval(),
            stop_rx.clone(),
        ));
    }
    let state = Arc::new(AppState::new(
        rx,
        heartbeat.clone(),
        live_threshold,
        Arc::new(MetricsCache::new(
            config.interval_seconds,
            Some(push_stats.clone()),
        )),
        names,
    ));
    let listener = serve::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(DaemonError::Http)?;
    tracing::info!(listen = %local, host_root = %config.host_root.display(), "serving");

    if let Some(settings) = config.push_settings() {
        let client =
            crate::outputs::push::client::PushClient::load(settings.timeout, &settings.tls)?;
        if let Some(w) = crate::outputs::push::client::plain_token_warning(
            &settings.endpoint,
            settings.token_file.is_some(),
        ) {
            tracing::warn!("{w}");
        }
        tracing::info!(endpoint = %settings.endpoint, node = %config.effective_node_name(), "pushing reports");
        tokio::spawn(crate::outputs::push::run(
            settings,
            client,
            tx.subscribe(),
            push_stats,
            stop_rx.clone(),
        ));
    }
    if let Some(path) = config.nfd.features_file.clone() {
        tracing::info!(path = %path.display(), "writing node-feature-discovery labels");
        tokio::spawn(crate::outputs::nfd::run(
            path,
            interval,
            tx.subscribe(),
            stop_rx.clone(),
        ));
    }
    // The local socket: the same endpoints and limits, no TLS and no auth (its file's group and
    // mode are the access control).
    let local = match &config.local_socket.path {
        None => None,
        Some(_) => {
            let bound = crate::local_socket::bind(&config.local_socket)?;
            tracing::info!(path = %bound.file.path.display(), "serving the read-only endpoints on a local socket");
            Some(bound)
        }
    };
    let engine_task = tokio::spawn(engine.run_loop(interval, tx, heartbeat, stop_rx.clone()));
    let plain_router = http::router(state);
    let (router, options) = serving(&config, plain_router.clone())?;
    let local_server = local.map(|bound| {
        let local_options = serve::Options {
            limits: options.limits.clone(),
            tls: None,
        };
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let file = bound.file;
            let served = serve::serve(bound.listener, plain_router, local_options, async move {
                let _ = stop.changed().await;
            })
            .await;
            drop(file);
            served
        })
    });
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(serve::serve(listener, router, options, async move {
        let _ = server_stop.changed().await;
    }));

    shutdown.await;
    tracing::info!("shutting down");
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    let _ = stop_tx.send(true);
    // Give in-flight requests a moment, but never more than a second in all.
    let _ = tokio::time::timeout(Duration::from_millis(900), async {
        let _ = engine_task.await;
        let _ = server.await;
        if let Some(local) = local_server {
            let _ = local.await;
        }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for localhost and its key, PEM.
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn the_web_config_is_read_once_at_load_and_served_as_read() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
        std::fs::write(dir.path().join("tls.key"), key).unwrap();
        let web = dir.path().join("web.toml");
        std::fs::write(
            &web,
            "[tls_server_config]\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\n",
        )
        .unwrap();
        let set = [(
            "web_config_file".to_string(),
            toml::Value::String(web.display().to_string()),
        )];
        let config = Config::load(None, &set).unwrap();
        // Loading read the web config and its TLS files; serving uses what was read: with the
        // files gone, the server still gets its certificate.
        for f in ["web.toml", "tls.crt", "tls.key"] {
            std::fs::remove_file(dir.path().join(f)).unwrap();
        }
        let (_, options) = serving(&config, axum::Router::new()).unwrap();
        assert!(options.tls.is_some());
        let (a, b) = (config.web_config().unwrap(), config.web_config().unwrap());
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        // A config made another way reads the file when asked (here gone: named in the error).
        let mut other = Config::default();
        other.web_config_file = Some(web);
        let Err(e) = serving(&other, axum::Router::new()) else {
            panic!("served without its web config file");
        };
        let e = e.to_string();
        assert!(
            e.contains("web_config_file") && e.contains("web.toml"),
            "{e}"
        );
    }
}
