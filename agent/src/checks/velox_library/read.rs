//! The read: the only part of the check that touches the machine. Summarises the configured
//! libraries and jar entries, walks their `DT_NEEDED` closure through the loader search, finds the
//! libc and libstdc++ the executor would load, reads the CPU flags, runs the dlopen probe, and
//! returns typed [`Facts`].

use super::cpuinfo::{EXTRA_ISA_FLAGS, parse_cpuinfo_flags};
use super::elf::{
    ElfSummary, elf_summary, host_elf_kind, machine_name, max_version, parse_version,
};
use super::facts::{Facts, JarFacts, LibraryFacts, MissingDependency, MissingVersion};
use super::jar::jar_arch;
use super::probe::probe_all;
use super::search::{Search, expand_origin};
use super::settings::default_cpu_flags;
use super::{FileKey, SUMMARY_CACHE_ENTRIES, VeloxLibrary};
use crate::check::CheckError;
use crate::host::Host;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file read for the check: its summary and its stat.
#[derive(Debug, Clone)]
struct Loaded {
    summary: Arc<ElfSummary>,
    size: u64,
    mtime: i64,
}

/// Why a library could not be summarised.
enum LoadError {
    Missing,
    /// Not ELF, truncated, malformed: the loader would refuse it too.
    Broken(String),
    /// We could not read it (permissions, I/O).
    Unreadable(String),
}

impl VeloxLibrary {
    /// Summarises the local file `local` through mmap, from the cache when unchanged.
    fn load(&self, local: &Path, shown: &str) -> Result<Loaded, LoadError> {
        let meta = match std::fs::metadata(local) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
            Err(e) => return Err(LoadError::Unreadable(format!("reading {shown}: {e}"))),
        };
        let key = FileKey::of(&meta);
        let loaded = |summary| Loaded {
            summary,
            size: key.size,
            mtime: key.mtime,
        };
        if let Some((k, s)) = self.cache.lock().ok().and_then(|c| c.get(local).cloned())
            && k == key
        {
            return Ok(loaded(s));
        }
        if !meta.is_file() {
            return Err(LoadError::Broken(format!("{shown}: not a regular file")));
        }
        let file = std::fs::File::open(local)
            .map_err(|e| LoadError::Unreadable(format!("reading {shown}: {e}")))?;
        let summary = if key.size == 0 {
            elf_summary(&[])
        } else {
            // SAFETY: the map is read-only and private; a concurrent truncation of the file
            // could SIGBUS, which is the same exposure every ELF reader has (ld.so included).
            let map = unsafe { memmap2::Mmap::map(&file) }
                .map_err(|e| LoadError::Unreadable(format!("mapping {shown}: {e}")))?;
            elf_summary(&map)
        }
        .map_err(|e| LoadError::Broken(format!("{shown}: {e}")))?;
        let summary = Arc::new(summary);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= SUMMARY_CACHE_ENTRIES {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, summary.clone()));
        }
        Ok(loaded(summary))
    }
}

fn file_name(p: &str) -> String {
    p.rsplit(['/', '!']).next().unwrap_or(p).to_string()
}

/// Libraries already in hand that count as resolved (other `.so` entries of the same jar, which
/// Gluten extracts into one directory).
type Siblings = HashMap<String, (String, Arc<ElfSummary>)>;

