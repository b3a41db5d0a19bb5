//! Pure parsers of the hugepages check's own kernel files: THP mode files, pool directory
//! names, `/proc/vmstat`'s THP and compaction counters.

use super::*;
use crate::check::ParseError;
use crate::error::excerpt;
use crate::procfs_text::{field, parse_flat_keyed};

/// The longest THP mode name taken (the kernel's longest is `defer+madvise`, 13 bytes) and the
/// most modes one file may list (the kernel lists at most 5): a file beyond either is not a
/// THP mode file, and its words would otherwise all become facts.
const MAX_THP_MODE_BYTES: usize = 32;
const MAX_THP_MODES: usize = 16;

/// Parses a THP mode file such as `always [madvise] never` (the selected mode is bracketed).
pub fn parse_thp_setting(text: &str) -> Result<ThpSetting, ParseError> {
    let mut selected = None;
    let mut available = Vec::new();
    for word in text.split_whitespace() {
        if word.len() > MAX_THP_MODE_BYTES + 2 {
            return Err(ParseError::new(format!(
                "a mode name of {} bytes is not a THP mode: {}",
                word.len(),
                excerpt(word)
            )));
        }
        if available.len() == MAX_THP_MODES {
            return Err(ParseError::new(format!(
                "more than {MAX_THP_MODES} modes: not a THP mode file"
            )));
        }
        let mode = match word.strip_prefix('[') {
            Some(inner) => {
                let inner = inner.strip_suffix(']').ok_or_else(|| {
                    ParseError::new(format!("unbalanced bracket in {}", excerpt(word)))
                })?;
                if selected.replace(inner.to_string()).is_some() {
                    return Err(ParseError::new("more than one [selected] mode"));
                }
                inner
            }
            None if word.contains(['[', ']']) => {
                return Err(ParseError::new(format!(
                    "unbalanced bracket in {}",
                    excerpt(word)
                )));
            }
            None => word,
        };
        if mode.is_empty() {
            return Err(ParseError::new("empty mode name"));
        }
        available.push(mode.to_string());
    }
    let selected = selected.ok_or_else(|| {
        ParseError::new(format!("no [selected] mode in {}", excerpt(text.trim())))
    })?;
    Ok(ThpSetting {
        selected,
        available,
    })
}

/// The page size in bytes of a pool directory named `hugepages-<n>kB`; `None` for other names.
pub fn parse_pool_dir_name(name: &str) -> Option<u64> {
    let kib: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    kib.checked_mul(1024).filter(|b| *b > 0)
}

