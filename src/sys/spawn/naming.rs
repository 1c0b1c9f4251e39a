//! Naming a child that is watched without a pidfd ([`ChildWatch::Signal`](crate::ChildWatch)):
//! by its pid *and* its start time, and only with a start time read while the pid was surely
//! the child's.
//!
//! The pid is surely ours while the child is unreaped: normally until our own `waitid`. But when
//! the host ignores SIGCHLD (or sets `SA_NOCLDWAIT`) the kernel reaps a child the moment it exits,
//! and its pid may go to another process before the start time is read: the start time would
//! then be the stranger's, and the stranger would be signalled as our child. So:
//!
//! - Vfork and Fork clone the child with `CLONE_PIDFD` in Signal mode too, keep that pidfd only
//!   until the start time is read, and accept the start time only if the pidfd's process still
//!   exists after the read (a pidfd names one process for good: if it is still there, the pid
//!   named it during the read). A child already gone is reported lost at once.
//! - A backend that cannot get a pidfd with the clone (PosixSpawn: glibc 2.39's `pidfd_spawn` is
//!   not used; Vfork and Fork on a kernel without `CLONE_PIDFD`) is refused while the kernel
//!   reaps by itself ([`refuse_if_autoreaping`]); Vfork and Fork out of descriptors for the
//!   pidfd spawn without one, or fail with the shortage while the kernel reaps by itself. What
//!   remains for a spawn without a pidfd:
//!   a host that switches SIGCHLD to SIG_IGN *during* the spawn, while the child exits and
//!   another process takes its pid, all before the start time is read (microseconds). Calling
//!   such a child lost instead would leave a live child unwatched, a zombie once the host
//!   restores SIGCHLD: measured in `tests/fault_soak.rs`, which flips SIGCHLD all the time.
//!
//! This module decides; `spawn.rs` calls [`start_time`] where it reads the start time.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::process::Pid;

use super::exec::{SpawnBackend, SpawnFailure};

/// Why a backend is refused (the error's `reason`).
pub(crate) const UNNAMEABLE: &str = "in ChildWatch::Signal mode while SIGCHLD is ignored (or \
     SA_NOCLDWAIT is set) the kernel reaps children by itself, and this backend gets no pidfd \
     with the clone, so its child's pid could name another process before the executor reads \
     the start time; use ChildWatch::Pidfd, or the Vfork or Fork backend";

/// Whether the kernel reaps our exited children by itself now: SIGCHLD ignored, or its action
/// has `SA_NOCLDWAIT`.
pub(crate) fn kernel_autoreaps() -> bool {
    // SAFETY: with a null new action, sigaction only writes the current one into `old`, a
    // zeroed struct we own.
    let old = unsafe {
        let mut old = std::mem::zeroed::<libc::sigaction>();
        if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) != 0 {
            // Cannot fail for a valid signal number; if it did, assume the worst.
            return true;
        }
        old
    };
    old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0
}

/// Whether a Signal-mode spawn through `backend` asks the clone for a pidfd to confirm the
/// child's start time with.
pub(crate) fn confirm_with_pidfd(backend: SpawnBackend) -> bool {
    backend != SpawnBackend::PosixSpawn && crate::sys::pidfd_supported()
}

/// Before a Signal-mode spawn without a pidfd: refuses while the kernel reaps by itself.
pub(crate) fn refuse_if_autoreaping(backend: SpawnBackend) -> Result<(), SpawnFailure> {
    if kernel_autoreaps() {
        return Err(SpawnFailure::unsupported(backend, UNNAMEABLE));
    }
    Ok(())
}

