//! The child's stdin, stdout and stderr, made on the executor thread from the caller's plans:
//! pipes created, `/dev/null` and pipe ends moved above the extra descriptors' numbers, a merged
//! stderr pointed at stdout. The parent's pipe ends go to the handle.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;

use crate::request::StdioPlan;
use crate::sys::spawn::{ChildFd, ChildStdio};

/// The descriptors of one spawn's stdio.
pub(crate) struct StdioParts {
    /// What the child installs, when this spawn made it (a pipe's child end, a moved copy):
    /// held until the spawn returned, then closed, or a pipe's reader would never see EOF.
    child: [Option<OwnedFd>; 3],
    /// The parent's pipe ends: stdin's write end, stdout's and stderr's read ends.
    pub(crate) parent: [Option<OwnedFd>; 3],
}

impl StdioParts {
    /// Makes what `plans` need. Every descriptor the child reads from ends up above `floor`
    /// (the highest extra descriptor number, at least 2). Errors are a pipe's or a dup's errno.
    pub(crate) fn new(
        plans: &[StdioPlan; 3],
        null: BorrowedFd<'_>,
        floor: i32,
    ) -> Result<StdioParts, Errno> {
        let mut parts = StdioParts {
            child: [None, None, None],
            parent: [None, None, None],
        };
        for (stream, plan) in plans.iter().enumerate() {
            match plan {
                StdioPlan::Piped => {
                    let (read, write) = crate::sys::pipe()?;
                    let (child, parent) = if stream == 0 {
                        (read, write)
                    } else {
                        (write, read)
                    };
                    parts.child[stream] = Some(above(child, floor)?);
                    parts.parent[stream] = Some(parent);
                }
                StdioPlan::Null if null.as_raw_fd() <= floor => {
                    parts.child[stream] = Some(rustix::io::fcntl_dupfd_cloexec(null, floor + 1)?);
                }
                StdioPlan::Null
                | StdioPlan::Inherit
                | StdioPlan::Fd(_)
                | StdioPlan::MergeStdout => {}
            }
        }
        Ok(parts)
    }

    /// What the spawn backend installs as 0, 1, 2.
    pub(crate) fn child_stdio<'a>(
        &'a self,
        plans: &'a [StdioPlan; 3],
        null: BorrowedFd<'a>,
    ) -> ChildStdio<'a> {
        let one = |stream: usize| match (&self.child[stream], &plans[stream]) {
            (Some(made), _) => ChildFd::Fd(made.as_fd()),
            (None, StdioPlan::Null) => ChildFd::Fd(null),
            (None, StdioPlan::Fd(fd)) => ChildFd::Fd(fd.as_fd()),
            (None, StdioPlan::Inherit | StdioPlan::Piped | StdioPlan::MergeStdout) => {
                ChildFd::Inherit
            }
        };
        let stdout = one(1);
        let stderr = match plans[2] {
            // Whatever stdout is: the same open file, or, if inherited, the child's own fd 1.
            StdioPlan::MergeStdout => match stdout {
                ChildFd::Inherit => ChildFd::Stdout,
                other => other,
            },
            _ => one(2),
        };
        ChildStdio {
            fds: [one(0), stdout, stderr],
            null,
        }
    }
}

/// `fd`, or a close-on-exec copy of it above `floor` (the original is closed).
fn above(fd: OwnedFd, floor: i32) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > floor {
        Ok(fd)
    } else {
        rustix::io::fcntl_dupfd_cloexec(&fd, floor + 1)
    }
}