impl VeloxLibrary {
    /// Walks the dependency closure of `root` (already summarised) and fills `facts`.
    fn closure(
        &self,
        search: &Search,
        root: &Arc<ElfSummary>,
        origin: &str,
        siblings: &Siblings,
        facts: &mut LibraryFacts,
        providers: &mut BTreeMap<String, Arc<ElfSummary>>,
    ) {
        // (summary, its display name, inherited RPATH dirs, its origin dir)
        let mut queue: VecDeque<(Arc<ElfSummary>, String, Vec<String>, String)> = VecDeque::new();
        queue.push_back((
            root.clone(),
            facts.library.clone(),
            Vec::new(),
            origin.to_string(),
        ));
        let mut seen: BTreeMap<String, Option<Arc<ElfSummary>>> = BTreeMap::new();
        let mut objects: Vec<(String, Arc<ElfSummary>)> = Vec::new();
        while let Some((s, who, inherited, origin)) = queue.pop_front() {
            objects.push((who.clone(), s.clone()));
            let mut rpaths = Vec::new();
            if s.runpath.is_empty() {
                rpaths.extend(expand_origin(&s.rpath, &origin));
                rpaths.extend(inherited.iter().cloned());
            }
            let runpath = expand_origin(&s.runpath, &origin);
            for name in &s.needed {
                if seen.contains_key(name) {
                    continue;
                }
                if let Some((shown, sib)) = siblings.get(name) {
                    seen.insert(name.clone(), Some(sib.clone()));
                    facts.resolved.insert(name.clone(), shown.clone());
                    queue.push_back((sib.clone(), name.clone(), rpaths.clone(), origin.clone()));
                    continue;
                }
                match search.find(name, &rpaths, &runpath) {
                    Some((host_path, local)) => match self.load(&local, &host_path) {
                        Ok(l) => {
                            let real = search
                                .host
                                .host_path_of(&local)
                                .unwrap_or_else(|| PathBuf::from(&host_path));
                            let dep_origin = real
                                .parent()
                                .map(|p| p.display().to_string())
                                .unwrap_or_else(|| "/".into());
                            facts.resolved.insert(name.clone(), host_path.clone());
                            seen.insert(name.clone(), Some(l.summary.clone()));
                            providers.insert(host_path, l.summary.clone());
                            queue.push_back((l.summary, name.clone(), rpaths.clone(), dep_origin));
                        }
                        Err(_) => {
                            // Found but unreadable or broken: the loader fails on it too.
                            seen.insert(name.clone(), None);
                            facts.missing_dependencies.push(MissingDependency {
                                name: format!("{name} (at {host_path}: unreadable or not ELF)"),
                                needed_by: who.clone(),
                            });
                        }
                    },
                    None => {
                        seen.insert(name.clone(), None);
                        facts.missing_dependencies.push(MissingDependency {
                            name: name.clone(),
                            needed_by: who.clone(),
                        });
                    }
                }
            }
        }
        // Symbol versions: each need must be defined by the object loaded for that name.
        for (who, s) in &objects {
            for (file, version) in &s.version_needs {
                let Some(Some(provider)) = seen.get(file) else {
                    continue;
                };
                if provider.version_defs.iter().any(|d| d == version) {
                    continue;
                }
                let family = parse_version(version).map(|(f, _)| f).unwrap_or("");
                if facts
                    .missing_versions
                    .iter()
                    .any(|m| &m.version == version && &m.file == file)
                {
                    continue;
                }
                facts.missing_versions.push(MissingVersion {
                    version: version.clone(),
                    file: file.clone(),
                    provider: facts.resolved.get(file).cloned().unwrap_or_default(),
                    provider_max: max_version(
                        provider.version_defs.iter().map(String::as_str),
                        family,
                    ),
                    needed_by: who.clone(),
                });
            }
        }
    }

