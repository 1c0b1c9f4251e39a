//! A blocking waiter reaps its own child (pidfd mode): the executor thread is not woken for a
//! child whose caller is already waiting for it.
//!
//! Without this, every spawn+wait costs two wake-ups on two threads: the loop, woken by the
//! child's pidfd, reaps and stores the status; the caller, woken by the same exit, waits for that
//! store. On a 2-core VM the loop's wake-up (an idle vCPU brought back) and its pass cost about
//! as much CPU as the whole raw spawn+wait, and the caller waits for them. A thread that blocks
//! in [`ExecHandle::wait`](crate::ExecHandle::wait) can reap by itself instead, as a raw
//! `waitpid` caller does: it takes the child's pidfd out of the loop's poll set, sleeps in a
//! blocking `waitid(P_PIDFD)` that also reaps, and takes the entry out of the table.
//!
//! Only for a child the loop has nothing else to do for at its reap: watched by pidfd, no
//! deadline (its timer entry is the loop's), a kill that reaches only the child (a group or
//! cgroup scope must be finished off before the reap, by the loop), no cgroup of its own to
//! remove. The loop still reaps every other child, and this one too whenever it gets there
//! first (an escalation, `stop()`, the executor's drop): the kernel lets one `waitid` have the
//! status; a reaper that gets `ECHILD` for a child a waiter claimed leaves the status to the
//! waiter, and the waiter that gets `ECHILD` looks at the reap gate, which the one who reaped
//! set. A reap made here tells the loop only when the loop has this child in its books: a kill
//! escalation under way, or a stop waiting for the table to empty.

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
        let Some(shared) = executor.upgrade() else {
            // Gone: its drop reaped every child and stored the statuses.
            state.release_waiter_reap();
            return None;
        };
        // Out of the loop's poll set: its wake-up for this exit would find nothing to do.
        if let Some(pidfd) = &state.pidfd {
            shared.poller().remove(pidfd);
        }
    }
    // One blocking waitid, as a raw waitpid caller: the wake-up and the reap in one system
    // call. Not under the reap gate (it would hold off every signal for the child's whole
    // life): a reaper that finds the child gone meanwhile (ECHILD) and sees our claim leaves
    // the status to us, and we look at the gate once back.
    let reaped = reap_blocking(state);
    let exited_at = state.timeline.as_ref().map(|_| Instant::now());
    let (status, lost, rusage) = {
        let mut gate = state.reap_gate();
        match reaped {
            Reap::Exited(status, rusage) => {
                *gate = true;
                (status, false, Some(rusage))
            }
            // Reaped properly by another (the loop, the executor's drop): it stores the status.
            Reap::Lost(_) if *gate => return None,
            Reap::Lost(e) => {
                *gate = true;
                warn!(
                    pid = state.pid,
                    error = %e,
                    "child reaped by someone else (SIGCHLD ignored?); status lost, reported as exit code 255"
                );
                (lost_status(), true, None)
            }
            Reap::NotYet => {
                drop(gate);
                // No status for a blocking wait (a kernel that should not be): back to the
                // loop, which re-checks such a child on its timer.
                give_back(executor, state);
                return None;
            }
        }
    };
    if let Some(usage) = rusage {
        state.set_rusage(usage);
    }
    if let (Some(t), Some(at)) = (&state.timeline, exited_at) {
        t.exit_observed(at);
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

enum Reap {
    Exited(ExitStatus, ResourceUsage),
    /// No status for us (`ECHILD`): the loop or the executor's drop reaped it, or the kernel
    /// or another waiter of the process took it.
    Lost(Errno),
    /// No status, and no error.
    NotYet,
}

/// `waitid(P_PIDFD, WEXITED)` with its resource usage: sleeps until the child exits, and reaps it.
fn reap_blocking(state: &ProcState) -> Reap {
    use std::os::unix::process::ExitStatusExt;
    let Some(pidfd) = &state.pidfd else {
        return Reap::NotYet;
    };
    loop {
        return match crate::sys::wait::waitid_rusage_blocking(pidfd.as_fd()) {
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
/// re-checks it on its timer, as any stalled child). Without the claim, a reaper that finds the
/// child gone stores the lost status itself.
fn give_back(executor: &Weak<Shared>, state: &ProcState) {
    state.release_waiter_reap();
    if let Some(shared) = executor.upgrade() {
        shared.queue().push_look(state.serial);
    }
}
