//! Strings a library carries that say what it needs from the executor's filesystem beyond
//! `DT_NEEDED`: Velox's time zone lookup (`discover_tz_dir failed to find zoneinfo`), a libcurl
//! compiled in (`libcurl/8.18.0`), OpenSSL's `OPENSSLDIR`, and the CA bundle paths TLS code was
//! built with. One pass over the bytes (multi-pattern search), fed in chunks so a streamed jar
//! entry is never held whole; results are sets, so a match seen twice across a chunk boundary
//! counts once.

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::OnceLock;

/// Velox's message when it finds no zoneinfo (libvelox.so, Gluten 1.7.0).
const TZ: &str = "discover_tz_dir failed to find zoneinfo";
const CURL: &str = "libcurl/";
const OPENSSLDIR: &str = "OPENSSLDIR: \"";

/// CA bundles TLS code is commonly built with, in curl's `configure` order (Debian first);
/// the RHEL-family one is judged first when several appear (see `Scan::curl_ca`).
pub const CA_BUNDLES: [&str; 8] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/usr/share/ssl/certs/ca-bundle.crt",
    "/usr/local/share/certs/ca-root-nss.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The RHEL-family bundle official Gluten builds carry (apache/gluten#12711).
pub const RHEL_CA_BUNDLE: &str = "/etc/pki/tls/certs/ca-bundle.crt";

/// Bytes kept from one chunk to the next: the longest pattern plus what follows it.
const CARRY: usize = 256;

/// What one file's strings say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Carries Velox's time zone lookup.
    pub tzdata: bool,
    /// `x.y.z` of `libcurl/x.y.z`.
    pub curl: Option<String>,
    /// OpenSSL's compiled `OPENSSLDIR`.
    pub openssldir: Option<String>,
    /// CA bundle paths among [`CA_BUNDLES`] the file names.
    pub ca_bundles: BTreeSet<String>,
}

impl Scan {
    /// The CA bundle a libcurl in this file defaults to: curl's default cannot be told apart
    /// from other paths by reading the binary, so the RHEL-family path is judged when present
    /// (conservative: official builds are RHEL-family), else the first in curl's order.
    pub fn curl_ca(&self) -> Option<&str> {
        self.curl.as_ref()?;
        if self.ca_bundles.contains(RHEL_CA_BUNDLE) {
            return Some(RHEL_CA_BUNDLE);
        }
        CA_BUNDLES
            .iter()
            .find(|c| self.ca_bundles.contains(**c))
            .copied()
    }
}

fn patterns() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        let mut p = vec![TZ, CURL, OPENSSLDIR];
        p.extend(CA_BUNDLES);
        // The contiguous NFA: 6 KiB against the DFA's 64 KiB for these eleven patterns, kept
        // for the life of the process, for about 5% more time on a cold scan (a 117 MB
        // library: 232 against 219 ms); a file is scanned again only when it changes.
        AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(p)
            .expect("valid patterns")
    })
}

/// Feeds chunks of one file, in order.
#[derive(Default)]
pub struct Scanner {
    carry: Vec<u8>,
    scan: Scan,
}

impl Scanner {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        for m in patterns().find_iter(&buf) {
            let after = &buf[m.end()..];
            match m.pattern().as_usize() {
                0 => self.scan.tzdata = true,
                1 => {
                    let n = after
                        .iter()
                        .take_while(|c| c.is_ascii_digit() || **c == b'.')
                        .count();
                    // Complete only when something else follows in this buffer.
                    if n > 0 && n < after.len() && self.scan.curl.is_none() {
                        self.scan.curl = Some(
                            String::from_utf8_lossy(&after[..n])
                                .trim_end_matches('.')
                                .into(),
                        );
                    }
                }
                2 => {
                    if let Some(q) = after.iter().take(200).position(|&c| c == b'"')
                        && self.scan.openssldir.is_none()
                    {
                        self.scan.openssldir = Some(String::from_utf8_lossy(&after[..q]).into());
                    }
                }
                i => {
                    // A bundle path must end there (not be the prefix of a longer path).
                    // (At the end of the buffer: seen again with what follows, from the carry.)
                    if after.first().is_some_and(|c| !c.is_ascii_graphic()) {
                        self.scan.ca_bundles.insert(CA_BUNDLES[i - 3].to_string());
                    }
                }
            }
        }
        let keep = buf.len().min(CARRY);
        self.carry = buf[buf.len() - keep..].to_vec();
    }

    pub fn finish(mut self) -> Scan {
        self.feed(b"\0");
        self.scan
    }
}

