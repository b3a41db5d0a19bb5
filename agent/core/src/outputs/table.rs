//! `check --output table`: one line per check (name, status, duration, summary), then the node
//! verdict.

use proto::NodeReport;

/// The table of `report`, ending with a newline.
pub fn render(report: &NodeReport) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:7}  {:>9}  SUMMARY\n",
        "CHECK", "STATUS", "DURATION"
    );
    for c in &report.checks {
        out.push_str(&format!(
            "{:width$}  {:7}  {:>8.3}s  {}\n",
            c.name,
            c.status.as_str(),
            c.duration_seconds,
            c.summary
        ));
    }
    out.push_str(&format!("node {}: {}\n", report.node.name, report.status));
    out
}
