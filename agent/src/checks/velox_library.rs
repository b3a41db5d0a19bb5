//! `velox_library`: can this host load Gluten's native libraries? Reads the ELF headers of the
//! configured `.so` files (and the ones inside Gluten bundle jars) without running them, resolves
//! their `DT_NEEDED` closure the way `ld.so` would under the host root, compares the symbol
//! versions they need with what the host's libraries define, and the CPU flags they need with
//! `/proc/cpuinfo`.

use crate::check::{Check, CheckError, CheckSettings, Outcome, ParseError};
use crate::checks::Registration;
use crate::host::Host;
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endian, Endianness};
use proto::{Finding, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where Gluten's native libraries live when installed outside the jar (`spark.gluten.sql
/// .columnar.libpath` style deployments).
pub const DEFAULT_PATHS: [&str; 2] = [
    "/opt/gluten/lib/libvelox.so",
    "/opt/gluten/lib/libgluten.so",
];

/// Flags of Velox's default x86 build (`CPU_TARGET=avx`: `-mavx2 -mfma -mavx -mf16c -mlzcnt
/// -mbmi2`, LZCNT shows as `abm`) plus the SSE4.2 baseline (node-requirements §2, checks 2.1-2.2).
pub const X86_64_CPU_FLAGS: [&str; 8] = [
    "avx", "avx2", "fma", "f16c", "bmi2", "abm", "sse4_2", "popcnt",
];

/// Flags of the generic aarch64 build (`-march=armv8-a+crc+crypto`, NEON) (§2, check 2.5).
pub const AARCH64_CPU_FLAGS: [&str; 6] = ["asimd", "crc32", "aes", "pmull", "sha1", "sha2"];

/// ISA flags worth comparing across a fleet besides the required ones (§2, check 2.4).
const EXTRA_ISA_FLAGS: [&str; 12] = [
    "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "bmi1", "lzcnt", "sse4_1", "ssse3",
    "sve", "sve2", "atomics",
];

/// glibc from which `dlopen` refuses a library whose `PT_GNU_STACK` asks for an executable stack
/// (glibc 2.41 NEWS; node-requirements §1, check 1.7).
const EXECSTACK_REFUSED_FROM_GLIBC: [u32; 2] = [2, 41];

/// Largest native library read out of a jar into memory.
const MAX_JAR_ENTRY_BYTES: u64 = 2 << 30;

/// Bound of the per-file ELF summary cache.
const SUMMARY_CACHE_ENTRIES: usize = 4096;

/// `[velox_library]` settings.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Native libraries to check, host paths. Empty: none (jars and CPU flags only).
    pub paths: Vec<PathBuf>,
    /// Gluten bundle jars whose `linux/<arch>/lib*.so` entries and build info are checked.
    pub jars: Vec<PathBuf>,
    /// CPU flags the libraries need; default depends on the host architecture (see README).
    pub required_cpu_flags: Option<Vec<String>>,
    /// Extra library directories searched like `LD_LIBRARY_PATH` (after RPATH, before RUNPATH).
    pub library_path: Vec<PathBuf>,
    /// dlopen each library in a short-lived child process (only when the host root is `/`).
    pub load_probe: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            paths: DEFAULT_PATHS.iter().map(PathBuf::from).collect(),
            jars: Vec::new(),
            required_cpu_flags: None,
            library_path: Vec::new(),
            load_probe: false,
        }
    }
}

impl CheckSettings for Settings {
    fn validate(&self) -> Result<(), String> {
        for (key, list) in [
            ("paths", &self.paths),
            ("jars", &self.jars),
            ("library_path", &self.library_path),
        ] {
            if let Some(p) = list.iter().find(|p| !p.is_absolute()) {
                return Err(format!(
                    "`{key}` ({}) must be an absolute host path",
                    p.display()
                ));
            }
        }
        if let Some(flags) = &self.required_cpu_flags
            && let Some(f) = flags
                .iter()
                .find(|f| f.is_empty() || f.contains(char::is_whitespace))
        {
            return Err(format!(
                "`required_cpu_flags` ({f:?}) must be single words as /proc/cpuinfo spells them"
            ));
        }
        Ok(())
    }
}

impl Settings {
    fn is_default_paths(&self) -> bool {
        self.paths.len() == DEFAULT_PATHS.len()
            && self
                .paths
                .iter()
                .zip(DEFAULT_PATHS)
                .all(|(a, b)| a == Path::new(b))
    }

