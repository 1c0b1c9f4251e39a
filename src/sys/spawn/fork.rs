//! The Fork backend: a raw `fork` + `execve`.
//!
//! The child only runs [`child::exec_child`](super::child::exec_child): raw syscalls, exec errno
//! written to a close-on-exec pipe. The parent reads that pipe to its end: nothing at all means
//! the exec succeeded (the pipe closed on exec), exactly four bytes are the child's errno, and
//! anything else is reported as an error after the child is killed and reaped.

use std::os::fd::{AsFd, AsRawFd};

use rustix::io::Errno;
use rustix::process::Pid;

use super::child::{ChildPlan, ExecErrorReport, exec_child};
use super::exec::{ChildStdio, Exec, SpawnFailure, Spawned, reap_failed_child};
use crate::error::SpawnStage;
use crate::sys::BlockAllSignals;

/// Forks with the `clone` system call itself (flags `SIGCHLD`, no new stack): a fork that runs no
/// `pthread_atfork` handlers and takes none of the locks glibc's `fork` takes. `Ok(None)` in the
/// child, `Ok(Some(pid))` in the parent.
///
/// # Safety
/// The child may only make raw system calls (it is a copy of a multi-threaded process whose other
/// threads are gone, possibly holding locks) and must end with execve or exit, never return into
/// the caller's frames with the parent's state.
#[cfg(test)]
pub(super) unsafe fn raw_fork() -> Result<Option<Pid>, Errno> {
    // SAFETY: the caller's contract is this one.
    unsafe { raw_fork_pidfd(None) }
}

/// [`raw_fork`], with `CLONE_PIDFD` when `pidfd` is given: the kernel writes the child's pidfd
/// there (in the parent) with the clone.
///
/// # Safety
/// As [`raw_fork`].
pub(super) unsafe fn raw_fork_pidfd(pidfd: Option<&mut i32>) -> Result<Option<Pid>, Errno> {
    let flags = match pidfd {
        Some(_) => libc::SIGCHLD | libc::CLONE_PIDFD,
        None => libc::SIGCHLD,
    } as libc::c_ulong;
    // With CLONE_PIDFD the pidfd goes where the parent_tid argument points.
    let parent_tid = pidfd.map_or(std::ptr::null_mut(), |p| p as *mut i32) as libc::c_ulong;
    // clone(flags, newsp, parent_tid, ...): s390 swaps the first two arguments. The remaining
    // ones (child tid pointer, tls) are unused without their flags.
    #[cfg(not(target_arch = "s390x"))]
    let args = (flags, 0 as libc::c_ulong);
    #[cfg(target_arch = "s390x")]
    let args = (0 as libc::c_ulong, flags);
    // SAFETY: clone without CLONE_VM gives the child a copy of our address space, so it cannot
    // disturb the parent; the caller keeps the child to raw syscalls (see the contract above);
    // `parent_tid` is null or points to an int the caller owns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            args.0,
            args.1,
            parent_tid,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EAGAIN),
        )),
        0 => Ok(None),
        pid => match Pid::from_raw(pid as i32) {
            Some(pid) => Ok(Some(pid)),
            None => Err(Errno::INVAL),
        },
    }
}

/// What the exec-error pipe said, read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExecReport {
    /// End of file at once: the pipe closed on a successful exec.
    Succeeded,
    /// The child's errno from a failed exec (it has exited 127).
    Failed(i32),
    /// Neither: a short or overlong message, or the read itself failed. Whether the child exec'd
    /// is unknown, so it must not be left running: the errno to report (EIO when the pipe
    /// carried a malformed message).
    Unknown(i32),
}

/// Decodes what was read from the exec-error pipe: `bytes` up to the point where reading ended,
/// `end` how it ended (`Ok` at end of file, `Err` with the read's errno otherwise; EINTR is
/// retried by the reader and never arrives here).
pub(super) fn decode_exec_report(bytes: &[u8], end: Result<(), Errno>) -> ExecReport {
    if let Err(e) = end {
        return ExecReport::Unknown(e.raw_os_error());
    }
    match *bytes {
        [] => ExecReport::Succeeded,
        [a, b, c, d] => ExecReport::Failed(i32::from_ne_bytes([a, b, c, d])),
        _ => ExecReport::Unknown(libc::EIO),
    }
}

/// Reads the exec-error pipe to its end. One byte more than a report is asked for, so an
/// overlong message is seen as such.
fn read_exec_report(pipe: impl AsFd) -> ExecReport {
    let mut buf = [0u8; 5];
    let mut got = 0;
    let end = loop {
        if got == buf.len() {
            break Ok(());
        }
        match rustix::io::read(&pipe, &mut buf[got..]) {
            Ok(0) => break Ok(()),
            Ok(n) => got += n,
            Err(Errno::INTR) => continue,
            Err(e) => break Err(e),
        }
    };
    decode_exec_report(&buf[..got], end)
}

