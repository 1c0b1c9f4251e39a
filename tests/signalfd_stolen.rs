//! Fault, signalfd path: another thread of the host takes SIGCHLD away from the executor's
//! signalfd. A plain `main` (`harness = false`): `block_sigchld()` must come before any thread
//! starts, which libtest's own threads would break.
//!
//! Wanted, on every backend: a stolen SIGCHLD only delays an exit, by at most the documented
//! second (100 ms as long as the host keeps no exited child of its own unwaited, as here), never
//! loses it:
//! - a host thread that waits in `sigtimedwait(SIGCHLD)` after `run()` started;
//! - a host thread that unblocks SIGCHLD (under the default disposition the kernel then drops the
//!   signals it gets);
//! - a thread already waiting in `sigtimedwait` when `run()` starts: the executor must not pick
//!   a signalfd then (it takes the handler path, and logs why), and still sees every exit.
//!
//! Regression test: 1-4 of 20 children per backend were never reaped (the signalfd path had no
//! look of its own).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use common::{RUN_WATCHDOG, Running, has_signalfd, run_cases, start_with_watch};
use napix_executor::{ChildWatch, Executor, SpawnBackend};

const CHILDREN: usize = 20;
/// The documented bound on the delay is 1 s; a loaded machine gets a generous margin.
const BOUND: Duration = Duration::from_secs(3);

/// The messages of every `warn` event the library logs (a subscriber of our own: the library
/// depends on `tracing` alone).
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Warnings;

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        WARNINGS.lock().unwrap_or_else(|e| e.into_inner()).push(m.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A host thread doing something with SIGCHLD until told to stop.
struct Host {
    stop: Arc<AtomicBool>,
    taken: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Meddling {
    /// Loops in `sigtimedwait(SIGCHLD)`.
    Steal,
    /// Unblocks SIGCHLD and sleeps.
    Unblock,
}

fn sigchld_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

impl Host {
    fn start(how: Meddling) -> Host {
        let stop = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(AtomicUsize::new(0));
        let (stop2, taken2) = (stop.clone(), taken.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let set = sigchld_set();
            if how == Meddling::Unblock {
                // SAFETY: changes this thread's mask only.
                unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
            }
            let _ = ready_tx.send(());
            while !stop2.load(Ordering::SeqCst) {
                match how {
                    Meddling::Steal => {
                        let timeout = libc::timespec {
                            tv_sec: 0,
                            tv_nsec: 20_000_000,
                        };
                        // SAFETY: valid set and timeout; the siginfo pointer may be null.
                        let got =
                            unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout) };
                        if got == libc::SIGCHLD {
                            taken2.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Meddling::Unblock => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ready_rx.recv().expect("host thread started");
        Host {
            stop,
            taken,
            thread: Some(thread),
        }
    }

    /// Stops the thread; returns how many SIGCHLDs it took (Steal).
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("host thread");
        }
        self.taken.load(Ordering::SeqCst)
    }
}

/// A Signal-mode executor on a run thread, once its first child was answered (by then `run()` has
/// chosen its SIGCHLD source).
fn executor(backend: SpawnBackend) -> Running {
    let r = start_with_watch(backend, ChildWatch::Signal, Duration::from_millis(200));
    let h = r
        .exec()
        .create_process(&["true"], true)
        .expect("spawn true");
    assert!(h.wait_timeout(BOUND).is_some(), "{backend:?}: first child");
    r
}

/// Spawns `CHILDREN` quick children at once and waits for each; returns the longest time from a
/// spawn's answer to its status.
fn quick_children(ex: &Executor, what: &str) -> Duration {
    let handles: Vec<_> = (0..CHILDREN)
        .map(|_| {
            let h = ex.create_process(&["true"], true).expect("spawn true");
            (h, Instant::now())
        })
        .collect();
    let mut longest = Duration::ZERO;
    for (h, spawned) in &handles {
        let status = h.wait_timeout(BOUND);
        assert!(
            status.is_some_and(|s| s.success()),
            "{what}: pid {} not reaped {BOUND:?} after it was spawned: {status:?}",
            h.pid()
        );
        longest = longest.max(spawned.elapsed());
    }
    longest
}

/// One case: a host thread meddling with SIGCHLD after `run()` started, or one already in
/// `sigtimedwait` before.
#[derive(Clone, Copy)]
enum Case {
    After(Meddling, SpawnBackend),
    Before(SpawnBackend),
}

fn main() {
    napix_executor::block_sigchld().expect("block_sigchld");
    tracing::subscriber::set_global_default(Warnings).expect("the only subscriber");
    let during = [Meddling::Steal, Meddling::Unblock]
        .into_iter()
        .flat_map(|how| SpawnBackend::ALL.map(|b| Case::After(how, b)));
    let before = SpawnBackend::ALL.map(Case::Before);
    run_cases(
        during.chain(before),
        |case| match case {
            Case::After(how, b) => format!("{b:?}, a host thread that does {how:?} after run()"),
            Case::Before(b) => format!("{b:?}, a host thread in sigtimedwait before run()"),
        },
        |case| match case {
            Case::After(how, backend) => meddling_after_run(how, backend),
            Case::Before(backend) => thief_before_run(backend),
        },
    );
}

fn meddling_after_run(how: Meddling, backend: SpawnBackend) -> String {
    let what = format!("{backend:?}, a host thread that does {how:?} after run()");
    let mut r = executor(backend);
    assert!(has_signalfd(), "{what}: the loop should read a signalfd");
    let host = Host::start(how);
    let mut longest = Duration::ZERO;
    // A few rounds, so that the thief surely takes some signals.
    const ROUNDS: usize = 5;
    for _ in 0..ROUNDS {
        longest = longest.max(quick_children(r.exec(), &what));
    }
    let taken = host.finish();
    r.stop_and_join(RUN_WATCHDOG);
    if how == Meddling::Steal {
        assert!(taken > 0, "{what}: the host thread never took a SIGCHLD");
    }
    format!(
        "{} children in {ROUNDS} rounds, all reaped, longest {longest:?}; \
         SIGCHLDs taken by the host thread: {}",
        CHILDREN * ROUNDS,
        if how == Meddling::Steal {
            taken.to_string()
        } else {
            "not counted".into()
        }
    )
}

/// A thread already in sigtimedwait when run() starts: no signalfd, yet every exit is seen.
fn thief_before_run(backend: SpawnBackend) -> String {
    let what = format!("{backend:?}, a host thread in sigtimedwait before run()");
    let host = Host::start(Meddling::Steal);
    std::thread::sleep(Duration::from_millis(50));
    WARNINGS.lock().expect("warnings").clear();
    let mut r = executor(backend);
    assert!(
        !has_signalfd(),
        "{what}: a signalfd would miss what the thread takes"
    );
    let said = WARNINGS.lock().expect("warnings").clone();
    assert!(
        said.iter()
            .any(|m| m.contains("sigtimedwait") && m.contains("handler")),
        "{what}: the choice of the handler path was not logged: {said:?}"
    );
    let longest = quick_children(r.exec(), &what);
    let taken = host.finish();
    r.stop_and_join(RUN_WATCHDOG);
    format!("all reaped, longest {longest:?}; SIGCHLDs taken: {taken}")
}
