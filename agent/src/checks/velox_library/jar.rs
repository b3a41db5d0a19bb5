//! Gluten bundle jars: which `linux/<arch>/` dirs hold native libraries, the ELF summary of each
//! `linux/<arch>/lib*.so` entry (decompressed, summarised, dropped) and the build info, parsed
//! once per jar version and cached by file identity.

use super::FileKey;
use super::elf::{ElfSummary, elf_summary};
use crate::check::ParseError;
use crate::spark_conf::parse_spark_defaults;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest native library read out of a jar into memory.
const MAX_JAR_ENTRY_BYTES: u64 = 2 << 30;

/// What a jar holds for one host architecture, parsed once per jar version: the ELF summaries
/// of its `linux/<arch>/lib*.so` entries (decompressed in memory, then dropped) and its build
/// info. Cached by [`FileKey`] so a warm round does not decompress the jar again.
#[derive(Debug, Default)]
pub(super) struct ParsedJar {
    pub native_arches: Vec<String>,
    pub build_info: BTreeMap<String, String>,
    /// `JAR!entry`, its uncompressed size, its summary.
    pub entries: Vec<(String, u64, Result<Arc<ElfSummary>, ParseError>)>,
}

/// A cached [`ParsedJar`]: the jar's version and the architecture it was parsed for.
type JarCacheEntry = (FileKey, String, Arc<ParsedJar>);

/// Parsed jars by local path, at most one entry per configured jar.
#[derive(Default)]
pub(super) struct JarCache {
    jars: Mutex<HashMap<PathBuf, JarCacheEntry>>,
    /// `.so` entries decompressed out of jars so far (a warm round adds none).
    pub decompressed: AtomicU64,
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
    ) -> Result<Arc<ParsedJar>, (ParsedJar, String)> {
        let key = std::fs::metadata(local).ok().map(|m| FileKey::of(&m));
        if let Some(key) = key
            && let Some((k, a, p)) = self.jars.lock().ok().and_then(|c| c.get(local).cloned())
            && k == key
            && a == arch
        {
            return Ok(p);
        }
        let mut parsed = ParsedJar::default();
        if let Err(e) = parse_jar(local, shown, arch, &mut parsed, &self.decompressed) {
            return Err((parsed, e));
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
}

/// Java `.properties` (`gluten-build-info.properties`) as a map, through the one properties
/// parser (`spark_conf`).
pub fn parse_build_info(text: &str) -> BTreeMap<String, String> {
    parse_spark_defaults(text)
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Reads a jar (a zip): which `linux/<arch>/` dirs hold libraries, its build info, and the
/// ELF summary of each `linux/<arch>/lib*.so` entry, decompressed in memory.
fn parse_jar(
    local: &Path,
    shown: &str,
    arch: &str,
    out: &mut ParsedJar,
    decompressed: &AtomicU64,
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
            out.build_info = parse_build_info(&text);
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
        decompressed.fetch_add(1, Ordering::Relaxed);
        entry
            .read_to_end(&mut buf)
            .map_err(|e| format!("{shown_entry}: {e}"))?;
        let size = buf.len() as u64;
        out.entries
            .push((shown_entry, size, elf_summary(&buf).map(Arc::new)));
    }
    Ok(())
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
