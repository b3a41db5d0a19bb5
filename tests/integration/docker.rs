//! The container images for real, with the Docker engine: `docker/build.sh` builds the lean
//! agent image and the aggregator image, each for linux/amd64 and linux/arm64, and an OCI layout
//! per image with an index over both; `check` runs on a fixture tree mounted read-only in a
//! read-only, capability-less container; an agent container pushes to an aggregator container by
//! name on a private network and recovers when the aggregator is killed and started again; the
//! compose file brings both up; the arm64 variants run under `qemu-aarch64-static` mounted into
//! the container as its entrypoint (no binfmt_misc needed).
//!
//! They need the Docker engine and release musl builds (minutes), so they are `#[ignore]`d in a
//! plain `cargo test` and run explicitly by `.ci/run` (`cargo test ... docker -- --ignored`).
//! When run, nothing is skipped: no Docker engine is a failure.

use gluten_node_tests::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

const TOKEN: &str = "docker-test-token";
const TAG: &str = "ci";
const AGENT: &str = "gluten-node-agent";
const AGGREGATOR: &str = "gluten-node-aggregator";
/// Debian's qemu-user-static: mounted into arm64 containers as their entrypoint.
const QEMU: &str = "/usr/bin/qemu-aarch64-static";

/// This test binary's target dir (target/<profile>/deps/<exe>): build.sh builds there too.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// Both images for both platforms, built once per test process by docker/build.sh.
fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(info.status.success(), "no Docker engine: {}", text(&info));
        let out = Command::new(repo_root().join("docker/build.sh"))
            .arg(TAG)
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker/build.sh {TAG}: {}",
            text(&out)
        );
    });
}

/// The lean agent image (the engine's own platform, amd64 here).
fn image() -> &'static str {
    build();
    "gluten-node-agent:ci"
}

