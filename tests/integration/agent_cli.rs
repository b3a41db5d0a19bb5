//! The real binary's `check` subcommand on fixture trees: output formats and exit codes.

use gluten_node_tests::*;
use std::process::Command;

#[test]
fn check_json_is_a_node_report_and_exit_code_follows_the_verdict() {
    let out = Command::new(agent_bin())
        .args(["check", "--output", "json", "--host-root"])
        .arg(upstream("node-exporter-upstream"))
        .output()
        .unwrap();
    let report: proto::NodeReport = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report.schema_version, proto::SCHEMA_VERSION);
    assert_eq!(report.checks.len(), agent::checks::NAMES.len());
    let expected = if report.status == proto::Status::Fail {
        1
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(expected));
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let out = Command::new(agent_bin())
        .args(["check", "--set", "hugepages.thp_expectd=always"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("thp_expectd") && err.contains("hugepages"),
        "{err}"
    );
}
