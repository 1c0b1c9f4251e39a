//! The child's descriptors, made ready on the caller's thread: stdio kinds checked, stdin bytes
//! put in a filled pipe or a sealed memfd, extra descriptors checked and sorted, and every caller-given
//! descriptor moved above the numbers the child installs.
//!
//! The child installs stdio on 0-2 and extras on their numbers, reading each source descriptor
//! once. A source that sits on a number installed before it is read would be overwritten (a
//! host with fd 1 closed can hand us a file that landed on 1), and a `dup2` of a descriptor
//! onto its own number keeps close-on-exec. So each source at or below the highest installed
//! number (the "floor") is duplicated above it here; one above is only checked to be open.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustix::io::Errno;

use crate::error::{CommandOption, SpawnError, SpawnStage};
use crate::stdio::{Stdio, StdioKind};
use crate::sys::spawn::ExtraFd;

/// What one of the child's stdin, stdout, stderr is, as the executor thread sets it up.
#[derive(Debug, Clone)]
pub(crate) enum StdioPlan {
    /// The executor's `/dev/null`.
    Null,
    /// Left as the parent's descriptor of the same number.
    Inherit,
    /// A new pipe, made by the executor thread; the parent's end goes to the handle.
    Piped,
    /// This descriptor (above the floor).
    Fd(Arc<OwnedFd>),
    /// stderr only: whatever stdout is.
    MergeStdout,
}

/// The stdio plans for `given` (falling back to `defaults` per stream), each source above
/// `floor`.
pub(crate) fn stdio_plans(
    program: &OsStr,
    given: [Option<&Stdio>; 3],
    defaults: [StdioPlan; 3],
    floor: i32,
) -> Result<[StdioPlan; 3], SpawnError> {
    let options = [
        CommandOption::Stdin,
        CommandOption::Stdout,
        CommandOption::Stderr,
    ];
    let mut plans = defaults;
    for (stream, stdio) in given.into_iter().enumerate() {
        let Some(Stdio(kind)) = stdio else {
            continue;
        };
        let option = || options[stream].clone();
        let invalid = |reason| SpawnError::InvalidOption {
            program: program.to_os_string(),
            option: option(),
            reason,
        };
        let failed = |errno: Errno| SpawnError::OptionFailed {
            program: program.to_os_string(),
            option: option(),
            stage: SpawnStage::Prepare,
            errno: errno.raw_os_error(),
        };
        plans[stream] = match kind {
            StdioKind::Null => StdioPlan::Null,
            StdioKind::Inherit => StdioPlan::Inherit,
            StdioKind::Piped => StdioPlan::Piped,
            StdioKind::Fd(fd) => StdioPlan::Fd(above(fd, floor).map_err(failed)?),
            StdioKind::Bytes(_) if stream != 0 => {
                return Err(invalid("Stdio::from_bytes is for stdin only"));
            }
            StdioKind::Bytes(bytes) => StdioPlan::Fd(stdin_holding(bytes, floor).map_err(failed)?),
            StdioKind::MergeStdout if stream != 2 => {
                return Err(invalid("Stdio::merge_stdout is for stderr only"));
            }
            StdioKind::MergeStdout => StdioPlan::MergeStdout,
        };
    }
    Ok(plans)
}

/// Checks the extra descriptors' numbers (3 or more, each once) and sorts them; their sources
/// are moved above the floor by [`lift_extra_fds`] once the floor is known.
pub(crate) fn extra_fds(
    program: &OsStr,
    given: &[(i32, Arc<OwnedFd>)],
) -> Result<Vec<ExtraFd>, SpawnError> {
    let mut fds: Vec<ExtraFd> = given
        .iter()
        .map(|(target, source)| ExtraFd {
            target: *target,
            source: source.clone(),
        })
        .collect();
    let invalid = |target, reason| SpawnError::InvalidOption {
        program: program.to_os_string(),
        option: CommandOption::Fd(target),
        reason,
    };
    if let Some(low) = fds.iter().find(|f| f.target < 3) {
        return Err(invalid(
            low.target,
            "extra descriptors start at 3 (0-2 are stdin, stdout, stderr)",
        ));
    }
    // Stable: of two equal numbers the first given stays first, the error names the number.
    fds.sort_by_key(|f| f.target);
    if let Some(pair) = fds.windows(2).find(|w| w[0].target == w[1].target) {
        return Err(invalid(pair[0].target, "the number is given twice"));
    }
    Ok(fds)
}

/// Moves every extra descriptor's source above `floor` (checking that it is open).
pub(crate) fn lift_extra_fds(
    program: &OsStr,
    fds: &mut [ExtraFd],
    floor: i32,
) -> Result<(), SpawnError> {
    for fd in fds {
        fd.source = above(&fd.source, floor).map_err(|e| SpawnError::OptionFailed {
            program: program.to_os_string(),
            option: CommandOption::Fd(fd.target),
            stage: SpawnStage::Prepare,
            errno: e.raw_os_error(),
        })?;
    }
    Ok(())
}

/// `fd` itself if it is above `floor` and open; else a close-on-exec duplicate above `floor`.
/// EBADF for a closed or invalid descriptor.
fn above(fd: &Arc<OwnedFd>, floor: i32) -> Result<Arc<OwnedFd>, Errno> {
    if fd.as_raw_fd() > floor {
        rustix::io::fcntl_getfd(&**fd)?;
        Ok(fd.clone())
    } else {
        Ok(Arc::new(rustix::io::fcntl_dupfd_cloexec(&**fd, floor + 1)?))
    }
}

