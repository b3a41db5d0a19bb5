//! The read: the only part of the check that touches the machine. Summarises the configured
//! libraries and jar entries, walks their `DT_NEEDED` closure through the loader search, finds the
//! libc and libstdc++ the executor would load, reads the CPU flags, runs the dlopen probe, and
//! returns typed [`Facts`].

use super::closure::{LoadError, Obj, origin_of, walk};
use super::cpuinfo::{EXTRA_ISA_FLAGS, parse_cpuinfo_flags, parse_cpuinfo_vendor};
use super::elf::{ElfSummary, host_elf_kind, machine_name, max_version};
use super::elf_read::{elf_summary, string_ranges};
use super::facts::{CpuCoreFacts, CpuNeedsFacts, Facts, JarFacts, LibraryFacts, LoaderFacts};
use super::glibc::{Cpu, Glibc, interp_path, parse_loader_binary};
use super::jar::jar_arch;
use super::needs::{
    content_digest, executor_files, jar_identity, label_safe, missing_rpath_dirs, needs_of,
    spark_facts,
};
use super::probe::{CAN_DLOPEN, probe_all};
use super::producer::{record_of, record_of_map, unreadable};
use super::scan::{Scan, scan_ranges, scan_reader};
use super::search::{Found, Search};
use super::settings::{Settings, default_cpu_flags};
use super::{FileKey, SUMMARY_CACHE_ENTRIES, VeloxLibrary};
use crate::check::{CheckError, Context};
use crate::host::Host;
use cpu_isa::aarch64;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Where the kernel shows cpu0's MIDR_EL1 (arm64).
const MIDR_PATH: &str = "/sys/devices/system/cpu/cpu0/regs/identification/midr_el1";
/// The SMCCC SoC id (arm64).
const SOC_ID_PATH: &str = "/sys/devices/soc0/soc_id";

/// Sets a library's producer record and says which list judges it.
fn set_cpu_needs(lf: &mut LibraryFacts, rec: &CpuNeedsFacts) {
    lf.cpu_needs_source = Some(
        if rec.record == "known" {
            "producer"
        } else {
            "builtin"
        }
        .to_string(),
    );
    lf.cpu_needs = Some(rec.clone());
}

/// MIDR_EL1 from `/proc/cpuinfo`'s `CPU implementer`/`variant`/`part`/`revision` (first
/// processor), when sysfs does not show it.
fn midr_from_cpuinfo(text: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if k.trim() != name {
                return None;
            }
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })
    };
    let implementer = field("CPU implementer")?;
    let part = field("CPU part")?;
    let variant = field("CPU variant").unwrap_or(0);
    let revision = field("CPU revision").unwrap_or(0);
    Some((implementer << 24) | (variant << 20) | (part << 4) | revision)
}

/// The arm64 host's core (MIDR_EL1 from sysfs, else cpuinfo) and SoC.
fn cpu_core(host: &Host, cpuinfo: Option<&str>) -> Result<Option<CpuCoreFacts>, CheckError> {
    let (midr, source) = match host.read_value(MIDR_PATH)? {
        Some(v) => (aarch64::parse_midr(&v).ok(), "sysfs"),
        None => (
            cpuinfo
                .and_then(midr_from_cpuinfo)
                .and_then(|v| aarch64::Midr::from_u64(v).ok()),
            "cpuinfo",
        ),
    };
    let Some(midr) = midr else {
        return Ok(None);
    };
    let soc_id = host.read_value(SOC_ID_PATH)?.filter(|s| !s.is_empty());
    let raw = (u64::from(midr.implementer) << 24)
        | (u64::from(midr.variant) << 20)
        | (u64::from(midr.part) << 4)
        | u64::from(midr.revision);
    Ok(Some(CpuCoreFacts {
        midr: format!("{raw:#010x}"),
        midr_source: source.to_string(),
        core: aarch64::core_name(&midr).map(str::to_string),
        label: aarch64::core_label(&midr),
        machine: soc_id
            .as_deref()
            .and_then(aarch64::machine_from_soc_id)
            .map(|m| m.label().to_string()),
        soc_id,
    }))
}

