//! The segment reader: what glibc's loader itself reads from a shared object (ELF header, program
//! headers, `PT_DYNAMIC`, the strings and version tables it points at, `PT_NOTE`), without section
//! headers. Used when section headers are stripped, and for jar entries, which are read as
//! streams: every read is a batch of byte ranges, so a source that can only stream from the start
//! (a zip entry) answers each batch in one pass and never holds the whole file.

use super::elf::{ElfSummary, lossy};
use crate::check::ParseError;

/// Longest string read at one offset of the dynamic string table.
const MAX_STRING: usize = 4096;
/// Largest `PT_DYNAMIC`, `PT_NOTE` or version table read.
const MAX_TABLE: u64 = 256 * 1024;
/// Most entries walked in one version table (hostile input must not loop long).
const MAX_ENTRIES: usize = 8192;

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;

/// One byte range wanted from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Req {
    /// `len` bytes at `off` (fewer at the end of the file).
    Range { off: u64, len: u64 },
    /// A NUL-terminated string at `off` (without the NUL; at most 4 KiB).
    CStr(u64),
}

/// Random access to a file's bytes, in batches.
pub trait ElfSource {
    /// The bytes of each request, in order.
    fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError>;
}

/// A file in memory (or mapped).
pub struct SliceSource<'a>(pub &'a [u8]);

impl ElfSource for SliceSource<'_> {
    fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError> {
        Ok(reqs.iter().map(|r| slice_req(self.0, 0, r)).collect())
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

/// Reads integers of one file's class and byte order.
#[derive(Clone, Copy)]
struct Fmt {
    big: bool,
    wide: bool,
}

impl Fmt {
    fn u16(self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        } as u64)
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        } as u64)
    }
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(self, b: &[u8], at: usize) -> Option<u64> {
        if self.wide {
            self.u64(b, at)
        } else {
            self.u32(b, at)
        }
    }
}

fn bad(what: &str) -> ParseError {
    ParseError::new(format!("invalid ELF: {what}"))
}

/// A program header, the fields the loader uses.
#[derive(Debug, Clone, Copy)]
struct Phdr {
    p_type: u64,
    flags: u64,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    align: u64,
}

/// The file offset of virtual address `v` (through the `PT_LOAD` that maps it).
fn file_offset(loads: &[Phdr], v: u64) -> Option<u64> {
    loads
        .iter()
        .find(|l| v >= l.vaddr && v - l.vaddr < l.filesz)
        .map(|l| l.offset.saturating_add(v - l.vaddr))
}

const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const PT_NOTE: u64 = 4;
const PT_GNU_STACK: u64 = 0x6474_e551;

/// The program headers in `bytes` (`phnum` entries of `phentsize`).
fn parse_phdrs(f: Fmt, bytes: &[u8], phnum: u64, phentsize: u64) -> Vec<Phdr> {
    (0..phnum as usize)
        .map(|i| {
            let b = bytes.get(i * phentsize as usize..).unwrap_or(&[]);
            if f.wide {
                Phdr {
                    p_type: f.u32(b, 0).unwrap_or(0),
                    flags: f.u32(b, 4).unwrap_or(0),
                    offset: f.u64(b, 8).unwrap_or(0),
                    vaddr: f.u64(b, 16).unwrap_or(0),
                    filesz: f.u64(b, 32).unwrap_or(0),
                    align: f.u64(b, 48).unwrap_or(0),
                }
            } else {
                Phdr {
                    p_type: f.u32(b, 0).unwrap_or(0),
                    offset: f.u32(b, 4).unwrap_or(0),
                    vaddr: f.u32(b, 8).unwrap_or(0),
                    filesz: f.u32(b, 16).unwrap_or(0),
                    flags: f.u32(b, 24).unwrap_or(0),
                    align: f.u32(b, 28).unwrap_or(0),
                }
            }
        })
        .collect()
}

/// The second batch the reader asks for: every `PT_NOTE`, then `PT_DYNAMIC`.
fn segment_reqs_of(phdrs: &[Phdr]) -> Vec<Req> {
    let mut reqs: Vec<Req> = phdrs
        .iter()
        .filter(|p| p.p_type == PT_NOTE)
        .map(|n| Req::Range {
            off: n.offset,
            len: n.filesz.min(MAX_TABLE),
        })
        .collect();
    if let Some(d) = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC) {
        reqs.push(Req::Range {
            off: d.offset,
            len: d.filesz.min(MAX_TABLE),
        });
    }
    reqs
}

