//! `[local_socket]`: the daemon's read-only endpoints (`/health`, `/livez`, `/metrics`, ...) on a
//! Unix socket on this node, for local readers that cannot log in over TCP: the YARN health
//! script and the node-problem-detector plugin (`check --from-daemon`). The web config's TLS and
//! basic auth do not apply there: the socket file's owner, group and mode are the access control
//! (who may connect(2) to it is who may write it), so the mode never grants others anything.
//!
//! The socket is bound under a temporary name in the same directory, given its group and mode,
//! and only then renamed into place: the public path never exists with looser permissions. A
//! socket left by a daemon that died is replaced; one a live daemon answers on is not.

use common::config_file::ConfigError;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The path the shipped configs (systemd, image, Kubernetes) use.
pub const DEFAULT_PATH: &str = "/run/gluten-node-agent/agent.sock";

/// `[local_socket]`. Off unless `path` is set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSocketConfig {
    /// Where the daemon serves its read-only endpoints on a Unix socket, e.g.
    /// `/run/gluten-node-agent/agent.sock`; `check --from-daemon` reads the verdict there.
    pub path: Option<PathBuf>,
    /// The socket file's group: a name or a numeric id (default: the daemon's own group).
    pub group: Option<GroupName>,
    /// The socket file's mode; no bits for others (default `0o660`).
    pub mode: u32,
}

impl Default for LocalSocketConfig {
    fn default() -> Self {
        LocalSocketConfig {
            path: None,
            group: None,
            mode: 0o660,
        }
    }
}

/// A group as TOML gives it: `"yarn"` or `1001`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum GroupName {
    Id(u32),
    Name(String),
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupName::Id(id) => write!(f, "{id}"),
            GroupName::Name(n) => f.write_str(n),
        }
    }
}

impl LocalSocketConfig {
    /// Rules for the keys; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.path
            && !path.is_absolute()
        {
            return Err(ConfigError::key(
                "local_socket.path",
                format!("{}: must be an absolute path", path.display()),
            ));
        }
        let mode = |why: String| Err(ConfigError::key("local_socket.mode", why));
        if self.mode & !0o777 != 0 {
            return mode(format!(
                "{:#o} is not a permission mode (at most 0o777)",
                self.mode
            ));
        }
        if self.mode & 0o007 != 0 {
            return mode(format!(
                "{:#o} grants others access, but the socket has no authentication: use the \
                 group (e.g. 0o660 with `local_socket.group`)",
                self.mode
            ));
        }
        if self.mode & 0o200 == 0 {
            return mode(format!(
                "{:#o}: the owner must be able to connect (0o200)",
                self.mode
            ));
        }
        if let Some(GroupName::Name(n)) = &self.group
            && n.is_empty()
        {
            return Err(ConfigError::key("local_socket.group", "must not be empty"));
        }
        Ok(())
    }
}

/// Why the socket could not be served; names the key and the path.
#[derive(Debug, thiserror::Error)]
#[error("config key `local_socket.{key}`: {what}: {why}")]
pub struct LocalSocketError {
    pub key: &'static str,
    pub what: String,
    #[source]
    pub why: BindProblem,
}

