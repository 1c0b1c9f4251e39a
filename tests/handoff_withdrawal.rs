//! The hand-off between callers and the loop keeps nothing it was told to drop and never swaps
//! two callers' children (issue 20, defects 1-3). One test at a time in this binary: it counts
//! the process's descriptors.
//!
//! - Withdrawn requests free what they hold at once: with no loop running, 500 timed-out spawns
//!   with stdin bytes and 500 dropped spawn futures leave the descriptor count where it was
//!   (regression: 10 -> 510 and -> 1,010), and 20,000 timed-out requests with an environment
//!   variable do not grow the resident set by tens of MB (regression: 3.7 -> 52 MB).
//! - A hook that runs on a waiting caller's thread (a tracing subscriber handling the
//!   slow-request warning) and spawns gets its own answer, and the outer call its own
//!   (regression: they were swapped, exit 7 for 1).
//! - `spawn_many` has one request timeout for the batch (regression: ten commands answered
//!   `NotServed` after 1.0 s with a 100 ms timeout).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Running, fd_count, serial};
use napix_executor::{Command, Executor, SpawnError, Stdio};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn idle(timeout: Duration) -> Arc<Executor> {
    Arc::new(
        Executor::builder()
            .request_timeout(timeout)
            .build()
            .expect("build"),
    )
}

#[test]
fn withdrawn_requests_free_their_descriptors_and_memory_at_once() {
    let _serial = serial();
    let ex = idle(Duration::from_millis(1));
    let mut with_bytes = Command::new("cat");
    with_bytes.stdin(Stdio::from_bytes(vec![b'x'; 100]));
    let before = fd_count();
    for _ in 0..500 {
        let e = ex.spawn(&with_bytes).expect_err("nobody runs the loop");
        assert!(matches!(e, SpawnError::NotServed { .. }), "{e:?}");
    }
    let after_timeouts = fd_count();
    for _ in 0..500 {
        drop(ex.spawn_async(&with_bytes));
    }
    let after_drops = fd_count();
    eprintln!(
        "fds: {before} before, {after_timeouts} after 500 timeouts, {after_drops} after 500 dropped futures"
    );
    assert!(
        after_timeouts <= before + 2,
        "500 timed-out spawns with stdin bytes: {before} -> {after_timeouts} descriptors"
    );
    assert!(
        after_drops <= before + 2,
        "500 dropped spawn futures: {before} -> {after_drops} descriptors"
    );

    let mut with_env = Command::new("true");
    with_env.env("NAPIX_WITHDRAWN", "x".repeat(1000));
    let rss_before = rss();
    for _ in 0..20_000 {
        drop(ex.spawn_async(&with_env));
    }
    let grown = rss().saturating_sub(rss_before);
    eprintln!(
        "RSS grew {} KiB over 20,000 withdrawn requests",
        grown / 1024
    );
    assert!(
        grown < 4 << 20,
        "20,000 withdrawn requests grew the resident set by {} MiB",
        grown >> 20
    );

    // A loop that starts later serves nothing of it, and leaves nothing behind.
    let mut r = Running::spawn(ex);
    let served = r
        .exec()
        .with_request_timeout(None)
        .create_process(&["/bin/true"], true)
        .expect("true");
    assert!(served.wait().success());
    assert!(
        r.exec().running().is_empty(),
        "a withdrawn request was spawned"
    );
    r.stop_and_join(Duration::from_secs(10));
}

#[test]
fn spawn_many_has_one_request_timeout_for_the_batch() {
    let _serial = serial();
    let ex = idle(Duration::from_millis(100));
    let commands: Vec<Command> = (0..10).map(|_| Command::new("true")).collect();
    let at = Instant::now();
    let results = ex.spawn_many(&commands);
    let took = at.elapsed();
    for r in &results {
        assert!(matches!(r, Err(SpawnError::NotServed { .. })), "{r:?}");
    }
    assert!(
        took < Duration::from_millis(600),
        "10 commands with a 100 ms request timeout answered after {took:?}"
    );
}

/// What the hook's own spawn got: its child's exit code, or the error.
type HookResult = Arc<Mutex<Option<Result<Option<i32>, SpawnError>>>>;

/// A subscriber that, on the slow-request warning, starts the loop and spawns on the waiting
/// thread itself (any hook that runs there could).
struct SpawnOnWarning {
    ex: Arc<Executor>,
    inner: HookResult,
    runner: Arc<Mutex<Option<Running>>>,
    fired: AtomicBool,
}

impl Subscriber for SpawnOnWarning {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() != tracing::Level::WARN
            || self.fired.swap(true, Ordering::SeqCst)
        {
            return;
        }
        *self.runner.lock().expect("lock") = Some(Running::spawn(Arc::clone(&self.ex)));
        let inner = self
            .ex
            .create_process(&["sh", "-c", "exit 7"], true)
            .map(|h| h.wait().code());
        *self.inner.lock().expect("lock") = Some(inner);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_spawn_from_a_hook_on_the_waiting_thread_gets_its_own_child() {
    let _serial = serial();
    let ex = Arc::new(Executor::new().expect("new"));
    let inner = Arc::new(Mutex::new(None));
    let runner = Arc::new(Mutex::new(None));
    let subscriber = SpawnOnWarning {
        ex: Arc::clone(&ex),
        inner: Arc::clone(&inner),
        runner: Arc::clone(&runner),
        fired: AtomicBool::new(false),
    };
    let outer = {
        let ex = Arc::clone(&ex);
        std::thread::spawn(move || {
            let _guard = tracing::subscriber::set_default(subscriber);
            ex.create_process(&["sh", "-c", "exit 1"], true)
                .map(|h| h.wait().code())
        })
    };
    let outer = outer.join().expect("outer caller");
    let inner = inner.lock().expect("lock").take();
    assert_eq!(outer, Ok(Some(1)), "the outer call got another child");
    assert_eq!(
        inner,
        Some(Ok(Some(7))),
        "the hook's call got another child (or never ran)"
    );
    let runner = runner.lock().expect("lock").take();
    if let Some(mut r) = runner {
        r.stop_and_join(Duration::from_secs(10));
    }
}
