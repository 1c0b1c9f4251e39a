//! Where a kill is timed: TERM -> grace -> KILL for every escalation in progress.
//!
//! One heap of SIGKILL deadlines (so one timerfd armed to the earliest serves them all), the
//! deadline of each child under escalation, and the signals themselves, sent through the small
//! [`Kill`] seam so that the state machine runs in unit tests without a process. Time is passed
//! in; the loop arms the timer to [`Escalations::next_deadline`].
//!
//! Heap entries of children reaped before their deadline stay in the heap until they come due
//! (or reach its top), which keeps a reap O(log n) free; a heap entry counts only while it matches
//! the child's recorded deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use crate::proc_state::ProcState;

/// What escalation needs of a child: the seam between the state machine and the kernel.
pub(crate) trait Kill {
    /// The pid, for the log.
    fn pid(&self) -> u32;
    /// Whether a signal would still reach this child (see [`ProcState::still_ours`]).
    fn still_ours(&self) -> bool;
    fn signal(&self, signal: i32) -> io::Result<()>;
}

impl Kill for ProcState {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn still_ours(&self) -> bool {
        ProcState::still_ours(self)
    }
    fn signal(&self, signal: i32) -> io::Result<()> {
        ProcState::signal(self, signal)
    }
}

impl<T: Kill + ?Sized> Kill for Arc<T> {
    fn pid(&self) -> u32 {
        (**self).pid()
    }
    fn still_ours(&self) -> bool {
        (**self).still_ours()
    }
    fn signal(&self, signal: i32) -> io::Result<()> {
        (**self).signal(signal)
    }
}

/// What [`Escalations::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// SIGTERM and SIGCONT sent; SIGKILL due after the grace.
    Started,
    /// Already under way: nothing sent, the first deadline stands.
    UnderWay,
    /// The child has exited (or is no longer ours): nothing sent, the caller reaps it.
    Gone,
}

/// Every escalation in progress.
pub(crate) struct Escalations {
    grace: Duration,
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The SIGKILL deadline of each child under escalation, by serial, until it is reaped.
    deadlines: HashMap<u64, Instant>,
}

impl Escalations {
    pub(crate) fn new(grace: Duration) -> Escalations {
        Escalations {
            grace,
            due: BinaryHeap::new(),
            deadlines: HashMap::new(),
        }
    }

    /// SIGTERM (and SIGCONT, so a stopped child acts on it) to child `serial` now; SIGKILL due at
    /// `now + grace`. Does nothing to a child already under escalation.
    pub(crate) fn start(&mut self, serial: u64, child: &impl Kill, now: Instant) -> Start {
        if self.deadlines.contains_key(&serial) {
            return Start::UnderWay;
        }
        if !child.still_ours() {
            return Start::Gone;
        }
        let _ = child.signal(libc::SIGTERM);
        let _ = child.signal(libc::SIGCONT);
        let deadline = now
            .checked_add(self.grace)
            .unwrap_or(now + Duration::from_secs(86400 * 365));
        self.deadlines.insert(serial, deadline);
        self.due.push(Reverse((deadline, serial)));
        info!(
            pid = child.pid(),
            grace_ms = self.grace.as_millis() as u64,
            "SIGTERM sent"
        );
        Start::Started
    }

    /// SIGKILL to every child whose grace ran out by `now`; `lookup` finds a child by serial (None
    /// once it left the table). Returns the children found exited instead, for the caller to reap.
    pub(crate) fn fire<K: Kill>(
        &mut self,
        now: Instant,
        mut lookup: impl FnMut(u64) -> Option<K>,
    ) -> Vec<K> {
        let mut gone = Vec::new();
        while let Some(Reverse((deadline, serial))) = self.due.peek().copied() {
            if deadline > now {
                break;
            }
            self.due.pop();
            if self.deadlines.get(&serial) != Some(&deadline) {
                continue;
            }
            let Some(child) = lookup(serial) else {
                continue;
            };
            if child.still_ours() {
                let _ = child.signal(libc::SIGKILL);
                info!(pid = child.pid(), "grace over: SIGKILL sent");
            } else {
                gone.push(child);
            }
        }
        gone
    }

    /// Child `serial` was reaped: its deadline is void. Returns true when it had one (then the
    /// next deadline may have changed: re-arm).
    pub(crate) fn forget(&mut self, serial: u64) -> bool {
        if self.deadlines.remove(&serial).is_none() {
            return false;
        }
        // Drop void deadlines from the top so the timer does not wake the loop for nothing.
        while let Some(Reverse((deadline, serial))) = self.due.peek() {
            if self.deadlines.get(serial) == Some(deadline) {
                break;
            }
            self.due.pop();
        }
        true
    }

