//! Which CPU extensions an ELF library needs, read from its own DWARF record.
//!
//! GCC writes the target options of every compile unit into `DW_AT_producer`
//! (`GNU C++20 13.2.0 -mavx2 -mfma -mavx -mf16c -mlzcnt -mbmi2 -mtune=generic -march=x86-64 -g -O3 …`),
//! and clang does with `-grecord-command-line`. This crate reads those strings and turns them into
//! the `/proc/cpuinfo` flags (x86-64) a host must have before it loads the library.
//!
//! # API (target-independent part, this file)
//!
//! - [`read_producers`]`(elf_bytes: &[u8]) -> Result<`[`Producers`]`, `[`Error`]`>`: one [`Unit`]
//!   per compile unit of `.debug_info` (`name` = `DW_AT_name`, `comp_dir`, `producer` =
//!   `DW_AT_producer` or `None`), plus `.GCC.command.line` and the ELF machine. DWARF 2–5,
//!   `SHF_COMPRESSED` sections, LTO (`GNU GIMPLE`) units. It borrows from the bytes given
//!   (mmap the file): only compressed sections are inflated.
//! - [`FlagSet`]: what one unit's options enable, split into `codegen` (instructions the compiler
//!   may emit on its own: a host without them may fault anywhere in the unit) and `intrinsics`
//!   (reachable only through intrinsics/asm, which a program guards itself), plus `unknown`
//!   options. Flag names are the kernel's (`/proc/cpuinfo` `flags` on x86, `Features` on arm64).
//! - A target module maps a producer string to a [`FlagSet`]: [`x86::flags_of`]`(producer) ->
//!   Option<FlagSet>` (`None`: the producer records no target options, e.g. `GNU AS 2.40`, plain
//!   `clang version 17`). An `aarch64` module offers the same `flags_of` for arm64 producers.
//! - [`cpu_needs`]`(&Producers, flags_of) -> `[`CpuNeeds`]: the judgement over all units
//!   (majority rule, toolchain-runtime units and runtime-dispatched units set apart; see
//!   [`cpu_needs`]). [`CpuNeeds::NoProducer`] / [`CpuNeeds::NoFlagRecord`] say the library
//!   carries no usable record, so the caller falls back to its built-in list.
//! - [`is_toolchain_runtime`] and [`DISPATCHED_UNITS`] are the two rules behind the judgement.
//!
//! Typical use: `let p = read_producers(&mmap)?; let needs = cpu_needs(&p, x86::flags_of);`
//! (pick the module by `p.machine`).

pub mod aarch64;
pub mod x86;

use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// What went wrong reading a library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an ELF file object can parse.
    #[error("not a readable ELF file: {0}")]
    Elf(#[source] object::Error),
    /// A debug section could not be read or inflated.
    #[error("section {section}: {source}")]
    Section {
        section: &'static str,
        #[source]
        source: object::Error,
    },
    /// `.debug_info` or a section it points into is malformed.
    #[error("DWARF compile unit at .debug_info offset {offset:#x}: {source}")]
    Dwarf { offset: u64, source: gimli::Error },
}

/// The ELF machine of the library, to pick the target module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
    /// Another `e_machine` (its `object` name).
    Other(&'static str),
}

/// One compile unit of `.debug_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `DW_AT_name` (the primary source file), or `<unit at 0x…>` when absent.
    pub name: String,
    /// `DW_AT_comp_dir`, when present.
    pub comp_dir: Option<String>,
    /// `DW_AT_producer`, when present and readable (a unit whose producer lives in a DWZ
    /// supplementary file or a `.dwo` counts as without one).
    pub producer: Option<String>,
}

/// Everything a library says about how it was compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producers {
    pub machine: Machine,
    /// Every compile unit, in `.debug_info` order (empty when the library has no DWARF).
    pub units: Vec<Unit>,
    /// The NUL-separated switches of `.GCC.command.line` (`-frecord-gcc-switches`), merged over
    /// all objects by the linker; empty when absent.
    pub command_line: Vec<String>,
    /// Whether `.debug_info` was `SHF_COMPRESSED` (or `.zdebug_info`).
    pub compressed: bool,
}

impl Producers {
    /// Units that carry a `DW_AT_producer`.
    pub fn with_producer(&self) -> usize {
        self.units.iter().filter(|u| u.producer.is_some()).count()
    }
}

/// What one unit's recorded options enable. Names are the kernel's flag names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagSet {
    /// Extensions the compiler may use in generated code without being asked.
    pub codegen: BTreeSet<&'static str>,
    /// Extensions enabled but only used through intrinsics or asm (guarded by the program).
    pub intrinsics: BTreeSet<&'static str>,
    /// Target options the table does not know (`-march=native` left unexpanded, a newer `-m`).
    pub unknown: Vec<String>,
}