/// The round's program interpreter, loaded by the first closure that needs it.
type Preloaded = std::cell::OnceCell<Vec<Obj>>;

/// A file read for the check: its summary and its stat.
#[derive(Debug, Clone)]
struct Loaded {
    summary: Arc<ElfSummary>,
    scan: Arc<Scan>,
    size: u64,
    mtime: i64,
    /// (device, inode).
    id: (u64, u64),
}

impl VeloxLibrary {
    /// Summarises the local file `local` through mmap, from the cache when unchanged.
    fn load(&self, local: &Path, shown: &str) -> Result<Loaded, LoadError> {
        let meta = match std::fs::metadata(local) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::Missing(shown.to_string()));
            }
            Err(e) => return Err(LoadError::Unreadable(format!("reading {shown}: {e}"))),
        };
        let key = FileKey::of(&meta);
        let loaded = |(summary, scan)| Loaded {
            summary,
            scan,
            size: key.size,
            mtime: key.mtime,
            id: (key.dev, key.ino),
        };
        if let Some(cached) = self.cached(local, &key) {
            return Ok(loaded(cached));
        }
        if !meta.is_file() {
            return Err(LoadError::Broken(format!("{shown}: not a regular file")));
        }
        let file = std::fs::File::open(local)
            .map_err(|e| LoadError::Unreadable(format!("reading {shown}: {e}")))?;
        let (summary, ranges) = if key.size == 0 {
            (elf_summary(&[]), None)
        } else {
            // SAFETY: the map is read-only and private; a concurrent truncation of the file
            // could SIGBUS, which is the same exposure every ELF reader has (ld.so included).
            let map = unsafe { memmap2::Mmap::map(&file) }
                .map_err(|e| LoadError::Unreadable(format!("mapping {shown}: {e}")))?;
            (elf_summary(&map), string_ranges(&map))
        };
        let summary = Arc::new(summary.map_err(|e| LoadError::Broken(format!("{shown}: {e}")))?);
        // The strings scan reads the constant-data sections (the whole file without section
        // headers) through a small buffer, not the map.
        let scan = std::fs::File::open(local)
            .and_then(|f| match &ranges {
                Some(r) => scan_ranges(f, r),
                None => scan_reader(f),
            })
            .map(Arc::new)
            .map_err(|e| LoadError::Unreadable(format!("reading {shown}: {e}")))?;
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= SUMMARY_CACHE_ENTRIES {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, summary.clone(), scan.clone()));
        }
        Ok(loaded((summary, scan)))
    }

    /// The summary and scan of `local` from the cache, when the file is unchanged since.
    fn cached(&self, local: &Path, key: &FileKey) -> Option<(Arc<ElfSummary>, Arc<Scan>)> {
        let (k, summary, scan) = self.cache.lock().ok()?.get(local).cloned()?;
        (k == *key).then_some((summary, scan))
    }

    /// The ELF summary of `local` alone, for the C library versions: from the cache when a
    /// closure has already read the file, else read now and not cached (a few microseconds
    /// through mmap). Its strings are not scanned: nothing the rules look for is in glibc's or
    /// libstdc++'s own strings, and a round on a node without Velox would scan libc's for nothing.
    fn load_summary(&self, local: &Path) -> Option<Arc<ElfSummary>> {
        let meta = std::fs::metadata(local).ok()?;
        let key = FileKey::of(&meta);
        if let Some((summary, _)) = self.cached(local, &key) {
            return Some(summary);
        }
        if !meta.is_file() || key.size == 0 {
            return None;
        }
        let file = std::fs::File::open(local).ok()?;
        // SAFETY: as in `load`: a read-only private map.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        elf_summary(&map).ok().map(Arc::new)
    }
}