/// Scans a whole file through a small buffer (never mapping it: what a scan reads must not
/// count against the agent's memory).
pub fn scan_reader(mut r: impl Read) -> std::io::Result<Scan> {
    let mut s = Scanner::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.feed(&buf[..n]);
    }
    Ok(s.finish())
}

/// Scans only `ranges` (offset, length) of a file, in order, each through the same small
/// buffer; a boundary between ranges never joins two strings (each range is finished apart).
pub fn scan_ranges(
    mut r: impl Read + std::io::Seek,
    ranges: &[(u64, u64)],
) -> std::io::Result<Scan> {
    let mut all = Scan::default();
    let mut buf = vec![0u8; 256 * 1024];
    for &(off, len) in ranges {
        r.seek(std::io::SeekFrom::Start(off))?;
        let mut part = (&mut r).take(len);
        let mut s = Scanner::default();
        loop {
            let n = part.read(&mut buf)?;
            if n == 0 {
                break;
            }
            s.feed(&buf[..n]);
        }
        let one = s.finish();
        all.tzdata |= one.tzdata;
        all.curl = all.curl.or(one.curl);
        all.openssldir = all.openssldir.or(one.openssldir);
        all.ca_bundles.extend(one.ca_bundles);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &[u8] = b"\0xx discover_tz_dir failed to find zoneinfo\0/usr/share/zoneinfo\0CURL libcurl/8.18.0\0OPENSSLDIR: \"/etc/ssl\"\0/etc/pki/tls/certs/ca-bundle.crt\0/etc/ssl/certs/ca-certificates.crt\0/etc/ssl/cert.pemX\0";

    #[test]
    fn finds_what_the_1_7_0_library_carries() {
        let s = scan_reader(SAMPLE).unwrap();
        assert!(s.tzdata);
        assert_eq!(s.curl.as_deref(), Some("8.18.0"));
        assert_eq!(s.openssldir.as_deref(), Some("/etc/ssl"));
        assert_eq!(
            s.ca_bundles.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/certs/ca-certificates.crt"
            ]
        );
        assert_eq!(s.curl_ca(), Some(RHEL_CA_BUNDLE));
    }

    #[test]
    fn every_chunking_gives_the_same_answer() {
        let whole = scan_reader(SAMPLE).unwrap();
        for size in [1, 2, 3, 7, 16, 64] {
            let mut sc = Scanner::default();
            for c in SAMPLE.chunks(size) {
                sc.feed(c);
            }
            assert_eq!(sc.finish(), whole, "chunks of {size}");
        }
    }

    #[test]
    fn curl_without_the_rhel_path_takes_curls_order_and_no_curl_no_default() {
        let s = scan_reader(
            &b"libcurl/7.88.1 \0/etc/ssl/cert.pem\0/etc/ssl/certs/ca-certificates.crt\0"[..],
        )
        .unwrap();
        assert_eq!(s.curl_ca(), Some("/etc/ssl/certs/ca-certificates.crt"));
        let s = scan_reader(&b"/etc/pki/tls/certs/ca-bundle.crt\0"[..]).unwrap();
        assert_eq!(s.curl_ca(), None);
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..2048), cut in 1usize..64) {
            let mut sc = Scanner::default();
            for c in b.chunks(cut) {
                sc.feed(c);
            }
            let _ = sc.finish();
        }
    }
}
