//! `check --output yarn`: the lines of a YARN NodeManager health script
//! (`yarn.nodemanager.health-checker.script.path`). Hadoop's `NodeHealthScriptRunner` marks the
//! node unhealthy when a line of stdout begins with `ERROR` (the exit code is ignored; a script
//! that times out or cannot run also marks it unhealthy). So: `ERROR <check>: <summary>` for each
//! failing check and nothing else that begins with `ERROR`: `OK`, `WARN` and `UNKNOWN` lines for
//! the others. Summaries are flattened to one line and cut, so no summary can start a line.

use proto::{NodeReport, Status};
use std::time::Duration;

/// Longest summary on one line, in characters.
pub const MAX_SUMMARY_CHARS: usize = 300;

/// The prefix of a check's line.
fn word(status: Status) -> &'static str {
    match status {
        Status::Fail => "ERROR",
        Status::Unknown => "UNKNOWN",
        Status::Warn => "WARN",
        Status::Ok => "OK",
    }
}

/// `text` on one line: control characters become spaces, at most [`MAX_SUMMARY_CHARS`].
pub fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SUMMARY_CHARS)
        .collect();
    if text.chars().count() > MAX_SUMMARY_CHARS {
        out.push_str("...");
    }
    out
}

/// One line per check, failing checks first (what the ResourceManager shows as the health
/// report), each ending with a newline.
pub fn render(report: &NodeReport) -> String {
    let mut checks: Vec<_> = report.checks.iter().collect();
    // Stable: failing first, then in report order.
    checks.sort_by_key(|c| c.status != Status::Fail);
    checks
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}\n",
                word(c.status),
                one_line(&c.name),
                one_line(&c.summary)
            )
        })
        .collect()
}

/// The line printed when no verdict could be had: never an `ERROR` (the agent's own trouble is
/// not the node's).
pub fn no_verdict(why: &str) -> String {
    format!("UNKNOWN gluten-node-agent: {}\n", one_line(why))
}

/// Why the daemon's verdict is too old to report (its round is older than `max_age`: the check
/// loop is stalled), or `None` when it is fresh (or its time cannot be read: then it is used).
pub fn stale(report: &NodeReport, max_age: Duration) -> Option<String> {
    let at = common::time::parse_rfc3339(&report.generated_at)?;
    let age = std::time::SystemTime::now().duration_since(at).ok()?;
    (age > max_age).then(|| {
        format!(
            "the daemon's last verdict is {} old (more than {}): its check loop is stalled",
            common::time::format_seconds(age.as_secs_f64().round()),
            common::time::format_seconds(max_age.as_secs_f64())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::outputs::test_report as report;

    #[test]
    fn only_failing_checks_begin_with_error_and_summaries_stay_on_their_line() {
        let r = report(&[
            ("numa", Status::Ok, "1 node"),
            ("memory", Status::Warn, "tight\nERROR injected"),
            ("scratch", Status::Fail, "/data1 is full"),
            ("hugepages", Status::Unknown, "cannot read"),
        ]);
        assert_eq!(
            render(&r),
            "ERROR scratch: /data1 is full\nOK numa: 1 node\nWARN memory: tight ERROR injected\n\
             UNKNOWN hugepages: cannot read\n"
        );
        let healthy = report(&[("numa", Status::Ok, "fine"), ("memory", Status::Warn, "w")]);
        assert!(!render(&healthy).lines().any(|l| l.starts_with("ERROR")));
        assert!(
            !no_verdict("x\nERROR y")
                .lines()
                .any(|l| l.starts_with("ERROR"))
        );
        let mut old = r.clone();
        old.generated_at =
            common::time::rfc3339(std::time::SystemTime::now() - Duration::from_secs(120));
        assert!(
            stale(&old, Duration::from_secs(60))
                .unwrap()
                .contains("stalled")
        );
        assert!(stale(&old, Duration::from_secs(600)).is_none());
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).len(), MAX_SUMMARY_CHARS + 3);
    }
}
