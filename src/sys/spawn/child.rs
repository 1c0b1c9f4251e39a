//! The child's straight line between fork/clone and execve, shared by the Fork and Vfork backends.
//!
//! Everything here runs in a child that shares nothing safe with Rust's runtime: after a raw fork
//! other threads' locks may be held forever, and under CLONE_VM the child even shares the parent's
//! memory and TLS. So: no allocation, no locks, no tracing, no panics, no libc call that keeps
//! state. The calls made are rustix's public wrappers (`dup2_std*`, `write`, `getrlimit`: one
//! syscall each, no errno on its linux_raw backend) and, for what rustix does not publish
//! (execve, rt_sigaction, rt_sigprocmask, close_range, exit_group), libc's `syscall(2)`.
//!
//! Why `syscall(2)` is safe in a CLONE_VM child: it is a register shuffle and a trap, no lock and
//! no allocation; on failure it stores the error in `errno`, which lives in the TLS block of the
//! thread that called clone. That thread is suspended until the child execs or exits
//! (CLONE_VFORK) and reads `errno` afterwards only when clone itself failed, in which case no
//! child ran; so the child may use, and even overwrite, that slot.
//!
//! If anything here ever panics, [`exit_after`] ends the child with status 127 instead of letting
//! the unwind run the parent's frames (copied by Fork, shared by Vfork) in the child.

#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "runs in the child between clone and execve (CLONE_VM: the parent's memory): \
              no panic machinery may be reached from here"
)]

use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicI32, Ordering};

use super::child_raw::{exit_now_with, last_errno};
use super::setup::{ChildFailure, ChildSetup, ExtraSlots, Step};

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
    /// Descriptors to install as 0, 1, 2, in that order: -1 leaves the number alone; 1 (for
    /// stderr) is the child's stdout once installed; any other is above 2 and above every
    /// extra descriptor's number, so `dup2` always clears CLOEXEC and reads it intact.
    pub(super) stdio: [i32; 3],
    /// The command's other steps, applied in the order `setup.rs` documents.
    pub(super) setup: &'a ChildSetup,
    pub(super) report: ExecErrorReport<'a>,
    /// Signals whose disposition is not SIG_DFL in the parent (bit `n - 1` for signal `n`): the
    /// only ones the child must reset. All ones when unknown.
    pub(super) non_default_signals: u64,
    /// `Some(top)` when the child was cloned with CLONE_FILES: it still shares the parent's
    /// descriptor table and must first take a private copy of descriptors `0..=top` (the `stdio`
    /// sources are all at most `top`) before touching any descriptor.
    pub(super) shared_fd_table: Option<u32>,
    /// With `shared_fd_table`: the slots the extra descriptors are read from (see
    /// [`ChildSetup::install_fds`]); their numbers are at most `top` too.
    pub(super) extra_slots: Option<ExtraSlots<'a>>,
}

/// Set in the errno a Shared report carries when the child could not unshare its descriptor table
/// (CLOSE_RANGE_UNSHARE needs Linux 5.9; ENOMEM is possible too): the parent then retries without
/// CLONE_FILES. The low bits hold the errno.
pub(super) const UNSHARE_FAILED: i32 = 1 << 30;

/// Highest signal number the child resets (SIGRTMAX on every Linux but MIPS, which has 128).
const NSIG: i32 = 64;

/// Size in bytes of the kernel's `sigset_t`, the last argument of rt_sigaction/rt_sigprocmask.
/// (`libc::sigset_t` is the 128-byte user-space type, which the kernel refuses.)
const KERNEL_SIGSET_BYTES: libc::c_long = if cfg!(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6"
)) {
    16
} else {
    8
};

/// The status a child exits with when it could not exec (as a shell says "not found").
const EXEC_FAILED_STATUS: libc::c_long = 127;

/// Sets up the child and execs; on failure reports the errno and exits 127.
///
/// # Safety
/// Call only in a freshly forked/cloned child, with `plan`'s pointers valid (NUL-terminated argv
/// and envp arrays of C strings).
pub(super) unsafe fn exec_child(plan: &ChildPlan<'_>) -> ! {
    exit_after(|| {
        // SAFETY: forwarded from this function's contract.
        let errno = unsafe { prepare_and_exec(plan) };
        match plan.report {
            ExecErrorReport::Pipe(fd) => {
                let _ = rustix::io::write(fd, &errno.to_ne_bytes());
            }
            ExecErrorReport::Shared(slot) => slot.store(errno, Ordering::Release),
        }
    })
}

