//! aarch64: the CPU features a library needs, read from the GCC/Clang options in its DWARF
//! producer record (`-mcpu=`, `-march=`), and the host's core identity (MIDR_EL1, SoC id).
//!
//! The tables follow GCC's `gcc/config/aarch64/aarch64-cores.def`, `aarch64-arches.def` and
//! `aarch64-option-extensions.def` as of GCC 13 development (gcc-mirror/gcc, autumn 2022: the
//! tables that also hold GCC 12's `zeus`/`demeter` spellings of Neoverse V1/V2), checked against
//! Debian's GCC 12.2 cross compiler by the macro differential test. Features are named as the
//! kernel prints them in `/proc/cpuinfo` (`hwcap_str` in `arch/arm64/kernel/cpuinfo.c`).
//!
//! Only what a compiler puts into generated code (or exposes through ACLE intrinsics behind an
//! `__ARM_FEATURE_*` macro) is required. MEMTAG, PROFILE, PREDRES, RNG, SSBS, FLAGM, TME, LS64
//! and plain PAuth/BTI (hint space, a NOP on older cores) are not.

use std::collections::BTreeSet;
use std::fmt;

/// A set of `/proc/cpuinfo` `Features` names.
pub type FlagSet = BTreeSet<&'static str>;

/// What a library's producer record says it was built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The option that decided the instruction set, as written: `-mcpu=neoverse-v2+crypto`.
    pub option: String,
    /// The `/proc/cpuinfo` features code built this way may use.
    pub required: FlagSet,
}

// ---------------------------------------------------------------------------------------------
// Extensions (aarch64-option-extensions.def)

type Bits = u64;

const FP: Bits = 1 << 0;
const SIMD: Bits = 1 << 1;
const CRC: Bits = 1 << 2;
const LSE: Bits = 1 << 3;
const F16: Bits = 1 << 4;
const RCPC: Bits = 1 << 5;
const RDMA: Bits = 1 << 6;
const DOTPROD: Bits = 1 << 7;
const AES: Bits = 1 << 8;
const SHA2: Bits = 1 << 9;
const SHA3: Bits = 1 << 10;
const SM4: Bits = 1 << 11;
const F16FML: Bits = 1 << 12;
const SVE: Bits = 1 << 13;
const PROFILE: Bits = 1 << 14;
const RNG: Bits = 1 << 15;
const MEMTAG: Bits = 1 << 16;
const SB: Bits = 1 << 17;
const SSBS: Bits = 1 << 18;
const PREDRES: Bits = 1 << 19;
const SVE2: Bits = 1 << 20;
const SVE2_SM4: Bits = 1 << 21;
const SVE2_AES: Bits = 1 << 22;
const SVE2_SHA3: Bits = 1 << 23;
const SVE2_BITPERM: Bits = 1 << 24;
const TME: Bits = 1 << 25;
const I8MM: Bits = 1 << 26;
const F32MM: Bits = 1 << 27;
const F64MM: Bits = 1 << 28;
const BF16: Bits = 1 << 29;
const FLAGM: Bits = 1 << 30;
const PAUTH: Bits = 1 << 31;
const LS64: Bits = 1 << 32;
const MOPS: Bits = 1 << 33;
/// `+crypto` is AES and SHA2 (and, for Clang on Armv8.4-A and later, SHA3 and SM4 too).
const CRYPTO: Bits = AES | SHA2;

struct Ext {
    /// GCC's spelling first, then other spellings (Clang's) that mean the same.
    names: &'static [&'static str],
    bit: Bits,
    /// Direct requirements (`REQUIRES`); closed transitively by [`close_on`].
    requires: Bits,
    /// Turned on too by an explicit `+name` (`EXPLICIT_ON`).
    explicit_on: Bits,
    /// Turned off too by an explicit `+noname` (`EXPLICIT_OFF`).
    explicit_off: Bits,
}