/// Units whose code the program only runs after its own CPU check, by the end of their
/// `DW_AT_name`. Their extra flags are reported as [`Needs::dispatched`], never required.
///
/// - folly `folly/hash/detail/ChecksumDetail.cpp`, `Crc32CombineDetail.cpp`, `Crc32cDetail.cpp`
///   and `folly/external/fast-crc32/sse_crc32c_v8s3x3.cpp` are built with `-mpclmul` (and SSE4.2)
///   and called from `folly/hash/Checksum.cpp` only when `folly::CpuId` reports them
///   (`crc32c_hw_supported()`, `crc32c_hw_supported_sse42()`).
pub const DISPATCHED_UNITS: &[&str] = &[
    "folly/hash/detail/ChecksumDetail.cpp",
    "folly/hash/detail/Crc32CombineDetail.cpp",
    "folly/hash/detail/Crc32cDetail.cpp",
    "folly/external/fast-crc32/sse_crc32c_v8s3x3.cpp",
];

/// The judgement over a library's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuNeeds {
    /// No unit carries `DW_AT_producer` (no DWARF, or stripped): fall back to a built-in list.
    NoProducer { units: usize },
    /// Producers exist, but none records target options (assembler, clang without
    /// `-grecord-command-line`, only toolchain-runtime units): fall back to a built-in list.
    NoFlagRecord { units: usize, with_producer: usize },
    /// The record answers.
    Known(Needs),
}

/// What the library needs, from its units' records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Code-generation flags carried by more than half of the main toolchain's units: the host
    /// must have them all.
    pub required: BTreeSet<&'static str>,
    /// Code-generation flags carried by some main-toolchain units, at most half of them: the
    /// units named may fault on a host without them (unless the program dispatches them).
    pub minority: BTreeMap<&'static str, Vec<String>>,
    /// Flags of [`DISPATCHED_UNITS`] that no main-toolchain unit carries: used only after the
    /// program's own check.
    pub dispatched: BTreeMap<&'static str, Vec<String>>,
    /// Intrinsics-only flags enabled in main-toolchain units (not required; informative).
    pub intrinsics_only: BTreeSet<&'static str>,
    /// Main-toolchain units with a flag record (the majority's denominator).
    pub considered: usize,
    /// Units set apart as the toolchain's runtime ([`is_toolchain_runtime`]).
    pub runtime_units: usize,
    /// Units with a producer that records no target options (e.g. `GNU AS`).
    pub without_flags: usize,
    /// Units without `DW_AT_producer`.
    pub without_producer: usize,
    /// Target options no table knows, over all units.
    pub unknown_options: BTreeSet<String>,
}

/// Whether a unit belongs to the toolchain's own runtime (libgcc, libstdc++/libsupc++,
/// libgomp, libatomic, libquadmath, libitm, libsanitizer, libssp, libgfortran, crt objects,
/// glibc's static parts): built by the toolchain vendor for the baseline, linked in whatever
/// the project asked for, so never evidence of the project's own flags.
///
/// Recognised by a path component of `DW_AT_name` or `DW_AT_comp_dir`, by a `crt*` file name,
/// or by GCC's `-fbuilding-libgcc` in the producer.
pub fn is_toolchain_runtime(unit: &Unit) -> bool {
    const DIRS: &[&str] = &[
        "libgcc",
        "libstdc++-v3",
        "libsupc++",
        "libgomp",
        "libatomic",
        "libquadmath",
        "libitm",
        "libsanitizer",
        "libssp",
        "libgfortran",
        "csu",
        "sysdeps",
    ];
    if unit
        .producer
        .as_deref()
        .is_some_and(|p| p.split_whitespace().any(|t| t == "-fbuilding-libgcc"))
    {
        return true;
    }
    let in_dirs = |path: &str| path.split('/').any(|c| DIRS.contains(&c));
    if in_dirs(&unit.name) || unit.comp_dir.as_deref().is_some_and(in_dirs) {
        return true;
    }
    let file = unit.name.rsplit('/').next().unwrap_or("");
    file.starts_with("crt") && (file.ends_with(".c") || file.ends_with(".S"))
}

fn is_dispatched(unit: &Unit) -> bool {
    DISPATCHED_UNITS.iter().any(|d| unit.name.ends_with(d))
}

