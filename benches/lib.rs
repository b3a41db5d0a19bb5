//! Shared setup of the benchmarks: fixture paths and a ready-made engine round.

use agent::config::Config;
use agent::engine::{Engine, Snapshot};
use checks::host::Host;
use std::path::{Path, PathBuf};

/// `tests/fixtures/upstream/<name>`: the real `/proc` and `/sys` trees the tests use.
pub fn upstream(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("tests/fixtures/upstream")
        .join(name)
}

/// An engine running every check with default settings on `root`.
pub fn engine(root: &Path) -> Engine {
    let mut config = Config::default();
    config.host_root = root.to_path_buf();
    let host = Host::new(root).with_arch("x86_64");
    Engine::for_host(&config, host, proto::NodeInfo::default())
}

/// One round on `root`, for benches that need a realistic snapshot.
pub fn snapshot(root: &Path) -> Snapshot {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine(root).run_round())
}