const fn ext(names: &'static [&'static str], bit: Bits, requires: Bits) -> Ext {
    Ext {
        names,
        bit,
        requires,
        explicit_on: 0,
        explicit_off: 0,
    }
}

/// In topological order of `requires`, as GCC keeps it.
const EXTS: &[Ext] = &[
    ext(&["fp", "fp-armv8"], FP, 0),
    ext(&["simd", "neon"], SIMD, FP),
    ext(&["crc"], CRC, 0),
    ext(&["lse"], LSE, 0),
    Ext {
        names: &["fp16", "fullfp16"],
        bit: F16,
        requires: FP,
        explicit_on: 0,
        explicit_off: F16FML,
    },
    ext(&["rcpc"], RCPC, 0),
    Ext {
        names: &["rdma", "rdm"],
        bit: RDMA,
        requires: 0,
        explicit_on: SIMD,
        explicit_off: 0,
    },
    ext(&["dotprod"], DOTPROD, SIMD),
    ext(&["aes"], AES, SIMD),
    ext(&["sha2"], SHA2, SIMD),
    Ext {
        names: &["crypto"],
        bit: 0,
        requires: AES | SHA2,
        explicit_on: 0,
        explicit_off: AES | SHA2 | SM4,
    },
    ext(&["sha3"], SHA3, SHA2),
    ext(&["sm4"], SM4, SIMD),
    Ext {
        names: &["fp16fml", "fhm"],
        bit: F16FML,
        requires: 0,
        explicit_on: F16,
        explicit_off: 0,
    },
    ext(&["sve"], SVE, SIMD | F16),
    ext(&["profile", "spe"], PROFILE, 0),
    ext(&["rng", "rand"], RNG, 0),
    ext(&["memtag", "mte"], MEMTAG, 0),
    ext(&["sb"], SB, 0),
    ext(&["ssbs"], SSBS, 0),
    ext(&["predres"], PREDRES, 0),
    ext(&["sve2"], SVE2, SVE),
    ext(&["sve2-sm4"], SVE2_SM4, SVE2 | SM4),
    ext(&["sve2-aes"], SVE2_AES, SVE2 | AES),
    ext(&["sve2-sha3"], SVE2_SHA3, SVE2 | SHA3),
    ext(&["sve2-bitperm"], SVE2_BITPERM, SVE2),
    ext(&["tme"], TME, 0),
    ext(&["i8mm"], I8MM, SIMD),
    ext(&["f32mm"], F32MM, SVE),
    ext(&["f64mm"], F64MM, SVE),
    Ext {
        names: &["bf16"],
        bit: BF16,
        requires: FP,
        explicit_on: SIMD,
        explicit_off: 0,
    },
    ext(&["flagm"], FLAGM, 0),
    ext(&["pauth"], PAUTH, 0),
    ext(&["ls64"], LS64, 0),
    ext(&["mops"], MOPS, 0),
];

/// Clang-only spellings that change nothing GCC-visible here (hint-space or tuning features).
const IGNORED_EXTS: &[&str] = &[
    "bti",
    "pmull",
    "sha1",
    "lor",
    "pan",
    "ras",
    "ccpp",
    "rcpc-immo",
];

fn find_ext(name: &str) -> Option<&'static Ext> {
    EXTS.iter().find(|e| e.names.contains(&name))
}

/// `bits` plus everything they need, transitively.
fn close_on(mut bits: Bits) -> Bits {
    loop {
        let before = bits;
        for e in EXTS {
            if bits & e.bit != 0 {
                bits |= e.requires;
            }
        }
        if bits == before {
            return bits;
        }
    }
}

