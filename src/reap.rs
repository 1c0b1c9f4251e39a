//! Where a child is reaped: `waitid` on one tracked child, and the bookkeeping of the children
//! that need another look later.
//!
//! - tracked children: reaped with `waitid(WEXITED | WNOHANG)` by pidfd (or by pid in signal
//!   mode) when the loop is told they may have exited; never `waitid(P_ALL)`, which would steal
//!   the statuses of the host's own children;
//! - stalled children: a pidfd readable without a status (a tracer holds it), re-checked on the
//!   timer;
//! - orphans: children killed because they could not be tracked, reaped by pid on the timer and
//!   named, like signal mode's children, by pid *and* start time ([`Orphan`]);
//! - in signal mode, the SIGCHLD source and its look schedule ([`crate::sigchld`]).
//!
//! The kernel is reached through small seams, one per concern, so the bookkeeping runs in unit
//! tests without a process (the way tokio tests its orphan queue with a mock `Wait`), each test's
//! fake implementing only what its part of the reaper asks for: [`ReapTracked`] (a tracked
//! child), [`ReapPid`] (a child by bare pid), [`StartTime`] (`/proc`), [`KillPid`] (signalling
//! by pid) and [`SigchldLook`] (signal mode's look at SIGCHLD). [`SysWait`] is the kernel behind
//! all five.

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};

use crate::proc_state::{ProcState, exit_status_from};
use crate::rusage::ResourceUsage;
use crate::sigchld::{Due, SigchldSource};
use crate::sys::sigchld::SigchldAction;
use crate::sys::wait::{wait4_rusage, waitid_rusage};

/// How often to retry reaping a child that has no usable pidfd.
pub(crate) const RETRY_REAP: Duration = Duration::from_millis(10);

/// A reaped child's status and, when the kernel gave it, its resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    pub(crate) status: ExitStatus,
    pub(crate) rusage: Option<ResourceUsage>,
}

/// Reaping a tracked child: the seam the unit tests replace.
pub(crate) trait ReapTracked {
    /// `waitid(WEXITED | WNOHANG)` on a tracked child (`wait4` by pid without a pidfd): its
    /// status and resource usage, `None` while it runs.
    fn try_wait(&self, child: &ProcState) -> Result<Option<Exit>, Errno>;
    /// Whether the child has exited and waits to be reaped (`WNOWAIT`: it stays a zombie).
    fn exited_unreaped(&self, child: &ProcState) -> bool;
}

/// Reaping a child named by bare pid (an orphan): the seam the unit tests replace.
pub(crate) trait ReapPid {
    /// `waitid(WEXITED | WNOHANG)` by pid.
    fn try_wait_pid(&self, pid: Pid) -> Result<Option<ExitStatus>, Errno>;
    /// Whether `pid` is a child of this process that nobody reaped yet (`waitid(WNOWAIT)`).
    fn is_unreaped_child(&self, pid: Pid) -> bool;
}

/// What `/proc` says of a pid: the seam the unit tests replace.
pub(crate) trait StartTime {
    /// The start time of the process that has `pid` now (`/proc/<pid>/stat` field 22): `Ok(None)`
    /// when none has it, an error when it cannot be read.
    fn start_time(&self, pid: Pid) -> std::io::Result<Option<u64>>;
}

/// Signalling by pid: the seam the unit tests replace.
pub(crate) trait KillPid {
    /// `SIGKILL` by pid, for a child that has no pidfd.
    fn kill(&self, pid: Pid);
}

/// Signal mode's look at SIGCHLD: the seam the unit tests replace.
pub(crate) trait SigchldLook {
    /// SIGCHLD's action now (signal mode: is our handler still installed?).
    fn sigchld_action(&self) -> SigchldAction;
    /// A child of this process that has exited and is waitable, left in place (signal mode).
    fn waitable(&self) -> Option<Pid>;
}

/// The real kernel.
pub(crate) struct SysWait {
    start_times: crate::sys::procfs::StartTimes,
}

impl SysWait {
    pub(crate) fn new() -> SysWait {
        SysWait {
            start_times: crate::sys::procfs::StartTimes::new(),
        }
    }
}

