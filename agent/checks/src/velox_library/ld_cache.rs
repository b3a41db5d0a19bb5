//! `/etc/ld.so.cache` (both formats) and `ld.so.conf` text, parsed without touching the machine.

use super::elf::lossy;
use crate::check::ParseError;

/// One `ld.so.cache` entry: soname and the path ldconfig found it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub name: String,
    pub path: String,
    pub flags: i32,
    /// The new format's `hwcap` word: bit 62 marks a `glibc-hwcaps` subdirectory entry, other
    /// bits legacy hwcaps; 0 for a plain entry (and in the old format).
    pub hwcap: u64,
}

/// A parsed `/etc/ld.so.cache`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCache {
    /// `glibc-ld.so.cache1.1` (glibc >= 2.32 writes only this) or `ld.so-1.7.0` (old, possibly
    /// followed by a new-format section, which glibc prefers).
    pub format: &'static str,
    pub entries: Vec<CacheEntry>,
}

const CACHE_MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
const CACHE_MAGIC_OLD: &[u8] = b"ld.so-1.7.0";

fn u32_at(b: &[u8], off: usize, big: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

fn cstr_at(b: &[u8], off: usize) -> Option<String> {
    let rest = b.get(off..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(lossy(&rest[..end]))
}

/// Parses `/etc/ld.so.cache` in either format (glibc `elf/cache.c`, `sysdeps/generic/dl-cache.h`).
pub fn parse_ld_so_cache(b: &[u8]) -> Result<LdCache, ParseError> {
    if b.starts_with(CACHE_MAGIC_NEW) {
        return parse_cache_new(b).map(|entries| LdCache {
            format: "glibc-ld.so.cache1.1",
            entries,
        });
    }
    if !b.starts_with(CACHE_MAGIC_OLD) {
        return Err(ParseError::new(
            "unknown format: neither \"glibc-ld.so.cache1.1\" nor \"ld.so-1.7.0\" magic",
        ));
    }
    // struct cache_file { char magic[11]; u32 nlibs (at 12); struct { i32 flags; u32 key, value; } libs[]; }
    let n = u32_at(b, 12, false).ok_or_else(|| ParseError::new("truncated old-format header"))?
        as usize;
    let libs_end = n
        .checked_mul(12)
        .and_then(|x| x.checked_add(16))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            ParseError::new(format!(
                "old format: {n} entries do not fit in {} bytes",
                b.len()
            ))
        })?;
    // A new-format section may follow, aligned to 8 bytes; glibc uses it when present.
    let new_off = (libs_end + 7) & !7;
    if b.get(new_off..)
        .is_some_and(|r| r.starts_with(CACHE_MAGIC_NEW))
    {
        return parse_cache_new(&b[new_off..]).map(|entries| LdCache {
            format: "ld.so-1.7.0",
            entries,
        });
    }
    let strings = &b[libs_end..];
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let e = 16 + i * 12;
        let flags = u32_at(b, e, false).unwrap_or(0) as i32;
        let (k, v) = (
            u32_at(b, e + 4, false).unwrap_or(u32::MAX) as usize,
            u32_at(b, e + 8, false).unwrap_or(u32::MAX) as usize,
        );
        let name = cstr_at(strings, k)
            .ok_or_else(|| ParseError::new(format!("entry {i}: name offset {k} out of range")))?;
        let path = cstr_at(strings, v)
            .ok_or_else(|| ParseError::new(format!("entry {i}: path offset {v} out of range")))?;
        entries.push(CacheEntry {
            name,
            path,
            flags,
            hwcap: 0,
        });
    }
    Ok(LdCache {
        format: "ld.so-1.7.0",
        entries,
    })
}

/// The new format; string offsets are relative to the start of this header.
fn parse_cache_new(b: &[u8]) -> Result<Vec<CacheEntry>, ParseError> {
    // magic[20], u32 nlibs, u32 len_strings, u8 flags (byte order: 2 little, 3 big), pad[3],
    // u32 extension_offset, u32 unused[3]; then 24-byte entries { i32 flags; u32 key, value;
    // u32 osversion; u64 hwcap }.
    const HEADER: usize = 48;
    let big = b.get(28) == Some(&3);
    let n =
        u32_at(b, 20, big).ok_or_else(|| ParseError::new("truncated new-format header"))? as usize;
    n.checked_mul(24)
        .and_then(|x| x.checked_add(HEADER))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            ParseError::new(format!(
                "new format: {n} entries do not fit in {} bytes",
                b.len()
            ))
        })?;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let e = HEADER + i * 24;
        let flags = u32_at(b, e, big).unwrap_or(0) as i32;
        let (k, v) = (
            u32_at(b, e + 4, big).unwrap_or(u32::MAX) as usize,
            u32_at(b, e + 8, big).unwrap_or(u32::MAX) as usize,
        );
        let name = cstr_at(b, k)
            .ok_or_else(|| ParseError::new(format!("entry {i}: name offset {k} out of range")))?;
        let path = cstr_at(b, v)
            .ok_or_else(|| ParseError::new(format!("entry {i}: path offset {v} out of range")))?;
        let hwcap = u32_at(b, e + 16, big).unwrap_or(0) as u64
            | ((u32_at(b, e + 20, big).unwrap_or(0) as u64) << 32);
        let hwcap = if big { hwcap.rotate_left(32) } else { hwcap };
        entries.push(CacheEntry {
            name,
            path,
            flags,
            hwcap,
        });
    }
    Ok(entries)
}

