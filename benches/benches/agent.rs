//! Criterion benches of the agent's hot paths: every kernel-text parser on real kernel text, the
//! ELF reader and the whole `velox_library` check on pyvelox's real 270 MB `libvelox.so`, a full
//! check round on real fixture trees, the Prometheus encoding of a round (both formats), and the
//! `/health` JSON body.
//!
//! `cargo bench -p gluten-node-benches` (pyvelox is downloaded once into target/pyvelox-cache).

use agent::outputs::metrics::MetricsCache;
use checks::check::{Check, Runner};
use checks::host::Host;
use checks::{hugepages, memory, numa, velox_library};
use checks::{procfs_text, spark_conf};
use criterion::{Criterion, criterion_group, criterion_main};
use gluten_node_benches::{engine, snapshot, upstream};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

fn read(tree: &str, rel: &str) -> String {
    std::fs::read_to_string(upstream(tree).join(rel))
        .unwrap_or_else(|e| panic!("{tree}/{rel}: {e}"))
}

fn parsers(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let meminfo = read("node-exporter-upstream", "proc/meminfo");
    g.bench_function("meminfo", |b| {
        b.iter(|| procfs_text::parse_meminfo(black_box(&meminfo)).unwrap())
    });
    let node_meminfo = read(
        "node-exporter-upstream",
        "sys/devices/system/node/node0/meminfo",
    );
    g.bench_function("node_meminfo", |b| {
        b.iter(|| procfs_text::parse_meminfo(black_box(&node_meminfo)).unwrap())
    });
    let mountinfo = read("node-exporter-upstream", "proc/1/mountinfo");
    g.bench_function("mountinfo_32_lines", |b| {
        b.iter(|| procfs_text::parse_mountinfo(black_box(&mountinfo)).unwrap())
    });
    g.bench_function("cgroup_mounts", |b| {
        b.iter(|| memory::parse_cgroup_mounts(black_box(&mountinfo)).unwrap())
    });
    g.bench_function("cpulist", |b| {
        b.iter(|| procfs_text::parse_cpulist(black_box("0-17,36-53,72-89,108-125\n")).unwrap())
    });
    let cpuinfo = read("node-exporter-upstream", "proc/cpuinfo");
    g.bench_function("cpuinfo_flags_8_cpus", |b| {
        b.iter(|| velox_library::parse_cpuinfo_flags(black_box(&cpuinfo)).unwrap())
    });
    let psi = read("procfs-upstream", "proc/pressure/memory");
    g.bench_function("psi", |b| {
        b.iter(|| memory::parse_psi(black_box(&psi)).unwrap())
    });
    let vmstat = read("node-exporter-upstream", "proc/vmstat");
    g.bench_function("vmstat_oom_kill", |b| {
        b.iter(|| memory::parse_vmstat_oom_kill(black_box(&vmstat)).unwrap())
    });
    let cgroup = "12:memory:/kubepods.slice/kubepods-burstable.slice/x.scope\n0::/kubepods.slice/kubepods-burstable.slice/x.scope\n";
    g.bench_function("proc_self_cgroup", |b| {
        b.iter(|| memory::parse_proc_cgroup(black_box(cgroup)).unwrap())
    });
    g.bench_function("thp_setting", |b| {
        b.iter(|| {
            hugepages::parse_thp_setting(black_box("always defer defer+madvise [madvise] never\n"))
                .unwrap()
        })
    });
    g.bench_function("numa_distance", |b| {
        b.iter(|| numa::parse_distance(black_box("10 21 31 31\n")).unwrap())
    });
    let spark = "spark.master yarn\nspark.executor.memory 25g\nspark.executor.memoryOverhead=5g\n\
                 spark.memory.offHeap.enabled true\nspark.memory.offHeap.size 20g\n\
                 spark.local.dir /data1/spark,/data2/spark\n# comment\nspark.plugins org.apache.gluten.GlutenPlugin\n";
    g.bench_function("spark_defaults", |b| {
        b.iter(|| spark_conf::parse_spark_defaults(black_box(spark)))
    });
    g.bench_function("spark_size", |b| {
        b.iter(|| {
            spark_conf::parse_spark_size(black_box("200g"), spark_conf::ByteUnit::MiB).unwrap()
        })
    });
    if let Ok(cache) = std::fs::read("/etc/ld.so.cache") {
        // This machine's cache: a realistic size; the bench measures parsing, not the machine.
        g.bench_function("ld_so_cache", |b| {
            b.iter(|| velox_library::parse_ld_so_cache(black_box(&cache)).unwrap())
        });
    }
    g.finish();
}

fn velox(c: &mut Criterion) {
    let cpuinfo = read("node-exporter-upstream", "proc/cpuinfo");
    let (_dir, root) = gluten_node_tests::pyvelox_tree("/opt/gluten/lib/libvelox.so", &cpuinfo);
    let lib = root.join("opt/gluten/lib/libvelox.so");
    let file = std::fs::File::open(&lib).unwrap();
    // SAFETY: the file is ours, in a private temp dir, and not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let mut g = c.benchmark_group("velox_library");
    g.sample_size(20);
    g.bench_function("elf_summary_pyvelox_libvelox_270MB", |b| {
        b.iter(|| velox_library::elf_summary(black_box(&map[..])).unwrap())
    });
    let settings = velox_library::Settings {
        paths: vec![PathBuf::from("/opt/gluten/lib/libvelox.so")],
        ..velox_library::Settings::default()
    };
    let host = Host::new(&root).with_arch("x86_64");
    let warm = Runner::<velox_library::VeloxLibrary>::new(settings.clone());
    warm.run(&host).unwrap();
    g.bench_function("check_pyvelox_warm", |b| {
        b.iter(|| warm.run(black_box(&host)).unwrap())
    });
    // A fresh check each time: no summary cache, so every ELF of the closure is parsed again
    // (the page cache is warm; a truly cold disk read is not what a 15 s round sees).
    g.bench_function("check_pyvelox_fresh_cache", |b| {
        b.iter(|| {
            Runner::<velox_library::VeloxLibrary>::new(settings.clone())
                .run(black_box(&host))
                .unwrap()
        })
    });
    g.finish();
}

fn round(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for tree in ["node-exporter-upstream", "procfs-upstream"] {
        let mut e = engine(&upstream(tree));
        c.bench_function(&format!("round/{tree}"), |b| {
            b.iter(|| rt.block_on(e.run_round()))
        });
    }
}

fn encode(c: &mut Criterion) {
    let s = Arc::new(snapshot(&upstream("node-exporter-upstream")));
    // A fresh cache each iteration: measures the encoding, not the cache hit.
    c.bench_function("metrics/render_uncached", |b| {
        b.iter(|| MetricsCache::new(15.0, None).render(Some(black_box(s.clone())), false))
    });
    let cache = MetricsCache::new(15.0, None);
    c.bench_function("metrics/render_cached", |b| {
        b.iter(|| cache.render(Some(black_box(s.clone())), false))
    });
    c.bench_function("health/serialize_report", |b| {
        b.iter(|| serde_json::to_vec_pretty(black_box(&s.report)).unwrap())
    });
}

criterion_group!(benches, parsers, velox, round, encode);
criterion_main!(benches);
