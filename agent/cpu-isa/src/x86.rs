//! x86-64 tables: GCC's `-m<ext>` / `-march=<cpu>` options to the kernel's `/proc/cpuinfo` flags.
//!
//! # Where the tables come from
//!
//! GCC 13.2 (the compiler of the official Gluten 1.7.0 build), `gcc/config/i386/`:
//! - [`EXTENSIONS`]: the `-m` options of `i386.opt` / `i386-isa.def`; `implies` is GCC's
//!   `OPTION_MASK_ISA_*_SET` chains (`common/config/i386/i386-common.cc`): `-mavx2` sets AVX and
//!   so SSE4.2 … SSE, and XSAVE; `-mno-<ext>` clears `<ext>` and everything that implies it
//!   (`*_UNSET`). After all options, SSE4.2 also enables POPCNT and CRC32 unless given
//!   explicitly, and ABM enables POPCNT and LZCNT (`ix86_option_override_internal`), as
//!   `gcc -msse4.2 -dM -E` shows.
//! - [`CPUS`]: `processor_alias_table` (`i386-common.cc`) with the `PTA_*` sets of `i386.h`
//!   (`PTA_X86_64_BASELINE`, `PTA_X86_64_V2..V4` = the x86-64 psABI levels, `PTA_HASWELL`, …,
//!   `PTA_ZNVER4`, `PTA_GRANITERAPIDS`). As in GCC, `-m` options win over `-march` whatever
//!   their order (`ix86_isa_flags_explicit`); the last `-march` wins. CPUs other than the
//!   x86-64 baseline and AMD's K8 line also get SAHF (no `PTA_NO_SAHF`).
//! - `-march=native` is recorded by GCC already expanded (`-march=znver3 -mmmx -mno-3dnow …
//!   -mno-avx512f …`): the expansion is just more explicit options. Left unexpanded (clang),
//!   it lands in [`FlagSet::unknown`].
//!
//! Where GCC 13.2's source was not at hand, GCC 12.2's behaviour (the differential test) decided:
//! AVX512VBMI2 and AVX512BITALG imply AVX512F (not BW), AVX512VP2INTERSECT implies AVX512DQ,
//! AMX-TILE implies XSAVE while AMX-INT8/BF16 imply nothing, AES/PCLMUL/SHA/GFNI/VAES/VPCLMULQDQ
//! imply only SSE2, HLE has no macro. Known GCC 12 → 13 change: `-march=sapphirerapids` lost
//! AVX512-VP2INTERSECT.
//!
//! The tests compare these tables with the installed `gcc -march=X -dM -E` (`__AVX2__`-style
//! macros) for every CPU and option that gcc knows.
//!
//! # Required versus intrinsics-only
//!
//! [`FlagSet::codegen`] holds the extensions GCC (and clang) use in code they generate on their
//! own (auto-vectorisation, bit tricks, scalar FP, byte swaps): the baseline (`fpu`, `cx8`,
//! `cmov`, `mmx`, `fxsr`, `sse`, `sse2`), `pni` (SSE3), `ssse3`, `sse4_1`, `sse4_2`, `sse4a`,
//! `popcnt`, `abm` (LZCNT), `bmi1`, `bmi2`, `avx`, `avx2`, `fma`, `fma4`, `xop`, `f16c`,
//! `movbe`, `tbm`, `cx16`, `lahf_lm` (SAHF), every AVX-512 subset, `avx_vnni`, `avx_ifma`,
//! `avx_vnni_int8`, `avx_ne_convert`. A host without one of them may fault anywhere in a unit
//! built with it.
//!
//! [`FlagSet::intrinsics`] holds those reached only through intrinsics or inline asm, which
//! programs call after their own CPUID check (and which the system, not the compiler, decides
//! on): AES, PCLMUL (`pclmulqdq`), SHA, GFNI, VAES, VPCLMULQDQ, CRC32, RDRND (`rdrand`), RDSEED,
//! ADX, PRFCHW, PREFETCHWT1, FSGSBASE (kernel-enabled), XSAVE/XSAVEOPT/XSAVEC/XSAVES
//! (OS state management), CLFLUSHOPT, CLWB, PKU (OS-enabled), SGX, RTM/HLE (TSX, often disabled
//! by microcode), LWP, MWAITX, CLZERO, RDPID, WBNOINVD, PCONFIG, MOVDIRI, MOVDIR64B, ENQCMD,
//! CLDEMOTE, PTWRITE, WAITPKG, SERIALIZE, TSXLDTRK, AMX-*, UINTR, HRESET, KL/WIDEKL,
//! CMPCCXADD, RAO-INT, PREFETCHI, SHSTK (CET shadow stack: NOP-encoded on older CPUs), 3DNow!.

use crate::FlagSet;

