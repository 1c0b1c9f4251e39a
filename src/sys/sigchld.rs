//! The SIGCHLD questions signal mode asks the kernel while it runs: is our handler still the one
//! installed, which thread would take the signal from a signalfd, and which child is waitable,
//! without reaping it.

use rustix::process::Pid;

use super::sigchld_disposition::SigchldDisposition;

/// SIGCHLD's action right now: its disposition and, for a handler, the handler's address (which
/// tells our handler from one the host put in its place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SigchldAction {
    pub(crate) disposition: SigchldDisposition,
    pub(crate) handler: usize,
}

/// `sigaction(SIGCHLD, NULL, &old)`—one system call, no change.
pub(crate) fn sigchld_action() -> SigchldAction {
    // SAFETY: a query (null new action) into a zeroed sigaction struct we own.
    let old = unsafe {
        let mut old = std::mem::zeroed::<libc::sigaction>();
        libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old);
        old
    };
    let disposition = if old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0
    {
        SigchldDisposition::Ignored
    } else if old.sa_sigaction == libc::SIG_DFL {
        SigchldDisposition::Default
    } else {
        SigchldDisposition::Handled
    };
    SigchldAction {
        disposition,
        handler: old.sa_sigaction,
    }
}

/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`—the pid of one child of this process that has
/// exited and waits to be reaped, left as it is (no status is taken, so a child of the host is
/// not robbed). `None` when there is none.
///
/// The kernel answers with the first such child in its list, so a zombie the host leaves
/// unwaited hides the ones behind it.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub(crate) fn waitable_child() -> Option<Pid> {
    loop {
        // SAFETY: siginfo_t is plain data; waitid writes it and reads nothing else.
        let (rc, info) = unsafe {
            let mut info = std::mem::zeroed::<libc::siginfo_t>();
            let rc = libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            (rc, info)
        };
        if rc == 0 {
            // SAFETY: waitid filled `info` for a child event, or left it zeroed (pid 0) when no
            // child was waitable.
            return Pid::from_raw(unsafe { info.si_pid() });
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

/// The id of a thread of this process that has SIGCHLD unblocked (read from
/// `/proc/self/task/*/status`), `Ok(None)` when every thread blocks it. A thread waiting in
/// `sigtimedwait` for SIGCHLD counts: the kernel unblocks the signal for it while it waits.
pub(crate) fn sigchld_unblocked_thread() -> std::io::Result<Option<u32>> {
    let tasks = std::fs::read_dir("/proc/self/task")?;
    let bit = 1u64 << (libc::SIGCHLD - 1);
    for task in tasks {
        let task = task?;
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            // The thread ended meanwhile: it takes no signal any more.
            continue;
        };
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
        if blocked.is_none_or(|mask| mask & bit == 0) {
            let tid = task.file_name().to_str().and_then(|s| s.parse().ok());
            return Ok(Some(tid.unwrap_or(0)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waitable_child_is_named_and_left_in_place() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Other tests of this binary may have children of their own: look for ours.
        let mut seen = false;
        while std::time::Instant::now() < deadline {
            if std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
            {
                seen = waitable_child().is_some();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(seen, "a zombie child should be waitable");
        // Still there to be reaped by its owner.
        assert!(child.wait().expect("wait").success());
    }

    #[test]
    fn the_action_query_changes_nothing() {
        let before = sigchld_action();
        assert_eq!(sigchld_action(), before);
        assert_eq!(
            before.disposition,
            super::super::sigchld_disposition::sigchld_disposition()
        );
    }
}
