//! Bounded polling before sleeping, for threads that wait on the executor thread.
//!
//! On a VM, waking a thread parked on a halted core costs tens of microseconds, as much as a
//! spawn. A caller that polls its reply slot (or the exit status) for a short while gets the
//! answer without that wake-up. Polling must never starve the threads that produce the answer (the
//! executor thread and the child, on a 2-core machine), so a poller yields the CPU between checks
//! and at most `cores - 1` threads poll at once; the others sleep at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct SpinPolicy {
    limit: Duration,
    spinners: AtomicUsize,
    max_spinners: usize,
}

impl SpinPolicy {
    pub(crate) fn new(limit: Duration) -> SpinPolicy {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        SpinPolicy {
            limit,
            spinners: AtomicUsize::new(0),
            max_spinners: cores.saturating_sub(1),
        }
    }

    /// Polls `ready` for up to the limit (or `cap`, if shorter). Returns true if it became ready.
    pub(crate) fn poll(&self, cap: Duration, ready: impl Fn() -> bool) -> bool {
        let limit = self.limit.min(cap);
        if limit.is_zero() {
            return ready();
        }
        if self.spinners.fetch_add(1, Ordering::AcqRel) >= self.max_spinners {
            self.spinners.fetch_sub(1, Ordering::AcqRel);
            return ready();
        }
        let until = Instant::now() + limit;
        let mut got = ready();
        while !got && Instant::now() < until {
            // Give the CPU to the executor thread or the child if they are runnable here.
            std::thread::yield_now();
            got = ready();
        }
        self.spinners.fetch_sub(1, Ordering::AcqRel);
        got
    }
}