/// One GCC ISA option.
#[derive(Debug, Clone, Copy)]
pub struct Extension {
    /// The `-m` option name (`avx2`, `sse4.2`, `bmi`, `lzcnt`).
    pub option: &'static str,
    /// The kernel's `/proc/cpuinfo` flag (`avx2`, `sse4_2`, `bmi1`, `abm`).
    pub flag: &'static str,
    /// GCC's predefined macro for it (`__AVX2__`), empty when it has none.
    pub gcc_macro: &'static str,
    /// Whether compilers use it in generated code (see the module documentation).
    pub codegen: bool,
    /// The options `-m<option>` also sets (GCC's `*_SET`), by option name.
    pub implies: &'static [&'static str],
}

const fn ext(
    option: &'static str,
    flag: &'static str,
    gcc_macro: &'static str,
    codegen: bool,
    implies: &'static [&'static str],
) -> Extension {
    Extension {
        option,
        flag,
        gcc_macro,
        codegen,
        implies,
    }
}

/// GCC 13.2's x86 ISA options (see the module documentation).
#[rustfmt::skip]
pub const EXTENSIONS: &[Extension] = &[
    // Code generation.
    ext("mmx", "mmx", "__MMX__", true, &[]),
    ext("sse", "sse", "__SSE__", true, &[]),
    ext("sse2", "sse2", "__SSE2__", true, &["sse"]),
    ext("sse3", "pni", "__SSE3__", true, &["sse2"]),
    ext("ssse3", "ssse3", "__SSSE3__", true, &["sse3"]),
    ext("sse4.1", "sse4_1", "__SSE4_1__", true, &["ssse3"]),
    ext("sse4.2", "sse4_2", "__SSE4_2__", true, &["sse4.1"]),
    ext("sse4a", "sse4a", "__SSE4A__", true, &["sse3"]),
    ext("popcnt", "popcnt", "__POPCNT__", true, &[]),
    ext("lzcnt", "abm", "__LZCNT__", true, &[]),
    ext("abm", "abm", "__ABM__", true, &[]),
    ext("bmi", "bmi1", "__BMI__", true, &[]),
    ext("bmi2", "bmi2", "__BMI2__", true, &[]),
    ext("avx", "avx", "__AVX__", true, &["sse4.2", "xsave"]),
    ext("avx2", "avx2", "__AVX2__", true, &["avx"]),
    ext("fma", "fma", "__FMA__", true, &["avx"]),
    ext("f16c", "f16c", "__F16C__", true, &["avx"]),
    ext("fma4", "fma4", "__FMA4__", true, &["sse4a", "avx"]),
    ext("xop", "xop", "__XOP__", true, &["fma4"]),
    ext("movbe", "movbe", "__MOVBE__", true, &[]),
    ext("tbm", "tbm", "__TBM__", true, &[]),
    ext("cx16", "cx16", "", true, &[]),
    ext("sahf", "lahf_lm", "__LAHF_SAHF__", true, &[]),
    ext("fxsr", "fxsr", "__FXSR__", true, &[]),
    ext("avx512f", "avx512f", "__AVX512F__", true, &["avx2"]),
    ext("avx512cd", "avx512cd", "__AVX512CD__", true, &["avx512f"]),
    ext("avx512er", "avx512er", "__AVX512ER__", true, &["avx512f"]),
    ext("avx512pf", "avx512pf", "__AVX512PF__", true, &["avx512f"]),
    ext("avx512dq", "avx512dq", "__AVX512DQ__", true, &["avx512f"]),
    ext("avx512bw", "avx512bw", "__AVX512BW__", true, &["avx512f"]),
    ext("avx512vl", "avx512vl", "__AVX512VL__", true, &["avx512f"]),
    ext("avx512ifma", "avx512ifma", "__AVX512IFMA__", true, &["avx512f"]),
    ext("avx512vbmi", "avx512vbmi", "__AVX512VBMI__", true, &["avx512bw"]),
    ext("avx512vbmi2", "avx512_vbmi2", "__AVX512VBMI2__", true, &["avx512f"]),
    ext("avx512vnni", "avx512_vnni", "__AVX512VNNI__", true, &["avx512f"]),
    ext("avx512bitalg", "avx512_bitalg", "__AVX512BITALG__", true, &["avx512f"]),
    ext("avx512vpopcntdq", "avx512_vpopcntdq", "__AVX512VPOPCNTDQ__", true, &["avx512f"]),
    ext("avx5124fmaps", "avx512_4fmaps", "__AVX5124FMAPS__", true, &["avx512f"]),
    ext("avx5124vnniw", "avx512_4vnniw", "__AVX5124VNNIW__", true, &["avx512f"]),
    ext("avx512bf16", "avx512_bf16", "__AVX512BF16__", true, &["avx512bw"]),
    ext("avx512fp16", "avx512_fp16", "__AVX512FP16__", true, &["avx512bw"]),
    ext("avx512vp2intersect", "avx512_vp2intersect", "__AVX512VP2INTERSECT__", true, &["avx512f", "avx512dq"]),
    ext("avxvnni", "avx_vnni", "__AVXVNNI__", true, &["avx2"]),
    ext("avxifma", "avx_ifma", "__AVXIFMA__", true, &["avx2"]),
    ext("avxvnniint8", "avx_vnni_int8", "__AVXVNNIINT8__", true, &["avx2"]),
    ext("avxneconvert", "avx_ne_convert", "__AVXNECONVERT__", true, &["avx2"]),
    // Intrinsics and system instructions only.
    ext("crc32", "sse4_2", "__CRC32__", false, &[]),
    ext("aes", "aes", "__AES__", false, &["sse2"]),
    ext("pclmul", "pclmulqdq", "__PCLMUL__", false, &["sse2"]),
    ext("sha", "sha_ni", "__SHA__", false, &["sse2"]),
    ext("gfni", "gfni", "__GFNI__", false, &["sse2"]),
    ext("vaes", "vaes", "__VAES__", false, &["sse2"]),
    ext("vpclmulqdq", "vpclmulqdq", "__VPCLMULQDQ__", false, &["sse2"]),
    ext("rdrnd", "rdrand", "__RDRND__", false, &[]),
    ext("rdseed", "rdseed", "__RDSEED__", false, &[]),
    ext("adx", "adx", "__ADX__", false, &[]),
    ext("prfchw", "3dnowprefetch", "__PRFCHW__", false, &[]),
    ext("prefetchwt1", "prefetchwt1", "__PREFETCHWT1__", false, &[]),
    ext("fsgsbase", "fsgsbase", "__FSGSBASE__", false, &[]),
    ext("xsave", "xsave", "__XSAVE__", false, &[]),
    ext("xsaveopt", "xsaveopt", "__XSAVEOPT__", false, &["xsave"]),
    ext("xsavec", "xsavec", "__XSAVEC__", false, &["xsave"]),
    ext("xsaves", "xsaves", "__XSAVES__", false, &["xsave"]),
    ext("clflushopt", "clflushopt", "__CLFLUSHOPT__", false, &[]),
    ext("clwb", "clwb", "__CLWB__", false, &[]),
    ext("pku", "pku", "__PKU__", false, &[]),
    ext("sgx", "sgx", "__SGX__", false, &[]),
    ext("rtm", "rtm", "__RTM__", false, &[]),
    ext("hle", "hle", "", false, &[]),
    ext("lwp", "lwp", "__LWP__", false, &[]),
    ext("mwaitx", "mwaitx", "__MWAITX__", false, &[]),
    ext("clzero", "clzero", "__CLZERO__", false, &[]),
    ext("rdpid", "rdpid", "__RDPID__", false, &[]),
    ext("wbnoinvd", "wbnoinvd", "__WBNOINVD__", false, &[]),
    ext("pconfig", "pconfig", "__PCONFIG__", false, &[]),
    ext("movdiri", "movdiri", "__MOVDIRI__", false, &[]),
    ext("movdir64b", "movdir64b", "__MOVDIR64B__", false, &[]),
    ext("enqcmd", "enqcmd", "__ENQCMD__", false, &[]),
    ext("cldemote", "cldemote", "__CLDEMOTE__", false, &[]),
    ext("ptwrite", "ptwrite", "__PTWRITE__", false, &[]),
    ext("waitpkg", "waitpkg", "__WAITPKG__", false, &[]),
    ext("serialize", "serialize", "__SERIALIZE__", false, &[]),
    ext("tsxldtrk", "tsxldtrk", "__TSXLDTRK__", false, &[]),
    ext("amx-tile", "amx_tile", "__AMX_TILE__", false, &["xsave"]),
    ext("amx-int8", "amx_int8", "__AMX_INT8__", false, &[]),
    ext("amx-bf16", "amx_bf16", "__AMX_BF16__", false, &[]),
    ext("amx-fp16", "amx_fp16", "__AMX_FP16__", false, &["amx-tile"]),
    ext("uintr", "uintr", "__UINTR__", false, &[]),
    ext("hreset", "hreset", "__HRESET__", false, &[]),
    ext("kl", "keylocker", "__KL__", false, &[]),
    ext("widekl", "widekl", "__WIDEKL__", false, &["kl"]),
    ext("cmpccxadd", "cmpccxadd", "__CMPCCXADD__", false, &[]),
    ext("raoint", "rao_int", "__RAOINT__", false, &[]),
    ext("prefetchi", "prefetchi", "__PREFETCHI__", false, &[]),
    ext("shstk", "user_shstk", "__SHSTK__", false, &[]),
    ext("3dnow", "3dnow", "__3dNOW__", false, &["mmx"]),
    ext("3dnowa", "3dnowext", "__3dNOW_A__", false, &["3dnow"]),
];

