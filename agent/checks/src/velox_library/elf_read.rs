//! The ELF reader: what glibc's loader itself reads from a shared object (the file header, the
//! program headers, `PT_DYNAMIC`, the strings and version tables it points at, `PT_NOTE`),
//! decoded with `object`'s ELF types, for mapped files and jar entries alike. Every read is a
//! batch of byte ranges, so a source that can only stream from the start (a zip entry) answers
//! each batch in one pass and never holds the whole file. Section headers are read only to find
//! where string constants live ([`string_ranges`]).

use super::elf::{ElfSummary, elf_class, lossy, split_path_list};
use crate::check::ParseError;
use object::Endianness;
use object::elf::{
    self, DT_FLAGS_1, DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ, DT_STRTAB,
    DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM, DynamicTag, FileHeader32, FileHeader64,
    PT_DYNAMIC, PT_GNU_STACK, PT_LOAD, PT_NOTE, Verdaux, Verdef, Vernaux, Verneed,
};
use object::pod::{Pod, from_bytes, slice_from_bytes};
use object::read::elf::{Dyn, FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use std::mem::size_of;

/// What the reader's first batch asks for: the file header and, in all but odd files, the
/// program headers.
pub const HEAD: usize = 64 * 1024;
/// Longest string read at one offset of the dynamic string table.
pub const MAX_STRING: usize = 4096;
/// Largest `PT_DYNAMIC`, `PT_NOTE` or version table read.
const MAX_TABLE: u64 = 256 * 1024;
/// Most entries walked in the version tables (hostile input must not loop long).
const MAX_ENTRIES: usize = 8192;

/// One byte range wanted from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Req {
    /// `len` bytes at `off` (fewer at the end of the file).
    Range { off: u64, len: u64 },
    /// A NUL-terminated string at `off` (without the NUL; at most [`MAX_STRING`] bytes).
    CStr(u64),
}

/// Random access to a file's bytes, in batches.
pub trait ElfSource {
    /// The bytes of each request, in order.
    fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError>;
    /// The file's size, when known: then tables beyond it are reported as truncation.
    fn size(&self) -> Option<u64> {
        None
    }
}

/// A file in memory (or mapped).
pub struct SliceSource<'a>(pub &'a [u8]);

impl ElfSource for SliceSource<'_> {
    fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError> {
        Ok(reqs.iter().map(|r| slice_req(self.0, 0, r)).collect())
    }
    fn size(&self) -> Option<u64> {
        Some(self.0.len() as u64)
    }
}

/// The part of request `r` that `chunk` (the file's bytes from `base`) holds.
pub fn slice_req(chunk: &[u8], base: u64, r: &Req) -> Vec<u8> {
    let (off, len) = match *r {
        Req::Range { off, len } => (off, len),
        Req::CStr(off) => (off, MAX_STRING as u64),
    };
    let end = off.saturating_add(len);
    let (s, e) = (off.max(base), end.min(base + chunk.len() as u64));
    if s >= e {
        return Vec::new();
    }
    let part = &chunk[(s - base) as usize..(e - base) as usize];
    match r {
        Req::CStr(_) => part[..memchr::memchr(0, part).unwrap_or(part.len())].to_vec(),
        Req::Range { .. } => part.to_vec(),
    }
}

/// Summarises an ELF file from its bytes (a mmap: only the pages the loader reads are touched).
pub fn elf_summary(data: &[u8]) -> Result<ElfSummary, ParseError> {
    summary_from_segments(&mut SliceSource(data))
}

/// Summarises an ELF file from its segments, as the loader sees it.
pub fn summary_from_segments(src: &mut dyn ElfSource) -> Result<ElfSummary, ParseError> {
    let head = src
        .fetch(&[Req::Range {
            off: 0,
            len: HEAD as u64,
        }])?
        .remove(0);
    let size = src.size().unwrap_or(head.len() as u64);
    match elf_class(&head, size)? {
        elf::ELFCLASS32 => read::<FileHeader32<Endianness>>(src, &head),
        _ => read::<FileHeader64<Endianness>>(src, &head),
    }
}

