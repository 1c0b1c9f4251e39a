//! Where a kill is timed: TERM -> grace -> KILL for every escalation in progress, and the
//! per-command deadlines that start one by themselves.
//!
//! One heap of due times (so one timerfd armed to the earliest serves them all, with no thread per
//! child): SIGKILL deadlines of children under escalation, and deadlines of children spawned with
//! a timeout. The signals go through the small [`Kill`] seam so that the state machine runs in unit
//! tests without a process. Time is passed in; the loop arms the timer to
//! [`Escalations::next_deadline`].
//!
//! Heap entries of children reaped before they come due stay in the heap (lazy deletion, which
//! keeps a reap free of a heap search); a heap entry counts only while it matches the child's
//! recorded due time of its kind. Void entries leave when they reach the top, and the heap is
//! rebuilt from the live ones whenever the void ones outnumber them, so its size stays
//! proportional to the deadlines pending (not to spawn rate x timeout behind one long deadline),
//! at an amortized O(1) per entry.

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
    /// The child's own kill grace, when it overrides the executor's.
    fn grace(&self) -> Option<Duration>;
    /// Its deadline passed and started the escalation.
    fn mark_timed_out(&self);
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
    fn grace(&self) -> Option<Duration> {
        self.lifetime.kill_grace
    }
    fn mark_timed_out(&self) {
        self.set_timed_out();
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
    fn grace(&self) -> Option<Duration> {
        (**self).grace()
    }
    fn mark_timed_out(&self) {
        (**self).mark_timed_out()
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

/// What a heap entry is due for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// The grace ran out: SIGKILL.
    Kill,
    /// The command's deadline passed: start the escalation.
    Timeout,
}

/// Void entries tolerated beside the live ones before the heap is rebuilt: a small heap is not
/// worth rebuilding.
const COMPACT_SLACK: usize = 64;

/// Every escalation in progress and every pending deadline.
pub(crate) struct Escalations {
    grace: Duration,
    due: BinaryHeap<Reverse<(Instant, u64, Due)>>,
    /// The SIGKILL deadline of each child under escalation, by serial, until it is reaped; `None`
    /// for a grace too large to represent (no SIGKILL ever comes).
    kills: HashMap<u64, Option<Instant>>,
    /// The deadline of each child spawned with a timeout and not yet under escalation.
    timeouts: HashMap<u64, Instant>,
}

impl Escalations {
    pub(crate) fn new(grace: Duration) -> Escalations {
        Escalations {
            grace,
            due: BinaryHeap::new(),
            kills: HashMap::new(),
            timeouts: HashMap::new(),
        }
    }

    /// SIGTERM (and SIGCONT, so a stopped child acts on it) to child `serial` now; SIGKILL due at
    /// `now + grace` (the child's own grace, else the executor's). Does nothing to a child already
    /// under escalation. A pending deadline of the child is void from now on.
    pub(crate) fn start(&mut self, serial: u64, child: &impl Kill, now: Instant) -> Start {
        self.start_from(serial, child, now, "SIGTERM sent")
    }

    fn start_from(
        &mut self,
        serial: u64,
        child: &impl Kill,
        from: Instant,
        why: &'static str,
    ) -> Start {
        if self.kills.contains_key(&serial) {
            return Start::UnderWay;
        }
        if !child.still_ours() {
            return Start::Gone;
        }
        self.timeouts.remove(&serial);
        let _ = child.signal(libc::SIGTERM);
        let _ = child.signal(libc::SIGCONT);
        let grace = child.grace().unwrap_or(self.grace);
        // A grace too large to represent is no limit: SIGTERM only.
        let deadline = from.checked_add(grace);
        self.kills.insert(serial, deadline);
        if let Some(at) = deadline {
            self.push(at, serial, Due::Kill);
        }
        info!(
            pid = child.pid(),
            grace_ms = grace.as_millis() as u64,
            "{why}"
        );
        Start::Started
    }

    /// Whether child `serial` is under escalation (SIGTERM sent, SIGKILL pending).
    pub(crate) fn under_way(&self, serial: u64) -> bool {
        self.kills.contains_key(&serial)
    }

    /// Child `serial` must be killed (with escalation) once `at` passes, unless it exits first.
    pub(crate) fn set_timeout(&mut self, serial: u64, at: Instant) {
        self.timeouts.insert(serial, at);
        self.push(at, serial, Due::Timeout);
    }

    fn push(&mut self, at: Instant, serial: u64, due: Due) {
        self.compact_if_mostly_void();
        self.due.push(Reverse((at, serial, due)));
    }

    /// Whether a heap entry still stands for a pending deadline (else it is void: its child was
    /// reaped, or its deadline replaced or started).
    fn is_live(&self, at: Instant, serial: u64, due: Due) -> bool {
        match due {
            Due::Kill => self.kills.get(&serial) == Some(&Some(at)),
            Due::Timeout => self.timeouts.get(&serial) == Some(&at),
        }
    }

    /// Rebuilds the heap from its live entries once the void ones outnumber them (an upper bound
    /// of the live ones: every pending deadline).
    fn compact_if_mostly_void(&mut self) {
        let live_at_most = self.kills.len() + self.timeouts.len();
        if self.due.len() <= 2 * live_at_most + COMPACT_SLACK {
            return;
        }
        let mut entries = std::mem::take(&mut self.due).into_vec();
        entries.retain(|Reverse((at, serial, due))| self.is_live(*at, *serial, *due));
        self.due = BinaryHeap::from(entries);
    }

    /// Serves everything due by `now`: SIGKILL to every child whose grace ran out, and the
    /// escalation of every child whose deadline passed (its SIGKILL is then due at the deadline
    /// plus the grace, so a late loop does not lengthen the child's life). `lookup` finds a child
    /// by serial (None once it left the table). Returns the children found exited instead, for
    /// the caller to reap.
    pub(crate) fn fire<K: Kill>(
        &mut self,
        now: Instant,
        mut lookup: impl FnMut(u64) -> Option<K>,
    ) -> Vec<K> {
        let mut gone = Vec::new();
        while let Some(Reverse((deadline, serial, due))) = self.due.peek().copied() {
            if deadline > now {
                break;
            }
            self.due.pop();
            if !self.is_live(deadline, serial, due) {
                continue;
            }
            if due == Due::Timeout {
                self.timeouts.remove(&serial);
            }
            let Some(child) = lookup(serial) else {
                continue;
            };
            if !child.still_ours() {
                gone.push(child);
                continue;
            }
            match due {
                Due::Kill => {
                    let _ = child.signal(libc::SIGKILL);
                    info!(pid = child.pid(), "grace over: SIGKILL sent");
                }
                Due::Timeout => {
                    child.mark_timed_out();
                    self.start_from(serial, &child, deadline, "deadline passed: SIGTERM sent");
                }
            }
        }
        gone
    }

    /// Child `serial` was reaped: its deadlines are void. Returns true when it had one (then the
    /// next deadline may have changed: re-arm).
    pub(crate) fn forget(&mut self, serial: u64) -> bool {
        let had_kill = self.kills.remove(&serial).is_some();
        let had_timeout = self.timeouts.remove(&serial).is_some();
        if !had_kill && !had_timeout {
            return false;
        }
        // Drop void entries from the top so the timer does not wake the loop for nothing; those
        // behind a live one go when they outnumber the live ones.
        while let Some(&Reverse((deadline, serial, due))) = self.due.peek() {
            if self.is_live(deadline, serial, due) {
                break;
            }
            self.due.pop();
        }
        self.compact_if_mostly_void();
        true
    }

    /// The earliest pending deadline, to arm the timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((d, _, _))| *d)
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
        grace: Option<Duration>,
        timed_out: Cell<bool>,
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
        fn grace(&self) -> Option<Duration> {
            self.grace
        }
        fn mark_timed_out(&self) {
            self.timed_out.set(true);
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

    #[test]
    fn a_childs_own_grace_overrides_the_executors() {
        let t0 = Instant::now();
        let mut e = Escalations::new(3 * S);
        let quick = Rc::new(Fake {
            grace: Some(Duration::from_millis(100)),
            ..Fake::default()
        });
        e.start(1, &quick, t0);
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_millis(100)));
        e.fire(t0 + Duration::from_millis(100), |_| Some(quick.clone()));
        assert_eq!(quick.got.borrow().last(), Some(&libc::SIGKILL));
    }

    #[test]
    fn a_deadline_starts_the_escalation_by_itself_and_kills_after_the_grace() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        e.set_timeout(1, t0 + 2 * S);
        assert_eq!(e.next_deadline(), Some(t0 + 2 * S));
        assert!(e.fire(t0 + S, |_| Some(child.clone())).is_empty());
        assert!(child.got.borrow().is_empty(), "nothing before the deadline");
        // The loop is late by 100 ms: SIGKILL still comes at deadline + grace.
        e.fire(t0 + 2 * S + Duration::from_millis(100), |_| {
            Some(child.clone())
        });
        assert!(child.timed_out.get());
        assert_eq!(*child.got.borrow(), [libc::SIGTERM, libc::SIGCONT]);
        assert_eq!(e.next_deadline(), Some(t0 + 3 * S));
        e.fire(t0 + 3 * S, |_| Some(child.clone()));
        assert_eq!(child.got.borrow().last(), Some(&libc::SIGKILL));
        assert_eq!(e.next_deadline(), None);
    }

    #[test]
    fn a_loop_later_than_deadline_plus_grace_sends_term_then_kill_at_once() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        e.set_timeout(1, t0 + S);
        e.fire(t0 + 5 * S, |_| Some(child.clone()));
        assert_eq!(
            *child.got.borrow(),
            [libc::SIGTERM, libc::SIGCONT, libc::SIGKILL]
        );
    }

    #[test]
    fn a_kill_before_the_deadline_voids_it_and_is_not_a_timeout() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        e.set_timeout(1, t0 + 2 * S);
        e.start(1, &child, t0);
        e.fire(t0 + 10 * S, |_| Some(child.clone()));
        assert!(!child.timed_out.get());
        assert_eq!(
            *child.got.borrow(),
            [libc::SIGTERM, libc::SIGCONT, libc::SIGKILL],
            "one escalation, not two"
        );
    }

    #[test]
    fn a_child_reaped_before_its_deadline_gets_nothing() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        e.set_timeout(1, t0 + S);
        assert!(e.forget(1));
        assert_eq!(e.next_deadline(), None, "the void deadline left the top");
        e.fire(t0 + 10 * S, |_| Some(child.clone()));
        assert!(child.got.borrow().is_empty());
        assert!(!child.timed_out.get());
    }

    #[test]
    fn an_exited_child_at_its_deadline_is_handed_back_not_marked() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let child = Rc::new(Fake::default());
        child.exited.set(true);
        e.set_timeout(1, t0 + S);
        let gone = e.fire(t0 + S, |_| Some(child.clone()));
        assert_eq!(gone.len(), 1);
        assert!(!child.timed_out.get());
        assert!(child.got.borrow().is_empty());
        assert_eq!(e.next_deadline(), None);
    }

    #[test]
    fn void_deadlines_behind_a_long_one_do_not_pile_up() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        // One long-lived child's deadline stays on top of the heap...
        e.set_timeout(0, t0 + 1000 * S);
        let child = Rc::new(Fake::default());
        e.start(1, &child, t0 + 999 * S);
        // ...while 100,000 children with later deadlines come and are reaped.
        for serial in 2..100_002 {
            e.set_timeout(serial, t0 + 2000 * S);
            if serial % 3 == 0 {
                // Some are killed first: a SIGKILL entry and a replaced deadline.
                e.start(serial, &child, t0 + 1500 * S);
            }
            assert!(e.forget(serial));
            let live = e.kills.len() + e.timeouts.len();
            assert!(
                e.due.len() <= 2 * live + COMPACT_SLACK + 1,
                "{} heap entries for {live} live deadlines after {serial} children",
                e.due.len()
            );
        }
        assert_eq!(e.next_deadline(), Some(t0 + 1000 * S));
        // The live ones still fire, and only they.
        let fresh = Rc::new(Fake::default());
        e.fire(t0 + 1000 * S, |_| Some(fresh.clone()));
        assert!(fresh.timed_out.get());
        assert_eq!(
            *fresh.got.borrow(),
            [libc::SIGTERM, libc::SIGCONT, libc::SIGKILL]
        );
        assert_eq!(e.next_deadline(), Some(t0 + 1001 * S));
    }

    #[test]
    fn a_grace_too_large_to_represent_never_kills() {
        let t0 = Instant::now();
        let mut e = Escalations::new(Duration::MAX);
        let child = Rc::new(Fake::default());
        assert_eq!(e.start(1, &child, t0), Start::Started);
        assert!(e.under_way(1));
        assert_eq!(e.next_deadline(), None, "no SIGKILL deadline");
        e.fire(t0 + 1_000_000 * S, |_| Some(child.clone()));
        assert_eq!(*child.got.borrow(), [libc::SIGTERM, libc::SIGCONT]);
        assert_eq!(e.start(1, &child, t0 + S), Start::UnderWay);
        assert!(e.forget(1));
        assert!(!e.under_way(1));
    }

    #[test]
    fn deadlines_and_kills_interleave_in_time_order() {
        let t0 = Instant::now();
        let mut e = Escalations::new(S);
        let (a, b) = (Rc::new(Fake::default()), Rc::new(Fake::default()));
        e.set_timeout(1, t0 + 3 * S);
        e.start(2, &b, t0);
        assert_eq!(e.next_deadline(), Some(t0 + S));
        let children = [(1, a.clone()), (2, b.clone())];
        let lookup = |s| {
            children
                .iter()
                .find(|(k, _)| *k == s)
                .map(|(_, c)| c.clone())
        };
        e.fire(t0 + S, lookup);
        assert_eq!(b.got.borrow().last(), Some(&libc::SIGKILL));
        assert!(a.got.borrow().is_empty());
        assert_eq!(e.next_deadline(), Some(t0 + 3 * S));
    }
}