/// `bits` plus everything that needs them, transitively.
fn dependents_of(mut bits: Bits) -> Bits {
    loop {
        let before = bits;
        for e in EXTS {
            if e.bit != 0 && e.requires & bits != 0 {
                bits |= e.bit;
            }
        }
        if bits == before {
            return bits;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Architectures (aarch64-arches.def)

/// Architecture level as the Armv8 minor version it includes (Armv9.0-A includes Armv8.5-A).
type Level = u8;

struct Arch {
    name: &'static str,
    level: Level,
    bits: Bits,
}

const V8A: Bits = FP | SIMD;
const V8_1A: Bits = V8A | LSE | CRC | RDMA;
const V8_2A: Bits = V8_1A;
const V8_3A: Bits = V8_2A | PAUTH | RCPC;
const V8_4A: Bits = V8_3A | F16FML | DOTPROD | FLAGM;
const V8_5A: Bits = V8_4A | SB | SSBS | PREDRES;
const V8_6A: Bits = V8_5A | I8MM | BF16;
const V8_7A: Bits = V8_6A | LS64;
const V8_8A: Bits = V8_7A | MOPS;
const V9A: Bits = V8_5A | SVE2;

const ARCHES: &[Arch] = &[
    Arch {
        name: "armv8-a",
        level: 0,
        bits: V8A,
    },
    Arch {
        name: "armv8.1-a",
        level: 1,
        bits: V8_1A,
    },
    Arch {
        name: "armv8.2-a",
        level: 2,
        bits: V8_2A,
    },
    Arch {
        name: "armv8.3-a",
        level: 3,
        bits: V8_3A,
    },
    Arch {
        name: "armv8.4-a",
        level: 4,
        bits: V8_4A,
    },
    Arch {
        name: "armv8.5-a",
        level: 5,
        bits: V8_5A,
    },
    Arch {
        name: "armv8.6-a",
        level: 6,
        bits: V8_6A,
    },
    Arch {
        name: "armv8.7-a",
        level: 7,
        bits: V8_7A,
    },
    Arch {
        name: "armv8.8-a",
        level: 8,
        bits: V8_8A,
    },
    Arch {
        name: "armv8-r",
        level: 4,
        bits: V8_4A,
    },
    Arch {
        name: "armv9-a",
        level: 5,
        bits: V9A,
    },
    Arch {
        name: "armv9.1-a",
        level: 6,
        bits: V8_6A | V9A,
    },
    Arch {
        name: "armv9.2-a",
        level: 7,
        bits: V8_7A | V9A,
    },
    Arch {
        name: "armv9.3-a",
        level: 8,
        bits: V8_8A | V9A,
    },
];

fn find_arch(name: &str) -> Option<&'static Arch> {
    // Clang also takes `armv8.2a`, `armv9a`: put the dash back.
    let normal;
    let name = if name.ends_with("-a") || name.ends_with("-r") {
        name
    } else if let Some(stem) = name.strip_suffix('a') {
        normal = format!("{stem}-a");
        &normal
    } else {
        name
    };
    ARCHES.iter().find(|a| a.name == name)
}

// ---------------------------------------------------------------------------------------------
// Cores (aarch64-cores.def)

struct Core {
    name: &'static str,
    arch: &'static str,
    bits: Bits,
    /// MIDR implementer and part number; `None` for tuning-only names (`neoverse-512tvb`).
    midr: Option<(u8, u16)>,
}

const fn core(name: &'static str, arch: &'static str, bits: Bits, imp: u8, part: u16) -> Core {
    Core {
        name,
        arch,
        bits,
        midr: Some((imp, part)),
    }
}

const A76_EXTS: Bits = F16 | RCPC | DOTPROD;
const V1_EXTS: Bits = SVE | RCPC | I8MM | BF16 | F16 | PROFILE | SSBS | RNG;
const N2_EXTS: Bits = I8MM | BF16 | SVE2_BITPERM | RNG | MEMTAG | PROFILE;
const A710_EXTS: Bits = SVE2_BITPERM | MEMTAG | I8MM | BF16;

const CORES: &[Core] = &[
    // Armv8-A.
    core("cortex-a34", "armv8-a", CRC, 0x41, 0xd02),
    core("cortex-a35", "armv8-a", CRC, 0x41, 0xd04),
    core("cortex-a53", "armv8-a", CRC, 0x41, 0xd03),
    core("cortex-a57", "armv8-a", CRC, 0x41, 0xd07),
    core("cortex-a72", "armv8-a", CRC, 0x41, 0xd08),
    core("cortex-a73", "armv8-a", CRC, 0x41, 0xd09),
    core("thunderx", "armv8-a", CRC | CRYPTO, 0x43, 0x0a0),
    core("thunderxt88p1", "armv8-a", CRC | CRYPTO, 0x43, 0x0a1),
    core("thunderxt88", "armv8-a", CRC | CRYPTO, 0x43, 0x0a1),
    core("octeontx", "armv8-a", CRC | CRYPTO, 0x43, 0x0a0),
    core("octeontx81", "armv8-a", CRC | CRYPTO, 0x43, 0x0a2),
    core("octeontx83", "armv8-a", CRC | CRYPTO, 0x43, 0x0a3),
    core("thunderxt81", "armv8-a", CRC | CRYPTO, 0x43, 0x0a2),
    core("thunderxt83", "armv8-a", CRC | CRYPTO, 0x43, 0x0a3),
    core("ampere1", "armv8.6-a", 0, 0xc0, 0xac3),
    core("emag", "armv8-a", CRC | CRYPTO, 0x50, 0x000),
    core("xgene1", "armv8-a", 0, 0x50, 0x000),
    core("falkor", "armv8-a", CRC | CRYPTO | RDMA, 0x51, 0xc00),
    core("qdf24xx", "armv8-a", CRC | CRYPTO | RDMA, 0x51, 0xc00),
    core("exynos-m1", "armv8-a", CRC | CRYPTO, 0x53, 0x001),
    core("phecda", "armv8-a", CRC | CRYPTO, 0x68, 0x000),
    // Armv8.1-A.
    core("thunderx2t99p1", "armv8.1-a", CRYPTO, 0x42, 0x516),
    core("vulcan", "armv8.1-a", CRYPTO, 0x42, 0x516),
    core("thunderx2t99", "armv8.1-a", CRYPTO, 0x43, 0x0af),
    // Armv8.2-A.
    core("cortex-a55", "armv8.2-a", A76_EXTS, 0x41, 0xd05),
    core("cortex-a75", "armv8.2-a", A76_EXTS, 0x41, 0xd0a),
    core("cortex-a76", "armv8.2-a", A76_EXTS, 0x41, 0xd0b),
    core("cortex-a76ae", "armv8.2-a", A76_EXTS | SSBS, 0x41, 0xd0e),
    core("cortex-a77", "armv8.2-a", A76_EXTS | SSBS, 0x41, 0xd0d),
    core(
        "cortex-a78",
        "armv8.2-a",
        A76_EXTS | SSBS | PROFILE,
        0x41,
        0xd41,
    ),
    core(
        "cortex-a78ae",
        "armv8.2-a",
        A76_EXTS | SSBS | PROFILE,
        0x41,
        0xd42,
    ),
    core(
        "cortex-a78c",
        "armv8.2-a",
        A76_EXTS | SSBS | PROFILE | FLAGM | PAUTH,
        0x41,
        0xd4b,
    ),
    core("cortex-a65", "armv8.2-a", A76_EXTS | SSBS, 0x41, 0xd06),
    core("cortex-a65ae", "armv8.2-a", A76_EXTS | SSBS, 0x41, 0xd43),
    core(
        "cortex-x1",
        "armv8.2-a",
        A76_EXTS | SSBS | PROFILE,
        0x41,
        0xd44,
    ),
    core("ares", "armv8.2-a", A76_EXTS | PROFILE, 0x41, 0xd0c),
    core("neoverse-n1", "armv8.2-a", A76_EXTS | PROFILE, 0x41, 0xd0c),
    core("neoverse-e1", "armv8.2-a", A76_EXTS | SSBS, 0x41, 0xd4a),
    core("octeontx2", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b0),
    core("octeontx2t98", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b1),
    core("octeontx2t96", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b2),
    core("octeontx2t93", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b2),
    core("octeontx2f95", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b3),
    core("octeontx2f95n", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b4),
    core("octeontx2f95mm", "armv8.2-a", CRYPTO | PROFILE, 0x43, 0x0b5),
    core("a64fx", "armv8.2-a", F16 | SVE, 0x46, 0x001),
    core("tsv110", "armv8.2-a", CRYPTO | F16, 0x48, 0xd01),
    // Armv8.3-A.
    core(
        "thunderx3t110",
        "armv8.3-a",
        CRYPTO | RCPC | SM4 | SHA3 | F16FML,
        0x43,
        0x0b8,
    ),
    // Armv8.4-A.
    core("zeus", "armv8.4-a", V1_EXTS, 0x41, 0xd40),
    core("neoverse-v1", "armv8.4-a", V1_EXTS, 0x41, 0xd40),
    Core {
        name: "neoverse-512tvb",
        arch: "armv8.4-a",
        bits: V1_EXTS,
        midr: None,
    },
    core("saphira", "armv8.4-a", CRYPTO | RCPC, 0x51, 0xc01),
    // big.LITTLE: the big core's part.
    core("cortex-a57.cortex-a53", "armv8-a", CRC, 0x41, 0xd07),
    core("cortex-a72.cortex-a53", "armv8-a", CRC, 0x41, 0xd08),
    core("cortex-a73.cortex-a35", "armv8-a", CRC, 0x41, 0xd09),
    core("cortex-a73.cortex-a53", "armv8-a", CRC, 0x41, 0xd09),
    core("cortex-a75.cortex-a55", "armv8.2-a", A76_EXTS, 0x41, 0xd0a),
    core("cortex-a76.cortex-a55", "armv8.2-a", A76_EXTS, 0x41, 0xd0b),
    core("cortex-r82", "armv8-r", 0, 0x41, 0xd15),
    // Armv9-A.
    core("cortex-a510", "armv9-a", A710_EXTS, 0x41, 0xd46),
    core("cortex-a710", "armv9-a", A710_EXTS, 0x41, 0xd47),
    core("cortex-x2", "armv9-a", A710_EXTS, 0x41, 0xd48),
    core("neoverse-n2", "armv9-a", N2_EXTS, 0x41, 0xd49),
    core("demeter", "armv9-a", N2_EXTS, 0x41, 0xd4f),
    core("neoverse-v2", "armv9-a", N2_EXTS, 0x41, 0xd4f),
    // `-mcpu=generic`: the default architecture, Armv8-A.
    Core {
        name: "generic",
        arch: "armv8-a",
        bits: 0,
        midr: None,
    },
];

fn find_core(name: &str) -> Option<&'static Core> {
    CORES.iter().find(|c| c.name == name)
}

/// Every `-mcpu` name the table knows (GCC's spelling).
pub fn known_cpus() -> impl Iterator<Item = &'static str> {
    CORES.iter().map(|c| c.name)
}

