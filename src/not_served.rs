//! What a program that never runs the executor's loop is told, so that its first request does
//! not hang in silence.
//!
//! The warning goes to `tracing`. A program without a subscriber would see nothing of it, and
//! nothing else happens (a request has no timeout unless one is set), so then the same words go
//! to stderr too, once per executor: the one case where this library writes to stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::subscriber::NoSubscriber;

/// The fix, in the words of the warning, of the stderr line and of
/// [`SpawnError::NotServed`](crate::SpawnError::NotServed).
pub(crate) const FIX: &str = "call Executor::start() (the loop on a thread the executor owns), \
     or Executor::run() on a thread of your own, or use Executor::run_with; \
     see \"Running the loop\" in the napix_executor docs";

/// One executor's notice: its stderr line is written at most once.
#[derive(Debug, Default)]
pub(crate) struct NotServedNotice {
    written: AtomicBool,
}

impl NotServedNotice {
    /// A request has waited `waited` for a loop nobody runs: warn through `tracing`, and when
    /// the calling thread has no subscriber (neither a global nor a scoped one), write the
    /// warning to stderr as well, the first time for this executor.
    pub(crate) fn emit(&self, waited: Duration) {
        tracing::warn!(
            ?waited,
            "a spawn request waits for the executor's loop, but no thread runs it: {FIX}"
        );
        // `dispatcher::has_been_set()` says whether a subscriber was ever set on any thread;
        // what matters is whether this event reached one, which is the current dispatcher.
        let no_subscriber = tracing::dispatcher::get_default(|d| d.is::<NoSubscriber>());
        if no_subscriber && !self.written.swap(true, Ordering::Relaxed) {
            // Not `eprintln!`: it panics when stderr is closed, and tests' capture hides it.
            let _ = writeln!(
                std::io::stderr().lock(),
                "napix-executor: a spawn request has waited {waited:?} for the executor's loop, \
                 but no thread runs it: {FIX}. (Written once per executor, to stderr because no \
                 tracing subscriber is installed.)"
            );
        }
    }
}