/// The ranges [`summary_from_segments`] asks for after the first [`HEAD`] bytes, computed from
/// those bytes (empty when the program headers lie beyond them): a streamed source captures
/// them in its first pass instead of reading again up to `PT_DYNAMIC`.
pub fn segment_reqs(head: &[u8]) -> Vec<Req> {
    fn of<H: FileHeader<Endian = Endianness>>(head: &[u8]) -> Option<Vec<Req>> {
        let (header, endian) = header::<H>(head).ok()?;
        let (off, n) = phdr_table(header, endian).ok()?;
        let bytes = head.get(off as usize..)?;
        let phdrs = slice_from_bytes::<H::ProgramHeader>(bytes, n).ok()?.0;
        Some(segment_batch(endian, phdrs))
    }
    match elf_class(head, head.len() as u64) {
        Ok(elf::ELFCLASS32) => of::<FileHeader32<Endianness>>(head),
        Ok(_) => of::<FileHeader64<Endianness>>(head),
        Err(_) => None,
    }
    .unwrap_or_default()
}

fn bad(what: &str) -> ParseError {
    ParseError::new(format!("invalid ELF: {what}"))
}

/// The file header at the start of `head`.
fn header<H: FileHeader<Endian = Endianness>>(head: &[u8]) -> Result<(&H, Endianness), ParseError> {
    if head.len() < size_of::<H>() {
        return Err(ParseError::new(format!(
            "truncated ELF: header needs {} bytes, file size {}",
            size_of::<H>(),
            head.len()
        )));
    }
    let header = H::parse(head).map_err(|e| bad(&format!("header: {e}")))?;
    let endian = header.endian().map_err(|e| bad(&format!("header: {e}")))?;
    Ok((header, endian))
}

/// Offset and count of the program headers, whose entries must be the class's size (as the
/// loader demands).
fn phdr_table<H: FileHeader>(header: &H, endian: H::Endian) -> Result<(u64, usize), ParseError> {
    let (n, entsize) = (header.e_phnum(endian), header.e_phentsize(endian));
    if n > 0 && usize::from(entsize) != size_of::<H::ProgramHeader>() {
        return Err(bad(&format!(
            "e_phentsize {entsize}, not {}",
            size_of::<H::ProgramHeader>()
        )));
    }
    Ok((header.e_phoff(endian).into(), n.into()))
}

/// Fails when a table of `n` entries of `entsize` at `off` ends beyond a file of `size` bytes.
fn table_fits(size: u64, what: &str, off: u64, n: u16, entsize: u16) -> Result<(), ParseError> {
    let end = u64::from(n)
        .checked_mul(entsize.into())
        .and_then(|s| s.checked_add(off))
        .unwrap_or(u64::MAX);
    if n > 0 && end > size {
        return Err(ParseError::new(format!(
            "truncated ELF: {what} at offset {off} beyond file size {size}"
        )));
    }
    Ok(())
}

/// The second batch: every `PT_NOTE`, then the first `PT_DYNAMIC`.
fn segment_batch<P: ProgramHeader>(endian: P::Endian, phdrs: &[P]) -> Vec<Req> {
    let range = |p: &P| Req::Range {
        off: p.p_offset(endian).into(),
        len: p.p_filesz(endian).into().min(MAX_TABLE),
    };
    let notes = phdrs.iter().filter(|p| p.p_type(endian) == PT_NOTE);
    let dynamic = phdrs.iter().find(|p| p.p_type(endian) == PT_DYNAMIC);
    notes.chain(dynamic).map(range).collect()
}

/// The file offset of virtual address `v`, through the `PT_LOAD` that maps it.
fn file_offset<P: ProgramHeader>(endian: P::Endian, loads: &[&P], v: u64) -> Option<u64> {
    loads.iter().find_map(|l| {
        let (vaddr, off, filesz): (u64, u64, u64) = (
            l.p_vaddr(endian).into(),
            l.p_offset(endian).into(),
            l.p_filesz(endian).into(),
        );
        (v >= vaddr && v - vaddr < filesz).then(|| off.saturating_add(v - vaddr))
    })
}

