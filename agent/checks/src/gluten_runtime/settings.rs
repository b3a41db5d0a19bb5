//! `[gluten_runtime]` settings: where Spark and the JDK live in the executor root when the
//! executors' `spark-defaults.conf` does not say. The executor root, the Gluten jars and the
//! fallback `JAVA_HOME` are `velox_library`'s (`executor_root`, `jars`, `java_home`).

use crate::check::{CheckSettings, SettingsError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[gluten_runtime]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `SPARK_HOME` in the executor root. Default: `spark.executorEnv.SPARK_HOME`, else the
    /// directory above the `conf/` that holds `memory.spark_defaults`.
    pub spark_home: Option<PathBuf>,
    /// `JAVA_HOME` in the executor root when `spark.executorEnv.JAVA_HOME` is not set.
    /// Default: `velox_library.java_home`, else the JDKs under `/usr/lib/jvm` and
    /// `/opt/java/openjdk`.
    pub java_home: Option<PathBuf>,
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        for (key, p) in [
            ("spark_home", &self.spark_home),
            ("java_home", &self.java_home),
        ] {
            if let Some(p) = p
                && !p.is_absolute()
            {
                return Err(SettingsError::new(
                    key,
                    format!(
                        "({}) must be an absolute path in the executor root",
                        p.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_homes_are_refused_by_key() {
        let s = Settings {
            spark_home: Some("opt/spark".into()),
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`spark_home` (opt/spark)")
        );
        let s = Settings {
            java_home: Some("jdk".into()),
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`java_home` (jdk)")
        );
        assert!(Settings::default().validate().is_ok());
    }
}