    fn library_facts(path: &str, loaded: Result<Loaded, LoadError>) -> LibraryFacts {
        let mut f = LibraryFacts {
            library: file_name(path),
            path: path.to_string(),
            found: true,
            ..LibraryFacts::default()
        };
        match loaded {
            Err(LoadError::Missing) => f.found = false,
            Err(LoadError::Broken(e)) => {
                f.error = Some(e);
                f.broken = true;
            }
            Err(LoadError::Unreadable(e)) => f.error = Some(e),
            Ok(l) => {
                let s = &l.summary;
                f.size_bytes = Some(l.size);
                f.mtime_unix_seconds = Some(l.mtime);
                f.build_id = s.build_id.clone();
                f.elf_class_bits = Some(s.class_bits);
                f.machine = Some(machine_name(s.machine));
                f.machine_code = Some(s.machine);
                f.soname = s.soname.clone();
                f.needed = s.needed.clone();
                f.rpath = s.rpath.clone();
                f.runpath = s.runpath.clone();
                f.exec_stack = s.exec_stack;
                let names = || s.version_needs.iter().map(|(_, v)| v.as_str());
                f.max_glibc_required = max_version(names(), "GLIBC_");
                f.max_glibcxx_required = max_version(names(), "GLIBCXX_");
                f.max_cxxabi_required = max_version(names(), "CXXABI_");
            }
        }
        f
    }

    fn read_jar(
        &self,
        host: &Host,
        jar: &Path,
        facts: &mut Facts,
    ) -> Vec<(LibraryFacts, Arc<ElfSummary>, Siblings)> {
        let shown = jar.display().to_string();
        let mut jf = JarFacts {
            path: shown.clone(),
            found: true,
            ..JarFacts::default()
        };
        let mut libs = Vec::new();
        let local = match host.resolve(jar) {
            Ok(l) => l,
            Err(_) => {
                jf.found = false;
                facts.jars.push(jf);
                return libs;
            }
        };
        let arch = jar_arch(host.arch());
        let parsed = match self
            .jars
            .get(&local, &shown, arch, self.settings.jars.len())
        {
            Ok(p) => p,
            Err((partial, e)) => {
                // What was read before the error is still reported, as before the cache.
                jf.native_arches = partial.native_arches;
                jf.build_info = partial.build_info;
                jf.error = Some(e);
                facts.jars.push(jf);
                return libs;
            }
        };
        jf.native_arches = parsed.native_arches.clone();
        jf.build_info = parsed.build_info.clone();
        let siblings: Siblings = parsed
            .entries
            .iter()
            .filter_map(|(n, _, s)| {
                s.as_ref()
                    .ok()
                    .map(|s| (file_name(n), (n.clone(), s.clone())))
            })
            .collect();
        for (n, size, s) in &parsed.entries {
            match s {
                Ok(s) => {
                    let mut lf = Self::library_facts(
                        n,
                        Ok(Loaded {
                            summary: s.clone(),
                            size: *size,
                            mtime: 0,
                        }),
                    );
                    lf.mtime_unix_seconds = None;
                    libs.push((lf, s.clone(), siblings.clone()));
                }
                Err(e) => {
                    let mut lf =
                        Self::library_facts(n, Err(LoadError::Broken(format!("{n}: {e}"))));
                    lf.broken = true;
                    libs.push((lf, Arc::new(ElfSummary::default()), Siblings::new()));
                }
            }
        }
        facts.jars.push(jf);
        libs
    }
}

/// Highest version of `family` a resolved provider defines.
fn host_version(p: Option<&(String, Arc<ElfSummary>)>, family: &str) -> Option<String> {
    p.and_then(|(_, s)| max_version(s.version_defs.iter().map(String::as_str), family))
}

