//! Fuzz target: the `/sys` parsers (THP modes, hugepage counts and pool dir names, NUMA cpulists,
//! distances, `numa_balancing`) and `/proc/cpuinfo` flags. The first byte picks the parser.

#![no_main]

use checks::{hugepages, numa, velox_library};
use checks::procfs_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 7 {
        0 => {
            let _ = hugepages::parse_thp_setting(&text);
        }
        1 => {
            let _ = hugepages::parse_pool_dir_name(&text);
        }
        2 => {
            let _ = procfs_text::parse_count(&text);
        }
        3 => {
            if let Ok(list) = procfs_text::parse_cpulist(&text) {
                // The canonical form parses back to the same list.
                let canonical = list.to_string();
                let again = procfs_text::parse_cpulist(&canonical)
                    .unwrap_or_else(|e| panic!("{canonical:?} does not parse back: {e}"));
                assert_eq!(again.to_string(), canonical);
                let _ = (list.count(), list.contains(0), list.intersects(&again));
            }
        }
        4 => {
            let _ = numa::parse_distance(&text);
        }
        5 => {
            let _ = numa::parse_numa_balancing(&text);
        }
        _ => {
            let _ = velox_library::parse_cpuinfo_flags(&text);
        }
    }
});
