//! `/proc/cpuinfo`: the CPU flags every processor lists.

use std::collections::BTreeSet;

/// ISA flags worth comparing across a fleet besides the required ones (§2, check 2.4).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::velox_library::settings::AARCH64_CPU_FLAGS;
    use proptest::prelude::*;

    #[test]
    fn cpuinfo_x86_flags() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/upstream/procfs-upstream/proc/cpuinfo"
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

    proptest! {
        #[test]
        fn cpuinfo_never_panics(s in "\\PC{0,400}") {
            let _ = parse_cpuinfo_flags(&s);
        }
    }
}
