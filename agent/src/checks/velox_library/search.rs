//! The loader search: where `ld.so` finds a `DT_NEEDED` name under the executor root (RPATH,
//! `LD_LIBRARY_PATH`-like `library_path`, RUNPATH, `ld.so.cache` or `ld.so.conf`, default dirs).

use super::elf::{elf_kind, host_elf_kind};
use super::ld_cache::{ConfLine, LdCache, parse_ld_so_cache, parse_ld_so_conf, wildcard_match};
use super::settings::Settings;
use crate::check::CheckError;
use crate::host::Host;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How the host's loader searches, read once per run.
pub(super) struct Search<'h> {
    pub host: &'h Host,
    kind: Option<(u8, u16)>,
    library_path: Vec<String>,
    pub cache: Option<LdCache>,
    pub conf_dirs: Vec<String>,
    default_dirs: Vec<String>,
}

impl<'h> Search<'h> {
    pub fn new(host: &'h Host, settings: &Settings) -> Result<Self, CheckError> {
        let arch = host.arch();
        let cache_path = host.path("/etc/ld.so.cache");
        let cache = match std::fs::read(&cache_path) {
            Ok(b) => Some(parse_ld_so_cache(&b).map_err(|e| CheckError::parse(&cache_path, e))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CheckError::io(&cache_path, e)),
        };
        let mut conf_dirs = Vec::new();
        if cache.is_none() {
            read_conf(host, "/etc/ld.so.conf", 0, &mut conf_dirs)?;
        }
        let triplet = match arch {
            "x86_64" => Some("x86_64-linux-gnu"),
            "aarch64" => Some("aarch64-linux-gnu"),
            _ => None,
        };
        let mut default_dirs = Vec::new();
        if let Some(t) = triplet {
            default_dirs.push(format!("/lib/{t}"));
            default_dirs.push(format!("/usr/lib/{t}"));
        }
        if host_elf_kind(arch).is_some_and(|(bits, _)| bits == 64) {
            default_dirs.extend(["/lib64".to_string(), "/usr/lib64".to_string()]);
        }
        default_dirs.extend(["/lib".to_string(), "/usr/lib".to_string()]);
        Ok(Search {
            host,
            kind: host_elf_kind(arch),
            library_path: settings
                .library_path
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            cache,
            conf_dirs,
            default_dirs,
        })
    }

    /// The local path of `host_path` if it exists and is an ELF of the host's kind (the loader
    /// skips files of another class or machine and keeps searching).
    fn candidate(&self, host_path: &str) -> Option<PathBuf> {
        let local = self.host.resolve(host_path).ok()?;
        let mut head = [0u8; 20];
        std::fs::File::open(&local)
            .and_then(|mut f| f.read_exact(&mut head))
            .ok()?;
        match (elf_kind(&head), self.kind) {
            (Some(k), Some(want)) if k != want => None,
            (None, _) => None,
            _ => Some(local),
        }
    }

    /// Finds `name` as `ld.so` would: RPATH (of the object and its loaders, when the object has
    /// no RUNPATH), library_path, RUNPATH, ld.so.cache (or ld.so.conf dirs), default dirs.
    /// Returns (host path, local path).
    pub fn find(
        &self,
        name: &str,
        rpaths: &[String],
        runpath: &[String],
    ) -> Option<(String, PathBuf)> {
        if name.contains('/') {
            return self.candidate(name).map(|l| (name.to_string(), l));
        }
        let in_dir = |d: &String| {
            let p = format!("{}/{name}", d.trim_end_matches('/'));
            self.candidate(&p).map(|l| (p, l))
        };
        let found = rpaths
            .iter()
            .chain(&self.library_path)
            .chain(runpath)
            .find_map(in_dir);
        if found.is_some() {
            return found;
        }
        if let Some(cache) = &self.cache {
            let hit = cache
                .entries
                .iter()
                .filter(|e| e.name == name)
                .find_map(|e| self.candidate(&e.path).map(|l| (e.path.clone(), l)));
            if hit.is_some() {
                return hit;
            }
        } else if let Some(hit) = self.conf_dirs.iter().find_map(in_dir) {
            return Some(hit);
        }
        self.default_dirs.iter().find_map(in_dir)
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

/// `$ORIGIN` expansion of RPATH/RUNPATH entries.
pub(super) fn expand_origin(entries: &[String], origin: &str) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
