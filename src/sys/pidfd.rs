//! pidfds: signalling through one, and whether this kernel has working ones.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::io::Errno;

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`—Sends any signal number (0 to probe) through a pidfd.
///
/// rustix's safe wrapper takes only the named signals; callers of `send_signal` may pass realtime
/// ones. A pidfd always names the same process, so a reaped child gives `ESRCH`, never a stranger.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes an fd, an int, a NULL siginfo pointer and flags 0; the fd is
    // borrowed for the duration of the call. No memory is passed to the kernel.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this kernel gives working pidfds: `pidfd_open` (5.3) and `waitid(P_PIDFD)` (5.4).
///
/// Probed once. ENOSYS, and EPERM from a seccomp filter (Docker answers EPERM), mean "no";
/// a transient failure (EMFILE) is not cached and counts as "yes".
pub(crate) fn pidfd_supported() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;
    static PROBED: AtomicU8 = AtomicU8::new(UNKNOWN);
    match PROBED.load(Ordering::Relaxed) {
        YES => return true,
        NO => return false,
        _ => {}
    }
    let answer = match rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    ) {
        Ok(fd) => {
            use rustix::process::{WaitId, WaitIdOptions, waitid};
            // We are not our own child: a kernel with P_PIDFD says ECHILD, an older one EINVAL.
            match waitid(
                WaitId::PidFd(fd.as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) {
                Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::PERM) => Some(false),
                _ => Some(true),
            }
        }
        Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::INVAL) => Some(false),
        Err(_) => None,
    };
    match answer {
        Some(yes) => {
            PROBED.store(if yes { YES } else { NO }, Ordering::Relaxed);
            yes
        }
        None => true,
    }
}
