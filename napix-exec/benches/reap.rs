//! The reap path: spawn+wait through the executor against the same backend called directly on
//! this thread. The difference is what the executor adds: the hand-off of the request and of its
//! reply, the pidfd in epoll, the reap by `waitid(P_PIDFD)` on the loop thread, and the wake-up of
//! the waiting handle.

#[path = "../src/bench_tiny.rs"]
mod bench_tiny;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use napix_executor::direct::Prepared;
use napix_executor::{Executor, SpawnBackend};

fn reap(c: &mut Criterion) {
    // Written and closed before any thread spawns (ETXTBSY).
    let (tiny, program) = bench_tiny::tiny_or_bin_true();
    let backend = SpawnBackend::default();
    let exec = Arc::new(
        Executor::builder()
            .backend(backend)
            .build()
            .expect("executor"),
    );
    let looping = Arc::clone(&exec);
    let thread = std::thread::spawn(move || looping.run());
    let argv = [&program];
    let prepared = Prepared::new(&argv).expect("prepare");

    let mut g = c.benchmark_group(format!("reap_{}", backend.name()));
    g.bench_function("executor", |b| {
        b.iter(|| {
            let status = exec.create_process(&argv, true).expect("spawn").wait();
            assert!(status.success());
            black_box(status)
        })
    });
    g.bench_function("direct", |b| {
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
    g.finish();

    exec.stop();
    thread.join().expect("loop thread").expect("run");
    drop(tiny);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = reap
}
criterion_main!(benches);
