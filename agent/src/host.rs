//! `Host`: the machine as the checks see it, rooted at a configurable path (`/` on a host, `/host`
//! in a container, a fixture tree in tests). Every read a check makes goes through here.

use crate::error::{CheckError, ParseError};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Largest kernel or config file a check reads whole (a `/proc` file is a few KiB; this only
/// stops a misconfigured path to a huge file from eating memory).
pub const MAX_TEXT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// How many symlinks [`Host::resolve`] follows before it gives up (the kernel's limit is 40).
const MAX_SYMLINKS: usize = 40;

/// The machine under inspection, seen through a root directory.
#[derive(Clone, Debug)]
pub struct Host {
    root: PathBuf,
    arch: String,
}

impl Host {
    /// A host rooted at `root`; its architecture is the running kernel's (`uname -m`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let arch = nix::sys::utsname::uname()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_else(|_| std::env::consts::ARCH.to_string());
        Host {
            root: root.into(),
            arch,
        }
    }

    /// The same host with another architecture: for fixture trees captured on other machines.
    pub fn with_arch(mut self, arch: impl Into<String>) -> Self {
        self.arch = arch.into();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Machine architecture as the kernel names it (`x86_64`, `aarch64`).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Where the host path `p` (absolute on the host, e.g. `/proc/meminfo`) lies for us. A lexical
    /// join: `..` cannot climb above the root.
    pub fn path(&self, p: impl AsRef<Path>) -> PathBuf {
        let mut out = self.root.clone();
        let mut depth = 0usize;
        for c in p.as_ref().components() {
            match c {
                Component::Normal(s) => {
                    out.push(s);
                    depth += 1;
                }
                Component::ParentDir if depth > 0 => {
                    out.pop();
                    depth -= 1;
                }
                _ => {}
            }
        }
        out
    }

    /// `/sys/<rel>` under the root.
    pub fn sys_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path(Path::new("/sys").join(rel))
    }

    /// Reads a whole text file (at most [`MAX_TEXT_FILE_BYTES`]). Errors name the path read.
    pub fn read_to_string(&self, p: impl AsRef<Path>) -> Result<String, CheckError> {
        let path = self.path(p);
        read_text(&path)
    }

    /// Like [`Host::read_to_string`], but a missing file is `Ok(None)`: "this kernel does not have
    /// it", which checks report as an unknown fact rather than an error.
    pub fn read_optional(&self, p: impl AsRef<Path>) -> Result<Option<String>, CheckError> {
        let path = self.path(p);
        match read_text(&path) {
            Ok(s) => Ok(Some(s)),
            Err(CheckError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    || source.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The first line of a small file, trimmed; `None` when the file is missing.
    pub fn read_value(&self, p: impl AsRef<Path>) -> Result<Option<String>, CheckError> {
        Ok(self
            .read_optional(p)?
            .map(|s| s.lines().next().unwrap_or("").trim().to_string()))
    }

    /// Reads and parses a file with a pure parser; a parse error names the file.
    pub fn parse<T>(
        &self,
        p: impl AsRef<Path>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, CheckError> {
        let path = self.path(p);
        let text = read_text(&path)?;
        parse(&text).map_err(|e| CheckError::parse(&path, e))
    }

    /// Like [`Host::parse`], but a missing file is `Ok(None)`.
    pub fn parse_optional<T>(
        &self,
        p: impl AsRef<Path>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CheckError> {
        let path = self.path(p.as_ref());
        match self.read_optional(p)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .map_err(|e| CheckError::parse(&path, e)),
        }
    }

    /// Names of the entries of a host directory, sorted; a missing directory is empty.
    pub fn list_dir(&self, p: impl AsRef<Path>) -> Result<Vec<String>, CheckError> {
        let path = self.path(p);
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CheckError::io(&path, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| CheckError::io(&path, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Resolves a host path the way the host itself would, following symlinks but keeping every
    /// absolute link target inside the root (as `chroot` would). Returns the local path of the
    /// final file. A missing component is an error naming the path.
    pub fn resolve(&self, p: impl AsRef<Path>) -> Result<PathBuf, CheckError> {
        // `pending` holds the components still to walk, in reverse order.
        let mut pending: Vec<std::ffi::OsString> = components_of(p.as_ref());
        pending.reverse();
        let mut walked: Vec<std::ffi::OsString> = Vec::new();
        let mut links = 0usize;
        while let Some(c) = pending.pop() {
            if c == ".." {
                walked.pop();
                continue;
            }
            walked.push(c);
            let local = self.local_of(&walked);
            let meta = std::fs::symlink_metadata(&local).map_err(|e| CheckError::io(&local, e))?;
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(CheckError::io(
                        &local,
                        std::io::Error::from_raw_os_error(libc::ELOOP),
                    ));
                }
                let target = std::fs::read_link(&local).map_err(|e| CheckError::io(&local, e))?;
                walked.pop();
                if target.is_absolute() {
                    walked.clear();
                }
                let mut more = components_of(&target);
                more.reverse();
                pending.extend(more);
            }
        }
        Ok(self.local_of(&walked))
    }

    /// The host path (as the host names it) of a local path under the root, if it is under it.
    pub fn host_path_of(&self, local: &Path) -> Option<PathBuf> {
        local
            .strip_prefix(&self.root)
            .ok()
            .map(|rel| Path::new("/").join(rel))
    }

    fn local_of(&self, walked: &[std::ffi::OsString]) -> PathBuf {
        let mut out = self.root.clone();
        out.extend(walked);
        out
    }
}

fn components_of(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Reads a text file of at most [`MAX_TEXT_FILE_BYTES`]; invalid UTF-8 is replaced, not refused
/// (kernel files are ASCII; a stray byte must not hide the rest).
pub fn read_text(path: &Path) -> Result<String, CheckError> {
    let file = std::fs::File::open(path).map_err(|e| CheckError::io(path, e))?;
    let mut buf = Vec::new();
    file.take(MAX_TEXT_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CheckError::io(path, e))?;
    if buf.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(CheckError::parse(
            path,
            ParseError::new(format!(
                "file is larger than {MAX_TEXT_FILE_BYTES} bytes; not a kernel file?"
            )),
        ));
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_stay_under_the_root() {
        let h = Host::new("/fixture");
        assert_eq!(
            h.path("/proc/meminfo"),
            PathBuf::from("/fixture/proc/meminfo")
        );
        assert_eq!(
            h.path("proc/meminfo"),
            PathBuf::from("/fixture/proc/meminfo")
        );
        assert_eq!(
            h.path("/../../etc/passwd"),
            PathBuf::from("/fixture/etc/passwd")
        );
        assert_eq!(h.path("/a/b/../c"), PathBuf::from("/fixture/a/c"));
        assert_eq!(
            h.sys_path("kernel/mm"),
            PathBuf::from("/fixture/sys/kernel/mm")
        );
    }

    #[test]
    fn missing_optional_file_is_none_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let h = Host::new(dir.path());
        assert_eq!(h.read_optional("/proc/nope").unwrap(), None);
        let err = h.read_to_string("/proc/nope").unwrap_err().to_string();
        assert!(
            err.contains(&format!("{}/proc/nope", dir.path().display())),
            "{err}"
        );
    }

    #[test]
    fn parse_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/x"), "garbage").unwrap();
        let h = Host::new(dir.path());
        let err = h
            .parse("/proc/x", |_| -> Result<(), ParseError> {
                Err(ParseError::new("line 1: expected a number"))
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("proc/x") && err.contains("expected a number"),
            "{err}"
        );
    }

    #[test]
    fn resolve_keeps_absolute_links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::write(r.join("usr/lib/libc.so.6"), b"x").unwrap();
        // /lib -> /usr/lib (absolute, as on merged-/usr hosts), /lib64 -> lib (relative).
        symlink("/usr/lib", r.join("lib")).unwrap();
        symlink("lib", r.join("lib64")).unwrap();
        let h = Host::new(r);
        assert_eq!(
            h.resolve("/lib64/libc.so.6").unwrap(),
            r.join("usr/lib/libc.so.6")
        );
        assert_eq!(
            h.resolve("/lib/../lib/libc.so.6").unwrap(),
            r.join("usr/lib/libc.so.6")
        );
        assert!(h.resolve("/lib/missing.so").is_err());
        symlink("loop", r.join("loop")).unwrap();
        assert!(
            h.resolve("/loop")
                .unwrap_err()
                .to_string()
                .contains("symbolic links")
        );
    }

    #[test]
    fn host_path_of_inverts_path() {
        let h = Host::new("/host");
        assert_eq!(
            h.host_path_of(&h.path("/tmp/x")),
            Some(PathBuf::from("/tmp/x"))
        );
        assert_eq!(h.host_path_of(Path::new("/elsewhere")), None);
    }
}
