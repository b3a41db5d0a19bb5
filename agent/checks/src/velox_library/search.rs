//! The loader search, as glibc's `elf/dl-load.c` does it under the executor root: a name with a
//! `/` is opened as is; otherwise `DT_RPATH` of the object and of the objects that loaded it (only
//! when the object has no `DT_RUNPATH`), `LD_LIBRARY_PATH` (`library_path`), `DT_RUNPATH`,
//! `/etc/ld.so.cache`, the default dirs of the root's `ld.so` (the last two not for an object
//! with `DF_1_NODEFLIB`); in each directory the capability subdirectories first. A candidate of
//! another ELF class or machine is skipped; one that is not ELF at all stops the search with the
//! loader's error (`open_verify`).

use super::glibc::Glibc;
use super::ld_cache::{ConfLine, LdCache, parse_ld_so_cache, parse_ld_so_conf, wildcard_match};
use crate::check::CheckError;
use crate::host::Host;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What one lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// The path the loader opened (as it names it) and where that lies for us.
    Yes { path: String, local: PathBuf },
    /// Nowhere.
    No,
    /// A file the loader refuses, which ends the search (`invalid ELF header`, ...).
    Bad { path: String, reason: String },
}

/// How the root's loader searches, read once per run.
pub(super) struct Search<'h> {
    pub root: &'h Host,
    kind: Option<(u8, u16)>,
    pub glibc: Glibc,
    /// `LD_LIBRARY_PATH` dirs, normalised like every search dir (ending in `/`).
    library_path: Vec<String>,
    pub cache: Option<LdCache>,
    /// `ld.so.conf` dirs, read only when there is no cache (the loader never reads them; they
    /// explain a miss: ldconfig was not run).
    pub conf_dirs: Vec<String>,
    /// The `ld.so.cache` flags of this architecture's libraries (`_DL_CACHE_DEFAULT_ID`).
    cache_id: Option<i32>,
    /// Which capability subdirectories exist, per run (glibc remembers the same per process).
    exists: RefCell<HashMap<String, bool>>,
}

/// An RPATH/RUNPATH/LD_LIBRARY_PATH entry as glibc stores it (`fillin_rpath`): trailing `/`s
/// dropped (except for "/"), then one added. `None` for a relative entry (relative to the
/// executor's working directory, which is not known here) and for an empty one.
pub(super) fn search_dir(entry: &str) -> Option<String> {
    if !entry.starts_with('/') {
        return None;
    }
    let e = entry.trim_end_matches('/');
    Some(format!("{e}/"))
}

impl<'h> Search<'h> {
    /// `library_path`: `LD_LIBRARY_PATH` entries, in order.
    pub fn new(root: &'h Host, glibc: Glibc, library_path: &[String]) -> Result<Self, CheckError> {
        let arch = root.arch();
        let cache_path = root.path("/etc/ld.so.cache");
        let cache = match std::fs::read(&cache_path) {
            Ok(b) => Some(parse_ld_so_cache(&b).map_err(|e| CheckError::parse(&cache_path, e))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CheckError::io(&cache_path, e)),
        };
        let mut conf_dirs = Vec::new();
        if cache.is_none() {
            read_conf(root, "/etc/ld.so.conf", 0, &mut conf_dirs)?;
        }
        Ok(Search {
            root,
            kind: super::elf::host_elf_kind(arch),
            glibc,
            library_path: library_path.iter().filter_map(|d| search_dir(d)).collect(),
            cache,
            conf_dirs,
            cache_id: match arch {
                "x86_64" => Some(0x0303),
                "aarch64" => Some(0x0a03),
                _ => None,
            },
            exists: RefCell::new(HashMap::new()),
        })
    }