/// Every `-march` base name the table knows.
pub fn known_arches() -> impl Iterator<Item = &'static str> {
    ARCHES.iter().map(|a| a.name)
}

// ---------------------------------------------------------------------------------------------
// Producer strings

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compiler {
    Gcc,
    Clang,
}

/// The face every target module offers [`crate::cpu_needs`] (as [`crate::x86::flags_of`] does):
/// the extensions an arm64 producer's target options let the compiler use in generated code, or
/// `None` when the producer records no target option this table knows.
pub fn flags_of(producer: &str) -> Option<crate::FlagSet> {
    let target = target_of(producer)?;
    Some(crate::FlagSet {
        codegen: target.required,
        intrinsics: Default::default(),
        unknown: Vec::new(),
    })
}

/// The instruction-set target a producer record names, or `None` when it names none this table
/// knows (no `-mcpu`/`-march`, `native`, an unknown core or extension): the caller then assumes
/// the compiler's default, [`GENERIC_FLAGS`] for the usual distribution GCC.
///
/// GCC records `GNU C++17 12.2.0 -mcpu=neoverse-n1+crypto -mtune=… -O2 …`; Clang records its
/// command line only with `-grecord-command-line`. `-mtune` is ignored; of repeated options the
/// last wins; `-march` decides over `-mcpu` when both are there (GCC and Clang alike).
pub fn target_of(producer: &str) -> Option<Target> {
    let compiler = if producer.contains("clang") {
        Compiler::Clang
    } else {
        Compiler::Gcc
    };
    let mut mcpu = None;
    let mut march = None;
    let mut branch_protection = None;
    for word in producer.split_whitespace() {
        if let Some(v) = word.strip_prefix("-mcpu=") {
            mcpu = Some((word, v));
        } else if let Some(v) = word.strip_prefix("-march=") {
            march = Some((word, v));
        } else if let Some(v) = word.strip_prefix("-mbranch-protection=") {
            branch_protection = Some(v);
        }
    }
    let (option, value, is_cpu) = match (march, mcpu) {
        (Some((w, v)), _) => (w, v, false),
        (None, Some((w, v))) => (w, v, true),
        (None, None) => return None,
    };
    let mut parts = value.split('+');
    let base = parts.next()?;
    let (level, mut bits) = if is_cpu {
        let core = find_core(base)?;
        let arch = find_arch(core.arch)?;
        (arch.level, arch.bits | core.bits)
    } else {
        let arch = find_arch(base)?;
        (arch.level, arch.bits)
    };
    bits = close_on(bits);
    for modifier in parts {
        if let Some(name) = modifier
            .strip_prefix("no")
            .filter(|n| find_ext(n).is_some())
        {
            let e = find_ext(name)?;
            let off = e.bit | e.explicit_off;
            bits &= !dependents_of(off);
        } else if let Some(e) = find_ext(modifier) {
            let mut on = e.bit | e.requires | e.explicit_on;
            if e.names[0] == "crypto" && compiler == Compiler::Clang && level >= 4 {
                on |= SHA3 | SM4;
            }
            bits |= close_on(on);
        } else if IGNORED_EXTS.contains(&modifier)
            || modifier
                .strip_prefix("no")
                .is_some_and(|n| IGNORED_EXTS.contains(&n))
        {
        } else {
            return None;
        }
    }
    let mut required = features_of(level, bits);
    // With return-address signing on an Armv8.3-A target, GCC and Clang return with `retaa`,
    // which is not in the hint space.
    let signs_returns =
        branch_protection.is_some_and(|bp| bp.contains("pac-ret") || bp.contains("standard"));
    if signs_returns && level >= 3 && bits & PAUTH != 0 {
        required.insert("paca");
    }
    Some(Target {
        option: option.to_string(),
        required,
    })
}

