//! The container image for real, with the Docker engine: `docker/build.sh` builds it; `check`
//! runs on a fixture tree mounted read-only in a read-only, capability-less container; an agent
//! container pushes to an aggregator container by name on a private network and recovers when the
//! aggregator is killed and started again; the compose file brings both up.
//!
//! They need the Docker engine and a release musl build (minutes), so they are `#[ignore]`d in a
//! plain `cargo test` and run explicitly by `.ci/run` (`cargo test ... docker -- --ignored`).
//! When run, nothing is skipped: no Docker engine is a failure.

use gluten_node_tests::*;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

const TOKEN: &str = "docker-test-token";

/// The image tag, built once per test process by docker/build.sh.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(info.status.success(), "no Docker engine: {}", text(&info));
        let out = Command::new(repo_root().join("docker/build.sh"))
            .arg("ci")
            .output()
            .unwrap();
        assert!(out.status.success(), "docker/build.sh ci: {}", text(&out));
    });
    "gluten-node-agent:ci"
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Containers and networks removed on drop, whatever the test did.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

/// The host address of a container's published port.
fn published(container: &str, port: &str) -> SocketAddr {
    let line = ok(&["port", container, port]);
    line.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 address in `docker port`: {line}"))
}

const HARDENED: &[&str] = &[
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
];

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn image_is_small_static_non_root_with_every_mode() {
    let image = image();
    let size: u64 = ok(&["image", "inspect", "-f", "{{.Size}}", image])
        .parse()
        .unwrap();
    assert!(size < 40_000_000, "image is {size} bytes");
    assert_eq!(
        ok(&["image", "inspect", "-f", "{{.Config.User}}", image]),
        "65534:65534"
    );
    for mode in ["run", "check", "aggregator"] {
        let out = docker(&["run", "--rm", image, mode, "--help"]);
        assert!(out.status.success(), "{mode} --help: {}", text(&out));
    }
}

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn check_runs_on_a_fixture_tree_mounted_read_only() {
    let image = image();
    let fixture = upstream("node-exporter-upstream");
    let mount = format!("{}:/host:ro", fixture.display());
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(HARDENED);
    args.extend_from_slice(&["-v", &mount, image, "check", "--host-root", "/host"]);
    let mut json_args = args.clone();
    json_args.extend_from_slice(&["--output", "json"]);

    let out = docker(&json_args);
    let report: proto::NodeReport =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(report.checks.len(), checks::NAMES.len());
    let expected = i32::from(report.status == proto::Status::Fail);
    assert_eq!(out.status.code(), Some(expected), "{}", text(&out));

    let table = docker(&args);
    assert_eq!(table.status.code(), Some(expected));
    assert!(String::from_utf8_lossy(&table.stdout).starts_with("CHECK"));
}

