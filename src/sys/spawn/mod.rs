//! The spawn backends, picked in one place: [`Spawner::spawn`].
//!
//! | backend | how | pidfd | cost grows with parent memory |
//! |---|---|---|---|
//! | [`SpawnBackend::Vfork`] | `clone(CLONE_VM \| CLONE_VFORK \| CLONE_PIDFD)` on a reused stack | atomic | no |
//! | [`SpawnBackend::PosixSpawn`] | glibc `posix_spawn` (itself a vfork-style clone) | `pidfd_open` after | no |
//! | [`SpawnBackend::Fork`] | raw `clone(SIGCHLD)` (a fork without atfork handlers) + `execve` | `pidfd_open` after | yes (page tables are copied) |
//!
//! Every backend gives the child fds 0, 1, 2 only, an empty signal mask and default dispositions
//! for every signal, and reports an exec failure as an errno to the parent, never as a child that
//! exits 127. A backend that cannot keep those promises on this system (PosixSpawn off glibc, or
//! on a glibc older than 2.34) fails with [`SpawnError::Unsupported`](crate::SpawnError), naming
//! itself, instead of spawning a child that inherits descriptors.
#![allow(unsafe_code)]

mod child;
mod fork;
mod lifetime_steps;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod posix_spawn;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[path = "posix_spawn_unsupported.rs"]
mod posix_spawn;
mod setup;
mod vfork;

pub(crate) use lifetime_steps::{LifetimeSteps, ParentDeath};
pub(crate) use setup::{CgroupPlace, ChildSetup, ExtraFd};

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::process::Pid;

use crate::error::{SpawnError, SpawnStage};
use crate::request::PreparedCommand;
use crate::sys::BlockAllSignals;

/// How the executor thread creates a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpawnBackend {
    /// glibc's `posix_spawn`, with file actions for the redirections and attributes that empty the
    /// signal mask and reset every signal. glibc runs the child on a fresh stack in a vfork-style
    /// clone, so the cost does not grow with the parent's memory. Needs Linux with glibc 2.34 or
    /// later (`posix_spawn_file_actions_addclosefrom_np`, looked up at run time); elsewhere a spawn
    /// fails with [`SpawnError::Unsupported`](crate::SpawnError::Unsupported).
    PosixSpawn,
    /// `fork` + `execve` (rustix). The child makes raw syscalls only and reports an exec failure
    /// through a close-on-exec pipe. Copies the parent's page tables: slow for large parents.
    Fork,
    /// `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` on one preallocated stack. The pidfd comes
    /// back with the pid (no `pidfd_open`, no window where the child is untracked) and nothing is
    /// mapped per spawn. Needs Linux 5.2 for `CLONE_PIDFD`. The fastest backend, and the default.
    #[default]
    Vfork,
}

impl SpawnBackend {
    /// Every backend, for tests and benchmarks that compare them.
    pub const ALL: [SpawnBackend; 3] = [
        SpawnBackend::PosixSpawn,
        SpawnBackend::Fork,
        SpawnBackend::Vfork,
    ];

    /// A short lowercase name (`posix_spawn`, `fork`, `vfork`).
    pub fn name(self) -> &'static str {
        match self {
            SpawnBackend::PosixSpawn => "posix_spawn",
            SpawnBackend::Fork => "fork",
            SpawnBackend::Vfork => "vfork",
        }
    }
}

/// What the child gets as one of 0, 1 and 2.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChildFd<'a> {
    /// The parent's descriptor of that number, untouched.
    Inherit,
    /// This descriptor, above 2 and above every extra descriptor's number in the parent.
    Fd(BorrowedFd<'a>),
    /// stderr only: the child's fd 1 as it is once stdout is installed (`2>&1`).
    Stdout,
}

/// The three descriptors the child gets as 0, 1 and 2.
pub(crate) struct ChildStdio<'a> {
    pub(crate) fds: [ChildFd<'a>; 3],
    /// The executor's `/dev/null`, which the Vfork backend's slots rest on between spawns.
    pub(crate) null: BorrowedFd<'a>,
}

