//! [`ChildSetup`]: a command's child-side steps, prepared on the caller's thread, and how the
//! Fork and Vfork children apply them.
//!
//! Everything the child needs is made ready before the clone (numbers, C strings, descriptors,
//! sorted), so applying it is a straight line of raw system calls: no allocation, no lock, no
//! libc wrapper that keeps state (glibc's `setuid` would signal every thread of the parent).
//!
//! # The order, in every backend that applies a step
//!
//! 1. stdio onto 0, 1, 2 (`child.rs`), then each extra descriptor onto its number
//!    ([`ChildSetup::install_fds`]), then every other descriptor closed (`child.rs`);
//! 2. [`ChildSetup::apply`]: `umask`; each `setrlimit` (before dropping privilege, which may be
//!    needed to raise a hard limit); `setgroups`, `setgid`, `setuid`, in that order (each needs
//!    the privilege the next one drops); `chdir` (as the new user, as std does, so a directory
//!    the new user may not enter is an error); then the lifetime steps (`lifetime_steps.rs`:
//!    `setsid`, `setpgid`, the parent-death signal and the check that the parent still lives),
//!    after the credentials because a credential change clears a parent-death signal; new steps
//!    go at the end of `apply`;
//! 3. signals reset, then `execve` (`child.rs`).
//!
//! A failed step ends the child before `execve`; the parent learns the step, which item of it
//! (the extra fd, the rlimit) and the errno through the exec-error channel ([`ChildFailure`]).

#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "runs in the child between clone and execve (CLONE_VM: the parent's memory): \
              no panic machinery may be reached from here"
)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use super::child_raw::last_errno;
use super::lifetime_steps::{LifetimeStep, LifetimeSteps};
use crate::error::{CommandOption, SpawnStage};
use crate::resource::Resource;

/// The child-side steps of one command, in the form the child reads. Empty by default: an
/// option-less spawn checks one flag and skips them all.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildSetup {
    /// Extra descriptors, sorted by `target`; each source is above every target and above 2.
    pub(crate) fds: Vec<ExtraFd>,
    pub(crate) umask: Option<u32>,
    pub(crate) rlimits: Vec<(Resource, libc::rlimit64)>,
    pub(crate) groups: Option<Vec<libc::gid_t>>,
    pub(crate) gid: Option<libc::gid_t>,
    pub(crate) uid: Option<libc::uid_t>,
    pub(crate) cwd: Option<CString>,
    /// A new session or process group, the parent-death signal (after the credentials).
    pub(crate) lifetime: LifetimeSteps,
    /// The cgroup v2 the child starts in (`clone3(CLONE_INTO_CGROUP)`: a clone argument, not
    /// a step).
    pub(crate) cgroup: Option<CgroupPlace>,
}

/// A cgroup v2 directory a child is cloned into.
#[derive(Debug, Clone)]
pub(crate) struct CgroupPlace {
    pub(crate) path: std::path::PathBuf,
    /// `O_PATH | O_DIRECTORY`, what `clone3` takes.
    pub(crate) dir: Arc<OwnedFd>,
}

/// Where a Vfork child sharing our descriptor table reads its extra descriptors from: `fds[i]`
/// for extra `i` (a slot of the executor's), and `spare`, the first of `fds.len()` numbers
/// free above every slot, every extra number and the copied part of the table.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExtraSlots<'a> {
    pub(super) fds: &'a [i32],
    pub(super) spare: i32,
}

/// One descriptor passed to the child at a chosen number.
#[derive(Debug, Clone)]
pub(crate) struct ExtraFd {
    pub(crate) target: i32,
    pub(crate) source: Arc<OwnedFd>,
}

impl ChildSetup {
    /// True when there is no process step (umask, rlimits, credentials, cwd) to apply.
    pub(crate) fn has_process_steps(&self) -> bool {
        self.umask.is_some()
            || !self.rlimits.is_empty()
            || self.groups.is_some()
            || self.gid.is_some()
            || self.uid.is_some()
            || self.cwd.is_some()
            || self.lifetime.any()
    }

    /// The highest extra descriptor number asked for (2 when there is none): every descriptor
    /// the child reads from must be above it, or an extra could overwrite it first.
    pub(crate) fn fd_floor(&self) -> i32 {
        self.fds.last().map_or(2, |f| f.target.max(2))
    }

    /// The first option here that glibc's `posix_spawn` has no step for.
    pub(crate) fn first_without_posix_spawn_step(&self) -> Option<CommandOption> {
        if self.uid.is_some() {
            Some(CommandOption::Uid)
        } else if self.gid.is_some() {
            Some(CommandOption::Gid)
        } else if self.groups.is_some() {
            Some(CommandOption::Groups)
        } else if let Some((resource, _)) = self.rlimits.first() {
            Some(CommandOption::Rlimit(*resource))
        } else if self.umask.is_some() {
            Some(CommandOption::Umask)
        } else {
            None
        }
    }

