//! `numa`: thin first version; the full check is issue 3.

use crate::check::{Check, CheckError, Outcome};
use crate::config::CheckSettings;
use crate::host::Host;
use serde::{Deserialize, Serialize};

/// `[numa]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {}

impl CheckSettings for Settings {}

pub struct Numa {
    #[allow(dead_code)]
    settings: Settings,
}

impl Numa {
    pub fn new(settings: Settings) -> Self {
        Numa { settings }
    }
}

impl Check for Numa {
    fn name(&self) -> &'static str {
        "numa"
    }

    fn run(&self, _host: &Host) -> Result<Outcome, CheckError> {
        Ok(Outcome::default())
    }
}
