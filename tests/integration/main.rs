//! Integration tests of gluten-node-agent, one module per area. Run with `cargo test --workspace`.

mod agent_cli;
mod fleet;
