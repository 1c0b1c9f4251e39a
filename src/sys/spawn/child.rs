//! The child's straight line between fork/clone and execve, shared by the Fork and Vfork backends.
//!
//! Everything here runs in a child that shares nothing safe with Rust's runtime: after a raw fork
//! other threads' locks may be held forever, and under CLONE_VM the child even shares the parent's
//! memory and TLS. So: no allocation, no locks, no tracing, no panics, no libc calls that touch
//! state — only rustix's raw syscalls (its linux_raw backend never touches errno) and one
//! `syscall(2)` for close_range, which rustix lacks.

use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys::raw_runtime::{
    How, KERNEL_SIG_DFL, KernelSigSet, KernelSigaction, KernelSigactionFlags,
};

/// How the child tells the parent that execve failed.
pub(super) enum ExecErrorReport<'a> {
    /// Write the errno (4 bytes, native endian) to this close-on-exec pipe (fork).
    Pipe(BorrowedFd<'a>),
    /// Store the errno here; the parent reads it after the vfork-style clone returns.
    Shared(&'a AtomicI32),
}

/// Everything the child needs, prepared by the parent before the fork.
pub(super) struct ChildPlan<'a> {
    pub(super) path: &'a CStr,
    pub(super) argv: *const *const libc::c_char,
    pub(super) envp: *const *const libc::c_char,
    /// Descriptors to install as 0, 1, 2; all are above 2 so `dup2` always clears CLOEXEC.
    pub(super) stdio: [i32; 3],
    pub(super) report: ExecErrorReport<'a>,
    /// Signals whose disposition is not SIG_DFL in the parent (bit `n - 1` for signal `n`): the
    /// only ones the child must reset. All ones when unknown.
    pub(super) non_default_signals: u64,
    /// `Some(top)` when the child was cloned with CLONE_FILES: it still shares the parent's
    /// descriptor table and must first take a private copy of descriptors `0..=top` (the `stdio`
    /// sources are all at most `top`) before touching any descriptor.
    pub(super) shared_fd_table: Option<u32>,
}

/// Set in the errno a Shared report carries when the child could not unshare its descriptor table
/// (CLOSE_RANGE_UNSHARE needs Linux 5.9; ENOMEM is possible too): the parent then retries without
/// CLONE_FILES. The low bits hold the errno.
pub(super) const UNSHARE_FAILED: i32 = 1 << 30;

/// Highest signal number on Linux (SIGRTMAX).
const NSIG: i32 = 64;

/// Sets up the child and execs; on failure reports the errno and exits 127.
///
/// # Safety
/// Call only in a freshly forked/cloned child, with `plan`'s pointers valid (NUL-terminated argv
/// and envp arrays of C strings).
pub(super) unsafe fn exec_child(plan: &ChildPlan<'_>) -> ! {
    // SAFETY: see each call; all are raw syscalls on descriptors the plan keeps open.
    let errno = unsafe { prepare_and_exec(plan) };
    match plan.report {
        ExecErrorReport::Pipe(fd) => {
            let _ = rustix::io::write(fd, &errno.to_ne_bytes());
        }
        ExecErrorReport::Shared(slot) => slot.store(errno, Ordering::Release),
    }
    crate::sys::raw_runtime::exit_group(127)
}

