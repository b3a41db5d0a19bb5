//! Support for the integration tests, one module per job: fixture trees and golden files, real
//! processes (the agent and aggregator binaries), HTTP through reqwest, a hung FUSE filesystem, a
//! stub aggregator, a throwaway PostgreSQL, certificates made in the test (rcgen), pyvelox's real
//! Velox build, the real Gluten, Spark and JDK artifacts of the `gluten_runtime` tests, and the
//! loader differential's views and crafted objects.
//! Everything is re-exported at the top, so a test writes `use gluten_node_tests::*;`.

pub mod fixtures;
pub mod fuse;
pub mod http;
pub mod jwt;
pub mod loader_diff;
pub mod postgres;
pub mod processes;
pub mod pyvelox;
pub mod runtime_artifacts;
pub mod stub_aggregator;
pub mod tls;

pub use fixtures::*;
pub use fuse::*;
pub use http::*;
pub use jwt::*;
pub use loader_diff::*;
pub use postgres::*;
pub use processes::*;
pub use pyvelox::*;
pub use runtime_artifacts::*;
pub use stub_aggregator::*;
pub use tls::*;
