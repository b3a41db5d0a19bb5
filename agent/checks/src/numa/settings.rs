//! The `[numa]` table.

use crate::check::{CheckSettings, SettingsError};
use serde::{Deserialize, Serialize};

/// `[numa]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Warn when `(max free - min free) / max free` over the nodes with memory exceeds this.
    pub max_free_skew_ratio: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_free_skew_ratio: 0.5,
        }
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        let r = self.max_free_skew_ratio;
        if !(r.is_finite() && r > 0.0 && r <= 1.0) {
            return Err(SettingsError::new(
                "max_free_skew_ratio",
                format!(
                    "({r}) must be in (0, 1]: it compares (max free - min free) / max free across nodes"
                ),
            ));
        }
        Ok(())
    }
}
