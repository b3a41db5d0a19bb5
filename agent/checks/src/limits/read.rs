//! The limits check's reads: the launcher's pid file and `/proc/<pid>/limits` (or, in a
//! container with no pid file, the agent's own `/proc/self/limits`), the executors' Java options
//! from `spark-defaults.conf`, `kernel.core_pattern` and the free space where cores land. Every
//! host read goes through `Host`; only the container detection looks at the agent's own root.

use super::*;
use crate::check::{CheckError, Context};
use crate::host::Host;
use crate::spark_conf::parse_spark_defaults;
use std::path::{Path, PathBuf};

/// What the agent knows of its own surroundings, to tell whether it runs in a container. Not
/// the host's: `/.dockerenv` and `/proc/1/cgroup` are read under `root`, the agent's own `/`
/// (a fixture in tests), never under `host_root`.
#[derive(Clone, Debug)]
pub struct OwnEnvironment {
    /// The agent's own root: `/`.
    pub root: PathBuf,
    /// `KUBERNETES_SERVICE_HOST` is set (the kubelet sets it in every pod's containers).
    pub kubernetes: bool,
}

impl OwnEnvironment {
    /// This process's surroundings.
    pub fn of_this_process() -> Self {
        OwnEnvironment {
            root: PathBuf::from("/"),
            kubernetes: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        }
    }
}

/// Cgroup path parts container runtimes put their containers under (cgroup v1, or v2 without
/// a cgroup namespace): Kubernetes, Docker, containerd, CRI-O, Podman, LXC.
const CONTAINER_CGROUPS: [&str; 6] = ["kubepods", "docker", "containerd", "crio", "libpod", "lxc"];

/// Why the agent thinks it runs in a container, or none: `KUBERNETES_SERVICE_HOST`, Docker's
/// `/.dockerenv`, Podman's `/run/.containerenv`, then a container cgroup in `/proc/1/cgroup`
/// (with cgroup v2 and a cgroup namespace that reads `0::/`, so it is the last resort).
pub fn detect_container(own: &OwnEnvironment) -> Option<String> {
    if own.kubernetes {
        return Some("KUBERNETES_SERVICE_HOST is set (a Kubernetes pod)".into());
    }
    let h = Host::new(&own.root);
    for (marker, runtime) in [("/.dockerenv", "Docker"), ("/run/.containerenv", "Podman")] {
        if matches!(h.read_regular_optional(marker), Ok(Some(_))) {
            return Some(format!("{marker} exists ({runtime})"));
        }
    }
    let cgroup = h.read_optional("/proc/1/cgroup").ok().flatten()?;
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        let part = CONTAINER_CGROUPS.iter().find(|p| path.contains(*p))?;
        Some(format!("/proc/1/cgroup names {part} ({})", excerpt(path)))
    })
}

use crate::error::excerpt;

impl Limits {
    /// One read.
    pub(super) fn read_facts(
        &self,
        host: &Host,
        cx: &Context<Settings>,
    ) -> Result<Facts, CheckError> {
        let (source, limits) = self.source(host, &cx.settings);
        Ok(Facts {
            source,
            limits,
            java_options: java_options(host, cx.shared.spark_defaults.as_deref()),
            cores: read_cores(host),
            min_open_files: cx.settings.min_open_files,
        })
    }

    /// Whose limits stand for the executors', and those limits.
    fn source(&self, host: &Host, s: &Settings) -> (Source, Option<Rlimits>) {
        let pid_file = &s.launcher_pid_file;
        let shown = pid_file.display();
        let unknown = |reason: String| (Source::Unknown { reason }, None);
        let text = match host.read_regular_optional(pid_file) {
            Ok(t) => t,
            Err(e) => return unknown(format!("`launcher_pid_file`: {e}")),
        };
        let Some(text) = text else {
            return self.in_container(host, s);
        };
        let pid = match parse_pid(&text) {
            Ok(p) => p,
            Err(e) => {
                return unknown(format!(
                    "the pid file {shown} (`launcher_pid_file`) holds {e}"
                ));
            }
        };
        let limits_file = PathBuf::from(format!("/proc/{pid}/limits"));
        match read_limits(host, &limits_file) {
            Ok(Some(limits)) => (
                Source::Launcher {
                    pid_file: pid_file.clone(),
                    pid,
                    limits_file,
                },
                Some(limits),
            ),
            Ok(None) => unknown(format!(
                "the pid file {shown} (`launcher_pid_file`) names pid {pid}, but there is no \
                 /proc/{pid}: a stale pid file (its process is gone), or the agent does not see \
                 the host's processes (in a container: hostPID)"
            )),
            Err(e) => unknown(format!("pid {pid} from {shown}: {e}")),
        }
    }

