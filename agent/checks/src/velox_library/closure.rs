//! The dependency closure as glibc builds it (`_dl_map_object_deps`, `_dl_map_object`,
//! `_dl_new_object`, `_dl_check_map_versions`): breadth first; a `DT_NEEDED` name first matches
//! an object already loaded (by the names it was loaded under, its `DT_SONAME`, its path), then is
//! searched for; a file found under a new name that is already loaded (same device and inode) is
//! that object; `$ORIGIN` of an object is the directory of the path the loader opened (not its
//! real path); a missing object is remembered, so it is reported once. Then every version need
//! is checked against the object loaded for that name: one without version definitions passes,
//! a weak need never fails.

use super::elf::{ElfSummary, max_version, parse_version};
use super::facts::{LibraryFacts, MissingDependency, MissingVersion};
use super::glibc::Glibc;
use super::scan::Scan;
use super::search::{Found, Search, search_dir};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

/// One object of the link map.
#[derive(Debug, Clone)]
pub(super) struct Obj {
    /// Names it was loaded under (`l_libname`).
    pub names: Vec<String>,
    /// The path the loader opened (`l_name`), `JAR!entry` for a jar entry.
    pub path: String,
    /// `None` for a dependency that was not found (glibc's faked object in trace mode).
    pub summary: Option<Arc<ElfSummary>>,
    /// The object that caused it to be loaded (`l_loader`).
    pub loader: Option<usize>,
    /// `$ORIGIN`-expanded, normalised `DT_RPATH` dirs; empty when it has a `DT_RUNPATH`.
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// (device, inode) of the file, for the "already loaded" test.
    pub id: Option<(u64, u64)>,
    /// Loaded before the walk (the interpreter, jar siblings): walked when first needed.
    pub walked: bool,
    /// What its strings say (section 3 rules).
    pub scan: Option<Arc<Scan>>,
    /// `$ORIGIN` (`l_origin`), when known.
    pub origin: Option<String>,
}

impl Obj {
    /// An object opened at `path` (the loader's name for it), `$ORIGIN` its directory.
    pub fn new(
        names: Vec<String>,
        path: &str,
        summary: Arc<ElfSummary>,
        origin: Option<&str>,
        glibc: &Glibc,
        id: Option<(u64, u64)>,
    ) -> Self {
        let expand = |entries: &[String]| -> Vec<String> {
            entries
                .iter()
                .filter_map(|e| expand_dst(e, origin, glibc))
                .filter_map(|d| search_dir(&d))
                .collect()
        };
        let runpath = expand(&summary.runpath);
        let rpath = if summary.runpath.is_empty() {
            expand(&summary.rpath)
        } else {
            Vec::new()
        };
        Obj {
            names,
            path: path.to_string(),
            summary: Some(summary),
            loader: None,
            rpath,
            runpath,
            id,
            walked: false,
            scan: None,
            origin: origin.map(String::from),
        }
    }

    /// The same object with its strings scan.
    pub fn with_scan(mut self, scan: Arc<Scan>) -> Self {
        self.scan = Some(scan);
        self
    }

    fn matches(&self, name: &str) -> bool {
        self.path == name
            || self.names.iter().any(|n| n == name)
            || self
                .summary
                .as_ref()
                .and_then(|s| s.soname.as_deref())
                .is_some_and(|s| s == name)
    }
}

/// The directory part of a path as `_dl_new_object` cuts it (`/x` for `/x/lib.so`, `/` for
/// `/lib.so`).
pub(super) fn origin_of(path: &str) -> Option<String> {
    let i = path.rfind('/')?;
    Some(if i == 0 {
        "/".to_string()
    } else {
        path[..i].to_string()
    })
}

