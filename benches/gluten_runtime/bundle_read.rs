//! Cold read of a Gluten bundle jar by the `gluten_runtime` check's jar reader: prints the
//! wall time, the process's peak RSS (`VmHWM`) and what was read.
//! `cargo run --release -p gluten-node-benches --example gluten_bundle_read -- JAR`

use std::time::Instant;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    let Some(jar) = std::env::args().nth(1) else {
        eprintln!("usage: gluten_bundle_read JAR");
        std::process::exit(2);
    };
    let before = vm_hwm_kib();
    let start = Instant::now();
    let facts = match checks::gluten_runtime::read_jar(jar.as_ref(), &jar) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let elapsed = start.elapsed();
    println!(
        "read {jar} in {:.3} s; peak RSS {} KiB (before the read {} KiB)",
        elapsed.as_secs_f64(),
        vm_hwm_kib().unwrap_or(0),
        before.unwrap_or(0)
    );
    println!(
        "entries {}, shims {:?}, native {:?}, max class-file {:?} ({} classes, e.g. {:?})",
        facts.entries,
        facts.shims,
        facts.native_dirs,
        facts.max_class_major,
        facts.classes_at_max,
        facts.example_class
    );
    for p in &facts.packages {
        println!(
            "  {} {} classes, max {} x{}",
            p.package, p.classes, p.max_major, p.at_max
        );
    }
    for l in &facts.libraries {
        println!("  lib {}:{} {}", l.group, l.artifact, l.version);
    }
    println!("loaders {:?}", facts.shared_library_loaders);
    println!("build info {:?}", facts.build_info);
}
