//! Where one child's time goes: [`Timeline`], the monotonic instants of a spawn request's way
//! through the executor, and [`TimelineRecorder`], where the threads involved write them.
//!
//! A leaf: it knows no other module of the crate. Recorded only when the executor was built with
//! [`ExecutorBuilder::timeline(true)`](crate::ExecutorBuilder::timeline); otherwise no child has
//! a recorder and no instant is ever read from the clock for it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The instants one child passed through, from its request to the caller's wait returning, as
/// [`ExecHandle::timeline`](crate::ExecHandle::timeline) gives them (only with
/// [`ExecutorBuilder::timeline(true)`](crate::ExecutorBuilder::timeline)).
///
/// Each instant is `None` until it happened (and stays `None` where it does not apply: a child
/// still running has no `reaped`). The hops between them, in the order a request goes:
///
/// | hop | from | to | what it holds |
/// |---|---|---|---|
/// | [`hand_off_in`](Self::hand_off_in) | `queued` | `spawn_started` | the queue, the doorbell, the loop's wake-up, the requests served before it; nil for a child the calling thread cloned ([`SpawnSite::CallingThread`](crate::SpawnSite::CallingThread)), which was never queued |
/// | [`clone_exec`](Self::clone_exec) | `spawn_started` | `spawned` | pipes, the clone (or fork, or `posix_spawn`) and the exec, known done |
/// | [`reply`](Self::reply) | `spawned` | `replied` | pidfd, registration, table, then the caller's wake-up with its handle |
/// | [`child_run`](Self::child_run) | `spawned` | `exit_observed` | the child's own run, its exit, and the loop's wake-up by the pidfd or SIGCHLD (or the waiting caller's `waitid` returning, when it reaps) |
/// | [`exit_to_reap`](Self::exit_to_reap) | `exit_observed` | `reaped` | the events handled before it in that wake-up, the `waitid`, the table |
/// | [`hand_off_out`](Self::hand_off_out) | `reaped` | `wait_returned` | the waiting caller's wake-up |
///
/// `replied` may come after `exit_observed`: a short child can exit before its caller holds
/// the handle. Every other pair is in order.
///
/// ```
/// # let ex = napix_executor::Executor::builder().timeline(true).start()?;
/// let child = ex.create_process(&["true"], true)?;
/// child.wait();
/// let t = child.timeline().expect("built with timeline(true)");
/// assert!(t.queued <= t.spawn_started && t.spawned <= t.reaped);
/// let total = t.hand_off_in().unwrap() + t.clone_exec().unwrap() + t.child_run().unwrap()
///     + t.exit_to_reap().unwrap() + t.hand_off_out().unwrap();
/// assert_eq!(Some(total), t.total());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeline {
    /// The caller pushed the request onto the executor's queue.
    pub queued: Option<Instant>,
    /// The executor thread took the request and began to spawn it.
    pub spawn_started: Option<Instant>,
    /// The spawn call returned with the child's exec done (the backend knows it succeeded).
    /// The child may have run for a moment by then: the executor thread learns of the exec only
    /// once it is scheduled again, and a forked child runs beside it.
    pub spawned: Option<Instant>,
    /// The caller got its handle (`create_process`, `spawn` or the spawn future returned).
    pub replied: Option<Instant>,
    /// The executor thread woke with the news that the child may have exited (its pidfd
    /// readable, SIGCHLD, or the timer's look), in the wake-up that reaped it; when the reap came
    /// from elsewhere (a kill found the child gone), the instant of the reap. For a child its
    /// blocked waiter reaped ("Who reaps" in the crate docs), when that waiter's `waitid`
    /// returned.
    pub exit_observed: Option<Instant>,
    /// The executor thread reaped the child and is storing its status.
    pub reaped: Option<Instant>,
    /// A waiter ([`wait`](crate::ExecHandle::wait), [`wait_timeout`](crate::ExecHandle::wait_timeout),
    /// [`wait_async`](crate::ExecHandle::wait_async)) first returned with the status. A wait
    /// begun long after the reap measures the caller's delay, not the executor's.
    pub wait_returned: Option<Instant>,
}

/// `to - from` when both happened.
fn between(from: Option<Instant>, to: Option<Instant>) -> Option<Duration> {
    Some(to?.saturating_duration_since(from?))
}

impl Timeline {
    /// `queued` to `spawn_started`: the request's wait for the executor thread.
    pub fn hand_off_in(&self) -> Option<Duration> {
        between(self.queued, self.spawn_started)
    }

    /// `spawn_started` to `spawned`: the spawn itself, exec included.
    pub fn clone_exec(&self) -> Option<Duration> {
        between(self.spawn_started, self.spawned)
    }

    /// `spawned` to `replied`: the answer's way back to the caller.
    pub fn reply(&self) -> Option<Duration> {
        between(self.spawned, self.replied)
    }

    /// `spawned` to `exit_observed`: the child's run, up to the executor thread learning of its
    /// exit.
    pub fn child_run(&self) -> Option<Duration> {
        between(self.spawned, self.exit_observed)
    }

    /// `exit_observed` to `reaped`.
    pub fn exit_to_reap(&self) -> Option<Duration> {
        between(self.exit_observed, self.reaped)
    }

