//! `memory`: thin first version (MemTotal and MemAvailable); the full check is issue 3.

use crate::check::{Check, CheckError, Outcome, ParseError};
use crate::config::CheckSettings;
use crate::host::Host;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[memory]` settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `spark-defaults.conf` on the host, for the executor plan (and scratch's default dirs).
    pub spark_defaults: Option<PathBuf>,
}

impl CheckSettings for Settings {}

pub struct Memory {
    #[allow(dead_code)]
    settings: Settings,
}

impl Memory {
    pub fn new(settings: Settings) -> Self {
        Memory { settings }
    }
}

#[derive(Serialize, Debug, Default, PartialEq)]
pub struct Facts {
    pub mem_total_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
}

/// Parses `/proc/meminfo` (`Key: value kB` lines) into (key, bytes) pairs.
pub fn parse_meminfo(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| ParseError::at_line(i + 1, format!("no ':' in {line:?}")))?;
        let mut words = rest.split_whitespace();
        let value: u64 = words
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ParseError::at_line(i + 1, format!("{key}: value is not a number")))?;
        let bytes = match words.next() {
            Some("kB") => value.saturating_mul(1024),
            None => value,
            Some(u) => {
                return Err(ParseError::at_line(
                    i + 1,
                    format!("{key}: unknown unit {u:?}"),
                ));
            }
        };
        out.push((key.trim().to_string(), bytes));
    }
    Ok(out)
}

impl Check for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn run(&self, host: &Host) -> Result<Outcome, CheckError> {
        let fields = host.parse("/proc/meminfo", parse_meminfo)?;
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let facts = Facts {
            mem_total_bytes: get("MemTotal"),
            mem_available_bytes: get("MemAvailable"),
        };
        let mut o = Outcome::with_facts(&facts);
        if let Some(t) = facts.mem_total_bytes {
            o.gauge(
                "gluten_node_memory_total_bytes",
                "MemTotal of the host.",
                &[],
                t as f64,
            );
        }
        Ok(o)
    }
}