/// The `/proc/cpuinfo` features the compiler may use for an extension set at an architecture
/// level.
fn features_of(level: Level, bits: Bits) -> FlagSet {
    let mut f = FlagSet::new();
    let has = |b: Bits| bits & b == b;
    let mut add = |cond: bool, names: &[&'static str]| {
        if cond {
            f.extend(names.iter().copied());
        }
    };
    add(has(FP), &["fp"]);
    add(has(SIMD), &["asimd"]);
    add(has(CRC), &["crc32"]);
    add(has(LSE), &["atomics"]);
    add(has(F16), &["fphp"]);
    add(has(F16 | SIMD), &["asimdhp"]);
    add(has(RCPC), &["lrcpc"]);
    add(has(RDMA | SIMD), &["asimdrdm"]);
    add(has(DOTPROD), &["asimddp"]);
    add(has(AES), &["aes", "pmull"]);
    add(has(SHA2), &["sha1", "sha2"]);
    add(has(SHA3), &["sha3", "sha512"]);
    add(has(SM4), &["sm3", "sm4"]);
    // FMLAL needs FP16 on: Armv8.4-A alone implies F16FML but the compiler cannot use it.
    add(has(F16FML | F16 | SIMD), &["asimdfhm"]);
    add(has(SVE), &["sve"]);
    add(has(SVE2), &["sve2"]);
    add(has(SVE2_AES), &["sveaes"]);
    add(has(SVE2_SHA3), &["svesha3"]);
    add(has(SVE2_SM4), &["svesm4"]);
    add(has(SVE2_BITPERM), &["svebitperm"]);
    add(has(I8MM), &["i8mm"]);
    add(has(I8MM | SVE), &["svei8mm"]);
    add(has(F32MM), &["svef32mm"]);
    add(has(F64MM), &["svef64mm"]);
    add(has(BF16), &["bf16"]);
    add(has(BF16 | SVE), &["svebf16"]);
    add(has(SB), &["sb"]);
    add(has(MOPS), &["mops"]);
    // Armv8.3-A: FCMLA/FCADD (vectorised complex arithmetic) and FJCVTZS.
    add(level >= 3 && has(SIMD), &["fcma"]);
    add(level >= 3 && has(FP), &["jscvt"]);
    // Armv8.5-A: FRINT32Z and friends.
    add(level >= 5 && has(FP), &["frint"]);
    f
}

