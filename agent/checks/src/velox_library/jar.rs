//! Gluten bundle jars: which `linux/<arch>/` dirs hold native libraries, the ELF summary of each
//! `linux/<arch>/lib*.so` entry (decompressed, summarised, dropped) and the build info, parsed
//! once per jar version and cached by file identity.

use super::FileKey;
use super::elf::ElfSummary;
use super::elf_read::{ElfSource, HEAD, MAX_STRING, Req, segment_reqs, summary_from_segments};
use super::facts::CpuNeedsFacts;
use super::producer::{Spool, unreadable};
use super::scan::{Scan, Scanner};
use crate::check::ParseError;
use crate::error::JarError;
use crate::spark_conf::parse_spark_defaults;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest native library read out of a jar into memory.
const MAX_JAR_ENTRY_BYTES: u64 = 2 << 30;

/// One `linux/<arch>/lib*.so` entry of a jar.
#[derive(Debug)]
pub(super) struct JarEntry {
    /// `JAR!entry`.
    pub path: String,
    /// Uncompressed size.
    pub size: u64,
    pub summary: Result<Arc<ElfSummary>, ParseError>,
    pub scan: Arc<Scan>,
    /// The entry's DWARF producer record, read from a sparse temporary copy made in the
    /// first pass.
    pub cpu: Arc<CpuNeedsFacts>,
}

/// What a jar holds for one host architecture, parsed once per jar version: the ELF summaries
/// and string scans of its `linux/<arch>/lib*.so` entries (streamed, never held whole) and its
/// build info. Cached by [`FileKey`] so a warm round does not decompress the jar again.
#[derive(Debug, Default)]
pub(super) struct ParsedJar {
    pub native_arches: Vec<String>,
    pub build_info: BTreeMap<String, String>,
    pub entries: Vec<JarEntry>,
}

/// A cached [`ParsedJar`]: the jar's version and the architecture it was parsed for.
type JarCacheEntry = (FileKey, String, Arc<ParsedJar>);

/// Parsed jars by local path, at most one entry per configured jar.
#[derive(Default)]
pub(super) struct JarCache {
    jars: Mutex<HashMap<PathBuf, JarCacheEntry>>,
    /// `.so` entries read out of jars so far (a warm round adds none).
    pub decompressed: AtomicU64,
    /// Uncompressed bytes streamed out of jars so far, all passes.
    pub bytes: AtomicU64,
    /// Bytes written to temporary copies for the producer record so far.
    pub spooled: AtomicU64,
}

