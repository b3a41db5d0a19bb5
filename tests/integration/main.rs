//! Integration tests of gluten-node-agent, one module per area. Run with `cargo test --workspace`.

mod agent_cli;
mod agent_http;
mod docker;
mod faults;
mod fleet;
mod fleet_api;
mod fleet_protocol;
mod hugepages;
mod memory;
mod numa;
mod scratch;
mod systemd;
mod tidy;
mod velox_library;