    /// Step 1b: installs each extra descriptor at its number (`dup3`, which clears
    /// close-on-exec on the copy).
    ///
    /// `slots`, when given (the Vfork backend sharing our table), holds the descriptor each
    /// extra is read from instead of its source: one of the executor's low-numbered slots,
    /// which may sit at or below another extra's number. Those are first moved, in the child's
    /// private table, to `spare + index` (numbers the parent checked are free and below
    /// `RLIMIT_NOFILE`), so that no install overwrites a source not yet read and no source is
    /// its own target. Without `slots` the sources are above every number already (request.rs).
    pub(super) fn install_fds(&self, slots: Option<ExtraSlots<'_>>) -> Result<(), ChildFailure> {
        let floor = self.fd_floor();
        let source_of = |index: usize, fd: &ExtraFd| match slots {
            Some(s) => match s.fds.get(index) {
                Some(&slot) if slot <= floor => s.spare.saturating_add(index as i32),
                Some(&slot) => slot,
                None => fd.source.as_raw_fd(),
            },
            None => fd.source.as_raw_fd(),
        };
        if let Some(s) = slots {
            for (index, &slot) in s.fds.iter().enumerate() {
                if slot > floor {
                    continue;
                }
                // SAFETY: dup3 takes integers; `slot` is open in our private copy of the table.
                let ret = unsafe {
                    libc::syscall(
                        libc::SYS_dup3,
                        slot,
                        s.spare.saturating_add(index as i32),
                        libc::O_CLOEXEC,
                    )
                };
                if ret < 0 {
                    return Err(ChildFailure::new(Step::Fd, index, last_errno()));
                }
            }
        }
        for (index, fd) in self.fds.iter().enumerate() {
            let source = source_of(index, fd);
            // SAFETY: dup3 takes integers; the parent keeps `source` open until the child has
            // exec'd or exited.
            let ret = unsafe { libc::syscall(libc::SYS_dup3, source, fd.target, 0) };
            if ret < 0 {
                return Err(ChildFailure::new(Step::Fd, index, last_errno()));
            }
        }
        Ok(())
    }

    /// Step 2: umask, rlimits, credentials, working directory, in that order.
    pub(super) fn apply(&self) -> Result<(), ChildFailure> {
        if let Some(mask) = self.umask {
            // SAFETY: umask takes an integer and cannot fail.
            unsafe { libc::syscall(libc::SYS_umask, mask as libc::c_long) };
        }
        for (index, (resource, limit)) in self.rlimits.iter().enumerate() {
            // SAFETY: prlimit64 on ourselves (pid 0) reads `limit`, which lives in the parent's
            // memory for the whole call, and writes nothing (old limit pointer NULL).
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0 as libc::c_long,
                    resource.as_raw() as libc::c_long,
                    limit as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                )
            };
            if ret < 0 {
                return Err(ChildFailure::new(Step::Setrlimit, index, last_errno()));
            }
        }
        if let Some(groups) = &self.groups {
            // SAFETY: setgroups reads `groups.len()` ids from a buffer the parent keeps alive.
            let ret = unsafe { libc::syscall(SYS_SETGROUPS, groups.len(), groups.as_ptr()) };
            if ret < 0 {
                return Err(ChildFailure::new(Step::Setgroups, 0, last_errno()));
            }
        }
        if let Some(gid) = self.gid {
            // SAFETY: setgid takes an integer; as a raw syscall it changes this process only.
            if unsafe { libc::syscall(SYS_SETGID, gid) } < 0 {
                return Err(ChildFailure::new(Step::Setgid, 0, last_errno()));
            }
        }
        if let Some(uid) = self.uid {
            // SAFETY: as setgid.
            if unsafe { libc::syscall(SYS_SETUID, uid) } < 0 {
                return Err(ChildFailure::new(Step::Setuid, 0, last_errno()));
            }
        }
        if let Some(dir) = &self.cwd {
            // SAFETY: chdir reads a C string the parent keeps alive.
            if unsafe { libc::syscall(libc::SYS_chdir, dir.as_ptr()) } < 0 {
                return Err(ChildFailure::new(Step::Chdir, 0, last_errno()));
            }
        }
        self.lifetime.apply().map_err(|(step, errno)| {
            let step = match step {
                LifetimeStep::Setsid => Step::Setsid,
                LifetimeStep::Setpgid => Step::Setpgid,
                LifetimeStep::ParentDeathSignal => Step::ParentDeathSignal,
            };
            ChildFailure::new(step, 0, errno)
        })
    }
}