/// The start time that names child `pid` with its pid, read by `read` (`Ok(None)`: no such
/// process). `confirm` is the pidfd the clone gave (Signal mode, Vfork and Fork), or `None`.
///
/// `Ok(None)` when the child is gone (with `confirm`: the pidfd's process no longer exists, so
/// whatever was read was another process's): the caller then reports the child lost and never
/// signals its pid. `Err` when it could not be read (the caller then names the child by its pid
/// alone), except under a kernel that reaps by itself, where the pid alone names nothing for
/// sure: `Ok(None)` then (the kernel reaps the child when it exits).
pub(crate) fn start_time(
    pid: Pid,
    confirm: Option<&OwnedFd>,
    read: impl FnOnce(Pid) -> io::Result<Option<u64>>,
) -> io::Result<Option<u64>> {
    let read = read(pid);
    // With a pidfd: its process (alive or a zombie) still exists, so it had the pid all along.
    // Without: the spawn was refused if the kernel reaped by itself (see the module docs).
    let sure = confirm.is_none_or(|fd| crate::sys::pidfd_send_signal(fd.as_fd(), 0).is_ok());
    match read {
        Ok(time) if sure => Ok(time),
        Err(e) if sure && !kernel_autoreaps() => Err(e),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets SIGCHLD's handler, restoring the old action on drop.
    struct Sigchld(libc::sigaction);

    impl Sigchld {
        fn set(handler: libc::sighandler_t, flags: i32) -> Sigchld {
            // SAFETY: sigaction with zeroed structs we own; SIG_IGN/SIG_DFL run no code of ours.
            unsafe {
                let mut old = std::mem::zeroed::<libc::sigaction>();
                let mut new = std::mem::zeroed::<libc::sigaction>();
                new.sa_sigaction = handler;
                new.sa_flags = flags;
                assert_eq!(libc::sigaction(libc::SIGCHLD, &new, &mut old), 0);
                Sigchld(old)
            }
        }
    }

    impl Drop for Sigchld {
        fn drop(&mut self) {
            // SAFETY: puts back the action sigaction returned.
            unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
        }
    }

    /// One test for everything that changes SIGCHLD: the lib's other tests do not look at it,
    /// and none of them runs its children under an ignored SIGCHLD long enough to matter.
    #[test]
    fn autoreaping_is_seen_and_refused_and_unsure_start_times_are_dropped() {
        let me = rustix::process::getpid();
        let read = |_: Pid| Ok(Some(42));
        {
            let _dfl = Sigchld::set(libc::SIG_DFL, 0);
            assert!(!kernel_autoreaps());
            assert!(refuse_if_autoreaping(SpawnBackend::PosixSpawn).is_ok());
            assert_eq!(start_time(me, None, read).ok(), Some(Some(42)));
            let failed = start_time(me, None, |_| {
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            });
            assert!(
                failed.is_err(),
                "the pid alone still names an unreaped child"
            );
        }
        for (handler, flags) in [(libc::SIG_IGN, 0), (libc::SIG_DFL, libc::SA_NOCLDWAIT)] {
            let _ign = Sigchld::set(handler, flags);
            assert!(kernel_autoreaps());
            let refused = refuse_if_autoreaping(SpawnBackend::PosixSpawn)
                .map_err(|f| f.into_error(&"prog".into()));
            let e = refused.expect_err("refused while the kernel reaps");
            assert_eq!(e.kind(), io::ErrorKind::Unsupported);
            assert!(e.to_string().contains("SIGCHLD"), "{e}");
            // Unreadable: the pid alone names nothing for sure while the kernel reaps.
            let failed = start_time(me, None, |_| {
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            });
            assert_eq!(failed.ok(), Some(None));
            // With a pidfd whose process still exists it is sure.
            let pidfd = rustix::process::pidfd_open(me, rustix::process::PidfdFlags::empty())
                .expect("pidfd_open(self)");
            assert_eq!(start_time(me, Some(&pidfd), read).ok(), Some(Some(42)));
        }
        // A pidfd whose process is gone (reaped): whatever was read is not the child's.
        let child = std::process::Command::new("/bin/true")
            .spawn()
            .expect("spawn true");
        let pid = Pid::from_raw(child.id() as i32).expect("pid");
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open(child)");
        let mut child = child;
        child.wait().expect("wait");
        assert_eq!(start_time(pid, Some(&pidfd), read).ok(), Some(None));
    }
}
