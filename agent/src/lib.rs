//! gluten-node-agent as a library: the checks, the engine, the HTTP server and the fleet
//! aggregator behind the one `gluten-node-agent` binary (see `main.rs`), exposed for the
//! integration tests and the benchmarks.

pub mod aggregator;
pub mod check;
pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod fmt;
pub mod host;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod outputs;
pub mod procfs_text;
pub mod push;
pub mod push_client;
pub mod push_protocol;
pub mod server;
pub mod spark_conf;
pub mod time;
pub mod token;