    /// The CPU flags required on a host of architecture `arch`.
    pub fn cpu_flags_for(&self, arch: &str) -> Vec<String> {
        match &self.required_cpu_flags {
            Some(f) => f.clone(),
            None => default_cpu_flags(arch)
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Default required CPU flags of an architecture (none for an architecture Gluten does not ship).
pub fn default_cpu_flags(arch: &str) -> &'static [&'static str] {
    match arch {
        "x86_64" => &X86_64_CPU_FLAGS,
        "aarch64" => &AARCH64_CPU_FLAGS,
        _ => &[],
    }
}

// ------------------------------------------------------------------------------------------------
// ELF summary (pure)

/// What the check needs from one ELF file: header, dynamic section, versions, notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfSummary {
    /// 32 or 64.
    pub class_bits: u8,
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// `PT_GNU_STACK` has `PF_X`; `None` without a `PT_GNU_STACK` header.
    pub exec_stack: Option<bool>,
    /// `NT_GNU_BUILD_ID`, lowercase hex.
    pub build_id: Option<String>,
    /// `.gnu.version_r`: (file, version), e.g. ("libc.so.6", "GLIBC_2.17").
    pub version_needs: Vec<(String, String)>,
    /// `.gnu.version_d` names, without the base (file name) entry.
    pub version_defs: Vec<String>,
}

/// A short name of an ELF `e_machine`.
pub fn machine_name(m: u16) -> String {
    match m {
        x if x == elf::EM_X86_64.0 => "x86_64".into(),
        x if x == elf::EM_AARCH64.0 => "aarch64".into(),
        x if x == elf::EM_386.0 => "i386".into(),
        x if x == elf::EM_ARM.0 => "arm".into(),
        x if x == elf::EM_PPC64.0 => "ppc64".into(),
        x if x == elf::EM_S390.0 => "s390x".into(),
        x if x == elf::EM_RISCV.0 => "riscv".into(),
        other => format!("machine {other}"),
    }
}

/// The (class bits, `e_machine`) of the libraries a host of architecture `arch` loads.
pub fn host_elf_kind(arch: &str) -> Option<(u8, u16)> {
    match arch {
        "x86_64" => Some((64, elf::EM_X86_64.0)),
        "aarch64" => Some((64, elf::EM_AARCH64.0)),
        "i686" | "i386" => Some((32, elf::EM_386.0)),
        "ppc64le" | "ppc64" => Some((64, elf::EM_PPC64.0)),
        "s390x" => Some((64, elf::EM_S390.0)),
        "riscv64" => Some((64, elf::EM_RISCV.0)),
        _ => None,
    }
}

/// Class and machine from the first bytes of a file; `None` when it is not ELF.
pub fn elf_kind(head: &[u8]) -> Option<(u8, u16)> {
    if head.len() < 20 || head[..4] != *b"\x7fELF" {
        return None;
    }
    let bits = match head[4] {
        1 => 32,
        2 => 64,
        _ => return None,
    };
    let m = [head[18], head[19]];
    let machine = match head[5] {
        2 => u16::from_be_bytes(m),
        _ => u16::from_le_bytes(m),
    };
    Some((bits, machine))
}

/// Summarises an ELF file from its bytes (a mmap: only the pages touched are read).
pub fn elf_summary(data: &[u8]) -> Result<ElfSummary, ParseError> {
    if data.len() < 4 || data[..4] != *b"\x7fELF" {
        let head: String = data
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(ParseError::new(format!(
            "not an ELF file (starts with [{head}], {} bytes)",
            data.len()
        )));
    }
    match data.get(4) {
        Some(1) => summarize::<elf::FileHeader32<Endianness>>(data, 32),
        Some(2) => summarize::<elf::FileHeader64<Endianness>>(data, 64),
        other => Err(ParseError::new(format!(
            "truncated or invalid ELF: EI_CLASS is {other:?}"
        ))),
    }
}

fn table_fits(data: &[u8], what: &str, off: u64, n: u64, entsize: u64) -> Result<(), ParseError> {
    let end = n
        .checked_mul(entsize)
        .and_then(|s| s.checked_add(off))
        .unwrap_or(u64::MAX);
    if n > 0 && end > data.len() as u64 {
        return Err(ParseError::new(format!(
            "truncated ELF: {what} at offset {off} beyond file size {}",
            data.len()
        )));
    }
    Ok(())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn summarize<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    bits: u8,
) -> Result<ElfSummary, ParseError> {
    let hsize = std::mem::size_of::<H>();
    if data.len() < hsize {
        return Err(ParseError::new(format!(
            "truncated ELF: header needs {hsize} bytes, file size {}",
            data.len()
        )));
    }
    let bad =
        |what: &str, e: object::read::Error| ParseError::new(format!("invalid ELF: {what}: {e}"));
    let header = H::parse(data).map_err(|e| bad("header", e))?;
    let endian = header.endian().map_err(|e| bad("header", e))?;
    let phoff: u64 = header.e_phoff(endian).into();
    table_fits(
        data,
        "program headers",
        phoff,
        header.e_phnum(endian) as u64,
        header.e_phentsize(endian) as u64,
    )?;
    let shoff: u64 = header.e_shoff(endian).into();
    table_fits(
        data,
        "section headers",
        shoff,
        header.e_shnum(endian) as u64,
        header.e_shentsize(endian) as u64,
    )?;
    let mut s = ElfSummary {
        class_bits: bits,
        big_endian: endian.is_big_endian(),
        machine: header.e_machine(endian).0,
        ..ElfSummary::default()
    };

    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| bad("program headers", e))?;
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_GNU_STACK => s.exec_stack = Some(ph.p_flags(endian).0 & elf::PF_X.0 != 0),
            elf::PT_NOTE if s.build_id.is_none() => {
                let off: u64 = ph.p_offset(endian).into();
                let size: u64 = ph.p_filesz(endian).into();
                table_fits(data, "PT_NOTE segment", off, 1, size)?;
                if let Ok(Some(mut notes)) = ph.notes(endian, data) {
                    while let Ok(Some(note)) = notes.next() {
                        if note.name() == b"GNU" && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                            s.build_id =
                                Some(note.desc().iter().map(|b| format!("{b:02x}")).collect());
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;
    if let Some((dyns, link)) = sections
        .dynamic(endian, data)
        .map_err(|e| bad(".dynamic", e))?
    {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| bad(".dynamic strings", e))?;
        for d in dyns {
            let tag = d.d_tag(endian);
            if tag == elf::DT_NULL {
                break;
            }
            if !d.is_string(endian) {
                continue;
            }
            let v = d
                .string(endian, strings)
                .map_err(|e| bad(".dynamic string", e))
                .map(lossy)?;
            match tag {
                t if t == elf::DT_NEEDED => s.needed.push(v),
                t if t == elf::DT_SONAME => s.soname = Some(v),
                t if t == elf::DT_RPATH => s.rpath.extend(split_path_list(&v)),
                t if t == elf::DT_RUNPATH => s.runpath.extend(split_path_list(&v)),
                _ => {}
            }
        }
    }
    if let Some((mut it, link)) = sections
        .gnu_verneed(endian, data)
        .map_err(|e| bad(".gnu.version_r", e))?
    {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| bad(".gnu.version_r strings", e))?;
        while let Some((need, mut auxs)) = it.next().map_err(|e| bad(".gnu.version_r", e))? {
            let file = lossy(
                need.file(endian, strings)
                    .map_err(|e| bad(".gnu.version_r file", e))?,
            );
            while let Some(aux) = auxs.next().map_err(|e| bad(".gnu.version_r aux", e))? {
                let name = aux
                    .name(endian, strings)
                    .map_err(|e| bad(".gnu.version_r name", e))?;
                s.version_needs.push((file.clone(), lossy(name)));
            }
        }
    }
    if let Some((mut it, link)) = sections
        .gnu_verdef(endian, data)
        .map_err(|e| bad(".gnu.version_d", e))?
    {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| bad(".gnu.version_d strings", e))?;
        while let Some((def, mut auxs)) = it.next().map_err(|e| bad(".gnu.version_d", e))? {
            if def.vd_flags.get(endian).0 & elf::VER_FLG_BASE.0 != 0 {
                continue;
            }
            if let Some(aux) = auxs.next().map_err(|e| bad(".gnu.version_d aux", e))? {
                let name = aux
                    .name(endian, strings)
                    .map_err(|e| bad(".gnu.version_d name", e))?;
                s.version_defs.push(lossy(name));
            }
        }
    }
    Ok(s)
}

fn split_path_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(':').filter(|p| !p.is_empty()).map(str::to_string)
}

/// A symbol version split into its family and numbers: `GLIBC_2.17` -> ("GLIBC_", [2, 17]).
/// `None` for names without numbers (`GLIBC_PRIVATE`).
pub fn parse_version(v: &str) -> Option<(&str, Vec<u32>)> {
    let i = v.find(|c: char| c.is_ascii_digit())?;
    let (family, nums) = v.split_at(i);
    let parts: Option<Vec<u32>> = nums.split('.').map(|n| n.parse().ok()).collect();
    Some((family, parts?))
}

/// The highest version of `family` (e.g. `GLIBC_`) among `names`.
pub fn max_version<'a>(names: impl IntoIterator<Item = &'a str>, family: &str) -> Option<String> {
    names
        .into_iter()
        .filter_map(|n| {
            parse_version(n)
                .filter(|(f, _)| *f == family)
                .map(|(_, v)| (v, n))
        })
        .max()
        .map(|(_, n)| n.to_string())
}

// ------------------------------------------------------------------------------------------------
// ld.so.cache and ld.so.conf (pure)

/// One `ld.so.cache` entry: soname and the path ldconfig found it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub name: String,
    pub path: String,
    pub flags: i32,
}

/// A parsed `/etc/ld.so.cache`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCache {
    /// `glibc-ld.so.cache1.1` (glibc >= 2.32 writes only this) or `ld.so-1.7.0` (old, possibly
    /// followed by a new-format section, which glibc prefers).
    pub format: &'static str,
    pub entries: Vec<CacheEntry>,
}

const CACHE_MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
const CACHE_MAGIC_OLD: &[u8] = b"ld.so-1.7.0";

fn u32_at(b: &[u8], off: usize, big: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

fn cstr_at(b: &[u8], off: usize) -> Option<String> {
    let rest = b.get(off..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(lossy(&rest[..end]))
}

/// Parses `/etc/ld.so.cache` in either format (glibc `elf/cache.c`, `sysdeps/generic/dl-cache.h`).
pub fn parse_ld_so_cache(b: &[u8]) -> Result<LdCache, ParseError> {
    if b.starts_with(CACHE_MAGIC_NEW) {
        return parse_cache_new(b).map(|entries| LdCache {
            format: "glibc-ld.so.cache1.1",
            entries,
        });
    }
    if !b.starts_with(CACHE_MAGIC_OLD) {
        return Err(ParseError::new(
            "unknown format: neither \"glibc-ld.so.cache1.1\" nor \"ld.so-1.7.0\" magic",
        ));
    }
    // struct cache_file { char magic[11]; u32 nlibs (at 12); struct { i32 flags; u32 key, value; } libs[]; }
    let n = u32_at(b, 12, false).ok_or_else(|| ParseError::new("truncated old-format header"))?
        as usize;
    let libs_end = n
        .checked_mul(12)
        .and_then(|x| x.checked_add(16))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            ParseError::new(format!(
                "old format: {n} entries do not fit in {} bytes",
                b.len()
            ))
        })?;
    // A new-format section may follow, aligned to 8 bytes; glibc uses it when present.
    let new_off = (libs_end + 7) & !7;
    if b.get(new_off..)
        .is_some_and(|r| r.starts_with(CACHE_MAGIC_NEW))
    {
        return parse_cache_new(&b[new_off..]).map(|entries| LdCache {
            format: "ld.so-1.7.0",
            entries,
        });
    }
    let strings = &b[libs_end..];
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let e = 16 + i * 12;
        let flags = u32_at(b, e, false).unwrap_or(0) as i32;
        let (k, v) = (
            u32_at(b, e + 4, false).unwrap_or(u32::MAX) as usize,
            u32_at(b, e + 8, false).unwrap_or(u32::MAX) as usize,
        );
        let name = cstr_at(strings, k)
            .ok_or_else(|| ParseError::new(format!("entry {i}: name offset {k} out of range")))?;
        let path = cstr_at(strings, v)
            .ok_or_else(|| ParseError::new(format!("entry {i}: path offset {v} out of range")))?;
        entries.push(CacheEntry { name, path, flags });
    }
    Ok(LdCache {
        format: "ld.so-1.7.0",
        entries,
    })
}