    /// What the loader's `open_verify` makes of `host_path`.
    pub fn verify(&self, host_path: &str) -> Found {
        let Ok(local) = self.root.resolve(host_path) else {
            return Found::No;
        };
        let Ok(mut file) = std::fs::File::open(&local) else {
            return Found::No;
        };
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Found::No;
        }
        let mut head = [0u8; 64];
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        let bad = |reason: &str| Found::Bad {
            path: host_path.to_string(),
            reason: reason.to_string(),
        };
        if n < 64 {
            return bad("file too short");
        }
        if head[..4] != *b"\x7fELF" {
            return bad("invalid ELF header");
        }
        let Some((want_bits, want_machine)) = self.kind else {
            return Found::Yes {
                path: host_path.to_string(),
                local,
            };
        };
        if head[4] != if want_bits == 64 { 2 } else { 1 } {
            return Found::No;
        }
        if head[5] != 1 {
            return bad("ELF file data encoding not little-endian");
        }
        if head[6] != 1 {
            return bad("ELF file version ident does not match current one");
        }
        if head[7] != 0 && head[7] != 3 {
            return bad("ELF file OS ABI invalid");
        }
        if u16::from_le_bytes([head[18], head[19]]) != want_machine {
            return Found::No;
        }
        let e_type = u16::from_le_bytes([head[16], head[17]]);
        if e_type != 2 && e_type != 3 {
            return bad("only ET_DYN and ET_EXEC can be loaded");
        }
        Found::Yes {
            path: host_path.to_string(),
            local,
        }
    }

    /// Whether `dir` holds the first component of capability subdirectory `sub`.
    fn has_subdir(&self, dir: &str, sub: &str) -> bool {
        if sub.is_empty() {
            return true;
        }
        let first = sub.split('/').next().unwrap_or(sub);
        let key = format!("{dir}{first}");
        if let Some(&e) = self.exists.borrow().get(&key) {
            return e;
        }
        let e = self.root.resolve(&key).is_ok_and(|l| l.is_dir());
        self.exists.borrow_mut().insert(key, e);
        e
    }

    /// `open_path`: `name` in each of `dirs` (normalised, ending in `/`), capability subdirs first.
    fn open_path(&self, name: &str, dirs: &[String]) -> Found {
        for dir in dirs {
            for sub in &self.glibc.subdirs {
                if !self.has_subdir(dir, sub) {
                    continue;
                }
                match self.verify(&format!("{dir}{sub}{name}")) {
                    Found::No => continue,
                    found => return found,
                }
            }
        }
        Found::No
    }

    /// The `ld.so.cache` entry glibc picks for `name` (`search_cache`): entries in
    /// `glibc-hwcaps` subdirs this CPU supports first (best level), else the first entry of this
    /// architecture without legacy hwcap bits or with only bits this loader and CPU allow.
    fn cache_lookup(&self, name: &str) -> Option<&str> {
        let cache = self.cache.as_ref()?;
        let mut best: Option<(usize, &str)> = None;
        for e in cache.entries.iter().filter(|e| e.name == name) {
            if self
                .cache_id
                .is_some_and(|id| e.flags != id && e.flags != 1)
            {
                continue;
            }
            if e.hwcap & (1 << 62) != 0 {
                let Some(rank) = self.glibc.subdirs.iter().position(|s| {
                    s.starts_with("glibc-hwcaps/") && e.path.contains(&format!("/{s}"))
                }) else {
                    continue;
                };
                if best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, &e.path));
                }
                continue;
            }
            if best.is_some() {
                break;
            }
            // A legacy entry (from a `tls/` or hwcap subdir) this CPU cannot use.
            if e.hwcap & !self.glibc.cache_hwcap != 0 {
                continue;
            }
            best = Some((usize::MAX, &e.path));
            if Some(e.flags) == self.cache_id {
                break;
            }
        }
        best.map(|(_, p)| p)
    }

    /// Finds `name` as `ld.so` would for an object whose RPATH chain is `chain` (empty when it
    /// has a RUNPATH), whose RUNPATH is `runpath`, and with `DF_1_NODEFLIB` when `nodeflib`.
    /// Directories are already `$ORIGIN`-expanded and normalised.
    pub fn find(&self, name: &str, chain: &[String], runpath: &[String], nodeflib: bool) -> Found {
        if name.contains('/') {
            return self.verify(name);
        }
        for dirs in [chain, &self.library_path[..], runpath] {
            match self.open_path(name, dirs) {
                Found::No => {}
                found => return found,
            }
        }
        if nodeflib {
            return Found::No;
        }
        if let Some(path) = self.cache_lookup(name) {
            match self.verify(path) {
                Found::No => {}
                found => return found,
            }
        }
        self.open_path(name, &self.glibc.system_dirs)
    }
}