/// The features of Gluten's generic aarch64 build, `-march=armv8-a+crc+crypto`: what to assume
/// for a library without a producer record.
pub const GENERIC_FLAGS: &[&str] = &["aes", "asimd", "crc32", "fp", "pmull", "sha1", "sha2"];

/// The `/proc/cpuinfo` feature names this module knows (the kernel's `hwcap_str`, in HWCAP then
/// HWCAP2 bit order).
pub const HWCAP_NAMES: &[&str] = &[
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
    "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
    "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
    "paca", "pacg",
];

/// HWCAP2 names, bit 0 upwards.
pub const HWCAP2_NAMES: &[&str] = &[
    "dcpodp",
    "sve2",
    "sveaes",
    "svepmull",
    "svebitperm",
    "svesha3",
    "svesm4",
    "flagm2",
    "frint",
    "svei8mm",
    "svef32mm",
    "svef64mm",
    "svebf16",
    "i8mm",
    "bf16",
    "dgh",
    "rng",
    "bti",
    "mte",
    "ecv",
    "afp",
    "rpres",
    "mte3",
    "sme",
    "smei16i64",
    "smef64f64",
    "smei8i32",
    "smef16f32",
    "smeb16f32",
    "smef32f32",
    "smefa64",
    "wfxt",
    "ebf16",
    "sveebf16",
    "cssc",
    "rprfm",
    "sve2p1",
    "sme2",
    "sme2p1",
    "smei16i32",
    "smebi32i32",
    "smeb16b16",
    "smef16f16",
    "mops",
    "hbc",
];

