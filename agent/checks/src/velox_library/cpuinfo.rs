//! `/proc/cpuinfo`: the CPU flags every processor lists, and what glibc's loader derives from
//! them (the x86-64 ISA level behind `glibc-hwcaps`, the legacy platform and hwcap names).

use std::collections::BTreeSet;

/// ISA flags worth comparing across a fleet besides the required ones.
pub(super) const EXTRA_ISA_FLAGS: [&str; 12] = [
    "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "bmi1", "lzcnt", "sse4_1", "ssse3",
    "sve", "sve2", "atomics",
];

/// The CPU flags of `/proc/cpuinfo`: x86 `flags`, aarch64 `Features`. Flags every processor has
/// (a flag missing on one CPU is missing: the executor thread may run there). `None` when no
/// processor lists any (an unknown fact, e.g. some emulators).
pub fn parse_cpuinfo_flags(text: &str) -> Option<BTreeSet<String>> {
    let mut all: Option<BTreeSet<String>> = None;
    // On a big host every processor usually lists the same flags: intersect each distinct line
    // once (192 identical lines cost one split, not 192).
    let mut seen: Vec<&str> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !matches!(key.trim(), "flags" | "Features") {
            continue;
        }
        let value = value.trim();
        if seen.contains(&value) {
            continue;
        }
        seen.push(value);
        let set: BTreeSet<String> = value.split_whitespace().map(str::to_string).collect();
        all = Some(match all {
            None => set,
            Some(prev) => prev.intersection(&set).cloned().collect(),
        });
    }
    all
}

/// The vendor of the first processor (`GenuineIntel`, `AuthenticAMD`), x86 only.
pub fn parse_cpuinfo_vendor(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "vendor_id").then(|| v.trim().to_string())
    })
}

/// Flags of each x86-64 micro-architecture level, as `/proc/cpuinfo` names them (glibc
/// `sysdeps/x86/get-isa-level.h`; SSE3 is `pni`, LZCNT `abm`, OSXSAVE shows as `xsave`).
const X86_64_LEVELS: [&[&str]; 3] = [
    &[
        "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3",
    ],
    &[
        "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
    ],
    &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"],
];

/// The x86-64 ISA level (1 to 4) the flags support.
pub fn x86_64_level(flags: &BTreeSet<String>) -> u8 {
    let mut level = 1;
    for need in X86_64_LEVELS {
        if !need.iter().all(|f| flags.contains(*f)) {
            break;
        }
        level += 1;
    }
    level
}

/// glibc's legacy x86-64 platform and hwcap names (glibc 2.26 to 2.36, `init_cpu_features`):
/// Intel CPUs with the Haswell set are `haswell`, and `avx512_1` with AVX-512 F/CD/BW/DQ/VL.
pub fn x86_64_legacy_caps(
    vendor: Option<&str>,
    flags: &BTreeSet<String>,
) -> (Option<&'static str>, bool) {
    if vendor != Some("GenuineIntel") {
        return (None, false);
    }
    let has = |f: &[&str]| f.iter().all(|x| flags.contains(*x));
    let avx512_1 =
        has(&["avx512cd"]) && !has(&["avx512er"]) && has(&["avx512bw", "avx512dq", "avx512vl"]);
    let platform = if has(&["avx512cd", "avx512er", "avx512pf"]) {
        Some("xeon_phi")
    } else if has(&["avx2", "fma", "bmi1", "bmi2", "abm", "movbe", "popcnt"]) {
        Some("haswell")
    } else {
        None
    };
    (platform, avx512_1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velox_library::settings::AARCH64_CPU_FLAGS;
    use proptest::prelude::*;

    #[test]
    fn cpuinfo_x86_flags() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/upstream/procfs-upstream/proc/cpuinfo"
        ))
        .unwrap();
        let f = parse_cpuinfo_flags(&text).unwrap();
        assert!(f.contains("avx2") && f.contains("bmi2") && !f.contains("avx512f"));
    }

    #[test]
    fn cpuinfo_aarch64_features() {
        // Graviton2 (Neoverse N1), as the kernel prints it.
        let text = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\n";
        let f = parse_cpuinfo_flags(text).unwrap();
        assert!(AARCH64_CPU_FLAGS.iter().all(|x| f.contains(*x)));
    }

    #[test]
    fn cpuinfo_flag_missing_on_one_cpu_is_missing() {
        let text = "processor\t: 0\nflags\t\t: avx avx2\n\nprocessor\t: 1\nflags\t\t: avx\n";
        assert_eq!(
            parse_cpuinfo_flags(text)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["avx"]
        );
    }

    #[test]
    fn cpuinfo_without_flags_is_unknown() {
        // s390x and some emulators print no flags line.
        assert_eq!(
            parse_cpuinfo_flags("vendor_id       : IBM/S390\n# processors    : 2\n"),
            None
        );
    }

    #[test]
    fn x86_64_levels_and_legacy_names() {
        let set = |s: &str| {
            s.split_whitespace()
                .map(str::to_string)
                .collect::<BTreeSet<_>>()
        };
        let v2 = "cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3";
        let v3 = format!("{v2} avx avx2 bmi1 bmi2 f16c fma abm movbe xsave");
        let v4 = format!("{v3} avx512f avx512bw avx512cd avx512dq avx512vl");
        assert_eq!(x86_64_level(&set("sse2")), 1);
        assert_eq!(x86_64_level(&set(v2)), 2);
        assert_eq!(x86_64_level(&set(&v3)), 3);
        assert_eq!(x86_64_level(&set(&v4)), 4);
        assert_eq!(
            x86_64_legacy_caps(Some("GenuineIntel"), &set(&v4)),
            (Some("haswell"), true)
        );
        assert_eq!(
            x86_64_legacy_caps(Some("AuthenticAMD"), &set(&v4)),
            (None, false)
        );
        assert_eq!(
            x86_64_legacy_caps(Some("GenuineIntel"), &set(v2)),
            (None, false)
        );
        assert_eq!(
            parse_cpuinfo_vendor("processor : 0\nvendor_id\t: GenuineIntel\n").as_deref(),
            Some("GenuineIntel")
        );
    }

    proptest! {
        #[test]
        fn cpuinfo_never_panics(s in "\\PC{0,400}") {
            let _ = parse_cpuinfo_flags(&s);
        }
    }
}
