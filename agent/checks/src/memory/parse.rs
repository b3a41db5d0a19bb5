//! Pure parsers of the memory check's kernel files: meminfo into `Meminfo` (with the
//! MemAvailable estimate), vmstat's `oom_kill`, cgroup limits, PSI.

use super::*;
use crate::check::ParseError;
use crate::error::excerpt;
use crate::procfs_text::{field, parse_flat_keyed};
use serde::Serialize;

impl Meminfo {
    pub fn from_fields(fields: &[(String, u64)]) -> Meminfo {
        let get = |k: &str| field(fields, k);
        let (available, available_estimated) = match get("MemAvailable") {
            Some(a) => (Some(a), false),
            None => (estimate_available(&get), true),
        };
        // The pools come from this file rather than from `hugepages::read_pools` (sysfs): memory
        // reads /proc/meminfo anyway, so it costs no extra reads (read_pools walks every pool dir
        // globally and per NUMA node), and `Hugetlb` (Linux 4.16+) already sums every page size.
        // It is the same number as `hugepages::pool_bytes` over the global sysfs pools (the
        // kernel sums nr_hugepages x page size over its hstates for it). On older kernels the
        // fallback, like read_pools' own meminfo fallback, sees only the default page size.
        let hp = crate::procfs_text::meminfo_hugepages(fields);
        let (hugepages_pool_bytes, hugepages_pool_source) = match hp.hugetlb_bytes {
            Some(b) => (Some(b), Some("Hugetlb")),
            None => match (hp.hugepages_total, hp.hugepagesize_bytes) {
                (Some(n), Some(size)) => (
                    Some(n.saturating_mul(size)),
                    Some("HugePages_Total x Hugepagesize"),
                ),
                _ => (None, None),
            },
        };
        Meminfo {
            total: get("MemTotal"),
            free: get("MemFree"),
            available,
            available_estimated: available_estimated && available.is_some(),
            swap_total: get("SwapTotal"),
            swap_free: get("SwapFree"),
            hugepages_pool_bytes,
            hugepages_pool_source,
        }
    }
}

/// `MemFree + Active(file) + Inactive(file) + SReclaimable`: the kernel's `si_mem_available()`
/// with the low watermarks and `totalreserve_pages` taken as zero (they need `/proc/zoneinfo`),
/// so it overestimates a little: an upper bound of what can be had without swapping.
pub(super) fn estimate_available(get: &impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let free = get("MemFree")?;
    let active = get("Active(file)")?;
    let inactive = get("Inactive(file)")?;
    let reclaimable = get("SReclaimable").unwrap_or(0);
    Some(
        free.saturating_add(active)
            .saturating_add(inactive)
            .saturating_add(reclaimable),
    )
}

/// `/proc/vmstat` `oom_kill` (kernel >= 4.13); `None` when the kernel has no such line.
pub fn parse_vmstat_oom_kill(text: &str) -> Result<Option<u64>, ParseError> {
    Ok(field(&parse_flat_keyed(text)?, "oom_kill"))
}

/// A cgroup memory limit: `max` (v2) or a v1 value at or above 2^62 (the kernel prints
/// `PAGE_COUNTER_MAX` pages, 9223372036854771712 with 4 KiB pages) is `None`, unlimited.
pub fn parse_cgroup_limit(text: &str) -> Result<Option<u64>, ParseError> {
    let v = text.trim();
    if v == "max" {
        return Ok(None);
    }
    let n: u64 = v.parse().map_err(|_| {
        ParseError::at_line(1, format!("{} is neither a number nor \"max\"", excerpt(v)))
    })?;
    Ok(if n >= 1 << 62 { None } else { Some(n) })
}

/// One PSI line: the share of wall time (percent, 0-100) some or all tasks stalled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time, microseconds.
    pub total_us: u64,
}

/// A PSI file (`/proc/pressure/memory`, cgroup `memory.pressure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Psi {
    pub some: Option<PsiLine>,
    pub full: Option<PsiLine>,
}

