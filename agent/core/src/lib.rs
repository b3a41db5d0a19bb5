//! The agent: its config, the engine that runs the checks in rounds, the [`snapshot`] each round
//! publishes, and the outputs that read it (HTTP, metrics, push, NFD, YARN, verdict, notify).
//! The `gluten-node-agent` binary dispatches to [`daemon::run`] and [`outputs`]; the checks
//! themselves are the `checks` crate, the server the `serve` crate.

pub mod config;
pub mod daemon;
pub mod engine;
pub mod local_socket;
pub mod oneshot;
pub mod outputs;
pub mod snapshot;

#[cfg(test)]
mod tests;
