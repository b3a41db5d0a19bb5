//! `Host`: the machine as the checks see it, rooted at a configurable path (`/` on a host, `/host`
//! in a container, a fixture tree in tests). Every read a check makes goes through here, and is
//! resolved inside the root: a symlink, absolute or relative, never leads out of it (the kernel's
//! `openat2(RESOLVE_IN_ROOT)`, or [`Host::resolve`] where the kernel lacks it).

use crate::error::{CheckError, ParseError};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

/// Largest kernel or config file a check reads whole (a `/proc` file is a few KiB; this only
/// stops a misconfigured path to a huge file from eating memory).
pub const MAX_TEXT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The longest value [`Host::read_value`] returns, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;

/// How many symlinks [`Host::resolve`] follows before it gives up (the kernel's limit is 40).
const MAX_SYMLINKS: usize = 40;

/// The machine under inspection, seen through a root directory.
#[derive(Clone, Debug)]
pub struct Host {
    root: PathBuf,
    arch: String,
    /// The root opened once (`O_PATH`) for `openat2`, shared by clones.
    root_dir: Arc<OnceLock<File>>,
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
            root_dir: Arc::default(),
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
        self.read_text(p.as_ref())
    }

    /// Like [`Host::read_to_string`], but a missing file is `Ok(None)`: "this kernel does not have
    /// it", which checks report as an unknown fact rather than an error.
    pub fn read_optional(&self, p: impl AsRef<Path>) -> Result<Option<String>, CheckError> {
        match self.read_text(p.as_ref()) {
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

    /// The first line of a small file, trimmed, at most [`MAX_VALUE_BYTES`] (cut at a character
    /// boundary: a sysfs value is a word or a number, and whatever is longer must not grow the
    /// report); `None` when the file is missing.
    pub fn read_value(&self, p: impl AsRef<Path>) -> Result<Option<String>, CheckError> {
        Ok(self.read_optional(p)?.map(|s| {
            let line = s.lines().next().unwrap_or("").trim();
            let mut end = line.len().min(MAX_VALUE_BYTES);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line[..end].to_string()
        }))
    }

    /// Reads and parses a file with a pure parser; a parse error names the file.
    pub fn parse<T>(
        &self,
        p: impl AsRef<Path>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, CheckError> {
        let path = self.path(p.as_ref());
        let text = self.read_text(p.as_ref())?;
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

    /// Opens a host file for reading, resolved inside the root; errors name the path as
    /// [`Host::path`] gives it.
    pub fn open(&self, p: impl AsRef<Path>) -> Result<File, CheckError> {
        let p = p.as_ref();
        self.open_in_root(p, 0)
            .map_err(|e| CheckError::io(&self.path(p), e))
    }

    /// Whether the host path is a directory (resolved inside the root).
    pub fn is_dir(&self, p: impl AsRef<Path>) -> bool {
        self.open_in_root(p.as_ref(), libc::O_DIRECTORY).is_ok()
    }

    /// Reads a whole text file, resolved inside the root (at most [`MAX_TEXT_FILE_BYTES`]).
    fn read_text(&self, p: &Path) -> Result<String, CheckError> {
        let path = self.path(p);
        let file = self
            .open_in_root(p, 0)
            .map_err(|e| CheckError::io(&path, e))?;
        read_open_text(&path, file)
    }

    /// Like [`Host::read_optional`], but opened `O_NONBLOCK` and refused unless it is a regular
    /// file: for paths an operator configures (a pid file), where a FIFO or a device must not
    /// block the read until a writer comes. Plain reads keep the kernel's behaviour (the
    /// engine's deadline covers a read stuck on a hung mount, or on a FIFO in its tests).
    pub fn read_regular_optional(&self, p: impl AsRef<Path>) -> Result<Option<String>, CheckError> {
        let p = p.as_ref();
        let path = self.path(p);
        match self.open_in_root(p, libc::O_NONBLOCK).and_then(regular) {
            Ok(file) => read_open_text(&path, file).map(Some),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Ok(None)
            }
            Err(e) => Err(CheckError::io(&path, e)),
        }
    }

    /// `open(2)` of the host path `p` read-only with `flags` added, every symlink on the way
    /// resolved as if the root were `/`: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on
    /// Linux 5.6+, else [`Host::resolve`] and an open that does not follow a last link (a link
    /// swapped in between fails rather than leads out). With the root at `/` a plain open.
    fn open_in_root(&self, p: &Path, flags: libc::c_int) -> std::io::Result<File> {
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).custom_flags(flags | libc::O_CLOEXEC);
        if self.root == Path::new("/") {
            return opts.open(self.path(p));
        }
        let rel = self.path(p);
        let rel = rel.strip_prefix(&self.root).unwrap_or(&rel);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        if OPENAT2.load(Ordering::Relaxed) != OPENAT2_MISSING {
            match self
                .root_dir()
                .and_then(|dir| openat2_in_root(dir, rel, flags))
            {
                Ok(file) => {
                    OPENAT2.store(OPENAT2_WORKS, Ordering::Relaxed);
                    return Ok(file);
                }
                // No openat2 (kernel < 5.6, qemu-user before 9.0, or a seccomp profile that refuses
                // it): remember. Not only on the first call: threads that tried it while another
                // was finding out must fall back too.
                Err(e)
                    if OPENAT2.load(Ordering::Relaxed) != OPENAT2_WORKS
                        && matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) =>
                {
                    OPENAT2.store(OPENAT2_MISSING, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        self.open_by_resolving(p, flags)
    }

    /// The root directory, opened `O_PATH` on first use and kept (the root is a mount or a
    /// fixture that lives as long as the agent or the test).
    fn root_dir(&self) -> std::io::Result<&File> {
        if let Some(dir) = self.root_dir.get() {
            return Ok(dir);
        }
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.root)?;
        Ok(self.root_dir.get_or_init(|| dir))
    }

    /// The fallback of [`Host::open_in_root`]: [`Host::resolve`], then an open that does not
    /// follow a last link.
    fn open_by_resolving(&self, p: &Path, flags: libc::c_int) -> std::io::Result<File> {
        let resolved = self.resolve(p).map_err(|e| match e {
            CheckError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })?;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(resolved)
    }

    /// Names of the entries of a host directory, sorted; a missing directory is empty. The
    /// directory is resolved inside the root.
    pub fn list_dir(&self, p: impl AsRef<Path>) -> Result<Vec<String>, CheckError> {
        let path = self.path(p.as_ref());
        let local = match self.resolve(p.as_ref()) {
            Ok(local) => local,
            Err(CheckError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let entries = match std::fs::read_dir(&local) {
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

/// `file` if it is a regular file (or a directory, whose read fails as it always did), else an
/// `InvalidInput` error saying what it is (the caller names the path).
fn regular(file: File) -> std::io::Result<File> {
    use std::os::unix::fs::FileTypeExt;
    let t = file.metadata()?.file_type();
    let what = if t.is_file() || t.is_dir() {
        return Ok(file);
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file"),
    ))
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

/// Whether `openat2` works here: not tried yet, works, or missing (then [`Host::resolve`]).
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);
const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_WORKS: u8 = 1;
const OPENAT2_MISSING: u8 = 2;

/// `openat2(dir, rel, O_RDONLY | flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` and
/// absolute links stop at `dir`; `/proc/<pid>/fd`-style magic links are refused. Retried on
/// `EAGAIN` (a rename raced with a `..` lookup).
fn openat2_in_root(dir: &File, rel: &Path, flags: libc::c_int) -> std::io::Result<File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::from_bits_retain(flags))
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let mut tries = 0;
    loop {
        match openat2(dir, rel, how()) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(nix::errno::Errno::EAGAIN) if tries < 8 => tries += 1,
            Err(e) => return Err(std::io::Error::from(e)),
        }
    }
}

/// Reads a local text file of at most [`MAX_TEXT_FILE_BYTES`] (a path of the agent's own, not a
/// host path: host files go through [`Host`]); invalid UTF-8 is replaced, not refused (kernel
/// files are ASCII; a stray byte must not hide the rest).
pub fn read_text(path: &Path) -> Result<String, CheckError> {
    let file = File::open(path).map_err(|e| CheckError::io(path, e))?;
    read_open_text(path, file)
}

/// Reads an open text file of at most [`MAX_TEXT_FILE_BYTES`]; `path` names it in errors.
fn read_open_text(path: &Path, file: File) -> Result<String, CheckError> {
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
        // ELOOP, whatever the libc calls it (glibc "Too many levels of symbolic links", musl
        // "Symbolic link loop").
        match h.resolve("/loop").unwrap_err() {
            CheckError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::ELOOP)),
            other => panic!("{other}"),
        }
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

    /// A root with a secret next to it, reached by an absolute link, a relative link climbing out,
    /// a link to a directory outside, and a link to `/etc/x` that the root has itself.
    fn escaping_tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(dir.path().join("secret"), "SECRET\n").unwrap();
        std::fs::write(root.join("etc/x"), "inside\n").unwrap();
        symlink(dir.path().join("secret"), root.join("proc/abs")).unwrap();
        symlink("../../../../../../../../secret", root.join("proc/rel")).unwrap();
        symlink(dir.path(), root.join("proc/outdir")).unwrap();
        symlink("/etc/x", root.join("proc/to_etc")).unwrap();
        (dir, root)
    }

    #[test]
    fn reads_never_leave_the_root_by_either_way_of_opening() {
        let (_dir, root) = escaping_tree();
        let h = Host::new(&root);
        let read = |f: std::io::Result<File>| -> std::io::Result<String> {
            let mut s = String::new();
            f?.read_to_string(&mut s)?;
            Ok(s)
        };
        type Open<'a> = Box<dyn Fn(&Path) -> std::io::Result<File> + 'a>;
        let mut ways: Vec<(&str, Open)> =
            vec![("resolve", Box::new(|p: &Path| h.open_by_resolving(p, 0)))];
        // openat2 where this kernel has it (5.6+; a seccomp profile may refuse it).
        let dir = h.root_dir().unwrap();
        if openat2_in_root(dir, Path::new("etc/x"), 0).is_ok() {
            ways.push((
                "openat2",
                Box::new(|p: &Path| {
                    openat2_in_root(dir, h.path(p).strip_prefix(&root).unwrap(), 0)
                }),
            ));
        }
        for (way, open) in &ways {
            for p in ["/proc/abs", "/proc/rel", "/proc/outdir/secret"] {
                let got = read(open(Path::new(p)));
                assert!(
                    got.as_ref()
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
                    "{way} {p}: {got:?}"
                );
            }
            assert_eq!(
                read(open(Path::new("/proc/to_etc"))).unwrap(),
                "inside\n",
                "{way}"
            );
        }
        // And through the public face, whichever way this kernel takes.
        assert_eq!(h.read_optional("/proc/abs").unwrap(), None);
        assert_eq!(h.read_optional("/proc/rel").unwrap(), None);
        assert_eq!(h.read_to_string("/proc/to_etc").unwrap(), "inside\n");
        assert!(h.list_dir("/proc/outdir").unwrap().is_empty());
        assert!(!h.is_dir("/proc/outdir"));
        assert!(h.is_dir("/etc"));
        let e = h.read_to_string("/proc/abs").unwrap_err().to_string();
        assert!(e.contains(&format!("{}/proc/abs", root.display())), "{e}");
    }

    #[test]
    fn regular_reads_refuse_a_fifo_or_a_device_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let fifo = dir.path().join("run/x.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Both ways of opening: a fixture root (openat2 or resolve) and the root `/`.
        for (h, p) in [
            (Host::new(dir.path()), PathBuf::from("/run/x.pid")),
            (Host::new("/"), fifo.clone()),
        ] {
            let e = h.read_regular_optional(&p).unwrap_err().to_string();
            assert!(e.contains("a FIFO, not a regular file"), "{e}");
            assert!(e.contains(&fifo.display().to_string()), "{e}");
        }
        let h = Host::new("/");
        let e = h.read_regular_optional("/dev/null").unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        assert_eq!(
            h.read_regular_optional(dir.path().join("none")).unwrap(),
            None
        );
    }

    #[test]
    fn values_are_first_lines_and_short() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        std::fs::write(dir.path().join("sys/model"), "  Samsung SSD  \nsecond\n").unwrap();
        std::fs::write(dir.path().join("sys/long"), "é".repeat(1 << 20)).unwrap();
        let h = Host::new(dir.path());
        assert_eq!(h.read_value("/sys/model").unwrap().unwrap(), "Samsung SSD");
        let long = h.read_value("/sys/long").unwrap().unwrap();
        assert_eq!(long, "é".repeat(MAX_VALUE_BYTES / 2));
        assert_eq!(h.read_value("/sys/none").unwrap(), None);
    }
}