    /// `reaped` to `wait_returned`: the status's way to the waiting caller.
    pub fn hand_off_out(&self) -> Option<Duration> {
        between(self.reaped, self.wait_returned)
    }

    /// `queued` to `wait_returned`: the whole spawn and wait as the caller saw it.
    pub fn total(&self) -> Option<Duration> {
        between(self.queued, self.wait_returned)
    }
}

/// Where the threads write one child's instants. The executor thread knows the first three
/// when it makes the child's state; the later ones are written once each, by whichever thread
/// sees the moment first (a later write is ignored).
#[derive(Debug)]
pub(crate) struct TimelineRecorder {
    queued: Option<Instant>,
    spawn_started: Instant,
    spawned: Instant,
    replied: OnceLock<Instant>,
    exit_observed: OnceLock<Instant>,
    reaped: OnceLock<Instant>,
    wait_returned: OnceLock<Instant>,
}

impl TimelineRecorder {
    /// `queued` is `None` for a request queued without a timeline (none is, today).
    pub(crate) fn new(
        queued: Option<Instant>,
        spawn_started: Instant,
        spawned: Instant,
    ) -> TimelineRecorder {
        TimelineRecorder {
            queued,
            spawn_started,
            spawned,
            replied: OnceLock::new(),
            exit_observed: OnceLock::new(),
            reaped: OnceLock::new(),
            wait_returned: OnceLock::new(),
        }
    }

    pub(crate) fn replied(&self, at: Instant) {
        let _ = self.replied.set(at);
    }

    pub(crate) fn exit_observed(&self, at: Instant) {
        let _ = self.exit_observed.set(at);
    }

    pub(crate) fn reaped(&self, at: Instant) {
        let _ = self.reaped.set(at);
    }

    /// Reads the clock only the first time.
    pub(crate) fn wait_returned(&self) {
        self.wait_returned.get_or_init(Instant::now);
    }

    pub(crate) fn snapshot(&self) -> Timeline {
        Timeline {
            queued: self.queued,
            spawn_started: Some(self.spawn_started),
            spawned: Some(self.spawned),
            replied: self.replied.get().copied(),
            exit_observed: self.exit_observed.get().copied(),
            reaped: self.reaped.get().copied(),
            wait_returned: self.wait_returned.get().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, us: u64) -> Instant {
        t0 + Duration::from_micros(us)
    }

    #[test]
    fn hops_are_the_differences_of_consecutive_instants_and_sum_to_the_total() {
        // In the past, so that the clock read by `wait_returned` comes after every other moment.
        let t0 = Instant::now()
            .checked_sub(Duration::from_millis(10))
            .expect("the monotonic clock is past 10 ms");
        let r = TimelineRecorder::new(Some(t0), at(t0, 10), at(t0, 60));
        r.replied(at(t0, 70));
        r.exit_observed(at(t0, 300));
        r.reaped(at(t0, 305));
        r.wait_returned();
        let t = r.snapshot();
        assert_eq!(t.hand_off_in(), Some(Duration::from_micros(10)));
        assert_eq!(t.clone_exec(), Some(Duration::from_micros(50)));
        assert_eq!(t.reply(), Some(Duration::from_micros(10)));
        assert_eq!(t.child_run(), Some(Duration::from_micros(240)));
        assert_eq!(t.exit_to_reap(), Some(Duration::from_micros(5)));
        let out = t.hand_off_out().expect("waited");
        let sum = [
            t.hand_off_in(),
            t.clone_exec(),
            t.child_run(),
            t.exit_to_reap(),
        ]
        .into_iter()
        .map(|h| h.expect("recorded"))
        .sum::<Duration>()
            + out;
        assert_eq!(t.total(), Some(sum));
    }

    #[test]
    fn a_moment_not_yet_reached_leaves_its_hops_unknown() {
        let t0 = Instant::now();
        let r = TimelineRecorder::new(None, t0, at(t0, 40));
        let t = r.snapshot();
        assert_eq!(t.hand_off_in(), None, "queued unknown");
        assert_eq!(t.clone_exec(), Some(Duration::from_micros(40)));
        assert_eq!(
            (t.reply(), t.child_run(), t.exit_to_reap()),
            (None, None, None)
        );
        assert_eq!((t.hand_off_out(), t.total()), (None, None));
    }

    #[test]
    fn the_first_write_of_a_moment_wins() {
        let t0 = Instant::now();
        let r = TimelineRecorder::new(Some(t0), t0, t0);
        r.exit_observed(at(t0, 5));
        r.exit_observed(at(t0, 9));
        r.reaped(at(t0, 7));
        r.reaped(at(t0, 8));
        r.wait_returned();
        let first = r.snapshot().wait_returned;
        std::thread::sleep(Duration::from_millis(2));
        r.wait_returned();
        let t = r.snapshot();
        assert_eq!(t.exit_observed, Some(at(t0, 5)));
        assert_eq!(t.reaped, Some(at(t0, 7)));
        assert_eq!(t.wait_returned, first, "a second wait does not move it");
    }

    #[test]
    fn instants_out_of_order_give_a_zero_hop_not_a_panic() {
        let t0 = Instant::now();
        let r = TimelineRecorder::new(Some(at(t0, 50)), t0, t0);
        assert_eq!(r.snapshot().hand_off_in(), Some(Duration::ZERO));
    }
}
