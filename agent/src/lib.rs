//! gluten-node-agent as a library: the checks, the engine, the HTTP server and the fleet
//! aggregator behind the one `gluten-node-agent` binary (see `main.rs`), exposed for the
//! integration tests and the benchmarks.

pub mod aggregator;
pub mod check;
pub mod checks;
pub mod config;
pub mod engine;
pub mod host;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod procfs_text;
pub mod push;
pub mod push_protocol;
pub mod spark_conf;
pub mod time;
pub mod token;