/// The new format; string offsets are relative to the start of this header.
fn parse_cache_new(b: &[u8]) -> Result<Vec<CacheEntry>, ParseError> {
    // magic[20], u32 nlibs, u32 len_strings, u8 flags (byte order: 2 little, 3 big), pad[3],
    // u32 extension_offset, u32 unused[3]; then 24-byte entries { i32 flags; u32 key, value;
    // u32 osversion; u64 hwcap }.
    const HEADER: usize = 48;
    let big = b.get(28) == Some(&3);
    let n =
        u32_at(b, 20, big).ok_or_else(|| ParseError::new("truncated new-format header"))? as usize;
    n.checked_mul(24)
        .and_then(|x| x.checked_add(HEADER))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            ParseError::new(format!(
                "new format: {n} entries do not fit in {} bytes",
                b.len()
            ))
        })?;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let e = HEADER + i * 24;
        let flags = u32_at(b, e, big).unwrap_or(0) as i32;
        let (k, v) = (
            u32_at(b, e + 4, big).unwrap_or(u32::MAX) as usize,
            u32_at(b, e + 8, big).unwrap_or(u32::MAX) as usize,
        );
        let name = cstr_at(b, k)
            .ok_or_else(|| ParseError::new(format!("entry {i}: name offset {k} out of range")))?;
        let path = cstr_at(b, v)
            .ok_or_else(|| ParseError::new(format!("entry {i}: path offset {v} out of range")))?;
        entries.push(CacheEntry { name, path, flags });
    }
    Ok(entries)
}

/// One meaningful line of `ld.so.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfLine {
    Dir(String),
    /// `include` pattern, as written (may be relative, may hold `*` and `?`).
    Include(String),
}

/// Parses `ld.so.conf` text: directories (one or more per line, separated by whitespace, `:` or
/// `,`), `include PATTERN...`, `#` comments; `hwcap` lines are ignored, as ldconfig does.
pub fn parse_ld_so_conf(text: &str) -> Vec<ConfLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => out.extend(words.map(|w| ConfLine::Include(w.to_string()))),
            Some("hwcap") => {}
            _ => out.extend(
                line.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
                    .filter(|d| !d.is_empty())
                    // `dir=TYPE` is an old libc5 syntax; the dir is before the `=`.
                    .map(|d| ConfLine::Dir(d.split('=').next().unwrap_or(d).to_string())),
            ),
        }
    }
    out
}

/// `fnmatch` with `*` and `?` only (what `include /etc/ld.so.conf.d/*.conf` needs).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

// ------------------------------------------------------------------------------------------------
// /proc/cpuinfo and build info (pure)

/// The CPU flags of `/proc/cpuinfo`: x86 `flags`, aarch64 `Features`. Flags every processor has
/// (a flag missing on one CPU is missing: the executor thread may run there). `None` when no
/// processor lists any (an unknown fact, e.g. some emulators).
pub fn parse_cpuinfo_flags(text: &str) -> Option<BTreeSet<String>> {
    let mut all: Option<BTreeSet<String>> = None;
    // On a big host every processor usually lists the same flags: intersect each distinct line
    // once (192 identical lines cost one split, not 192).
    let mut seen: Vec<&str> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !matches!(key.trim(), "flags" | "Features") {
            continue;
        }
        let value = value.trim();
        if seen.contains(&value) {
            continue;
        }
        seen.push(value);
        let set: BTreeSet<String> = value.split_whitespace().map(str::to_string).collect();
        all = Some(match all {
            None => set,
            Some(prev) => prev.intersection(&set).cloned().collect(),
        });
    }
    all
}

/// Java `.properties` (the subset `gluten-build-info.properties` uses): `key=value` or
/// `key: value`, `#`/`!` comments.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Facts

/// A dependency the loader would not find.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct MissingDependency {
    pub name: String,
    pub needed_by: String,
}

/// A symbol version needed but not defined by the library that provides it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct MissingVersion {
    pub version: String,
    /// The dependency expected to define it (`libc.so.6`).
    pub file: String,
    /// Host path of that dependency as resolved.
    pub provider: String,
    /// Highest version of the same family the provider defines.
    pub provider_max: Option<String>,
    pub needed_by: String,
}

/// One checked library (a file on the host or an entry of a jar).
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct LibraryFacts {
    /// File name (the metric label).
    pub library: String,
    /// Host path, or `JAR!entry` for a jar entry.
    pub path: String,
    pub found: bool,
    /// Why it could not be read or parsed.
    pub error: Option<String>,
    /// The error means the library is broken (not ELF, truncated) rather than unreadable to us.
    #[serde(skip)]
    pub broken: bool,
    pub size_bytes: Option<u64>,
    pub mtime_unix_seconds: Option<i64>,
    pub build_id: Option<String>,
    pub elf_class_bits: Option<u8>,
    pub machine: Option<String>,
    #[serde(skip)]
    pub machine_code: Option<u16>,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// Every dependency of the closure, name -> host path.
    pub resolved: BTreeMap<String, String>,
    pub missing_dependencies: Vec<MissingDependency>,
    pub missing_versions: Vec<MissingVersion>,
    pub max_glibc_required: Option<String>,
    pub max_glibcxx_required: Option<String>,
    pub max_cxxabi_required: Option<String>,
    pub exec_stack: Option<bool>,
}

/// A Gluten bundle jar.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct JarFacts {
    pub path: String,
    pub found: bool,
    pub error: Option<String>,
    /// `linux/<dir>/` names holding native libraries (`amd64`, `aarch64`).
    pub native_arches: Vec<String>,
    pub build_info: BTreeMap<String, String>,
}

/// Everything the check observed.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub host_arch: String,
    pub libraries: Vec<LibraryFacts>,
    pub jars: Vec<JarFacts>,
    /// Format of `/etc/ld.so.cache`; `None` when absent (then `ld.so.conf` dirs are searched).
    pub ld_so_cache_format: Option<String>,
    pub ld_so_cache_entries: Option<usize>,
    /// Directories from `/etc/ld.so.conf` (only read without a cache).
    pub ld_so_conf_dirs: Vec<String>,
    pub host_libc: Option<String>,
    /// Highest `GLIBC_x.y` the host's libc.so.6 defines (a lower bound of its release).
    pub host_glibc_version: Option<String>,
    /// Only when a library needs libstdc++.so.6.
    pub host_libstdcxx: Option<String>,
    pub host_glibcxx_version: Option<String>,
    pub host_cxxabi_version: Option<String>,
    pub required_cpu_flags: Vec<String>,
    /// `None` when /proc/cpuinfo is missing or lists no flags.
    pub missing_cpu_flags: Option<Vec<String>>,
    /// The ISA-relevant flags present (required ones plus AVX-512, SVE, ...), sorted.
    pub isa_cpu_flags: Option<Vec<String>>,
    /// `paths` is the default and nothing exists there, and no jar is configured.
    pub nothing_installed: bool,
    pub load_probe: Vec<ProbeResult>,
}