/// Up to this many stdin bytes go through a pipe filled before the spawn: a pipe holds at least
/// one page even when the user's pipe buffer quota is spent, so the write never blocks, and a
/// pipe costs a fraction of a memfd (no file to create and free).
const PIPE_BYTES: usize = 4096;

/// A descriptor the child reads exactly `bytes` from, then end of file: a filled pipe whose
/// write end is already closed for small inputs, a sealed memfd for larger ones. Above `floor`.
fn stdin_holding(bytes: &[u8], floor: i32) -> Result<Arc<OwnedFd>, Errno> {
    if bytes.len() > PIPE_BYTES {
        return sealed_memfd(bytes, floor);
    }
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut written = 0;
    while written < bytes.len() {
        match rustix::io::write(&write, &bytes[written..]) {
            Ok(n) => written += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    drop(write);
    above_fresh(read, floor)
}

/// `fd`, just made by us (so open), moved above `floor` if it is not already.
fn above_fresh(fd: OwnedFd, floor: i32) -> Result<Arc<OwnedFd>, Errno> {
    if fd.as_raw_fd() > floor {
        Ok(Arc::new(fd))
    } else {
        Ok(Arc::new(rustix::io::fcntl_dupfd_cloexec(&fd, floor + 1)?))
    }
}

/// A memfd holding `bytes`, sealed against any change, offset 0, above `floor`.
fn sealed_memfd(bytes: &[u8], floor: i32) -> Result<Arc<OwnedFd>, Errno> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create(
        c"napix-stdin",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let file = std::fs::File::from(fd);
    // Positional writes leave the offset at 0, where the child starts reading.
    file.write_all_at(bytes, 0)
        .map_err(|e| Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    above_fresh(fd, floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn dev_null() -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open("/dev/null").expect("open").into())
    }

    #[test]
    fn extra_fd_numbers_are_checked_and_sorted() {
        let p = OsStr::new("p");
        let fds = extra_fds(p, &[(7, dev_null()), (3, dev_null())]).expect("valid");
        assert_eq!(fds.iter().map(|f| f.target).collect::<Vec<_>>(), [3, 7]);
        let err = extra_fds(p, &[(2, dev_null())]).expect_err("below 3");
        assert!(matches!(
            err,
            SpawnError::InvalidOption {
                option: CommandOption::Fd(2),
                ..
            }
        ));
        let err =
            extra_fds(p, &[(5, dev_null()), (4, dev_null()), (5, dev_null())]).expect_err("twice");
        assert!(matches!(
            err,
            SpawnError::InvalidOption {
                option: CommandOption::Fd(5),
                ..
            }
        ));
    }

    #[test]
    fn sources_end_up_above_the_floor() {
        let fd = dev_null();
        let low_floor = fd.as_raw_fd() - 1;
        assert!(Arc::ptr_eq(&above(&fd, low_floor).expect("open"), &fd));
        let high_floor = fd.as_raw_fd() + 10;
        let lifted = above(&fd, high_floor).expect("open");
        assert!(lifted.as_raw_fd() > high_floor);
    }

    #[test]
    fn small_and_large_stdin_bytes_read_back_exactly() {
        for len in [0, 1, PIPE_BYTES, PIPE_BYTES + 1, 300_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let fd = stdin_holding(&bytes, 2).expect("stdin source");
            let mut file = std::fs::File::from(Arc::try_unwrap(fd).expect("sole owner"));
            let mut back = Vec::new();
            file.read_to_end(&mut back).expect("read to EOF");
            assert!(back == bytes, "{len} bytes: got {}", back.len());
        }
    }

    #[test]
    fn memfd_holds_the_bytes_and_refuses_writes() {
        let fd = sealed_memfd(b"hello", 2).expect("memfd");
        let mut file = std::fs::File::from(Arc::try_unwrap(fd).expect("sole owner"));
        let mut s = String::new();
        file.read_to_string(&mut s).expect("read");
        assert_eq!(s, "hello");
        assert!(file.write_all_at(b"x", 0).is_err(), "sealed against writes");
    }

    #[test]
    fn stdio_kinds_are_checked_per_stream() {
        let p = OsStr::new("p");
        let d = || [StdioPlan::Null, StdioPlan::Inherit, StdioPlan::Inherit];
        let bytes = Stdio::from_bytes("x");
        let merge = Stdio::merge_stdout();
        let err = stdio_plans(p, [None, Some(&bytes), None], d(), 2).expect_err("bytes as stdout");
        assert!(matches!(
            err,
            SpawnError::InvalidOption {
                option: CommandOption::Stdout,
                ..
            }
        ));
        let err = stdio_plans(p, [Some(&merge), None, None], d(), 2).expect_err("merge as stdin");
        assert!(matches!(
            err,
            SpawnError::InvalidOption {
                option: CommandOption::Stdin,
                ..
            }
        ));
        let plans = stdio_plans(p, [Some(&bytes), None, Some(&merge)], d(), 2).expect("valid");
        assert!(matches!(plans[0], StdioPlan::Fd(_)));
        assert!(matches!(plans[1], StdioPlan::Inherit));
        assert!(matches!(plans[2], StdioPlan::MergeStdout));
    }
}
