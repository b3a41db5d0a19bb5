//! `scratch`: thin first version; the full check is issue 3.

use crate::check::{Check, CheckError, Outcome};
use crate::config::CheckSettings;
use crate::host::Host;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[scratch]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub dirs: Option<Vec<PathBuf>>,
}

impl CheckSettings for Settings {}

pub struct Scratch {
    #[allow(dead_code)]
    settings: Settings,
    #[allow(dead_code)]
    spark_defaults: Option<PathBuf>,
}

impl Scratch {
    pub fn new(settings: Settings, spark_defaults: Option<PathBuf>) -> Self {
        Scratch {
            settings,
            spark_defaults,
        }
    }
}

impl Check for Scratch {
    fn name(&self) -> &'static str {
        "scratch"
    }

    fn run(&self, _host: &Host) -> Result<Outcome, CheckError> {
        Ok(Outcome::default())
    }
}