    /// No pid file: in a container, the agent's own limits (the runtime's defaults that every
    /// pod gets); elsewhere, unknown.
    fn in_container(&self, host: &Host, s: &Settings) -> (Source, Option<Rlimits>) {
        let shown = s.launcher_pid_file.display();
        let container = match s.in_container {
            Some(true) => Some("`in_container` = true".to_string()),
            Some(false) => None,
            None => detect_container(&self.own),
        };
        let Some(container) = container else {
            return (
                Source::Unknown {
                    reason: format!(
                        "no pid file {shown} (`launcher_pid_file`) and the agent is not in a \
                         container: the limits of the process that starts executors are unknown \
                         (the agent's own, e.g. its systemd unit's LimitNOFILE, say nothing \
                         about the NodeManager's)"
                    ),
                },
                None,
            );
        };
        let limits_file = PathBuf::from("/proc/self/limits");
        let reason = match read_limits(host, &limits_file) {
            Ok(Some(limits)) => {
                return (
                    Source::Agent {
                        container,
                        limits_file,
                    },
                    Some(limits),
                );
            }
            Ok(None) => format!("{} is missing", host.path(&limits_file).display()),
            Err(e) => e.to_string(),
        };
        (
            Source::Unknown {
                reason: format!(
                    "no pid file {shown} (`launcher_pid_file`); the agent is in a container \
                     ({container}), but its own limits are unknown: {reason}"
                ),
            },
            None,
        )
    }
}

/// Whether the executors' Java options turn `MaxFDLimit` off, from the shared
/// `spark-defaults.conf`.
fn java_options(host: &Host, spark_defaults: Option<&Path>) -> JavaOptions {
    let Some(path) = spark_defaults else {
        return JavaOptions::default();
    };
    let mut j = JavaOptions {
        spark_defaults: Some(path.to_path_buf()),
        ..JavaOptions::default()
    };
    match host.read_optional(path) {
        Ok(Some(text)) => {
            let conf = parse_spark_defaults(&text);
            let opts: Vec<&str> = JAVA_OPTION_KEYS
                .iter()
                .filter_map(|k| conf.get(k))
                .collect();
            j.max_fd_limit_off = max_fd_limit_off(&opts.join(" "));
        }
        Ok(None) => j.error = Some(format!("{} is missing", host.path(path).display())),
        Err(e) => j.error = Some(e.to_string()),
    }
    j
}

/// `/proc/<pid>/limits` (host path `p`) parsed; none when missing; errors name the file.
fn read_limits(host: &Host, p: &Path) -> Result<Option<Rlimits>, CheckError> {
    host.parse_optional(p, parse_rlimits)
}

/// `kernel.core_pattern` and the free space where cores land.
fn read_cores(host: &Host) -> Cores {
    const PATTERN: &str = "/proc/sys/kernel/core_pattern";
    let mut c = Cores::default();
    let pattern = match host.read_value(PATTERN) {
        Ok(p) => p,
        Err(e) => {
            c.dir_free_unknown = Some(e.to_string());
            return c;
        }
    };
    let Some(pattern) = pattern else {
        c.dir_free_unknown = Some(format!("{} is missing", host.path(PATTERN).display()));
        return c;
    };
    let dest = parse_core_pattern(&pattern);
    c.dir_free_unknown = match &dest {
        CoreDestination::Pipe { handler } => Some(format!("cores are piped to {handler}")),
        CoreDestination::Relative => {
            Some("a relative core_pattern: cores land in the executor's working directory".into())
        }
        CoreDestination::Path {
            template: true,
            dir,
        } => Some(format!("{} has % specifiers", dir.display())),
        CoreDestination::Path {
            template: false,
            dir,
        } => match free_bytes(host, dir) {
            Ok(free) => {
                c.dir_free_bytes = Some(free);
                None
            }
            Err(e) => Some(e.to_string()),
        },
    };
    c.core_pattern = Some(pattern);
    c.destination = Some(dest);
    c
}

/// Bytes an unprivileged writer may still use in the host dir `dir` (statvfs `f_bavail`).
fn free_bytes(host: &Host, dir: &Path) -> Result<u64, CheckError> {
    let local = host.resolve(dir)?;
    let v = nix::sys::statvfs::statvfs(&local).map_err(|source| CheckError::Call {
        call: "statvfs",
        path: local.clone(),
        source,
    })?;
    // The block counters are 32-bit on some targets.
    #[allow(clippy::unnecessary_cast)]
    Ok((v.blocks_available() as u64).saturating_mul(v.fragment_size() as u64))
}
