//! The pure rules of what a found library needs beyond `DT_NEEDED`: the
//! time zone database, the CA location of its TLS stack, HDFS client libraries, and RPATH dirs
//! of its build machine. Each names the path, the library and the source of the rule. No
//! library found: no finding.

use super::facts::{Facts, LibraryFacts};
use crate::check::Verdict;
use proto::{Finding, Status};

/// Where the executor's files were read, for sentences.
fn root(f: &Facts) -> String {
    match &f.executor_root {
        Some(r) => format!("the executor root {r}"),
        None => "the host root".to_string(),
    }
}

fn found(f: &Facts) -> impl Iterator<Item = &LibraryFacts> {
    f.libraries.iter().filter(|l| l.found && l.error.is_none())
}

/// All beyond-`DT_NEEDED` rules, in report order.
pub fn needs(f: &Facts, o: &mut Verdict) {
    tzdata(f, o);
    ca_bundle(f, o);
    hdfs(f, o);
    rpath_hygiene(f, o);
}

/// Velox reads the IANA zoneinfo from the OS (or `TZDIR`, honoured from Gluten 1.7.0): a
/// library that carries its lookup fails every native task without it.
fn tzdata(f: &Facts, o: &mut Verdict) {
    let libs: Vec<&LibraryFacts> = found(f).filter(|l| l.needs.tzdata_by.is_some()).collect();
    if libs.is_empty() || f.executor_files.zoneinfo || f.executor_files.tzdir_exists == Some(true) {
        return;
    }
    let names: Vec<&str> = libs.iter().map(|l| l.library.as_str()).collect();
    let tzdir = match (&f.spark.tzdir, f.executor_files.tzdir_exists) {
        (Some(d), Some(false)) => {
            format!("spark.executorEnv.TZDIR names {d}, which does not exist")
        }
        _ => "spark.executorEnv.TZDIR is not set".to_string(),
    };
    o.push(
        Finding::new(
            Status::Fail,
            format!(
                "{} needs the IANA time zone database (it carries \"discover_tz_dir failed to find zoneinfo\"): {} has no /usr/share/zoneinfo and {tzdir}; every native task fails. Install tzdata in the image, or set spark.executorEnv.TZDIR to a zoneinfo directory (Gluten >= 1.7.0 honours it)",
                names.join(", "),
                root(f)
            ),
        )
        .about("/usr/share/zoneinfo"),
    );
}

/// A TLS client compiled into the closure reads the CA location of its build machine
/// (apache/gluten#12711: official 1.6/1.7 binaries hang on S3 in Ubuntu images). `warn`, or
/// `fail` when `spark_defaults` uses object storage.
fn ca_bundle(f: &Facts, o: &mut Verdict) {
    let mut seen: Vec<&str> = Vec::new();
    for l in found(f) {
        let Some(t) = &l.needs.tls else { continue };
        if t.ca_present || seen.contains(&t.by.as_str()) {
            continue;
        }
        seen.push(&t.by);
        let by = if t.by.ends_with(&format!("/{}", l.library)) || t.by == l.path {
            l.library.clone()
        } else {
            format!("{} (via {})", l.library, t.by)
        };
        let (what, fix) = if t.stack.starts_with("libcurl") {
            (
                format!("its {} reads the CA bundle {}", t.stack, t.ca_path),
                format!(
                    "make {} exist in the image (a symlink to the distribution's bundle); libcurl does not read CURL_CA_BUNDLE or SSL_CERT_FILE",
                    t.ca_path
                ),
            )
        } else {
            (
                format!(
                    "its OpenSSL reads CA certificates from OPENSSLDIR {} (cert.pem, certs/)",
                    t.ca_path
                ),
                format!(
                    "make {0}/cert.pem or {0}/certs exist in the image, or set SSL_CERT_FILE for the executors",
                    t.ca_path.trim_end_matches('/')
                ),
            )
        };
        let (status, stake) = match &f.spark.object_store_key {
            Some(k) => (
                Status::Fail,
                format!("{k} in spark_defaults uses object storage, whose TLS then fails or hangs"),
            ),
            None => (
                Status::Warn,
                "TLS to S3, ABFS or GCS would fail or hang".to_string(),
            ),
        };
        o.push(
            Finding::new(
                status,
                format!(
                    "{by}: {what}, which {} lacks: {stake} (apache/gluten#12711); {fix}",
                    root(f)
                ),
            )
            .about(&t.ca_path),
        );
    }
}

/// `hdfs://` in `spark_defaults` needs `libhdfs3.so`, or `libhdfs.so` with `libjvm.so`
/// (apache/gluten#9258: missing libhdfs, then SIGSEGV).
fn hdfs(f: &Facts, o: &mut Verdict) {
    let (Some(h), Some(key)) = (&f.executor_files.hdfs, &f.spark.hdfs_key) else {
        return;
    };
    if found(f).next().is_none() {
        return;
    }
    if h.libhdfs3.is_some() || (h.libhdfs.is_some() && h.libjvm.is_some()) {
        return;
    }
    let libhdfs = match (&h.hadoop_home, &h.libhdfs) {
        (None, _) => {
            "HADOOP_HOME is not set (key hadoop_home or spark.executorEnv.HADOOP_HOME)".to_string()
        }
        (Some(home), None) => format!("{home}/lib/native/libhdfs.so does not exist"),
        (Some(_), Some(p)) => match (&h.java_home, &h.libjvm) {
            (None, _) => format!(
                "{p} needs libjvm.so but JAVA_HOME is not set (key java_home or spark.executorEnv.JAVA_HOME)"
            ),
            (Some(j), _) => format!("{p} needs libjvm.so, which is not under {j}"),
        },
    };
    o.push(Finding::new(
        Status::Fail,
        format!(
            "{key} in spark_defaults names hdfs://, but {} has no libhdfs3.so the loader finds and {libhdfs}: Velox fails to load libhdfs, then crashes (apache/gluten#9258)",
            root(f)
        ),
    ));
}

/// RPATH/RUNPATH dirs that do not exist in the executor root are searched before the system
/// dirs for every dependency: information, unless a non-root user could create one.
fn rpath_hygiene(f: &Facts, o: &mut Verdict) {
    for l in found(f) {
        for m in &l.rpath_missing {
            let (status, tail) = if m.writable_by_others {
                (
                    Status::Warn,
                    format!(
                        "and a non-root user can create it ({} is writable by others): a library planted there would be loaded into every executor",
                        m.nearest
                    ),
                )
            } else {
                (
                    Status::Ok,
                    "(a directory of its build machine; searched first for every dependency, harmless while only root can create it)".to_string(),
                )
            };
            o.push(
                Finding::new(
                    status,
                    format!(
                        "{}: RPATH/RUNPATH dir {} does not exist in {} {tail}",
                        l.library,
                        m.dir,
                        root(f)
                    ),
                )
                .about(&l.path),
            );
        }
    }
}