/// The `T` at byte `at` of `b`.
fn pod_at<T: Pod>(b: &[u8], at: usize) -> Option<&T> {
    from_bytes(b.get(at..)?).ok().map(|(t, _)| t)
}

/// The GNU build id among the notes of one `PT_NOTE` segment.
fn build_id<H: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    align: H::Word,
    bytes: &[u8],
) -> Option<String> {
    let mut notes = NoteIterator::<H>::new(endian, align, bytes).ok()?;
    while let Ok(Some(note)) = notes.next() {
        if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
            return Some(note.desc().iter().map(|b| format!("{b:02x}")).collect());
        }
    }
    None
}

fn read<H: FileHeader<Endian = Endianness>>(
    src: &mut dyn ElfSource,
    head: &[u8],
) -> Result<ElfSummary, ParseError> {
    let (header, endian) = header::<H>(head)?;
    if let Some(size) = src.size() {
        let (ph, sh) = (header.e_phoff(endian).into(), header.e_shoff(endian).into());
        let (phn, phent) = (header.e_phnum(endian), header.e_phentsize(endian));
        let (shn, shent) = (header.e_shnum(endian), header.e_shentsize(endian));
        table_fits(size, "program headers", ph, phn, phent)?;
        table_fits(size, "section headers", sh, shn, shent)?;
    }
    let (phoff, phnum) = phdr_table(header, endian)?;
    let table = (phnum * size_of::<H::ProgramHeader>()) as u64;
    let fetched;
    let ph_bytes = match head.get(phoff as usize..) {
        Some(b) if b.len() as u64 >= table => b,
        _ => {
            let req = Req::Range {
                off: phoff,
                len: table,
            };
            fetched = src.fetch(&[req])?.remove(0);
            &fetched[..]
        }
    };
    let phdrs = slice_from_bytes::<H::ProgramHeader>(ph_bytes, phnum)
        .map_err(|()| {
            ParseError::new(format!(
                "truncated ELF: program headers at offset {phoff} beyond the file"
            ))
        })?
        .0;
    let mut s = ElfSummary {
        class_bits: if header.is_class_64() { 64 } else { 32 },
        big_endian: header.is_big_endian(),
        machine: header.e_machine(endian).0,
        ..ElfSummary::default()
    };
    let of_type = |t| phdrs.iter().filter(move |p| p.p_type(endian) == t);
    let loads: Vec<&H::ProgramHeader> = of_type(PT_LOAD).collect();
    if let Some(stack) = of_type(PT_GNU_STACK).last() {
        s.exec_stack = Some(stack.p_flags(endian).0 & elf::PF_X.0 != 0);
    }
    let has_dynamic = of_type(PT_DYNAMIC).next().is_some();
    let mut got = src.fetch(&segment_batch(endian, phdrs))?;
    let dyn_bytes = if has_dynamic {
        got.pop().unwrap_or_default()
    } else {
        Vec::new()
    };
    s.build_id = of_type(PT_NOTE)
        .zip(&got)
        .find_map(|(n, bytes)| build_id::<H>(endian, n.p_align(endian), bytes));
    if !has_dynamic {
        return Ok(s);
    }

    // The dynamic array, up to DT_NULL.
    let count = dyn_bytes.len() / size_of::<H::Dyn>();
    let dyns = slice_from_bytes::<H::Dyn>(&dyn_bytes, count)
        .map_err(|()| bad("PT_DYNAMIC"))?
        .0;
    let end = dyns
        .iter()
        .position(|d| d.d_tag(endian) == DT_NULL)
        .unwrap_or(dyns.len());
    let dyns = &dyns[..end];
    let get = |t: DynamicTag| {
        dyns.iter()
            .find(|d| d.d_tag(endian) == t)
            .map(|d| d.val(endian))
    };
    s.flags_1 = get(DT_FLAGS_1).unwrap_or(0);
    let strtab = get(DT_STRTAB)
        .and_then(|v| file_offset(endian, &loads, v))
        .ok_or_else(|| bad("PT_DYNAMIC has no DT_STRTAB in a PT_LOAD"))?;
    let strsz = get(DT_STRSZ).unwrap_or(u64::MAX);
    let strings: Vec<(DynamicTag, u64)> = dyns
        .iter()
        .map(|d| (d.d_tag(endian), d.val(endian)))
        .filter(|(t, v)| [DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH].contains(t) && *v < strsz)
        .collect();
    let verneed = get(DT_VERNEED).and_then(|v| file_offset(endian, &loads, v));
    let verdef = get(DT_VERDEF).and_then(|v| file_offset(endian, &loads, v));
    let string_at = |o: u64| Req::CStr(strtab.saturating_add(o));
    let mut reqs: Vec<Req> = strings.iter().map(|(_, o)| string_at(*o)).collect();
    for t in [verneed, verdef].into_iter().flatten() {
        reqs.push(Req::Range {
            off: t,
            len: MAX_TABLE,
        });
    }
    let mut got = src.fetch(&reqs)?.into_iter();
    for ((tag, _), bytes) in strings.iter().zip(got.by_ref()) {
        let v = lossy(&bytes);
        match *tag {
            DT_NEEDED => s.needed.push(v),
            DT_SONAME => s.soname = Some(v),
            DT_RPATH => s.rpath.extend(split_path_list(&v)),
            _ => s.runpath.extend(split_path_list(&v)),
        }
    }
    let need_bytes = verneed.and_then(|_| got.next()).unwrap_or_default();
    let def_bytes = verdef.and_then(|_| got.next()).unwrap_or_default();
    let needs = version_needs(endian, &need_bytes, get(DT_VERNEEDNUM));
    s.has_verdef = verdef.is_some();
    let defs = version_defs(endian, &def_bytes, get(DT_VERDEFNUM));

    // The strings of the version tables, in one more batch.
    let mut offs: Vec<u64> = needs
        .iter()
        .flat_map(|(file, name, _)| [*file, *name])
        .chain(defs.iter().map(|(n, _)| *n))
        .collect();
    offs.sort_unstable();
    offs.dedup();
    let texts = src.fetch(&offs.iter().map(|o| string_at(*o)).collect::<Vec<_>>())?;
    let text = |o: u64| {
        offs.binary_search(&o)
            .ok()
            .and_then(|i| texts.get(i))
            .map(|t| lossy(t))
            .unwrap_or_default()
    };
    for (file, name, weak) in needs {
        let pair = (text(file), text(name));
        if weak {
            s.weak_version_needs.push(pair);
        } else {
            s.version_needs.push(pair);
        }
    }
    for (name, base) in defs {
        if base {
            s.version_base = Some(text(name));
        } else {
            s.version_defs.push(text(name));
        }
    }
    Ok(s)
}

