//! The memory cgroup: where it is (`/proc/self/cgroup` and the mount table, or `cgroup` from the
//! settings), and what its files say (limit up the tree, usage, working set, events, PSI).

use super::*;
use crate::check::ParseError;
use crate::error::excerpt;
use crate::procfs_text::{field, parse_count, parse_flat_keyed, parse_mountinfo};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The memory cgroup of a process, from `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroup {
    /// The v2 (unified) path, from the `0::/path` line.
    pub unified: Option<String>,
    /// The v1 path of the hierarchy that has the `memory` controller.
    pub v1_memory: Option<String>,
}

/// Parses `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path` lines; v2 is `0::/path`, v1
/// `N:memory:/path` (controllers comma-separated, e.g. `4:memory,hugetlb:/x`); hybrid hosts have
/// both. The path may itself contain ':'.
pub fn parse_proc_cgroup(text: &str) -> Result<ProcCgroup, ParseError> {
    let mut out = ProcCgroup::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::at_line(
                i + 1,
                format!("expected id:controllers:path, got {}", excerpt(line)),
            ));
        };
        if id.parse::<u32>().is_err() {
            return Err(ParseError::at_line(
                i + 1,
                format!("hierarchy id {} is not a number", excerpt(id)),
            ));
        }
        if id == "0" && controllers.is_empty() {
            out.unified = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            out.v1_memory = Some(path.to_string());
        }
    }
    Ok(out)
}

/// A cgroup filesystem mount, from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// 2 for cgroup2, 1 for a v1 hierarchy with the `memory` controller.
    pub version: u8,
    /// The mount's root inside the hierarchy (field 4; not `/` inside a cgroup namespace).
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: String,
}

/// The cgroup2 mounts and the v1 `memory` mounts in a mountinfo file, in file order (parsed with
/// the shared [`parse_mountinfo`]: octal escapes undone, the double-space quirk tolerated).
pub fn parse_cgroup_mounts(text: &str) -> Result<Vec<CgroupMount>, ParseError> {
    Ok(parse_mountinfo(text)?
        .into_iter()
        .filter_map(|m| {
            let version = match m.fs_type.as_str() {
                "cgroup2" => 2,
                "cgroup" if m.super_options.iter().any(|o| o == "memory") => 1,
                _ => return None,
            };
            Some(CgroupMount {
                version,
                root: m.root,
                mount_point: m.mount_point,
            })
        })
        .collect())
}

/// The cgroup as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupFacts {
    pub version: u8,
    /// The cgroup path inside the hierarchy, e.g. `/kubepods.slice/...`.
    pub path: String,
    /// `/proc/self/cgroup` or `config`.
    pub source: &'static str,
    /// The directory on the host, e.g. `/sys/fs/cgroup/kubepods.slice/...`.
    pub dir: String,
    pub exists: bool,
    /// The tightest limit of this cgroup and its ancestors; `None` when unlimited.
    pub limit_bytes: Option<u64>,
    /// The file the limit came from (an ancestor's when that one is tighter).
    pub limit_file: Option<String>,
    pub usage_bytes: Option<u64>,
    /// `inactive_file` (v2) / `total_inactive_file` (v1) from `memory.stat`.
    pub inactive_file_bytes: Option<u64>,
    /// Usage minus inactive file pages: kubelet's and cAdvisor's working set.
    pub working_set_bytes: Option<u64>,
    /// Working set over limit.
    pub usage_ratio: Option<f64>,
    /// `memory.events` (v2): times the limit was hit, OOMs, OOM kills.
    pub events_max: Option<u64>,
    pub events_oom: Option<u64>,
    /// `memory.events` `oom_kill` (v2) or `memory.oom_control` `oom_kill` (v1, kernel >= 4.13).
    pub oom_kill: Option<u64>,
    pub oom_kill_at_start: Option<u64>,
    /// The cgroup's own `memory.pressure` (v2).
    pub psi: Option<Psi>,
}

/// Where the memory cgroup is, as found.
pub(super) struct Located {
    version: u8,
    path: String,
    source: &'static str,
    /// Host path of the mount point, and of the cgroup directory.
    mount_point: PathBuf,
    dir: PathBuf,
}

/// Joins a cgroup path to its mount: the part below the mount's root, under the mount point.
pub(super) fn cgroup_dir(mount: &CgroupMount, path: &str) -> PathBuf {
    let root = mount.root.trim_end_matches('/');
    let rel = match path.strip_prefix(root) {
        Some(r) if root.is_empty() || r.is_empty() || r.starts_with('/') => r,
        _ => path,
    };
    Path::new(&mount.mount_point).join(rel.trim_start_matches('/'))
}

pub(super) fn default_mount(version: u8) -> CgroupMount {
    CgroupMount {
        version,
        root: "/".into(),
        mount_point: if version == 2 {
            "/sys/fs/cgroup".into()
        } else {
            "/sys/fs/cgroup/memory".into()
        },
    }
}

impl Memory {
    pub(super) fn locate(&self, host: &Host, s: &Settings) -> Result<Option<Located>, CheckError> {
        let mounts = host
            .parse_optional("/proc/self/mountinfo", parse_cgroup_mounts)?
            .unwrap_or_default();
        let v2 = mounts.iter().find(|m| m.version == 2).cloned();
        let v1 = mounts.iter().find(|m| m.version == 1).cloned();
        let pick = |version: u8, path: String, source| {
            let mount = match version {
                2 => v2.clone().unwrap_or_else(|| default_mount(2)),
                _ => v1.clone().unwrap_or_else(|| default_mount(1)),
            };
            Located {
                version,
                dir: cgroup_dir(&mount, &path),
                mount_point: PathBuf::from(&mount.mount_point),
                path,
                source,
            }
        };
        if let Some(path) = &s.cgroup {
            // The memory controller is on v1 when a v1 memory hierarchy is mounted (hybrid).
            let version = if v1.is_some() { 1 } else { 2 };
            return Ok(Some(pick(version, path.clone(), "config")));
        }
        let Some(own) = host.parse_optional("/proc/self/cgroup", parse_proc_cgroup)? else {
            return Ok(None);
        };
        Ok(match (own.v1_memory, own.unified) {
            (Some(p), _) => Some(pick(1, p, "/proc/self/cgroup")),
            (None, Some(p)) => Some(pick(2, p, "/proc/self/cgroup")),
            (None, None) => None,
        })
    }

    pub(super) fn read_cgroup(&self, host: &Host, at: Located) -> Result<CgroupFacts, CheckError> {
        let file = |name: &str| at.dir.join(name);
        let mut c = CgroupFacts {
            version: at.version,
            path: at.path.clone(),
            source: at.source,
            dir: at.dir.display().to_string(),
            exists: host.is_dir(&at.dir),
            ..CgroupFacts::default()
        };
        if !c.exists {
            return Ok(c);
        }
        let (limit_name, usage_name, inactive_key) = if at.version == 2 {
            ("memory.max", "memory.current", "inactive_file")
        } else {
            (
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                "total_inactive_file",
            )
        };
        // The tightest limit on the way up to the mount point.
        let mut dir = at.dir.clone();
        loop {
            let p = dir.join(limit_name);
            if let Some(Some(l)) = host.parse_optional(&p, parse_cgroup_limit)?
                && c.limit_bytes.is_none_or(|cur| l < cur)
            {
                c.limit_bytes = Some(l);
                c.limit_file = Some(p.display().to_string());
            }
            if dir == at.mount_point || !dir.pop() || !dir.starts_with(&at.mount_point) {
                break;
            }
        }
        c.usage_bytes = host.parse_optional(file(usage_name), parse_count)?;
        let stat = host.parse_optional(file("memory.stat"), parse_flat_keyed)?;
        c.inactive_file_bytes = stat.as_deref().and_then(|s| field(s, inactive_key));
        c.working_set_bytes = c
            .usage_bytes
            .map(|u| u.saturating_sub(c.inactive_file_bytes.unwrap_or(0)));
        c.usage_ratio = match (c.working_set_bytes, c.limit_bytes) {
            (Some(ws), Some(l)) if l > 0 => Some(ws as f64 / l as f64),
            _ => None,
        };
        if at.version == 2 {
            if let Some(ev) = host.parse_optional(file("memory.events"), parse_flat_keyed)? {
                c.events_max = field(&ev, "max");
                c.events_oom = field(&ev, "oom");
                c.oom_kill = field(&ev, "oom_kill");
            }
            c.psi = host.parse_optional(file("memory.pressure"), parse_psi)?;
        } else if let Some(oc) =
            host.parse_optional(file("memory.oom_control"), parse_flat_keyed)?
        {
            c.oom_kill = field(&oc, "oom_kill");
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_v2_nested() {
        let c = parse_proc_cgroup(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope\n",
        )
        .unwrap();
        assert_eq!(
            c.unified.as_deref(),
            Some(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
            )
        );
        assert_eq!(c.v1_memory, None);
    }

    #[test]
    fn proc_cgroup_v1_and_hybrid() {
        let v1 = "12:hugetlb:/\n11:memory:/user.slice/user-1000.slice\n10:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n";
        let c = parse_proc_cgroup(v1).unwrap();
        assert_eq!(c.v1_memory.as_deref(), Some("/user.slice/user-1000.slice"));
        assert_eq!(c.unified, None);
        let hybrid = format!("{v1}0::/user.slice/user-1000.slice/session-2.scope\n");
        let c = parse_proc_cgroup(&hybrid).unwrap();
        assert!(c.v1_memory.is_some() && c.unified.is_some());
        // Controllers listed together, and a path with ':' in it.
        let c = parse_proc_cgroup("4:memory,hugetlb:/a:b\n").unwrap();
        assert_eq!(c.v1_memory.as_deref(), Some("/a:b"));
    }

    #[test]
    fn proc_cgroup_errors_name_the_line() {
        let e = parse_proc_cgroup("0::/\nnonsense\n").unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
        assert!(parse_proc_cgroup("x:memory:/\n").is_err());
    }

    #[test]
    fn mountinfo_finds_cgroup2_and_v1_memory() {
        // From node-exporter-upstream-variants/bindmount and a v1 host.
        let text = "29 1 259:0 / /host rw,seclabel,relatime,data=ordered shared:1 - ext4 /dev/nvme1n0 rw\n\
            33 24 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n\
            36 33 0:26 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuset\n\
            40 31 0:35 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,memory\n";
        let m = parse_cgroup_mounts(text).unwrap();
        assert_eq!(
            m,
            vec![
                CgroupMount {
                    version: 2,
                    root: "/".into(),
                    mount_point: "/sys/fs/cgroup".into()
                },
                CgroupMount {
                    version: 1,
                    root: "/".into(),
                    mount_point: "/sys/fs/cgroup/memory".into()
                },
            ]
        );
    }

    #[test]
    fn mountinfo_without_optional_fields_and_with_octal_escapes() {
        // No `shared:N` optional field; a mount point with a space (\040) in it.
        let text =
            "50 1 0:40 /kubepods.slice /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse_cgroup_mounts(text).unwrap();
        assert_eq!(m[0].root, "/kubepods.slice");
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup x");
        // procfs-upstream's double space after the root.
        let m = parse_cgroup_mounts("1 1 0:5 /  /root rw,nosuid shared:8 - rootfs rootfs rw\n")
            .unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn mountinfo_errors_name_the_line() {
        let e = parse_cgroup_mounts("29 1 259:0 / / rw - ext4 /dev/x rw\n33 24 0:28 / /sys\n")
            .unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn cgroup_dir_strips_the_mount_root() {
        let ns = CgroupMount {
            version: 2,
            root: "/kubepods.slice".into(),
            mount_point: "/sys/fs/cgroup".into(),
        };
        assert_eq!(
            cgroup_dir(&ns, "/kubepods.slice/pod1.slice"),
            PathBuf::from("/sys/fs/cgroup/pod1.slice")
        );
        // `/kubepods.slicex` is not under `/kubepods.slice`.
        assert_eq!(
            cgroup_dir(&ns, "/kubepods.slicex"),
            PathBuf::from("/sys/fs/cgroup/kubepods.slicex")
        );
        let host = default_mount(2);
        assert_eq!(cgroup_dir(&host, "/"), PathBuf::from("/sys/fs/cgroup"));
    }
}
