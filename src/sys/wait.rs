//! Reaping with the child's resource usage: the raw `waitid` system call with its fifth argument,
//! and `wait4`.
//!
//! The kernel's `waitid` takes a fifth argument, a `struct rusage` it fills for the reaped child
//! (its own usage plus that of the descendants it waited for). glibc's `waitid(3)` and rustix do
//! not pass it, so it is called here through `syscall(2)` (Go's `syscall.Wait4`/`waitid` do the
//! same). The signal path reaps by pid with `wait4`, which has always returned a `rusage`.
//!
//! # References
//!  - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
//!  - [wait4(2)](https://man7.org/linux/man-pages/man2/wait4.2.html)

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;
use rustix::process::Pid;

/// `P_PIDFD` (Linux 5.4): the id is a pidfd. Not in every libc crate version.
const P_PIDFD: libc::idtype_t = 3;

/// A reaped child: its raw wait status (the `wait(2)` encoding, what
/// `ExitStatus::from_raw` takes) and the resource usage the kernel reported with it.
#[derive(Clone, Copy)]
pub(crate) struct Reaped {
    pub(crate) raw_status: i32,
    pub(crate) rusage: libc::rusage,
}

/// A `struct rusage` of zeros.
pub(crate) fn empty_rusage() -> libc::rusage {
    // SAFETY: rusage is plain data (integers and timevals); all zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `waitid(P_PIDFD, pidfd, &info, WEXITED | WNOHANG, &rusage)`: reaps the child `pidfd` names if
/// it has exited. `Ok(None)` while it runs (or is stopped/traced without exit status).
pub(crate) fn waitid_rusage(pidfd: BorrowedFd<'_>) -> Result<Option<Reaped>, Errno> {
    waitid_rusage_with(pidfd, libc::WEXITED | libc::WNOHANG)
}

/// `waitid(P_PIDFD, pidfd, &info, WEXITED, &rusage)`: blocks until the child `pidfd` names exits,
/// and reaps it. `Ok(None)` only if the kernel reports no child (it should not).
pub(crate) fn waitid_rusage_blocking(pidfd: BorrowedFd<'_>) -> Result<Option<Reaped>, Errno> {
    waitid_rusage_with(pidfd, libc::WEXITED)
}

fn waitid_rusage_with(
    pidfd: BorrowedFd<'_>,
    options: libc::c_int,
) -> Result<Option<Reaped>, Errno> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid value, and a zero
    // si_pid after a WNOHANG call is how the kernel says "no child has exited".
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let mut rusage = empty_rusage();
    // SAFETY: waitid takes an idtype, an id, a pointer to a siginfo_t, options and a pointer to a
    // struct rusage; both pointers are to our locals, valid and writable for the call. The fd is
    // borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info as *mut libc::siginfo_t,
            options,
            &mut rusage as *mut libc::rusage,
        )
    };
    if ret != 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        ));
    }
    // SAFETY: the kernel filled the SIGCHLD fields of the union (or left it zeroed); si_pid and
    // si_status read those fields.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let raw_status = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // WEXITED asks for exits only; anything else would be a kernel bug: report it as a
        // lost status rather than inventing one.
        _ => 255 << 8,
    };
    Ok(Some(Reaped { raw_status, rusage }))
}

/// `wait4(pid, &status, WNOHANG, &rusage)`: the signal path's reap by pid, with resource usage.
/// `Ok(None)` while the child runs.
pub(crate) fn wait4_rusage(pid: Pid) -> Result<Option<Reaped>, Errno> {
    let mut raw_status: libc::c_int = 0;
    let mut rusage = empty_rusage();
    // SAFETY: wait4 writes an int and a struct rusage through pointers to our locals.
    let ret = unsafe {
        libc::wait4(
            pid.as_raw_nonzero().get(),
            &mut raw_status,
            libc::WNOHANG,
            &mut rusage,
        )
    };
    match ret {
        0 => Ok(None),
        r if r > 0 => Ok(Some(Reaped { raw_status, rusage })),
        _ => Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn spawn(script: &str) -> (Pid, std::process::Child) {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .spawn()
            .expect("sh");
        (Pid::from_raw(child.id() as i32).expect("pid"), child)
    }

    fn reap(mut f: impl FnMut() -> Result<Option<Reaped>, Errno>) -> Reaped {
        for _ in 0..2000 {
            if let Some(r) = f().expect("wait") {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the child never exited");
    }

    #[test]
    fn waitid_by_pidfd_gives_the_status_and_the_cpu_time() {
        let (pid, _child) = spawn("i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; exit 7");
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open");
        let r = reap(|| waitid_rusage(fd.as_fd()));
        assert_eq!(r.raw_status, 7 << 8);
        let cpu = r.rusage.ru_utime.tv_sec * 1_000_000
            + r.rusage.ru_utime.tv_usec
            + r.rusage.ru_stime.tv_sec * 1_000_000
            + r.rusage.ru_stime.tv_usec;
        assert!(cpu > 0, "a busy shell used no CPU time");
        assert!(r.rusage.ru_maxrss > 0);
        assert_eq!(waitid_rusage(fd.as_fd()).err(), Some(Errno::CHILD));
    }

    #[test]
    fn a_signal_death_is_encoded_as_wait_does_and_wait4_agrees() {
        let (pid, _child) = spawn("kill -KILL $$");
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open");
        let r = reap(|| waitid_rusage(fd.as_fd()));
        assert_eq!(r.raw_status, libc::SIGKILL);
        let (pid, _child) = spawn("kill -TERM $$");
        let r = reap(|| wait4_rusage(pid));
        assert_eq!(r.raw_status, libc::SIGTERM);
        assert!(r.rusage.ru_maxrss > 0);
    }

    #[test]
    fn a_running_child_is_none() {
        let (pid, mut child) = spawn("sleep 5");
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open");
        assert!(waitid_rusage(fd.as_fd()).expect("wait").is_none());
        assert!(wait4_rusage(pid).expect("wait").is_none());
        child.kill().expect("kill");
        child.wait().expect("reap");
    }
}