impl ChildStdio<'_> {
    /// What the child code reads: a descriptor to `dup2` onto 0, 1, 2 in that order, or -1 to
    /// leave that number alone.
    fn raw(&self) -> [i32; 3] {
        self.fds.map(|fd| match fd {
            ChildFd::Inherit => -1,
            ChildFd::Fd(fd) => fd.as_raw_fd(),
            ChildFd::Stdout => 1,
        })
    }
}

/// The first option of `setup` that `backend` cannot apply on this system, if any. Checked on
/// the caller's thread, before the request is queued.
pub(crate) fn unsupported_option(
    backend: SpawnBackend,
    setup: &ChildSetup,
) -> Option<crate::error::CommandOption> {
    match backend {
        SpawnBackend::PosixSpawn => posix_spawn::unsupported_option(setup),
        SpawnBackend::Fork | SpawnBackend::Vfork => {
            // clone3 with CLONE_INTO_CGROUP (Linux 5.7), not refused by a seccomp filter; the
            // Vfork shape also needs the assembly that starts the child on its stack.
            let clone3 = crate::sys::clone3::supported()
                && (backend == SpawnBackend::Fork || crate::sys::clone3::VFORK_SHAPE);
            match &setup.cgroup {
                Some(place) if !clone3 => {
                    Some(crate::error::CommandOption::Cgroup(place.path.clone()))
                }
                _ => None,
            }
        }
    }
}

/// What to execute, prepared before the fork: the fork and vfork children read only this.
pub(super) struct Exec<'a> {
    pub(super) path: &'a std::ffi::CStr,
    pub(super) argv: *const *const libc::c_char,
    pub(super) envp: *const *const libc::c_char,
    /// Signals the child must reset (bit `n - 1` for signal `n`).
    pub(super) non_default_signals: u64,
    /// The command's steps besides stdio.
    pub(super) setup: &'a ChildSetup,
}

/// A child that was started: its pid and, from the Vfork backend, its pidfd.
pub(crate) struct Spawned {
    pub(crate) pid: Pid,
    pub(crate) pidfd: Option<OwnedFd>,
}

/// Where a spawn failed and with which errno.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnFailure {
    pub(crate) stage: SpawnStage,
    pub(crate) errno: i32,
    /// Set when the backend cannot work on this system at all: which one, and why. `stage` and
    /// `errno` then say `Spawn` and ENOSYS, so that code reading only those still gets
    /// [`io::ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported).
    pub(crate) unsupported: Option<(SpawnBackend, &'static str)>,
    /// Which item of the stage failed (the stdio stream, the extra fd, the rlimit); 0 otherwise.
    pub(crate) index: usize,
}

impl SpawnFailure {
    pub(crate) fn new(stage: SpawnStage, errno: i32) -> SpawnFailure {
        SpawnFailure {
            stage,
            errno,
            unsupported: None,
            index: 0,
        }
    }

    /// `backend` cannot run here, for `reason`.
    pub(crate) fn unsupported(backend: SpawnBackend, reason: &'static str) -> SpawnFailure {
        SpawnFailure {
            stage: SpawnStage::Spawn,
            errno: libc::ENOSYS,
            unsupported: Some((backend, reason)),
            index: 0,
        }
    }

    /// What a child reported (see [`setup::ChildFailure`]).
    fn from_child(packed: i32) -> SpawnFailure {
        let f = setup::ChildFailure::unpack(packed);
        SpawnFailure {
            stage: f.step.stage(),
            errno: f.errno,
            unsupported: None,
            index: f.index,
        }
    }

    /// The public error for a spawn of `program` that failed this way.
    pub(crate) fn into_error(self, program: &std::ffi::OsString) -> SpawnError {
        match self.unsupported {
            Some((backend, reason)) => SpawnError::Unsupported {
                program: program.clone(),
                backend: backend.name(),
                reason,
            },
            None => SpawnError::from_errno(program, self.stage, self.errno),
        }
    }
}

