//! The scratch check's read: which dirs (config, `spark.local.dir`, `/tmp`), the SSD cache
//! conf, then every dir probed with its mount and block device.

use super::*;
use crate::check::{CheckError, Context, Shared};
use crate::host::Host;
use crate::spark_conf::parse_spark_defaults;
use crate::time::rfc3339;
use std::path::{Path, PathBuf};

impl Scratch {
    /// One read: the dirs (and the SSD cache path) probed under their deadline, each with its
    /// mount and block device.
    pub(super) fn read_facts(
        &self,
        host: &Host,
        cx: &Context<Settings>,
    ) -> Result<Facts, CheckError> {
        let spark_defaults = cx.shared.spark_defaults.as_deref();
        let (dirs, dirs_source) = dirs(host, &cx.settings, spark_defaults)?;
        let cache = ssd_cache(host, spark_defaults)?;
        let mountinfo = self.mountinfo(host)?;
        // The SSD cache path is probed like a scratch dir (same deadline, same stuck set); it
        // is probed once when it is also a scratch dir.
        let mut probed = dirs.clone();
        if let Some(c) = &cache
            && !probed.contains(&c.path)
        {
            probed.push(c.path.clone());
        }
        let probes = self.probe_all(host, &probed, &cx.settings);
        let mut block_cache: HashMap<(u32, u32), Option<BlockFacts>> = HashMap::new();
        let mut facts = Facts {
            dirs_source,
            mountinfo_path: mountinfo.as_ref().map(|(p, _)| p.clone()),
            ..Facts::default()
        };
        let mut all = Vec::new();
        for (dir, (probe, stuck_since, timed_out)) in probed.iter().zip(probes) {
            let mut d = DirFacts {
                path: dir.display().to_string(),
                timed_out,
                stuck_since: stuck_since.map(rfc3339),
                ..DirFacts::default()
            };
            if let Some(p) = &probe {
                d.resolved_path = p.resolved.as_ref().map(|r| r.display().to_string());
                d.exists = p.exists;
                d.is_dir = p.is_dir;
                d.error = p.error.clone();
                if let Some((total, free, avail, inodes, free_inodes)) = p.statvfs {
                    d.total_bytes = Some(total);
                    d.free_bytes = Some(free);
                    d.avail_bytes = Some(avail);
                    d.total_inodes = Some(inodes);
                    d.free_inodes = Some(free_inodes);
                }
                match &p.write {
                    Some(Ok(secs)) => {
                        d.write_probe_ok = Some(true);
                        d.write_probe_latency_seconds = Some(*secs);
                    }
                    Some(Err(e)) => {
                        d.write_probe_ok = Some(false);
                        d.write_probe_error = Some(e.to_string());
                    }
                    None => {}
                }
                if let Some(l) = &p.leftovers {
                    d.leftover_count = Some(l.count);
                    d.leftover_bytes = Some(l.bytes);
                    d.leftovers_capped = l.capped;
                    d.leftovers = l.names.clone();
                }
            }
            // The mount is looked up by the host path after symlinks (lexically when unknown).
            let lookup = probe
                .as_ref()
                .and_then(|p| p.resolved.clone())
                .unwrap_or_else(|| host.host_path_of(&host.path(dir)).unwrap_or(dir.clone()));
            if let Some(m) = mountinfo
                .as_ref()
                .and_then(|(_, ms)| find_mount(ms, &lookup))
            {
                d.mount_point = Some(m.mount_point.clone());
                d.fs_type = Some(m.fs_type.clone());
                d.mount_source = Some(m.source.clone());
                d.mount_options = m.mount_options.clone();
                d.super_options = m.super_options.clone();
                d.read_only = Some(m.read_only());
                d.noexec = Some(m.noexec());
                d.device = Some(format!("{}:{}", m.major, m.minor));
                // Major 0: tmpfs, overlay, NFS... no block device behind it.
                if m.major != 0 {
                    let b = match block_cache.get(&(m.major, m.minor)) {
                        Some(b) => b.clone(),
                        None => {
                            let b = read_block(host, m.major, m.minor)?;
                            block_cache.insert((m.major, m.minor), b.clone());
                            b
                        }
                    };
                    if let Some(b) = b {
                        d.disk = b.disk;
                        d.partition = b.partition;
                        d.rotational = b.rotational;
                        d.nvme = b.nvme;
                        d.model = b.model;
                        d.disk_size_bytes = b.size_bytes;
                    }
                }
            }
            all.push(d);
        }
        if let Some(c) = &cache {
            let at = probed.iter().position(|p| p == &c.path).unwrap_or(0);
            facts.ssd_cache = all
                .get(at)
                .map(|d| SsdCacheFacts::new(c, executors_per_node(&cx.shared), d));
        }
        all.truncate(dirs.len());
        facts.dirs = all;
        facts.shared_devices = shared_devices(&facts.dirs);
        Ok(facts)
    }
}

/// `Shared::executors_per_node`: how many executors' SSD cache files the cache path holds (at
/// least one).
fn executors_per_node(shared: &Shared) -> u32 {
    shared.executors_per_node.max(1)
}