/// Code-generation flags every x86-64 target has that GCC has no `-m` option for (psABI
/// baseline: x87, CMPXCHG8B, CMOV; long mode).
pub const BASELINE_FLAGS: &[&str] = &["fpu", "cx8", "cmov", "lm"];

#[rustfmt::skip]
/// GCC 13.2's `PTA_*` sets (`i386.h`), by `-m` option name.
mod pta {
    pub const BASELINE: &[&str] = &["mmx", "sse", "sse2", "fxsr"];
    pub const V2: &[&str] = &["mmx", "sse", "sse2", "fxsr", "sahf", "cx16", "popcnt", "sse3", "sse4.1",
        "sse4.2", "ssse3"];
    pub const V3_EXTRA: &[&str] = &["avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"];
    pub const V4_EXTRA: &[&str] = &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];
    pub const CORE2: &[&str] = &["mmx", "sse", "sse2", "sse3", "ssse3", "cx16", "fxsr"];
    pub const NEHALEM_EXTRA: &[&str] = &["sse4.1", "sse4.2", "popcnt"];
    pub const WESTMERE_EXTRA: &[&str] = &["pclmul"];
    pub const SANDYBRIDGE_EXTRA: &[&str] = &["avx", "xsave", "xsaveopt"];
    pub const IVYBRIDGE_EXTRA: &[&str] = &["fsgsbase", "rdrnd", "f16c"];
    pub const HASWELL_EXTRA: &[&str] = &["avx2", "bmi", "bmi2", "lzcnt", "fma", "movbe", "hle"];
    pub const BROADWELL_EXTRA: &[&str] = &["adx", "rdseed", "prfchw"];
    pub const SKYLAKE_EXTRA: &[&str] = &["aes", "clflushopt", "xsavec", "xsaves", "sgx"];
    pub const SKYLAKE_AVX512_EXTRA: &[&str] = &["avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq",
        "pku", "clwb"];
    pub const CANNONLAKE_EXTRA: &[&str] = &["avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq",
        "pku", "avx512vbmi", "avx512ifma", "sha"];
    pub const ICELAKE_CLIENT_EXTRA: &[&str] = &["avx512vnni", "gfni", "vaes", "avx512vbmi2", "vpclmulqdq",
        "avx512bitalg", "rdpid", "avx512vpopcntdq"];
    pub const ICELAKE_SERVER_EXTRA: &[&str] = &["pconfig", "wbnoinvd", "clwb"];
    pub const TIGERLAKE_EXTRA: &[&str] = &["movdiri", "movdir64b", "clwb", "avx512vp2intersect", "kl",
        "widekl"];
    pub const SAPPHIRERAPIDS_EXTRA: &[&str] = &["movdiri", "movdir64b", "enqcmd", "cldemote", "ptwrite",
        "waitpkg", "serialize", "tsxldtrk", "amx-tile", "amx-int8", "amx-bf16", "uintr", "avxvnni",
        "avx512fp16", "avx512bf16"];
    pub const GRANITERAPIDS_EXTRA: &[&str] = &["amx-fp16", "prefetchi"];
    pub const SILVERMONT_EXTRA: &[&str] = &["movbe", "rdrnd", "prfchw"];
    pub const GOLDMONT_EXTRA: &[&str] = &["aes", "sha", "xsave", "rdseed", "xsavec", "xsaves", "clflushopt",
        "xsaveopt", "fsgsbase"];
    pub const GOLDMONT_PLUS_EXTRA: &[&str] = &["rdpid", "sgx", "ptwrite"];
    pub const TREMONT_EXTRA: &[&str] = &["clwb", "gfni", "movdiri", "movdir64b", "cldemote", "waitpkg"];
    pub const ALDERLAKE_EXTRA: &[&str] = &["adx", "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt",
        "pconfig", "pku", "vaes", "vpclmulqdq", "serialize", "hreset", "kl", "widekl", "avxvnni"];
    pub const SIERRAFOREST_EXTRA: &[&str] = &["avxifma", "avxvnniint8", "avxneconvert", "cmpccxadd"];
    pub const KNL_EXTRA: &[&str] = &["avx512pf", "avx512er", "avx512f", "avx512cd", "prefetchwt1"];
    pub const KNM_EXTRA: &[&str] = &["avx5124vnniw", "avx5124fmaps", "avx512vpopcntdq"];
    pub const K8: &[&str] = &["mmx", "3dnow", "3dnowa", "sse", "sse2", "fxsr"];
    pub const AMDFAM10: &[&str] = &["mmx", "3dnow", "3dnowa", "sse", "sse2", "sse3", "sse4a", "cx16", "abm",
        "prfchw", "fxsr"];
    pub const BDVER1: &[&str] = &["mmx", "sse", "sse2", "sse3", "sse4a", "cx16", "abm", "ssse3", "sse4.1",
        "sse4.2", "aes", "pclmul", "avx", "fma4", "xop", "lwp", "prfchw", "fxsr", "xsave"];
    pub const BDVER2_EXTRA: &[&str] = &["bmi", "tbm", "f16c", "fma"];
    pub const BDVER3_EXTRA: &[&str] = &["xsaveopt", "fsgsbase"];
    pub const BDVER4_EXTRA: &[&str] = &["avx2", "bmi2", "rdrnd", "movbe", "mwaitx"];
    pub const BTVER1: &[&str] = &["mmx", "sse", "sse2", "sse3", "ssse3", "sse4a", "abm", "cx16", "prfchw",
        "fxsr", "xsave"];
    pub const BTVER2_EXTRA: &[&str] = &["sse4.1", "sse4.2", "aes", "pclmul", "avx", "bmi", "f16c", "movbe",
        "xsaveopt"];
    pub const ZNVER1: &[&str] = &["mmx", "sse", "sse2", "sse3", "sse4a", "cx16", "abm", "ssse3", "sse4.1",
        "sse4.2", "aes", "pclmul", "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "prfchw", "fxsr",
        "xsave", "xsaveopt", "fsgsbase", "rdrnd", "movbe", "mwaitx", "adx", "rdseed", "clzero",
        "clflushopt", "xsavec", "xsaves", "sha", "lzcnt", "popcnt"];
    pub const ZNVER2_EXTRA: &[&str] = &["clwb", "rdpid", "wbnoinvd"];
    pub const ZNVER3_EXTRA: &[&str] = &["vaes", "vpclmulqdq", "pku"];
    pub const ZNVER4_EXTRA: &[&str] = &["avx512f", "avx512dq", "avx512ifma", "avx512cd", "avx512bw",
        "avx512vl", "avx512bf16", "avx512vbmi", "avx512vbmi2", "gfni", "avx512vnni", "avx512bitalg",
        "avx512vpopcntdq"];

}
use pta::*;

