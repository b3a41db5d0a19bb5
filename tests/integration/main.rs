//! Integration tests of gluten-node-agent, one module per area. Run with `cargo test --workspace`.

mod agent_cli;
mod agent_http;
mod agent_push;
mod architecture;
mod connections;
mod docker;
mod faults;
mod fleet;
mod fleet_api;
mod fleet_protocol;
mod host_root;
mod hugepages;
mod limits;
mod memory;
mod nfd;
mod numa;
mod postgres_tls;
mod probes;
mod scratch;
mod systemd;
mod tidy;
mod tls;
mod velox_library;
mod velox_library_gluten17;
mod velox_library_loader;
mod velox_library_roots;