impl VeloxLibrary {
    /// Reads everything the check judges (see the module doc).
    pub(super) fn read_facts(&self, host: &Host) -> Result<Facts, CheckError> {
        let settings = &self.settings;
        let search = Search::new(host, settings)?;
        let mut facts = Facts {
            host_arch: host.arch().to_string(),
            ld_so_cache_format: search.cache.as_ref().map(|c| c.format.to_string()),
            ld_so_cache_entries: search.cache.as_ref().map(|c| c.entries.len()),
            ld_so_conf_dirs: search.conf_dirs.clone(),
            ..Facts::default()
        };

        let mut providers = BTreeMap::new();
        for p in &settings.paths {
            let shown = p.display().to_string();
            let (loaded, origin) = match host.resolve(p) {
                Ok(local) => {
                    let origin = host
                        .host_path_of(&local)
                        .and_then(|h| h.parent().map(|d| d.display().to_string()))
                        .unwrap_or_else(|| "/".into());
                    (self.load(&local, &shown), origin)
                }
                Err(CheckError::Io { source, path })
                    if source.kind() != std::io::ErrorKind::NotFound
                        && source.raw_os_error() != Some(libc::ENOTDIR) =>
                {
                    (
                        Err(LoadError::Unreadable(format!(
                            "reading {}: {source}",
                            path.display()
                        ))),
                        String::new(),
                    )
                }
                Err(_) => (Err(LoadError::Missing), String::new()),
            };
            let summary = loaded.as_ref().ok().map(|l| l.summary.clone());
            let mut lf = Self::library_facts(&shown, loaded);
            if let Some(s) = summary
                && host_elf_kind(host.arch()).is_none_or(|k| k == (s.class_bits, s.machine))
            {
                self.closure(
                    &search,
                    &s,
                    &origin,
                    &Siblings::new(),
                    &mut lf,
                    &mut providers,
                );
            }
            facts.libraries.push(lf);
        }
        for jar in &settings.jars {
            for (mut lf, s, siblings) in self.read_jar(host, jar, &mut facts) {
                if lf.error.is_none()
                    && host_elf_kind(host.arch()).is_none_or(|k| k == (s.class_bits, s.machine))
                {
                    self.closure(
                        &search,
                        &s,
                        "/nonexistent-jni-workspace",
                        &siblings,
                        &mut lf,
                        &mut providers,
                    );
                }
                facts.libraries.push(lf);
            }
        }
        facts.nothing_installed = settings.is_default_paths()
            && settings.jars.is_empty()
            && facts.libraries.iter().all(|l| !l.found);

        // Host libc and (when needed) libstdc++, found the way the loader finds them.
        let resolve_host = |name: &str| -> Option<(String, Arc<ElfSummary>)> {
            let (hp, local) = search.find(name, &[], &[])?;
            self.load(&local, &hp).ok().map(|l| (hp, l.summary))
        };
        let libc = resolve_host("libc.so.6");
        facts.host_libc = libc.as_ref().map(|(p, _)| p.clone());
        facts.host_glibc_version = host_version(libc.as_ref(), "GLIBC_")
            .map(|v| v.trim_start_matches("GLIBC_").to_string());
        let needs_cxx = facts.libraries.iter().any(|l| {
            l.resolved.contains_key("libstdc++.so.6")
                || l.needed.iter().any(|n| n == "libstdc++.so.6")
        });
        if needs_cxx {
            let cxx = resolve_host("libstdc++.so.6");
            facts.host_libstdcxx = cxx.as_ref().map(|(p, _)| p.clone());
            facts.host_glibcxx_version = host_version(cxx.as_ref(), "GLIBCXX_");
            facts.host_cxxabi_version = host_version(cxx.as_ref(), "CXXABI_");
        }

        // CPU flags.
        facts.required_cpu_flags = settings.cpu_flags_for(host.arch());
        if let Some(flags) = host
            .read_optional("/proc/cpuinfo")?
            .as_deref()
            .and_then(parse_cpuinfo_flags)
        {
            facts.missing_cpu_flags = Some(
                facts
                    .required_cpu_flags
                    .iter()
                    .filter(|f| !flags.contains(*f))
                    .cloned()
                    .collect(),
            );
            let isa: BTreeSet<String> = facts
                .required_cpu_flags
                .iter()
                .map(String::as_str)
                .chain(default_cpu_flags(host.arch()).iter().copied())
                .chain(EXTRA_ISA_FLAGS)
                .filter(|f| flags.contains(*f))
                .map(str::to_string)
                .collect();
            facts.isa_cpu_flags = Some(isa.into_iter().collect());
        }

        if settings.load_probe {
            facts.load_probe = probe_all(host, &facts);
        }
        Ok(facts)
    }
}
