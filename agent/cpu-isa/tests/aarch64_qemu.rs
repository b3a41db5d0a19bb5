//! qemu matrix: real aarch64 programs built with the cross GCC for each target option, run under
//! qemu-aarch64-static for each emulated core. A pair the table predicts to fail must die with
//! SIGILL, a pair predicted to run must run. The emulated core's features come from its own
//! AT_HWCAP/AT_HWCAP2. Skips, saying why, when the cross compiler or qemu is missing.

use cpu_isa::aarch64::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const GCC: &str = "aarch64-linux-gnu-gcc";
const QEMU: &str = "qemu-aarch64-static";

const TARGETS: &[&str] = &[
    "-march=armv8-a+crc+crypto",
    "-mcpu=cortex-a53",
    "-mcpu=cortex-a72",
    "-mcpu=cortex-a76",
    "-mcpu=neoverse-n1",
    "-mcpu=neoverse-n1+crypto",
    "-mcpu=tsv110",
    "-mcpu=a64fx",
    "-mcpu=neoverse-v1",
    "-mcpu=zeus",
    "-mcpu=neoverse-n2",
    "-mcpu=demeter",
    "-mcpu=demeter+crypto+sha3+sm4+sve2-aes+sve2-sha3+sve2-sm4",
    "-march=armv8.2-a+dotprod+fp16",
    "-march=armv8.4-a+sve",
];

fn src(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/aarch64/src")
        .join(name)
}

fn build(dir: &Path, name: &str, source: &str, option: &str) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new(GCC)
        .args([option, "-O1", "-g", "-static", "-mno-outline-atomics", "-o"])
        .arg(&out)
        .arg(src(source))
        .status()
        .unwrap();
    assert!(st.success(), "{GCC} {option} {source} failed");
    out
}

fn hwcaps(bin: &Path, cpu: &str) -> FlagSet {
    let out = Command::new(QEMU)
        .args(["-cpu", cpu])
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{QEMU} -cpu {cpu} hwcaps: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words = text
        .split_whitespace()
        .map(|w| u64::from_str_radix(w, 16).unwrap());
    let (h1, h2) = (words.next().unwrap(), words.next().unwrap());
    let mut f = FlagSet::new();
    for (bits, names) in [(h1, HWCAP_NAMES), (h2, HWCAP2_NAMES)] {
        for (i, n) in names.iter().enumerate() {
            if bits >> i & 1 == 1 {
                f.insert(n);
            }
        }
    }
    f
}

fn qemu_cpus() -> Vec<String> {
    let out = Command::new(QEMU).args(["-cpu", "help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|c| !c.is_empty() && c != "host")
        .collect()
}

#[test]
fn predicted_failures_are_sigill_and_predicted_runs_run() {
    for tool in [GCC, QEMU] {
        if Command::new(tool).arg("--version").output().is_err() {
            println!(
                "SKIP: {tool} not installed (gcc-aarch64-linux-gnu, qemu-user-static; .ci/deps installs them)"
            );
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let probe = build(dir.path(), "hwcaps", "hwcaps.c", "-march=armv8-a");
    let cpus: Vec<(String, FlagSet)> = qemu_cpus()
        .into_iter()
        .map(|c| {
            let f = hwcaps(&probe, &c);
            (c, f)
        })
        .collect();
    let (mut proven_ok, mut proven_sigill, mut wrong) = (0, 0, Vec::new());
    for (i, option) in TARGETS.iter().enumerate() {
        let Some(target) = target_of(&format!("GNU C17 12.2.0 {option}")) else {
            panic!("{option}: not in the table")
        };
        let bin = build(dir.path(), &format!("use{i}"), "use_features.c", option);
        for (cpu, features) in &cpus {
            let miss = missing(&target.required, features);
            let out = Command::new(QEMU)
                .args(["-cpu", cpu])
                .arg(&bin)
                .output()
                .unwrap();
            let sigill = out.status.signal() == Some(libc_sigill());
            let ran = out.status.success();
            let verdict = match (miss.is_empty(), ran, sigill) {
                (true, true, _) => {
                    proven_ok += 1;
                    "ok".to_string()
                }
                (false, _, true) => {
                    proven_sigill += 1;
                    format!("SIGILL (missing {miss:?})")
                }
                _ => {
                    let v = format!(
                        "{option} on {cpu}: predicted missing {miss:?}, got {:?}",
                        out.status
                    );
                    wrong.push(v.clone());
                    v
                }
            };
            println!("{option:60} {cpu:12} {verdict}");
        }
    }
    println!(
        "qemu proves {proven_ok} runs and {proven_sigill} SIGILLs over {} cores x {} targets",
        cpus.len(),
        TARGETS.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn libc_sigill() -> i32 {
    4 // SIGILL on Linux, every architecture this runs on
}
