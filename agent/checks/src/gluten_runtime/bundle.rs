//! Reading a jar for this check, streamed: its entry names (the central directory), the small
//! text files that say what it is (`gluten-build-info.properties`, `pom.properties`, the
//! `SharedLibraryLoader` services list) and, in a Gluten jar, the first 8 bytes of every class
//! (magic, minor, major). Nothing larger than a properties file is held; a jar is read once
//! per version (cached by device, inode, size and mtime).

use super::facts::{JarFacts, Library, PackageClasses};
use crate::error::JarError;
use crate::file_key::FileKey;
use crate::spark_conf::parse_java_properties;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Gluten's services file naming its OS loaders.
pub const LOADER_SERVICES: &str = "META-INF/services/org.apache.gluten.spi.SharedLibraryLoader";
/// Gluten's build description at the jar root.
pub const BUILD_INFO: &str = "gluten-build-info.properties";
/// Largest text entry read (properties, services).
const MAX_TEXT_BYTES: u64 = 1 << 20;
/// Most root-level shared libraries recorded per jar (Gluten's third-party jars hold ~40).
const MAX_ROOT_LIBRARIES: usize = 1024;
/// Jars kept in the cache (classpath dirs may hold many).
const CACHE_ENTRIES: usize = 1024;

/// What a jar holds, as far as this check cares. The path, placement and `found` are the
/// caller's.
pub fn read_jar(local: &Path, shown: &str) -> Result<JarFacts, JarError> {
    let file = std::fs::File::open(local).map_err(|source| JarError::Read {
        jar: shown.to_string(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::with_capacity(16 * 1024, file))
        .map_err(|source| JarError::NotAJar {
            jar: shown.to_string(),
            source,
        })?;
    let names: Vec<String> = zip
        .file_names_raw()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let mut f = JarFacts {
        entries: names.len(),
        ..JarFacts::default()
    };
    let text = |zip: &mut zip::ZipArchive<_>, i: usize, name: &str| -> Result<String, JarError> {
        let mut s = Vec::new();
        zip.by_index(i)
            .map_err(|source| JarError::Entry {
                jar: shown.to_string(),
                entry: name.to_string(),
                source,
            })?
            .take(MAX_TEXT_BYTES)
            .read_to_end(&mut s)
            .map_err(|source| JarError::EntryRead {
                jar: shown.to_string(),
                entry: name.to_string(),
                source,
            })?;
        Ok(String::from_utf8_lossy(&s).into_owned())
    };
    let mut classes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if name == BUILD_INFO {
            f.gluten = true;
            f.build_info = properties(&text(&mut zip, i, name)?);
        } else if name == LOADER_SERVICES {
            f.shared_library_loaders = Some(parse_services(&text(&mut zip, i, name)?));
        } else if let Some((group, artifact)) = pom_properties_path(name) {
            let props = properties(&text(&mut zip, i, name)?);
            f.libraries.push(Library {
                group: props.get("groupId").cloned().unwrap_or(group),
                artifact: props.get("artifactId").cloned().unwrap_or(artifact),
                version: props.get("version").cloned().unwrap_or_default(),
                file: None,
            });
        } else if let Some(dir) = native_dir(name) {
            if !f.native_dirs.iter().any(|d| d == dir) {
                f.native_dirs.push(dir.to_string());
            }
        } else if is_root_library(name) {
            if f.root_libraries.len() < MAX_ROOT_LIBRARIES {
                f.root_libraries.push(name.clone());
            }
        } else if is_class(name) {
            classes.push(i);
        }
        if name.starts_with("org/apache/gluten/") {
            f.gluten = true;
        }
    }
    f.native_dirs.sort();
    f.libraries.sort();
    f.root_libraries.sort();
    f.shims = shims(&names, &f.libraries);
    if f.gluten {
        let mut by_package: BTreeMap<String, PackageClasses> = BTreeMap::new();
        for i in classes {
            let name = &names[i];
            let mut head = [0u8; 8];
            let n = zip
                .by_index(i)
                .and_then(|mut e| Ok(read_up_to(&mut e, &mut head)?))
                .map_err(|source| JarError::Entry {
                    jar: shown.to_string(),
                    entry: name.clone(),
                    source,
                })?;
            let Some(major) = class_major(&head[..n]) else {
                continue;
            };
            let p = by_package
                .entry(package_of(name).to_string())
                .or_insert_with(|| PackageClasses {
                    package: package_of(name).to_string(),
                    ..PackageClasses::default()
                });
            p.classes += 1;
            if major > p.max_major {
                p.max_major = major;
                p.at_max = 0;
                p.example = name.clone();
            }
            if major == p.max_major {
                p.at_max += 1;
            }
        }
        f.packages = by_package.into_values().collect();
        if let Some(max) = f.packages.iter().map(|p| p.max_major).max() {
            f.max_class_major = Some(max);
            let at: Vec<&PackageClasses> =
                f.packages.iter().filter(|p| p.max_major == max).collect();
            f.classes_at_max = at.iter().map(|p| p.at_max).sum();
            // The example from the package with the most classes at the maximum.
            f.example_class = at
                .iter()
                .max_by_key(|p| p.at_max)
                .map(|p| p.example.clone());
        }
    }
    Ok(f)
}

/// A `.properties` text as a map (last definition wins, as `java.util.Properties`).
pub fn properties(text: &str) -> BTreeMap<String, String> {
    parse_java_properties(text).into_iter().collect()
}

/// Reads until `buf` is full or the stream ends; the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The class-file major version of a class's first 8 bytes (`CAFEBABE`, minor, major).
pub fn class_major(head: &[u8]) -> Option<u16> {
    (head.len() >= 8 && head[..4] == [0xCA, 0xFE, 0xBA, 0xBE])
        .then(|| u16::from_be_bytes([head[6], head[7]]))
}

/// The Java feature release a class-file major version needs (52 → 8, 61 → 17).
pub fn java_for_major(major: u16) -> u32 {
    u32::from(major).saturating_sub(44)
}

/// A class the JVM loads from the classpath: not under `META-INF/` (multi-release
/// `META-INF/versions/N/` classes only load on JDK N) and not `module-info`.
fn is_class(name: &str) -> bool {
    name.ends_with(".class")
        && !name.starts_with("META-INF/")
        && !name.ends_with("module-info.class")
}

/// The package group of a class: its first three path components (`org/apache/gluten`,
/// `io/substrait/proto`), or its directory when shallower.
pub fn package_of(name: &str) -> &str {
    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
    match dir.match_indices('/').nth(2) {
        Some((i, _)) => &dir[..i],
        None => dir,
    }
}

/// A shared library at the jar root (`libre2.so.9`, `libglog.so.1`): what a class loader finds
/// by the bare name Gluten's loaders pass to `JniLibLoader`.
fn is_root_library(name: &str) -> bool {
    !name.contains('/') && (name.ends_with(".so") || name.contains(".so."))
}

/// `META-INF/maven/<group>/<artifact>/pom.properties` → (group, artifact).
fn pom_properties_path(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix("META-INF/maven/")?;
    let mut parts = rest.split('/');
    let (g, a, f) = (parts.next()?, parts.next()?, parts.next()?);
    (f == "pom.properties" && parts.next().is_none()).then(|| (g.to_string(), a.to_string()))
}

/// `linux/<arch>/lib*.so*` → `linux/<arch>`.
fn native_dir(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("linux/")?;
    let (arch, file) = rest.split_once('/')?;
    (!arch.is_empty() && file.contains(".so") && !file.contains('/'))
        .then(|| &name[..6 + arch.len()])
}

/// A Java services file: one class per line, `#` comments, blank lines ignored.
pub fn parse_services(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The Spark shims a jar carries: `spark-sql-columnar-shims-sparkNN` modules (not `-common`),
/// else `org/apache/gluten/sql/shims/sparkNN/` packages.
pub fn shims(names: &[String], libraries: &[Library]) -> Vec<String> {
    let valid = |s: &str| s.len() > 5 && s[5..].bytes().all(|b| b.is_ascii_digit());
    let mut out: Vec<String> = libraries
        .iter()
        .filter_map(|l| l.artifact.strip_prefix("spark-sql-columnar-shims-"))
        .filter(|s| valid(s))
        .map(str::to_string)
        .collect();
    if out.is_empty() {
        for n in names {
            if let Some(rest) = n.strip_prefix("org/apache/gluten/sql/shims/")
                && let Some((s, _)) = rest.split_once('/')
                && valid(s)
                && !out.iter().any(|o| o == s)
            {
                out.push(s.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The Spark `major.minor` of a shim name (`spark35` → `3.5`, `spark40` → `4.0`).
pub fn shim_spark_minor(shim: &str) -> Option<String> {
    let d = shim.strip_prefix("spark")?;
    let mut chars = d.chars();
    let major = chars.next().filter(char::is_ascii_digit)?;
    let minor: String = chars.collect();
    (!minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{major}.{minor}"))
}

/// Jars read, by local path, while their identity holds.
#[derive(Default)]
pub struct JarCache {
    jars: Mutex<HashMap<PathBuf, (FileKey, Arc<JarFacts>)>>,
    /// Jars read from disk so far (a warm round adds none).
    pub reads: AtomicU64,
}

impl JarCache {
    /// The jar at `local`, from the cache while its (device, inode, size, mtime) holds. A jar
    /// that fails to read is not cached.
    pub fn get(&self, local: &Path, shown: &str) -> Result<Arc<JarFacts>, JarError> {
        let meta = std::fs::metadata(local).map_err(|source| JarError::Read {
            jar: shown.to_string(),
            source,
        })?;
        if !meta.is_file() {
            return Err(JarError::NotAFile {
                jar: shown.to_string(),
            });
        }
        let key = FileKey::of(&meta);
        if let Some((k, j)) = self.jars.lock().ok().and_then(|c| c.get(local).cloned())
            && k == key
        {
            return Ok(j);
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let jar = Arc::new(read_jar(local, shown)?);
        if let Ok(mut c) = self.jars.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(local.to_path_buf(), (key, jar.clone()));
        }
        Ok(jar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_headers_and_java_releases() {
        assert_eq!(
            class_major(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 61]),
            Some(61)
        );
        assert_eq!(class_major(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0]), None);
        assert_eq!(class_major(b"PK\x03\x04\0\0\0\x34"), None);
        assert_eq!(java_for_major(52), 8);
        assert_eq!(java_for_major(55), 11);
        assert_eq!(java_for_major(61), 17);
        assert_eq!(java_for_major(65), 21);
    }

    #[test]
    fn packages_names_and_services() {
        assert_eq!(
            package_of("org/apache/gluten/a/B.class"),
            "org/apache/gluten"
        );
        assert_eq!(
            package_of("io/substrait/proto/Plan.class"),
            "io/substrait/proto"
        );
        assert_eq!(package_of("a/B.class"), "a");
        assert_eq!(package_of("B.class"), "");
        assert!(!is_class("META-INF/versions/11/a/B.class"));
        assert!(!is_class("module-info.class"));
        assert_eq!(
            pom_properties_path("META-INF/maven/org.apache.arrow/arrow-vector/pom.properties"),
            Some(("org.apache.arrow".into(), "arrow-vector".into()))
        );
        assert_eq!(pom_properties_path("META-INF/maven/x/pom.properties"), None);
        assert_eq!(native_dir("linux/amd64/libvelox.so"), Some("linux/amd64"));
        assert_eq!(native_dir("linux/amd64/"), None);
        assert!(is_root_library("libboost_atomic.so.1.84.0"));
        assert!(is_root_library("libre2.so"));
        assert!(!is_root_library("linux/amd64/libvelox.so"));
        assert!(!is_root_library("libfoo.sox"));
        assert_eq!(
            parse_services("# licence\n\norg.a.B\n  org.a.C # why\n"),
            ["org.a.B", "org.a.C"]
        );
    }

    #[test]
    fn shims_from_modules_else_packages() {
        let lib = |a: &str| Library {
            artifact: a.into(),
            ..Library::default()
        };
        let libs = [
            lib("spark-sql-columnar-shims-common"),
            lib("spark-sql-columnar-shims-spark35"),
        ];
        assert_eq!(shims(&[], &libs), ["spark35"]);
        let names = ["org/apache/gluten/sql/shims/spark34/Spark34Shims.class".to_string()];
        assert_eq!(shims(&names, &[]), ["spark34"]);
        assert_eq!(shim_spark_minor("spark35").as_deref(), Some("3.5"));
        assert_eq!(shim_spark_minor("spark40").as_deref(), Some("4.0"));
        assert_eq!(shim_spark_minor("sparkx"), None);
    }
}
