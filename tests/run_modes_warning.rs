//! The warning for a request that waits for a loop nobody runs: logged through `tracing` once
//! per waiting request after about a second, not again and again while it waits; not at all when
//! a loop serves; for blocking requests and for async ones (awaited with `pollster`, whose
//! future logs it on the awaiting thread when the request timer wakes it). Captured by a small
//! `tracing::Subscriber` installed on each waiting thread (`set_default`, so other tests' events
//! never count).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{Executor, SpawnError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts WARN events whose message says the loop is not running, and when each came.
#[derive(Default)]
struct Warnings {
    count: AtomicUsize,
    at: Mutex<Vec<Instant>>,
    messages: Mutex<Vec<String>>,
}

struct Capture(Arc<Warnings>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if *event.metadata().level() == Level::WARN && message.0.contains("no thread runs it") {
            self.0.count.fetch_add(1, Ordering::SeqCst);
            self.0.at.lock().expect("lock").push(Instant::now());
        }
        self.0.messages.lock().expect("lock").push(message.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` on a new thread whose events go to `warnings`.
fn capturing<T: Send + 'static>(
    warnings: &Arc<Warnings>,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let capture = Capture(Arc::clone(warnings));
    std::thread::spawn(move || {
        let _guard = tracing::subscriber::set_default(capture);
        f()
    })
}

/// Three requests wait 3.5 s for a loop nobody runs: three warnings, each about 1 s into its
/// wait, and no more during the remaining 2.5 s.
#[test]
fn a_request_waiting_for_no_loop_warns_once() {
    three_requests_wait_for_no_loop(|ex| {
        ex.create_process(&["sleep", "30"], true)
            .expect_err("nobody runs the loop")
    });
}

/// The same with futures: nothing would poll them again before their request timeout, but the
/// timer wakes each once after a second to warn.
#[test]
fn an_async_request_waiting_for_no_loop_warns_once() {
    three_requests_wait_for_no_loop(|ex| {
        pollster::block_on(ex.create_process_async(&["sleep", "30"], true))
            .expect_err("nobody runs the loop")
    });
}

fn three_requests_wait_for_no_loop(request: fn(&Executor) -> SpawnError) {
    let _serial = serial();
    let ex = Executor::builder()
        .request_timeout(Duration::from_millis(3500))
        .build()
        .expect("build");
    let warnings = Arc::new(Warnings::default());
    let t0 = Instant::now();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let ex = ex.clone();
            capturing(&warnings, move || request(&ex))
        })
        .collect();
    let errors = join_all(waiters, Duration::from_secs(30));
    for e in &errors {
        assert!(matches!(e, SpawnError::NotServed { .. }), "{e:?}");
    }
    assert_eq!(
        warnings.count.load(Ordering::SeqCst),
        3,
        "one warning per waiting request: {:?}",
        warnings.messages.lock().expect("lock")
    );
    for at in warnings.at.lock().expect("lock").iter() {
        let after = at.duration_since(t0);
        // The waiters start within t0's moment; a loaded machine may run them late, never early.
        assert!(
            after >= Duration::from_millis(950) && after < Duration::from_millis(3500),
            "warned {after:?} into a 3.5 s wait"
        );
    }
}

/// Without a request timeout a future waits for good; it still warns once, and is served by a
/// loop that starts later.
#[test]
fn an_async_request_without_a_timeout_warns_then_a_late_loop_serves_it() {
    let _serial = serial();
    let ex = Executor::new().expect("new");
    let warnings = Arc::new(Warnings::default());
    let t0 = Instant::now();
    let waiter = {
        let ex = ex.clone();
        capturing(&warnings, move || {
            let h = pollster::block_on(ex.create_process_async(&["/bin/true"], true))
                .expect("served by the late loop");
            h.wait().success()
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), || warnings
            .count
            .load(Ordering::SeqCst)
            > 0),
        "no warning: {:?}",
        warnings.messages.lock().expect("lock")
    );
    let runner = {
        let ex = ex.clone();
        std::thread::spawn(move || ex.run())
    };
    let succeeded = join_all(vec![waiter], Duration::from_secs(30));
    assert_eq!(succeeded, [true]);
    ex.stop();
    runner.join().expect("run thread").expect("run");
    assert_eq!(warnings.count.load(Ordering::SeqCst), 1);
    let after = warnings.at.lock().expect("lock")[0].duration_since(t0);
    assert!(
        after >= Duration::from_millis(950),
        "warned after {after:?}"
    );
}

/// A loop that serves: no warning, however many requests.
#[test]
fn a_served_request_does_not_warn() {
    let _serial = serial();
    let ex = Executor::builder().start().expect("start");
    let warnings = Arc::new(Warnings::default());
    let worker = capturing(&warnings, move || {
        for _ in 0..20 {
            let h = ex.create_process(&["/bin/true"], true).expect("spawn");
            assert!(h.wait().success());
            let h = pollster::block_on(ex.create_process_async(&["/bin/true"], true))
                .expect("spawn_async");
            assert!(h.wait().success());
        }
    });
    join_all(vec![worker], Duration::from_secs(60));
    assert_eq!(
        warnings.count.load(Ordering::SeqCst),
        0,
        "{:?}",
        warnings.messages.lock().expect("lock")
    );
}