    /// The earliest pending deadline, to arm the timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((d, _))| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// A child that records the signals it gets.
    #[derive(Default)]
    struct Fake {
        exited: Cell<bool>,
        got: RefCell<Vec<i32>>,
    }

    impl Kill for Rc<Fake> {
        fn pid(&self) -> u32 {
            42
        }
        fn still_ours(&self) -> bool {
            !self.exited.get()
        }
        fn signal(&self, signal: i32) -> io::Result<()> {
            self.got.borrow_mut().push(signal);
            Ok(())
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn term_and_cont_now_kill_after_the_grace_and_not_before() {
        let t0 = Instant::now();
        let mut e = Escalations::new(3 * S);
        let child = Rc::new(Fake::default());
        assert_eq!(e.start(1, &child, t0), Start::Started);
        assert_eq!(*child.got.borrow(), [libc::SIGTERM, libc::SIGCONT]);
        assert_eq!(e.next_deadline(), Some(t0 + 3 * S));
        assert!(e.fire(t0 + 2 * S, |_| Some(child.clone())).is_empty());
        assert_eq!(child.got.borrow().len(), 2);
        assert!(e.fire(t0 + 3 * S, |_| Some(child.clone())).is_empty());
        assert_eq!(child.got.borrow().last(), Some(&libc::SIGKILL));
        assert_eq!(e.next_deadline(), None);
    }

    #[test]
    fn a_second_start_sends_nothing_and_keeps_the_first_deadline() {
        let t0 = Instant::now();
        let mut e = Escalations::new(3 * S);
        let child = Rc::new(Fake::default());
        e.start(1, &child, t0);
        assert_eq!(e.start(1, &child, t0 + S), Start::UnderWay);
        assert_eq!(child.got.borrow().len(), 2);
        assert_eq!(e.next_deadline(), Some(t0 + 3 * S));
    }

    #[test]
    fn an_exited_child_gets_no_signal_and_is_handed_back() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        child.exited.set(true);
        assert_eq!(e.start(1, &child, t0), Start::Gone);
        assert!(child.got.borrow().is_empty());
        assert_eq!(e.next_deadline(), None);

        let other = Rc::new(Fake::default());
        e.start(2, &other, t0);
        other.exited.set(true);
        let gone = e.fire(t0 + S, |_| Some(other.clone()));
        assert_eq!(gone.len(), 1);
        assert_eq!(*other.got.borrow(), [libc::SIGTERM, libc::SIGCONT]);
    }

    #[test]
    fn a_reaped_child_is_never_killed_and_its_deadline_goes() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let first = Rc::new(Fake::default());
        let second = Rc::new(Fake::default());
        e.start(1, &first, t0);
        e.start(2, &second, t0 + S);
        assert!(e.forget(1));
        assert!(!e.forget(1));
        assert_eq!(e.next_deadline(), Some(t0 + 2 * S));
        let children = [(1, first.clone()), (2, second.clone())];
        let lookup = |s| {
            children
                .iter()
                .find(|(k, _)| *k == s)
                .map(|(_, c)| c.clone())
        };
        e.fire(t0 + 5 * S, lookup);
        assert_eq!(first.got.borrow().len(), 2, "the reaped one got SIGKILL");
        assert_eq!(second.got.borrow().last(), Some(&libc::SIGKILL));
    }

    #[test]
    fn a_child_missing_from_the_table_is_skipped() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        e.start(7, &child, t0);
        assert!(e.fire(t0 + S, |_| None::<Rc<Fake>>).is_empty());
        assert_eq!(child.got.borrow().len(), 2);
    }

    #[test]
    fn a_thousand_at_once_share_one_deadline() {
        let t0 = Instant::now();
        let mut e = Escalations::new(Duration::from_millis(500));
        let child = Rc::new(Fake::default());
        for s in 0..1000 {
            e.start(s, &child, t0);
        }
        assert!(
            e.fire(t0 + Duration::from_millis(499), |_| Some(child.clone()))
                .is_empty()
        );
        e.fire(t0 + Duration::from_millis(500), |_| Some(child.clone()));
        let kills = child
            .got
            .borrow()
            .iter()
            .filter(|&&s| s == libc::SIGKILL)
            .count();
        assert_eq!(kills, 1000);
        assert_eq!(e.next_deadline(), None);
    }
}
