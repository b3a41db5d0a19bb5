//! The node checks, one module (or folder) each, and the one list that registers them: [`ALL`].
//!
//! Everything that has to know every check comes from that list: the config sections (their
//! defaults, their keys, unknown-section and unknown-key rejection), the engine's policies, the
//! longest deadline, [`NAMES`] (the valid `/health/{check}` names) and `Shared`. Adding a check is
//! its folder plus one line in [`ALL`].
//!
//! The crate is the check core: [`host::Host`] (every host read, rooted), the check shape
//! ([`check`]), the kernel and Spark parsers, and the checks. It knows no HTTP, no database
//! and no config file: the agent crate builds checks from their settings.

pub mod check;
pub mod error;
pub mod file_key;
pub mod host;
pub mod procfs_text;
pub mod spark_conf;

pub use common::{fmt, time};

pub mod gluten_runtime;
pub mod hugepages;
pub mod limits;
pub mod memory;
pub mod numa;
pub mod scratch;
pub mod velox_library;

use crate::check::{Check, CheckSettings, NodeCheck, Runner, SettingsError, Shared};
use serde::de::DeserializeOwned;
use std::any::Any;
use std::sync::Arc;

/// Every check, in report order: one line per check.
pub const ALL: &[Registration] = &[
    velox_library::REGISTRATION,
    gluten_runtime::REGISTRATION,
    hugepages::REGISTRATION,
    numa::REGISTRATION,
    scratch::REGISTRATION,
    memory::REGISTRATION,
    limits::REGISTRATION,
];

/// Every check name, in report order, taken from [`ALL`]. Also the valid `/health/{check}`
/// names.
pub const NAMES: [&str; ALL.len()] = {
    let mut names = [""; ALL.len()];
    let mut i = 0;
    while i < ALL.len() {
        names[i] = ALL[i].name;
        i += 1;
    }
    names
};

/// One check as the rest of the agent sees it before it is built: its name, its config table
/// (default, parse, validation, typed), what it shares, and how to build it. Made only by
/// [`Registration::of`], monomorphised for the check's type: no macro, no global state.
#[derive(Clone, Copy)]
pub struct Registration {
    /// The check's name (`NodeCheck::NAME`): its config table, JSON `name`, metric label.
    pub name: &'static str,
    default: fn() -> Box<dyn Section>,
    parse: ParseFn,
    share: fn(&dyn Section, &mut Shared),
    build: fn(&dyn Section, &Shared) -> Arc<dyn Check>,
}

/// Parses a check's table; the name is the section's, for error keys.
type ParseFn = fn(&'static str, toml::Value) -> Result<Box<dyn Section>, KeyError>;

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// The registration of check `C`: `pub const REGISTRATION: Registration =
    /// Registration::of::<TheCheck>();` in the check's module.
    pub const fn of<C: NodeCheck>() -> Self {
        Registration {
            name: C::NAME,
            default: default_section::<C::Settings>,
            parse: parse_section::<C::Settings>,
            share: share_section::<C>,
            build: build_check::<C>,
        }
    }

    /// The check's table with every key at its default.
    pub fn default_section(&self) -> Box<dyn Section> {
        (self.default)()
    }

    /// Parses the check's table `value` (the common keys and the check's own, strictly).
    /// Errors name the full key, e.g. `memory.executors_per_node`.
    pub fn parse_section(&self, value: toml::Value) -> Result<Box<dyn Section>, KeyError> {
        (self.parse)(self.name, value)
    }

    /// Adds what this check's table gives to every check.
    pub fn share(&self, section: &dyn Section, shared: &mut Shared) {
        (self.share)(section, shared)
    }

    /// Builds the check from its table (made by this registration) and the shared inputs.
    pub fn build(&self, section: &dyn Section, shared: &Shared) -> Arc<dyn Check> {
        (self.build)(section, shared)
    }
}

pub use common::config_file::KeyError;

/// The keys every check's table has, whatever the check.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Common {
    pub enabled: bool,
    /// Deadline of this check; default the top-level `check_timeout_seconds`.
    pub timeout_seconds: Option<f64>,
    /// Flap damping (Consul's names): consecutive `ok` rounds before `ok` is reported again.
    pub success_before_passing: u32,
    /// Consecutive failing rounds before `warn` is reported (0: never warn first).
    pub failures_before_warning: u32,
    /// Consecutive failing rounds before `fail` is reported.
    pub failures_before_critical: u32,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            enabled: true,
            timeout_seconds: None,
            success_before_passing: 0,
            failures_before_warning: 0,
            failures_before_critical: 0,
        }
    }
}

