//! The request hand-off alone: one no-op request through the queue to the executor thread and its
//! reply (`Executor::round_trip`), from this (worker) thread while `run()` loops on another.
//!
//! Two hops per round trip (request, reply). On a VM the cost depends mostly on whether the woken
//! thread sits on a halted core; the `burst` variant sends requests back to back, the `idle`
//! variant lets the loop fall asleep between them.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use napix_executor::Executor;

fn handoff(c: &mut Criterion) {
    let exec = Arc::new(Executor::new().expect("executor"));
    let looping = Arc::clone(&exec);
    let thread = std::thread::spawn(move || looping.run());
    // Make sure the loop is up before measuring.
    exec.round_trip().expect("round trip");

    let mut g = c.benchmark_group("handoff");
    g.bench_function("round_trip/burst", |b| {
        b.iter(|| black_box(exec.round_trip()).expect("round trip"))
    });
    g.bench_function("round_trip/after_100us_idle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_micros(100));
                let t = Instant::now();
                black_box(exec.round_trip()).expect("round trip");
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();

    exec.stop();
    thread.join().expect("loop thread").expect("run");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = handoff
}
criterion_main!(benches);