/// One `-march=` value: the `PTA_*` pieces it is the union of, and whether it lacks SAHF.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub names: &'static [&'static str],
    pub parts: &'static [&'static [&'static str]],
    /// Options taken out of the union (`PTA_ROCKETLAKE = PTA_ICELAKE_CLIENT & ~PTA_SGX`).
    pub minus: &'static [&'static str],
    /// `PTA_NO_SAHF` (the x86-64 baseline and K8: early 64-bit CPUs lacked LAHF/SAHF).
    pub no_sahf: bool,
}

const fn cpu(
    names: &'static [&'static str],
    parts: &'static [&'static [&'static str]],
    no_sahf: bool,
) -> Cpu {
    Cpu {
        names,
        parts,
        minus: &[],
        no_sahf,
    }
}

#[rustfmt::skip]
/// The `-march` rows as unions of `PTA_*` sets, as `i386.h` builds them.
mod parts {
    use super::pta::*;
    pub const P_NEHALEM: &[&[&str]] = &[CORE2, NEHALEM_EXTRA];
    pub const P_WESTMERE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA];
    pub const P_SANDY: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA];
    pub const P_IVY: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA];
    pub const P_HASWELL: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA];
    pub const P_BROADWELL: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA];
    pub const P_SKYLAKE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA];
    pub const P_SKX: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, SKYLAKE_AVX512_EXTRA];
    pub const P_CASCADELAKE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, SKYLAKE_AVX512_EXTRA,
        &["avx512vnni"]];
    pub const P_COOPERLAKE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, SKYLAKE_AVX512_EXTRA,
        &["avx512vnni", "avx512bf16"]];
    pub const P_CANNONLAKE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, CANNONLAKE_EXTRA];
    pub const P_ICL: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, CANNONLAKE_EXTRA,
        ICELAKE_CLIENT_EXTRA];
    pub const P_ICX: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, CANNONLAKE_EXTRA,
        ICELAKE_CLIENT_EXTRA, ICELAKE_SERVER_EXTRA];
    pub const P_TIGERLAKE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, CANNONLAKE_EXTRA,
        ICELAKE_CLIENT_EXTRA, TIGERLAKE_EXTRA];
    pub const P_SPR: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, CANNONLAKE_EXTRA,
        ICELAKE_CLIENT_EXTRA, ICELAKE_SERVER_EXTRA, SAPPHIRERAPIDS_EXTRA];
    pub const P_GNR: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, SKYLAKE_EXTRA, CANNONLAKE_EXTRA,
        ICELAKE_CLIENT_EXTRA, ICELAKE_SERVER_EXTRA, SAPPHIRERAPIDS_EXTRA, GRANITERAPIDS_EXTRA];
    pub const P_SILVERMONT: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA];
    pub const P_GOLDMONT: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA,
        GOLDMONT_EXTRA];
    pub const P_GOLDMONT_PLUS: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA,
        GOLDMONT_EXTRA, GOLDMONT_PLUS_EXTRA];
    pub const P_TREMONT: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA,
        GOLDMONT_EXTRA, GOLDMONT_PLUS_EXTRA, TREMONT_EXTRA];
    pub const P_ALDERLAKE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA,
        GOLDMONT_EXTRA, GOLDMONT_PLUS_EXTRA, TREMONT_EXTRA, ALDERLAKE_EXTRA];
    pub const P_SIERRAFOREST: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA,
        GOLDMONT_EXTRA, GOLDMONT_PLUS_EXTRA, TREMONT_EXTRA, ALDERLAKE_EXTRA, SIERRAFOREST_EXTRA];
    pub const P_GRANDRIDGE: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SILVERMONT_EXTRA,
        GOLDMONT_EXTRA, GOLDMONT_PLUS_EXTRA, TREMONT_EXTRA, ALDERLAKE_EXTRA, SIERRAFOREST_EXTRA,
        &["raoint"]];
    pub const P_KNL: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, KNL_EXTRA];
    pub const P_KNM: &[&[&str]] = &[CORE2, NEHALEM_EXTRA, WESTMERE_EXTRA, SANDYBRIDGE_EXTRA,
        IVYBRIDGE_EXTRA, HASWELL_EXTRA, BROADWELL_EXTRA, KNL_EXTRA, KNM_EXTRA];
}
use parts::*;

