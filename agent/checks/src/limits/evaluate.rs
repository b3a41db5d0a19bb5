//! Pure: what the limits facts mean under the settings (findings, the ok sentence, gauges).

use super::*;
use crate::check::Verdict;
use crate::fmt;
use proto::{Finding, Status};

/// Whose limits, in a sentence: "pid 4242 (/tmp/hadoop-yarn-nodemanager.pid, /proc/4242/limits)".
fn whose(source: &Source) -> String {
    match source {
        Source::Launcher {
            pid_file,
            pid,
            limits_file,
        } => format!(
            "the executors' launcher, pid {pid} ({}, {})",
            pid_file.display(),
            limits_file.display()
        ),
        Source::Agent {
            container,
            limits_file,
        } => format!(
            "the agent's own ({}: the container runtime's defaults, in a container because {container})",
            limits_file.display()
        ),
        Source::Unknown { .. } => "unknown".into(),
    }
}

/// The findings, the ok sentence and the gauges that `o` means under `s` (pure).
pub fn evaluate(o: &Facts, s: &Settings) -> Verdict {
    let mut v = Verdict::default();
    let mut summary = Vec::new();
    if let Source::Unknown { reason } = &o.source {
        v.push(Finding::new(Status::Unknown, reason.clone()));
    }
    if let (Some(l), Some((limit, which))) = (&o.limits, o.effective_open_files()) {
        let who = whose(&o.source);
        let nofile = l.open_files;
        if limit.below(s.min_open_files) {
            let why = if o.java_options.max_fd_limit_off {
                format!(
                    "and the executors keep it: -XX:-MaxFDLimit is in their Java options ({})",
                    o.java_options
                        .spark_defaults
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            } else {
                "and the executors' JVMs can raise their soft limit only up to it (HotSpot's \
                 MaxFDLimit)"
                    .to_string()
            };
            v.push(Finding::new(
                Status::Warn,
                format!(
                    "the {which} open-files limit (RLIMIT_NOFILE) of {who} is {limit} (soft {}, \
                     hard {}), below `min_open_files` {}, {why}: spill and shuffle fail with \
                     \"Too many open files\"",
                    nofile.soft, nofile.hard, s.min_open_files
                ),
            ));
        } else {
            summary.push(format!(
                "open files soft {} / hard {} for {who}; the {which} limit executors run with is \
                 at least `min_open_files` {}",
                nofile.soft, nofile.hard, s.min_open_files
            ));
        }
        for (limit, value) in [("soft", nofile.soft), ("hard", nofile.hard)] {
            v.gauge(
                "gluten_node_limits_open_files",
                "RLIMIT_NOFILE of the process whose limits executors inherit (+Inf: unlimited).",
                &[("limit", limit)],
                value.gauge(),
            );
        }
        if let Some(core) = l.core_file_bytes {
            summary.push(format!(
                "core file size soft {} / hard {}",
                core.soft, core.hard
            ));
            for (limit, value) in [("soft", core.soft), ("hard", core.hard)] {
                v.gauge(
                    "gluten_node_limits_core_file_bytes",
                    "RLIMIT_CORE of the process whose limits executors inherit (+Inf: unlimited).",
                    &[("limit", limit)],
                    value.gauge(),
                );
            }
        }
    }
    v.gauge(
        "gluten_node_limits_known",
        "1 when the limits executors inherit were read (the launcher's, or in a container the agent's own).",
        &[],
        if o.limits.is_some() { 1.0 } else { 0.0 },
    );
    let c = &o.cores;
    match &c.destination {
        Some(CoreDestination::Pipe { handler }) => {
            summary.push(format!("core_pattern pipes cores to {handler}"))
        }
        Some(CoreDestination::Path { dir, .. }) => summary.push(match c.dir_free_bytes {
            Some(free) => format!(
                "cores land in {} ({} free)",
                dir.display(),
                fmt::bytes(free)
            ),
            None => format!("cores land in {}", dir.display()),
        }),
        Some(CoreDestination::Relative) => {
            summary.push("cores land in the executor's working directory".into())
        }
        None => {}
    }
    if let Some(d) = &c.destination {
        v.gauge(
            "gluten_node_limits_core_pattern_piped",
            "1 when kernel.core_pattern pipes core dumps to a handler.",
            &[],
            if matches!(d, CoreDestination::Pipe { .. }) {
                1.0
            } else {
                0.0
            },
        );
    }
    if let Some(free) = c.dir_free_bytes {
        v.gauge(
            "gluten_node_limits_core_dir_free_bytes",
            "Free bytes of the directory kernel.core_pattern writes cores to.",
            &[],
            free as f64,
        );
    }
    v.ok_summary = Some(summary.join("; "));
    v
}
