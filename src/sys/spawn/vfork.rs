//! The Vfork backend: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` on a reused stack.
//!
//! The child shares our memory until it execs or exits, and the calling thread is suspended until
//! then, so the child can read its [`ChildPlan`] from our stack and store an exec errno into it. The
//! kernel writes the pidfd atomically with the clone: the child is never running untracked.
//! Other threads of the parent keep running; the child touches nothing of theirs.

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use rustix::process::Pid;

use super::child::{ChildPlan, ExecErrorReport, exec_child};
use super::{ChildStdio, SpawnFailure, Spawned};
use crate::error::SpawnStage;
use crate::sys::BlockAllSignals;

/// Size of the child's stack. The child runs a few dozen syscalls and no deep calls.
const STACK_SIZE: usize = 64 * 1024;
/// One guard page at the bottom, so an overflow faults instead of writing over a neighbour.
const GUARD_SIZE: usize = 4096;

/// A stack mapped once and reused for every clone made by one thread.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    pub(super) fn new() -> Result<ChildStack, rustix::io::Errno> {
        let len = STACK_SIZE + GUARD_SIZE;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )?
        };
        let stack = ChildStack { base, len };
        // SAFETY: the first page of the mapping just created belongs to us alone.
        unsafe { rustix::mm::mprotect(base, GUARD_SIZE, MprotectFlags::empty())? };
        Ok(stack)
    }

    /// The initial stack pointer: the top of the mapping (stacks grow down), 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new(); no child runs on it any more (each
        // clone returns only after its child exec'd or exited).
        unsafe {
            let _ = rustix::mm::munmap(self.base, self.len);
        }
    }
}

extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the &ChildPlan passed to clone below; the parent is suspended (CLONE_VFORK)
    // so the plan outlives this use.
    unsafe { exec_child(&*(arg as *const ChildPlan<'_>)) }
}

pub(super) fn spawn(
    stack: &mut ChildStack,
    path: &CStr,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdio: &ChildStdio<'_>,
    clone_pidfd: bool,
    non_default_signals: u64,
) -> Result<Spawned, SpawnFailure> {
    let exec_errno = AtomicI32::new(0);
    let plan = ChildPlan {
        path,
        argv,
        envp,
        stdio: stdio.raw(),
        non_default_signals,
        report: ExecErrorReport::Shared(&exec_errno),
    };
    let mut pidfd: libc::c_int = -1;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if clone_pidfd {
        flags |= libc::CLONE_PIDFD;
    }
    let ret = {
        let _blocked = BlockAllSignals::new();
        // SAFETY: the stack is our own mapping, unused by anyone else; child_entry only runs
        // exec_child (raw syscalls, never returns); `plan` and `pidfd` live on our stack until the
        // clone returns, which CLONE_VFORK delays until the child exec'd or exited.
        unsafe {
            libc::clone(
                child_entry,
                stack.top(),
                flags,
                &plan as *const ChildPlan<'_> as *mut libc::c_void,
                &mut pidfd as *mut libc::c_int,
            )
        }
    };
    if ret < 0 {
        return Err(SpawnFailure {
            stage: SpawnStage::Spawn,
            errno: std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EAGAIN),
        });
    }
    // SAFETY: with CLONE_PIDFD and a successful clone, the kernel stored a new pidfd that nothing
    // else owns.
    let pidfd: Option<OwnedFd> = clone_pidfd.then(|| unsafe { crate::sys::own_fd(pidfd) });
    let Some(pid) = Pid::from_raw(ret) else {
        return Err(SpawnFailure {
            stage: SpawnStage::Spawn,
            errno: libc::EINVAL,
        });
    };
    let errno = exec_errno.load(Ordering::Acquire);
    if errno != 0 {
        super::reap_failed_child(pid);
        return Err(SpawnFailure {
            stage: SpawnStage::Exec,
            errno,
        });
    }
    let Some(pidfd) = pidfd else {
        return Ok(Spawned { pid, pidfd: None });
    };
    match crate::sys::above_stdio(pidfd) {
        Ok(pidfd) => Ok(Spawned {
            pid,
            pidfd: Some(pidfd),
        }),
        Err(e) => {
            // Could not move the pidfd above 2 (EMFILE): the child is ours and unreaped, so its
            // pid is safe to signal; kill and reap it so nothing runs untracked.
            crate::sys::kill_unreaped_child(pid);
            super::reap_failed_child(pid);
            Err(SpawnFailure {
                stage: SpawnStage::Pidfd,
                errno: e.raw_os_error().unwrap_or(libc::EMFILE),
            })
        }
    }
}
