//! Reading what a library needs beyond `DT_NEEDED` (the beyond-`DT_NEEDED` facts): the executors'
//! `spark_defaults` keys, what the closure's strings ask of the executor root (time zone
//! database, the CA location of its TLS stack), RPATH dirs that do not exist there, HDFS client
//! libraries, and a label-safe identity for drift.

use super::closure::Obj;
use super::facts::{ExecutorFiles, HdfsFacts, MissingDir, NeedsFacts, SparkFacts, TlsFacts};
use super::scan::Scan;
use super::search::{Found, Search};
use crate::check::CheckError;
use crate::host::Host;
use crate::spark_conf::parse_spark_defaults;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Prefixes of object-store URIs whose TLS goes through the library's own stack.
const OBJECT_STORES: [&str; 3] = ["s3a://", "abfs://", "gs://"];

/// The `spark_defaults` keys the rules use, read through `host` (like the memory check).
pub(super) fn spark_facts(host: &Host, path: Option<&Path>) -> Result<SparkFacts, CheckError> {
    let Some(path) = path else {
        return Ok(SparkFacts::default());
    };
    let mut f = SparkFacts {
        defaults: Some(path.display().to_string()),
        ..SparkFacts::default()
    };
    let Some(text) = host.read_optional(path)? else {
        return Ok(f);
    };
    let conf = parse_spark_defaults(&text);
    for (k, v) in conf.iter() {
        if f.object_store_key.is_none()
            && (k.starts_with("spark.hadoop.fs.s3a.")
                || v.split(',')
                    .any(|x| OBJECT_STORES.iter().any(|p| x.trim().starts_with(p))))
        {
            f.object_store_key = Some(k.to_string());
        }
        if f.hdfs_key.is_none() && v.split(',').any(|x| x.trim().starts_with("hdfs://")) {
            f.hdfs_key = Some(k.to_string());
        }
    }
    f.tzdir = conf.get("spark.executorEnv.TZDIR").map(String::from);
    f.hadoop_home = conf.get("spark.executorEnv.HADOOP_HOME").map(String::from);
    f.java_home = conf.get("spark.executorEnv.JAVA_HOME").map(String::from);
    let list = |k: &str, seps: &[char]| -> Vec<String> {
        conf.get(k)
            .map(|v| {
                v.split(seps)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    // ld.so splits LD_PRELOAD at spaces and colons, LD_LIBRARY_PATH at colons and semicolons.
    f.ld_preload = list("spark.executorEnv.LD_PRELOAD", &[' ', ':']);
    f.ld_library_path = list("spark.executorEnv.LD_LIBRARY_PATH", &[':', ';']);
    Ok(f)
}

/// `host_path` is a directory (resp. exists) in `root`.
fn is_dir(root: &Host, host_path: &str) -> bool {
    root.resolve(host_path).is_ok_and(|l| l.is_dir())
}

fn exists(root: &Host, host_path: &str) -> bool {
    root.resolve(host_path).is_ok_and(|l| l.exists())
}

/// What the closure's strings ask of the executor root: the first object (in load order) with
/// Velox's time zone lookup; the TLS stack: libcurl's default CA bundle when an object carries
/// libcurl, else OpenSSL's `OPENSSLDIR` (`cert.pem` or `certs/` must exist).
pub(super) fn needs_of(objs: &[Obj], root: &Host) -> NeedsFacts {
    let scans: Vec<(&Obj, &Scan)> = objs
        .iter()
        .filter_map(|o| o.scan.as_deref().map(|s| (o, s)))
        .collect();
    let tzdata_by = scans
        .iter()
        .find(|(_, s)| s.tzdata)
        .map(|(o, _)| o.path.clone());
    let tls = if let Some((o, s)) = scans.iter().find(|(_, s)| s.curl.is_some()) {
        s.curl_ca().map(|ca| TlsFacts {
            stack: format!("libcurl {}", s.curl.as_deref().unwrap_or("")),
            by: o.path.clone(),
            ca_path: ca.to_string(),
            ca_present: exists(root, ca),
        })
    } else if let Some((o, s)) = scans.iter().find(|(_, s)| s.openssldir.is_some()) {
        let dir = s.openssldir.clone().unwrap_or_default();
        let d = dir.trim_end_matches('/');
        Some(TlsFacts {
            stack: "OpenSSL".into(),
            by: o.path.clone(),
            ca_present: exists(root, &format!("{d}/cert.pem"))
                || is_dir(root, &format!("{d}/certs")),
            ca_path: dir,
        })
    } else {
        None
    };
    NeedsFacts { tzdata_by, tls }
}

/// The RPATH/RUNPATH dirs of `obj` (expanded) that do not exist in `root`, each with its
/// nearest existing ancestor and whether a non-root user could create it there.
pub(super) fn missing_rpath_dirs(obj: &Obj, root: &Host) -> Vec<MissingDir> {
    let mut out: Vec<MissingDir> = Vec::new();
    for dir in obj.rpath.iter().chain(&obj.runpath) {
        let dir = dir.trim_end_matches('/');
        if dir.is_empty() || is_dir(root, dir) || out.iter().any(|m| m.dir == dir) {
            continue;
        }
        let mut nearest = Path::new(dir);
        let meta = loop {
            nearest = nearest.parent().unwrap_or(Path::new("/"));
            if let Ok(local) = root.resolve(nearest)
                && let Ok(m) = std::fs::metadata(local)
            {
                break Some(m);
            }
            if nearest == Path::new("/") {
                break None;
            }
        };
        let writable_by_others = meta.is_some_and(|m| {
            m.mode() & 0o002 != 0 || m.uid() != 0 || (m.mode() & 0o020 != 0 && m.gid() != 0)
        });
        out.push(MissingDir {
            dir: dir.to_string(),
            nearest: nearest.display().to_string(),
            writable_by_others,
        });
    }
    out
}

/// Time zone and HDFS files of the executor root. `siblings`: jar entry file names (Gluten
/// may bundle `libhdfs3.so`).
pub(super) fn executor_files(
    root: &Host,
    search: &Search,
    spark: &SparkFacts,
    homes: (Option<&Path>, Option<&Path>),
    siblings: &[String],
) -> ExecutorFiles {
    let mut f = ExecutorFiles {
        zoneinfo: is_dir(root, "/usr/share/zoneinfo"),
        tzdir_exists: spark.tzdir.as_deref().map(|d| is_dir(root, d)),
        hdfs: None,
    };
    if spark.hdfs_key.is_some() {
        let home = |set: Option<&Path>, env: &Option<String>| -> Option<PathBuf> {
            set.map(Path::to_path_buf)
                .or_else(|| env.as_ref().map(PathBuf::from))
        };
        let hadoop = home(homes.0, &spark.hadoop_home);
        let java = home(homes.1, &spark.java_home);
        let elf = |p: PathBuf| -> Option<String> {
            let s = p.display().to_string();
            matches!(search.verify(&s), Found::Yes { .. }).then_some(s)
        };
        let libhdfs3 = if let Some(s) = siblings
            .iter()
            .find(|s| s.ends_with("!linux/amd64/libhdfs3.so") || s.ends_with("/libhdfs3.so"))
        {
            Some(s.clone())
        } else {
            match search.find("libhdfs3.so", &[], &[], false) {
                Found::Yes { path, .. } => Some(path),
                _ => None,
            }
        };
        f.hdfs = Some(HdfsFacts {
            libhdfs: hadoop
                .as_ref()
                .and_then(|h| elf(h.join("lib/native/libhdfs.so"))),
            libjvm: java.as_ref().and_then(|j| {
                [
                    "lib/server/libjvm.so",
                    "jre/lib/amd64/server/libjvm.so",
                    "jre/lib/server/libjvm.so",
                ]
                .iter()
                .find_map(|rel| elf(j.join(rel)))
            }),
            hadoop_home: hadoop.map(|h| h.display().to_string()),
            java_home: java.map(|j| j.display().to_string()),
            libhdfs3,
        });
    }
    f
}

/// A label-safe identity (at most 63 of `[A-Za-z0-9._-]`).
pub(super) fn label_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    while out.ends_with(['-', '.', '_']) {
        out.pop();
    }
    out
}

/// The identity of a jar's build: `gluten-<version>-velox-<revision, 12 hex>`.
pub(super) fn jar_identity(build_info: &BTreeMap<String, String>) -> Option<String> {
    let version = build_info.get("gluten_version")?;
    let mut id = format!("gluten-{version}");
    if let Some(rev) = build_info.get("velox_revision").filter(|r| !r.is_empty()) {
        id.push_str(&format!("-velox-{}", &rev[..rev.len().min(12)]));
    }
    Some(label_safe(&id))
}

/// `sha256-<first 32 hex digits>` of a file's content, read through a small buffer.
pub(super) fn content_digest(local: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(local)?;
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let d = h.finish();
    Ok(format!(
        "sha256-{}",
        d.as_ref()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_label_safe() {
        let bi: BTreeMap<String, String> = [
            ("gluten_version".to_string(), "1.7.0".to_string()),
            (
                "velox_revision".to_string(),
                "5b248e83b5044bc4f666919ea3d6cbf949db62d6".to_string(),
            ),
        ]
        .into();
        assert_eq!(
            jar_identity(&bi).as_deref(),
            Some("gluten-1.7.0-velox-5b248e83b504")
        );
        assert_eq!(label_safe("a b/c:d"), "a-b-c-d");
        assert_eq!(label_safe(&"x".repeat(100)).len(), 63);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"abc").unwrap();
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(
            content_digest(&d.path().join("f")).unwrap(),
            "sha256-ba7816bf8f01cfea414140de5dae2223"
        );
    }

    #[test]
    fn spark_defaults_keys() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/spark-defaults.conf"),
            "spark.sql.warehouse.dir s3a://bucket/wh\nspark.executorEnv.LD_PRELOAD /usr/lib/libjemalloc.so.2\nspark.executorEnv.LD_LIBRARY_PATH /opt/a:/opt/b\nspark.eventLog.dir hdfs://nn/logs\nspark.executorEnv.TZDIR /opt/tz\n",
        )
        .unwrap();
        let f = spark_facts(
            &Host::new(d.path()),
            Some(Path::new("/etc/spark-defaults.conf")),
        )
        .unwrap();
        assert_eq!(
            f.object_store_key.as_deref(),
            Some("spark.sql.warehouse.dir")
        );
        assert_eq!(f.hdfs_key.as_deref(), Some("spark.eventLog.dir"));
        assert_eq!(f.ld_preload, ["/usr/lib/libjemalloc.so.2"]);
        assert_eq!(f.ld_library_path, ["/opt/a", "/opt/b"]);
        assert_eq!(f.tzdir.as_deref(), Some("/opt/tz"));
    }
}