/// Outcome of one dlopen probe.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub path: String,
    /// `loaded`, `failed`, `crashed`, `timed_out`, `skipped`.
    pub result: String,
    pub detail: Option<String>,
}

// ------------------------------------------------------------------------------------------------
// Evaluate (pure)

fn version_number(v: &Option<String>) -> Option<Vec<u32>> {
    v.as_deref().and_then(parse_version).map(|(_, n)| n)
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// The verdict from the facts.
pub fn evaluate(f: &Facts, settings: &Settings, host_arch: &str) -> Outcome {
    let mut o = Outcome::with_facts(f);
    let host_kind = host_elf_kind(host_arch);
    let host_glibc = version_number(&f.host_glibc_version);
    let checked: Vec<&LibraryFacts> = f.libraries.iter().filter(|l| l.found).collect();

    if f.nothing_installed {
        o.push(Finding::new(
            Status::Warn,
            format!(
                "no Velox library at {}; set [velox_library] paths or jars",
                list(
                    &settings
                        .paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                )
            ),
        ));
    }
    for l in &f.libraries {
        if !l.found {
            if !f.nothing_installed {
                o.push(
                    Finding::new(
                        Status::Fail,
                        format!(
                            "{}: no such file (the executor would fail with UnsatisfiedLinkError)",
                            l.path
                        ),
                    )
                    .about(&l.path),
                );
            }
            continue;
        }
        if let Some(e) = &l.error {
            let status = if l.broken {
                Status::Fail
            } else {
                Status::Unknown
            };
            o.push(Finding::new(status, e.clone()).about(&l.path));
            continue;
        }
        if let (Some((bits, machine)), Some(code), Some(lbits)) =
            (host_kind, l.machine_code, l.elf_class_bits)
        {
            if code != machine {
                o.push(
                    Finding::new(
                        Status::Fail,
                        format!(
                            "{} is built for {}, host is {host_arch}",
                            l.path,
                            machine_name(code)
                        ),
                    )
                    .about(&l.path),
                );
                continue;
            }
            if lbits != bits {
                o.push(
                    Finding::new(
                        Status::Fail,
                        format!("{} is {lbits}-bit ELF, host loads {bits}-bit", l.path),
                    )
                    .about(&l.path),
                );
                continue;
            }
        }
        if !l.missing_dependencies.is_empty() {
            let names: Vec<String> = l
                .missing_dependencies
                .iter()
                .map(|m| {
                    if m.needed_by == l.library {
                        m.name.clone()
                    } else {
                        format!("{} (needed by {})", m.name, m.needed_by)
                    }
                })
                .collect();
            o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{}: {} not found in RPATH/RUNPATH, library_path, ld.so cache or default dirs",
                        l.library,
                        list(&names)
                    ),
                )
                .about(&l.path),
            );
        }
        for m in &l.missing_versions {
            let has = m
                .provider_max
                .as_deref()
                .map(|v| format!("defines up to {v}"))
                .unwrap_or_else(|| "defines none of that family".into());
            let who = if m.needed_by == l.library {
                l.library.clone()
            } else {
                format!("{} (via {})", m.needed_by, l.library)
            };
            o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{who} needs {} from {}, but {} {has}",
                        m.version, m.file, m.provider
                    ),
                )
                .about(&l.path),
            );
        }
        if l.exec_stack == Some(true) {
            let refused = host_glibc
                .as_ref()
                .is_some_and(|v| v.as_slice() >= EXECSTACK_REFUSED_FROM_GLIBC.as_slice());
            let (status, tail) = if refused {
                (
                    Status::Fail,
                    format!(
                        "host glibc {} >= 2.41 refuses to dlopen it",
                        f.host_glibc_version.as_deref().unwrap_or("?")
                    ),
                )
            } else {
                (
                    Status::Warn,
                    "glibc >= 2.41 refuses to dlopen it (clear it with `execstack -c`)".to_string(),
                )
            };
            o.push(
                Finding::new(
                    status,
                    format!(
                        "{} asks for an executable stack (PT_GNU_STACK RWE): {tail}",
                        l.library
                    ),
                )
                .about(&l.path),
            );
        }
    }
    for j in &f.jars {
        if !j.found {
            o.push(Finding::new(Status::Fail, format!("{}: no such file", j.path)).about(&j.path));
        } else if let Some(e) = &j.error {
            o.push(Finding::new(Status::Fail, e.clone()).about(&j.path));
        } else if j.native_arches.is_empty() {
            o.push(
                Finding::new(
                    Status::Fail,
                    format!("{}: no native libraries under linux/<arch>/", j.path),
                )
                .about(&j.path),
            );
        } else if !j.native_arches.iter().any(|a| a == jar_arch(host_arch)) {
            o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{} has native libraries for {} only, host is {host_arch} (needs linux/{}/)",
                        j.path,
                        list(&j.native_arches),
                        jar_arch(host_arch)
                    ),
                )
                .about(&j.path),
            );
        }
    }
    for p in &f.load_probe {
        let status = match p.result.as_str() {
            "loaded" => continue,
            "skipped" => Status::Unknown,
            _ => Status::Fail,
        };
        o.push(
            Finding::new(
                status,
                format!(
                    "dlopen probe of {}: {}{}",
                    p.path,
                    p.result,
                    p.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            )
            .about(&p.path),
        );
    }

    // CPU flags.
    let who = if checked.is_empty() {
        "required_cpu_flags".to_string()
    } else {
        list(
            &checked
                .iter()
                .map(|l| l.library.clone())
                .collect::<Vec<_>>(),
        )
    };
    match &f.missing_cpu_flags {
        None if !f.required_cpu_flags.is_empty() => o.push(Finding::new(
            Status::Unknown,
            format!(
                "cannot tell whether the CPU has {}: /proc/cpuinfo is missing or lists no flags",
                list(&f.required_cpu_flags)
            ),
        )),
        Some(missing) if !missing.is_empty() => o.push(Finding::new(
            Status::Fail,
            format!(
                "{who} needs {}: not in /proc/cpuinfo flags (SIGILL at load)",
                list(missing)
            ),
        )),
        _ => {}
    }

    // Summary, gauges, inventory.
    let deps: usize = checked.iter().map(|l| l.resolved.len()).sum();
    let mut parts = Vec::new();
    if !checked.is_empty() {
        parts.push(format!(
            "{}: {deps} dependencies resolved",
            list(
                &checked
                    .iter()
                    .map(|l| l.library.clone())
                    .collect::<Vec<_>>()
            )
        ));
        if let Some(g) = checked
            .iter()
            .filter_map(|l| l.max_glibc_required.clone())
            .max_by_key(|v| version_number(&Some(v.clone())))
        {
            parts.push(format!(
                "needs {g} (host defines up to {})",
                f.host_glibc_version.as_deref().unwrap_or("unknown")
            ));
        }
    } else if settings.paths.is_empty() && settings.jars.is_empty() {
        parts.push("no library configured".to_string());
    }
    if f.missing_cpu_flags.is_some() {
        parts.push(format!(
            "CPU has all {} required flags",
            f.required_cpu_flags.len()
        ));
    }
    o.ok_summary = Some(parts.join("; "));

    for l in &checked {
        o.gauge(
            "gluten_node_velox_library_missing_dependencies",
            "Dependencies of the library the dynamic loader would not find.",
            &[("library", &l.library)],
            l.missing_dependencies.len() as f64,
        );
        if let Some(size) = l.size_bytes {
            o.gauge(
                "gluten_node_velox_library_size_bytes",
                "Size of the native library file.",
                &[("library", &l.library)],
                size as f64,
            );
        }
        o.gauge(
            "gluten_node_velox_library_info",
            "Always 1; labels identify the native library build.",
            &[
                ("library", &l.library),
                ("build_id", l.build_id.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
    if let Some(m) = &f.missing_cpu_flags {
        o.gauge(
            "gluten_node_velox_library_missing_cpu_flags",
            "Required CPU flags not in /proc/cpuinfo.",
            &[],
            m.len() as f64,
        );
    }
    let build_ids: Vec<String> = checked
        .iter()
        .filter(|l| l.library == "libvelox.so")
        .chain(checked.iter().filter(|l| l.library != "libvelox.so"))
        .filter_map(|l| l.build_id.clone())
        .take(if checked.iter().any(|l| l.library == "libvelox.so") {
            1
        } else {
            usize::MAX
        })
        .collect();
    if !build_ids.is_empty() {
        o.inventory
            .push(("velox_library.build_id".into(), build_ids.join(",")));
    }
    if let Some(flags) = &f.isa_cpu_flags {
        o.inventory.push(("cpu.flags".into(), flags.join(" ")));
    }
    if let Some(v) = f
        .jars
        .iter()
        .find_map(|j| j.build_info.get("gluten_version"))
    {
        o.inventory
            .push(("velox_library.gluten_version".into(), v.clone()));
    }
    if let Some(v) = &f.host_glibc_version {
        o.inventory
            .push(("velox_library.host_glibc".into(), v.clone()));
    }
    o
}

/// The JVM's `os.arch` for a kernel architecture (the jar's `linux/<arch>/` dir).
pub fn jar_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        other => other,
    }
}

// ------------------------------------------------------------------------------------------------
// Reading the host

/// Identity of a file version, for the summary and jar caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// What a jar holds for one host architecture, parsed once per jar version: the ELF summaries
/// of its `linux/<arch>/lib*.so` entries (decompressed in memory, then dropped) and its build
/// info. Cached by [`FileKey`] so a warm round does not decompress the jar again.
#[derive(Debug, Default)]
struct ParsedJar {
    native_arches: Vec<String>,
    build_info: BTreeMap<String, String>,
    /// `JAR!entry`, its uncompressed size, its summary.
    entries: Vec<(String, u64, Result<Arc<ElfSummary>, ParseError>)>,
}

/// A cached [`ParsedJar`]: the jar's version and the architecture it was parsed for.
type JarCacheEntry = (FileKey, String, Arc<ParsedJar>);

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

pub struct VeloxLibrary {
    settings: Settings,
    cache: Mutex<HashMap<PathBuf, (FileKey, Arc<ElfSummary>)>>,
    /// Parsed jars by local path; at most one entry per configured jar.
    jar_cache: Mutex<HashMap<PathBuf, JarCacheEntry>>,
    /// `.so` entries decompressed out of jars so far (a warm round adds none).
    jar_entries_decompressed: AtomicU64,
}

impl VeloxLibrary {
    pub fn new(settings: Settings) -> Self {
        VeloxLibrary {
            settings,
            cache: Mutex::new(HashMap::new()),
            jar_cache: Mutex::new(HashMap::new()),
            jar_entries_decompressed: AtomicU64::new(0),
        }
    }

    /// How many `.so` entries this check has decompressed out of jars since it was created: a
    /// jar is read again only when its (device, inode, size, mtime) changes. For tests.
    pub fn jar_entries_decompressed(&self) -> u64 {
        self.jar_entries_decompressed.load(Ordering::Relaxed)
    }

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

/// How the host's loader searches, read once per run.
struct Search<'h> {
    host: &'h Host,
    kind: Option<(u8, u16)>,
    library_path: Vec<String>,
    cache: Option<LdCache>,
    conf_dirs: Vec<String>,
    default_dirs: Vec<String>,
}

impl<'h> Search<'h> {
    fn new(host: &'h Host, settings: &Settings) -> Result<Self, CheckError> {
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
    fn find(&self, name: &str, rpaths: &[String], runpath: &[String]) -> Option<(String, PathBuf)> {
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
fn expand_origin(entries: &[String], origin: &str) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
        .collect()
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

    fn library_facts(&self, path: &str, loaded: Result<Loaded, LoadError>) -> LibraryFacts {
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
        let parsed = match self.parse_jar_cached(&local, &shown, arch) {
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
                    let mut lf = self.library_facts(
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
                    let mut lf = self.library_facts(n, Err(LoadError::Broken(format!("{n}: {e}"))));
                    lf.broken = true;
                    libs.push((lf, Arc::new(ElfSummary::default()), Siblings::new()));
                }
            }
        }
        facts.jars.push(jf);
        libs
    }

    /// The jar at `local` parsed for `arch`, from the cache while its (device, inode, size,
    /// mtime) is unchanged. A jar that fails to parse is not cached (the next round tries again)
    /// and comes back with what was read before the error.
    fn parse_jar_cached(
        &self,
        local: &Path,
        shown: &str,
        arch: &str,
    ) -> Result<Arc<ParsedJar>, (ParsedJar, String)> {
        let key = std::fs::metadata(local).ok().map(|m| FileKey::of(&m));
        if let Some(key) = key
            && let Some((k, a, p)) = self
                .jar_cache
                .lock()
                .ok()
                .and_then(|c| c.get(local).cloned())
            && k == key
            && a == arch
        {
            return Ok(p);
        }
        let mut parsed = ParsedJar::default();
        if let Err(e) = self.parse_jar(local, shown, arch, &mut parsed) {
            return Err((parsed, e));
        }
        let parsed = Arc::new(parsed);
        if let Some(key) = key
            && let Ok(mut c) = self.jar_cache.lock()
        {
            // Bounded by the configured jars: one entry per jar path.
            if !c.contains_key(local) && c.len() >= self.settings.jars.len().max(1) {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, arch.to_string(), parsed.clone()));
        }
        Ok(parsed)
    }

    /// Reads a jar (a zip): which `linux/<arch>/` dirs hold libraries, its build info, and the
    /// ELF summary of each `linux/<arch>/lib*.so` entry, decompressed in memory.
    fn parse_jar(
        &self,
        local: &Path,
        shown: &str,
        arch: &str,
        out: &mut ParsedJar,
    ) -> Result<(), String> {
        let file = std::fs::File::open(local).map_err(|e| format!("reading {shown}: {e}"))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{shown}: not a jar: {e}"))?;
        let want = format!("linux/{arch}/");
        let mut wanted = Vec::new();
        for i in 0..zip.len() {
            let Ok(name) = zip
                .by_index_raw(i)
                .and_then(|e| e.name().map(|n| n.to_string()))
            else {
                continue;
            };
            if let Some(rest) = name.strip_prefix("linux/")
                && let Some((arch, file)) = rest.split_once('/')
                && file.starts_with("lib")
                && file.contains(".so")
                && !file.contains('/')
            {
                if !out.native_arches.iter().any(|a| a == arch) {
                    out.native_arches.push(arch.to_string());
                }
                if name.starts_with(&want) {
                    wanted.push(i);
                }
            }
            if name.rsplit('/').next() == Some("gluten-build-info.properties") {
                let mut text = String::new();
                zip.by_index(i)
                    .map_err(|e| format!("{shown}!{name}: {e}"))?
                    .take(1 << 20)
                    .read_to_string(&mut text)
                    .map_err(|e| format!("{shown}!{name}: {e}"))?;
                out.build_info = parse_properties(&text);
            }
        }
        out.native_arches.sort();
        for i in wanted {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| format!("{shown}: entry {i}: {e}"))?;
            let name = entry
                .name()
                .map_err(|e| format!("{shown}: entry {i}: {e}"))?
                .to_string();
            let shown_entry = format!("{shown}!{name}");
            if entry.size() > MAX_JAR_ENTRY_BYTES {
                return Err(format!(
                    "{shown_entry}: {} bytes is too large",
                    entry.size()
                ));
            }
            let mut buf = Vec::with_capacity(entry.size() as usize);
            self.jar_entries_decompressed
                .fetch_add(1, Ordering::Relaxed);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| format!("{shown_entry}: {e}"))?;
            let size = buf.len() as u64;
            out.entries
                .push((shown_entry, size, elf_summary(&buf).map(Arc::new)));
        }
        Ok(())
    }
}

