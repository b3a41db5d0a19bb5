//! The ELF reader: what the check needs from one shared object (header, dynamic section, symbol
//! versions, notes), read from its bytes without running it, and symbol-version arithmetic.

use super::elf_dynamic::{SliceSource, summary_from_segments};
use crate::check::ParseError;
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endian, Endianness};

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
    /// `.gnu.version_r`: (file, version), e.g. ("libc.so.6", "GLIBC_2.17"); weak ones apart.
    pub version_needs: Vec<(String, String)>,
    /// `VER_FLG_WEAK` needs: the loader does not fail when they are missing.
    pub weak_version_needs: Vec<(String, String)>,
    /// `.gnu.version_d` names, without the base (file name) entry.
    pub version_defs: Vec<String>,
    /// The base entry of `.gnu.version_d` (the file's own name).
    pub version_base: Option<String>,
    /// Has version definitions at all (without any, the loader checks no version against it).
    pub has_verdef: bool,
    /// `DT_FLAGS_1` (`DF_1_NODEFLIB` = 0x800: no ld.so.cache, no default dirs for its needs).
    pub flags_1: u64,
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

pub(super) fn lossy(b: &[u8]) -> String {
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

    let has_pt_dynamic = header
        .program_headers(endian, data)
        .map_err(|e| bad("program headers", e))?
        .iter()
        .any(|ph| ph.p_type(endian) == elf::PT_DYNAMIC);
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;
    let has_dynamic_section = sections
        .iter()
        .any(|sh| sh.sh_type(endian) == elf::SHT_DYNAMIC);
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
            if tag == elf::DT_FLAGS_1 {
                s.flags_1 = d.d_val(endian).into();
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
                let pair = (file.clone(), lossy(name));
                if aux.vna_flags.get(endian).0 & elf::VER_FLG_WEAK.0 != 0 {
                    s.weak_version_needs.push(pair);
                } else {
                    s.version_needs.push(pair);
                }
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
        s.has_verdef = true;
        while let Some((def, mut auxs)) = it.next().map_err(|e| bad(".gnu.version_d", e))? {
            let base = def.vd_flags.get(endian).0 & elf::VER_FLG_BASE.0 != 0;
            if let Some(aux) = auxs.next().map_err(|e| bad(".gnu.version_d aux", e))? {
                let name = lossy(
                    aux.name(endian, strings)
                        .map_err(|e| bad(".gnu.version_d name", e))?,
                );
                if base {
                    s.version_base = Some(name);
                } else {
                    s.version_defs.push(name);
                }
            }
        }
    } else if !has_dynamic_section && has_pt_dynamic {
        // Section headers stripped (`sstrip`, some packers): read what the loader reads.
        return summary_from_segments(&mut SliceSource(data));
    }
    Ok(s)
}

/// File ranges of the sections where string constants live (`.rodata*`, `.lrodata*`, `.data*`),
/// from the section headers; `None` without them (then the whole file is scanned).
pub fn string_ranges(data: &[u8]) -> Option<Vec<(u64, u64)>> {
    fn of<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<Vec<(u64, u64)>> {
        let header = H::parse(data).ok()?;
        let endian = header.endian().ok()?;
        let sections = header.sections(endian, data).ok()?;
        let mut out = Vec::new();
        for sh in sections.iter() {
            if sh.sh_type(endian) != elf::SHT_PROGBITS {
                continue;
            }
            let name = sections.section_name(endian, sh).ok()?;
            if [&b".rodata"[..], b".lrodata", b".data"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                let (off, size): (u64, u64) =
                    (sh.sh_offset(endian).into(), sh.sh_size(endian).into());
                out.push((off, size));
            }
        }
        (!out.is_empty()).then_some(out)
    }
    match data.get(4) {
        Some(1) => of::<elf::FileHeader32<Endianness>>(data),
        Some(2) => of::<elf::FileHeader64<Endianness>>(data),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

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
    fn string_ranges_cover_the_constants_and_stripped_headers_have_none() {
        let d = tempfile::tempdir().unwrap();
        let b = cc(
            d.path(),
            "libs.so",
            "const char *tz(void){return \"discover_tz_dir failed to find zoneinfo\";}",
            &[],
        );
        let at = memchr::memmem::find(&b, b"discover_tz_dir").unwrap() as u64;
        let r = string_ranges(&b).unwrap();
        assert!(
            r.iter().any(|(o, n)| at >= *o && at < o + n),
            "{r:?} misses {at}"
        );
        let mut stripped = b.clone();
        stripped[40..48].copy_from_slice(&0u64.to_le_bytes());
        stripped[60..64].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(string_ranges(&stripped), None);
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
    }

    thread_local! {
        static SAMPLE: Vec<u8> = sample();
    }
}