/// The `DT_VERNEED` table: (file name, version name, `VER_FLG_WEAK`), as string offsets; at most
/// `count` entries (`DT_VERNEEDNUM`) and [`MAX_ENTRIES`] in all.
fn version_needs(endian: Endianness, b: &[u8], count: Option<u64>) -> Vec<(u64, u64, bool)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for _ in 0..count.unwrap_or(u64::MAX).min(MAX_ENTRIES as u64) {
        let Some(need) = pod_at::<Verneed<Endianness>>(b, at) else {
            break;
        };
        let file = need.vn_file.get(endian).into();
        let mut a = at.saturating_add(need.vn_aux.get(endian) as usize);
        for _ in 0..need.vn_cnt.get(endian) {
            let Some(aux) = pod_at::<Vernaux<Endianness>>(b, a) else {
                break;
            };
            if out.len() == MAX_ENTRIES {
                return out;
            }
            let weak = aux.vna_flags.get(endian).0 & elf::VER_FLG_WEAK.0 != 0;
            out.push((file, aux.vna_name.get(endian).into(), weak));
            match aux.vna_next.get(endian) {
                0 => break,
                next => a = a.saturating_add(next as usize),
            }
        }
        match need.vn_next.get(endian) {
            0 => break,
            next => at = at.saturating_add(next as usize),
        }
    }
    out
}