/// The ranges [`summary_from_segments`] will ask for after the first 64 KiB, computed from
/// those bytes (empty when the program headers lie beyond them): a streamed source captures
/// them in its first pass instead of reading again up to `PT_DYNAMIC`.
pub fn segment_reqs(head: &[u8]) -> Vec<Req> {
    if head.len() < 64 || head[..4] != *b"\x7fELF" {
        return Vec::new();
    }
    let wide = head[4] == 2;
    let f = Fmt {
        big: head[5] == 2,
        wide,
    };
    let (phoff, phentsize, phnum) = if wide {
        (f.u64(head, 32), f.u16(head, 54), f.u16(head, 56))
    } else {
        (f.u32(head, 28), f.u16(head, 42), f.u16(head, 44))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Vec::new();
    };
    let table = phnum * phentsize;
    if phentsize < if wide { 56 } else { 32 } || phoff.saturating_add(table) > head.len() as u64 {
        return Vec::new();
    }
    let bytes = &head[phoff as usize..(phoff + table) as usize];
    segment_reqs_of(&parse_phdrs(f, bytes, phnum, phentsize))
}

/// Summarises an ELF file from its segments, as the loader sees it.
pub fn summary_from_segments(src: &mut dyn ElfSource) -> Result<ElfSummary, ParseError> {
    let head = src
        .fetch(&[Req::Range {
            off: 0,
            len: 64 * 1024,
        }])?
        .remove(0);
    if head.len() < 20 || head[..4] != *b"\x7fELF" {
        return Err(ParseError::new("not an ELF file"));
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        c => return Err(bad(&format!("EI_CLASS is {c}"))),
    };
    let f = Fmt {
        big: head[5] == 2,
        wide,
    };
    let hsize = if wide { 64 } else { 52 };
    if head.len() < hsize {
        return Err(ParseError::new(format!(
            "truncated ELF: header needs {hsize} bytes, file size {}",
            head.len()
        )));
    }
    let machine = f.u16(&head, 18).ok_or_else(|| bad("header"))? as u16;
    let (phoff, phentsize, phnum) = if wide {
        (f.u64(&head, 32), f.u16(&head, 54), f.u16(&head, 56))
    } else {
        (f.u32(&head, 28), f.u16(&head, 42), f.u16(&head, 44))
    };
    let (phoff, phentsize, phnum) = (
        phoff.ok_or_else(|| bad("header"))?,
        phentsize.ok_or_else(|| bad("header"))?,
        phnum.ok_or_else(|| bad("header"))?,
    );
    let min_ent = if wide { 56 } else { 32 };
    if phnum > 0 && phentsize < min_ent {
        return Err(bad(&format!("e_phentsize {phentsize}")));
    }
    let table = phnum * phentsize;
    let phdrs_bytes = if phoff.saturating_add(table) <= head.len() as u64 {
        head[phoff as usize..(phoff + table) as usize].to_vec()
    } else {
        src.fetch(&[Req::Range {
            off: phoff,
            len: table,
        }])?
        .remove(0)
    };
    if (phdrs_bytes.len() as u64) < table {
        return Err(ParseError::new(format!(
            "truncated ELF: program headers at offset {phoff} beyond the file"
        )));
    }
    let mut s = ElfSummary {
        class_bits: if wide { 64 } else { 32 },
        big_endian: f.big,
        machine,
        ..ElfSummary::default()
    };
    let phdrs = parse_phdrs(f, &phdrs_bytes, phnum, phentsize);
    let loads: Vec<Phdr> = phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .copied()
        .collect();
    let notes: Vec<Phdr> = phdrs
        .iter()
        .filter(|p| p.p_type == PT_NOTE)
        .copied()
        .collect();
    if let Some(st) = phdrs.iter().find(|p| p.p_type == PT_GNU_STACK) {
        s.exec_stack = Some(st.flags & 1 != 0);
    }
    let dynamic = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC).copied();
    let reqs = segment_reqs_of(&phdrs);
    let mut got = src.fetch(&reqs)?;
    let dyn_bytes = if dynamic.is_some() {
        got.pop().unwrap_or_default()
    } else {
        Vec::new()
    };
    for (n, bytes) in notes.iter().zip(&got) {
        if s.build_id.is_none() {
            s.build_id = build_id(f, bytes, n.align);
        }
    }
    if dynamic.is_none() {
        return Ok(s);
    }

    // The dynamic array: (tag, value) words until DT_NULL.
    let w = if wide { 8 } else { 4 };
    let mut entries = Vec::new();
    let mut at = 0;
    while let (Some(tag), Some(val)) = (f.word(&dyn_bytes, at), f.word(&dyn_bytes, at + w)) {
        if tag == DT_NULL {
            break;
        }
        entries.push((tag, val));
        at += 2 * w;
    }
    let get = |t: u64| entries.iter().find(|(tag, _)| *tag == t).map(|(_, v)| *v);
    s.flags_1 = get(DT_FLAGS_1).unwrap_or(0);
    let strtab = get(DT_STRTAB)
        .and_then(|v| file_offset(&loads, v))
        .ok_or_else(|| bad("PT_DYNAMIC has no DT_STRTAB in a PT_LOAD"))?;
    let strsz = get(DT_STRSZ).unwrap_or(u64::MAX);
    let string_tags = [DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH];
    let strings: Vec<(u64, u64)> = entries
        .iter()
        .filter(|(t, v)| string_tags.contains(t) && *v < strsz)
        .copied()
        .collect();
    let verneed = get(DT_VERNEED).and_then(|v| file_offset(&loads, v));
    let verdef = get(DT_VERDEF).and_then(|v| file_offset(&loads, v));
    let mut reqs: Vec<Req> = strings
        .iter()
        .map(|(_, o)| Req::CStr(strtab.saturating_add(*o)))
        .collect();
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
            DT_RPATH => s
                .rpath
                .extend(v.split(':').filter(|p| !p.is_empty()).map(String::from)),
            _ => s
                .runpath
                .extend(v.split(':').filter(|p| !p.is_empty()).map(String::from)),
        }
    }
    let need_bytes = verneed.and_then(|_| got.next()).unwrap_or_default();
    let def_bytes = verdef.and_then(|_| got.next()).unwrap_or_default();

    // Version tables: collect (file offset, vna_name offset, weak) and (vda_name, base), then
    // fetch their strings in one more batch.
    let mut needs: Vec<(u64, u64, bool)> = Vec::new();
    let count = get(DT_VERNEEDNUM).unwrap_or(u64::MAX) as usize;
    let mut at = 0usize;
    for _ in 0..count.min(MAX_ENTRIES) {
        let (Some(cnt), Some(file), Some(aux), Some(next)) = (
            f.u16(&need_bytes, at + 2),
            f.u32(&need_bytes, at + 4),
            f.u32(&need_bytes, at + 8),
            f.u32(&need_bytes, at + 12),
        ) else {
            break;
        };
        let mut a = at + aux as usize;
        for _ in 0..(cnt as usize).min(MAX_ENTRIES) {
            let (Some(flags), Some(name), Some(anext)) = (
                f.u16(&need_bytes, a + 4),
                f.u32(&need_bytes, a + 8),
                f.u32(&need_bytes, a + 12),
            ) else {
                break;
            };
            needs.push((file, name, flags & 2 != 0));
            if anext == 0 {
                break;
            }
            a += anext as usize;
        }
        if next == 0 {
            break;
        }
        at += next as usize;
    }
    let mut defs: Vec<(u64, bool)> = Vec::new();
    if verdef.is_some() {
        s.has_verdef = true;
        let count = get(DT_VERDEFNUM).unwrap_or(u64::MAX) as usize;
        let mut at = 0usize;
        for _ in 0..count.min(MAX_ENTRIES) {
            let (Some(flags), Some(aux), Some(next)) = (
                f.u16(&def_bytes, at + 2),
                f.u32(&def_bytes, at + 12),
                f.u32(&def_bytes, at + 16),
            ) else {
                break;
            };
            if let Some(name) = f.u32(&def_bytes, at + aux as usize) {
                defs.push((name, flags & 1 != 0));
            }
            if next == 0 {
                break;
            }
            at += next as usize;
        }
    }
    let mut offs: Vec<u64> = needs
        .iter()
        .flat_map(|(file, name, _)| [*file, *name])
        .chain(defs.iter().map(|(n, _)| *n))
        .collect();
    offs.sort_unstable();
    offs.dedup();
    let reqs: Vec<Req> = offs
        .iter()
        .map(|o| Req::CStr(strtab.saturating_add(*o)))
        .collect();
    let texts = src.fetch(&reqs)?;
    let text = |o: u64| {
        offs.binary_search(&o)
            .ok()
            .map(|i| lossy(&texts[i]))
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

/// The GNU build id among the notes of one `PT_NOTE` segment.
fn build_id(f: Fmt, b: &[u8], align: u64) -> Option<String> {
    let align = if align == 8 { 8 } else { 4 };
    let up = |x: usize| (x + align - 1) & !(align - 1);
    let mut at = 0usize;
    while let (Some(namesz), Some(descsz), Some(ty)) =
        (f.u32(b, at), f.u32(b, at + 4), f.u32(b, at + 8))
    {
        let name_at = at + 12;
        let desc_at = up(name_at.checked_add(namesz as usize)?);
        let end = up(desc_at.checked_add(descsz as usize)?);
        let name = b.get(name_at..name_at + namesz as usize)?;
        if name == b"GNU\0" && ty == 3 {
            let desc = b.get(desc_at..desc_at + descsz as usize)?;
            return Some(desc.iter().map(|x| format!("{x:02x}")).collect());
        }
        if end <= at {
            return None;
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velox_library::elf::elf_summary;
    use proptest::prelude::*;

    fn gcc(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let c = dir.join("x.c");
        std::fs::write(&c, "extern int b(void); int x(void){return b();}").unwrap();
        let lib = dir.join("libb.so");
        let map = dir.join("v.map");
        std::fs::write(
            &map,
            "V1 { global: b; local: *; };\nV2 { global: b2; } V1;\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("b.c"),
            "int b(void){return 1;} int b2(void){return 2;}",
        )
        .unwrap();
        let ok = std::process::Command::new("gcc")
            .args([
                "-shared",
                "-fPIC",
                "-nostdlib",
                "-Wl,-soname,libb.so.1",
                "-o",
            ])
            .arg(&lib)
            .arg(dir.join("b.c"))
            .arg(format!("-Wl,--version-script={}", map.display()))
            .status()
            .unwrap();
        assert!(ok.success());
        let out = dir.join("libx.so");
        let ok = std::process::Command::new("gcc")
            .args(["-shared", "-fPIC", "-nostdlib", "-Wl,--build-id=sha1", "-o"])
            .arg(&out)
            .arg(&c)
            .args(args)
            .arg(&lib)
            .status()
            .unwrap();
        assert!(ok.success());
        std::fs::read(out).unwrap()
    }

    #[test]
    fn segments_say_what_sections_say() {
        let d = tempfile::tempdir().unwrap();
        let b = gcc(
            d.path(),
            &[
                "-Wl,-soname,libx.so",
                "-Wl,--disable-new-dtags,-rpath,$ORIGIN/a:/b",
                "-Wl,-z,nodefaultlib",
            ],
        );
        let by_sections = elf_summary(&b).unwrap();
        let by_segments = summary_from_segments(&mut SliceSource(&b)).unwrap();
        assert_eq!(by_segments, by_sections);
        assert_eq!(by_segments.needed, ["libb.so.1"]);
        assert_eq!(by_segments.rpath, ["$ORIGIN/a", "/b"]);
        assert_eq!(by_segments.flags_1 & 0x800, 0x800, "DF_1_NODEFLIB");
        assert_eq!(
            by_segments.version_needs,
            [("libb.so.1".to_string(), "V1".to_string())]
        );
        assert_eq!(by_segments.build_id.as_ref().map(String::len), Some(40));
    }

    #[test]
    fn stripped_section_headers_fall_back_to_pt_dynamic() {
        let d = tempfile::tempdir().unwrap();
        let mut b = gcc(d.path(), &["-Wl,-soname,libx.so"]);
        let full = elf_summary(&b).unwrap();
        // e_shoff = 0, e_shnum = 0, e_shstrndx = 0: what `sstrip` leaves.
        b[40..48].copy_from_slice(&0u64.to_le_bytes());
        b[60..64].copy_from_slice(&[0, 0, 0, 0]);
        let stripped = elf_summary(&b).unwrap();
        assert_eq!(stripped, full);
        assert_eq!(stripped.needed, ["libb.so.1"]);
    }

    proptest! {
        #[test]
        fn segments_never_panic(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = summary_from_segments(&mut SliceSource(&b));
        }

        #[test]
        fn segments_of_a_mangled_header_never_panic(at in 0usize..4096, byte in any::<u8>(), cut in 0usize..8192) {
            let mut b = SAMPLE.with(|s| s.clone());
            let n = b.len();
            b[at % n] = byte;
            b.truncate(cut.min(n));
            let _ = summary_from_segments(&mut SliceSource(&b));
        }
    }

    thread_local! {
        static SAMPLE: Vec<u8> = gcc(tempfile::tempdir().unwrap().path(), &["-Wl,-soname,libx.so"]);
    }
}