/// One meaningful line of `ld.so.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfLine {
    Dir(String),
    /// `include` pattern, as written (may be relative, may hold `*` and `?`).
    Include(String),
}

/// Parses `ld.so.conf` text: directories (one or more per line, separated by whitespace, `:` or
/// `,`), `include PATTERN...`, `#` comments; `hwcap` lines are ignored, as ldconfig does.
pub fn parse_ld_so_conf(text: &str) -> Vec<ConfLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => out.extend(words.map(|w| ConfLine::Include(w.to_string()))),
            Some("hwcap") => {}
            _ => out.extend(
                line.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
                    .filter(|d| !d.is_empty())
                    // `dir=TYPE` is an old libc5 syntax; the dir is before the `=`.
                    .map(|d| ConfLine::Dir(d.split('=').next().unwrap_or(d).to_string())),
            ),
        }
    }
    out
}

/// `fnmatch` with `*` and `?` only (what `include /etc/ld.so.conf.d/*.conf` needs).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes a new-format cache (`glibc-ld.so.cache1.1`) holding `entries`.
    fn new_cache(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = 48 + 24 * entries.len();
        let mut offs = Vec::new();
        for (k, v) in entries {
            let ko = base + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = base + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            offs.push((ko as u32, vo as u32));
        }
        let mut b = CACHE_MAGIC_NEW.to_vec();
        b.extend((entries.len() as u32).to_le_bytes());
        b.extend((strings.len() as u32).to_le_bytes());
        b.extend([2, 0, 0, 0]);
        b.extend([0u8; 16]);
        for (k, v) in offs {
            b.extend(0x0303i32.to_le_bytes());
            b.extend(k.to_le_bytes());
            b.extend(v.to_le_bytes());
            b.extend([0u8; 12]);
        }
        b.extend(strings);
        b
    }

    #[test]
    fn ld_so_cache_new_format() {
        let b = new_cache(&[
            ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"),
            ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ]);
        let c = parse_ld_so_cache(&b).unwrap();
        assert_eq!(c.format, "glibc-ld.so.cache1.1");
        assert_eq!(
            c.entries[1],
            CacheEntry {
                name: "libc.so.6".into(),
                path: "/lib/x86_64-linux-gnu/libc.so.6".into(),
                flags: 0x0303,
                hwcap: 0,
            }
        );
    }

    #[test]
    fn ld_so_cache_old_format_alone_and_with_a_new_section() {
        // Old format: strings relative to the end of the entries.
        let mut b = CACHE_MAGIC_OLD.to_vec();
        b.push(0);
        b.extend(1u32.to_le_bytes());
        b.extend(0x0303i32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(10u32.to_le_bytes());
        b.extend(b"libm.so.6\0/lib/libm.so.6\0");
        let c = parse_ld_so_cache(&b).unwrap();
        assert_eq!(c.format, "ld.so-1.7.0");
        assert_eq!(
            (c.entries[0].name.as_str(), c.entries[0].path.as_str()),
            ("libm.so.6", "/lib/libm.so.6")
        );
        // Compat layout (glibc < 2.32 default): old header and entries, then an 8-aligned new
        // section whose offsets are relative to itself; glibc reads the new one.
        let mut b = CACHE_MAGIC_OLD.to_vec();
        b.push(0);
        b.extend(1u32.to_le_bytes());
        b.extend([0u8; 12]);
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        b.extend(new_cache(&[("libnew.so.1", "/usr/lib/libnew.so.1")]));
        let c = parse_ld_so_cache(&b).unwrap();
        assert_eq!(c.format, "ld.so-1.7.0");
        assert_eq!(c.entries[0].name, "libnew.so.1");
    }

    #[test]
    fn ld_so_cache_refuses_garbage_with_a_reason() {
        assert!(
            parse_ld_so_cache(b"hello")
                .unwrap_err()
                .to_string()
                .contains("unknown format")
        );
        let mut b = new_cache(&[("a", "b")]);
        b.truncate(60);
        assert!(
            parse_ld_so_cache(&b)
                .unwrap_err()
                .to_string()
                .contains("do not fit")
        );
    }

    #[test]
    fn ld_so_conf_debian_with_include_and_comments() {
        let text = "# libc default configuration\ninclude /etc/ld.so.conf.d/*.conf\n\n/usr/local/lib # local\n/opt/a:/opt/b, /opt/c\nhwcap 0 nosegneg\n/usr/X11R6/lib=libc5\n";
        assert_eq!(
            parse_ld_so_conf(text),
            vec![
                ConfLine::Include("/etc/ld.so.conf.d/*.conf".into()),
                ConfLine::Dir("/usr/local/lib".into()),
                ConfLine::Dir("/opt/a".into()),
                ConfLine::Dir("/opt/b".into()),
                ConfLine::Dir("/opt/c".into()),
                ConfLine::Dir("/usr/X11R6/lib".into()),
            ]
        );
        assert!(wildcard_match("*.conf", "x86_64-linux-gnu.conf"));
        assert!(!wildcard_match("*.conf", "README"));
        assert!(wildcard_match("lib?.conf", "libc.conf"));
    }

    proptest! {
        #[test]
        fn ld_so_cache_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512), new in any::<bool>()) {
            let mut data = if new { CACHE_MAGIC_NEW.to_vec() } else { CACHE_MAGIC_OLD.to_vec() };
            data.extend(b);
            let _ = parse_ld_so_cache(&data);
        }

        #[test]
        fn conf_never_panics(s in "\\PC{0,400}") {
            let _ = parse_ld_so_conf(&s);
        }
    }
}