/// Which step of binding the socket failed, and why.
#[derive(Debug, thiserror::Error)]
pub enum BindProblem {
    #[error("no socket to bind")]
    Unset,
    #[error("no such group")]
    NoSuchGroup,
    #[error("{0}")]
    Group(#[source] nix::Error),
    #[error("has no directory")]
    NoDirectory,
    #[error("must name a file")]
    NoFileName,
    #[error("creating {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Inspect(#[source] std::io::Error),
    #[error("exists and is not a socket")]
    NotASocket,
    #[error("another daemon is serving on it")]
    Live,
    #[error("removing the stale socket: {0}")]
    RemoveStale(#[source] std::io::Error),
    #[error("binding {}: {source}", tmp.display())]
    Bind {
        tmp: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("giving {} to it: {source}", path.display())]
    Chown {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("setting mode {mode:#o}: {source}")]
    Mode {
        mode: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("renaming into place: {0}")]
    Rename(#[source] std::io::Error),
}

/// The bound socket: its listener, and its file (removed when `file` is dropped).
#[derive(Debug)]
pub struct Bound {
    pub listener: tokio::net::UnixListener,
    pub file: SocketFile,
}

/// The socket's path; the file is removed when this is dropped.
#[derive(Debug)]
pub struct SocketFile {
    pub path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Resolves a group name or id to its gid.
fn gid_of(group: &GroupName) -> Result<nix::unistd::Gid, LocalSocketError> {
    match group {
        GroupName::Id(id) => Ok(nix::unistd::Gid::from_raw(*id)),
        // From a flag every value is a string: digits are an id.
        GroupName::Name(name) if name.parse::<u32>().is_ok() => {
            Ok(nix::unistd::Gid::from_raw(name.parse().unwrap_or_default()))
        }
        GroupName::Name(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(g.gid),
            Ok(None) => Err(LocalSocketError {
                key: "group",
                what: name.clone(),
                why: BindProblem::NoSuchGroup,
            }),
            Err(e) => Err(LocalSocketError {
                key: "group",
                what: name.clone(),
                why: BindProblem::Group(e),
            }),
        },
    }
}

/// Binds the socket at `config.path` (which must be set) with its group and mode. Must run on a
/// tokio runtime.
pub fn bind(config: &LocalSocketConfig) -> Result<Bound, LocalSocketError> {
    let path = config.path.clone().ok_or_else(|| LocalSocketError {
        key: "path",
        what: "unset".into(),
        why: BindProblem::Unset,
    })?;
    let err = |why: BindProblem| LocalSocketError {
        key: "path",
        what: path.display().to_string(),
        why,
    };
    let gid = config.group.as_ref().map(gid_of).transpose()?;
    let dir = path.parent().ok_or_else(|| err(BindProblem::NoDirectory))?;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|source| {
            err(BindProblem::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })
        })?;
        // Readers need to reach the socket: the directory is searchable, not listable by others.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o751));
    }
    replace_stale(&path).map_err(err)?;
    let name = path
        .file_name()
        .ok_or_else(|| err(BindProblem::NoFileName))?;
    let tmp = dir.join(format!(
        ".{}.{}.new",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = tokio::net::UnixListener::bind(&tmp).map_err(|source| {
        err(BindProblem::Bind {
            tmp: tmp.clone(),
            source,
        })
    })?;
    let set_up = || -> Result<(), LocalSocketError> {
        if let Some(gid) = gid {
            nix::unistd::chown(&tmp, None, Some(gid)).map_err(|e| LocalSocketError {
                key: "group",
                what: config
                    .group
                    .as_ref()
                    .map(|g| g.to_string())
                    .unwrap_or_default(),
                why: BindProblem::Chown {
                    path: path.clone(),
                    source: e,
                },
            })?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(config.mode)).map_err(
            |source| {
                err(BindProblem::Mode {
                    mode: config.mode,
                    source,
                })
            },
        )?;
        std::fs::rename(&tmp, &path).map_err(|e| err(BindProblem::Rename(e)))
    };
    if let Err(e) = set_up() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(Bound {
        listener,
        file: SocketFile { path },
    })
}

/// Removes a socket no daemon answers on; refuses a live one and anything not a socket.
fn replace_stale(path: &Path) -> Result<(), BindProblem> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BindProblem::Inspect(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(BindProblem::NotASocket);
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(BindProblem::Live);
    }
    std::fs::remove_file(path).map_err(BindProblem::RemoveStale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn keys_are_checked_naming_them() {
        let mut c = LocalSocketConfig {
            path: Some("run/agent.sock".into()),
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("local_socket.path")
        );
        c.path = Some(DEFAULT_PATH.into());
        assert!(c.validate().is_ok());
        c.mode = 0o666;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("grants others")
        );
        c.mode = 0o1660;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("local_socket.mode")
        );
        c.mode = 0o060;
        assert!(c.validate().unwrap_err().to_string().contains("owner"));
    }

    #[tokio::test]
    async fn binds_with_its_mode_replaces_a_stale_socket_and_refuses_a_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent.sock");
        let own_gid = nix::unistd::getegid().as_raw();
        let config = LocalSocketConfig {
            path: Some(path.clone()),
            group: Some(GroupName::Id(own_gid)),
            mode: 0o640,
        };
        // A stale socket: bound, then its listener gone.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let bound = bind(&config).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_eq!(meta.gid(), own_gid);
        let e = bind(&config).unwrap_err().to_string();
        assert!(
            e.contains("local_socket.path") && e.contains("another daemon"),
            "{e}"
        );
        drop(bound);
        assert!(!path.exists());
        std::fs::write(&path, "x").unwrap();
        assert!(
            bind(&config)
                .unwrap_err()
                .to_string()
                .contains("not a socket")
        );
        let e = bind(&LocalSocketConfig {
            group: Some(GroupName::Name("no-such-group-gluten".into())),
            ..config
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("local_socket.group") && e.contains("no such group"),
            "{e}"
        );
    }
}
