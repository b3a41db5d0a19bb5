//! `hugepages`: thin first version; the full check is issue 3.

use crate::check::{Check, CheckError, Outcome};
use crate::config::CheckSettings;
use crate::host::Host;
use serde::{Deserialize, Serialize};

/// `[hugepages]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {}

impl CheckSettings for Settings {}

pub struct Hugepages {
    #[allow(dead_code)]
    settings: Settings,
}

impl Hugepages {
    pub fn new(settings: Settings) -> Self {
        Hugepages { settings }
    }
}

impl Check for Hugepages {
    fn name(&self) -> &'static str {
        "hugepages"
    }

    fn run(&self, _host: &Host) -> Result<Outcome, CheckError> {
        Ok(Outcome::default())
    }
}