impl ReapTracked for SysWait {
    fn try_wait(&self, child: &ProcState) -> Result<Option<Exit>, Errno> {
        let reaped = match &child.pidfd {
            Some(fd) => waitid_rusage(fd.as_fd())?,
            None => {
                // By pid, first make sure the pid still names our child: the kernel may have
                // reaped it (the host ignores SIGCHLD) and given the number to another child of
                // this process, whose status a wait would steal.
                if !child.same_process() {
                    return Err(Errno::SRCH);
                }
                wait4_rusage(child.os_pid)?
            }
        };
        Ok(reaped.map(|r| Exit {
            status: ExitStatus::from_raw(r.raw_status),
            rusage: Some(ResourceUsage::from_raw(&r.rusage)),
        }))
    }
    fn exited_unreaped(&self, child: &ProcState) -> bool {
        child.exited_unreaped()
    }
}

impl ReapPid for SysWait {
    fn try_wait_pid(&self, pid: Pid) -> Result<Option<ExitStatus>, Errno> {
        try_wait_id(WaitId::Pid(pid))
    }
    fn is_unreaped_child(&self, pid: Pid) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        loop {
            return match waitid(WaitId::Pid(pid), options) {
                Ok(_) => true,
                Err(Errno::INTR) => continue,
                Err(_) => false,
            };
        }
    }
}

impl StartTime for SysWait {
    fn start_time(&self, pid: Pid) -> std::io::Result<Option<u64>> {
        self.start_times.read(pid)
    }
}

impl KillPid for SysWait {
    fn kill(&self, pid: Pid) {
        crate::sys::kill_unreaped_child(pid);
    }
}

impl SigchldLook for SysWait {
    fn sigchld_action(&self) -> SigchldAction {
        crate::sys::sigchld::sigchld_action()
    }
    fn waitable(&self) -> Option<Pid> {
        crate::sys::sigchld::waitable_child()
    }
}

fn try_wait_id(id: WaitId<'_>) -> Result<Option<ExitStatus>, Errno> {
    waitid(id, WaitIdOptions::EXITED | WaitIdOptions::NOHANG)
        .map(|s| s.as_ref().map(exit_status_from))
}

/// What one look at a tracked child found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaped {
    /// Reaped now, with this status (and usage).
    Exited(Exit),
    /// Still running (signal mode: SIGCHLD will tell).
    Running,
    /// Its pidfd is readable but there is no status (a tracer holds it): stop watching the pidfd
    /// (level-triggered epoll would report it again at once); it is re-checked on the timer.
    Stalled,
    /// Reaped already, by a waiter (`waiter_reap`), which stores the status and takes the entry
    /// out of the table.
    Already,
    /// No longer our child: the kernel reaped it itself (the host ignores SIGCHLD) or another
    /// waiter took the status. The status is lost.
    Lost(Errno),
}

/// A child that runs but could not be tracked: killed, then reaped by pid on the timer.
///
/// A pid alone names it only while it is unreaped. When the host ignores SIGCHLD the kernel reaps
/// it the moment it dies and may give the number to another process, even another child of ours
/// whose status a wait by pid would steal; so it is named as signal mode names its children, by
/// pid and start time, and checked before the kill and before every wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Orphan {
    pub(crate) pid: Pid,
    /// `None` when `/proc` could not be read: then the pid alone names it.
    start_time: Option<u64>,
}

impl Orphan {
    /// Whether the process that has the pid now is still this orphan (`Err`: `/proc` unreadable,
    /// the pid is all there is to go by).
    fn is_still_there<W: StartTime>(&self, wait: &W) -> bool {
        match (self.start_time, wait.start_time(self.pid)) {
            (_, Ok(None)) => false,
            (Some(ours), Ok(Some(now))) => ours == now,
            (None, Ok(Some(_))) | (_, Err(_)) => true,
        }
    }
}

