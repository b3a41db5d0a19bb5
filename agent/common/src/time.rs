//! Time helpers: RFC 3339 timestamps for the wire, seconds since the epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Durations in sentences live in `fmt` now; this name stays for existing callers.
pub use crate::fmt::seconds as format_seconds;

/// Now, as RFC 3339 UTC with milliseconds (`2026-11-23T10:15:00.250Z`).
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 timestamp as written by [`rfc3339`].
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// Seconds since the Unix epoch, now.
pub fn unix_seconds_now() -> f64 {
    unix_seconds(SystemTime::now())
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_250);
        let s = rfc3339(t);
        assert!(s.ends_with(".250Z"), "{s}");
        assert_eq!(parse_rfc3339(&s), Some(t));
    }
}
