//! The executor root's glibc, as far as its loader's search depends on it: the release (from the
//! loader's banner), the default directories compiled into its `ld.so` (`system_dirs`, read out
//! of the binary), `$LIB`, `$PLATFORM`, and the capability subdirectories searched before each
//! directory (`glibc-hwcaps/x86-64-v2..v4` from 2.33 on x86-64, none on aarch64; the legacy
//! `tls`, platform and hwcap subdirectories before 2.37: `tls`, `haswell`, `avx512_1`, `x86_64`
//! on x86-64, `tls`, `aarch64`, `atomics` on aarch64). The CPU flags come from the host;
//! everything else from the root.

use std::collections::BTreeSet;

use super::cpuinfo::{x86_64_legacy_caps, x86_64_level};

/// The program interpreter of an architecture's ABI (what `PT_INTERP` names in every binary).
pub fn interp_path(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("/lib64/ld-linux-x86-64.so.2"),
        "aarch64" => Some("/lib/ld-linux-aarch64.so.1"),
        _ => None,
    }
}

/// What the loader binary tells: its release and its default directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoaderBinary {
    /// `[2, 36]` from "stable release version 2.36".
    pub release: Option<Vec<u32>>,
    /// `system_dirs` as compiled in, each ending in `/`.
    pub system_dirs: Option<Vec<String>>,
}

/// Reads the release banner and the default search directories out of an `ld.so` image.
pub fn parse_loader_binary(b: &[u8]) -> LoaderBinary {
    let release = memchr::memmem::find(b, b"release version ").and_then(|i| {
        let rest = &b[i + 16..b.len().min(i + 40)];
        let end = rest
            .iter()
            .position(|c| !(c.is_ascii_digit() || *c == b'.'))
            .unwrap_or(rest.len());
        let v: Vec<u32> = std::str::from_utf8(&rest[..end])
            .ok()?
            .trim_end_matches('.')
            .split('.')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        (v.len() >= 2).then_some(v)
    });
    LoaderBinary {
        release,
        system_dirs: system_dirs(b),
    }
}

/// The first run of at least two NUL-separated absolute directory names ending in `/` and
/// naming a `lib` directory: glibc's `system_dirs` string (`"/lib/x86_64-linux-gnu/\0/usr/lib/
/// x86_64-linux-gnu/\0/lib/\0/usr/lib/\0"` on Debian, `"/lib64/\0/usr/lib64/\0"` on RHEL).
fn system_dirs(b: &[u8]) -> Option<Vec<String>> {
    let is_dir = |s: &[u8]| {
        s.len() >= 2
            && s.len() <= 64
            && s[0] == b'/'
            && s[s.len() - 1] == b'/'
            && s.iter().all(|c| c.is_ascii_graphic())
            && memchr::memmem::find(s, b"lib").is_some()
    };
    for i in memchr::memmem::find_iter(b, b"/\0/") {
        // The string that ends at i (inclusive) must start right after a NUL.
        let start = b[..=i].iter().rposition(|&c| c == 0).map_or(0, |p| p + 1);
        if !is_dir(&b[start..=i]) {
            continue;
        }
        let mut dirs = Vec::new();
        let mut at = start;
        while let Some(len) = b[at..].iter().position(|&c| c == 0) {
            let s = &b[at..at + len];
            if !is_dir(s) {
                break;
            }
            dirs.push(String::from_utf8_lossy(s).into_owned());
            at += len + 1;
        }
        if dirs.len() >= 2 {
            return Some(dirs);
        }
    }
    None
}

/// Everything of the root's glibc that the search uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glibc {
    pub release: Option<Vec<u32>>,
    /// Default dirs, each ending in `/`.
    pub system_dirs: Vec<String>,
    /// `ld.so` when read out of the root's loader, `built-in` otherwise.
    pub system_dirs_source: &'static str,
    /// `$LIB`.
    pub lib: String,
    /// `$PLATFORM`.
    pub platform: String,
    /// Subdirectories tried in each search dir, best first, each ending in `/`; the last is "".
    pub subdirs: Vec<String>,
    /// The legacy hwcap bits an `ld.so.cache` entry may carry and still be used (glibc's
    /// `hwcap_exclude` in `search_cache`, before 2.40); 0: only entries without legacy bits.
    pub cache_hwcap: u64,
}

/// The bit `ldconfig` sets on entries found in a `tls` subdirectory (`_DL_HWCAP_TLS_MASK`).
const CACHE_HWCAP_TLS: u64 = 1 << 63;

/// `HWCAP_ATOMICS`, the aarch64 `AT_HWCAP` bit named `atomics`.
const AARCH64_HWCAP_ATOMICS: u64 = 1 << 8;

/// The CPU as the loader sees it: flags every processor has and the vendor.
pub struct Cpu<'a> {
    pub flags: Option<&'a BTreeSet<String>>,
    pub vendor: Option<&'a str>,
}