/// Reaping with its retry lists and, in signal mode, the SIGCHLD source.
pub(crate) struct Reaper<W = SysWait> {
    wait: W,
    /// Children killed because they could not be tracked (no pidfd): reaped with WNOHANG.
    orphans: Vec<Orphan>,
    /// Tracked children whose pidfd was readable but gave no status: re-checked later.
    stalled: Vec<Arc<ProcState>>,
    /// With ChildWatch::Signal: what wakes the loop when a child may have exited.
    sigchld: Option<SigchldSource>,
}

impl<W> Reaper<W> {
    /// The kernel behind the seams (the unit tests' fake).
    #[cfg(test)]
    pub(crate) fn kernel(&self) -> &W {
        &self.wait
    }

    pub(crate) fn new(wait: W, sigchld: Option<SigchldSource>) -> Reaper<W> {
        Reaper {
            wait,
            orphans: Vec::new(),
            stalled: Vec::new(),
            sigchld,
        }
    }

    /// Takes the stalled children for another look (those still stalled come back through
    /// [`try_reap`](Self::try_reap)).
    pub(crate) fn take_stalled(&mut self) -> Vec<Arc<ProcState>> {
        std::mem::take(&mut self.stalled)
    }

    pub(crate) fn has_orphans(&self) -> bool {
        !self.orphans.is_empty()
    }

    /// The SIGCHLD source, when there is one.
    pub(crate) fn sigchld(&self) -> Option<&SigchldSource> {
        self.sigchld.as_ref()
    }

    /// When the timer must next fire for reaping (None: no need). `tracking`: the table is not
    /// empty.
    pub(crate) fn next_check(&mut self, now: Instant, tracking: bool) -> Option<Instant> {
        let check = self
            .sigchld
            .as_mut()
            .and_then(|s| s.next_check(now, tracking));
        if self.orphans.is_empty() && self.stalled.is_empty() {
            return check;
        }
        let retry = now + RETRY_REAP;
        Some(check.map_or(retry, |c| c.min(retry)))
    }
}

/// Tracked children.
impl<W: ReapTracked> Reaper<W> {
    /// Looks at `child` once and reaps it if it has exited.
    pub(crate) fn try_reap(&mut self, child: &Arc<ProcState>) -> Reaped {
        // Held across the wait: a group signal sent meanwhile names a group whose leader is
        // still unreaped.
        let mut reaped = child.reap_gate();
        if *reaped {
            return Reaped::Already;
        }
        let result = self.try_reap_locked(child);
        *reaped = matches!(result, Reaped::Exited(_) | Reaped::Lost(_));
        result
    }

    fn try_reap_locked(&mut self, child: &Arc<ProcState>) -> Reaped {
        loop {
            return match self.wait.try_wait(child) {
                Ok(Some(status)) => Reaped::Exited(status),
                Ok(None) if child.pidfd.is_none() => Reaped::Running,
                Ok(None) => {
                    if !self.stalled.iter().any(|s| Arc::ptr_eq(s, child)) {
                        self.stalled.push(child.clone());
                    }
                    Reaped::Stalled
                }
                Err(Errno::INTR) => continue,
                // Its waiter reaps it (`waiter_reap`), and got there first: the status is theirs.
                Err(Errno::CHILD) if child.waiter_reaps() => Reaped::Already,
                Err(e) => Reaped::Lost(e),
            };
        }
    }

    /// Before the reap of a child whose kill reaches beyond it (a group or cgroup scope) and is
    /// under way: if the child has exited (a zombie, looked at with `WNOWAIT`), SIGKILL what is
    /// left of its scope now, while the zombie still pins its group id. Returns whether it did.
    pub(crate) fn kill_rest_if_exited(&self, child: &ProcState) -> bool {
        if !self.wait.exited_unreaped(child) {
            return false;
        }
        let _ = child.signal(libc::SIGKILL);
        true
    }
}

/// Children named by pid and start time: orphans, and signal mode's start times.
impl<W: StartTime> Reaper<W> {
    /// A child killed by the thread that spawned it and could not track it, named there
    /// ([`kill_untracked`], [`name_orphan`]): reaped once it exits.
    pub(crate) fn add_named_orphan(&mut self, orphan: Orphan) {
        self.orphans.push(orphan);
    }