/// Installs stdio, closes every other descriptor, resets signals and execs. Returns the errno of
/// the first step that failed.
///
/// # Safety
/// As [`exec_child`].
unsafe fn prepare_and_exec(plan: &ChildPlan<'_>) -> i32 {
    if let Some(top) = plan.shared_fd_table {
        // Copies only descriptors below top + 1 into a private table (close_range(2): with
        // CLOSE_RANGE_UNSHARE and last = ~0, the kernel unshares just the first `first` fds):
        // the cost no longer grows with the number of fds the parent holds, e.g. one pidfd per
        // tracked child. On failure nothing here may touch the table we share with the parent.
        // SAFETY: close_range takes integers only.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                top + 1,
                u32::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            )
        };
        if ret != 0 {
            // SAFETY: reads the errno the failed syscall just set (our TLS slot is the suspended
            // parent thread's; it is not running).
            return UNSHARE_FAILED | unsafe { *libc::__errno_location() };
        }
    }
    for (target, &fd) in plan.stdio.iter().enumerate() {
        // SAFETY: the parent keeps `fd` open until the child has exec'd or exited.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let r = match target {
            0 => rustix::stdio::dup2_stdin(fd),
            1 => rustix::stdio::dup2_stdout(fd),
            _ => rustix::stdio::dup2_stderr(fd),
        };
        if let Err(e) = r {
            return e.raw_os_error();
        }
    }
    match plan.shared_fd_table {
        // Only 0..=top exist in the private table.
        Some(top) if top >= 3 => close_range(3, top),
        Some(_) => {}
        None => close_from_3(&plan.report),
    }
    reset_signals(plan.non_default_signals);
    // SAFETY: the plan's argv/envp are NUL-terminated arrays of C strings, alive in the parent.
    let errno =
        unsafe { crate::sys::raw_runtime::execve(plan.path, plan.argv.cast(), plan.envp.cast()) };
    errno.raw_os_error()
}

/// Closes every descriptor from 3 up, except the exec-error pipe (close-on-exec: it closes itself
/// at a successful exec, and must stay open until then).
fn close_from_3(report: &ExecErrorReport<'_>) {
    let keep = match report {
        ExecErrorReport::Pipe(fd) => {
            use std::os::fd::AsRawFd;
            fd.as_raw_fd() as u32
        }
        ExecErrorReport::Shared(_) => 0,
    };
    let ranges: [(u32, u32); 2] = if keep >= 3 {
        [(3, keep - 1), (keep + 1, u32::MAX)]
    } else {
        [(3, u32::MAX), (1, 0)]
    };
    for (first, last) in ranges {
        if first <= last {
            close_range(first, last);
        }
    }
}

/// Closes descriptors `first..=last`.
fn close_range(first: u32, last: u32) {
    // SAFETY: close_range takes two integers and flags; it touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret != 0 {
        // Before Linux 5.9, or under a seccomp filter that answers EPERM: close one by one up to
        // the descriptor limit (bounded so a huge limit does not stall the child).
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(65536)
            .min(65536) as u32;
        for fd in first..=last.min(limit) {
            // SAFETY: close of a descriptor number in our own (child) table.
            unsafe { libc::syscall(libc::SYS_close, fd) };
        }
    }
}

/// Resets every signal in `non_default` (bit `n - 1` for signal `n`) to its default disposition
/// and empties the mask.
///
/// The parent blocked every signal around the fork, so no parent handler can run here before the
/// reset. SIG_IGN survives execve and a Rust parent ignores SIGPIPE; handlers are reset here too
/// because a signal pending at the unblock would otherwise run a parent handler in the child.
/// Each reset is a syscall (about 0.25 us here), so the parent tells which ones need it.
fn reset_signals(non_default: u64) {
    let default = KernelSigaction {
        sa_handler_kernel: KERNEL_SIG_DFL,
        sa_flags: KernelSigactionFlags::empty(),
        sa_restorer: None,
        sa_mask: KernelSigSet::empty(),
    };
    for sig in 1..=NSIG {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || non_default & (1u64 << (sig - 1)) == 0 {
            continue;
        }
        // SAFETY: the number is a valid signal number (1..=64, not KILL/STOP); installing SIG_DFL
        // in this child affects only this child (no CLONE_SIGHAND).
        unsafe {
            let _ = crate::sys::raw_runtime::kernel_sigaction(
                crate::sys::raw_runtime::Signal::from_raw_unchecked(sig),
                Some(default.clone()),
            );
        }
    }
    // SAFETY: SETMASK with an empty set only changes this child's mask.
    unsafe {
        let _ =
            crate::sys::raw_runtime::kernel_sigprocmask(How::SETMASK, Some(&KernelSigSet::empty()));
    }
}