impl JarCache {
    /// The jar at `local` parsed for `arch`, from the cache while its (device, inode, size,
    /// mtime) is unchanged. A jar that fails to parse is not cached (the next round tries again)
    /// and comes back with what was read before the error. `bound`: the configured jars.
    pub fn get(
        &self,
        local: &Path,
        shown: &str,
        arch: &str,
        bound: usize,
    ) -> Result<Arc<ParsedJar>, (ParsedJar, Box<JarError>)> {
        let key = std::fs::metadata(local).ok().map(|m| FileKey::of(&m));
        if let Some(key) = key
            && let Some((k, a, p)) = self.jars.lock().ok().and_then(|c| c.get(local).cloned())
            && k == key
            && a == arch
        {
            return Ok(p);
        }
        let mut parsed = ParsedJar::default();
        if let Err(e) = self.parse_jar(local, shown, arch, &mut parsed) {
            return Err((parsed, Box::new(e)));
        }
        let parsed = Arc::new(parsed);
        if let Some(key) = key
            && let Ok(mut c) = self.jars.lock()
        {
            // Bounded by the configured jars: one entry per jar path.
            if !c.contains_key(local) && c.len() >= bound.max(1) {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, arch.to_string(), parsed.clone()));
        }
        Ok(parsed)
    }

    /// Reads a jar (a zip): which `linux/<arch>/` dirs hold libraries, its build info, and the
    /// summary and scan of each `linux/<arch>/lib*.so` entry, streamed.
    fn parse_jar(
        &self,
        local: &Path,
        shown: &str,
        arch: &str,
        out: &mut ParsedJar,
    ) -> Result<(), JarError> {
        let jar = || shown.to_string();
        let file =
            std::fs::File::open(local).map_err(|source| JarError::Read { jar: jar(), source })?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|source| JarError::NotAJar { jar: jar(), source })?;
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
                    wanted.push((i, name.clone()));
                }
            }
            if name.rsplit('/').next() == Some("gluten-build-info.properties") {
                let mut text = String::new();
                zip.by_index(i)
                    .map_err(|source| JarError::Entry {
                        jar: jar(),
                        entry: name.clone(),
                        source,
                    })?
                    .take(1 << 20)
                    .read_to_string(&mut text)
                    .map_err(|source| JarError::EntryRead {
                        jar: jar(),
                        entry: name.clone(),
                        source,
                    })?;
                out.build_info = parse_build_info(&text);
            }
        }
        out.native_arches.sort();
        for (i, name) in wanted {
            let path = format!("{shown}!{name}");
            let size = zip
                .by_index_raw(i)
                .map(|e| e.size())
                .map_err(|source| JarError::Entry {
                    jar: jar(),
                    entry: name.clone(),
                    source,
                })?;
            if size > MAX_JAR_ENTRY_BYTES {
                return Err(JarError::TooLarge {
                    jar: jar(),
                    entry: name,
                    size,
                });
            }
            self.decompressed.fetch_add(1, Ordering::Relaxed);
            let (spool, spool_error) = match Spool::new() {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            let mut src = EntrySource {
                spool,
                zip: &mut zip,
                index: i,
                size,
                scanner: Some(Scanner::default()),
                scan: None,
                prefetched: Vec::new(),
                bytes: 0,
            };
            let summary = summary_from_segments(&mut src).map(Arc::new);
            // A broken entry may not have been read to its end: finish the scan.
            if src.scanner.is_some() {
                let _ = src.fetch(&[]);
            }
            self.bytes.fetch_add(src.bytes, Ordering::Relaxed);
            let reached_end = src.scan.is_some();
            let scan = Arc::new(src.scan.take().unwrap_or_default());
            let cpu = match (src.spool.take(), spool_error) {
                (Some(s), _) if reached_end => {
                    self.spooled.fetch_add(s.written, Ordering::Relaxed);
                    s.finish(size)
                }
                (_, Some(e)) => unreadable(e.to_string()),
                _ => unreadable(format!("{path}: the entry could not be read to its end")),
            };
            out.entries.push(JarEntry {
                path,
                size,
                summary,
                scan,
                cpu: Arc::new(cpu),
            });
        }
        Ok(())
    }
}

/// Java `.properties` (`gluten-build-info.properties`) as a map, through the one properties
/// parser (`spark_conf`).
pub fn parse_build_info(text: &str) -> BTreeMap<String, String> {
    parse_spark_defaults(text)
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One jar entry as an [`ElfSource`]: each batch of requests is one pass of decompression from
/// the entry's start, ending as soon as the batch is answered. The first pass also runs the
/// string scan to the end of the entry and captures `PT_NOTE` and `PT_DYNAMIC`, so the reader's
/// next batch needs no pass; the last batches end within the first tens of megabytes.
struct EntrySource<'z> {
    zip: &'z mut zip::ZipArchive<std::fs::File>,
    /// The sparse copy the first pass writes (what lies outside `PT_LOAD`).
    spool: Option<Spool>,
    index: usize,
    /// The entry's declared uncompressed size: a stream that goes on past it is refused (a
    /// zip bomb must not keep the check busy).
    size: u64,
    /// Until a pass reaches the end of the entry.
    scanner: Option<Scanner>,
    scan: Option<Scan>,
    prefetched: Vec<(Req, Vec<u8>)>,
    /// Uncompressed bytes read, all passes.
    bytes: u64,
}

/// Decompression chunk.
const CHUNK: usize = 256 * 1024;

/// The ranges the reader will ask for next, gathered from the first `HEAD` bytes and from the
/// rest of the chunk (at `pos`) that completed them.
fn plan(head: &[u8], chunk: &[u8], pos: u64) -> Vec<(Req, Vec<u8>, bool)> {
    let hl = head.len() as u64;
    segment_reqs(head)
        .into_iter()
        .map(|r| {
            let mut got = Vec::new();
            let mut d = gather(&r, &mut got, head, 0);
            let end = pos + chunk.len() as u64;
            if !d && end > hl && hl >= pos {
                d = gather(&r, &mut got, &chunk[(hl - pos) as usize..], hl);
            }
            (r, got, d)
        })
        .collect()
}

