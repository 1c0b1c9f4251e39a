//! Spawn alone per backend: `direct::Prepared::spawn` + `DirectChild::wait` on this thread (no
//! executor thread), on the tiny static program (so that the spawn machinery, not the dynamic
//! loader, is measured), falling back to /bin/true where it cannot run.

#[path = "../src/bench_tiny.rs"]
mod bench_tiny;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use napix_executor::SpawnBackend;
use napix_executor::direct::Prepared;

fn spawn(c: &mut Criterion) {
    // Written and closed before anything spawns (ETXTBSY).
    let (tiny, program) = bench_tiny::tiny_or_bin_true();
    let prepared = Prepared::new(&[&program]).expect("prepare");
    let mut g = c.benchmark_group("spawn_wait_direct");
    for backend in SpawnBackend::ALL {
        g.bench_function(backend.name(), |b| {
            b.iter(|| {
                let status = prepared
                    .spawn(backend)
                    .expect("spawn")
                    .wait()
                    .expect("wait");
                assert!(status.success());
                black_box(status)
            })
        });
    }
    g.finish();
    drop(tiny);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = spawn
}
criterion_main!(benches);
