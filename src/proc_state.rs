//! Per-child state shared by the executor thread and every handle of one child ([`ProcState`]),
//! the parts the loop hands back for a spawn ([`Spawned`]), the exit-status conversions, and the
//! last-resort kill-and-reap used when the executor goes away.
//!
//! A leaf: it knows the system calls (`sys`) and the waiting policy (`spin`), nothing else of the
//! core. Whoever reaps (the executor thread, or a blocking waiter: `waiter_reap`), under the reap
//! gate, stores the status here and wakes the waiters.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
use tracing::info;

use crate::error::SpawnError;
use crate::lifetime::{KillScope, Lifetime};
use crate::rusage::ResourceUsage;
use crate::spin::SpinPolicy;
use crate::timeline::TimelineRecorder;
use crate::waker_list::{WakerList, wake_all};

/// The raw wait status reported when the real one is lost: exit code 255.
pub(crate) const LOST_STATUS: i32 = 255 << 8;

/// The status reported when the kernel reaped the child itself and the real one is unknown.
pub(crate) fn lost_status() -> ExitStatus {
    ExitStatus::from_raw(LOST_STATUS)
}

/// What the executor thread and every handle of one child share.
pub(crate) struct ProcState {
    /// Unique per spawn (never reused, unlike a pid): the table and the kill heap key.
    pub(crate) serial: u64,
    pub(crate) pid: u32,
    pub(crate) os_pid: Pid,
    /// The process that spawned the child (the executor's): only there may a handle signal it.
    owner: u32,
    /// Every signal goes through it; stays open until the last owner drops. `None` when the
    /// executor watches children by SIGCHLD: signals then go through the executor thread, which
    /// alone reaps and so knows whether the pid is still ours.
    pub(crate) pidfd: Option<OwnedFd>,
    /// Without a pidfd: the child's start time (`/proc/<pid>/stat` field 22), read right after the
    /// spawn. The pid and this together name the child: once the kernel reaped it behind our
    /// back, a process that took over the pid has a later start time. `None` with a pidfd, or
    /// when `/proc` could not be read (then the pid alone names the child).
    start_time: Option<u64>,
    status: Mutex<Option<ExitStatus>>,
    exited: Condvar,
    /// Threads asleep on `exited`, counted under the `status` lock: the store notifies only
    /// when there are some (a notification is a system call, and most waits never sleep there).
    sleepers: AtomicUsize,
    /// Set (after `status`) once the status is stored: lets waiters spin without the lock.
    done: AtomicBool,
    /// How `wait` polls `done` before sleeping on the condition variable.
    spin: Arc<SpinPolicy>,
    /// True when the kernel reaped the child itself (the host set SIGCHLD to SIG_IGN) and the real
    /// status is unknown.
    status_lost: AtomicBool,
    /// What the kernel reported at the reap; stored before the status.
    rusage: OnceLock<ResourceUsage>,
    /// Set when its deadline passed and started the kill escalation.
    timed_out: AtomicBool,
    /// Set by the loop before it puts a kill escalation (or a stop's) for this child on its
    /// timer: a waiter that reaps the child then tells the loop (`waiter_reap`).
    escalated: AtomicBool,
    /// Set by the one blocking waiter that reaps the child itself (`waiter_reap`).
    waiter_reaps: AtomicBool,
    /// Its deadline, kill grace and kill scope; set before the state is shared.
    pub(crate) lifetime: Lifetime,
    /// The tasks awaiting the status ([`poll_exit`](Self::poll_exit)), woken by `set_status`.
    wakers: Mutex<WakerList>,
    /// True once reaped. Held by the reaper across its reaping `waitid`, and by whoever signals
    /// the child's process group: the group id is safe to name only while the leader is unreaped.
    reap_gate: Mutex<bool>,
    /// With [`ExecutorBuilder::timeline`](crate::ExecutorBuilder::timeline): where this child's
    /// instants are written; set before the state is shared. Boxed: most executors have none.
    pub(crate) timeline: Option<Box<TimelineRecorder>>,
}