    /// Reaps the orphans that have exited; keeps the others.
    pub(crate) fn reap_orphans(&mut self)
    where
        W: ReapPid,
    {
        let wait = &self.wait;
        // EINTR: try again next time; any other error: it is not our child any more. A pid that
        // names another process now: the kernel reaped the orphan, nothing to wait for.
        self.orphans.retain(|orphan| {
            orphan.is_still_there(wait)
                && matches!(wait.try_wait_pid(orphan.pid), Ok(None) | Err(Errno::INTR))
        });
    }

    /// Takes the orphans that are still there, for the blocking reap when the loop gives up.
    pub(crate) fn take_orphans(&mut self) -> Vec<Pid> {
        let wait = &self.wait;
        std::mem::take(&mut self.orphans)
            .into_iter()
            .filter(|orphan| orphan.is_still_there(wait))
            .map(|orphan| orphan.pid)
            .collect()
    }
}

/// Signal mode's looks.
impl<W: SigchldLook> Reaper<W> {
    /// What signal mode's look schedule asks of the timer that fired at `now`.
    pub(crate) fn check_due(&mut self, now: Instant) -> Due {
        let Some(source) = &mut self.sigchld else {
            return Due::default();
        };
        let wait = &self.wait;
        source.check_due(now, || wait.sigchld_action())
    }

    /// A child of this process that has exited and waits to be reaped, left in place: it may
    /// be the host's.
    pub(crate) fn waitable(&self) -> Option<Pid> {
        self.wait.waitable()
    }
}

/// A child that runs but got no pidfd (`pidfd_open` failed, `EMFILE`): names it by pid and
/// start time while it is surely ours, and kills it if it still is; the orphan to reap later.
/// A child that is already gone (the kernel reaped it: the host ignores SIGCHLD) is left
/// alone: its pid may be someone else's.
pub(crate) fn kill_untracked<W: StartTime + ReapPid + KillPid>(
    wait: &W,
    pid: Pid,
) -> Option<Orphan> {
    let orphan = name_orphan(wait, pid)?;
    // The start time was just read from the process that has the pid; that it is an unreaped
    // child of ours rules out a stranger that took the number before the read.
    if !wait.is_unreaped_child(pid) {
        return None;
    }
    wait.kill(pid);
    Some(orphan)
}

