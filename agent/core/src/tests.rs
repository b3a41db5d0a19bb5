//! The registry's promise: everything that has to know every check comes from one
//! `Registration`. A test-only check registered through a test list gets its config section
//! (defaults, typed access, `--set`, unknown-key rejection, validation), its policy, its place
//! in the engine and `Shared` without a line anywhere else.

use crate::config::Config;
use crate::engine::{Engine, policies};
use checks::check::{
    CheckError, CheckSettings, Context, NodeCheck, SettingsError, Shared, Verdict,
};
use checks::host::Host;
use checks::*;
use proto::{Finding, Status};
use serde::{Deserialize, Serialize};

/// A sixth check that exists only here; it keeps no state.
#[derive(Default)]
struct Probe;

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct ProbeSettings {
    want: u32,
    nested: Nested,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
struct Nested {
    limit: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            want: 7,
            nested: Nested::default(),
        }
    }
}

impl CheckSettings for ProbeSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.want == 13 {
            return Err(SettingsError::new(
                "want",
                format!("must not be 13, got {}", self.want),
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct ProbeFacts {
    seen: u32,
    executors: u32,
}

impl NodeCheck for Probe {
    const NAME: &'static str = "probe";
    type Settings = ProbeSettings;
    type Facts = ProbeFacts;

    fn read(&self, _host: &Host, cx: &Context<ProbeSettings>) -> Result<ProbeFacts, CheckError> {
        Ok(ProbeFacts {
            seen: 3,
            executors: cx.shared.executors_per_node,
        })
    }

    fn evaluate(facts: &ProbeFacts, settings: &ProbeSettings) -> Verdict {
        let mut v = Verdict::default();
        if facts.seen < settings.want {
            v.push(Finding::new(
                Status::Warn,
                format!("saw {} of {}", facts.seen, settings.want),
            ));
        }
        v
    }

    fn share(settings: &ProbeSettings, shared: &mut Shared) {
        shared.executors_per_node = settings.nested.limit as u32;
    }
}

const TEST_LIST: &[Registration] = &[numa::REGISTRATION, Registration::of::<Probe>()];

fn load(text: &str, overrides: &[(String, toml::Value)]) -> Result<Config, String> {
    Config::from_toml_str_in(TEST_LIST, text, None, overrides).map_err(|e| e.to_string())
}

#[test]
fn a_registered_check_gets_its_config_section_from_the_registration_alone() {
    // Defaults, typed.
    let c = load("", &[]).unwrap();
    assert_eq!(c.check::<Probe>().settings.want, 7);
    assert!(c.common("probe").enabled);
    // Its own keys, nested ones, and the common keys; by file and by `--set`.
    let c = load(
        "[probe]\nwant = 2\ntimeout_seconds = 9\n[probe.nested]\nlimit = 4\n",
        &[crate::config::parse_override("probe.failures_before_critical=3").unwrap()],
    )
    .unwrap();
    let p = c.check::<Probe>();
    assert_eq!((p.settings.want, p.settings.nested.limit), (2, 4));
    assert_eq!(p.common.timeout_seconds, Some(9.0));
    assert_eq!(p.common.failures_before_critical, 3);
    // Unknown keys, bad values and its own rules are rejected, naming the full key.
    let e = load("[probe]\nwnat = 1\n", &[]).unwrap_err();
    assert!(e.contains("probe") && e.contains("wnat"), "{e}");
    let e = load("[probe.nested]\nlimit = \"x\"\n", &[]).unwrap_err();
    assert!(
        e.starts_with("config: probe.nested.limit: invalid type"),
        "{e}"
    );
    let e = load("[probe]\nwant = 13\n", &[]).unwrap_err();
    assert!(e.contains("[probe]: `want` must not be 13"), "{e}");
    // A section of a check that is not in this list is an unknown key.
    let e = load("[memory]\nenabled = false\n", &[]).unwrap_err();
    assert!(e.contains("memory") && e.contains("`probe`"), "{e}");
}

#[test]
fn a_registered_check_gets_its_policy_shared_inputs_and_engine_slot() {
    let c = load(
        "check_timeout_seconds = 2\n[probe]\ntimeout_seconds = 11\nsuccess_before_passing = 2\n\
         [probe.nested]\nlimit = 5\n",
        &[],
    )
    .unwrap();
    let p = policies(&c);
    assert_eq!(p.keys().copied().collect::<Vec<_>>(), ["numa", "probe"]);
    assert_eq!(p["probe"].timeout.as_secs(), 11);
    assert_eq!(p["probe"].success_before_passing, 2);
    assert_eq!(p["numa"].timeout.as_secs(), 2);
    assert_eq!(c.longest_timeout().as_secs(), 11);
    assert_eq!(c.shared().executors_per_node, 5);

    let mut c = c;
    c.common_mut("numa").enabled = false;
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::for_host(&c, Host::new(dir.path()), proto::NodeInfo::default());
    assert_eq!(engine.check_names(), ["probe"]);
    let snapshot = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine.run_round());
    let r = snapshot.check("probe").unwrap();
    assert_eq!(r.status, Status::Warn);
    assert_eq!(r.facts["executors"], 5, "built with Shared from the config");
}

#[test]
fn the_real_list_names_every_check_once_in_report_order() {
    assert_eq!(
        NAMES,
        [
            "velox_library",
            "gluten_runtime",
            "hugepages",
            "numa",
            "scratch",
            "memory",
            "limits"
        ]
    );
    let mut seen = std::collections::BTreeSet::new();
    assert!(NAMES.iter().all(|n| seen.insert(*n)), "duplicate name");
    let mut config = Config::default();
    let names: Vec<&str> = config.sections().map(|(r, _)| r.name).collect();
    assert_eq!(names, NAMES);
    config.common_mut("numa").enabled = false;
    let engine = Engine::for_host(&config, Host::new("/nonexistent"), Default::default());
    assert!(!engine.check_names().contains(&"numa"));
    assert_eq!(engine.check_names().len(), NAMES.len() - 1);
}

#[test]
fn scratch_reads_the_spark_plan_through_shared() {
    let c = Config::from_toml_str(
        "[memory]\nspark_defaults = \"/etc/spark/spark-defaults.conf\"\nexecutors_per_node = 4\n",
        None,
        &[],
    )
    .unwrap();
    let shared = c.shared();
    assert_eq!(
        shared.spark_defaults.as_deref(),
        Some(std::path::Path::new("/etc/spark/spark-defaults.conf"))
    );
    assert_eq!(shared.executors_per_node, 4);
}
