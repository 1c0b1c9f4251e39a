//! The child-side lifetime steps: a new session or process group, and the parent-death signal.
//!
//! Applied in this order, after the credentials (a credential change clears the parent-death
//! signal, so it must come last):
//! 1. `setsid()` (the child leads a new session and a new process group);
//! 2. `setpgid(0, pgid)` (0: a new group led by the child, std's meaning), unless `setsid` already
//!    made the child a group leader and no other group was asked for;
//! 3. `prctl(PR_SET_PDEATHSIG, signal)`, then `getppid()` compared with the parent's pid taken
//!    before the clone: if the parent died before the prctl (the race bubblewrap met), no signal
//!    will ever come, so the child exits at once.
//!
//! Raw system calls only (see `child.rs`).

#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "runs in the child between clone and execve (CLONE_VM: the parent's memory): \
              no panic machinery may be reached from here"
)]

use super::child_raw::{exit_now_with, last_errno};

/// `PR_SET_PDEATHSIG` from `linux/prctl.h`.
const PR_SET_PDEATHSIG: libc::c_long = 1;

/// The status a child exits with when its parent was already gone before the parent-death signal
/// was set (no one reads it but the reaper that inherited the child).
const ORPHANED_STATUS: i32 = 1;

/// The lifetime steps of one command, prepared before the clone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LifetimeSteps {
    pub(crate) setsid: bool,
    /// `setpgid(0, pgid)`.
    pub(crate) process_group: Option<i32>,
    /// The signal, and the pid of the process that spawns (taken before the clone).
    pub(crate) parent_death: Option<ParentDeath>,
}

/// What `parent_death_signal` needs in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParentDeath {
    pub(crate) signal: i32,
    pub(crate) parent: i32,
}

/// Which lifetime step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LifetimeStep {
    Setsid,
    Setpgid,
    ParentDeathSignal,
}

impl LifetimeSteps {
    /// Whether there is anything to do.
    pub(crate) fn any(&self) -> bool {
        *self != LifetimeSteps::default()
    }

    /// Applies the steps in the documented order; the first failure is returned with its errno.
    /// Does not return if the parent already died.
    pub(super) fn apply(&self) -> Result<(), (LifetimeStep, i32)> {
        if self.setsid {
            // SAFETY: setsid takes no argument and changes only this (child) process.
            if unsafe { libc::syscall(libc::SYS_setsid) } < 0 {
                return Err((LifetimeStep::Setsid, last_errno()));
            }
        }
        // With setsid and group 0 the child already leads a new group.
        if let Some(pgid) = self.process_group.filter(|&g| !(self.setsid && g == 0)) {
            // SAFETY: setpgid takes two integers and changes only this (child) process.
            if unsafe { libc::syscall(libc::SYS_setpgid, 0, pgid) } < 0 {
                return Err((LifetimeStep::Setpgid, last_errno()));
            }
        }
        if let Some(death) = self.parent_death {
            // SAFETY: prctl with PR_SET_PDEATHSIG takes integers and sets a flag of this process.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_prctl,
                    PR_SET_PDEATHSIG,
                    death.signal as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                )
            };
            if ret < 0 {
                return Err((LifetimeStep::ParentDeathSignal, last_errno()));
            }
            // SAFETY: getppid takes no argument and cannot fail.
            let parent = unsafe { libc::syscall(libc::SYS_getppid) } as i32;
            if parent != death.parent {
                exit_now_with(ORPHANED_STATUS);
            }
        }
        Ok(())
    }
}