/// Runs `body`, then ends the process with status 127, also when `body` unwinds.
///
/// The child of a fork runs on a copy of the parent's stack, the child of a vfork-style clone
/// next to the parent's memory: an unwind that left `body` would run the parent's destructors
/// and `catch_unwind`s in the child and return into the parent's code there. The guard's `Drop`
/// ends the process first. (The panic message may not be printed: the panic machinery can block
/// on a lock another thread held at fork time, as any libc call could; the guard keeps the
/// unwind from going further, not the panic from starting.)
pub(super) fn exit_after(body: impl FnOnce()) -> ! {
    /// Ends the process in its `Drop`: reached only by an unwind, as `exit_after` never returns.
    struct ExitOnUnwind;
    impl Drop for ExitOnUnwind {
        fn drop(&mut self) {
            exit_now();
        }
    }
    let _guard = ExitOnUnwind;
    body();
    exit_now()
}

/// `exit_group(127)` as a raw syscall: no atexit handlers, no stdio flush, no locks.
fn exit_now() -> ! {
    exit_now_with(EXEC_FAILED_STATUS as i32)
}

/// Installs stdio and extra descriptors, closes every other descriptor, applies the command's
/// process steps, resets signals and execs. Returns what failed first: a [`ChildFailure`]
/// packed (a plain errno for execve), or an errno with [`UNSHARE_FAILED`].
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
                libc::c_ulong::from(top) + 1,
                libc::c_ulong::from(u32::MAX),
                libc::c_ulong::from(libc::CLOSE_RANGE_UNSHARE),
            )
        };
        if ret != 0 {
            return UNSHARE_FAILED | last_errno();
        }
    }
    for (target, &fd) in plan.stdio.iter().enumerate() {
        if fd < 0 {
            continue;
        }
        // SAFETY: the parent keeps `fd` open until the child has exec'd or exited (or it is
        // our own fd 1, installed just before).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let r = match target {
            0 => rustix::stdio::dup2_stdin(fd),
            1 => rustix::stdio::dup2_stdout(fd),
            _ => rustix::stdio::dup2_stderr(fd),
        };
        if let Err(e) = r {
            return ChildFailure::new(Step::Stdio, target, e.raw_os_error()).pack();
        }
    }
    if let Err(failure) = plan.setup.install_fds(plan.extra_slots) {
        return failure.pack();
    }
    match plan.shared_fd_table {
        // Only 0..=top exist in the private table.
        Some(top) if plan.setup.fds.is_empty() => {
            if top >= 3 {
                close_range(3, top);
            }
        }
        // 0..=top, the extras installed and the sources moved above (close-on-exec, but closed
        // here all the same): keep the extras only.
        Some(_) | None => close_others(&plan.report, plan.setup),
    }
    if plan.setup.has_process_steps()
        && let Err(failure) = plan.setup.apply()
    {
        return failure.pack();
    }
    reset_signals(plan.non_default_signals);
    // SAFETY: the plan's path is a C string and argv/envp are NUL-terminated arrays of C strings,
    // alive in the parent (Vfork: shared memory, the parent is suspended; Fork: our copy).
    unsafe { libc::syscall(libc::SYS_execve, plan.path.as_ptr(), plan.argv, plan.envp) };
    last_errno()
}

/// Closes every descriptor from 3 up, except the extra descriptors just installed and the
/// exec-error pipe (close-on-exec: it closes itself at a successful exec, and must stay open
/// until then; the parent put it above every extra descriptor's number).
///
/// Descriptor numbers are below `i32::MAX`, so the saturating steps never saturate: they only
/// keep the overflow checks (and their panics) out of the child.
fn close_others(report: &ExecErrorReport<'_>, setup: &ChildSetup) {
    let mut first = 3u32;
    for fd in &setup.fds {
        let target = fd.target as u32;
        if target > first {
            close_range(first, target.saturating_sub(1));
        }
        first = first.max(target.saturating_add(1));
    }
    let keep = match report {
        ExecErrorReport::Pipe(fd) => {
            use std::os::fd::AsRawFd;
            fd.as_raw_fd() as u32
        }
        ExecErrorReport::Shared(_) => 0,
    };
    if keep >= first {
        if keep > first {
            close_range(first, keep.saturating_sub(1));
        }
        first = keep.saturating_add(1);
    }
    close_range(first, u32::MAX);
}