/// The judgement over all units of a library, with a target module's `flags_of`
/// (e.g. [`x86::flags_of`]).
///
/// - Units of the toolchain's runtime ([`is_toolchain_runtime`]) are counted apart.
/// - Units of [`DISPATCHED_UNITS`]: their flags that no other unit carries go to `dispatched`.
/// - Of the other units with a flag record (the main toolchain's), a code-generation flag
///   carried by more than half is `required`; one carried by at most half is `minority`, with
///   the units' names. (With one toolchain, every unit carries the project's flags, so
///   `required` is exactly the flags of every unit.)
/// - No producer at all → [`CpuNeeds::NoProducer`]; producers but no unit with a record →
///   [`CpuNeeds::NoFlagRecord`].
pub fn cpu_needs(producers: &Producers, flags_of: fn(&str) -> Option<FlagSet>) -> CpuNeeds {
    let units = producers.units.len();
    let with_producer = producers.with_producer();
    if with_producer == 0 {
        return CpuNeeds::NoProducer { units };
    }
    let mut needs = Needs::default();
    let mut main: Vec<(&Unit, FlagSet)> = Vec::new();
    let mut dispatched: Vec<(&Unit, FlagSet)> = Vec::new();
    for unit in &producers.units {
        let Some(producer) = unit.producer.as_deref() else {
            needs.without_producer += 1;
            continue;
        };
        if is_toolchain_runtime(unit) {
            needs.runtime_units += 1;
            continue;
        }
        let Some(flags) = flags_of(producer) else {
            needs.without_flags += 1;
            continue;
        };
        needs.unknown_options.extend(flags.unknown.iter().cloned());
        if is_dispatched(unit) {
            dispatched.push((unit, flags));
        } else {
            main.push((unit, flags));
        }
    }
    if main.is_empty() && dispatched.is_empty() {
        return CpuNeeds::NoFlagRecord {
            units,
            with_producer,
        };
    }
    needs.considered = main.len();
    let mut count: BTreeMap<&'static str, Vec<&Unit>> = BTreeMap::new();
    for (unit, flags) in &main {
        for f in &flags.codegen {
            count.entry(f).or_default().push(unit);
        }
        needs
            .intrinsics_only
            .extend(flags.intrinsics.iter().copied());
    }
    for (flag, carriers) in count {
        if carriers.len() * 2 > main.len() {
            needs.required.insert(flag);
        } else {
            needs
                .minority
                .insert(flag, carriers.iter().map(|u| u.name.clone()).collect());
        }
    }
    needs
        .intrinsics_only
        .retain(|f| !needs.required.contains(f));
    for (unit, flags) in &dispatched {
        for f in flags.codegen.iter().chain(&flags.intrinsics) {
            let main_has = needs.required.contains(f)
                || needs.intrinsics_only.contains(f)
                || needs.minority.contains_key(f);
            if !main_has {
                needs
                    .dispatched
                    .entry(f)
                    .or_default()
                    .push(unit.name.clone());
            }
        }
    }
    CpuNeeds::Known(needs)
}

/// Reads every compile unit's producer and name from an ELF library's DWARF.
///
/// Walks the unit headers of `.debug_info` and reads each unit's root DIE only (`.debug_str`
/// merges equal strings, so counting strings would undercount units). Sections are borrowed
/// from `elf_bytes`; `SHF_COMPRESSED` (zlib/zstd) and `.zdebug_*` sections are inflated.
/// A library without `.debug_info` gives no units.
pub fn read_producers(elf_bytes: &[u8]) -> Result<Producers, Error> {
    let file = object::File::parse(elf_bytes).map_err(Error::Elf)?;
    let machine = match file.architecture() {
        object::Architecture::X86_64 => Machine::X86_64,
        object::Architecture::Aarch64 => Machine::Aarch64,
        other => Machine::Other(arch_name(other)),
    };
    let command_line = match file.section_by_name(".GCC.command.line") {
        Some(s) => {
            let data = s.uncompressed_data().map_err(|source| Error::Section {
                section: ".GCC.command.line",
                source,
            })?;
            data.split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }
        None => Vec::new(),
    };
    let compressed = file.section_by_name(".debug_info").is_some_and(|s| {
        s.compressed_file_range()
            .is_ok_and(|r| r.format != object::CompressionFormat::None)
    });

    // Only the sections a root DIE's strings can point into.
    let load = |name: &'static str| -> Result<Cow<'_, [u8]>, Error> {
        match file.section_by_name(name) {
            Some(s) => s.uncompressed_data().map_err(|source| Error::Section {
                section: name,
                source,
            }),
            None => Ok(Cow::Borrowed(&[][..])),
        }
    };
    let info = load(".debug_info")?;
    let abbrev = load(".debug_abbrev")?;
    let strs = load(".debug_str")?;
    let line_strs = load(".debug_line_str")?;
    let str_offsets = load(".debug_str_offsets")?;
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let debug_info = gimli::DebugInfo::from(gimli::EndianSlice::new(&info, endian));
    let debug_abbrev = gimli::DebugAbbrev::from(gimli::EndianSlice::new(&abbrev, endian));
    let debug_str = gimli::DebugStr::from(gimli::EndianSlice::new(&strs, endian));
    let debug_line_str = gimli::DebugLineStr::from(gimli::EndianSlice::new(&line_strs, endian));
    let debug_str_offsets =
        gimli::DebugStrOffsets::from(gimli::EndianSlice::new(&str_offsets, endian));
    let strings = Strings {
        debug_str,
        debug_line_str,
        debug_str_offsets,
    };

    let mut units = Vec::new();
    let mut headers = debug_info.units();
    // Where the next header starts, to name it when it is malformed.
    let mut next = 0u64;
    loop {
        let header = match headers.next() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(source) => {
                return Err(Error::Dwarf {
                    offset: next,
                    source,
                });
            }
        };
        let offset = header
            .debug_info_offset()
            .map(|o| o.0 as u64)
            .unwrap_or(next);
        next = offset + header.length_including_self() as u64;
        let unit = root_of(&header, &debug_abbrev, &strings)
            .map_err(|source| Error::Dwarf { offset, source })?;
        units.push(unit.unwrap_or_else(|| Unit {
            name: format!("<unit at {offset:#x}>"),
            comp_dir: None,
            producer: None,
        }));
    }
    Ok(Producers {
        machine,
        units,
        command_line,
        compressed,
    })
}

