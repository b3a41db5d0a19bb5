//! The CPU a library was built for, from its own DWARF producer record (`cpu_isa`): the flags the
//! project's compile units need, those only a few units need, those the program dispatches
//! itself, and the target options behind them. A jar entry is streamed, and its section headers
//! sit at its end: [`Spool`] writes the parts outside its loaded segments (the debug sections,
//! symbol tables, section headers) into an unnamed temporary file at their offsets, sparse, so
//! the record can be read from a map as for a file on disk.

use super::facts::{CpuNeedsFacts, TargetOption};
use cpu_isa::{CpuNeeds, DISPATCHED_UNITS, Machine, Producers, aarch64, x86};
use std::os::unix::fs::FileExt;

/// The record of a mapped ELF file. Only each unit's root DIE and its strings are read, pages
/// apart: the map is advised random (no read-ahead). The pages touched are clean file pages the
/// kernel can reclaim (on the 1.7.0 bundle the release agent's peak RSS goes from 12.4 to 24 MiB
/// during the cold round).
pub(super) fn record_of_map(map: &memmap2::Mmap) -> CpuNeedsFacts {
    let _ = map.advise(memmap2::Advice::Random);
    record_of(map)
}

/// The record of an ELF image (a mapped file or a spooled jar entry).
pub(super) fn record_of(bytes: &[u8]) -> CpuNeedsFacts {
    match cpu_isa::read_producers(bytes) {
        Ok(p) => record_from(&p),
        Err(e) => unreadable(format!("DWARF producer record: {e}")),
    }
}

/// A record that could not be read, and why.
pub(super) fn unreadable(error: String) -> CpuNeedsFacts {
    CpuNeedsFacts {
        record: "unreadable".into(),
        error: Some(error),
        ..CpuNeedsFacts::default()
    }
}

type FlagsOf = fn(&str) -> Option<cpu_isa::FlagSet>;

fn flags_fn(machine: Machine) -> Option<FlagsOf> {
    match machine {
        Machine::X86_64 => Some(x86::flags_of),
        Machine::Aarch64 => Some(aarch64::flags_of),
        Machine::Other(_) => None,
    }
}

/// The judgement of `cpu_isa::cpu_needs` with the target module of the library's machine.
pub(super) fn record_from(p: &Producers) -> CpuNeedsFacts {
    let with = p.with_producer();
    let mut f = CpuNeedsFacts {
        units: p.units.len(),
        units_with_producer: with,
        units_without_producer: p.units.len() - with,
        ..CpuNeedsFacts::default()
    };
    let Some(flags_of) = flags_fn(p.machine) else {
        f.record = "unreadable".into();
        f.error = Some(format!("no CPU table for ELF machine {:?}", p.machine));
        return f;
    };
    match cpu_isa::cpu_needs(p, flags_of) {
        CpuNeeds::NoProducer { .. } => f.record = "no_producer".into(),
        CpuNeeds::NoFlagRecord { .. } => f.record = "no_flag_record".into(),
        CpuNeeds::Known(n) => {
            f.record = "known".into();
            let strs =
                |s: &std::collections::BTreeSet<&str>| s.iter().map(|x| x.to_string()).collect();
            f.required = strs(&n.required);
            f.intrinsics_only = strs(&n.intrinsics_only);
            f.minority = n
                .minority
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            f.dispatched = n
                .dispatched
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            f.units_considered = n.considered;
            f.units_runtime = n.runtime_units;
            f.units_without_flags = n.without_flags;
            f.unknown_options = n.unknown_options.iter().cloned().collect();
            f.target_options = target_options(p, p.machine, flags_of);
        }
    }
    f
}

/// The ISA options of the project's units (not the toolchain runtime's, not the dispatched
/// ones) that more than half of them carry, in the order first seen.
fn target_options(p: &Producers, machine: Machine, flags_of: FlagsOf) -> Vec<TargetOption> {
    let mut counted: Vec<TargetOption> = Vec::new();
    let mut main = 0usize;
    for u in &p.units {
        let Some(prod) = u.producer.as_deref() else {
            continue;
        };
        if cpu_isa::is_toolchain_runtime(u)
            || DISPATCHED_UNITS.iter().any(|d| u.name.ends_with(d))
            || flags_of(prod).is_none()
        {
            continue;
        }
        main += 1;
        let mut opts: Vec<String> = match machine {
            Machine::Aarch64 => aarch64::target_of(prod)
                .map(|t| vec![t.option])
                .unwrap_or_default(),
            _ => prod
                .split_whitespace()
                .filter(|t| is_x86_isa_option(t))
                .map(str::to_string)
                .collect(),
        };
        opts.dedup();
        for o in opts {
            match counted.iter_mut().find(|c| c.option == o) {
                Some(c) => c.units += 1,
                None => counted.push(TargetOption {
                    option: o,
                    units: 1,
                }),
            }
        }
    }
    counted.retain(|c| c.units * 2 > main);
    counted
}