/// Closes descriptors `first..=last`.
fn close_range(first: u32, last: u32) {
    // SAFETY: close_range takes two integers and flags; it touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_ulong::from(first),
            libc::c_ulong::from(last),
            0 as libc::c_ulong,
        )
    };
    if ret != 0 {
        // Before Linux 5.9, or under a seccomp filter that answers EPERM: close one by one up to
        // the descriptor limit (bounded so a huge limit does not stall the child).
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(65536)
            .min(65536) as u32;
        for fd in first..=last.min(limit) {
            // SAFETY: close of a descriptor number in our own (child) table.
            unsafe { libc::syscall(libc::SYS_close, libc::c_long::from(fd)) };
        }
    }
}

/// Resets every signal in `non_default` (bit `n - 1` for signal `n`) to its default disposition
/// and empties the mask.
///
/// The parent blocked every signal before it sampled the dispositions and forked, so no parent
/// handler can run here before the reset. SIG_IGN survives execve and a Rust parent ignores
/// SIGPIPE; handlers are reset here too because a signal pending at the unblock would otherwise
/// run a parent handler in the child. Each reset is a syscall, so the parent tells which ones
/// need it.
fn reset_signals(non_default: u64) {
    // The kernel's struct sigaction with SIG_DFL (0), no flags, no restorer and an empty mask is
    // all zeros whatever the architecture's field order; this buffer is larger than any of them.
    let default = [0u64; 8];
    for sig in 1..=NSIG {
        // sig - 1 is 0..=63: the bit is never shifted out.
        let bit = 1u64.checked_shl(sig.wrapping_sub(1) as u32).unwrap_or(0);
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || non_default & bit == 0 {
            continue;
        }
        // SAFETY: a valid signal number (1..=64, not KILL/STOP) and a readable all-zero (SIG_DFL)
        // action; no old action is asked for. The raw syscall, unlike glibc's sigaction, also
        // resets glibc's internal signals 32 and 33. Installing SIG_DFL in this child affects
        // only this child (no CLONE_SIGHAND).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                libc::c_long::from(sig),
                default.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                KERNEL_SIGSET_BYTES,
            )
        };
    }
    let empty = [0u64; 2];
    // SAFETY: SETMASK with a readable all-zero set only changes this child's mask.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::c_long::from(libc::SIG_SETMASK),
            empty.as_ptr(),
            std::ptr::null_mut::<libc::c_void>(),
            KERNEL_SIGSET_BYTES,
        )
    };
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

    /// Runs in a re-executed copy of this test binary (see `a_panic_in_the_child_exits_127`),
    /// so that the raw fork below happens in a process where no other test thread can hold a
    /// lock the panic machinery needs.
    #[test]
    fn child_guard_helper() {
        if std::env::var_os(GUARD_HELPER_ENV).is_none() {
            return;
        }
        let after_unwind = || {
            // Only reached if the unwind left exit_after: the copied test harness would then go
            // on running in the child.
            std::process::exit(3)
        };
        // SAFETY: the child branch only calls exit_after, which never returns.
        match unsafe { super::super::fork::raw_fork() } {
            Ok(None) => {
                let _ = std::panic::catch_unwind(|| exit_after(|| panic!("panic in the child")));
                after_unwind()
            }
            Ok(Some(pid)) => {
                let status =
                    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                        .expect("waitpid the forked child")
                        .expect("a status");
                println!("child-exit={:?}", status.1.exit_status());
            }
            Err(e) => panic!("fork: {e}"),
        }
    }

    const GUARD_HELPER_ENV: &str = "NAPIX_CHILD_GUARD_HELPER";

    #[test]
    fn a_panic_in_the_child_exits_127() {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "sys::spawn::child::tests::child_guard_helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(GUARD_HELPER_ENV, "1")
            .output()
            .expect("run the helper");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "helper failed: {out:?}");
        assert!(
            stdout.contains("child-exit=Some(127)"),
            "the child must end with 127 at the unwind: {stdout}"
        );
    }
}