/// Per-thread spawn state reused across spawns: the argv pointer array, posix_spawn attributes and
/// the vfork child stack. One executor thread owns one, so nothing is allocated per spawn.
pub(crate) struct Spawner {
    argv: Vec<*const libc::c_char>,
    dispositions: super::SignalDispositions,
    posix: Option<posix_spawn::Attributes>,
    vfork_stack: Option<vfork::ChildStack>,
    vfork_slots: Option<vfork::StdioSlots>,
}

impl Spawner {
    pub(crate) fn new() -> Spawner {
        Spawner {
            argv: Vec::new(),
            dispositions: super::SignalDispositions::new(),
            posix: None,
            vfork_stack: None,
            vfork_slots: None,
        }
    }

    /// Starts `command` with `stdio` through `backend`. `clone_pidfd` asks the Vfork backend for
    /// an atomic pidfd (CLONE_PIDFD); it is false when the executor watches children by SIGCHLD.
    pub(crate) fn spawn(
        &mut self,
        backend: SpawnBackend,
        command: &PreparedCommand,
        stdio: &ChildStdio<'_>,
        clone_pidfd: bool,
    ) -> Result<Spawned, SpawnFailure> {
        self.argv.clear();
        self.argv.extend(command.argv.iter().map(|a| a.as_ptr()));
        self.argv.push(std::ptr::null());
        let argv = self.argv.as_ptr();
        let envp = match &command.envp {
            Some(envp) => envp.as_ptr(),
            None => super::environ(),
        };
        match backend {
            SpawnBackend::PosixSpawn => {
                let attrs = match &mut self.posix {
                    Some(a) => a,
                    slot @ None => slot.insert(posix_spawn::Attributes::new().map_err(spawn_err)?),
                };
                let steps = &command.setup.lifetime;
                attrs
                    .set_lifetime(steps.setsid, steps.process_group)
                    .map_err(spawn_err)?;
                posix_spawn::spawn(attrs, &command.path, argv, envp, stdio, &command.setup)
            }
            SpawnBackend::Fork => {
                // Block first, then sample: see SignalDispositions::non_default.
                let blocked = BlockAllSignals::new();
                let exec = Exec {
                    path: &command.path,
                    argv,
                    envp,
                    non_default_signals: self.dispositions.non_default(&blocked),
                    setup: &command.setup,
                };
                fork::spawn(&exec, stdio, &blocked)
            }
            SpawnBackend::Vfork => {
                let stack = match &mut self.vfork_stack {
                    Some(s) => s,
                    slot @ None => slot.insert(vfork::ChildStack::new().map_err(spawn_err)?),
                };
                if self.vfork_slots.is_none() {
                    // Without slots (out of fds) the clone copies the whole table: slower, fine.
                    self.vfork_slots = vfork::StdioSlots::new(stdio.null).ok();
                }
                let blocked = BlockAllSignals::new();
                let exec = Exec {
                    path: &command.path,
                    argv,
                    envp,
                    non_default_signals: self.dispositions.non_default(&blocked),
                    setup: &command.setup,
                };
                let slots = self.vfork_slots.as_mut();
                vfork::spawn(stack, slots, &exec, stdio, clone_pidfd, &blocked)
            }
        }
    }
}

fn spawn_err(errno: rustix::io::Errno) -> SpawnFailure {
    SpawnFailure::new(SpawnStage::Spawn, errno.raw_os_error())
}

/// Reaps a child whose exec failed (it exits at once with 127), blocking: it is already dying.
fn reap_failed_child(pid: Pid) {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    while let Err(rustix::io::Errno::INTR) = waitid(WaitId::Pid(pid), WaitIdOptions::EXITED) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_failure_names_the_backend_and_says_unsupported() {
        let program = std::ffi::OsString::from("prog");
        let failure = SpawnFailure::unsupported(SpawnBackend::PosixSpawn, "no such libc function");
        let e = failure.into_error(&program);
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            "prog: the posix_spawn spawn backend cannot run here: no such libc function"
        );
        // Code that reads only stage and errno still gets the kind right.
        let plain = SpawnError::from_errno(&program, failure.stage, failure.errno);
        assert_eq!(plain.kind(), std::io::ErrorKind::Unsupported);
    }
}
