//! Criterion benches of the agent's hot paths: a full check round on a real fixture tree, the
//! Prometheus encoding of a round (both formats), and the `/health` JSON body.

use agent::metrics::MetricsCache;
use criterion::{Criterion, criterion_group, criterion_main};
use gluten_node_benches::{engine, snapshot, upstream};
use std::hint::black_box;
use std::sync::Arc;

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

criterion_group!(benches, round, encode);
criterion_main!(benches);