impl Glibc {
    /// The model of the root's glibc from its loader binary (if any) and the host's CPU.
    /// `debian_layout`: the root has `/lib/<triplet>` (used only without a loader binary).
    pub fn new(arch: &str, loader: Option<&LoaderBinary>, cpu: &Cpu, debian_layout: bool) -> Self {
        let release = loader.and_then(|l| l.release.clone());
        let triplet = match arch {
            "x86_64" => "x86_64-linux-gnu",
            "aarch64" => "aarch64-linux-gnu",
            _ => "",
        };
        let (system_dirs, system_dirs_source) = match loader.and_then(|l| l.system_dirs.clone()) {
            Some(d) => (d, "ld.so"),
            None => {
                let mut d = Vec::new();
                if !triplet.is_empty() {
                    d.push(format!("/lib/{triplet}/"));
                    d.push(format!("/usr/lib/{triplet}/"));
                }
                if matches!(arch, "x86_64" | "aarch64") {
                    d.extend(["/lib64/".to_string(), "/usr/lib64/".to_string()]);
                }
                d.extend(["/lib/".to_string(), "/usr/lib/".to_string()]);
                (d, "built-in")
            }
        };
        let lib = if system_dirs_source == "ld.so" {
            system_dirs[0].trim_matches('/').to_string()
        } else if debian_layout && !triplet.is_empty() {
            format!("lib/{triplet}")
        } else {
            "lib64".to_string()
        };
        let at_least = |v: &[u32]| release.as_deref().is_none_or(|r| r >= v);
        let before = |v: &[u32]| release.as_deref().is_some_and(|r| r < v);
        let empty = BTreeSet::new();
        let flags = cpu.flags.unwrap_or(&empty);
        let mut subdirs = Vec::new();
        let mut platform = arch.to_string();
        let mut cache_hwcap = 0;
        if arch == "x86_64" {
            let (legacy_platform, avx512_1) = x86_64_legacy_caps(cpu.vendor, flags);
            if let Some(p) = legacy_platform.filter(|_| at_least(&[2, 26])) {
                platform = p.to_string();
            }
            if at_least(&[2, 33]) {
                for level in (2..=x86_64_level(flags)).rev() {
                    subdirs.push(format!("glibc-hwcaps/x86-64-v{level}/"));
                }
            }
            if before(&[2, 37]) {
                let mut caps = vec!["tls"];
                if at_least(&[2, 26]) {
                    caps.extend(legacy_platform);
                    if avx512_1 {
                        caps.push("avx512_1");
                    }
                }
                caps.push("x86_64");
                subdirs.extend(legacy_subdirs(&caps));
                subdirs.pop();
            }
        } else if arch == "aarch64" {
            // No glibc-hwcaps subdirs on aarch64 (the generic `elf/dl-hwcaps-subdirs.c`).
            // Before 2.37 the power set of [hwcaps in HWCAP_IMPORTANT & AT_HWCAP, AT_PLATFORM,
            // "tls"], the last name outermost; HWCAP_IMPORTANT is HWCAP_ATOMICS from 2.28.
            let atomics = at_least(&[2, 28]) && flags.contains("atomics");
            if before(&[2, 37]) {
                let mut caps = vec!["tls", "aarch64"];
                if atomics {
                    caps.push("atomics");
                }
                subdirs.extend(legacy_subdirs(&caps));
                subdirs.pop();
            }
            // Cache entries ldconfig (before 2.37) found in `tls/` and `atomics/` subdirs are
            // used until 2.40 when their bits are in `tls | (AT_HWCAP & HWCAP_IMPORTANT)`.
            if before(&[2, 40]) {
                cache_hwcap = CACHE_HWCAP_TLS | if atomics { AARCH64_HWCAP_ATOMICS } else { 0 };
            }
        } else if before(&[2, 37]) {
            subdirs.push("tls/".to_string());
        }
        subdirs.push(String::new());
        Glibc {
            release,
            system_dirs,
            system_dirs_source,
            lib,
            platform,
            subdirs,
            cache_hwcap,
        }
    }
}

