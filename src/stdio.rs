//! [`Stdio`]: what a child's stdin, stdout or stderr is connected to.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Where a child's standard stream goes, for [`Command::stdin`](crate::Command::stdin),
/// [`stdout`](crate::Command::stdout) and [`stderr`](crate::Command::stderr). The names are
/// std's ([`std::process::Stdio`]); [`from_bytes`](Self::from_bytes) and
/// [`merge_stdout`](Self::merge_stdout) are this crate's.
///
/// ```
/// use napix_executor::{Command, Stdio};
/// let mut cmd = Command::new("sort");
/// cmd.stdin(Stdio::from_bytes("b\na\n"))
///     .stdout(Stdio::piped())
///     .stderr(Stdio::merge_stdout());
/// ```
#[derive(Debug)]
pub struct Stdio(pub(crate) StdioKind);

#[derive(Debug)]
pub(crate) enum StdioKind {
    Null,
    Inherit,
    Piped,
    Fd(Arc<OwnedFd>),
    Bytes(Arc<[u8]>),
    MergeStdout,
}

impl Stdio {
    /// `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// The parent's own descriptor of the same number, as it is at spawn time.
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// A new pipe; the parent's end comes from [`ExecHandle::take_stdin`],
    /// [`take_stdout`](crate::ExecHandle::take_stdout) or
    /// [`take_stderr`](crate::ExecHandle::take_stderr).
    ///
    /// [`ExecHandle::take_stdin`]: crate::ExecHandle::take_stdin
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }

    /// For stdin only: the child reads exactly `bytes`, then end of file.
    ///
    /// The bytes are written on the spawning thread, before the spawn: up to 4 KiB into a pipe
    /// whose write end is then closed (a pipe always holds that much), more into a sealed memfd
    /// (a regular in-memory file). No writer thread is needed and no size can deadlock. Each
    /// spawn of the command gets its own copy of the bytes. As stdout or stderr it is an
    /// [`InvalidOption`](crate::SpawnError::InvalidOption) error.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Stdio {
        Stdio(StdioKind::Bytes(bytes.into().into()))
    }

    /// For stderr only: the same open file as the child's stdout (the same pipe, file or
    /// terminal), so both streams arrive interleaved in the order they were written (`2>&1`).
    /// As stdin or stdout it is an [`InvalidOption`](crate::SpawnError::InvalidOption) error.
    pub fn merge_stdout() -> Stdio {
        Stdio(StdioKind::MergeStdout)
    }
}

impl From<OwnedFd> for Stdio {
    /// The child gets a copy of `fd` (the parent's closes when the command is dropped).
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(Arc::new(fd)))
    }
}

impl From<File> for Stdio {
    /// The child gets a copy of the file's descriptor, sharing its offset.
    fn from(file: File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}