/// glibc's `_dl_dst_substitute` on one RPATH/RUNPATH entry: `$ORIGIN`, `$LIB`, `$PLATFORM`
/// (also in braces). A name continuing with an identifier character is not a DST; an entry
/// whose DST has no value is dropped; any other `$` stays.
pub(super) fn expand_dst(entry: &str, origin: Option<&str>, g: &Glibc) -> Option<String> {
    let mut out = String::with_capacity(entry.len());
    let mut rest = entry;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (curly, body) = match after.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, after),
        };
        let mut hit = None;
        for (name, value) in [
            ("ORIGIN", origin),
            ("PLATFORM", Some(g.platform.as_str())),
            ("LIB", Some(g.lib.as_str())),
        ] {
            let Some(tail) = body.strip_prefix(name) else {
                continue;
            };
            let next = tail.chars().next();
            if curly {
                if next != Some('}') {
                    continue;
                }
            } else if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let used = 1 + usize::from(curly) * 2 + name.len();
            hit = Some((value, used));
            break;
        }
        match hit {
            Some((Some(v), used)) => {
                out.push_str(v);
                rest = &rest[i + used..];
            }
            Some((None, _)) => return None,
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Why a library could not be summarised (a configured one, or one the closure walk found).
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    /// No such file (the path as shown).
    #[error("{0}: no such file")]
    Missing(String),
    /// Not ELF, truncated, malformed: the loader would refuse it too.
    #[error("{0}")]
    Broken(String),
    /// We could not read it (permissions, I/O).
    #[error("{0}")]
    Unreadable(String),
}

/// Loads a file the search found: its summary and (device, inode), or why it cannot be read.
pub(super) type LoadFn<'a> =
    dyn Fn(&Path, &str) -> Result<(Arc<ElfSummary>, (u64, u64), Arc<Scan>), LoadError> + 'a;

/// Walks the closure of `objs[root]` (the other objects are already loaded: the interpreter,
/// jar siblings) and fills `facts` (`resolved`, `missing_dependencies`, `missing_versions`).
/// Returns the objects of the closure (the root first, in load order), for the caller's scans.
pub(super) fn walk(
    search: &Search,
    mut objs: Vec<Obj>,
    root: usize,
    load: &LoadFn,
    facts: &mut LibraryFacts,
) -> Vec<Obj> {
    let mut queue = VecDeque::from([root]);
    objs[root].walked = true;
    let mut order = Vec::new();
    while let Some(i) = queue.pop_front() {
        order.push(i);
        let Some(summary) = objs[i].summary.clone() else {
            continue;
        };
        // RPATH of this object and of every object that loaded it, when it has no RUNPATH.
        let mut chain = Vec::new();
        if summary.runpath.is_empty() {
            let mut at = Some(i);
            let mut hops = 0;
            while let Some(j) = at {
                chain.extend(objs[j].rpath.iter().cloned());
                at = objs[j].loader;
                hops += 1;
                if hops > objs.len() {
                    break;
                }
            }
        }
        let runpath = objs[i].runpath.clone();
        let nodeflib = summary.flags_1 & object::elf::DF_1_NODEFLIB.0 != 0;
        let who = if i == root {
            facts.library.clone()
        } else {
            objs[i].names.first().cloned().unwrap_or_default()
        };
        for name in &summary.needed {
            if let Some(j) = objs.iter().position(|o| o.matches(name)) {
                if objs[j].summary.is_some() {
                    facts.resolved.insert(name.clone(), objs[j].path.clone());
                    if !objs[j].walked {
                        objs[j].walked = true;
                        objs[j].loader = Some(i);
                        queue.push_back(j);
                    }
                }
                continue;
            }
            let missing = |reason: Option<String>| MissingDependency {
                name: name.clone(),
                needed_by: who.clone(),
                reason,
            };
            // A name with `/` is opened as is, after DST expansion with its loader's origin.
            let found = if name.contains('/') {
                match expand_dst(name, objs[i].origin.as_deref(), &search.glibc) {
                    Some(expanded) => search.verify(&expanded),
                    None => Found::No,
                }
            } else {
                search.find(name, &chain, &runpath, nodeflib)
            };
            match found {
                Found::Yes { path, local } => match load(&local, &path) {
                    Ok((s, id, scan)) => {
                        if let Some(j) = objs.iter().position(|o| o.id == Some(id)) {
                            // The same file under another name: glibc adds the name.
                            objs[j].names.push(name.clone());
                            facts.resolved.insert(name.clone(), objs[j].path.clone());
                            continue;
                        }
                        let origin = origin_of(&path);
                        let mut o = Obj::new(
                            vec![name.clone()],
                            &path,
                            s,
                            origin.as_deref(),
                            &search.glibc,
                            Some(id),
                        );
                        o.loader = Some(i);
                        o.walked = true;
                        o.scan = Some(scan);
                        facts.resolved.insert(name.clone(), path);
                        objs.push(o);
                        queue.push_back(objs.len() - 1);
                    }
                    Err(e) => {
                        facts
                            .missing_dependencies
                            .push(missing(Some(e.to_string())));
                        objs.push(fake(name));
                    }
                },
                Found::Bad { path, reason } => {
                    facts
                        .missing_dependencies
                        .push(missing(Some(format!("{path}: {reason}"))));
                    objs.push(fake(name));
                }
                Found::No => {
                    facts.missing_dependencies.push(missing(None));
                    objs.push(fake(name));
                }
            }
        }
    }
    // Symbol versions: each need against the object loaded under that name.
    for &i in &order {
        let Some(s) = objs[i].summary.clone() else {
            continue;
        };
        let who = if i == root {
            facts.library.clone()
        } else {
            objs[i].names.first().cloned().unwrap_or_default()
        };
        for (file, version) in &s.version_needs {
            let Some(p) = objs.iter().find(|o| o.matches(file)) else {
                continue;
            };
            let Some(provider) = &p.summary else {
                continue;
            };
            if !provider.has_verdef
                || provider.version_defs.iter().any(|d| d == version)
                || provider.version_base.as_deref() == Some(version.as_str())
            {
                continue;
            }
            if facts
                .missing_versions
                .iter()
                .any(|m| &m.version == version && &m.file == file)
            {
                continue;
            }
            let family = parse_version(version).map(|(f, _)| f).unwrap_or("");
            facts.missing_versions.push(MissingVersion {
                version: version.clone(),
                file: file.clone(),
                provider: p.path.clone(),
                provider_max: max_version(provider.version_defs.iter().map(String::as_str), family),
                needed_by: who.clone(),
            });
        }
    }
    order.into_iter().map(|i| objs[i].clone()).collect()
}

