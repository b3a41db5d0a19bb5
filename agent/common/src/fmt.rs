//! Numbers in sentences, one way everywhere: bytes in binary units (`3.5 MiB`, `-1.5 GiB`), exact
//! sizes (`2 MiB` pages), percentages of a ratio (`12.5%`) and durations (`0.15s`). Facts and
//! gauges keep base units; only the words a person reads go through here.

/// Binary units from bytes up, each 1024 times the one before.
const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// Bytes for a sentence: whole bytes below 1 KiB, else one decimal in the largest binary unit
/// that fits: `512 B`, `3.5 MiB`, `1.0 GiB`.
pub fn bytes(b: u64) -> String {
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Signed bytes (a headroom that may be negative): `-1.5 GiB`, `3.0 GiB`.
pub fn signed_bytes(b: i128) -> String {
    let magnitude = u64::try_from(b.unsigned_abs()).unwrap_or(u64::MAX);
    if b < 0 {
        format!("-{}", bytes(magnitude))
    } else {
        bytes(magnitude)
    }
}

/// A size that is a whole number of a binary unit (a huge page size) in that unit: `2 MiB`,
/// `1 GiB`, `64 KiB`; any other amount as [`bytes`] gives it.
pub fn exact_bytes(b: u64) -> String {
    for (i, unit) in UNITS.iter().enumerate().skip(1).rev() {
        let size = 1u64 << (10 * i);
        if b >= size && b.is_multiple_of(size) {
            return format!("{} {unit}", b / size);
        }
    }
    bytes(b)
}

/// A 0-1 ratio as a percentage with one decimal; a share that is not zero never reads as zero:
/// `12.5%`, `<0.1%`, `0.0%`.
pub fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p > 0.0 && p < 0.1 {
        "<0.1%".to_string()
    } else {
        format!("{p:.1}%")
    }
}

/// A duration in seconds for a sentence: `5s`, `0.15s`, `42s`, `3600s`.
pub fn seconds(s: f64) -> String {
    if s >= 10.0 || s.fract() == 0.0 {
        format!("{}s", s.round() as u64)
    } else {
        let t = format!("{s:.2}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        format!("{t}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_take_the_largest_binary_unit_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(384 << 20), "384.0 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(5 << 40), "5.0 TiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn signed_bytes_keep_the_sign() {
        assert_eq!(signed_bytes(-(3 << 29)), "-1.5 GiB");
        assert_eq!(signed_bytes(2 << 30), "2.0 GiB");
        assert_eq!(signed_bytes(0), "0 B");
        assert_eq!(signed_bytes(i128::MIN), "-16.0 EiB");
    }

    #[test]
    fn exact_bytes_name_page_sizes_in_their_unit() {
        assert_eq!(exact_bytes(2 << 20), "2 MiB");
        assert_eq!(exact_bytes(1 << 30), "1 GiB");
        assert_eq!(exact_bytes(65536), "64 KiB");
        assert_eq!(exact_bytes(1000), "1000 B");
        assert_eq!(exact_bytes(3 << 19), "1536 KiB");
        assert_eq!(exact_bytes(0), "0 B");
    }

    #[test]
    fn percent_never_rounds_a_share_to_zero() {
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(percent(0.0004), "<0.1%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(1.0), "100.0%");
    }

    #[test]
    fn seconds_for_people() {
        assert_eq!(seconds(5.0), "5s");
        assert_eq!(seconds(0.15), "0.15s");
        assert_eq!(seconds(0.5), "0.5s");
        assert_eq!(seconds(42.4), "42s");
    }
}