/// A spawned child's parts, as the executor thread answers a spawn request; the public handle
/// is built from them on the caller's side.
pub(crate) struct Spawned {
    pub(crate) state: Arc<ProcState>,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// Without a pidfd: an eventfd to write when the child is reaped (the handle's `AsFd`).
    pub(crate) exit_fd: Option<OwnedFd>,
}

impl ProcState {
    pub(crate) fn new(
        serial: u64,
        pid: Pid,
        pidfd: Option<OwnedFd>,
        spin: Arc<SpinPolicy>,
    ) -> ProcState {
        ProcState {
            serial,
            pid: pid.as_raw_nonzero().get() as u32,
            os_pid: pid,
            owner: std::process::id(),
            pidfd,
            start_time: None,
            status: Mutex::new(None),
            exited: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            spin,
            status_lost: AtomicBool::new(false),
            rusage: OnceLock::new(),
            timed_out: AtomicBool::new(false),
            escalated: AtomicBool::new(false),
            waiter_reaps: AtomicBool::new(false),
            lifetime: Lifetime::default(),
            wakers: Mutex::new(WakerList::default()),
            reap_gate: Mutex::new(false),
            timeline: None,
        }
    }

    /// `Err(ForkedChild)` in a process forked (without exec) from the one that spawned the child:
    /// there an inherited handle must not signal it (a pidfd would still reach the parent's
    /// child; a pid may name anything) nor ask the parent's loop, which does not run there.
    pub(crate) fn check_owner(&self) -> Result<(), SpawnError> {
        crate::error::check_owner(self.owner)
    }

    /// Records the start time that, with the pid, names a child watched without a pidfd.
    pub(crate) fn with_start_time(mut self, start_time: Option<u64>) -> ProcState {
        self.start_time = start_time;
        self
    }

    /// Without a pidfd: whether the process that has our pid now (alive or a zombie) is still the
    /// child we spawned, by its start time. False once no process has the pid.
    pub(crate) fn same_process(&self) -> bool {
        if self.pidfd.is_some() {
            return true;
        }
        match crate::sys::procfs::start_time(self.os_pid) {
            Ok(now) => match self.start_time {
                Some(ours) => now == Some(ours),
                None => now.is_some(),
            },
            // /proc unreadable at the moment (out of descriptors, EMFILE): the pid is all we
            // have. Calling the child gone would lose a live child for good; the pid is wrong
            // only if the kernel also reaped it behind our back within this window.
            Err(_) => true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<ExitStatus>> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the final status and wakes every waiter. Called by the reaper only.
    pub(crate) fn set_status(&self, status: ExitStatus, lost: bool) {
        if let Some(t) = &self.timeline {
            t.reaped(Instant::now());
        }
        let mut s = self.lock();
        if s.is_none() {
            self.status_lost.store(lost, Ordering::Release);
            *s = Some(status);
        }
        self.done.store(true, Ordering::Release);
        let sleepers = self.sleepers.load(Ordering::Relaxed);
        drop(s);
        if sleepers > 0 {
            self.exited.notify_all();
        }
        // After `done`: a task registering now either sees it or is in the list taken here.
        let wakers = self.wakers().take();
        wake_all(wakers);
    }

    fn wakers(&self) -> MutexGuard<'_, WakerList> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status if stored; else registers the task under `key` to be woken when it is.
    pub(crate) fn poll_exit(
        &self,
        cx: &mut Context<'_>,
        key: &mut Option<u64>,
    ) -> Poll<ExitStatus> {
        let mut wakers = self.wakers();
        if self.done.load(Ordering::Acquire) {
            wakers.remove(key.take());
            drop(wakers);
            if let Some(status) = self.status() {
                self.note_wait_returned();
                return Poll::Ready(status);
            }
            // `done` is only set after the status; unreachable, but never wait on it.
            return Poll::Ready(lost_status());
        }
        wakers.register(key, cx.waker());
        Poll::Pending
    }

    /// Forgets the task registered under `key` (its future was dropped).
    pub(crate) fn forget_waker(&self, key: Option<u64>) {
        if key.is_some() {
            self.wakers().remove(key);
        }
    }

    /// Stores what the child used; called by the reaper just before [`set_status`](Self::set_status),
    /// so a caller woken by the status finds it.
    pub(crate) fn set_rusage(&self, usage: ResourceUsage) {
        let _ = self.rusage.set(usage);
    }

    /// What the child used, once reaped (and when the kernel reported it).
    pub(crate) fn rusage(&self) -> Option<ResourceUsage> {
        self.rusage.get().copied()
    }

    /// Records that the deadline started the escalation.
    pub(crate) fn set_timed_out(&self) {
        self.timed_out.store(true, Ordering::Release);
    }

    /// The loop is about to escalate a kill on this child (see `escalated`).
    pub(crate) fn set_escalated(&self) {
        self.escalated.store(true, Ordering::SeqCst);
    }

    /// Whether the loop ever escalated a kill on this child.
    pub(crate) fn escalated(&self) -> bool {
        self.escalated.load(Ordering::SeqCst)
    }

    /// True for the first caller only: the waiter that reaps the child itself.
    pub(crate) fn claim_waiter_reap(&self) -> bool {
        !self.waiter_reaps.swap(true, Ordering::AcqRel)
    }

    /// Gives the claim up (the waiter handed the child back to the loop).
    pub(crate) fn release_waiter_reap(&self) {
        self.waiter_reaps.store(false, Ordering::Release);
    }

    /// Whether a waiter claimed the reap: a reaper that finds the child gone (`ECHILD`) leaves
    /// the status to it.
    pub(crate) fn waiter_reaps(&self) -> bool {
        self.waiter_reaps.load(Ordering::Acquire)
    }

    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire)
    }