/// Highest version of `family` a resolved provider defines.
fn host_version(p: Option<&(String, Arc<ElfSummary>)>, family: &str) -> Option<String> {
    p.and_then(|(_, s)| max_version(s.version_defs.iter().map(String::as_str), family))
}

impl Check for VeloxLibrary {
    fn name(&self) -> &'static str {
        "velox_library"
    }

    fn run(&self, host: &Host) -> Result<Outcome, CheckError> {
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
            let mut lf = self.library_facts(&shown, loaded);
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
        Ok(evaluate(&facts, settings, host.arch()))
    }
}

// ------------------------------------------------------------------------------------------------
// load_probe: a real dlopen in a forked child under a deadline.

/// Deadline of one dlopen probe.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn probe_all(host: &Host, facts: &Facts) -> Vec<ProbeResult> {
    let rooted = host.root() != Path::new("/");
    facts
        .libraries
        .iter()
        .filter(|l| l.found && l.error.is_none() && !l.path.contains('!'))
        .map(|l| {
            if rooted {
                ProbeResult {
                    path: l.path.clone(),
                    result: "skipped".into(),
                    detail: Some(format!(
                        "dlopen cannot be rooted at host_root {}",
                        host.root().display()
                    )),
                }
            } else {
                probe(&l.path)
            }
        })
        .collect()
}