fn fake(name: &str) -> Obj {
    Obj {
        names: vec![name.to_string()],
        path: String::new(),
        summary: None,
        loader: None,
        rpath: Vec::new(),
        runpath: Vec::new(),
        id: None,
        walked: true,
        scan: None,
        origin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velox_library::glibc::{Cpu, LoaderBinary};

    fn glibc() -> Glibc {
        Glibc::new(
            "x86_64",
            Some(&LoaderBinary {
                release: Some(vec![2, 41]),
                system_dirs: None,
            }),
            &Cpu {
                flags: None,
                vendor: None,
            },
            true,
        )
    }

    #[test]
    fn dst_expansion_follows_glibc() {
        let g = glibc();
        let o = Some("/opt/a");
        assert_eq!(
            expand_dst("$ORIGIN/../lib", o, &g).as_deref(),
            Some("/opt/a/../lib")
        );
        assert_eq!(
            expand_dst("${ORIGIN}/x", o, &g).as_deref(),
            Some("/opt/a/x")
        );
        assert_eq!(
            expand_dst("/usr/$LIB/x", o, &g).as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/x")
        );
        assert_eq!(
            expand_dst("/p/$PLATFORM", o, &g).as_deref(),
            Some("/p/x86_64")
        );
        assert_eq!(
            expand_dst("/p/$ORIGINAL", o, &g).as_deref(),
            Some("/p/$ORIGINAL")
        );
        assert_eq!(
            expand_dst("/p/${ORIGIN", o, &g).as_deref(),
            Some("/p/${ORIGIN")
        );
        assert_eq!(expand_dst("$ORIGIN/x", None, &g), None);
        assert_eq!(expand_dst("/a$", o, &g).as_deref(), Some("/a$"));
    }

    #[test]
    fn origin_is_cut_like_dl_new_object() {
        assert_eq!(origin_of("/opt/lib/libx.so").as_deref(), Some("/opt/lib"));
        assert_eq!(origin_of("/libx.so").as_deref(), Some("/"));
        assert_eq!(origin_of("/a/b/../c/libx.so").as_deref(), Some("/a/b/../c"));
        assert_eq!(origin_of("libx.so"), None);
    }
}