/// The features in a `/proc/cpuinfo` text (its first `Features` line) or a bare feature list;
/// names this module does not know are left out.
pub fn host_features(text: &str) -> FlagSet {
    let line = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "Features" | "Flags").then_some(v)
        })
        .unwrap_or(text);
    line.split_whitespace()
        .filter_map(|w| {
            HWCAP_NAMES
                .iter()
                .chain(HWCAP2_NAMES)
                .find(|n| **n == w)
                .copied()
        })
        .collect()
}

/// What `required` needs that `host` lacks (empty: the library can run there).
pub fn missing(required: &FlagSet, host: &FlagSet) -> FlagSet {
    required.difference(host).copied().collect()
}

// ---------------------------------------------------------------------------------------------
// Host identity

/// The fields of MIDR_EL1 (`/sys/devices/system/cpu/cpu0/regs/identification/midr_el1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Midr {
    pub implementer: u8,
    pub variant: u8,
    pub part: u16,
    pub revision: u8,
}

/// A MIDR value that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MidrError {
    #[error("midr_el1 {0:?} is not a hexadecimal number")]
    NotHex(String),
    #[error("midr_el1 {0:#x} has bits above bit 31 set")]
    TooWide(u64),
}

impl Midr {
    /// From the register's value.
    pub fn from_u64(v: u64) -> Result<Midr, MidrError> {
        if v >> 32 != 0 {
            return Err(MidrError::TooWide(v));
        }
        Ok(Midr {
            implementer: (v >> 24) as u8,
            variant: ((v >> 20) & 0xf) as u8,
            part: ((v >> 4) & 0xfff) as u16,
            revision: (v & 0xf) as u8,
        })
    }
}