/// `-march=…` or `-m[no-]<ext>` of GCC's x86 table (not `-mtune`, `-mfpmath`, ...).
fn is_x86_isa_option(t: &str) -> bool {
    if t.starts_with("-march=") {
        return true;
    }
    t.strip_prefix("-m")
        .map(|m| m.strip_prefix("no-").unwrap_or(m))
        .is_some_and(|m| x86::extension(m).is_some())
}

/// The `/proc/cpuinfo` flags an x86 option enables (`-mbmi2` → `bmi2`, `-march=x86-64-v3` →
/// `avx2 …`); empty for `-mno-…`.
pub(super) fn x86_option_flags(option: &str) -> Vec<&'static str> {
    // What the option adds to GCC's x86-64 default (which every x86-64 CPU has).
    let (base, _) = x86::resolve(std::iter::empty());
    let (on, _) = x86::resolve([option]);
    on.iter()
        .filter(|o| !base.contains(o))
        .filter_map(|o| x86::extension(o).map(|e| e.flag))
        .collect()
}

/// A temporary copy of a streamed ELF image with only the bytes outside its `PT_LOAD` segments
/// (and its first [`KEEP_HEAD`] bytes) written: the rest stays a hole. Bounded by the entry's
/// declared size, which the jar reader caps.
pub(super) struct Spool {
    file: std::fs::File,
    /// `PT_LOAD` file ranges, once the head was seen; `None`: write everything.
    skip: Option<Vec<(u64, u64)>>,
    /// The first [`KEEP_HEAD`] bytes, until the program headers are read.
    head: Option<Vec<u8>>,
    /// Bytes written.
    pub written: u64,
    error: Option<String>,
}

/// The temporary file of a spool could not be made.
#[derive(Debug, thiserror::Error)]
#[error("creating a temporary file in {}: {source}", dir.display())]
pub struct SpoolError {
    /// `TMPDIR` or its default.
    pub dir: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The ELF and program headers are always written.
const KEEP_HEAD: u64 = 64 * 1024;

impl Spool {
    /// An unnamed temporary file (`O_TMPFILE` where the file system has it) in `TMPDIR`.
    pub fn new() -> Result<Spool, SpoolError> {
        let file = tempfile::tempfile().map_err(|source| SpoolError {
            dir: std::env::temp_dir(),
            source,
        })?;
        Ok(Spool {
            file,
            skip: None,
            head: Some(Vec::new()),
            written: 0,
            error: None,
        })
    }

    /// The next `chunk` of the image, at file offset `pos` (chunks come in order).
    pub fn feed(&mut self, chunk: &[u8], pos: u64) {
        if self.error.is_some() {
            return;
        }
        // Everything is written until the program headers are read (the head is kept anyway).
        if let Some(head) = &mut self.head {
            if pos != head.len() as u64 {
                self.head = None;
            } else {
                let room = (KEEP_HEAD as usize).saturating_sub(head.len());
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if head.len() as u64 >= KEEP_HEAD {
                    self.skip = load_ranges(head);
                    self.head = None;
                }
            }
        }
        let end = pos + chunk.len() as u64;
        let mut at = pos;
        let skip = self.skip.as_deref().unwrap_or(&[]);
        while at < end {
            // The next skipped range that covers or follows `at`.
            let next = skip
                .iter()
                .filter(|(s, e)| *e > at && *s < end && *e > KEEP_HEAD)
                .map(|(s, e)| ((*s).max(KEEP_HEAD), *e))
                .min();
            let (write_end, resume) = match next {
                Some((s, e)) if s <= at => (at, e.min(end)),
                Some((s, e)) => (s.min(end), e.min(end)),
                None => (end, end),
            };
            if write_end > at {
                let part = &chunk[(at - pos) as usize..(write_end - pos) as usize];
                if let Err(e) = self.file.write_all_at(part, at) {
                    self.error = Some(format!("writing the temporary copy at byte {at}: {e}"));
                    return;
                }
                self.written += part.len() as u64;
            }
            at = resume.max(write_end);
        }
    }