/// Velox's SSD cache as `spark_defaults` configures it (a missing file: none).
pub(super) fn ssd_cache(
    host: &Host,
    spark_defaults: Option<&Path>,
) -> Result<Option<SsdCacheConf>, CheckError> {
    let Some(path) = spark_defaults else {
        return Ok(None);
    };
    let Some(text) = host.read_optional(path)? else {
        return Ok(None);
    };
    ssd_cache_conf(&parse_spark_defaults(&text)).map_err(|e| CheckError::parse(&host.path(path), e))
}

/// The dirs to check and where that list came from.
pub(super) fn dirs(
    host: &Host,
    s: &Settings,
    spark_defaults: Option<&Path>,
) -> Result<(Vec<PathBuf>, String), CheckError> {
    if let Some(d) = &s.dirs {
        return Ok((d.clone(), "config".into()));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut sources = Vec::new();
    if let Some(conf) = spark_defaults
        && let Some(text) = host.read_optional(conf)?
        && let Some(d) = parse_spark_defaults(&text).local_dirs()
    {
        dirs.extend(d);
        sources.push(format!("spark.local.dir in {}", conf.display()));
    }
    if let Some(site) = &s.yarn_site {
        let text = host.read_to_string(site)?;
        let parsed = super::yarn_site::parse_yarn_site(&text)
            .map_err(|reason| CheckError::parse(site, reason))?;
        if let Some(d) = parsed {
            for dir in d {
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
            sources.push(format!(
                "{} in {}",
                super::yarn_site::LOCAL_DIRS_KEY,
                site.display()
            ));
        }
    }
    if dirs.is_empty() {
        return Ok((vec![PathBuf::from("/tmp")], "default".into()));
    }
    Ok((dirs, sources.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::tests::scratch;

    fn dirs_of(
        check: crate::check::Runner<Scratch>,
        h: &Host,
    ) -> Result<(Vec<PathBuf>, String), CheckError> {
        let cx = check.context();
        dirs(h, &cx.settings, cx.shared.spark_defaults.as_deref())
    }

    #[test]
    fn dirs_default_to_spark_local_dir_then_tmp() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/spark")).unwrap();
        std::fs::write(
            root.path().join("etc/spark/spark-defaults.conf"),
            "spark.local.dir /d1,/d2\n",
        )
        .unwrap();
        let h = Host::new(root.path());
        let conf = Some(PathBuf::from("/etc/spark/spark-defaults.conf"));
        let (d, src) = dirs_of(scratch(Settings::default(), conf, 1), &h).unwrap();
        assert_eq!(d, [PathBuf::from("/d1"), PathBuf::from("/d2")]);
        assert_eq!(src, "spark.local.dir in /etc/spark/spark-defaults.conf");
        let (d, src) = dirs_of(
            scratch(Settings::default(), Some("/nope.conf".into()), 1),
            &h,
        )
        .unwrap();
        assert_eq!((d, src.as_str()), (vec![PathBuf::from("/tmp")], "default"));
        let s = Settings {
            dirs: Some(vec!["/x".into()]),
            ..Settings::default()
        };
        let (d, src) = dirs_of(
            scratch(s, Some("/etc/spark/spark-defaults.conf".into()), 1),
            &h,
        )
        .unwrap();
        assert_eq!((d, src.as_str()), (vec![PathBuf::from("/x")], "config"));
    }

    #[test]
    fn yarn_local_dirs_join_spark_local_dir_deduplicated() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/spark")).unwrap();
        std::fs::create_dir_all(root.path().join("etc/hadoop")).unwrap();
        std::fs::write(
            root.path().join("etc/spark/spark-defaults.conf"),
            "spark.local.dir /d1\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/hadoop/yarn-site.xml"),
            "<configuration><property><name>yarn.nodemanager.local-dirs</name>\
             <value>/d1,file:///y2</value></property></configuration>",
        )
        .unwrap();
        let h = Host::new(root.path());
        let s = Settings {
            yarn_site: Some("/etc/hadoop/yarn-site.xml".into()),
            ..Settings::default()
        };
        let conf = Some(PathBuf::from("/etc/spark/spark-defaults.conf"));
        let (d, src) = dirs_of(scratch(s.clone(), conf, 1), &h).unwrap();
        assert_eq!(d, [PathBuf::from("/d1"), PathBuf::from("/y2")]);
        assert_eq!(
            src,
            "spark.local.dir in /etc/spark/spark-defaults.conf; yarn.nodemanager.local-dirs in \
             /etc/hadoop/yarn-site.xml"
        );
        // Only YARN's dirs when Spark names none.
        let (d, _) = dirs_of(scratch(s.clone(), None, 1), &h).unwrap();
        assert_eq!(d, [PathBuf::from("/d1"), PathBuf::from("/y2")]);
        // A malformed or missing yarn-site is an error naming the file.
        std::fs::write(
            root.path().join("etc/hadoop/yarn-site.xml"),
            "<configuration>",
        )
        .unwrap();
        let e = dirs_of(scratch(s.clone(), None, 1), &h)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/hadoop/yarn-site.xml") && e.contains("not a Hadoop"),
            "{e}"
        );
        let missing = Settings {
            yarn_site: Some("/etc/hadoop/nope.xml".into()),
            ..Settings::default()
        };
        let e = dirs_of(scratch(missing, None, 1), &h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.xml"), "{e}");
    }
}
