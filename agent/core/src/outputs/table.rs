//! `check --output table`: one line per check (name, status, duration, summary), then the node
//! verdict. Control characters of the text (an ESC or BEL read from a file, a newline) are
//! written escaped as JSON writes them (`\u001b`, `\n`): what a check read can neither drive
//! the terminal nor forge a line.

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
            escape(&c.name),
            c.status.as_str(),
            c.duration_seconds,
            escape(&c.summary)
        ));
    }
    out.push_str(&format!(
        "node {}: {}\n",
        escape(&report.node.name),
        report.status
    ));
    out
}

/// `text` with its control characters escaped as in JSON.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_as_json_escapes_them() {
        assert_eq!(
            escape("a\u{1b}[31mred\u{7}\nfake: ok\u{9b}"),
            "a\\u001b[31mred\\u0007\\nfake: ok\\u009b"
        );
        assert_eq!(escape("plain é"), "plain é");
    }
}
