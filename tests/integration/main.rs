//! Integration tests of gluten-node-agent, one module per area. Run with `cargo test --workspace`.

mod agent_cli;
mod agent_http;
mod agent_push;
mod docker;
mod faults;
mod fleet;
mod host_root;
mod hugepages;
mod memory;
mod nfd;
mod numa;
mod scratch;
mod systemd;
mod tidy;
mod velox_library;