fn file_name(p: &str) -> String {
    p.rsplit(['/', '!']).next().unwrap_or(p).to_string()
}

/// The `.so` entries of a jar, which Gluten extracts into one directory and loads itself:
/// (`JAR!entry`, summary, scan).
type Siblings = Vec<(String, Arc<ElfSummary>, Arc<Scan>)>;

impl VeloxLibrary {
    fn library_facts(path: &str, loaded: Result<Loaded, LoadError>) -> LibraryFacts {
        let mut f = LibraryFacts {
            library: file_name(path),
            path: path.to_string(),
            found: true,
            ..LibraryFacts::default()
        };
        match loaded {
            Err(LoadError::Missing(_)) => f.found = false,
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
                if let Some(b) = &s.build_id {
                    f.identity = Some(label_safe(b));
                    f.identity_source = Some("build_id".into());
                }
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
        jars_configured: usize,
        facts: &mut Facts,
    ) -> Vec<(LibraryFacts, Arc<ElfSummary>, Arc<Scan>, Siblings)> {
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
        let parsed = match self.jars.get(&local, &shown, arch, jars_configured) {
            Ok(p) => p,
            Err((partial, e)) => {
                // What was read before the error is still reported, as before the cache.
                jf.native_arches = partial.native_arches;
                jf.build_info = partial.build_info;
                jf.error = Some(e.to_string());
                facts.jars.push(jf);
                return libs;
            }
        };
        jf.native_arches = parsed.native_arches.clone();
        jf.build_info = parsed.build_info.clone();
        let siblings: Siblings = parsed
            .entries
            .iter()
            .filter_map(|e| {
                e.summary
                    .as_ref()
                    .ok()
                    .map(|s| (e.path.clone(), s.clone(), e.scan.clone()))
            })
            .collect();
        for e in &parsed.entries {
            let n = &e.path;
            match &e.summary {
                Ok(s) => {
                    let mut lf = Self::library_facts(
                        n,
                        Ok(Loaded {
                            summary: s.clone(),
                            scan: e.scan.clone(),
                            size: e.size,
                            mtime: 0,
                            id: (0, 0),
                        }),
                    );
                    lf.mtime_unix_seconds = None;
                    set_cpu_needs(&mut lf, &e.cpu);
                    libs.push((lf, s.clone(), e.scan.clone(), siblings.clone()));
                }
                Err(err) => {
                    let mut lf =
                        Self::library_facts(n, Err(LoadError::Broken(format!("{n}: {err}"))));
                    lf.broken = true;
                    libs.push((
                        lf,
                        Arc::new(ElfSummary::default()),
                        e.scan.clone(),
                        Siblings::new(),
                    ));
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
    /// The executor root's glibc: its loader binary read once per version (cached by identity),
    /// the CPU from the host.
    fn glibc(&self, root: &Host, cpu: &Cpu) -> Glibc {
        let arch = root.arch();
        let binary = interp_path(arch)
            .and_then(|p| root.resolve(p).ok())
            .and_then(|local| {
                let meta = std::fs::metadata(&local).ok()?;
                let key = FileKey::of(&meta);
                if let Some((k, b)) = self.loader_cache.lock().ok().and_then(|c| c.clone())
                    && k == key
                {
                    return Some(b);
                }
                let bytes = std::fs::read(&local).ok()?;
                let b = parse_loader_binary(&bytes);
                if let Ok(mut c) = self.loader_cache.lock() {
                    *c = Some((key, b.clone()));
                }
                Some(b)
            });
        let triplet_dir = match arch {
            "aarch64" => "/lib/aarch64-linux-gnu",
            _ => "/lib/x86_64-linux-gnu",
        };
        let debian = root.resolve(triplet_dir).is_ok_and(|l| l.is_dir());
        Glibc::new(arch, binary.as_ref(), cpu, debian)
    }

    /// The loaded objects every closure starts with: the program interpreter (always in the
    /// process, bound by its soname). Read when the round's first closure is walked, so a round
    /// on a node without Gluten's libraries neither reads nor scans the loader.
    fn preloaded<'p>(&self, search: &Search, cell: &'p Preloaded) -> &'p [Obj] {
        cell.get_or_init(|| {
            let Some(interp) = interp_path(search.root.arch()) else {
                return Vec::new();
            };
            let Found::Yes { path, local } = search.verify(interp) else {
                return Vec::new();
            };
            match self.load(&local, &path) {
                Ok(l) => vec![Obj::new(
                    Vec::new(),
                    &path,
                    l.summary,
                    origin_of(&path).as_deref(),
                    &search.glibc,
                    Some(l.id),
                )],
                Err(_) => Vec::new(),
            }
        })
    }

    /// Walks the closure of a configured library or jar entry.
    fn closure(
        &self,
        search: &Search,
        root: Obj,
        siblings: &Siblings,
        preloaded: &Preloaded,
        lf: &mut LibraryFacts,
    ) {
        let mut objs = self.preloaded(search, preloaded).to_vec();
        for (path, s, scan) in siblings {
            if *path != root.path {
                objs.push(
                    Obj::new(
                        vec![file_name(path)],
                        path,
                        s.clone(),
                        None,
                        &search.glibc,
                        None,
                    )
                    .with_scan(scan.clone()),
                );
            }
        }
        objs.push(root);
        let at = objs.len() - 1;
        let load =
            |local: &Path, shown: &str| self.load(local, shown).map(|l| (l.summary, l.id, l.scan));
        let closure = walk(search, objs, at, &load, lf);
        lf.needs = needs_of(&closure, search.root);
        if let Some(root) = closure.first() {
            lf.rpath_missing = missing_rpath_dirs(root, search.root);
        }
    }

    /// Checks one library file named by the configuration (`paths`, or a preload) in `root`.
    fn check_path(
        &self,
        search: &Search,
        preloaded: &Preloaded,
        shown: &str,
        role: &str,
    ) -> LibraryFacts {
        let root = search.root;
        let (loaded, local) = match root.resolve(shown) {
            Ok(local) => (self.load(&local, shown), Some(local)),
            Err(CheckError::Io { source, path })
                if source.kind() != std::io::ErrorKind::NotFound
                    && source.raw_os_error() != Some(libc::ENOTDIR) =>
            {
                (
                    Err(LoadError::Unreadable(format!(
                        "reading {}: {source}",
                        path.display()
                    ))),
                    None,
                )
            }
            Err(_) => (Err(LoadError::Missing(shown.to_string())), None),
        };
        let opened = loaded
            .as_ref()
            .ok()
            .map(|l| (l.summary.clone(), l.id, l.scan.clone()));
        let mut lf = Self::library_facts(shown, loaded);
        lf.role = role.to_string();
        let kind = host_elf_kind(root.arch());
        if let Some((s, id, scan)) = opened
            && kind.is_none_or(|k| k == (s.class_bits, s.machine))
        {
            if s.build_id.is_none()
                && let Some(local) = &local
            {
                lf.identity = self.digest(local);
                lf.identity_source = lf.identity.as_ref().map(|_| "sha256".to_string());
            }
            if role == "configured"
                && let Some(local) = &local
            {
                set_cpu_needs(&mut lf, &self.cpu_record(local, shown));
            }
            // `$ORIGIN` is the directory of the path as configured (glibc takes it from the
            // name it opened, not from the file's real path).
            let obj = Obj::new(
                vec![shown.to_string()],
                shown,
                s,
                origin_of(shown).as_deref(),
                &search.glibc,
                Some(id),
            )
            .with_scan(scan);
            self.closure(search, obj, &Siblings::new(), preloaded, &mut lf);
        }
        lf
    }

    /// The DWARF producer record of a configured library, once per file identity.
    fn cpu_record(&self, local: &Path, shown: &str) -> Arc<CpuNeedsFacts> {
        let meta = match std::fs::metadata(local) {
            Ok(m) => m,
            Err(e) => return Arc::new(unreadable(format!("reading {shown}: {e}"))),
        };
        let key = FileKey::of(&meta);
        if let Some((k, r)) = self
            .cpu_records
            .lock()
            .ok()
            .and_then(|c| c.get(local).cloned())
            && k == key
        {
            return r;
        }
        self.cpu_records_read.fetch_add(1, Ordering::Relaxed);
        let rec = match std::fs::File::open(local) {
            Err(e) => unreadable(format!("reading {shown}: {e}")),
            Ok(_) if key.size == 0 => record_of(&[]),
            // SAFETY: read-only private map, as in `load`.
            Ok(f) => match unsafe { memmap2::Mmap::map(&f) } {
                Ok(map) => record_of_map(&map),
                Err(e) => unreadable(format!("mapping {shown}: {e}")),
            },
        };
        let rec = Arc::new(rec);
        if let Ok(mut c) = self.cpu_records.lock() {
            if c.len() >= SUMMARY_CACHE_ENTRIES {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, rec.clone()));
        }
        rec
    }

    /// The content digest of a configured library, once per file identity.
    fn digest(&self, local: &Path) -> Option<String> {
        let key = FileKey::of(&std::fs::metadata(local).ok()?);
        if let Some((k, d)) = self.digests.lock().ok()?.get(local).cloned()
            && k == key
        {
            return Some(d);
        }
        let d = content_digest(local).ok()?;
        if let Ok(mut c) = self.digests.lock() {
            if c.len() >= SUMMARY_CACHE_ENTRIES {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, d.clone()));
        }
        Some(d)
    }

    /// Reads everything the check judges (see the module doc).
    pub(super) fn read_facts(
        &self,
        host: &Host,
        cx: &Context<Settings>,
    ) -> Result<Facts, CheckError> {
        let settings = &cx.settings;
        let exec_root = settings
            .executor_root
            .as_ref()
            .map(|r| Host::new(r).with_arch(host.arch()));
        let root = exec_root.as_ref().unwrap_or(host);
        if !root.root().is_dir() {
            return Err(CheckError::Other(format!(
                "executor_root {} is not a directory",
                root.root().display()
            )));
        }

        // CPU flags (always the host's).
        let cpuinfo = host.read_optional("/proc/cpuinfo")?;
        let flags = cpuinfo.as_deref().and_then(parse_cpuinfo_flags);
        let vendor = cpuinfo.as_deref().and_then(parse_cpuinfo_vendor);
        let cpu = Cpu {
            flags: flags.as_ref(),
            vendor: vendor.as_deref(),
        };
        let glibc = self.glibc(root, &cpu);
        let spark = spark_facts(host, cx.shared.spark_defaults.as_deref())?;
        let library_path: Vec<String> = settings
            .library_path
            .iter()
            .map(|p| p.display().to_string())
            .chain(spark.ld_library_path.iter().cloned())
            .collect();
        let search = Search::new(root, glibc, &library_path)?;
        let mut sibling_names: Vec<String> = Vec::new();
        let mut facts = Facts {
            host_arch: host.arch().to_string(),
            executor_root: settings
                .executor_root
                .as_ref()
                .map(|r| r.display().to_string()),
            ld_so_cache_format: search.cache.as_ref().map(|c| c.format.to_string()),
            ld_so_cache_entries: search.cache.as_ref().map(|c| c.entries.len()),
            ld_so_conf_dirs: search.conf_dirs.clone(),
            loader: LoaderFacts {
                glibc_release: search
                    .glibc
                    .release
                    .as_ref()
                    .map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")),
                default_dirs: search.glibc.system_dirs.clone(),
                default_dirs_source: search.glibc.system_dirs_source.to_string(),
                lib: search.glibc.lib.clone(),
                platform: search.glibc.platform.clone(),
                subdirs: search
                    .glibc
                    .subdirs
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect(),
            },
            spark,
            ..Facts::default()
        };
        let preloaded = Preloaded::new();
        let kind_ok = |s: &ElfSummary| {
            host_elf_kind(host.arch()).is_none_or(|k| k == (s.class_bits, s.machine))
        };

        for p in &settings.paths {
            let lf = self.check_path(&search, &preloaded, &p.display().to_string(), "configured");
            facts.libraries.push(lf);
        }
        for jar in &settings.jars {
            let build = self.read_jar(root, jar, settings.jars.len(), &mut facts);
            let jar_id = facts.jars.last().and_then(|j| jar_identity(&j.build_info));
            for (mut lf, s, scan, siblings) in build {
                lf.role = "configured".into();
                sibling_names.extend(siblings.iter().map(|(p, _, _)| p.clone()));
                if lf.identity.is_none() {
                    lf.identity = jar_id.clone();
                    lf.identity_source = jar_id.as_ref().map(|_| "jar_build_info".to_string());
                }
                if lf.error.is_none() && kind_ok(&s) {
                    // Gluten extracts the entries into a directory of its own: `$ORIGIN` there
                    // holds the siblings, which are loaded already.
                    let obj = Obj::new(
                        vec![lf.library.clone()],
                        &lf.path,
                        s,
                        None,
                        &search.glibc,
                        None,
                    )
                    .with_scan(scan);
                    self.closure(&search, obj, &siblings, &preloaded, &mut lf);
                }
                facts.libraries.push(lf);
            }
        }
        // spark.executorEnv.LD_PRELOAD: each must exist and load like a library (a name
        // without `/` is searched for, as ld.so does).
        for p in facts.spark.ld_preload.clone() {
            let shown = if p.contains('/') {
                p.clone()
            } else {
                match search.find(&p, &[], &[], false) {
                    Found::Yes { path, .. } => path,
                    _ => p.clone(),
                }
            };
            let mut lf = self.check_path(&search, &preloaded, &shown, "preload");
            if !p.contains('/') && shown == p {
                lf.found = false;
            }
            facts.libraries.push(lf);
        }
        facts.executor_files = executor_files(
            root,
            &search,
            &facts.spark,
            (
                settings.hadoop_home.as_deref(),
                settings.java_home.as_deref(),
            ),
            &sibling_names,
        );

        // The executor's libc and (when needed) libstdc++, found the way the loader finds them.
        let resolve = |name: &str| -> Option<(String, Arc<ElfSummary>)> {
            let Found::Yes { path, local } = search.find(name, &[], &[], false) else {
                return None;
            };
            self.load_summary(&local).map(|summary| (path, summary))
        };
        let libc = resolve("libc.so.6");
        facts.host_libc = libc.as_ref().map(|(p, _)| p.clone());
        facts.host_glibc_version = host_version(libc.as_ref(), "GLIBC_")
            .map(|v| v.trim_start_matches("GLIBC_").to_string());
        let needs_cxx = facts.libraries.iter().any(|l| {
            l.resolved.contains_key("libstdc++.so.6")
                || l.needed.iter().any(|n| n == "libstdc++.so.6")
        });
        if needs_cxx {
            let cxx = resolve("libstdc++.so.6");
            facts.host_libstdcxx = cxx.as_ref().map(|(p, _)| p.clone());
            facts.host_glibcxx_version = host_version(cxx.as_ref(), "GLIBCXX_");
            facts.host_cxxabi_version = host_version(cxx.as_ref(), "CXXABI_");
        }

        facts.required_cpu_flags = settings.cpu_flags_for(host.arch());
        if host.arch() == "aarch64" {
            facts.cpu_core = cpu_core(host, cpuinfo.as_deref())?;
        }
        if let Some(flags) = &flags {
            facts.cpu_flags = Some(flags.iter().cloned().collect());
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
            facts.load_probe = probe_all(root, &facts, CAN_DLOPEN);
        }
        Ok(facts)
    }
}