/// The `DT_VERDEF` table: (version name offset, `VER_FLG_BASE`) of each definition's first name;
/// at most `count` entries (`DT_VERDEFNUM`) and [`MAX_ENTRIES`].
fn version_defs(endian: Endianness, b: &[u8], count: Option<u64>) -> Vec<(u64, bool)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for _ in 0..count.unwrap_or(u64::MAX).min(MAX_ENTRIES as u64) {
        let Some(def) = pod_at::<Verdef<Endianness>>(b, at) else {
            break;
        };
        let aux_at = at.saturating_add(def.vd_aux.get(endian) as usize);
        if let Some(aux) = pod_at::<Verdaux<Endianness>>(b, aux_at) {
            let base = def.vd_flags.get(endian).0 & elf::VER_FLG_BASE.0 != 0;
            out.push((aux.vda_name.get(endian).into(), base));
        }
        match def.vd_next.get(endian) {
            0 => break,
            next => at = at.saturating_add(next as usize),
        }
    }
    out
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
                out.push((sh.sh_offset(endian).into(), sh.sh_size(endian).into()));
            }
        }
        (!out.is_empty()).then_some(out)
    }
    match elf_class(data, data.len() as u64).ok()? {
        elf::ELFCLASS32 => of::<FileHeader32<Endianness>>(data),
        _ => of::<FileHeader64<Endianness>>(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velox_library::elf::{machine_name, max_version};
    use proptest::prelude::*;
    use std::mem::offset_of;
    use std::path::Path;

    /// Builds a tiny shared object with `compiler` (no libc needed) into `dir`.
    fn build(compiler: &[&str], dir: &Path, name: &str, src: &str, args: &[&str]) -> Vec<u8> {
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, src).unwrap();
        let out = dir.join(name);
        let o = std::process::Command::new(compiler[0])
            .args(&compiler[1..])
            .args(["-shared", "-fPIC", "-nostdlib", "-Wl,--build-id=sha1", "-o"])
            .arg(&out)
            .arg(&c)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {compiler:?}: {e}"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    }

    fn cc(dir: &Path, name: &str, src: &str, args: &[&str]) -> Vec<u8> {
        build(&["gcc"], dir, name, src, args)
    }

    /// A library needing a versioned symbol of a versioned library, built by `compiler`, with
    /// RPATH or RUNPATH, DT_FLAGS_1 and an executable stack.
    fn sample_by(compiler: &[&str]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let map = d.path().join("v.map");
        std::fs::write(
            &map,
            "GLIBC_2.17 { global: a; local: *; };\nGLIBC_2.35 { global: b; } GLIBC_2.17;\n",
        )
        .unwrap();
        build(
            compiler,
            d.path(),
            "libc.so.6",
            "int a(void){return 1;} int b(void){return 2;}",
            &[
                "-Wl,-soname,libc.so.6",
                &format!("-Wl,--version-script={}", map.display()),
            ],
        );
        let libc = d.path().join("libc.so.6");
        build(
            compiler,
            d.path(),
            "libx.so",
            "extern int b(void); int x(void){return b();}",
            &[
                "-Wl,-soname,libx.so",
                "-Wl,--enable-new-dtags,-rpath,$ORIGIN/deps:/opt/y",
                "-Wl,-z,execstack",
                "-Wl,-z,nodefaultlib",
                libc.to_str().unwrap(),
            ],
        )
    }

    fn sample() -> Vec<u8> {
        sample_by(&["gcc"])
    }

    /// What `object`'s own section-based reading says of the same file: the differential.
    fn by_sections(data: &[u8]) -> ElfSummary {
        fn of<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> ElfSummary {
            let h = H::parse(data).unwrap();
            let e = h.endian().unwrap();
            let sections = h.sections(e, data).unwrap();
            let mut s = ElfSummary {
                class_bits: if h.is_class_64() { 64 } else { 32 },
                big_endian: h.is_big_endian(),
                machine: h.e_machine(e).0,
                ..ElfSummary::default()
            };
            for ph in h.program_headers(e, data).unwrap() {
                if ph.p_type(e) == PT_GNU_STACK {
                    s.exec_stack = Some(ph.p_flags(e).0 & elf::PF_X.0 != 0);
                }
                let mut notes = ph.notes(e, data).unwrap().into_iter().flatten();
                while let (None, Some(n)) = (&s.build_id, notes.next().transpose().unwrap()) {
                    if n.name() == elf::ELF_NOTE_GNU && n.n_type(e) == elf::NT_GNU_BUILD_ID {
                        s.build_id = Some(n.desc().iter().map(|b| format!("{b:02x}")).collect());
                    }
                }
            }
            let (dyns, link) = sections.dynamic(e, data).unwrap().unwrap();
            let strings = sections.strings(e, data, link).unwrap();
            for d in dyns.iter().take_while(|d| d.d_tag(e) != DT_NULL) {
                let text = || lossy(d.string(e, strings).unwrap());
                match d.d_tag(e) {
                    DT_FLAGS_1 => s.flags_1 = d.val(e),
                    DT_NEEDED => s.needed.push(text()),
                    DT_SONAME => s.soname = Some(text()),
                    DT_RPATH => s.rpath.extend(split_path_list(&text())),
                    DT_RUNPATH => s.runpath.extend(split_path_list(&text())),
                    _ => {}
                }
            }
            if let Some((mut it, link)) = sections.gnu_verneed(e, data).unwrap() {
                let strings = sections.strings(e, data, link).unwrap();
                while let Some((need, mut auxs)) = it.next().unwrap() {
                    let file = lossy(need.file(e, strings).unwrap());
                    while let Some(aux) = auxs.next().unwrap() {
                        let pair = (file.clone(), lossy(aux.name(e, strings).unwrap()));
                        match aux.vna_flags.get(e).0 & elf::VER_FLG_WEAK.0 {
                            0 => s.version_needs.push(pair),
                            _ => s.weak_version_needs.push(pair),
                        }
                    }
                }
            }
            if let Some((mut it, link)) = sections.gnu_verdef(e, data).unwrap() {
                let strings = sections.strings(e, data, link).unwrap();
                s.has_verdef = true;
                while let Some((def, mut auxs)) = it.next().unwrap() {
                    let name = lossy(auxs.next().unwrap().unwrap().name(e, strings).unwrap());
                    match def.vd_flags.get(e).0 & elf::VER_FLG_BASE.0 {
                        0 => s.version_defs.push(name),
                        _ => s.version_base = Some(name),
                    }
                }
            }
            s
        }
        match elf_class(data, data.len() as u64).unwrap() {
            elf::ELFCLASS32 => of::<FileHeader32<Endianness>>(data),
            _ => of::<FileHeader64<Endianness>>(data),
        }
    }

    /// The reader and `object`'s section reading agree on `b`, which is the sample.
    fn agrees_with_sections(b: &[u8], bits: u8, machine: u16, big_endian: bool) {
        let s = elf_summary(b).unwrap();
        assert_eq!(s, by_sections(b));
        assert_eq!(
            (s.class_bits, s.machine, s.big_endian),
            (bits, machine, big_endian)
        );
        assert_eq!(s.needed, ["libc.so.6"]);
        assert_eq!(s.runpath, ["$ORIGIN/deps", "/opt/y"]);
        assert_eq!(s.flags_1 & elf::DF_1_NODEFLIB.0, elf::DF_1_NODEFLIB.0);
        assert_eq!(
            s.version_needs,
            [("libc.so.6".to_string(), "GLIBC_2.35".to_string())]
        );
        assert_eq!(s.build_id.as_ref().map(String::len), Some(40));
    }

    #[test]
    fn the_reader_says_what_objects_sections_say_in_every_class_and_byte_order() {
        agrees_with_sections(&sample(), 64, elf::EM_X86_64.0, false);
        agrees_with_sections(&sample_by(&["gcc", "-m32"]), 32, elf::EM_386.0, false);
        let big = ["aarch64-linux-gnu-gcc", "-mbig-endian"];
        agrees_with_sections(&sample_by(&big), 64, elf::EM_AARCH64.0, true);
        let d = tempfile::tempdir().unwrap();
        let libc = std::process::Command::new("gcc")
            .arg("-print-file-name=libc.so.6")
            .output()
            .unwrap();
        let libc = String::from_utf8(libc.stdout).unwrap();
        let libc = std::fs::read(libc.trim()).unwrap();
        assert_eq!(elf_summary(&libc).unwrap(), by_sections(&libc));
        let weak = cc(d.path(), "libw.so", "int w(void){return 0;}", &[]);
        assert_eq!(elf_summary(&weak).unwrap(), by_sections(&weak));
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
        let d = tempfile::tempdir().unwrap();
        let old = cc(
            d.path(),
            "libo.so",
            "int o(void){return 0;}",
            &["-Wl,--disable-new-dtags,-rpath,$ORIGIN/a:/b"],
        );
        let s = elf_summary(&old).unwrap();
        assert_eq!(
            (s.rpath, s.runpath),
            (vec!["$ORIGIN/a".into(), "/b".into()], vec![])
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
        assert!(s.has_verdef);
        assert_eq!(s.version_base.as_deref(), Some("libstdc++.so.6"));
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
        let machine = offset_of!(FileHeader64<Endianness>, e_machine);
        patched[machine..][..2].copy_from_slice(&elf::EM_AARCH64.0.to_le_bytes());
        assert_eq!(elf_summary(&patched).unwrap().machine, elf::EM_AARCH64.0);
        assert_eq!(
            super::super::elf::elf_kind(&patched),
            Some((64, elf::EM_AARCH64.0))
        );
        assert_eq!(machine_name(elf::EM_AARCH64.0), "aarch64");
        let mut odd = good.clone();
        odd[offset_of!(FileHeader64<Endianness>, e_phentsize)] += 8;
        let e = elf_summary(&odd).unwrap_err().to_string();
        assert_eq!(e, "invalid ELF: e_phentsize 64, not 56");
    }

    /// A source that answers only what it is asked, and knows no size (as a stream may not).
    struct Asked<'a>(&'a [u8], Vec<Req>);

    impl ElfSource for Asked<'_> {
        fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError> {
            self.1.extend_from_slice(reqs);
            SliceSource(self.0).fetch(reqs)
        }
    }

    #[test]
    fn a_stream_is_asked_for_what_the_head_announces() {
        let b = sample();
        let mut src = Asked(&b, Vec::new());
        assert_eq!(
            summary_from_segments(&mut src).unwrap(),
            elf_summary(&b).unwrap()
        );
        let head = &b[..HEAD.min(b.len())];
        let second = segment_reqs(head);
        assert!(!second.is_empty());
        assert_eq!(
            src.1[0],
            Req::Range {
                off: 0,
                len: HEAD as u64
            }
        );
        assert_eq!(src.1[1..=second.len()], second[..]);
        assert!(src.1.iter().all(|r| match r {
            Req::Range { len, .. } => *len <= MAX_TABLE,
            Req::CStr(_) => true,
        }));
    }

    #[test]
    fn stripped_section_headers_change_nothing() {
        let mut b = sample();
        let full = elf_summary(&b).unwrap();
        // e_shoff = 0, e_shnum = 0, e_shstrndx = 0: what `sstrip` leaves.
        type H = FileHeader64<Endianness>;
        b[offset_of!(H, e_shoff)..][..8].fill(0);
        b[offset_of!(H, e_shnum)..][..2].fill(0);
        b[offset_of!(H, e_shstrndx)..][..2].fill(0);
        assert_eq!(elf_summary(&b).unwrap(), full);
        assert_eq!(string_ranges(&b), None);
    }

    #[test]
    fn string_ranges_cover_the_constants() {
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
    }

    proptest! {
        #[test]
        fn elf_summary_never_panics(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = elf_summary(&b);
            let _ = summary_from_segments(&mut Asked(&b, Vec::new()));
            let _ = string_ranges(&b);
        }

        #[test]
        fn elf_summary_of_a_mangled_real_file_never_panics(
            cut in 0usize..8192, at in 0usize..8192, byte in any::<u8>()
        ) {
            let mut b = SAMPLE.with(|s| s.clone());
            let n = b.len();
            b[at % n] = byte;
            b.truncate(cut.min(n));
            let _ = elf_summary(&b);
            let _ = summary_from_segments(&mut Asked(&b, Vec::new()));
            let _ = string_ranges(&b);
        }
    }

    thread_local! {
        static SAMPLE: Vec<u8> = sample();
    }
}
