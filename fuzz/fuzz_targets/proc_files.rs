//! Fuzz target: the `/proc` and cgroup parsers. The first byte picks the parser, the rest is the
//! file's text (as the agent reads it: lossily decoded UTF-8).

#![no_main]

use checks::{memory, numa, scratch};
use checks::procfs_text;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 10 {
        0 => {
            if let Ok(fields) = procfs_text::parse_meminfo(&text) {
                let _ = memory::Meminfo::from_fields(&fields);
            }
        }
        1 => {
            let _ = procfs_text::parse_flat_keyed(&text);
        }
        2 => {
            let _ = memory::parse_vmstat_oom_kill(&text);
        }
        3 => {
            let _ = memory::parse_cgroup_limit(&text);
            let _ = procfs_text::parse_count(&text);
        }
        4 => {
            let _ = memory::parse_proc_cgroup(&text);
        }
        5 => {
            let _ = memory::parse_cgroup_mounts(&text);
        }
        6 => {
            let _ = memory::parse_psi(&text);
        }
        7 => {
            if let Ok(mounts) = procfs_text::parse_mountinfo(&text) {
                for p in ["/", "/tmp", "/data/spark/local", "/proc/self"] {
                    let _ = scratch::find_mount(&mounts, Path::new(p));
                }
                if let Some(m) = mounts.first() {
                    let _ = scratch::find_mount(&mounts, Path::new(&m.mount_point));
                }
            }
            let _ = procfs_text::unescape_octal(&text);
        }
        8 => {
            let _ = numa::parse_status_cpuset(&text);
        }
        _ => {
            if let Ok(fields) = procfs_text::parse_meminfo(&text) {
                let _ = procfs_text::meminfo_hugepages(&fields);
            }
        }
    }
});
