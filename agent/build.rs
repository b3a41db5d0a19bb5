//! Build script of the binary: the static musl builds (what the image and the packages ship) are
//! linked with packed relative relocations (`-z pack-relative-relocs`, DT_RELR) when the linker
//! and the bundled musl support them.
//!
//! A position-independent binary carries one relocation per pointer in its read-only data. In the
//! ordinary RELA format that table is about 250 KiB for this agent; the start-up code reads all of
//! it, so it stays resident for the life of the process. DT_RELR packs the same relocations into
//! a bitmap of about 3 KiB (Android and Chrome ship their binaries linked this way).
//! Two conditions, both checked here:
//! - the linker knows the option: GNU ld 2.38 or later (older ones warn and ignore it), or lld;
//! - the C library's start-up code applies DT_RELR: musl 1.2.4 or later, which Rust bundles from
//!   1.93 on (1.2.3 before). An older musl would leave the pointers unrelocated.
//!
//! glibc builds are left as they are: there GNU ld also adds a dependency on glibc 2.36
//! (`GLIBC_ABI_DT_RELR`), and a binary built here would no longer start on the older glibc of
//! hosts it is often copied to (RHEL 9, Ubuntu 22.04).

use std::path::Path;
use std::process::Command;

/// The first Rust release whose bundled musl (1.2.5) applies DT_RELR in static binaries.
const RUST_WITH_RELR_MUSL: (u32, u32) = (1, 93);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "musl" {
        return;
    }
    if rustc_version().is_none_or(|v| v < RUST_WITH_RELR_MUSL) {
        return;
    }
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    if linker_packs_relative_relocs(&linker, Path::new(&out)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// (major, minor) of the compiler cargo runs, from `rustc -V` ("rustc 1.95.0 (...)").
fn rustc_version() -> Option<(u32, u32)> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc).arg("-V").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace().nth(1)?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Whether `linker` (a compiler driver, as rustc calls it) links a trivial program with the option
/// and says nothing about it: GNU ld before 2.38 only warns that it ignores it.
fn linker_packs_relative_relocs(linker: &str, out: &Path) -> bool {
    let src = out.join("relr_probe.c");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let Ok(o) = Command::new(linker)
        .arg(&src)
        .arg("-o")
        .arg(out.join("relr_probe"))
        .arg("-Wl,-z,pack-relative-relocs")
        .output()
    else {
        return false;
    };
    o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("pack-relative-relocs")
}