    /// The record of the spooled image of `size` bytes.
    pub fn finish(self, size: u64) -> CpuNeedsFacts {
        if let Some(e) = self.error {
            return unreadable(e);
        }
        if let Err(e) = self.file.set_len(size) {
            return unreadable(format!("sizing the temporary copy: {e}"));
        }
        if size == 0 {
            return record_of(&[]);
        }
        // SAFETY: an unnamed file only this process holds, mapped read-only.
        match unsafe { memmap2::Mmap::map(&self.file) } {
            Ok(map) => record_of_map(&map),
            Err(e) => unreadable(format!("mapping the temporary copy: {e}")),
        }
    }
}

/// The `PT_LOAD` file ranges of a 64-bit ELF whose program headers lie in `head`, sorted.
fn load_ranges(head: &[u8]) -> Option<Vec<(u64, u64)>> {
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 {
        return None;
    }
    let le = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u64> {
        let b: [u8; 2] = head.get(o..o + 2)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        } as u64)
    };
    let u32_at = |o: usize| -> Option<u64> {
        let b: [u8; 4] = head.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as u64)
    };
    let u64_at = |o: usize| -> Option<u64> {
        let b: [u8; 8] = head.get(o..o + 8)?.try_into().ok()?;
        Some(if le {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    if phentsize < 56 {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..phnum {
        let o = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(o)? == 1 {
            let off = u64_at(o + 8)?;
            let filesz = u64_at(o + 32)?;
            out.push((off, off.saturating_add(filesz)));
        }
    }
    out.sort();
    Some(out)
}

/// A core's `-mcpu` name as people write it: `neoverse-n1` → `Neoverse N1`.
pub(super) fn core_display(name: &str) -> String {
    name.split('-')
        .enumerate()
        .map(|(i, w)| {
            if i > 0 && w.len() <= 3 {
                w.to_ascii_uppercase()
            } else {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_names_as_people_write_them() {
        assert_eq!(core_display("neoverse-n1"), "Neoverse N1");
        assert_eq!(core_display("neoverse-v2"), "Neoverse V2");
        assert_eq!(core_display("cortex-a72"), "Cortex A72");
        assert_eq!(core_display("tsv110"), "Tsv110");
    }

    #[test]
    fn x86_options_to_flags() {
        assert_eq!(x86_option_flags("-mbmi2"), ["bmi2"]);
        assert!(x86_option_flags("-mavx2").contains(&"avx"));
        assert!(x86_option_flags("-march=x86-64-v3").contains(&"avx2"));
        assert!(x86_option_flags("-mno-avx").is_empty());
        assert!(is_x86_isa_option("-mlzcnt") && is_x86_isa_option("-mno-avx512f"));
        assert!(!is_x86_isa_option("-mtune=generic") && !is_x86_isa_option("-mfpmath=sse"));
    }

    /// The spool writes what lies outside `PT_LOAD` and keeps the offsets: an ELF built here
    /// reads the same from the spool as from the file.
    #[test]
    fn spooled_image_reads_like_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.c");
        std::fs::write(&src, "int f(int x) { return x * 3; }\n").unwrap();
        let out = dir.path().join("liba.so");
        let st = std::process::Command::new("gcc")
            .args(["-g", "-shared", "-fPIC", "-mbmi2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("running gcc");
        assert!(st.success());
        let bytes = std::fs::read(&out).unwrap();
        let direct = record_of(&bytes);
        assert_eq!(direct.record, "known", "{direct:?}");
        assert!(direct.required.contains(&"bmi2".to_string()));
        for chunk in [7usize, 4096, 1 << 20] {
            let mut s = Spool::new().unwrap();
            for (i, c) in bytes.chunks(chunk).enumerate() {
                s.feed(c, (i * chunk) as u64);
            }
            let written = s.written;
            assert!(written <= bytes.len() as u64);
            assert_eq!(s.finish(bytes.len() as u64), direct, "chunks of {chunk}");
        }
        let ranges = load_ranges(&bytes).unwrap();
        assert!(!ranges.is_empty() && ranges[0].0 == 0, "{ranges:?}");
    }
}
