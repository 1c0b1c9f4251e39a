//! TERM -> grace -> KILL: the deadlines of every escalation in progress, in one heap, so one
//! timerfd armed to the earliest serves them all.
//!
//! A small state machine with time passed in: it decides, the reactor sends the signals. Entries of
//! children reaped before their deadline are not removed from the heap; the reactor skips them when
//! they come due (it checks the table), which keeps a reap O(log n) free.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Pending SIGKILL deadlines, earliest first.
#[derive(Default)]
pub(crate) struct Escalations {
    due: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Escalations {
    /// Records that `serial` got SIGTERM at `now` and is due for SIGKILL after `grace`.
    /// Returns the deadline.
    pub(crate) fn start(&mut self, serial: u64, now: Instant, grace: Duration) -> Instant {
        let deadline = now
            .checked_add(grace)
            .unwrap_or(now + Duration::from_secs(86400 * 365));
        self.due.push(Reverse((deadline, serial)));
        deadline
    }

    /// Pops every escalation whose deadline is at or before `now`.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(Instant, u64)> {
        let mut out = Vec::new();
        while let Some(Reverse((deadline, serial))) = self.due.peek().copied() {
            if deadline > now {
                break;
            }
            self.due.pop();
            out.push((deadline, serial));
        }
        out
    }

    /// Drops deadlines from the top of the heap while `live(serial)` says their child is gone, so
    /// that [`next_deadline`](Self::next_deadline) is a deadline somebody still needs.
    pub(crate) fn prune(&mut self, live: impl Fn(u64) -> bool) {
        while let Some(Reverse((_, serial))) = self.due.peek() {
            if live(*serial) {
                break;
            }
            self.due.pop();
        }
    }

    /// The earliest pending deadline, to arm the timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((d, _))| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let mut e = Escalations::default();
        e.start(1, t0, Duration::from_secs(3));
        e.start(2, t0, Duration::from_secs(1));
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(e.take_due(t0).is_empty());
        let due = e.take_due(t0 + Duration::from_secs(2));
        assert_eq!(due, vec![(t0 + Duration::from_secs(1), 2)]);
        let due = e.take_due(t0 + Duration::from_secs(5));
        assert_eq!(due, vec![(t0 + Duration::from_secs(3), 1)]);
        assert_eq!(e.next_deadline(), None);
    }

    #[test]
    fn prune_drops_only_dead_tops() {
        let t0 = Instant::now();
        let mut e = Escalations::default();
        e.start(1, t0, Duration::from_secs(1));
        e.start(2, t0, Duration::from_secs(2));
        e.start(3, t0, Duration::from_secs(3));
        e.prune(|serial| serial != 1);
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(2)));
        e.prune(|serial| serial == 2);
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn a_thousand_at_once_share_one_deadline() {
        let t0 = Instant::now();
        let mut e = Escalations::default();
        for s in 0..1000 {
            e.start(s, t0, Duration::from_millis(500));
        }
        assert_eq!(e.take_due(t0 + Duration::from_millis(500)).len(), 1000);
    }
}