/// The aggregator image (the default build).
fn aggregator_image() -> &'static str {
    build();
    "gluten-node-aggregator:ci"
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
fn images_are_small_static_non_root_with_their_modes() {
    // The agent image has no aggregator in it; the aggregator image has every mode.
    for (image, modes, absent) in [
        (image(), &["run", "check"][..], Some("aggregator")),
        (
            aggregator_image(),
            &["run", "check", "aggregator"][..],
            None,
        ),
    ] {
        let size: u64 = ok(&["image", "inspect", "-f", "{{.Size}}", image])
            .parse()
            .unwrap();
        assert!(size < 40_000_000, "{image} is {size} bytes");
        assert_eq!(
            ok(&["image", "inspect", "-f", "{{.Config.User}}", image]),
            "65534:65534"
        );
        for mode in modes {
            let out = docker(&["run", "--rm", image, mode, "--help"]);
            assert!(
                out.status.success(),
                "{image} {mode} --help: {}",
                text(&out)
            );
        }
        if let Some(mode) = absent {
            let out = docker(&["run", "--rm", image, mode, "--help"]);
            assert!(
                !out.status.success() && text(&out).contains("unrecognized subcommand"),
                "{image} must not have `{mode}`: {}",
                text(&out)
            );
        }
    }
    // The lean build is the smaller one: no redb, no tokio-postgres.
    let size = |i| -> u64 {
        ok(&["image", "inspect", "-f", "{{.Size}}", i])
            .parse()
            .unwrap()
    };
    assert!(size(image()) < size(aggregator_image()));
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

    let aggregator_image = aggregator_image();
    let mut a = vec!["run", "-d", "--name", &aggregator, "--network", &net];
    a.extend_from_slice(&["--network-alias", "aggregator", "-p", "127.0.0.1::9900"]);
    a.extend_from_slice(HARDENED);
    a.extend_from_slice(&["--tmpfs", "/data:uid=65534,gid=65534", "-v", &token_mount]);
    a.extend_from_slice(&[
        aggregator_image,
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

/// `docker run` of an image's arm64 variant (`IMAGE:ci-arm64`) with Debian's qemu-aarch64-static
/// mounted as the entrypoint: `flags` are docker's, `args` the agent's.
fn arm64_run(flags: &[&str], image: &str, args: &[&str]) -> Output {
    build();
    assert!(
        Path::new(QEMU).exists(),
        "{QEMU} is needed (Debian package qemu-user-static; .ci/deps installs it)"
    );
    let qemu = format!("{QEMU}:/qemu:ro");
    let variant = format!("{image}:{TAG}-arm64");
    let mut a = vec!["run"];
    a.extend_from_slice(flags);
    a.extend_from_slice(HARDENED);
    a.extend_from_slice(&["--entrypoint", "/qemu", "-v", &qemu, &variant]);
    a.push("/usr/local/bin/gluten-node-agent");
    a.extend_from_slice(args);
    docker(&a)
}

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn arm64_images_serve_livez_under_qemu() {
    build();
    for image in [AGENT, AGGREGATOR] {
        let variant = format!("{image}:{TAG}-arm64");
        assert_eq!(
            ok(&[
                "image",
                "inspect",
                "-f",
                "{{.Os}}/{{.Architecture}}",
                &variant
            ]),
            "linux/arm64"
        );
        // Really an aarch64 binary: without qemu this x86_64 engine cannot start it.
        let native = docker(&["run", "--rm", &variant, "--help"]);
        assert!(
            !native.status.success(),
            "{variant} ran natively: {}",
            text(&native)
        );
    }
    let id = std::process::id();
    let agent = format!("gna-arm64-agent-{id}");
    let aggregator = format!("gna-arm64-aggregator-{id}");
    let mut cleanup = Cleanup::default();
    let fixture = format!("{}:/host:ro", upstream("node-exporter-upstream").display());
    let out = arm64_run(
        &[
            "-d",
            "--name",
            &agent,
            "-p",
            "127.0.0.1::9899",
            "-v",
            &fixture,
        ],
        AGENT,
        &["run", "--host-root", "/host", "--listen", "0.0.0.0:9899"],
    );
    assert!(out.status.success(), "{}", text(&out));
    cleanup.containers.push(agent.clone());
    let out = arm64_run(
        &[
            "-d",
            "--name",
            &aggregator,
            "-p",
            "127.0.0.1::9900",
            "--tmpfs",
            "/data:uid=65534,gid=65534",
        ],
        AGGREGATOR,
        &[
            "aggregator",
            "--listen",
            "0.0.0.0:9900",
            "--data-dir",
            "/data",
            // Only /livez is asked here; beyond loopback without push authentication the
            // aggregator refuses to start unless told so.
            "--allow-unauthenticated-push",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    cleanup.containers.push(aggregator.clone());

    for (container, port) in [(&agent, "9899/tcp"), (&aggregator, "9900/tcp")] {
        let addr = published(container, port);
        assert!(
            eventually(Duration::from_secs(90), || {
                (get(addr, "/livez").ok()?.status == 200).then_some(())
            })
            .is_some(),
            "{container} never answered /livez: {}",
            text(&docker(&["logs", container]))
        );
    }
    // The agent's round ran on the emulated CPU: its kernel says aarch64.
    let addr = published(&agent, "9899/tcp");
    let arch = eventually(Duration::from_secs(90), || {
        let health = get(addr, "/health").ok()?.json();
        let velox = health["checks"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "velox_library")?;
        velox["facts"]["host_arch"].as_str().map(str::to_string)
    });
    assert_eq!(
        arch.as_deref(),
        Some("aarch64"),
        "{}",
        text(&docker(&["logs", &agent]))
    );
}

/// A host whose CPU is a Graviton 3: node-exporter's tree with tests/fixtures/arm64-graviton3
/// over it (see its CASE.md), readable by the container's uid 65534.
fn arm64_host() -> tempfile::TempDir {
    let root = copy_tree(&upstream("node-exporter-upstream"));
    let overlay = fixture("arm64-graviton3");
    for dir in ["proc", "sys"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(overlay.join(dir))
            .arg(root.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    root
}

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn arm64_agent_checks_an_arm64_host_under_qemu() {
    let host = arm64_host();
    let mount = format!("{}:/host:ro", host.path().display());
    let out = arm64_run(
        &["--rm", "-v", &mount],
        AGENT,
        &["check", "--host-root", "/host", "--output", "json"],
    );
    let report: proto::NodeReport =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(report.checks.len(), checks::NAMES.len());
    let expected = i32::from(report.status == proto::Status::Fail);
    assert_eq!(out.status.code(), Some(expected), "{}", text(&out));
    let velox = report
        .checks
        .iter()
        .find(|c| c.name == "velox_library")
        .unwrap();
    assert_eq!(velox.facts["host_arch"], "aarch64", "{}", velox.facts);
    // The Graviton 3 Features line, as the arm64 agent read it: SVE and LSE atomics, no SVE2.
    let flags: Vec<&str> = velox.facts["isa_cpu_flags"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", velox.facts))
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(
        flags.contains(&"sve") && flags.contains(&"atomics"),
        "{flags:?}"
    );
    assert!(!flags.contains(&"sve2"), "{flags:?}");
}

/// The sha256 of a blob of `layout`, checked against its name and `size`.
fn blob(layout: &Path, descriptor: &serde_json::Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{digest}"));
    let path = layout.join("blobs/sha256").join(hex);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let got = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let got: String = got.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, hex, "{} does not hash to its name", path.display());
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "{}: size",
        path.display()
    );
    bytes
}

#[test]
#[ignore = "needs the Docker engine and a release musl build; .ci/run runs it with --ignored"]
fn oci_layouts_index_both_platforms_of_each_image() {
    build();
    for image in [AGENT, AGGREGATOR] {
        let layout = target_dir().join("oci").join(image);
        let marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(marker["imageLayoutVersion"], "1.0.0");
        let top: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let named = |r: &str| {
            top["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == r)
                .unwrap_or_else(|| panic!("{}: no ref {r}: {top}", layout.display()))
                .clone()
        };
        let entry = named(TAG);
        assert_eq!(
            entry["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let index: serde_json::Value = serde_json::from_slice(&blob(&layout, &entry)).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let mut platforms = Vec::new();
        for m in index["manifests"].as_array().unwrap() {
            let arch = m["platform"]["architecture"].as_str().unwrap().to_string();
            assert_eq!(m["platform"]["os"], "linux");
            assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            // The variant's own ref names the same manifest.
            assert_eq!(named(&format!("{TAG}-{arch}"))["digest"], m["digest"]);
            let manifest: serde_json::Value = serde_json::from_slice(&blob(&layout, m)).unwrap();
            let config: serde_json::Value =
                serde_json::from_slice(&blob(&layout, &manifest["config"])).unwrap();
            assert_eq!(config["architecture"], arch.as_str(), "{image} {arch}");
            assert_eq!(config["os"], "linux");
            let layers = manifest["layers"].as_array().unwrap();
            assert!(!layers.is_empty());
            for l in layers {
                blob(&layout, l);
            }
            platforms.push(arch);
        }
        platforms.sort();
        assert_eq!(platforms, ["amd64", "arm64"], "{image}");
    }
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
