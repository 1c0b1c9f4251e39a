//! The signalfd that signal mode reads SIGCHLD from.

use std::io;
use std::os::fd::OwnedFd;

use super::fd::{above_stdio, own_fd};

/// A non-blocking, close-on-exec signalfd for SIGCHLD (which must be blocked), above fd 2.
pub(crate) fn signalfd_sigchld() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t initialised by sigemptyset/sigaddset; signalfd(-1, ...) creates a new fd,
    // owned at once.
    let fd = unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        own_fd(fd)
    };
    above_stdio(fd)
}
