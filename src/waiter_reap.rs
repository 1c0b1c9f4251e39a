//! A blocking waiter reaps its own child (pidfd mode): the executor thread is not woken for a
//! child whose caller is already waiting for it.
//!
//! Without this, every spawn+wait costs two wake-ups on two threads: the loop, woken by the
//! child's pidfd, reaps and stores the status; the caller, woken by the same exit, waits for that
//! store. On a 2-core VM the loop's wake-up (an idle vCPU brought back) and its pass cost about
//! as much CPU as the whole raw spawn+wait, and the caller waits for them. A thread that blocks
//! in [`ExecHandle::wait`](crate::ExecHandle::wait) can reap by itself instead, as a raw
//! `waitpid` caller does: it takes the child's pidfd out of the loop's poll set, sleeps on the
//! pidfd, reaps under the child's reap gate, and takes the entry out of the table.
//!
//! Only for a child the loop has nothing else to do for at its reap: watched by pidfd, no
//! deadline (its timer entry is the loop's), a kill that reaches only the child (a group or
//! cgroup scope must be finished off before the reap, by the loop), no cgroup of its own to
//! remove. The loop still reaps every other child, and this one too whenever it gets there
//! first (an escalation, `stop()`, the executor's drop): the reap gate decides who reaps, and
//! the one who reaps stores the status. A reap made here tells the loop only when the loop has
//! this child in its books: a kill escalation under way, or a stop waiting for the table to empty.

use std::os::fd::AsFd;
use std::process::ExitStatus;
use std::sync::{Arc, Weak};
use std::time::Instant;

use rustix::io::Errno;
use tracing::warn;

use crate::proc_state::{ProcState, lost_status};
use crate::rusage::ResourceUsage;
use crate::shared::Shared;

/// Waits for `state`'s child and reaps it on this thread, if it may (see the module docs);
/// `None` when it may not, or when another reaper got there first: the caller then waits for
/// the stored status as usual.
pub(crate) fn wait_and_reap(executor: &Weak<Shared>, state: &Arc<ProcState>) -> Option<ExitStatus> {
    if !may_reap_here(state) || !state.claim_waiter_reap() {
        return None;
    }
    {
        // Not held while we sleep: dropping the last executor must still kill and reap.
        let shared = executor.upgrade()?;
        // Out of the loop's poll set: its wake-up for this exit would find nothing to do.
        if let Some(pidfd) = &state.pidfd {
            shared.poller().remove(pidfd);
        }
    }
    let Some(exited_at) = sleep_until_exited(state) else {
        give_back(executor, state);
        return None;
    };
    let reaped = {
        let mut gate = state.reap_gate();
        if *gate {
            // The loop (an escalation, stop) or the executor's drop reaped it: it stores the status.
            return None;
        }
        let reaped = reap_now(state);
        *gate = !matches!(reaped, Reap::NotYet);
        reaped
    };
    let (status, lost, rusage) = match reaped {
        Reap::Exited(status, rusage) => (status, false, Some(rusage)),
        Reap::Lost(e) => {
            warn!(
                pid = state.pid,
                error = %e,
                "child reaped by someone else (SIGCHLD ignored?); status lost, reported as exit code 255"
            );
            (lost_status(), true, None)
        }
        Reap::NotYet => {
            // Readable without a status (a tracer holds the zombie): back to the loop, which
            // re-checks such a child on its timer.
            give_back(executor, state);
            return None;
        }
    };
    if let Some(usage) = rusage {
        state.set_rusage(usage);
    }
    if let Some(t) = &state.timeline {
        t.exit_observed(exited_at);
    }
    let entry = executor.upgrade().map(|shared| {
        let entry = shared.table().remove(state.serial);
        // The loop keeps this child in its books while it escalates a kill on it, or while a
        // stop waits for the table to empty: tell it, so that it forgets the deadline and looks.
        if state.escalated() || shared.queue().is_closed() {
            shared.queue().push_look(state.serial);
        }
        entry
    });
    state.set_status(status, lost);
    // Dropped once the status is out (see `Entry`): freeing it is no part of the wait.
    drop(entry);
    Some(status)
}

/// Whether the loop has nothing to do at this child's reap that a waiter could not do.
fn may_reap_here(state: &ProcState) -> bool {
    state.pidfd.is_some()
        && state.lifetime.timeout.is_none()
        && !state.lifetime.reaches_beyond_child()
        && !state.lifetime.owns_cgroup
        && state.status().is_none()
        && state.check_owner().is_ok()
}

/// Sleeps until the pidfd turns readable (the child exited); the instant it woke. `None` if the
/// poll fails for another reason than a signal (the caller falls back to the loop's reap).
fn sleep_until_exited(state: &ProcState) -> Option<Instant> {
    use rustix::event::{PollFd, PollFlags, poll};
    let pidfd = state.pidfd.as_ref()?;
    loop {
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => return Some(Instant::now()),
            Err(Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

enum Reap {
    Exited(ExitStatus, ResourceUsage),
    /// No status for us: the kernel or another waiter of the process took it.
    Lost(Errno),
    /// Exited, yet no status yet (a tracer holds it).
    NotYet,
}

/// `waitid(P_PIDFD, WEXITED | WNOHANG)` with its resource usage; under the reap gate.
fn reap_now(state: &ProcState) -> Reap {
    use std::os::unix::process::ExitStatusExt;
    let Some(pidfd) = &state.pidfd else {
        return Reap::NotYet;
    };
    loop {
        return match crate::sys::wait::waitid_rusage(pidfd.as_fd()) {
            Ok(Some(r)) => Reap::Exited(
                ExitStatus::from_raw(r.raw_status),
                ResourceUsage::from_raw(&r.rusage),
            ),
            Ok(None) => Reap::NotYet,
            Err(Errno::INTR) => continue,
            Err(e) => Reap::Lost(e),
        };
    }
}

/// Hands the child back to the loop, which looks at it at once (and, if it still has no status,
/// re-checks it on its timer, as any stalled child).
fn give_back(executor: &Weak<Shared>, state: &ProcState) {
    if let Some(shared) = executor.upgrade() {
        shared.queue().push_look(state.serial);
    }
}