    pub(crate) fn status(&self) -> Option<ExitStatus> {
        *self.lock()
    }

    /// True once a status is stored and it is the lost-status stand-in.
    pub(crate) fn status_lost(&self) -> bool {
        self.status().is_some() && self.status_lost.load(Ordering::Acquire)
    }

    /// Sends `signal` to the child. Through the pidfd when there is one (any thread may call it);
    /// without one only the executor thread may call it, while the child is in its table.
    ///
    /// Acts on the child's kill scope: the process, its process group (only while the child is
    /// unreaped: its zombie pins the group id; `ESRCH` after), or its cgroup.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        match self.lifetime.scope {
            KillScope::Group => {
                let reaped = self.reap_gate();
                self.signal_group(*reaped, signal)
            }
            _ => self.signal_outside_group(signal),
        }
    }

    /// Sends `signal` to the child (its whole kill scope) from any thread, while it is running,
    /// unreaped and the process we spawned; `ESRCH` once it has exited or been reaped. For a
    /// child without a pidfd after `stop()`, when the loop takes no more messages but is still
    /// escalating: the reap gate, held across the look and the signal, keeps the reaper from
    /// reaping the child in between, so its pid cannot be recycled under us; the look
    /// ([`still_ours`](Self::still_ours): a running child of ours, with the start time we
    /// recorded) covers a kernel that reaped it by itself (the host ignores SIGCHLD).
    pub(crate) fn signal_unreaped(&self, signal: i32) -> io::Result<()> {
        let reaped = self.reap_gate();
        if *reaped || !self.still_ours() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        match self.lifetime.scope {
            KillScope::Group => self.signal_group(*reaped, signal),
            _ => self.signal_outside_group(signal),
        }
    }

    /// The process alone, or its cgroup: what needs no reap gate.
    fn signal_outside_group(&self, signal: i32) -> io::Result<()> {
        match (&self.lifetime.scope, &self.lifetime.cgroup) {
            (KillScope::Cgroup, Some(path)) => crate::kill_scope::signal_cgroup(path, signal),
            _ => self.signal_process(signal),
        }
    }

    /// Sends `signal` to the child process alone.
    pub(crate) fn signal_process(&self, signal: i32) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => crate::sys::pidfd_send_signal(fd.as_fd(), signal),
            None => crate::sys::kill_unreaped(self.os_pid, signal),
        }
    }

    /// The group the child leads, while `reaped` (read under the reap gate) is false and the
    /// child still pins the group id ([`pins_its_group`](Self::pins_its_group)).
    fn signal_group(&self, reaped: bool, signal: i32) -> io::Result<()> {
        if reaped || !self.pins_its_group() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        crate::sys::kill_group(self.os_pid, signal)
    }

    /// Whether the child is still unreaped (running, stopped or a zombie), so that its id names
    /// its group and nothing else. Our reaper is held off by the reap gate; the host may still
    /// reap behind our back (`waitpid(-1)`, SIGCHLD ignored), after which the id names the rest
    /// of the group, or, once that is gone too, whichever group takes the recycled id. With a
    /// pidfd the kernel is asked (`waitid(P_PIDFD, WEXITED | WNOHANG | WNOWAIT)` leaves a
    /// zombie in place and fails with `ECHILD` once someone reaped the child); without one the
    /// pid and start time must still name the child ([`same_process`](Self::same_process)).
    /// A host reap between this look and the signal (microseconds) is not seen.
    fn pins_its_group(&self) -> bool {
        match &self.pidfd {
            Some(fd) => {
                let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
                waitid(WaitId::PidFd(fd.as_fd()), options).is_ok()
            }
            None => self.same_process(),
        }
    }

    /// The reap gate: hold it across the reaping `waitid` and set it when the child is gone.
    pub(crate) fn reap_gate(&self) -> MutexGuard<'_, bool> {
        self.reap_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the child has exited and is not yet reaped (a zombie): looks with
    /// `waitid(WEXITED | WNOHANG | WNOWAIT)`, which leaves the zombie in place.
    pub(crate) fn exited_unreaped(&self) -> bool {
        if !self.same_process() {
            return false;
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(waitid(self.wait_id(), options), Ok(Some(_)))
    }

    /// Whether the child may be signalled: always through a pidfd; by pid only while the child is
    /// running and unreaped. Without a pidfd the kernel may have reaped it behind our back (the
    /// host set SIGCHLD to SIG_IGN while we ran), and its pid may then be a stranger's, even
    /// another child of this process: ask the kernel whether the pid is a running child of ours
    /// (`waitid(WNOWAIT)` leaves a zombie in place), then whether it is the one we spawned (its
    /// start time). An exited child is reaped by the caller instead.
    pub(crate) fn still_ours(&self) -> bool {
        if self.pidfd.is_some() {
            return true;
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(waitid(WaitId::Pid(self.os_pid), options), Ok(None)) && self.same_process()
    }

    /// How to name the child to waitid: by pidfd when it has one, else by pid.
    pub(crate) fn wait_id(&self) -> WaitId<'_> {
        match &self.pidfd {
            Some(fd) => WaitId::PidFd(fd.as_fd()),
            None => WaitId::Pid(self.os_pid),
        }
    }

    /// With a timeline: a waiter got the status (the first one's instant is kept).
    pub(crate) fn note_wait_returned(&self) {
        if let Some(t) = &self.timeline {
            t.wait_returned();
        }
    }

    /// Sleeps in the kernel until the child has exited (its pidfd turns readable) or
    /// `deadline` passes; at once without a pidfd or once the status is in. The loop reaps the
    /// child on the same wake-up, so a waiter then polls only for that short while, instead of
    /// for the whole life of the child: the CPU a wait costs does not grow with the child's run.
    fn sleep_until_exit(&self, deadline: Option<Instant>) {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let Some(pidfd) = &self.pidfd else {
            return;
        };
        while !self.done.load(Ordering::Acquire) {
            let timeout = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(Timespec {
                        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                        tv_nsec: i64::from(left.subsec_nanos()),
                    }),
                    _ => return,
                },
            };
            let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
            match poll(&mut fds, timeout.as_ref()) {
                Err(rustix::io::Errno::INTR) => continue,
                // Readable (exited), timed out, or an error we cannot sleep through: either way
                // the status wait below takes over.
                _ => return,
            }
        }
    }

    /// Blocks until the executor thread stored the status.
    pub(crate) fn wait(&self) -> ExitStatus {
        self.sleep_until_exit(None);
        self.spin
            .poll(Duration::MAX, || self.done.load(Ordering::Acquire));
        let mut s = self.lock();
        loop {
            if let Some(status) = *s {
                drop(s);
                self.note_wait_returned();
                return status;
            }
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            s = self.exited.wait(s).unwrap_or_else(PoisonError::into_inner);
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Like [`wait`](Self::wait), giving up after `timeout`.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        // The deadline first: the spin is part of the timeout, not added to it.
        let deadline = Instant::now().checked_add(timeout);
        self.sleep_until_exit(deadline);
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        self.spin.poll(left, || self.done.load(Ordering::Acquire));
        let mut s = self.lock();
        loop {
            if let Some(status) = *s {
                drop(s);
                self.note_wait_returned();
                return Some(status);
            }
            let left = match deadline {
                Some(d) => d.checked_duration_since(Instant::now())?,
                // A timeout too large to represent: wait without one.
                None => Duration::from_secs(u64::MAX / 4),
            };
            if left.is_zero() {
                return None;
            }
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            s = self
                .exited
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// SIGKILL and blocking reap (the executor is gone, or its loop broke), then stores the
    /// status. Like every other signal by pid, SIGKILL only if the child is still ours: the kernel may
    /// have reaped it already (the host ignores SIGCHLD) and its pid be a stranger's.
    pub(crate) fn kill_and_reap(&self) {
        if !self.same_process() {
            // The pid is someone else's now: neither signal it nor wait for it.
            info!(
                pid = self.pid,
                "executor gone: child was reaped by the kernel"
            );
            self.set_status(lost_status(), true);
            return;
        }
        if self.still_ours() || self.exited_unreaped() {
            // Its whole scope: the group's id is still pinned by the unreaped child.
            let _ = self.signal(libc::SIGKILL);
        }
        let mut reaped = self.reap_gate();
        if *reaped {
            // A waiter reaped it (`waiter_reap`) and stores the status.
            return;
        }
        let (status, lost) = match reap_blocking(self.wait_id()) {
            Some(s) => (exit_status_from(&s), false),
            // Its waiter reaped it meanwhile (`waiter_reap`) and stores the status.
            None if self.waiter_reaps() => return,
            None => (lost_status(), true),
        };
        *reaped = true;
        drop(reaped);
        info!(pid = self.pid, "executor gone: child killed and reaped");
        self.set_status(status, lost);
    }
}

/// Converts a `waitid` result into a std [`ExitStatus`] (the raw wait-status encoding).
pub(crate) fn exit_status_from(status: &rustix::process::WaitIdStatus) -> ExitStatus {
    if let Some(code) = status.exit_status() {
        ExitStatus::from_raw((code & 0xff) << 8)
    } else if let Some(sig) = status.terminating_signal() {
        let core = if status.dumped() { 0x80 } else { 0 };
        ExitStatus::from_raw((sig & 0x7f) | core)
    } else {
        lost_status()
    }
}

/// Waits (blocking) for the child `id` names and reaps it; `None` if it is not ours any more.
pub(crate) fn reap_blocking(id: WaitId<'_>) -> Option<rustix::process::WaitIdStatus> {
    loop {
        match waitid(id.clone(), WaitIdOptions::EXITED) {
            Err(Errno::INTR) => continue,
            Ok(status) => return status,
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Stranger;

    #[test]
    fn wait_timeout_counts_the_spin_in_the_timeout() {
        let spin = Arc::new(SpinPolicy::new(Duration::from_millis(200)));
        let never_exits = ProcState::new(1, Pid::from_raw(1).expect("positive"), None, spin);
        let started = Instant::now();
        assert_eq!(never_exits.wait_timeout(Duration::from_millis(200)), None);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "gave up early: {took:?}"
        );
        assert!(
            took < Duration::from_millis(350),
            "waited the spin on top: {took:?}"
        );
    }

    #[test]
    fn kill_and_reap_never_signals_a_pid_that_is_not_our_child() {
        let stranger = Stranger::new();
        let spin = Arc::new(SpinPolicy::new(Duration::ZERO));
        let state = ProcState::new(1, stranger.pid, None, spin);
        state.kill_and_reap();
        assert!(state.status_lost(), "not our child: its status is lost");
        assert!(
            stranger.stays_alive(Duration::from_millis(300)),
            "SIGKILL reached a process that is not ours"
        );
    }

    #[test]
    fn signal_unreaped_reaches_only_an_unreaped_child_of_ours() {
        use std::os::unix::process::ExitStatusExt;
        let spin = Arc::new(SpinPolicy::new(Duration::ZERO));
        // Not our child (a grandchild): never signalled, whatever the gate says.
        let stranger = Stranger::new();
        let theirs = ProcState::new(1, stranger.pid, None, spin.clone());
        assert_eq!(
            theirs
                .signal_unreaped(libc::SIGKILL)
                .map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
        assert!(
            stranger.stays_alive(Duration::from_millis(300)),
            "SIGKILL reached a process that is not our child"
        );
        // Our child, watched by pid alone: refused while the gate says reaped, sent otherwise.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = Pid::from_raw(child.id() as i32).expect("positive");
        let start_time = crate::sys::procfs::start_time(pid).expect("/proc stat");
        let ours = ProcState::new(2, pid, None, spin).with_start_time(start_time);
        ours.signal_unreaped(0).expect("a probe of a running child");
        *ours.reap_gate() = true;
        assert_eq!(
            ours.signal_unreaped(libc::SIGKILL)
                .map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH)),
            "signalled after the reap"
        );
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the child was signalled"
        );
        *ours.reap_gate() = false;
        ours.signal_unreaped(libc::SIGKILL)
            .expect("SIGKILL to our child");
        let status = child.wait().expect("reap");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    /// Whether `pid` names a live process (not a zombie).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X')
        })
    }

    #[test]
    fn a_leader_reaped_behind_our_back_no_longer_names_its_group() {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::CommandExt;
        // A leader with a member left in its group, which outlives it.
        let mut leader = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        BufReader::new(leader.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the member's pid");
        let member: i32 = line.trim().parse().expect("a pid");
        let state = group_leader_state(leader.id());
        // An exited leader still pins the group: a probe reaches it.
        state
            .signal_process(libc::SIGKILL)
            .expect("kill the leader");
        let start = Instant::now();
        while !state.exited_unreaped() {
            assert!(start.elapsed() < Duration::from_secs(10), "never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        state.signal(0).expect("a zombie leader's group");
        // The host reaps it behind the executor's back (std's waitpid here).
        leader.wait().expect("the host's reap");
        let got = state.signal(libc::SIGKILL).map_err(|e| e.raw_os_error());
        let member_alive = alive(member);
        // The member is the test's to end.
        let _ = rustix::process::kill_process(
            Pid::from_raw(member).expect("positive"),
            rustix::process::Signal::KILL,
        );
        assert_eq!(got, Err(Some(libc::ESRCH)));
        assert!(
            member_alive,
            "the group was signalled after the leader's reap"
        );
    }

    /// The state of child `pid`, leader of its process group, watched by pidfd, killed with
    /// `KillScope::Group`.
    fn group_leader_state(pid: u32) -> ProcState {
        let pid = Pid::from_raw(pid as i32).expect("positive");
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open");
        let spin = Arc::new(SpinPolicy::new(Duration::ZERO));
        let mut state = ProcState::new(1, pid, Some(pidfd), spin);
        state.lifetime.scope = KillScope::Group;
        state
    }

    #[test]
    fn a_group_is_signalled_only_while_its_leader_is_unreaped() {
        use std::os::unix::process::CommandExt;
        // A group leader of ours that no executor tracks: the reap gate alone decides.
        let mut leader = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let state = group_leader_state(leader.id());
        *state.reap_gate() = true;
        assert_eq!(
            state.signal(libc::SIGTERM).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH)),
            "a reaped leader's group id may name a stranger"
        );
        assert!(
            matches!(leader.try_wait(), Ok(None)),
            "the group was signalled"
        );
        *state.reap_gate() = false;
        state
            .signal(libc::SIGTERM)
            .expect("an unreaped leader's group");
        let status = leader.wait().expect("reap");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
    }
}