/// Appends to `got` the part of `r` inside `chunk` (at file offset `pos`); whether `r` is
/// complete.
fn gather(r: &Req, got: &mut Vec<u8>, chunk: &[u8], pos: u64) -> bool {
    let end = pos + chunk.len() as u64;
    match *r {
        Req::Range { off, len } => {
            let want_end = off.saturating_add(len);
            let (s, e) = (off.max(pos), want_end.min(end));
            if s < e {
                got.extend_from_slice(&chunk[(s - pos) as usize..(e - pos) as usize]);
            }
            want_end <= end
        }
        Req::CStr(off) => {
            if off >= end {
                return false;
            }
            let part = &chunk[(off.max(pos) - pos) as usize..];
            let room = MAX_STRING.saturating_sub(got.len());
            let part = &part[..part.len().min(room)];
            match memchr::memchr(0, part) {
                Some(n) => {
                    got.extend_from_slice(&part[..n]);
                    true
                }
                None => {
                    got.extend_from_slice(part);
                    got.len() >= MAX_STRING
                }
            }
        }
    }
}

impl ElfSource for EntrySource<'_> {
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }

    fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError> {
        if self.scanner.is_none() {
            let hits: Option<Vec<Vec<u8>>> = reqs
                .iter()
                .map(|r| {
                    self.prefetched
                        .iter()
                        .find(|(p, _)| p == r)
                        .map(|(_, b)| b.clone())
                })
                .collect();
            if let Some(h) = hits {
                return Ok(h);
            }
        }
        let first = self.scanner.is_some();
        let mut entry = self
            .zip
            .by_index(self.index)
            .map_err(|e| ParseError::new(format!("reading the entry: {e}")))?;
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); reqs.len()];
        let mut done = vec![false; reqs.len()];
        let mut ahead: Vec<(Req, Vec<u8>, bool)> = Vec::new();
        let mut planned = !first;
        let mut head: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut pos = 0u64;
        loop {
            if done.iter().all(|d| *d)
                && self.scanner.is_none()
                && planned
                && ahead.iter().all(|(_, _, d)| *d)
            {
                break;
            }
            let n = entry
                .read(&mut buf)
                .map_err(|e| ParseError::new(format!("decompressing at byte {pos}: {e}")))?;
            if n == 0 {
                if let Some(s) = self.scanner.take() {
                    self.scan = Some(s.finish());
                }
                if !planned {
                    ahead = plan(&head, &[], pos);
                }
                break;
            }
            if pos + n as u64 > self.size {
                return Err(ParseError::new(format!(
                    "decompresses beyond its declared size of {} bytes",
                    self.size
                )));
            }
            let chunk = &buf[..n];
            self.bytes += n as u64;
            for (i, r) in reqs.iter().enumerate() {
                if !done[i] {
                    done[i] = gather(r, &mut out[i], chunk, pos);
                }
            }
            if !planned {
                let room = HEAD.saturating_sub(head.len());
                head.extend_from_slice(&chunk[..n.min(room)]);
                if head.len() >= HEAD {
                    planned = true;
                    ahead = plan(&head, chunk, pos);
                }
            } else {
                for (r, got, d) in &mut ahead {
                    if !*d {
                        *d = gather(r, got, chunk, pos);
                    }
                }
            }
            if let Some(s) = &mut self.scanner {
                s.feed(chunk);
                if let Some(sp) = &mut self.spool {
                    sp.feed(chunk, pos);
                }
            }
            pos += n as u64;
        }
        self.prefetched
            .extend(ahead.into_iter().map(|(r, b, _)| (r, b)));
        Ok(out)
    }
}

/// The JVM's `os.arch` for a kernel architecture (the jar's `linux/<arch>/` dir).
pub fn jar_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn build_info_properties() {
        let p = parse_build_info(
            "#Generated\ngluten_version=1.6.0\nbackend_type = velox\n! c\ngcc_version: GCC: (GNU) 11.2.1\n",
        );
        assert_eq!(p["gluten_version"], "1.6.0");
        assert_eq!(p["backend_type"], "velox");
        assert_eq!(p["gcc_version"], "GCC: (GNU) 11.2.1");
    }

    proptest! {
        #[test]
        fn build_info_never_panics(s in "\\PC{0,400}") {
            let _ = parse_build_info(&s);
        }
    }
}
