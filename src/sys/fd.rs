//! Descriptor helpers: keeping our descriptors off 0, 1 and 2, `/dev/null`, pipes, owning a
//! raw descriptor.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

/// Moves `fd` above the standard descriptors if it landed on 0, 1 or 2.
///
/// When the host closed stdin/stdout/stderr, a new descriptor takes the lowest free number. Our own
/// descriptors must never sit there: the child's `dup2(fd, 1)` onto the same number would keep
/// CLOEXEC set and the child would start with fd 1 closed.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// Opens `/dev/null` read-write, close-on-exec, above fd 2.
pub(crate) fn open_dev_null() -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    above_stdio(fd)
}

/// A close-on-exec pipe whose both ends are above fd 2: `(read end, write end)`.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let r = above_stdio(r).map_err(errno_of)?;
    let w = above_stdio(w).map_err(errno_of)?;
    Ok((r, w))
}

/// The errno inside an `io::Error` (EIO if it has none).
pub(crate) fn errno_of(e: io::Error) -> Errno {
    Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Owns a raw fd returned by a syscall wrapper above.
///
/// # Safety
/// `fd` must be a freshly created descriptor that nothing else owns.
pub(crate) unsafe fn own_fd(fd: i32) -> OwnedFd {
    // SAFETY: the caller promises `fd` is fresh and unowned.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
