//! `check --output npd`: a node-problem-detector custom plugin (`custom-plugin-monitor`). NPD
//! runs the plugin every `invoke_interval`, kills it after `timeout`, keeps the first
//! `max_output_length` bytes of its trimmed stdout as the condition's message, and reads the
//! exit code: 0 OK, 1 NonOK, anything else Unknown. So: the node verdict `fail` exits 1,
//! `unknown` 2, `ok` and `warn` 0 (the warnings in the message); ONE line, cut on a character
//! boundary to fit `max_output_length` (NPD cuts bytes, which could split a character).

use proto::{NodeReport, Status};

/// NPD's default `max_output_length`, in bytes.
pub const DEFAULT_MAX_OUTPUT_LENGTH: usize = 80;

/// The plugin protocol's exit codes.
pub const OK: i32 = 0;
pub const NON_OK: i32 = 1;
pub const UNKNOWN: i32 = 2;

/// The exit code for a node verdict.
pub fn exit_code(status: Status) -> i32 {
    match status {
        Status::Fail => NON_OK,
        Status::Unknown => UNKNOWN,
        Status::Ok | Status::Warn => OK,
    }
}

/// `text` flattened to one line and cut to at most `max` bytes on a character boundary (with
/// `...` when cut and there is room for it).
pub fn fit(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.len() <= max {
        return flat.to_string();
    }
    let (room, tail) = if max >= 8 {
        (max - 3, "...")
    } else {
        (max, "")
    };
    let mut end = room;
    while !flat.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{tail}", flat[..end].trim_end())
}

/// The one line for `report`: the failing checks (`fail`), the checks without a verdict
/// (`unknown`), the warnings (`warn`), or how many checks pass; at most `max` bytes, with a
/// newline.
pub fn render(report: &NodeReport, max: usize) -> String {
    let with = |s: Status| -> Vec<String> {
        report
            .checks
            .iter()
            .filter(|c| c.status == s)
            .map(|c| format!("{}: {}", c.name, c.summary))
            .collect()
    };
    let text = match report.status {
        Status::Fail => format!("fail {}", with(Status::Fail).join("; ")),
        Status::Unknown => format!("unknown {}", with(Status::Unknown).join("; ")),
        Status::Warn => format!("ok with warnings {}", with(Status::Warn).join("; ")),
        Status::Ok => format!("ok: {} checks pass", report.checks.len()),
    };
    format!("{}\n", fit(&text, max))
}

/// The line when no verdict could be had (exit [`UNKNOWN`]).
pub fn no_verdict(why: &str, max: usize) -> String {
    format!("{}\n", fit(&format!("unknown: {why}"), max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::test_report as report;

    #[test]
    fn verdicts_map_to_the_plugin_exit_codes_on_one_line_within_the_limit() {
        let failing = report(&[
            ("numa", Status::Ok, "1 node"),
            ("scratch", Status::Fail, "/data1 is full\nsecond line"),
            ("hugepages", Status::Unknown, "cannot read"),
        ]);
        assert_eq!(exit_code(failing.status), NON_OK);
        let line = render(&failing, 80);
        assert_eq!(line, "fail scratch: /data1 is full second line\n");
        let warn = report(&[("numa", Status::Ok, "1"), ("memory", Status::Warn, "tight")]);
        assert_eq!(exit_code(warn.status), OK);
        assert_eq!(render(&warn, 80), "ok with warnings memory: tight\n");
        let unknown = report(&[("hugepages", Status::Unknown, "cannot read")]);
        assert_eq!(exit_code(unknown.status), UNKNOWN);
        let ok = report(&[("numa", Status::Ok, "1"), ("memory", Status::Ok, "2")]);
        assert_eq!(render(&ok, 80), "ok: 2 checks pass\n");
        let long = report(&[("scratch", Status::Fail, &"é".repeat(100))]);
        for max in [8, 20, 79, 80, 81] {
            let line = render(&long, max);
            assert!(line.len() <= max + 1, "{max}: {line:?}");
            assert_eq!(line.lines().count(), 1);
            assert!(line.trim_end().ends_with("..."));
        }
        assert_eq!(fit("abcdef", 3), "abc");
        assert!(no_verdict("x\ny", 80).starts_with("unknown: x y"));
    }
}