/// Forks and execs `exec` with `stdio`. Every signal is blocked on the calling thread (`_blocked`)
/// so that no handler of ours runs in the child before it resets the dispositions.
///
/// With `clone_pidfd` the clone also gives the child's pidfd (`CLONE_PIDFD`), returned in
/// [`Spawned::pidfd`].
pub(super) fn spawn(
    exec: &Exec<'_>,
    stdio: &ChildStdio<'_>,
    clone_pidfd: bool,
    _blocked: &BlockAllSignals,
) -> Result<Spawned, SpawnFailure> {
    let pipe_failed = |e: rustix::io::Errno| SpawnFailure::new(SpawnStage::Pipe, e.raw_os_error());
    let (err_read, mut err_write) = crate::sys::pipe().map_err(pipe_failed)?;
    let floor = exec.setup.fd_floor();
    if err_write.as_raw_fd() <= floor {
        // An extra descriptor installed on its number must not overwrite the report pipe.
        err_write = rustix::io::fcntl_dupfd_cloexec(&err_write, floor + 1).map_err(pipe_failed)?;
    }
    let plan = ChildPlan {
        path: exec.path,
        argv: exec.argv,
        envp: exec.envp,
        stdio: stdio.raw(),
        setup: exec.setup,
        non_default_signals: exec.non_default_signals,
        shared_fd_table: None,
        extra_slots: None,
        report: ExecErrorReport::Pipe(err_write.as_fd()),
    };
    // Into a cgroup, the child first writes one byte here: a child that never ran was killed as
    // it entered the cgroup (see vfork::BORN_KILLED).
    let started = match exec.setup.cgroup {
        Some(_) => Some(crate::sys::pipe().map_err(pipe_failed)?),
        None => None,
    };
    // SAFETY: the child runs only exec_child (raw syscalls, no allocation, no locks), which never
    // returns; everything it reads was prepared above, in the address space it gets a copy of.
    let mut pidfd: libc::c_int = -1;
    let forked = match &exec.setup.cgroup {
        Some(cgroup) => {
            let args = crate::sys::clone3::CloneArgs::new(
                if clone_pidfd { libc::CLONE_PIDFD } else { 0 },
                std::os::fd::AsRawFd::as_raw_fd(&*cgroup.dir),
                clone_pidfd.then_some(&mut pidfd),
            );
            // SAFETY: as raw_fork: the fork shape of clone3, the child keeps to raw syscalls.
            unsafe { crate::sys::clone3::clone3_fork(&args) }.map_err(super::vfork::cgroup_failure)
        }
        // SAFETY: see below.
        None => unsafe { raw_fork_pidfd(clone_pidfd.then_some(&mut pidfd)) }
            .map_err(|e| SpawnFailure::new(SpawnStage::Spawn, e.raw_os_error())),
    };
    let pid = match forked {
        Ok(None) => {
            if let Some((_, w)) = &started {
                let _ = rustix::io::write(w, &[1]);
            }
            // SAFETY: we are the fresh child; the plan's pointers are valid in our copy.
            unsafe { exec_child(&plan) }
        }
        Ok(Some(pid)) => pid,
        Err(failure) => return Err(failure),
    };
    // SAFETY: with CLONE_PIDFD and a successful clone, the kernel stored a new pidfd that nothing
    // else owns (closed with the failed child on the error returns below).
    let pidfd = clone_pidfd.then(|| unsafe { crate::sys::own_fd(pidfd) });
    drop(err_write);
    let report = read_exec_report(&err_read);
    if let Some((r, w)) = started {
        drop(w);
        let mut byte = [0u8; 1];
        // The report's end came at the exec or the exit, after the child's byte if it ran.
        if report == ExecReport::Succeeded && !matches!(rustix::io::read(&r, &mut byte), Ok(1)) {
            reap_failed_child(pid);
            return Err(SpawnFailure::new(
                SpawnStage::Cgroup,
                super::vfork::BORN_KILLED,
            ));
        }
    }
    match report {
        ExecReport::Succeeded => Ok(Spawned {
            pid,
            pidfd,
            confirm: None,
        }),
        ExecReport::Failed(packed) => {
            reap_failed_child(pid);
            Err(SpawnFailure::from_child(packed))
        }
        ExecReport::Unknown(errno) => {
            // Ours and unreaped, so the pid still names it.
            crate::sys::kill_unreaped_child(pid);
            reap_failed_child(pid);
            Err(SpawnFailure::new(SpawnStage::Exec, errno))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_immediate_end_of_file_is_a_successful_exec() {
        assert_eq!(decode_exec_report(&[], Ok(())), ExecReport::Succeeded);
    }

    #[test]
    fn four_bytes_then_end_of_file_are_the_childs_errno() {
        let bytes = libc::ENOENT.to_ne_bytes();
        assert_eq!(
            decode_exec_report(&bytes, Ok(())),
            ExecReport::Failed(libc::ENOENT)
        );
    }

    #[test]
    fn short_exec_report_is_not_a_success() {
        let bytes = libc::EACCES.to_ne_bytes();
        for len in 1..4 {
            assert_eq!(
                decode_exec_report(&bytes[..len], Ok(())),
                ExecReport::Unknown(libc::EIO),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn overlong_exec_report_is_not_a_success() {
        assert_eq!(
            decode_exec_report(&[1, 0, 0, 0, 0], Ok(())),
            ExecReport::Unknown(libc::EIO)
        );
    }

    #[test]
    fn read_error_on_exec_report_is_not_a_success() {
        assert_eq!(
            decode_exec_report(&[], Err(Errno::BADF)),
            ExecReport::Unknown(libc::EBADF)
        );
        assert_eq!(
            decode_exec_report(&[2, 0], Err(Errno::IO)),
            ExecReport::Unknown(libc::EIO)
        );
    }

    /// The reader side on a real pipe: what a writer puts in is what the decoder sees.
    #[test]
    fn read_exec_report_reads_to_the_end() {
        let cases: [(&[u8], ExecReport); 3] = [
            (&[], ExecReport::Succeeded),
            (&7i32.to_ne_bytes(), ExecReport::Failed(7)),
            (&[1, 2], ExecReport::Unknown(libc::EIO)),
        ];
        for (written, want) in cases {
            let (r, w) = crate::sys::pipe().expect("pipe");
            rustix::io::write(&w, written).expect("write");
            drop(w);
            assert_eq!(read_exec_report(&r), want, "{written:?}");
        }
    }
}