/// GCC 13.2's 64-bit `-march=` values (aliases share a row).
#[rustfmt::skip]
pub const CPUS: &[Cpu] = &[
    cpu(&["x86-64"], &[BASELINE], true),
    cpu(&["x86-64-v2"], &[V2], false),
    cpu(&["x86-64-v3"], &[V2, V3_EXTRA], false),
    cpu(&["x86-64-v4"], &[V2, V3_EXTRA, V4_EXTRA], false),
    cpu(&["nocona"], &[&["mmx", "sse", "sse2", "sse3", "fxsr"]], true),
    cpu(&["core2"], &[CORE2], false),
    cpu(&["nehalem", "corei7"], P_NEHALEM, false),
    cpu(&["westmere"], P_WESTMERE, false),
    cpu(&["sandybridge", "corei7-avx"], P_SANDY, false),
    cpu(&["ivybridge", "core-avx-i"], P_IVY, false),
    cpu(&["haswell", "core-avx2"], P_HASWELL, false),
    cpu(&["broadwell"], P_BROADWELL, false),
    cpu(&["skylake"], P_SKYLAKE, false),
    cpu(&["skylake-avx512"], P_SKX, false),
    cpu(&["cascadelake"], P_CASCADELAKE, false),
    cpu(&["cooperlake"], P_COOPERLAKE, false),
    cpu(&["cannonlake"], P_CANNONLAKE, false),
    cpu(&["icelake-client"], P_ICL, false),
    Cpu { names: &["rocketlake"], parts: P_ICL, minus: &["sgx"], no_sahf: false, },
    cpu(&["icelake-server"], P_ICX, false),
    cpu(&["tigerlake"], P_TIGERLAKE, false),
    cpu(&["sapphirerapids", "emeraldrapids"], P_SPR, false),
    cpu(&["graniterapids"], P_GNR, false),
    cpu(&["bonnell", "atom"], &[CORE2, &["movbe"]], false),
    cpu(&["silvermont", "slm"], P_SILVERMONT, false),
    cpu(&["goldmont"], P_GOLDMONT, false),
    cpu(&["goldmont-plus"], P_GOLDMONT_PLUS, false),
    cpu(&["tremont"], P_TREMONT, false),
    cpu(&["alderlake", "raptorlake", "meteorlake"], P_ALDERLAKE, false),
    cpu(&["sierraforest"], P_SIERRAFOREST, false),
    cpu(&["grandridge"], P_GRANDRIDGE, false),
    cpu(&["knl"], P_KNL, false),
    cpu(&["knm"], P_KNM, false),
    cpu(&["k8", "opteron", "athlon64", "athlon-fx"], &[K8], true),
    cpu(&["k8-sse3", "opteron-sse3", "athlon64-sse3"], &[K8, &["sse3"]], true),
    cpu(&["amdfam10", "barcelona"], &[AMDFAM10], false),
    cpu(&["bdver1"], &[BDVER1], false),
    cpu(&["bdver2"], &[BDVER1, BDVER2_EXTRA], false),
    cpu(&["bdver3"], &[BDVER1, BDVER2_EXTRA, BDVER3_EXTRA], false),
    cpu(&["bdver4"], &[BDVER1, BDVER2_EXTRA, BDVER3_EXTRA, BDVER4_EXTRA], false),
    cpu(&["btver1"], &[BTVER1], false),
    cpu(&["btver2"], &[BTVER1, BTVER2_EXTRA], false),
    cpu(&["znver1"], &[ZNVER1], false),
    cpu(&["znver2"], &[ZNVER1, ZNVER2_EXTRA], false),
    cpu(&["znver3"], &[ZNVER1, ZNVER2_EXTRA, ZNVER3_EXTRA], false),
    cpu(&["znver4"], &[ZNVER1, ZNVER2_EXTRA, ZNVER3_EXTRA, ZNVER4_EXTRA], false),
];

