//! What the check knows of an ELF file ([`ElfSummary`]), the names of machines, the class of a
//! file from its first bytes, and symbol-version arithmetic. The reader that fills an
//! [`ElfSummary`] is `elf_read`.

use crate::check::ParseError;
use object::Endianness;
use object::elf;
use object::read::elf::FileHeader;

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
    /// `DT_FLAGS_1` (`DF_1_NODEFLIB`: no ld.so.cache, no default dirs for its needs).
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

/// The class (`ELFCLASS32` or `ELFCLASS64`) of a file from its first bytes, or the error naming
/// why it has none; `size` is the file's (for the message).
pub fn elf_class(head: &[u8], size: u64) -> Result<elf::FileClass, ParseError> {
    if head.get(..elf::ELFMAG.len()) != Some(&elf::ELFMAG[..]) {
        let start: Vec<String> = head
            .iter()
            .take(elf::ELFMAG.len())
            .map(|b| format!("{b:02x}"))
            .collect();
        return Err(ParseError::new(format!(
            "not an ELF file (starts with [{}], {size} bytes)",
            start.join(" ")
        )));
    }
    let class = head
        .get(std::mem::offset_of!(elf::Ident, class))
        .map(|c| elf::FileClass(*c));
    match class {
        Some(c @ (elf::ELFCLASS32 | elf::ELFCLASS64)) => Ok(c),
        c => Err(ParseError::new(format!(
            "truncated or invalid ELF: EI_CLASS is {:?}",
            c.map(|c| c.0)
        ))),
    }
}

/// Class bits and machine from a file's first bytes (its whole file header); `None` when it is
/// not ELF.
pub fn elf_kind(head: &[u8]) -> Option<(u8, u16)> {
    fn of<H: FileHeader<Endian = Endianness>>(head: &[u8], bits: u8) -> Option<(u8, u16)> {
        let header = H::parse(head).ok()?;
        Some((bits, header.e_machine(header.endian().ok()?).0))
    }
    match elf_class(head, head.len() as u64).ok()? {
        elf::ELFCLASS32 => of::<elf::FileHeader32<Endianness>>(head, 32),
        _ => of::<elf::FileHeader64<Endianness>>(head, 64),
    }
}

/// Text of a string read from the file (not always UTF-8).
pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The directories of a `DT_RPATH`/`DT_RUNPATH` value.
pub(super) fn split_path_list(v: &str) -> impl Iterator<Item = String> + '_ {
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

    #[test]
    fn the_class_names_what_is_not_elf() {
        let e = |b: &[u8]| elf_class(b, b.len() as u64).unwrap_err().to_string();
        assert_eq!(
            e(b"PK\x03\x04rest"),
            "not an ELF file (starts with [50 4b 03 04], 8 bytes)"
        );
        assert_eq!(e(b""), "not an ELF file (starts with [], 0 bytes)");
        assert_eq!(e(b"\x7fELF"), "truncated or invalid ELF: EI_CLASS is None");
        let mut ident = *b"\x7fELF\x03\x01\x01\0\0\0\0\0\0\0\0\0";
        assert_eq!(e(&ident), "truncated or invalid ELF: EI_CLASS is Some(3)");
        ident[std::mem::offset_of!(elf::Ident, class)] = elf::ELFCLASS32.0;
        assert_eq!(elf_class(&ident, 16).unwrap(), elf::ELFCLASS32);
        assert_eq!(
            elf_kind(&ident),
            None,
            "no machine without the whole header"
        );
        assert_eq!(machine_name(elf::EM_AARCH64.0), "aarch64");
        assert_eq!(machine_name(4242), "machine 4242");
    }
}
