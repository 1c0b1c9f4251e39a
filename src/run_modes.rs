//! Ways to run the loop, and the guard every one of them runs it under.
//!
//! - [`run_here`]: on the calling thread until `stop()` ([`Executor::run`](crate::Executor::run),
//!   the seed's way);
//! - [`LoopThread`]: on a thread the executor owns, stopped and joined when the last owner drops
//!   ([`Executor::start`](crate::Executor::start)). The thread holds the shared state, never the
//!   guard, so there is no cycle: dropping the last `Executor` drops the guard, which SIGKILLs
//!   what is left, stops the loop and joins the thread once it reaped them;
//! - [`scoped`]: on the calling thread while a closure runs on another, stopped when the closure
//!   returns or panics ([`Executor::run_with`](crate::Executor::run_with)).
//!
//! A loop that panics (it should not) abandons the executor on the way out: requests are refused
//! and every child is killed and reaped, so no caller waits forever.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tracing::{error, warn};

use crate::shared::Shared;

/// Marks `shared` as looping for as long as it lives; abandons it if dropped by a panic.
struct InLoop<'a>(&'a Shared);

impl<'a> InLoop<'a> {
    fn enter(shared: &'a Shared) -> io::Result<InLoop<'a>> {
        if shared.enter_loop() {
            Ok(InLoop(shared))
        } else {
            Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the executor's loop is already running on another thread",
            ))
        }
    }
}

impl Drop for InLoop<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.abandon();
        }
        self.0.leave_loop();
    }
}

/// Runs the loop on the calling thread until the executor is stopped and every child reaped.
pub(crate) fn run_here(shared: &Shared) -> io::Result<()> {
    let _in_loop = InLoop::enter(shared)?;
    crate::reactor::run(shared)
}

/// The loop on a thread of its own, stopped and joined on drop.
pub(crate) struct LoopThread {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LoopThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopThread")
            .field("thread", &self.thread.as_ref().map(|t| t.thread().id()))
            .finish()
    }
}

// The join handle is touched only by `drop`; a panic elsewhere cannot leave it half-updated.
// Keeps `Executor` unwind-safe, as it was before it could own its loop thread.
impl std::panic::RefUnwindSafe for LoopThread {}
impl std::panic::UnwindSafe for LoopThread {}

impl LoopThread {
    /// Starts the loop of `shared` on a new thread named `napix-executor`.
    pub(crate) fn spawn(shared: &Arc<Shared>) -> io::Result<LoopThread> {
        // Entered here, not on the new thread, so a busy executor is an error of this call.
        if !shared.enter_loop() {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "the executor's loop is already running on another thread",
            ));
        }
        let for_loop = shared.clone();
        let spawned = thread::Builder::new()
            .name("napix-executor".into())
            .spawn(move || {
                let in_loop = InLoop(&for_loop);
                if let Err(e) = crate::reactor::run(&for_loop) {
                    // The loop has abandoned the executor: requests now fail with `Stopped`.
                    error!(error = %e, "the executor's loop failed; its children were killed");
                }
                drop(in_loop);
            });
        match spawned {
            Ok(thread) => Ok(LoopThread {
                shared: shared.clone(),
                thread: Some(thread),
            }),
            Err(e) => {
                shared.leave_loop();
                Err(e)
            }
        }
    }
}

impl Drop for LoopThread {
    /// The drop rule (crate docs, "Running the loop"): SIGKILL (no grace) to what the executor
    /// still tracks, stop, and wait for the loop to reap it and return: milliseconds, never a
    /// kill grace, so an async runtime's worker dropping the last clone is not stalled.
    fn drop(&mut self) {
        // In a child forked without exec the thread does not exist and the executor is the
        // parent's: nothing to stop or join.
        if self.shared.check_owner().is_err() {
            return;
        }
        // Killed before the stop, so that the loop's SIGTERM (it escalates at stop) does not
        // reach them first: each ends by SIGKILL, as the rule says.
        kill_tracked(&self.shared);
        self.shared.stop();
        // A child that came after the first look (a spawn request the loop served before it saw
        // the stop) would otherwise get the stop's grace.
        kill_tracked(&self.shared);
        let Some(thread) = self.thread.take() else {
            return;
        };
        if thread.thread().id() == thread::current().id() {
            // Dropped by code the loop itself ran (a waker): it ends by itself once it sees stop.
            return;
        }
        if thread.join().is_err() {
            warn!("the executor's loop thread panicked");
        }
    }
}

/// SIGKILL to the kill scope of every child `shared` tracks, from this thread, while the loop
/// runs: each through its pidfd, or by pid under its reap gate (the loop cannot reap it between
/// the look and the signal). One that exited meanwhile is skipped (`ESRCH`).
fn kill_tracked(shared: &Shared) {
    // Not in the `for` head: the table stays unlocked while signalling.
    let states = shared.table().states();
    for state in states {
        let _ = state.signal_unreaped(libc::SIGKILL);
    }
}

/// Runs the loop on the calling thread while `f` runs on a new scoped thread; stops the executor
/// when `f` returns or panics, and returns once the loop has reaped every child. A panic of `f`
/// is resumed here after that.
pub(crate) fn scoped<R: Send>(shared: &Shared, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    struct StopOnDrop<'a>(&'a Shared);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    let in_loop = InLoop::enter(shared)?;
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("napix-run-with".into())
            .spawn_scoped(scope, move || {
                let _stop = StopOnDrop(shared);
                f()
            })?;
        let looped = crate::reactor::run(shared);
        drop(in_loop);
        // The loop returns only once stopped (by `f`'s end, or by its own failure, which
        // abandons the executor): `f` is finishing, its requests refused and its children reaped.
        match worker.join() {
            Ok(r) => looped.map(|()| r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