/// Names the process that has `pid` now by its pid and start time; `None` when no process has
/// it (the kernel reaped ours already). An unreadable start time names it by pid alone.
pub(crate) fn name_orphan<W: StartTime>(wait: &W, pid: Pid) -> Option<Orphan> {
    let start_time = match wait.start_time(pid) {
        Ok(Some(t)) => Some(t),
        Ok(None) => return None,
        Err(_) => None,
    };
    Some(Orphan { pid, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::os::fd::OwnedFd;

    use crate::spin::SpinPolicy;

    /// A kernel whose children exit when the test says so: reaping, `/proc` and kills by pid.
    #[derive(Default)]
    struct MockWait {
        /// pid -> its answer.
        answers: RefCell<HashMap<i32, Result<Option<ExitStatus>, Errno>>>,
        calls: Cell<usize>,
        /// pid -> the start time of the process that has it now (absent: 1000 + pid; `None`: no
        /// process has it).
        start_times: RefCell<HashMap<i32, Option<u64>>>,
        /// Pids that are not unreaped children of ours.
        not_ours: RefCell<Vec<i32>>,
        /// Pids sent SIGKILL, in order.
        killed: RefCell<Vec<i32>>,
        /// Pids waited for, in order.
        waited: RefCell<Vec<i32>>,
    }

    impl MockWait {
        fn set(&self, pid: i32, answer: Result<Option<ExitStatus>, Errno>) {
            self.answers.borrow_mut().insert(pid, answer);
        }
    }

    impl ReapTracked for &MockWait {
        fn try_wait(&self, child: &ProcState) -> Result<Option<Exit>, Errno> {
            let status = self.try_wait_pid(child.os_pid)?;
            Ok(status.map(|status| Exit {
                status,
                rusage: None,
            }))
        }
        fn exited_unreaped(&self, _child: &ProcState) -> bool {
            false
        }
    }

    impl ReapPid for &MockWait {
        fn try_wait_pid(&self, pid: Pid) -> Result<Option<ExitStatus>, Errno> {
            self.calls.set(self.calls.get() + 1);
            self.waited.borrow_mut().push(pid.as_raw_nonzero().get());
            let mut answers = self.answers.borrow_mut();
            let answer = answers
                .get(&pid.as_raw_nonzero().get())
                .copied()
                .unwrap_or(Ok(None));
            // An interrupted call is retried; the retry gets the real answer.
            if answer == Err(Errno::INTR) {
                answers.insert(pid.as_raw_nonzero().get(), Ok(None));
            }
            answer
        }
        fn is_unreaped_child(&self, pid: Pid) -> bool {
            !self.not_ours.borrow().contains(&pid.as_raw_nonzero().get())
        }
    }

    impl StartTime for &MockWait {
        fn start_time(&self, pid: Pid) -> std::io::Result<Option<u64>> {
            let n = pid.as_raw_nonzero().get();
            Ok(*self
                .start_times
                .borrow()
                .get(&n)
                .unwrap_or(&Some(1000 + n as u64)))
        }
    }

    impl KillPid for &MockWait {
        fn kill(&self, pid: Pid) {
            self.killed.borrow_mut().push(pid.as_raw_nonzero().get());
        }
    }

    /// Signal mode's look at SIGCHLD alone: what the action is, and how often it was asked for.
    struct MockHandler {
        action: SigchldAction,
        asked: Cell<usize>,
    }

    impl SigchldLook for &MockHandler {
        fn sigchld_action(&self) -> SigchldAction {
            self.asked.set(self.asked.get() + 1);
            self.action
        }
        fn waitable(&self) -> Option<Pid> {
            None
        }
    }

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n).expect("positive")
    }

    fn child(n: i32, with_pidfd: bool) -> Arc<ProcState> {
        // Any open descriptor stands for a pidfd here: the mock never hands it to the kernel.
        let fd = with_pidfd.then(|| OwnedFd::from(std::fs::File::open("/dev/null").expect("fd")));
        let spin = Arc::new(SpinPolicy::new(Duration::ZERO));
        Arc::new(ProcState::new(n as u64, pid(n), fd, spin))
    }

    #[test]
    fn an_exited_child_is_reaped_with_its_status_and_a_running_one_is_left() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        let (a, b) = (child(10, false), child(11, false));
        wait.set(10, Ok(Some(ExitStatus::from_raw(3 << 8))));
        let exit = Exit {
            status: ExitStatus::from_raw(3 << 8),
            rusage: None,
        };
        assert_eq!(r.try_reap(&a), Reaped::Exited(exit));
        assert_eq!(r.try_reap(&b), Reaped::Running);
        assert!(r.take_stalled().is_empty());
    }

    #[test]
    fn an_interrupted_wait_is_retried() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        wait.set(12, Err(Errno::INTR));
        assert_eq!(r.try_reap(&child(12, false)), Reaped::Running);
        assert_eq!(wait.calls.get(), 2);
    }

    #[test]
    fn echild_means_the_status_is_lost() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        wait.set(13, Err(Errno::CHILD));
        assert_eq!(r.try_reap(&child(13, true)), Reaped::Lost(Errno::CHILD));
    }

    #[test]
    fn a_readable_pidfd_without_status_stalls_once_and_is_retried_on_the_timer() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        let c = child(14, true);
        let t0 = Instant::now();
        assert_eq!(r.next_check(t0, true), None);
        assert_eq!(r.try_reap(&c), Reaped::Stalled);
        assert_eq!(r.try_reap(&c), Reaped::Stalled);
        assert_eq!(r.next_check(t0, true), Some(t0 + RETRY_REAP));
        let stalled = r.take_stalled();
        assert_eq!(stalled.len(), 1, "listed once");
        assert_eq!(r.next_check(t0, true), None);
    }

    #[test]
    fn orphans_stay_until_reaped_or_gone() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        for n in [20, 21, 22, 23] {
            if let Some(orphan) = name_orphan(&&wait, pid(n)) {
                r.add_named_orphan(orphan);
            }
        }
        wait.set(20, Ok(Some(ExitStatus::from_raw(9))));
        wait.set(21, Err(Errno::CHILD));
        wait.set(22, Err(Errno::INTR));
        let t0 = Instant::now();
        assert_eq!(r.next_check(t0, false), Some(t0 + RETRY_REAP));
        r.reap_orphans();
        let left: Vec<i32> = r
            .orphans
            .iter()
            .map(|o| o.pid.as_raw_nonzero().get())
            .collect();
        assert_eq!(left, [22, 23]);
        wait.set(22, Ok(Some(ExitStatus::from_raw(9))));
        wait.set(23, Ok(Some(ExitStatus::from_raw(9))));
        r.reap_orphans();
        assert!(!r.has_orphans());
        assert_eq!(r.next_check(t0, false), None);
    }

    #[test]
    fn an_untracked_child_is_killed_only_while_its_pid_is_still_our_unreaped_child() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        // 30: ours and running. 31: gone (the kernel reaped it). 32: the pid names a process
        // that is not our child.
        wait.start_times.borrow_mut().insert(31, None);
        wait.not_ours.borrow_mut().push(32);
        for n in [30, 31, 32] {
            if let Some(orphan) = kill_untracked(&&wait, pid(n)) {
                r.add_named_orphan(orphan);
            }
        }
        assert_eq!(*wait.killed.borrow(), [30]);
        assert_eq!(r.orphans.len(), 1);
        assert_eq!(r.orphans[0].pid, pid(30));
    }

    #[test]
    fn an_orphan_whose_pid_went_to_another_process_is_never_waited_for() {
        let wait = MockWait::default();
        let mut r = Reaper::new(&wait, None);
        r.add_named_orphan(kill_untracked(&&wait, pid(40)).expect("ours"));
        r.add_named_orphan(kill_untracked(&&wait, pid(41)).expect("ours"));
        // The kernel reaped 40 behind our back and another child of ours took the number: a
        // later start time. 41 is still there, a zombie now.
        wait.start_times.borrow_mut().insert(40, Some(5000));
        wait.set(41, Ok(Some(ExitStatus::from_raw(9))));
        r.reap_orphans();
        assert_eq!(*wait.waited.borrow(), [41], "only 41 was waited for");
        assert!(!r.has_orphans());
        // The same check when the loop gives up and reaps blocking.
        r.add_named_orphan(kill_untracked(&&wait, pid(42)).expect("ours"));
        r.add_named_orphan(kill_untracked(&&wait, pid(43)).expect("ours"));
        wait.start_times.borrow_mut().insert(42, Some(7));
        assert_eq!(r.take_orphans(), [pid(43)]);
    }

    #[test]
    fn the_reaper_asks_the_kernel_about_the_handler_only_when_a_look_is_due() {
        use crate::sigchld::{LOOK_EVERY, POLL_EVERY, SigchldSource};
        use crate::sys::SigchldDisposition;
        let handler = MockHandler {
            action: SigchldAction {
                disposition: SigchldDisposition::Ignored,
                handler: 1,
            },
            asked: Cell::new(0),
        };
        let mut r = Reaper::new(&handler, Some(SigchldSource::handler_for_tests(0x1000)));
        let t0 = Instant::now();
        assert_eq!(r.next_check(t0, true), Some(t0 + LOOK_EVERY));
        assert_eq!(r.check_due(t0 + LOOK_EVERY / 2), Due::default());
        assert_eq!(handler.asked.get(), 0);
        let due = r.check_due(t0 + LOOK_EVERY);
        assert_eq!(handler.asked.get(), 1);
        assert!(due.scan, "SIG_IGN seen: look at every child");
        let t = t0 + LOOK_EVERY;
        assert_eq!(r.next_check(t, true), Some(t + POLL_EVERY));
    }
}