/// Parses a PSI file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and a `full` line. Either
/// may be absent (`/proc/pressure/cpu` had no `full` before 5.13; `irq` has only `full`); lines
/// of another kind are skipped, fields in any order, unknown fields ignored.
pub fn parse_psi(text: &str) -> Result<Psi, ParseError> {
    let mut psi = Psi::default();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let slot = match words.next() {
            None => continue,
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            Some(_) => continue,
        };
        let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
        for w in words {
            let (k, v) = w.split_once('=').ok_or_else(|| {
                ParseError::at_line(i + 1, format!("expected key=value, got {}", excerpt(w)))
            })?;
            let bad = || ParseError::at_line(i + 1, format!("{k}: {} is not a number", excerpt(v)));
            match k {
                "avg10" | "avg60" | "avg300" => {
                    let x: f64 = v.parse().map_err(|_| bad())?;
                    if !(x.is_finite() && (0.0..=100.0).contains(&x)) {
                        return Err(ParseError::at_line(
                            i + 1,
                            format!("{k}: {v} is not a percentage"),
                        ));
                    }
                    match k {
                        "avg10" => avg10 = Some(x),
                        "avg60" => avg60 = Some(x),
                        _ => avg300 = Some(x),
                    }
                }
                "total" => total = Some(v.parse::<u64>().map_err(|_| bad())?),
                _ => {}
            }
        }
        match (avg10, avg60, avg300, total) {
            (Some(avg10), Some(avg60), Some(avg300), Some(total_us)) => {
                *slot = Some(PsiLine {
                    avg10,
                    avg60,
                    avg300,
                    total_us,
                })
            }
            _ => {
                return Err(ParseError::at_line(
                    i + 1,
                    "expected avg10=, avg60=, avg300= and total=",
                ));
            }
        }
    }
    Ok(psi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs_text::{parse_count, parse_meminfo};
    use crate::spark_conf::parse_spark_defaults;
    use proptest::prelude::*;

    /// node-exporter-upstream's `/proc/meminfo` head (a 3.x-era file: no MemAvailable).
    const MEMINFO_NO_AVAILABLE: &str = "MemTotal:        3742148 kB\nMemFree:          225472 kB\n\
        Buffers:           22040 kB\nCached:           930888 kB\nActive(file):     213412 kB\n\
        Inactive(file):   145676 kB\nSwapTotal:       4194300 kB\nSwapFree:        3155360 kB\n\
        SReclaimable:      44772 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n";

    fn get(fields: &[(String, u64)], k: &str) -> Option<u64> {
        field(fields, k)
    }

    #[test]
    fn meminfo_values_are_bytes_and_counts_stay_counts() {
        let f = parse_meminfo(MEMINFO_NO_AVAILABLE).unwrap();
        assert_eq!(get(&f, "MemTotal"), Some(3742148 * 1024));
        assert_eq!(get(&f, "HugePages_Total"), Some(0));
        assert_eq!(get(&f, "Active(file)"), Some(213412 * 1024));
    }

    #[test]
    fn meminfo_without_memavailable_is_estimated_and_labelled() {
        let m = Meminfo::from_fields(&parse_meminfo(MEMINFO_NO_AVAILABLE).unwrap());
        assert!(m.available_estimated);
        assert_eq!(m.available, Some((225472 + 213412 + 145676 + 44772) * 1024));
        let with = format!("{MEMINFO_NO_AVAILABLE}MemAvailable:    1000 kB\n");
        let m = Meminfo::from_fields(&parse_meminfo(&with).unwrap());
        assert_eq!(
            (m.available, m.available_estimated),
            (Some(1000 * 1024), false)
        );
        // Nothing to estimate from: unknown, not a guess.
        let m = Meminfo::from_fields(&parse_meminfo("MemTotal: 10 kB\n").unwrap());
        assert_eq!((m.available, m.available_estimated), (None, false));
    }

    #[test]
    fn meminfo_huge_page_pools_prefer_hugetlb_over_the_default_size_count() {
        let two_sizes =
            "HugePages_Total:       4\nHugepagesize:       2048 kB\nHugetlb:  2105344 kB\n";
        let m = Meminfo::from_fields(&parse_meminfo(two_sizes).unwrap());
        assert_eq!(m.hugepages_pool_bytes, Some(2105344 * 1024));
        assert_eq!(m.hugepages_pool_source, Some("Hugetlb"));
        let old = "HugePages_Total:       4\nHugepagesize:       2048 kB\n";
        let m = Meminfo::from_fields(&parse_meminfo(old).unwrap());
        assert_eq!(m.hugepages_pool_bytes, Some(4 * 2048 * 1024));
        assert_eq!(
            m.hugepages_pool_source,
            Some("HugePages_Total x Hugepagesize")
        );
    }

    #[test]
    fn vmstat_oom_kill_and_its_absence_before_4_13() {
        let text = "nr_free_pages 45123\npgfault 123456789\noom_kill 3\nthp_fault_alloc 0\n";
        assert_eq!(parse_vmstat_oom_kill(text).unwrap(), Some(3));
        assert_eq!(parse_vmstat_oom_kill("nr_free_pages 1\n").unwrap(), None);
        let e = parse_vmstat_oom_kill("nr_free_pages 1\noom_kill x\n").unwrap_err();
        assert!(e.0.starts_with("line 2: oom_kill"), "{e}");
    }

    #[test]
    fn cgroup_limits_max_and_v1_unlimited_are_none() {
        assert_eq!(parse_cgroup_limit("max\n").unwrap(), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n").unwrap(), None);
        // 64 KiB pages round PAGE_COUNTER_MAX differently.
        assert_eq!(parse_cgroup_limit("9223372036854710272\n").unwrap(), None);
        assert_eq!(parse_cgroup_limit("8589934592\n").unwrap(), Some(8 * GIB));
        assert!(parse_cgroup_limit("-1\n").is_err());
        assert_eq!(parse_count("123456\n").unwrap(), 123456);
        assert!(parse_count("").is_err());
    }

    #[test]
    fn psi_some_and_full() {
        let p = parse_psi(
            "some avg10=0.10 avg60=2.00 avg300=3.85 total=15\nfull avg10=0.20 avg60=3.00 avg300=4.95 total=25\n",
        )
        .unwrap();
        assert_eq!(p.some.unwrap().avg60, 2.0);
        assert_eq!(p.full.unwrap().total_us, 25);
    }

    #[test]
    fn psi_cpu_before_5_13_has_only_some() {
        let p = parse_psi("some avg10=0.10 avg60=2.00 avg300=3.85 total=15\n").unwrap();
        assert!(p.some.is_some() && p.full.is_none());
    }

    #[test]
    fn psi_irq_has_only_full_and_no_trailing_newline() {
        let p = parse_psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=8494").unwrap();
        assert!(p.some.is_none());
        assert_eq!(p.full.unwrap().total_us, 8494);
    }

    #[test]
    fn psi_errors_name_the_line() {
        let e = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=x\n")
            .unwrap_err();
        assert!(e.0.starts_with("line 2: avg10"), "{e}");
        assert!(parse_psi("some avg10=0.00\n").is_err());
        assert!(parse_psi("some avg10=101.00 avg60=0 avg300=0 total=0\n").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for text in [s.clone(), String::from_utf8_lossy(&bytes).into_owned()] {
                let _ = parse_meminfo(&text).map(|f| Meminfo::from_fields(&f));
                let _ = parse_flat_keyed(&text);
                let _ = parse_vmstat_oom_kill(&text);
                let _ = parse_cgroup_limit(&text);
                let _ = parse_count(&text);
                let _ = parse_proc_cgroup(&text);
                let _ = parse_cgroup_mounts(&text);
                let _ = parse_psi(&text);
                let conf = parse_spark_defaults(&text);
                let _ = SparkPlan::from_conf(&conf, 64);
            }
        }

        #[test]
        fn kernel_shaped_lines_never_panic(
            key in "[A-Za-z_()]{1,12}", n in any::<u64>(), unit in prop::sample::select(vec!["", " kB", " MB", " kB x"]),
            path in "/[ -~]{0,40}", avg in any::<f64>(),
        ) {
            let _ = parse_meminfo(&format!("{key}: {n}{unit}\n"));
            let _ = parse_proc_cgroup(&format!("0::{path}\n3:memory:{path}"));
            let _ = parse_cgroup_mounts(&format!("1 2 0:3 {path} {path} rw - cgroup2 cgroup2 rw\n"));
            let _ = parse_psi(&format!("some avg10={avg} avg60={avg} avg300=0 total={n}"));
        }
    }
}
