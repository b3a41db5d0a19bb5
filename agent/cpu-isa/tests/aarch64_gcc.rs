//! Differential against the real GCC: for every -mcpu and -march value the installed
//! aarch64-linux-gnu-gcc knows, its __ARM_FEATURE_* macros against the features the table
//! requires. Skips, saying why, when the cross compiler is missing (.ci/deps installs it).

use cpu_isa::aarch64::*;
use std::collections::BTreeSet;
use std::process::Command;

const GCC: &str = "aarch64-linux-gnu-gcc";

/// Macro -> the cpuinfo features whose presence in the table's set means GCC defines it.
const MACROS: &[(&str, &[&str])] = &[
    ("__ARM_FEATURE_CRC32", &["crc32"]),
    ("__ARM_FEATURE_ATOMICS", &["atomics"]),
    ("__ARM_FEATURE_QRDMX", &["asimdrdm"]),
    ("__ARM_FEATURE_FP16_SCALAR_ARITHMETIC", &["fphp"]),
    ("__ARM_FEATURE_FP16_VECTOR_ARITHMETIC", &["asimdhp"]),
    ("__ARM_FEATURE_FP16_FML", &["asimdfhm"]),
    ("__ARM_FEATURE_DOTPROD", &["asimddp"]),
    ("__ARM_FEATURE_AES", &["aes"]),
    ("__ARM_FEATURE_SHA2", &["sha2"]),
    ("__ARM_FEATURE_CRYPTO", &["aes", "sha2"]),
    ("__ARM_FEATURE_SHA3", &["sha3"]),
    ("__ARM_FEATURE_SHA512", &["sha512"]),
    ("__ARM_FEATURE_SM3", &["sm3"]),
    ("__ARM_FEATURE_SM4", &["sm4"]),
    ("__ARM_FEATURE_SVE", &["sve"]),
    ("__ARM_FEATURE_SVE2", &["sve2"]),
    ("__ARM_FEATURE_SVE2_AES", &["sveaes"]),
    ("__ARM_FEATURE_SVE2_SHA3", &["svesha3"]),
    ("__ARM_FEATURE_SVE2_SM4", &["svesm4"]),
    ("__ARM_FEATURE_SVE2_BITPERM", &["svebitperm"]),
    ("__ARM_FEATURE_MATMUL_INT8", &["i8mm"]),
    ("__ARM_FEATURE_SVE_MATMUL_INT8", &["svei8mm"]),
    ("__ARM_FEATURE_SVE_MATMUL_FP32", &["svef32mm"]),
    ("__ARM_FEATURE_SVE_MATMUL_FP64", &["svef64mm"]),
    ("__ARM_FEATURE_BF16_SCALAR_ARITHMETIC", &["bf16"]),
    ("__ARM_FEATURE_BF16_VECTOR_ARITHMETIC", &["bf16", "asimd"]),
    ("__ARM_FEATURE_COMPLEX", &["fcma"]),
    ("__ARM_FEATURE_JCVT", &["jscvt"]),
    ("__ARM_FEATURE_FRINT", &["frint"]),
];

fn gcc_macros(option: &str) -> Option<BTreeSet<String>> {
    let out = Command::new(GCC)
        .args([option, "-dM", "-E", "-x", "c", "/dev/null"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("#define ")?.split_whitespace().next())
            .filter(|m| MACROS.iter().any(|(n, _)| n == m))
            .map(str::to_string)
            .collect(),
    )
}

fn table_macros(required: &FlagSet) -> BTreeSet<String> {
    MACROS
        .iter()
        .filter(|(_, fs)| fs.iter().all(|f| required.contains(f)))
        .map(|(m, _)| m.to_string())
        .collect()
}

/// The values GCC lists for a bad `-mcpu=`/`-march=` ("valid arguments are: …").
fn gcc_values(option: &str) -> Vec<String> {
    let out = Command::new(GCC)
        .args([
            &format!("{option}=no-such-value"),
            "-E",
            "-x",
            "c",
            "/dev/null",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let list = err.lines().find_map(|l| {
        l.split_once("valid arguments are: ")
            .map(|(_, v)| v.to_string())
    });
    let list = list.unwrap_or_else(|| {
        panic!("{GCC} {option}=no-such-value: no list of valid arguments in {err}")
    });
    list.split_whitespace()
        .map(|v| v.trim_end_matches(';').to_string())
        .filter(|v| !v.starts_with("did") && v != "native" && !v.contains('?') && !v.contains('\''))
        .collect()
}

#[test]
fn table_agrees_with_gcc_macros() {
    if Command::new(GCC).arg("--version").output().is_err() {
        println!(
            "SKIP: {GCC} not installed (apt-get install gcc-aarch64-linux-gnu; .ci/deps does)"
        );
        return;
    }
    let mut options: Vec<String> = Vec::new();
    for v in gcc_values("-mcpu") {
        options.push(format!("-mcpu={v}"));
    }
    for v in gcc_values("-march") {
        options.push(format!("-march={v}"));
    }
    // Modifiers, including Gluten's own and +no removals.
    for extra in [
        GLUTEN_GENERIC,
        "-mcpu=demeter+crypto+sha3+sm4+sve2-aes+sve2-sha3+sve2-sm4",
        "-mcpu=neoverse-n1+crypto",
        "-mcpu=neoverse-v1+nosve",
        "-mcpu=neoverse-n2+nofp16",
        "-mcpu=zeus+nosimd",
        "-march=armv8.2-a+fp16fml",
        "-march=armv8.4-a+fp16",
        "-march=armv8.4-a+crypto",
        "-march=armv8.2-a+sve2-bitperm+f64mm+f32mm",
        "-march=armv8.6-a+sve+nobf16",
        "-march=armv9-a+sve2-aes+nocrypto",
        "-march=armv8-a+rdma+dotprod+i8mm+bf16",
        "-march=armv8.5-a+nofp",
    ] {
        options.push(extra.to_string());
    }
    let (mut agree, mut unknown_to_table, mut unknown_to_gcc) = (0, Vec::new(), Vec::new());
    let mut disagree = Vec::new();
    for option in &options {
        let Some(t) = target_of(&format!("GNU C17 12.2.0 {option}")) else {
            unknown_to_table.push(option.clone());
            continue;
        };
        let Some(gcc) = gcc_macros(option) else {
            unknown_to_gcc.push(option.clone());
            continue;
        };
        let ours = table_macros(&t.required);
        if ours == gcc {
            agree += 1;
        } else {
            let only_gcc: Vec<_> = gcc.difference(&ours).collect();
            let only_table: Vec<_> = ours.difference(&gcc).collect();
            disagree.push(format!(
                "{option}: gcc only {only_gcc:?}, table only {only_table:?}"
            ));
        }
    }
    println!("{agree} of {} options agree with {GCC}", options.len());
    println!("not in the table: {unknown_to_table:?}");
    println!("rejected by {GCC}: {unknown_to_gcc:?}");
    assert!(
        disagree.is_empty(),
        "table and {GCC} disagree:\n{}",
        disagree.join("\n")
    );
    assert!(agree >= 60, "only {agree} options compared");
}
