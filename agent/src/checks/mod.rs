//! The node checks, one file each, and the one explicit list that registers them.

pub mod hugepages;
pub mod memory;
pub mod numa;
pub mod scratch;
pub mod velox_library;

use crate::check::{Check, NodeCheck, Runner, Shared};
use crate::config::Config;
use std::sync::Arc;

/// Every check name, in report order. Also the valid `/health/{check}` names.
pub const NAMES: [&str; 5] = ["velox_library", "hugepages", "numa", "scratch", "memory"];

/// The enabled checks, built from their config tables, in report order.
pub fn build(config: &Config) -> Vec<Arc<dyn Check>> {
    let shared = Shared {
        spark_defaults: config.memory.settings.spark_defaults.clone(),
        executors_per_node: config.memory.settings.executors_per_node,
    };
    let mut checks: Vec<Arc<dyn Check>> = Vec::new();
    if config.velox_library.enabled {
        checks.push(Arc::new(Runner(velox_library::VeloxLibrary::build(
            config.velox_library.settings.clone(),
            &shared,
        ))));
    }
    if config.hugepages.enabled {
        checks.push(Arc::new(hugepages::Hugepages::new(
            config.hugepages.settings.clone(),
        )));
    }
    if config.numa.enabled {
        checks.push(Arc::new(numa::Numa::new(config.numa.settings.clone())));
    }
    if config.scratch.enabled {
        checks.push(Arc::new(
            scratch::Scratch::new(
                config.scratch.settings.clone(),
                config.memory.settings.spark_defaults.clone(),
            )
            .with_executors_per_node(config.memory.settings.executors_per_node),
        ));
    }
    if config.memory.enabled {
        checks.push(Arc::new(memory::Memory::new(
            config.memory.settings.clone(),
        )));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_names_and_honours_enabled() {
        let mut config = Config::default();
        let names: Vec<_> = build(&config).iter().map(|c| c.name()).collect();
        assert_eq!(names, NAMES);
        config.numa.enabled = false;
        let names: Vec<_> = build(&config).iter().map(|c| c.name()).collect();
        assert!(!names.contains(&"numa") && names.len() == 4);
    }
}
