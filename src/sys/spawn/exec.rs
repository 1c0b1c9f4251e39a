//! What the spawn backends share: the backend names, the child's stdio, the program to run (a
//! plain view the layer above builds), a started child and a failed spawn. A leaf of
//! `sys/spawn/` beside `setup.rs`: the backends and the dispatch in `mod.rs` import it, it
//! imports none of them.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::process::Pid;

use super::setup::{ChildFailure, ChildSetup};
use crate::error::{SpawnError, SpawnStage};
use crate::sys::CStringArray;

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
    pub(super) fn raw(&self) -> [i32; 3] {
        self.fds.map(|fd| match fd {
            ChildFd::Inherit => -1,
            ChildFd::Fd(fd) => fd.as_raw_fd(),
            ChildFd::Stdout => 1,
        })
    }
}

/// What a backend runs: the program's path, its argument vector and environment as C strings,
/// and its child-side steps. Borrowed from the caller's prepared command (which converts itself
/// into this), so that the OS layer knows nothing of how commands are prepared.
#[derive(Clone, Copy)]
pub(crate) struct Program<'a> {
    /// The file to execute.
    pub(crate) path: &'a CStr,
    /// `argv[0..]`.
    pub(crate) argv: &'a [CString],
    /// The child's environment; `None` for the parent's, read at spawn time.
    pub(crate) envp: Option<&'a CStringArray>,
    /// What the child does between clone and execve besides stdio.
    pub(crate) setup: &'a ChildSetup,
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
    /// Signal mode: the pidfd the clone gave, held only to confirm the child's start time with
    /// (`naming::start_time`), then closed.
    pub(crate) confirm: Option<OwnedFd>,
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

    /// What a child reported (see [`ChildFailure`]).
    pub(super) fn from_child(packed: i32) -> SpawnFailure {
        let f = ChildFailure::unpack(packed);
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

/// Reaps a child whose exec failed (it exits at once with 127), blocking: it is already dying.
pub(super) fn reap_failed_child(pid: Pid) {
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