/// Whether the aggregator at `addr` lists `node`.
fn aggregator_lists(addr: SocketAddr, node: &str) -> bool {
    let auth = format!("Bearer {TOKEN}");
    match request(
        addr,
        "GET",
        "/api/v1/nodes",
        &[("Authorization", &auth)],
        None,
    ) {
        Ok(r) => r.status == 200 && r.body.contains(&format!("\"{node}\"")),
        Err(_) => false,
    }
}

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn agent_pushes_to_aggregator_by_name_and_recovers_after_it_restarts() {
    let image = image();
    let id = std::process::id();
    let net = format!("gna-test-{id}");
    let aggregator = format!("gna-aggregator-{id}");
    let agent = format!("gna-agent-{id}");
    let node = format!("docker-node-{id}");
    let mut cleanup = Cleanup::default();

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    // Readable by uid 65534 in the containers.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let token_mount = format!("{}:/run/token:ro", token.display());

    ok(&["network", "create", &net]);
    cleanup.networks.push(net.clone());

    let mut a = vec!["run", "-d", "--name", &aggregator, "--network", &net];
    a.extend_from_slice(&["--network-alias", "aggregator", "-p", "127.0.0.1::9900"]);
    a.extend_from_slice(HARDENED);
    a.extend_from_slice(&["--tmpfs", "/data:uid=65534,gid=65534", "-v", &token_mount]);
    a.extend_from_slice(&[
        image,
        "aggregator",
        "--listen",
        "0.0.0.0:9900",
        "--data-dir",
        "/data",
        "--auth-token-file",
        "/run/token",
    ]);
    ok(&a);
    cleanup.containers.push(aggregator.clone());

    let fixture = format!("{}:/host:ro", upstream("node-exporter-upstream").display());
    let mut g = vec!["run", "-d", "--name", &agent, "--network", &net];
    g.extend_from_slice(HARDENED);
    g.extend_from_slice(&["-v", &fixture, "-v", &token_mount]);
    g.extend_from_slice(&[
        image,
        "run",
        "--host-root",
        "/host",
        "--interval-seconds",
        "1",
        "--node-name",
        &node,
        "--push-url",
        "http://aggregator:9900",
        "--push-token-file",
        "/run/token",
    ]);
    ok(&g);
    cleanup.containers.push(agent.clone());

    let addr = published(&aggregator, "9900/tcp");
    assert!(
        eventually(Duration::from_secs(60), || aggregator_lists(addr, &node)
            .then_some(()))
        .is_some(),
        "the aggregator never listed {node}:\naggregator: {}\nagent: {}",
        ok(&["logs", &aggregator]),
        text(&docker(&["logs", &agent]))
    );

    // Kill the aggregator (its tmpfs data goes with it) and start it again: the agent, which
    // never stopped, pushes again and the node reappears.
    ok(&["kill", &aggregator]);
    std::thread::sleep(Duration::from_secs(3));
    ok(&["start", &aggregator]);
    let addr = published(&aggregator, "9900/tcp");
    assert!(
        eventually(Duration::from_secs(90), || aggregator_lists(addr, &node)
            .then_some(()))
        .is_some(),
        "the node did not come back after the aggregator restarted:\nagent: {}",
        text(&docker(&["logs", &agent]))
    );
    assert_eq!(
        ok(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.RestartCount}}",
            &agent
        ]),
        "true 0",
        "the agent must ride out the outage, not crash"
    );
}

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn compose_brings_up_an_aggregator_and_an_agent() {
    image();
    let project = format!("gnacompose{}", std::process::id());
    // A copy of a fixture tree as the "host", with the default scratch dir in it.
    let host = tempfile::tempdir().unwrap();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!(
            "{}/.",
            upstream("node-exporter-upstream").display()
        ))
        .arg(host.path())
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::create_dir_all(host.path().join("tmp")).unwrap();
    std::fs::set_permissions(
        host.path().join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let compose = |args: &[&str]| -> Output {
        Command::new("docker-compose")
            .current_dir(repo_root().join("docker"))
            .args(["-p", &project])
            .args(args)
            .env("TAG", "ci")
            .env("HOST_ROOT", host.path())
            // / is a private mount in CI sandboxes: rslave would be refused there.
            .env("HOST_PROPAGATION", "rprivate")
            .env("NODE_NAME", &project)
            .output()
            .unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "--remove-orphans"]);
        }
    }
    let _down = Down(&compose);
    let up = compose(&["up", "-d"]);
    assert!(up.status.success(), "compose up: {}", text(&up));

    let agent: SocketAddr = "127.0.0.1:9899".parse().unwrap();
    let aggregator: SocketAddr = "127.0.0.1:9900".parse().unwrap();
    let logs = || text(&compose(&["logs", "--no-color"]));
    assert!(
        eventually(Duration::from_secs(60), || {
            (get(agent, "/readyz").ok()?.status == 200).then_some(())
        })
        .is_some(),
        "agent not ready: {}",
        logs()
    );
    let health = get(agent, "/health").unwrap();
    assert_eq!(health.json()["node"]["name"], project.as_str());
    assert!(
        eventually(Duration::from_secs(60), || {
            let auth = "Bearer demo-token-change-me";
            let r = request(
                aggregator,
                "GET",
                "/api/v1/nodes",
                &[("Authorization", auth)],
                None,
            )
            .ok()?;
            (r.status == 200 && r.body.contains(&project)).then_some(())
        })
        .is_some(),
        "the aggregator never listed the compose agent: {}",
        logs()
    );
}

/// Metric names really served: an agent with a Spark plan and a scratch dir (so the fact gauges
/// exist) pushing to a real aggregator (so the fleet gauges exist), both scraped once.
fn served_metrics() -> &'static [String] {
    static SERVED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SERVED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let spark = dir.path().join("spark-defaults.conf");
        std::fs::write(&spark, "spark.executor.memory 1g\n").unwrap();
        let agg = Proc::start(
            &[
                "aggregator",
                "--data-dir",
                dir.path().join("agg").to_str().unwrap(),
            ],
            "/livez",
        );
        let push_url = format!("http://{}", agg.addr);
        let spark_set = format!("memory.spark_defaults={:?}", spark.to_str().unwrap());
        let scratch_set = format!("scratch.dirs=[{:?}]", scratch.to_str().unwrap());
        let agent = Proc::start(
            &[
                "run",
                "--host-root",
                "/",
                "--interval-seconds",
                "0.3",
                "--node-name",
                "served",
                "--push-url",
                &push_url,
                "--set",
                &spark_set,
                "--set",
                &scratch_set,
            ],
            "/livez",
        );
        let families = |addr, must: &str| {
            eventually(Duration::from_secs(20), || {
                let body = get(addr, "/metrics").ok()?.body;
                body.contains(must).then_some(body)
            })
            .unwrap_or_else(|| panic!("{must} never appeared on {addr}"))
        };
        let mut names: Vec<String> = [
            families(agent.addr, "gluten_node_memory_headroom_bytes"),
            families(agg.addr, "gluten_fleet_drift_groups{"),
        ]
        .iter()
        .flat_map(|b| {
            b.lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split(' ').next().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
        names.push("up".to_string());
        names
    })
}