/// dlopens `path` in a forked child, which reports over a pipe and exits; a crash in the
/// library's initialisers (SIGILL on a CPU without AVX2) kills only the child.
fn probe(path: &str) -> ProbeResult {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork, pipe};
    let result = |r: &str, d: Option<String>| ProbeResult {
        path: path.to_string(),
        result: r.to_string(),
        detail: d,
    };
    let Ok(cpath) = std::ffi::CString::new(path) else {
        return result("failed", Some("path holds a NUL byte".into()));
    };
    let Ok((rd, wr)) = pipe() else {
        return result("skipped", Some("pipe failed".into()));
    };
    // SAFETY: the child only calls dlopen/dlerror/write/_exit. dlopen after fork in a threaded
    // process can deadlock on a lock held by another thread at fork time; the deadline and
    // SIGKILL below bound that, and the agent itself is never at risk.
    match unsafe { fork() } {
        Err(e) => result("skipped", Some(format!("fork failed: {e}"))),
        Ok(ForkResult::Child) => {
            drop(rd);
            // SAFETY: plain libc calls in the child; it never returns to Rust code.
            unsafe {
                let h = libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                let (msg, code) = if h.is_null() {
                    let e = libc::dlerror();
                    let s = if e.is_null() {
                        &b"dlopen failed"[..]
                    } else {
                        std::ffi::CStr::from_ptr(e).to_bytes()
                    };
                    (s, 1)
                } else {
                    (&b""[..], 0)
                };
                use std::os::fd::AsRawFd;
                libc::write(wr.as_raw_fd(), msg.as_ptr().cast(), msg.len().min(4096));
                libc::_exit(code);
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let t0 = std::time::Instant::now();
            let status = loop {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) if t0.elapsed() < PROBE_DEADLINE => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Ok(WaitStatus::StillAlive) => {
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        break None;
                    }
                    Ok(s) => break Some(s),
                    Err(_) => break None,
                }
            };
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).take(4096).read_to_string(&mut msg);
            match status {
                Some(WaitStatus::Exited(_, 0)) => result("loaded", None),
                Some(WaitStatus::Exited(_, _)) => result("failed", Some(msg)),
                Some(WaitStatus::Signaled(_, sig, _)) => {
                    result("crashed", Some(format!("child killed by {sig}")))
                }
                _ => result(
                    "timed_out",
                    Some(format!("no answer within {}s", PROBE_DEADLINE.as_secs())),
                ),
            }
        }
    }
}

/// This check in the registry. Temporary: until `VeloxLibrary` is a `NodeCheck` itself
/// (velox lane), [`Legacy`] runs the old `Check::run` in `read` and hands its outcome through
/// `evaluate`; the documented form is `Registration::of::<VeloxLibrary>()`.
pub const REGISTRATION: Registration = Registration::of::<Legacy>();

/// The old `Check` face of `VeloxLibrary` as a `NodeCheck` (see [`REGISTRATION`]).
pub struct Legacy(VeloxLibrary, Settings);

/// The old outcome, carried from `read` to `evaluate`; serialises as its facts.
pub struct LegacyFacts(Outcome);

impl Serialize for LegacyFacts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.facts.serialize(s)
    }
}

impl crate::check::NodeCheck for Legacy {
    const NAME: &'static str = "velox_library";
    type Settings = Settings;
    type Facts = LegacyFacts;

    fn build(settings: Settings, _shared: &crate::check::Shared) -> Self {
        Legacy(VeloxLibrary::new(settings.clone()), settings)
    }

    fn settings(&self) -> &Settings {
        &self.1
    }

    fn read(&self, host: &Host) -> Result<LegacyFacts, CheckError> {
        self.0.run(host).map(LegacyFacts)
    }

    fn evaluate(facts: &LegacyFacts, _settings: &Settings) -> crate::check::Verdict {
        let o = &facts.0;
        crate::check::Verdict {
            findings: o.findings.clone(),
            ok_summary: o.ok_summary.clone(),
            metrics: o.metrics.clone(),
            inventory: o.inventory.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a tiny shared object with gcc (no libc needed) into `dir`.
    fn cc(dir: &Path, name: &str, src: &str, args: &[&str]) -> Vec<u8> {
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, src).unwrap();
        let out = dir.join(name);
        let o = std::process::Command::new("gcc")
            .args(["-shared", "-fPIC", "-nostdlib", "-Wl,--build-id=sha1", "-o"])
            .arg(&out)
            .arg(&c)
            .args(args)
            .output()
            .expect("running gcc");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    }

    fn sample() -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let map = d.path().join("v.map");
        std::fs::write(
            &map,
            "GLIBC_2.17 { global: a; local: *; };\nGLIBC_2.35 { global: b; } GLIBC_2.17;\n",
        )
        .unwrap();
        let base = cc(
            d.path(),
            "libc.so.6",
            "int a(void){return 1;} int b(void){return 2;}",
            &[
                "-Wl,-soname,libc.so.6",
                &format!("-Wl,--version-script={}", map.display()),
            ],
        );
        assert!(!base.is_empty());
        let libc = d.path().join("libc.so.6");
        cc(
            d.path(),
            "libx.so",
            "extern int b(void); int x(void){return b();}",
            &[
                "-Wl,-soname,libx.so",
                "-Wl,--enable-new-dtags,-rpath,$ORIGIN/deps:/opt/y",
                "-Wl,-z,execstack",
                libc.to_str().unwrap(),
            ],
        )
    }

    #[test]
    fn elf_summary_reads_what_the_linker_wrote() {
        let s = elf_summary(&sample()).unwrap();
        assert_eq!((s.class_bits, s.machine), (64, elf::EM_X86_64.0));
        assert_eq!(s.soname.as_deref(), Some("libx.so"));
        assert_eq!(s.needed, ["libc.so.6"]);
        assert_eq!(s.runpath, ["$ORIGIN/deps", "/opt/y"]);
        assert!(s.rpath.is_empty());
        assert_eq!(s.exec_stack, Some(true));
        assert_eq!(s.build_id.as_ref().map(String::len), Some(40));
        assert_eq!(
            s.version_needs,
            [("libc.so.6".to_string(), "GLIBC_2.35".to_string())]
        );
    }