type Slice<'a> = gimli::EndianSlice<'a, gimli::RunTimeEndian>;

struct Strings<'a> {
    debug_str: gimli::DebugStr<Slice<'a>>,
    debug_line_str: gimli::DebugLineStr<Slice<'a>>,
    debug_str_offsets: gimli::DebugStrOffsets<Slice<'a>>,
}

/// The root DIE's name, comp_dir and producer; `None` for an empty unit.
fn root_of<'a>(
    header: &gimli::UnitHeader<Slice<'a>>,
    debug_abbrev: &gimli::DebugAbbrev<Slice<'a>>,
    strings: &Strings<'a>,
) -> gimli::Result<Option<Unit>> {
    let abbrevs = header.abbreviations(debug_abbrev)?;
    let mut cursor = header.entries(&abbrevs);
    let Some(root) = cursor.next_dfs()? else {
        return Ok(None);
    };
    let base = match root.attr_value(gimli::DW_AT_str_offsets_base) {
        Some(gimli::AttributeValue::DebugStrOffsetsBase(b)) => b,
        _ => gimli::DebugStrOffsetsBase::default_for_encoding_and_file(
            header.encoding(),
            gimli::DwarfFileType::Main,
        ),
    };
    let format = header.format();
    let string = |at: gimli::DwAt| -> gimli::Result<Option<String>> {
        let Some(value) = root.attr_value(at) else {
            return Ok(None);
        };
        let s = match value {
            gimli::AttributeValue::String(s) => s,
            gimli::AttributeValue::DebugStrRef(o) => strings.debug_str.get_str(o)?,
            gimli::AttributeValue::DebugLineStrRef(o) => strings.debug_line_str.get_str(o)?,
            gimli::AttributeValue::DebugStrOffsetsIndex(i) => {
                let o = strings.debug_str_offsets.get_str_offset(format, base, i)?;
                strings.debug_str.get_str(o)?
            }
            // DW_FORM_strp_sup / GNU_strp_alt (a DWZ file) and other forms: not here.
            _ => return Ok(None),
        };
        Ok(Some(String::from_utf8_lossy(s.slice()).into_owned()))
    };
    let producer = string(gimli::DW_AT_producer)?;
    let comp_dir = string(gimli::DW_AT_comp_dir)?;
    let name = string(gimli::DW_AT_name)?.unwrap_or_else(|| {
        format!(
            "<unit at {:#x}>",
            header.debug_info_offset().map(|o| o.0).unwrap_or(0)
        )
    });
    Ok(Some(Unit {
        name,
        comp_dir,
        producer,
    }))
}

fn arch_name(a: object::Architecture) -> &'static str {
    match a {
        object::Architecture::I386 => "i386",
        object::Architecture::Arm => "arm",
        object::Architecture::PowerPc64 => "powerpc64",
        object::Architecture::S390x => "s390x",
        object::Architecture::Riscv64 => "riscv64",
        _ => "other",
    }
}
