//! The node verdict in one short line, for `/health/verdict` (what node-readiness-controller's
//! reporter copies into a node condition): `ok`, or the worst status and the checks that have
//! it, then the other non-ok groups, e.g. `fail: scratch, memory; warn: numa`. Bounded by the
//! number of checks, never the ~10 KB `/health` body.

use proto::{NodeReport, Status};

/// Whether the verdict lets executors land: no check fails.
pub fn passes(report: &NodeReport) -> bool {
    report.status != Status::Fail
}

/// The one-line verdict of `report` (no trailing newline).
pub fn line(report: &NodeReport) -> String {
    let mut groups = Vec::new();
    for status in [Status::Fail, Status::Unknown, Status::Warn] {
        let names: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.name.as_str())
            .collect();
        if !names.is_empty() {
            groups.push(format!("{status}: {}", names.join(", ")));
        }
    }
    if groups.is_empty() {
        "ok".to_string()
    } else {
        groups.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checks: &[(&str, Status)]) -> NodeReport {
        let with_summary: Vec<(&str, Status, &str)> =
            checks.iter().map(|(n, s)| (*n, *s, "")).collect();
        crate::outputs::test_report(&with_summary)
    }

    #[test]
    fn lines_name_the_worst_group_first() {
        use Status::*;
        let r = report(&[
            ("numa", Ok),
            ("scratch", Fail),
            ("memory", Fail),
            ("hugepages", Warn),
        ]);
        assert_eq!(line(&r), "fail: scratch, memory; warn: hugepages");
        assert!(!passes(&r));
        let r = report(&[("numa", Warn), ("memory", Unknown)]);
        assert_eq!(line(&r), "unknown: memory; warn: numa");
        assert!(passes(&r));
        assert_eq!(line(&report(&[("numa", Ok)])), "ok");
    }
}