    #[test]
    fn elf_summary_reads_version_definitions() {
        let d = tempfile::tempdir().unwrap();
        let map = d.path().join("v.map");
        std::fs::write(&map, "GLIBCXX_3.4 { global: a; local: *; };\nGLIBCXX_3.4.30 { global: b; } GLIBCXX_3.4;\nCXXABI_1.3.13 { global: c; };\n").unwrap();
        let b = cc(
            d.path(),
            "libstdc++.so.6",
            "int a(void){return 1;} int b(void){return 2;} int c(void){return 3;}",
            &[
                "-Wl,-soname,libstdc++.so.6",
                &format!("-Wl,--version-script={}", map.display()),
            ],
        );
        let s = elf_summary(&b).unwrap();
        assert_eq!(
            s.version_defs,
            ["GLIBCXX_3.4", "GLIBCXX_3.4.30", "CXXABI_1.3.13"]
        );
        assert_eq!(
            max_version(s.version_defs.iter().map(String::as_str), "GLIBCXX_").as_deref(),
            Some("GLIBCXX_3.4.30")
        );
    }

    #[test]
    fn elf_summary_errors_name_the_problem() {
        let good = sample();
        let e = elf_summary(&good[..good.len() - 100])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("truncated ELF: section headers at offset"),
            "{e}"
        );
        assert!(
            e.ends_with(&format!("beyond file size {}", good.len() - 100)),
            "{e}"
        );
        let e = elf_summary(&good[..40]).unwrap_err().to_string();
        assert_eq!(e, "truncated ELF: header needs 64 bytes, file size 40");
        let e = elf_summary(b"PK\x03\x04rest").unwrap_err().to_string();
        assert_eq!(e, "not an ELF file (starts with [50 4b 03 04], 8 bytes)");
        let e = elf_summary(b"").unwrap_err().to_string();
        assert_eq!(e, "not an ELF file (starts with [], 0 bytes)");
        let mut patched = good.clone();
        patched[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(elf_summary(&patched).unwrap().machine, 183);
        assert_eq!(elf_kind(&patched), Some((64, 183)));
        assert_eq!(machine_name(183), "aarch64");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("GLIBC_2.17"), Some(("GLIBC_", vec![2, 17])));
        assert_eq!(parse_version("GLIBC_PRIVATE"), None);
        let v = [
            "GLIBC_2.9",
            "GLIBC_2.17",
            "GLIBC_PRIVATE",
            "GLIBCXX_3.4.30",
            "GLIBC_2.2.5",
        ];
        assert_eq!(max_version(v, "GLIBC_").as_deref(), Some("GLIBC_2.17"));
        assert_eq!(max_version(v, "CXXABI_"), None);
    }

    /// Writes a new-format cache (`glibc-ld.so.cache1.1`) holding `entries`.
    fn new_cache(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = 48 + 24 * entries.len();
        let mut offs = Vec::new();
        for (k, v) in entries {
            let ko = base + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = base + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            offs.push((ko as u32, vo as u32));
        }
        let mut b = CACHE_MAGIC_NEW.to_vec();
        b.extend((entries.len() as u32).to_le_bytes());
        b.extend((strings.len() as u32).to_le_bytes());
        b.extend([2, 0, 0, 0]);
        b.extend([0u8; 16]);
        for (k, v) in offs {
            b.extend(0x0303i32.to_le_bytes());
            b.extend(k.to_le_bytes());
            b.extend(v.to_le_bytes());
            b.extend([0u8; 12]);
        }
        b.extend(strings);
        b
    }

    #[test]
    fn ld_so_cache_new_format() {
        let b = new_cache(&[
            ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"),
            ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ]);
        let c = parse_ld_so_cache(&b).unwrap();
        assert_eq!(c.format, "glibc-ld.so.cache1.1");
        assert_eq!(
            c.entries[1],
            CacheEntry {
                name: "libc.so.6".into(),
                path: "/lib/x86_64-linux-gnu/libc.so.6".into(),
                flags: 0x0303
            }
        );
    }

    #[test]
    fn ld_so_cache_old_format_alone_and_with_a_new_section() {
        // Old format: strings relative to the end of the entries.
        let mut b = CACHE_MAGIC_OLD.to_vec();
        b.push(0);
        b.extend(1u32.to_le_bytes());
        b.extend(0x0303i32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(10u32.to_le_bytes());
        b.extend(b"libm.so.6\0/lib/libm.so.6\0");
        let c = parse_ld_so_cache(&b).unwrap();
        assert_eq!(c.format, "ld.so-1.7.0");
        assert_eq!(
            (c.entries[0].name.as_str(), c.entries[0].path.as_str()),
            ("libm.so.6", "/lib/libm.so.6")
        );
        // Compat layout (glibc < 2.32 default): old header and entries, then an 8-aligned new
        // section whose offsets are relative to itself; glibc reads the new one.
        let mut b = CACHE_MAGIC_OLD.to_vec();
        b.push(0);
        b.extend(1u32.to_le_bytes());
        b.extend([0u8; 12]);
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        b.extend(new_cache(&[("libnew.so.1", "/usr/lib/libnew.so.1")]));
        let c = parse_ld_so_cache(&b).unwrap();
        assert_eq!(c.format, "ld.so-1.7.0");
        assert_eq!(c.entries[0].name, "libnew.so.1");
    }

    #[test]
    fn ld_so_cache_refuses_garbage_with_a_reason() {
        assert!(
            parse_ld_so_cache(b"hello")
                .unwrap_err()
                .to_string()
                .contains("unknown format")
        );
        let mut b = new_cache(&[("a", "b")]);
        b.truncate(60);
        assert!(
            parse_ld_so_cache(&b)
                .unwrap_err()
                .to_string()
                .contains("do not fit")
        );
    }

    #[test]
    fn ld_so_conf_debian_with_include_and_comments() {
        let text = "# libc default configuration\ninclude /etc/ld.so.conf.d/*.conf\n\n/usr/local/lib # local\n/opt/a:/opt/b, /opt/c\nhwcap 0 nosegneg\n/usr/X11R6/lib=libc5\n";
        assert_eq!(
            parse_ld_so_conf(text),
            vec![
                ConfLine::Include("/etc/ld.so.conf.d/*.conf".into()),
                ConfLine::Dir("/usr/local/lib".into()),
                ConfLine::Dir("/opt/a".into()),
                ConfLine::Dir("/opt/b".into()),
                ConfLine::Dir("/opt/c".into()),
                ConfLine::Dir("/usr/X11R6/lib".into()),
            ]
        );
        assert!(wildcard_match("*.conf", "x86_64-linux-gnu.conf"));
        assert!(!wildcard_match("*.conf", "README"));
        assert!(wildcard_match("lib?.conf", "libc.conf"));
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

    #[test]
    fn cpuinfo_x86_flags() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/upstream/procfs-upstream/proc/cpuinfo"
        ))
        .unwrap();
        let f = parse_cpuinfo_flags(&text).unwrap();
        assert!(f.contains("avx2") && f.contains("bmi2") && !f.contains("avx512f"));
    }

    #[test]
    fn cpuinfo_aarch64_features() {
        // Graviton2 (Neoverse N1), as the kernel prints it.
        let text = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\n";
        let f = parse_cpuinfo_flags(text).unwrap();
        assert!(AARCH64_CPU_FLAGS.iter().all(|x| f.contains(*x)));
    }

    #[test]
    fn cpuinfo_flag_missing_on_one_cpu_is_missing() {
        let text = "processor\t: 0\nflags\t\t: avx avx2\n\nprocessor\t: 1\nflags\t\t: avx\n";
        assert_eq!(
            parse_cpuinfo_flags(text)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["avx"]
        );
    }

    #[test]
    fn cpuinfo_without_flags_is_unknown() {
        // s390x and some emulators print no flags line.
        assert_eq!(
            parse_cpuinfo_flags("vendor_id       : IBM/S390\n# processors    : 2\n"),
            None
        );
    }

    #[test]
    fn build_info_properties() {
        let p = parse_properties(
            "#Generated\ngluten_version=1.6.0\nbackend_type = velox\n! c\ngcc_version: GCC: (GNU) 11.2.1\n",
        );
        assert_eq!(p["gluten_version"], "1.6.0");
        assert_eq!(p["backend_type"], "velox");
        assert_eq!(p["gcc_version"], "GCC: (GNU) 11.2.1");
    }

    #[test]
    fn settings_validate_names_the_key() {
        let s = Settings {
            paths: vec!["lib/x.so".into()],
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().starts_with("`paths` (lib/x.so)"));
        let s = Settings {
            required_cpu_flags: Some(vec!["avx 2".into()]),
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .starts_with("`required_cpu_flags`")
        );
        assert!(Settings::default().validate().is_ok());
        assert_eq!(
            Settings::default().cpu_flags_for("aarch64"),
            AARCH64_CPU_FLAGS
        );
    }

    fn lib(name: &str) -> LibraryFacts {
        LibraryFacts {
            library: name.into(),
            path: format!("/opt/gluten/lib/{name}"),
            found: true,
            elf_class_bits: Some(64),
            machine_code: Some(elf::EM_X86_64.0),
            exec_stack: Some(false),
            ..LibraryFacts::default()
        }
    }

    #[test]
    fn evaluate_table() {
        let base = Facts {
            libraries: vec![lib("libvelox.so")],
            required_cpu_flags: vec!["avx2".into()],
            missing_cpu_flags: Some(vec![]),
            host_glibc_version: Some("2.41".into()),
            ..Facts::default()
        };
        type Case = (&'static str, fn(&mut Facts), Status, &'static str);
        let cases: Vec<Case> = vec![
            (
                "all good",
                |_| {},
                Status::Ok,
                "libvelox.so: 0 dependencies resolved; CPU has all 1 required flags",
            ),
            (
                "missing file",
                |f| f.libraries[0].found = false,
                Status::Fail,
                "/opt/gluten/lib/libvelox.so: no such file",
            ),
            (
                "nothing installed",
                |f| {
                    f.libraries[0].found = false;
                    f.nothing_installed = true
                },
                Status::Warn,
                "no Velox library at /opt/gluten/lib/libvelox.so",
            ),
            (
                "broken",
                |f| {
                    f.libraries[0].error = Some("x: not an ELF file".into());
                    f.libraries[0].broken = true
                },
                Status::Fail,
                "x: not an ELF file",
            ),
            (
                "unreadable",
                |f| f.libraries[0].error = Some("reading x: permission denied".into()),
                Status::Unknown,
                "permission denied",
            ),
            (
                "wrong machine",
                |f| f.libraries[0].machine_code = Some(183),
                Status::Fail,
                "is built for aarch64, host is x86_64",
            ),
            (
                "32-bit",
                |f| f.libraries[0].elf_class_bits = Some(32),
                Status::Fail,
                "is 32-bit ELF, host loads 64-bit",
            ),
            (
                "missing dep",
                |f| {
                    f.libraries[0].missing_dependencies.push(MissingDependency {
                        name: "libsodium.so.23".into(),
                        needed_by: "libvelox.so".into(),
                    })
                },
                Status::Fail,
                "libvelox.so: libsodium.so.23 not found",
            ),
            (
                "missing version",
                |f| {
                    f.libraries[0].missing_versions.push(MissingVersion {
                        version: "GLIBC_2.99".into(),
                        file: "libc.so.6".into(),
                        provider: "/lib/libc.so.6".into(),
                        provider_max: Some("GLIBC_2.41".into()),
                        needed_by: "libvelox.so".into(),
                    })
                },
                Status::Fail,
                "libvelox.so needs GLIBC_2.99 from libc.so.6, but /lib/libc.so.6 defines up to GLIBC_2.41",
            ),
            (
                "execstack, glibc 2.41",
                |f| f.libraries[0].exec_stack = Some(true),
                Status::Fail,
                "host glibc 2.41 >= 2.41 refuses",
            ),
            (
                "execstack, glibc 2.35",
                |f| {
                    f.libraries[0].exec_stack = Some(true);
                    f.host_glibc_version = Some("2.35".into())
                },
                Status::Warn,
                "glibc >= 2.41 refuses",
            ),
            (
                "cpu flags missing",
                |f| f.missing_cpu_flags = Some(vec!["avx2".into(), "bmi2".into()]),
                Status::Fail,
                "libvelox.so needs avx2, bmi2: not in /proc/cpuinfo flags",
            ),
            (
                "cpuinfo unknown",
                |f| f.missing_cpu_flags = None,
                Status::Unknown,
                "cannot tell whether the CPU has avx2",
            ),
            (
                "jar for another arch",
                |f| {
                    f.jars.push(JarFacts {
                        path: "/g.jar".into(),
                        found: true,
                        native_arches: vec!["aarch64".into()],
                        ..JarFacts::default()
                    })
                },
                Status::Fail,
                "/g.jar has native libraries for aarch64 only, host is x86_64",
            ),
            (
                "probe crashed",
                |f| {
                    f.load_probe.push(ProbeResult {
                        path: "/x.so".into(),
                        result: "crashed".into(),
                        detail: Some("child killed by SIGILL".into()),
                    })
                },
                Status::Fail,
                "dlopen probe of /x.so: crashed: child killed by SIGILL",
            ),
        ];
        for (name, change, status, text) in cases {
            let mut f = base.clone();
            change(&mut f);
            let o = evaluate(&f, &Settings::default(), "x86_64");
            assert_eq!(o.status(), status, "{name}: {}", o.summary());
            assert!(o.summary().contains(text), "{name}: {}", o.summary());
        }
    }

    #[test]
    fn evaluate_exports_gauges_and_inventory() {
        let mut l = lib("libvelox.so");
        l.build_id = Some("abcd".into());
        l.size_bytes = Some(10);
        let f = Facts {
            libraries: vec![l, lib("libgluten.so")],
            isa_cpu_flags: Some(vec!["avx".into(), "avx2".into()]),
            jars: vec![JarFacts {
                build_info: [("gluten_version".to_string(), "1.6.0".to_string())].into(),
                found: true,
                native_arches: vec!["amd64".into()],
                ..JarFacts::default()
            }],
            missing_cpu_flags: Some(vec![]),
            ..Facts::default()
        };
        let o = evaluate(&f, &Settings::default(), "x86_64");
        let inv: BTreeMap<_, _> = o.inventory.iter().cloned().collect();
        assert_eq!(inv["velox_library.build_id"], "abcd");
        assert_eq!(inv["cpu.flags"], "avx avx2");
        assert_eq!(inv["velox_library.gluten_version"], "1.6.0");
        let info: Vec<_> = o
            .metrics
            .iter()
            .filter(|s| s.name == "gluten_node_velox_library_info")
            .collect();
        assert_eq!(info.len(), 2);
        assert_eq!(
            info[0].labels,
            vec![
                ("library", "libvelox.so".to_string()),
                ("build_id", "abcd".to_string())
            ]
        );
    }

    proptest! {
        #[test]
        fn elf_summary_never_panics(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = elf_summary(&b);
        }

        #[test]
        fn elf_summary_of_a_mangled_real_header_never_panics(
            cut in 0usize..4096, at in 0usize..4096, byte in any::<u8>()
        ) {
            let mut b = SAMPLE.with(|s| s.clone());
            let n = b.len();
            b[at % n] = byte;
            b.truncate(cut.min(n));
            let _ = elf_summary(&b);
        }

        #[test]
        fn ld_so_cache_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512), new in any::<bool>()) {
            let mut data = if new { CACHE_MAGIC_NEW.to_vec() } else { CACHE_MAGIC_OLD.to_vec() };
            data.extend(b);
            let _ = parse_ld_so_cache(&data);
        }

        #[test]
        fn cpuinfo_and_conf_never_panic(s in "\\PC{0,400}") {
            let _ = parse_cpuinfo_flags(&s);
            let _ = parse_ld_so_conf(&s);
            let _ = parse_properties(&s);
        }
    }

    thread_local! {
        static SAMPLE: Vec<u8> = sample();
    }
}