/// The table `[name]` of one check: the common keys plus the check's own `settings`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckSection<T> {
    pub common: Common,
    pub settings: T,
}

/// A check's table with its type erased, as the config holds it. `Config::check::<C>()` gives
/// it back typed.
pub trait Section: Any + Send + Sync + std::fmt::Debug {
    fn common(&self) -> &Common;
    fn common_mut(&mut self) -> &mut Common;
    /// The check's own rules that span fields (`CheckSettings::validate`), the key of the error
    /// in `table` (the check's name): `memory.executors_per_node`.
    fn validate_settings(&self, table: &'static str) -> Result<(), SettingsError>;
    /// The check's own settings as JSON (every key, `null` when unset): what the configuration
    /// reference documents.
    fn settings_json(&self) -> serde_json::Value;
    fn clone_box(&self) -> Box<dyn Section>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: CheckSettings> Section for CheckSection<T> {
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
    fn validate_settings(&self, table: &'static str) -> Result<(), SettingsError> {
        self.settings.validate().map_err(|e| e.in_table(table))
    }
    fn settings_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.settings).unwrap_or_else(|e| {
            // Settings types are plain data: serialising them cannot fail.
            unreachable!("settings of a check do not serialise: {e}")
        })
    }
    fn clone_box(&self) -> Box<dyn Section> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Clone for Box<dyn Section> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The typed table of check `C`, if `section` is one.
pub fn typed<C: NodeCheck>(section: &dyn Section) -> Option<&CheckSection<C::Settings>> {
    section.as_any().downcast_ref()
}

fn default_section<T: CheckSettings>() -> Box<dyn Section> {
    Box::new(CheckSection::<T>::default())
}

fn parse_section<T: CheckSettings>(
    name: &'static str,
    value: toml::Value,
) -> Result<Box<dyn Section>, KeyError> {
    // serde cannot combine `flatten` with `deny_unknown_fields`, so take the common keys off by
    // hand and give the rest to the check's own strict settings type.
    let mut table = match value {
        toml::Value::Table(t) => t,
        other => {
            return Err(KeyError {
                key: name.to_string(),
                message: format!("invalid type: {}, expected a table", other.type_str()),
            });
        }
    };
    fn take<V: DeserializeOwned>(
        table: &mut toml::Table,
        name: &str,
        key: &str,
    ) -> Result<Option<V>, KeyError> {
        table
            .remove(key)
            .map(|v| {
                V::deserialize(v).map_err(|e| KeyError {
                    key: format!("{name}.{key}"),
                    message: e.message().to_string(),
                })
            })
            .transpose()
    }
    let mut c = Common::default();
    if let Some(v) = take(&mut table, name, "enabled")? {
        c.enabled = v;
    }
    c.timeout_seconds = take(&mut table, name, "timeout_seconds")?;
    if let Some(v) = take(&mut table, name, "success_before_passing")? {
        c.success_before_passing = v;
    }
    if let Some(v) = take(&mut table, name, "failures_before_warning")? {
        c.failures_before_warning = v;
    }
    if let Some(v) = take(&mut table, name, "failures_before_critical")? {
        c.failures_before_critical = v;
    }
    let settings: T = common::config_file::deserialize_tracking_path(toml::Value::Table(table))
        .map_err(|e| KeyError::at(name, e))?;
    Ok(Box::new(CheckSection {
        common: c,
        settings,
    }))
}

fn share_section<C: NodeCheck>(section: &dyn Section, shared: &mut Shared) {
    if let Some(s) = typed::<C>(section) {
        C::share(&s.settings, shared);
    }
}

fn build_check<C: NodeCheck>(section: &dyn Section, shared: &Shared) -> Arc<dyn Check> {
    let settings = typed::<C>(section)
        .map(|s| s.settings.clone())
        .unwrap_or_else(|| {
            // Only a registration's own parse or default makes the sections it builds from.
            unreachable!("section of {} built by another registration", C::NAME)
        });
    Arc::new(Runner::<C>::build(settings, shared.clone()))
}