/// Metric names in the metrics table of docs/metrics.md (`_suffix` shorthands expanded on the
/// row's first name), plus `up`.
fn documented_metrics() -> Vec<String> {
    let section = std::fs::read_to_string(repo_root().join("docs/metrics.md")).unwrap();
    let mut names = vec!["up".to_string()];
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = row.split('|').nth(1).unwrap();
        let mut first: Option<String> = None;
        for name in cell.split('`').skip(1).step_by(2) {
            match &first {
                Some(f) if name.starts_with('_') => {
                    // `gluten_node_check_runs_total`, `_timeouts_total`: replace the last word
                    // before the unit suffix.
                    let stem = f.rsplitn(3, '_').nth(2).unwrap_or(f);
                    names.push(format!("{stem}{name}"));
                }
                _ => {
                    names.push(name.to_string());
                    first = Some(name.to_string());
                }
            }
        }
    }
    names
}

/// Every `gluten_*` / `process_*` identifier (and `up`) in a PromQL text.
fn metric_names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len()
                && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_')
            {
                i += 1;
            }
            let word = &expr[start..i];
            let next = expr[i..].trim_start().chars().next();
            let is_label = matches!(next, Some('=') | Some('!')) || matches!(next, Some('~'));
            if !is_label
                && (word.starts_with("gluten_") || word.starts_with("process_") || word == "up")
            {
                out.push(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The text of docs/ (every `.md`, recursively): where metrics are documented.
fn docs_text() -> String {
    fn walk(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut text = String::new();
    walk(&repo_root().join("docs"), &mut text);
    text
}

/// Every metric `expr` names is served by the agent or the aggregator, and documented in docs/
/// (the metrics table, or a check's or the aggregator's page).
fn assert_known(what: &str, expr: &str, documented: &[String]) {
    let readme = docs_text();
    for n in metric_names_in(expr) {
        assert!(
            served_metrics().contains(&n),
            "{what}: `{n}` is not served by the agent or the aggregator: {expr}"
        );
        // In full, or as a `_suffix` shorthand after its family's first name
        // (`gluten_node_scratch_size_bytes`, `_avail_bytes`).
        let shorthand = n
            .match_indices('_')
            .any(|(i, _)| readme.contains(&format!("`{}`", &n[i..])) && readme.contains(&n[..i]));
        assert!(
            documented.contains(&n) || readme.contains(&n) || shorthand || n == "up",
            "{what}: `{n}` is not documented in docs/: {expr}"
        );
    }
}

#[test]
fn dashboard_is_valid_json_and_queries_only_known_metrics() {
    let known = documented_metrics();
    assert!(known.contains(&"gluten_node_check_timeouts_total".to_string()));
    let path = repo_root().join("docker/grafana/fleet-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .expect("fleet-dashboard.json is not valid JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut exprs = 0;
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            assert!(!metric_names_in(expr).is_empty(), "{expr}");
            assert_known(p["title"].as_str().unwrap_or("?"), expr, &known);
            exprs += 1;
        }
    }
    assert!(exprs >= 10, "{exprs} queries");
}

#[test]
fn alert_rules_use_only_known_metrics_and_match_the_prometheusrule() {
    let known = documented_metrics();
    let rules = std::fs::read_to_string(repo_root().join("docker/prometheus/rules.yml")).unwrap();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert_known("rules.yml", line, &known);
    }
    // The PrometheusRule carries the same expressions (validate.sh compares the parsed YAML).
    let crd = std::fs::read_to_string(
        repo_root().join("docker/kubernetes/monitoring/prometheusrule.yaml"),
    )
    .unwrap();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
    {
        assert!(
            crd.contains(line.trim()),
            "{line} missing in the PrometheusRule"
        );
    }
}

#[test]
fn prometheus_rules_pass_promtool_check_and_their_unit_tests() {
    assert!(
        have("promtool"),
        "promtool is needed (Debian package `prometheus`; .ci/deps installs it)"
    );
    let dir = repo_root().join("docker/prometheus");
    for args in [
        vec!["check", "rules", "rules.yml"],
        vec!["test", "rules", "rules_test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool {args:?}: {}", text(&out));
    }
}