/// Every subset of `caps` as a path, in glibc's order (the first name is the most significant).
fn legacy_subdirs(caps: &[&str]) -> Vec<String> {
    let n = caps.len();
    (0..1u32 << n)
        .rev()
        .map(|mask| {
            caps.iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << (n - 1 - i)) != 0)
                .map(|(_, c)| format!("{c}/"))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> BTreeSet<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    const V4: &str = "cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3 avx avx2 bmi1 bmi2 f16c fma abm movbe xsave avx512f avx512bw avx512cd avx512dq avx512vl";

    #[test]
    fn debian_12_on_an_avx512_intel_cpu_searches_what_its_ld_so_prints() {
        // `LD_DEBUG=libs` of Debian 12's glibc 2.36 on such a CPU, for one RPATH dir.
        let loader = parse_loader_binary(
            b"xx\0ld.so (Debian GLIBC 2.36-9) stable release version 2.36.\0\x16\0\0\0/lib/x86_64-linux-gnu/\0/usr/lib/x86_64-linux-gnu/\0/lib/\0/usr/lib/\0\0",
        );
        assert_eq!(loader.release, Some(vec![2, 36]));
        let flags = set(V4);
        let g = Glibc::new(
            "x86_64",
            Some(&loader),
            &Cpu {
                flags: Some(&flags),
                vendor: Some("GenuineIntel"),
            },
            true,
        );
        assert_eq!(
            g.system_dirs,
            [
                "/lib/x86_64-linux-gnu/",
                "/usr/lib/x86_64-linux-gnu/",
                "/lib/",
                "/usr/lib/"
            ]
        );
        assert_eq!(g.lib, "lib/x86_64-linux-gnu");
        assert_eq!(g.platform, "haswell");
        let printed = "glibc-hwcaps/x86-64-v4:glibc-hwcaps/x86-64-v3:glibc-hwcaps/x86-64-v2:tls/haswell/avx512_1/x86_64:tls/haswell/avx512_1:tls/haswell/x86_64:tls/haswell:tls/avx512_1/x86_64:tls/avx512_1:tls/x86_64:tls:haswell/avx512_1/x86_64:haswell/avx512_1:haswell/x86_64:haswell:avx512_1/x86_64:avx512_1:x86_64:";
        let ours: Vec<String> = g
            .subdirs
            .iter()
            .map(|s| s.trim_end_matches('/').to_string())
            .collect();
        assert_eq!(ours.join(":"), printed);
    }

    #[test]
    fn rhel_and_new_glibc_and_old_glibc() {
        let rhel = parse_loader_binary(b"release version 2.34\0/lib64/\0/usr/lib64/\0");
        let flags = set(V4);
        let cpu = Cpu {
            flags: Some(&flags),
            vendor: Some("AuthenticAMD"),
        };
        let g = Glibc::new("x86_64", Some(&rhel), &cpu, false);
        assert_eq!(g.system_dirs, ["/lib64/", "/usr/lib64/"]);
        assert_eq!(g.lib, "lib64");
        assert_eq!(g.platform, "x86_64");
        assert_eq!(
            &g.subdirs[..3],
            [
                "glibc-hwcaps/x86-64-v4/",
                "glibc-hwcaps/x86-64-v3/",
                "glibc-hwcaps/x86-64-v2/"
            ]
        );
        assert_eq!(&g.subdirs[3..], ["tls/x86_64/", "tls/", "x86_64/", ""]);
        let new = LoaderBinary {
            release: Some(vec![2, 41]),
            system_dirs: None,
        };
        let g = Glibc::new("x86_64", Some(&new), &cpu, true);
        assert_eq!(g.subdirs.len(), 4, "hwcaps only: {:?}", g.subdirs);
        assert_eq!(g.system_dirs_source, "built-in");
        let old = LoaderBinary {
            release: Some(vec![2, 17]),
            system_dirs: None,
        };
        let g = Glibc::new("x86_64", Some(&old), &cpu, false);
        assert_eq!(g.subdirs, ["tls/x86_64/", "tls/", "x86_64/", ""]);
        assert_eq!(g.lib, "lib64");
    }

    #[test]
    fn aarch64_searches_tls_platform_and_atomics_before_2_37_and_no_hwcaps_dirs() {
        let loader = parse_loader_binary(
            b"release version 2.36.\0/lib/aarch64-linux-gnu/\0/usr/lib/aarch64-linux-gnu/\0/lib/\0/usr/lib/\0",
        );
        let with = set("fp asimd atomics cpuid");
        let without = set("fp asimd cpuid");
        let cpu = |f| Cpu {
            flags: Some(f),
            vendor: None,
        };
        let g = Glibc::new("aarch64", Some(&loader), &cpu(&with), true);
        assert_eq!(g.platform, "aarch64");
        assert_eq!(g.lib, "lib/aarch64-linux-gnu");
        assert_eq!(
            g.subdirs,
            [
                "tls/aarch64/atomics/",
                "tls/aarch64/",
                "tls/atomics/",
                "tls/",
                "aarch64/atomics/",
                "aarch64/",
                "atomics/",
                ""
            ]
        );
        assert_eq!(g.cache_hwcap, (1 << 63) | (1 << 8));
        let g = Glibc::new("aarch64", Some(&loader), &cpu(&without), true);
        assert_eq!(g.subdirs, ["tls/aarch64/", "tls/", "aarch64/", ""]);
        assert_eq!(g.cache_hwcap, 1 << 63);
        let old = LoaderBinary {
            release: Some(vec![2, 27]),
            system_dirs: None,
        };
        let g = Glibc::new("aarch64", Some(&old), &cpu(&with), true);
        assert_eq!(g.subdirs, ["tls/aarch64/", "tls/", "aarch64/", ""]);
        let new = LoaderBinary {
            release: Some(vec![2, 37]),
            system_dirs: None,
        };
        let g = Glibc::new("aarch64", Some(&new), &cpu(&with), true);
        assert_eq!(g.subdirs, [""]);
        assert_eq!(g.cache_hwcap, (1 << 63) | (1 << 8));
        let newest = LoaderBinary {
            release: Some(vec![2, 40]),
            system_dirs: None,
        };
        assert_eq!(
            Glibc::new("aarch64", Some(&newest), &cpu(&with), true).cache_hwcap,
            0
        );
    }
}