/// The extension with this `-m` option name.
pub fn extension(option: &str) -> Option<&'static Extension> {
    EXTENSIONS.iter().find(|e| e.option == option)
}

/// The CPU row of a `-march=` value.
pub fn cpu_named(name: &str) -> Option<&'static Cpu> {
    CPUS.iter().find(|c| c.names.contains(&name))
}

// Indices into EXTENSIONS, as a bit set (fits in u128).
type Bits = u128;

fn index(option: &str) -> usize {
    EXTENSIONS
        .iter()
        .position(|e| e.option == option)
        .unwrap_or_else(|| panic!("x86 table names unknown option {option}"))
}

/// `-m<option>`: the option and all it implies (GCC's `*_SET`).
fn set_closure(i: usize) -> Bits {
    let mut bits: Bits = 1 << i;
    for imp in EXTENSIONS[i].implies {
        bits |= set_closure(index(imp));
    }
    bits
}

/// `-mno-<option>`: the option and every option implying it (GCC's `*_UNSET`).
fn unset_closure(i: usize) -> Bits {
    let mut bits: Bits = 0;
    for j in 0..EXTENSIONS.len() {
        if set_closure(j) & (1 << i) != 0 {
            bits |= 1 << j;
        }
    }
    bits
}

fn cpu_bits(c: &Cpu) -> Bits {
    let mut bits: Bits = 0;
    for part in c.parts {
        for o in *part {
            bits |= 1 << index(o);
        }
    }
    for o in c.minus {
        bits &= !(1 << index(o));
    }
    if !c.no_sahf {
        bits |= 1 << index("sahf");
    }
    bits
}