fn read_conf(
    host: &Host,
    path: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), CheckError> {
    if depth > 8 {
        return Ok(());
    }
    let Some(text) = host.read_optional(path)? else {
        return Ok(());
    };
    let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
    for line in parse_ld_so_conf(&text) {
        match line {
            ConfLine::Dir(d) => out.push(d),
            ConfLine::Include(pat) => {
                let pat = dir.join(pat);
                let (pdir, fname) = (
                    pat.parent().unwrap_or(Path::new("/")),
                    pat.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                for name in host.list_dir(pdir)? {
                    if wildcard_match(&fname, &name) {
                        read_conf(host, &pdir.join(&name).to_string_lossy(), depth + 1, out)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velox_library::glibc::{Cpu, LoaderBinary};
    use crate::velox_library::ld_cache::CacheEntry;

    fn search_with<'a>(root: &'a Host, level_flags: &str, entries: Vec<CacheEntry>) -> Search<'a> {
        let flags: std::collections::BTreeSet<String> =
            level_flags.split_whitespace().map(String::from).collect();
        let g = Glibc::new(
            "x86_64",
            Some(&LoaderBinary {
                release: Some(vec![2, 41]),
                system_dirs: Some(vec!["/lib64/".into()]),
            }),
            &Cpu {
                flags: Some(&flags),
                vendor: None,
            },
            false,
        );
        let mut s = Search::new(root, g, &[]).unwrap();
        s.cache = Some(LdCache {
            format: "glibc-ld.so.cache1.1",
            entries,
        });
        s
    }

    #[test]
    fn the_cache_prefers_supported_hwcaps_entries_and_this_architectures_flags() {
        let e = |path: &str, flags: i32, hwcap: u64| CacheEntry {
            name: "libz.so.1".into(),
            path: path.into(),
            flags,
            hwcap,
        };
        let entries = vec![
            e("/lib64/glibc-hwcaps/x86-64-v3/libz.so.1", 0x0303, 1 << 62),
            e("/lib/libz.so.1", 0x0803, 0),
            e("/lib64/libz.so.1", 0x0303, 0),
        ];
        let d = tempfile::tempdir().unwrap();
        let root = Host::new(d.path()).with_arch("x86_64");
        let v2 = "cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3";
        let v3 = format!("{v2} avx avx2 bmi1 bmi2 f16c fma abm movbe xsave");
        assert_eq!(
            search_with(&root, &v3, entries.clone()).cache_lookup("libz.so.1"),
            Some("/lib64/glibc-hwcaps/x86-64-v3/libz.so.1")
        );
        // A v2 CPU cannot use the v3 entry; the i386 entry (flags 0x0803) is not this
        // architecture's.
        assert_eq!(
            search_with(&root, v2, entries).cache_lookup("libz.so.1"),
            Some("/lib64/libz.so.1")
        );
    }

    #[test]
    fn aarch64_cache_entries_from_tls_and_atomics_subdirs_follow_the_cpu() {
        // What Debian 12's arm64 ldconfig writes for a library in `tls/atomics/`, `tls/`,
        // `atomics/` and the directory itself (legacy hwcap bits: tls 63, atomics 8).
        let e = |path: &str, hwcap: u64| CacheEntry {
            name: "libc1.so".into(),
            path: path.into(),
            flags: 0x0a03,
            hwcap,
        };
        let entries = vec![
            e("/cc/tls/atomics/libc1.so", (1 << 63) | (1 << 8)),
            e("/cc/tls/libc1.so", 1 << 63),
            e("/cc/atomics/libc1.so", 1 << 8),
            e("/cc/libc1.so", 0),
        ];
        let d = tempfile::tempdir().unwrap();
        let root = Host::new(d.path()).with_arch("aarch64");
        let lookup = |features: &str, release: u32| {
            let flags: std::collections::BTreeSet<String> =
                features.split_whitespace().map(String::from).collect();
            let g = Glibc::new(
                "aarch64",
                Some(&LoaderBinary {
                    release: Some(vec![2, release]),
                    system_dirs: Some(vec!["/lib/aarch64-linux-gnu/".into()]),
                }),
                &Cpu {
                    flags: Some(&flags),
                    vendor: None,
                },
                true,
            );
            let mut s = Search::new(&root, g, &[]).unwrap();
            s.cache = Some(LdCache {
                format: "glibc-ld.so.cache1.1",
                entries: entries.clone(),
            });
            s.cache_lookup("libc1.so").map(String::from)
        };
        assert_eq!(
            lookup("fp asimd atomics", 36).as_deref(),
            Some("/cc/tls/atomics/libc1.so")
        );
        assert_eq!(lookup("fp asimd", 36).as_deref(), Some("/cc/tls/libc1.so"));
        assert_eq!(
            lookup("fp asimd atomics", 40).as_deref(),
            Some("/cc/libc1.so")
        );
    }

    #[test]
    fn search_dirs_are_normalised_like_fillin_rpath() {
        assert_eq!(search_dir("/opt/x").as_deref(), Some("/opt/x/"));
        assert_eq!(search_dir("/opt/x/").as_deref(), Some("/opt/x/"));
        assert_eq!(search_dir("/opt/x//").as_deref(), Some("/opt/x/"));
        assert_eq!(search_dir("//").as_deref(), Some("/"));
        assert_eq!(search_dir("/").as_deref(), Some("/"));
        assert_eq!(search_dir("lib"), None);
        assert_eq!(search_dir(""), None);
    }

    #[test]
    fn ld_so_conf_includes_are_followed_under_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(r.join("etc/ld.so.conf"), "include ld.so.conf.d/*.conf\n").unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/a.conf"), "/opt/a\n").unwrap();
        std::fs::write(
            r.join("etc/ld.so.conf.d/b.conf"),
            "/opt/b\ninclude /etc/ld.so.conf\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/skip.txt"), "/opt/no\n").unwrap();
        let mut dirs = Vec::new();
        read_conf(&Host::new(r), "/etc/ld.so.conf", 0, &mut dirs).unwrap();
        assert_eq!(&dirs[..2], ["/opt/a", "/opt/b"]);
        assert!(!dirs.contains(&"/opt/no".to_string()));
    }
}
