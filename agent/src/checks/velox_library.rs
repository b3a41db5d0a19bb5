//! `velox_library`: thin first version; the full check is issue 3.

use crate::check::{Check, CheckError, Outcome};
use crate::config::CheckSettings;
use crate::host::Host;
use serde::{Deserialize, Serialize};

/// `[velox_library]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {}

impl CheckSettings for Settings {}

pub struct VeloxLibrary {
    #[allow(dead_code)]
    settings: Settings,
}

impl VeloxLibrary {
    pub fn new(settings: Settings) -> Self {
        VeloxLibrary { settings }
    }
}

impl Check for VeloxLibrary {
    fn name(&self) -> &'static str {
        "velox_library"
    }

    fn run(&self, _host: &Host) -> Result<Outcome, CheckError> {
        Ok(Outcome::default())
    }
}