/// The GCC ISA options enabled by a sequence of target options, as GCC resolves them (see the
/// module documentation), with the options not understood. Options other than `-m…` and
/// `-march=…` are ignored.
pub fn resolve<'a>(options: impl IntoIterator<Item = &'a str>) -> (Vec<&'static str>, Vec<String>) {
    let mut isa: Bits = 0;
    let mut explicit: Bits = 0;
    let mut arch: Option<&str> = None;
    let mut unknown = Vec::new();
    for opt in options {
        let Some(m) = opt.strip_prefix("-m") else {
            continue;
        };
        if let Some(a) = m.strip_prefix("arch=") {
            arch = Some(a);
            continue;
        }
        if m.contains('=') || NON_ISA.contains(&m) {
            continue;
        }
        let (on, name) = match m.strip_prefix("no-") {
            Some(n) => (false, n),
            None => (true, m),
        };
        // `-msse4` is SSE4.2; `-mno-sse4` is `-mno-sse4.1`.
        let name = match (name, on) {
            ("sse4", true) => "sse4.2",
            ("sse4", false) => "sse4.1",
            (n, _) => n,
        };
        match EXTENSIONS.iter().position(|e| e.option == name) {
            Some(i) if on => {
                let b = set_closure(i);
                isa |= b;
                explicit |= b;
            }
            Some(i) => {
                let b = unset_closure(i);
                isa &= !b;
                explicit |= b;
            }
            None => unknown.push(opt.to_string()),
        }
    }
    // GCC's default is the baseline when no -march is recorded.
    match cpu_named(arch.unwrap_or("x86-64")) {
        Some(c) => isa |= cpu_bits(c) & !explicit,
        None => unknown.push(format!("-march={}", arch.unwrap_or_default())),
    }
    // SSE4.2 brings POPCNT and CRC32, ABM brings POPCNT and LZCNT, unless given explicitly.
    for (when, then) in [
        ("sse4.2", ["popcnt", "crc32"]),
        ("abm", ["popcnt", "lzcnt"]),
    ] {
        if isa & (1 << index(when)) != 0 {
            for o in then {
                let b = 1 << index(o);
                if explicit & b == 0 {
                    isa |= b;
                }
            }
        }
    }
    let names = (0..EXTENSIONS.len())
        .filter(|i| isa & (1 << i) != 0)
        .map(|i| EXTENSIONS[i].option)
        .collect();
    (names, unknown)
}

/// `-m` options that are not ISA extensions (ABI, tuning, code model, hardening).
const NON_ISA: &[&str] = &[
    "64",
    "32",
    "x32",
    "80387",
    "hard-float",
    "soft-float",
    "fp-ret-in-387",
    "long-double-80",
    "long-double-64",
    "long-double-128",
    "red-zone",
    "omit-leaf-frame-pointer",
    "stackrealign",
    "vzeroupper",
    "ieee-fp",
    "fancy-math-387",
    "align-stringops",
    "push-args",
    "accumulate-outgoing-args",
    "tls-direct-seg-refs",
    "direct-extern-access",
    "glibc",
    "sse2avx",
    "stv",
    "mwait",
    "general-regs-only",
    "needed",
    "recip",
    "3dnow-a",
    "128bit-long-double",
    "96bit-long-double",
    "cld",
    "record-mcount",
    "nop-mcount",
    "fentry",
    "indirect-branch-register",
    "shstk-compat",
    "uintr-compat",
    "avx256-split-unaligned-load",
    "avx256-split-unaligned-store",
    "dispatch-scheduler",
    "prefer-avx128",
];