/// The THP and compaction counters of `/proc/vmstat` text (`key value` lines); a malformed line
/// is an error naming the line.
pub fn parse_vmstat_thp(text: &str) -> Result<VmstatThp, ParseError> {
    let fields = parse_flat_keyed(text)?;
    let get = |k: &str| field(&fields, k);
    Ok(VmstatThp {
        thp_fault_alloc: get("thp_fault_alloc"),
        thp_fault_fallback: get("thp_fault_fallback"),
        thp_collapse_alloc: get("thp_collapse_alloc"),
        thp_collapse_alloc_failed: get("thp_collapse_alloc_failed"),
        thp_split_page: get("thp_split_page"),
        compact_stall: get("compact_stall"),
        compact_fail: get("compact_fail"),
        compact_success: get("compact_success"),
        nr_anon_transparent_hugepages: get("nr_anon_transparent_hugepages"),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::procfs_text::{meminfo_hugepages, parse_meminfo};
    use proptest::prelude::*;

    #[test]
    fn thp_files_of_long_words_or_many_modes_are_refused_briefly() {
        let long = format!("always [{}] never", "x".repeat(2 << 20));
        let e = parse_thp_setting(&long).unwrap_err();
        assert!(
            e.0.starts_with("a mode name of 2097154 bytes is not a THP mode"),
            "{e}"
        );
        assert!(e.0.len() <= crate::error::MAX_REASON_BYTES, "{e}");
        let many = format!("[a] {}", "b ".repeat(100));
        assert!(
            parse_thp_setting(&many)
                .unwrap_err()
                .0
                .contains("more than 16 modes")
        );
        let s = parse_thp_setting("always defer defer+madvise [madvise] never").unwrap();
        assert_eq!(s.available.len(), 5);
    }

    #[test]
    fn thp_enabled_selected_mode_is_the_bracketed_one() {
        let s = parse_thp_setting("always [madvise] never\n").unwrap();
        assert_eq!(s.selected, "madvise");
        assert_eq!(s.available, ["always", "madvise", "never"]);
    }

    #[test]
    fn thp_defrag_has_five_modes_including_defer_plus_madvise() {
        let s = parse_thp_setting("always defer defer+madvise [madvise] never\n").unwrap();
        assert_eq!(s.selected, "madvise");
        assert_eq!(s.available.len(), 5);
        let s = parse_thp_setting("always defer [defer+madvise] madvise never").unwrap();
        assert_eq!(s.selected, "defer+madvise");
    }

    #[test]
    fn thp_without_a_selection_or_with_two_is_an_error() {
        assert!(parse_thp_setting("always madvise never\n").is_err());
        assert!(parse_thp_setting("").is_err());
        assert!(parse_thp_setting("[always] [never]").is_err());
        assert!(parse_thp_setting("always [madvise never").is_err());
    }

    #[test]
    fn pool_dir_names_give_the_page_size_in_bytes() {
        assert_eq!(parse_pool_dir_name("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(parse_pool_dir_name("hugepages-1048576kB"), Some(1 << 30));
        assert_eq!(parse_pool_dir_name("hugepages-64kB"), Some(64 << 10));
        assert_eq!(parse_pool_dir_name("hugepages-0kB"), None);
        assert_eq!(parse_pool_dir_name("hugepages-2048"), None);
        assert_eq!(parse_pool_dir_name("transparent_hugepage"), None);
        assert_eq!(
            parse_pool_dir_name("hugepages-99999999999999999999kB"),
            None
        );
    }

    /// Lines of a Linux 4.x `/proc/vmstat` (node-exporter's fixture): `thp_split`, not yet
    /// `thp_split_page`.
    pub(crate) const VMSTAT_4X: &str = "nr_free_pages 977769\nnr_anon_transparent_hugepages 556\n\
compact_stall 210959\ncompact_fail 164840\ncompact_success 46119\nthp_fault_alloc 142261\n\
thp_fault_fallback 98119\nthp_collapse_alloc 88421\nthp_collapse_alloc_failed 20954\n\
thp_split 69984\nthp_zero_page_alloc 9\n";

    #[test]
    fn proc_vmstat_thp_counters_are_read_by_name() {
        let v = parse_vmstat_thp(VMSTAT_4X).unwrap();
        assert_eq!(v.thp_fault_alloc, Some(142261));
        assert_eq!(v.thp_fault_fallback, Some(98119));
        assert_eq!(v.thp_collapse_alloc_failed, Some(20954));
        assert_eq!(
            (v.compact_stall, v.compact_fail, v.compact_success),
            (Some(210959), Some(164840), Some(46119))
        );
        assert_eq!(v.nr_anon_transparent_hugepages, Some(556));
        let names: Vec<_> = v.counters().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, VMSTAT_COUNTERS);
    }

    #[test]
    fn proc_vmstat_counter_missing_is_unknown_never_guessed() {
        // Before Linux 4.5 the split counter was `thp_split`: not taken for `thp_split_page`.
        let v = parse_vmstat_thp(VMSTAT_4X).unwrap();
        assert_eq!(v.thp_split_page, None);
        // A kernel without THP or compaction prints none of them.
        let v = parse_vmstat_thp("nr_free_pages 1\noom_kill 0\n").unwrap();
        assert_eq!(v, VmstatThp::default());
        assert_eq!(parse_vmstat_thp("").unwrap(), VmstatThp::default());
    }

    #[test]
    fn proc_vmstat_malformed_line_is_an_error_naming_the_line() {
        let e = parse_vmstat_thp("nr_free_pages 1\nthp_fault_alloc\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: thp_fault_alloc: no value");
        let e = parse_vmstat_thp("thp_fault_alloc 1\ncompact_stall -3\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2: compact_stall"), "{e}");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let lossy = String::from_utf8_lossy(&b);
            for t in [s.as_str(), &lossy] {
                let _ = parse_thp_setting(t);
                let _ = parse_pool_dir_name(t);
                if let Ok(f) = parse_meminfo(t) {
                    let _ = meminfo_hugepages(&f);
                }
                if let Ok(v) = parse_vmstat_thp(t) {
                    let _ = v.counters();
                }
            }
        }

        #[test]
        fn vmstat_like_text_never_panics(
            lines in proptest::collection::vec("(thp_fault_alloc|thp_split_page|compact_stall|[a-z_]{1,12})( +-?[0-9]{0,21}){0,3}", 0..20)
        ) {
            let _ = parse_vmstat_thp(&lines.join("\n"));
        }
    }
}