// The 32-bit-id calls on the architectures whose plain ones take 16-bit ids.
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
use libc::{SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS, SYS_setuid as SYS_SETUID};
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
use libc::{
    SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS, SYS_setuid32 as SYS_SETUID,
};

/// A step of the child's setup, as carried in a [`ChildFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    Exec = 0,
    Stdio = 1,
    Fd = 2,
    Chdir = 3,
    Setrlimit = 4,
    Setgroups = 5,
    Setgid = 6,
    Setuid = 7,
    Setsid = 8,
    Setpgid = 9,
    ParentDeathSignal = 10,
}

impl Step {
    const ALL: [Step; 11] = [
        Step::Exec,
        Step::Stdio,
        Step::Fd,
        Step::Chdir,
        Step::Setrlimit,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::Setsid,
        Step::Setpgid,
        Step::ParentDeathSignal,
    ];

    pub(crate) fn stage(self) -> SpawnStage {
        match self {
            Step::Exec => SpawnStage::Exec,
            Step::Stdio => SpawnStage::Stdio,
            Step::Fd => SpawnStage::Fd,
            Step::Chdir => SpawnStage::Chdir,
            Step::Setrlimit => SpawnStage::Setrlimit,
            Step::Setgroups => SpawnStage::Setgroups,
            Step::Setgid => SpawnStage::Setgid,
            Step::Setuid => SpawnStage::Setuid,
            Step::Setsid => SpawnStage::Setsid,
            Step::Setpgid => SpawnStage::Setpgid,
            Step::ParentDeathSignal => SpawnStage::ParentDeathSignal,
        }
    }
}

/// Which step of the child failed, on which item, with which errno; packed into the one `i32`
/// the exec-error channel carries (four bytes on the Fork pipe, an atomic for Vfork).
///
/// Layout: bits 0-11 errno (Linux errnos are below 4096), bits 12-22 the item's index (the
/// extra fd or rlimit; saturated), bits 23-28 the [`Step`]; bit 30 stays free for the Vfork
/// backend's unshare marker. A packed value is never 0, since the errno is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChildFailure {
    pub(crate) step: Step,
    pub(crate) index: usize,
    pub(crate) errno: i32,
}

const ERRNO_BITS: u32 = 12;
const INDEX_BITS: u32 = 11;
const STEP_SHIFT: u32 = ERRNO_BITS + INDEX_BITS;

impl ChildFailure {
    pub(crate) fn new(step: Step, index: usize, errno: i32) -> ChildFailure {
        ChildFailure { step, index, errno }
    }

    /// The packed form (see the type's docs).
    pub(crate) fn pack(self) -> i32 {
        let errno = (self.errno.clamp(1, (1 << ERRNO_BITS) - 1)) as u32;
        let index = self.index.min((1 << INDEX_BITS) - 1) as u32;
        (errno | index << ERRNO_BITS | (self.step as u32) << STEP_SHIFT) as i32
    }

    /// Reads a packed value; a step number it does not know reads as `Exec`.
    pub(crate) fn unpack(packed: i32) -> ChildFailure {
        let packed = packed as u32;
        let errno = (packed & ((1 << ERRNO_BITS) - 1)) as i32;
        let index = ((packed >> ERRNO_BITS) & ((1 << INDEX_BITS) - 1)) as usize;
        let step = Step::ALL
            .get(((packed >> STEP_SHIFT) & 0x3f) as usize)
            .copied()
            .unwrap_or(Step::Exec);
        ChildFailure { step, index, errno }
    }
}

#[cfg(test)]
#[allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "the tests run in the test process, not in a child"
)]
mod tests {
    use super::*;

    #[test]
    fn failures_survive_packing() {
        for step in Step::ALL {
            for (index, errno) in [(0, libc::EPERM), (5, libc::EBADF), (2047, 4095)] {
                let f = ChildFailure::new(step, index, errno);
                let packed = f.pack();
                assert_ne!(packed, 0);
                assert_eq!(packed & (1 << 30), 0, "bit 30 is the unshare marker's");
                assert_eq!(ChildFailure::unpack(packed), f);
            }
        }
        // A plain errno (what an exec failure always was) reads as Exec.
        assert_eq!(
            ChildFailure::unpack(libc::ENOENT),
            ChildFailure::new(Step::Exec, 0, libc::ENOENT)
        );
        // An index past the field saturates instead of spilling into the step.
        let big = ChildFailure::new(Step::Fd, 1 << 20, libc::EBADF).pack();
        assert_eq!(ChildFailure::unpack(big).step, Step::Fd);
    }
}