/// The flags a producer string enables, or `None` when it records no target options.
///
/// GCC producers (`GNU C17 …`, `GNU C++20 …`, `GNU Fortran…`, LTO's `GNU GIMPLE …`) have a
/// record unless built with `-gno-record-gcc-switches` (then the producer is `GNU C17 12.2.0`
/// alone): GCC writes its default `-mtune`/`-march` too. Clang producers have one only with
/// `-grecord-command-line` (`clang version 17.0.6 … /usr/bin/clang -mavx2 …`); GCC's
/// semantics are applied to their options. Assembler units (`GNU AS 2.40`) and other
/// producers give `None`.
pub fn flags_of(producer: &str) -> Option<FlagSet> {
    let gcc = producer.starts_with("GNU ") && !producer.starts_with("GNU AS");
    let options: Vec<&str> = producer
        .split_whitespace()
        .filter(|t| t.starts_with('-'))
        .collect();
    // GCC writes -mtune/-march whenever it records switches; without any -m option the
    // record is off (-gno-record-gcc-switches) and says nothing.
    let recorded = options.iter().any(|o| o.starts_with("-m"));
    let clang = producer.contains("clang") || producer.contains("LLVM");
    if !recorded || !(gcc || clang) {
        return None;
    }
    let (enabled, unknown) = resolve(options.iter().copied());
    let mut set = FlagSet {
        unknown,
        ..FlagSet::default()
    };
    set.codegen.extend(BASELINE_FLAGS);
    for o in enabled {
        let e = extension(o).expect("resolve returns table options");
        if e.codegen {
            set.codegen.insert(e.flag);
        } else {
            set.intrinsics.insert(e.flag);
        }
    }
    // A flag both ways (crc32 and sse4.2 share `sse4_2`): codegen wins.
    let codegen = set.codegen.clone();
    set.intrinsics.retain(|f| !codegen.contains(f));
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implied_and_cpu_option_is_in_the_table() {
        for e in EXTENSIONS {
            for i in e.implies {
                assert!(extension(i).is_some(), "{} implies unknown {i}", e.option);
            }
        }
        for c in CPUS {
            let _ = cpu_bits(c);
        }
        assert!(EXTENSIONS.len() <= 128);
    }

    #[test]
    fn gluten_170_producer() {
        let p = "GNU C++20 13.2.0 -mavx2 -mfma -mavx -mf16c -mlzcnt -mbmi2 -mtune=generic \
                 -march=x86-64 -g -g -O3 -O3 -std=c++20 -fPIC -fopenmp";
        let f = flags_of(p).unwrap();
        for flag in [
            "avx2", "avx", "fma", "f16c", "abm", "bmi2", "sse4_2", "sse4_1", "ssse3", "pni",
            "popcnt", "sse2", "cmov",
        ] {
            assert!(f.codegen.contains(flag), "{flag} missing from {f:?}");
        }
        assert!(!f.codegen.contains("bmi1"), "-mbmi2 does not imply bmi1");
        assert!(!f.codegen.contains("lahf_lm"), "x86-64 has no SAHF");
        assert!(f.intrinsics.contains("xsave"));
        assert!(f.unknown.is_empty());
    }

    #[test]
    fn m_options_win_over_march_and_last_one_wins() {
        let (on, _) = resolve(["-march=haswell", "-mno-avx"]);
        assert!(!on.contains(&"avx2") && !on.contains(&"fma") && !on.contains(&"avx"));
        assert!(on.contains(&"sse4.2") && on.contains(&"bmi2"));
        let (on, _) = resolve(["-mno-avx2", "-march=haswell"]);
        assert!(!on.contains(&"avx2") && on.contains(&"avx"));
        let (on, _) = resolve(["-mavx2", "-mno-avx2"]);
        assert!(!on.contains(&"avx2") && on.contains(&"avx"));
        let (on, _) = resolve(["-mno-popcnt", "-msse4.2"]);
        assert!(!on.contains(&"popcnt"));
        let (on, _) = resolve(["-mno-sse4"]);
        assert!(!on.contains(&"sse4.1"));
    }

    #[test]
    fn expanded_native_and_unknown_options() {
        // How GCC records -march=native on a Zen 3 host (abridged).
        let p = "GNU C17 12.2.0 -march=znver3 -mmmx -mpopcnt -msse -msse2 -msse3 -mssse3 \
                 -msse4.1 -msse4.2 -mavx -mavx2 -msse4a -mno-fma4 -mno-xop -mfma -mno-avx512f \
                 -mbmi -mbmi2 -maes -mpclmul -mno-avx512vl -mno-avx512bw -mno-avx512dq \
                 -mno-avx512cd -mno-avx512er -mno-avx512pf -mno-avx512vbmi -mno-avx512ifma \
                 -mno-sha --param=l1-cache-size=32 -mtune=znver3 -O2";
        let f = flags_of(p).unwrap();
        assert!(f.codegen.contains("avx2") && f.codegen.contains("sse4a"));
        assert!(!f.codegen.contains("avx512f"));
        assert!(
            !f.intrinsics.contains("sha_ni"),
            "-mno-sha wins over znver3"
        );
        assert!(f.intrinsics.contains("vaes"));
        let f =
            flags_of("clang version 17.0.6 /usr/bin/clang -march=native -mavx2 -c x.c").unwrap();
        assert_eq!(f.unknown, vec!["-march=native".to_string()]);
        assert!(f.codegen.contains("avx2"));
        assert!(flags_of("GNU AS 2.40").is_none());
        assert!(flags_of("clang version 17.0.6").is_none());
        assert!(
            flags_of("GNU C17 12.2.0").is_none(),
            "-gno-record-gcc-switches"
        );
        let f = flags_of("GNU GIMPLE 13.2.0 -mavx512f -march=x86-64 -O2 -fltrans").unwrap();
        assert!(f.codegen.contains("avx512f"));
        let f = flags_of("GNU C17 13.2.0 -mfoo -march=x86-64").unwrap();
        assert_eq!(f.unknown, vec!["-mfoo".to_string()]);
    }
}