impl fmt::Display for Midr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "implementer {:#04x} part {:#05x} r{}p{}",
            self.implementer, self.part, self.variant, self.revision
        )
    }
}

/// Parses the sysfs text (`0x00000000413fd0c1\n`), with or without `0x`.
pub fn parse_midr(text: &str) -> Result<Midr, MidrError> {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let v = u64::from_str_radix(hex, 16).map_err(|_| MidrError::NotHex(t.to_string()))?;
    Midr::from_u64(v)
}

/// The GCC `-mcpu` name of the host core, from MIDR implementer and part (`neoverse-n1`).
/// Label-safe as it stands. MIDR cannot tell machines with the same core apart (Graviton 2 and
/// Ampere Altra are both Neoverse N1): see [`machine_from_soc_id`].
pub fn core_name(midr: &Midr) -> Option<&'static str> {
    if midr.implementer == 0x41 && midr.part == 0xd0c {
        return Some("neoverse-n1"); // before its old alias `ares`
    }
    if midr.implementer == 0x41 && midr.part == 0xd40 {
        return Some("neoverse-v1");
    }
    if midr.implementer == 0x41 && midr.part == 0xd4f {
        return Some("neoverse-v2");
    }
    CORES
        .iter()
        .filter(|c| !c.name.contains('.'))
        .find(|c| c.midr == Some((midr.implementer, midr.part)))
        .map(|c| c.name)
}

/// A node-label value for the core: its `-mcpu` name, else `unknown-<implementer>-<part>` in hex.
pub fn core_label(midr: &Midr) -> String {
    match core_name(midr) {
        Some(n) => n.to_string(),
        None => format!("unknown-{:02x}-{:03x}", midr.implementer, midr.part),
    }
}

/// A machine known by its SMCCC SoC id (`/sys/devices/soc0/soc_id`, `jep106:036b:0241`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    NvidiaGrace,
}

impl Machine {
    pub fn label(self) -> &'static str {
        match self {
            Machine::NvidiaGrace => "nvidia-grace",
        }
    }
}

/// The machine a SoC id names, if this module knows it.
pub fn machine_from_soc_id(text: &str) -> Option<Machine> {
    match text.trim().to_ascii_lowercase().as_str() {
        "jep106:036b:0241" => Some(Machine::NvidiaGrace),
        _ => None,
    }
}

/// The target option Gluten's build script picks on a build host with this MIDR and SoC id.
pub fn gluten_build_target(midr: &Midr, soc_id: Option<&str>) -> &'static str {
    if soc_id.and_then(machine_from_soc_id) == Some(Machine::NvidiaGrace) {
        return GLUTEN_GRACE;
    }
    match midr.part {
        0xd0c => "-mcpu=neoverse-n1",
        0xd49 => "-mcpu=neoverse-n2",
        0xd40 => "-mcpu=neoverse-v1",
        0xd4f => "-mcpu=neoverse-v2",
        _ => GLUTEN_GENERIC,
    }
}

/// Gluten's target on NVIDIA Grace.
pub const GLUTEN_GRACE: &str = "-mcpu=neoverse-v2+crypto+sha3+sm4+sve2-aes+sve2-sha3+sve2-sm4";
/// Gluten's target on any other host (and its nightlies).
pub const GLUTEN_GENERIC: &str = "-march=armv8-a+crc+crypto";

#[cfg(test)]
mod tests;
