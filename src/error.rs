//! [`SpawnError`]: why `create_process` gave no process.

use std::ffi::OsString;
use std::fmt;
use std::io;

/// The stage of a spawn that failed with a system error.
///
/// Kept in [`SpawnError::System`] and [`SpawnError::ResourceExhausted`] so that a report says which
/// syscall ran out of what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnStage {
    /// Creating the stdout/stderr pipes.
    Pipe,
    /// The spawn call itself (`posix_spawn`, `fork`, `clone`).
    Spawn,
    /// `execve` in the child.
    Exec,
    /// Getting a pidfd for the new child (`pidfd_open`).
    Pidfd,
    /// Adding the child to the executor's poll set.
    Register,
    /// Creating the eventfd that tells a child's exit when there is no pidfd.
    ExitFd,
}

impl fmt::Display for SpawnStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnStage::Pipe => "creating pipes",
            SpawnStage::Spawn => "spawning",
            SpawnStage::Exec => "executing",
            SpawnStage::Pidfd => "opening a pidfd",
            SpawnStage::Register => "registering the child",
            SpawnStage::ExitFd => "creating the exit eventfd",
        })
    }
}

/// Why [`Executor::create_process`](crate::Executor::create_process) returned no process.
///
/// Every variant that concerns a program names it, and converting into [`io::Error`] keeps the
/// matching [`io::ErrorKind`] (`NotFound`, `PermissionDenied`, `InvalidInput`, ...) with this error
/// as its source.
///
/// ```
/// use napix_executor::SpawnError;
/// let e = SpawnError::NotFound { program: "no-such-tool".into() };
/// assert_eq!(e.to_string(), "no-such-tool: program not found");
/// assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The executor was stopped: the request was pending at `stop()` or came after it.
    Stopped,
    /// The executor could not create its own descriptors (epoll, eventfd, timerfd, /dev/null).
    Unavailable {
        /// The errno of the failed setup call.
        errno: i32,
    },
    /// This executor belongs to another process: the caller runs in a child forked from that
    /// process without exec, which inherits the executor but not its loop thread, so nothing
    /// would ever serve the request. A forked child builds an executor of its own
    /// ([`Executor::new`](crate::Executor::new)) and runs it.
    ForkedChild {
        /// The process the executor belongs to (where it was built).
        owner: u32,
        /// The calling process.
        caller: u32,
    },
    /// No thread served the request in time: the executor's loop is not running (nobody called
    /// [`Executor::run`](crate::Executor::run) or [`Executor::start`](crate::Executor::start)),
    /// or it is too busy. Only with a request timeout
    /// ([`ExecutorBuilder::request_timeout`](crate::ExecutorBuilder::request_timeout)); the
    /// request is withdrawn, and a child spawned for it after all is killed and reaped.
    NotServed {
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// The command vector was empty.
    EmptyCommand,
    /// The program or an argument contains a NUL byte, which no C string can carry.
    NulByte {
        /// The program (lossy when it is itself the culprit).
        program: OsString,
        /// Position in the command vector of the offending element (0 = the program).
        index: usize,
    },
    /// No such file, or not found in any `PATH` directory.
    NotFound {
        /// The program as given.
        program: OsString,
    },
    /// EACCES: a directory, a file without the execute bit, or a non-searchable path.
    PermissionDenied {
        /// The program as given.
        program: OsString,
    },
    /// ENOEXEC: the file is not in a format the kernel can execute (and has no `#!`).
    ExecFormat {
        /// The program as given.
        program: OsString,
    },
    /// E2BIG: the arguments and environment together exceed the kernel's limit.
    ArgumentListTooLong {
        /// The program as given.
        program: OsString,
    },
    /// EMFILE, ENFILE, EAGAIN or ENOMEM: out of descriptors, processes or memory.
    ResourceExhausted {
        /// The program as given.
        program: OsString,
        /// What was being done.
        stage: SpawnStage,
        /// The errno.
        errno: i32,
    },
    /// The chosen spawn backend cannot work on this system (`reason` says what is missing);
    /// another backend can. Kind [`io::ErrorKind::Unsupported`].
    Unsupported {
        /// The program as given.
        program: OsString,
        /// The backend's name ([`SpawnBackend::name`](crate::SpawnBackend::name)).
        backend: &'static str,
        /// What this system lacks.
        reason: &'static str,
    },
    /// Any other system error.
    System {
        /// The program as given.
        program: OsString,
        /// What was being done.
        stage: SpawnStage,
        /// The errno.
        errno: i32,
    },
}

impl SpawnError {
    /// Classifies an errno from `stage` for `program`.
    pub(crate) fn from_errno(program: &OsString, stage: SpawnStage, errno: i32) -> SpawnError {
        let program = program.clone();
        match errno {
            libc::ENOENT | libc::ENOTDIR if stage == SpawnStage::Exec => {
                SpawnError::NotFound { program }
            }
            libc::EACCES | libc::EISDIR if stage == SpawnStage::Exec => {
                SpawnError::PermissionDenied { program }
            }
            libc::ENOEXEC => SpawnError::ExecFormat { program },
            libc::E2BIG => SpawnError::ArgumentListTooLong { program },
            libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM => {
                SpawnError::ResourceExhausted {
                    program,
                    stage,
                    errno,
                }
            }
            _ => SpawnError::System {
                program,
                stage,
                errno,
            },
        }
    }

    /// The program this error is about, when there is one.
    pub fn program(&self) -> Option<&OsString> {
        match self {
            SpawnError::Stopped
            | SpawnError::Unavailable { .. }
            | SpawnError::ForkedChild { .. }
            | SpawnError::NotServed { .. }
            | SpawnError::EmptyCommand => None,
            SpawnError::NulByte { program, .. }
            | SpawnError::NotFound { program }
            | SpawnError::PermissionDenied { program }
            | SpawnError::ExecFormat { program }
            | SpawnError::ArgumentListTooLong { program }
            | SpawnError::ResourceExhausted { program, .. }
            | SpawnError::Unsupported { program, .. }
            | SpawnError::System { program, .. } => Some(program),
        }
    }

    /// The errno behind this error, when a syscall gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            SpawnError::Stopped
            | SpawnError::ForkedChild { .. }
            | SpawnError::EmptyCommand
            | SpawnError::NulByte { .. }
            | SpawnError::Unsupported { .. }
            | SpawnError::NotServed { .. } => None,
            SpawnError::Unavailable { errno }
            | SpawnError::ResourceExhausted { errno, .. }
            | SpawnError::System { errno, .. } => Some(*errno),
            SpawnError::NotFound { .. } => Some(libc::ENOENT),
            SpawnError::PermissionDenied { .. } => Some(libc::EACCES),
            SpawnError::ExecFormat { .. } => Some(libc::ENOEXEC),
            SpawnError::ArgumentListTooLong { .. } => Some(libc::E2BIG),
        }
    }

    /// The [`io::ErrorKind`] this error keeps when converted into an [`io::Error`].
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            SpawnError::Stopped | SpawnError::ForkedChild { .. } => io::ErrorKind::Other,
            SpawnError::NotServed { .. } => io::ErrorKind::TimedOut,
            SpawnError::EmptyCommand | SpawnError::NulByte { .. } => io::ErrorKind::InvalidInput,
            SpawnError::NotFound { .. } => io::ErrorKind::NotFound,
            SpawnError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            SpawnError::ArgumentListTooLong { .. } => io::ErrorKind::ArgumentListTooLong,
            SpawnError::ExecFormat { .. } => io::ErrorKind::InvalidData,
            SpawnError::Unsupported { .. } => io::ErrorKind::Unsupported,
            SpawnError::Unavailable { errno }
            | SpawnError::ResourceExhausted { errno, .. }
            | SpawnError::System { errno, .. } => io::Error::from_raw_os_error(*errno).kind(),
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = |errno: i32| io::Error::from_raw_os_error(errno);
        match self {
            SpawnError::Stopped => f.write_str("the executor is stopped"),
            SpawnError::Unavailable { errno } => {
                write!(f, "the executor could not be set up: {}", os(*errno))
            }
            SpawnError::ForkedChild { owner, caller } => write!(
                f,
                "this executor belongs to process {owner}: process {caller} is a child forked \
                 from it without exec (build its own with Executor::new() and run it)"
            ),
            SpawnError::NotServed { waited } => write!(
                f,
                "the executor did not serve the request within {waited:?} (is its loop running?)"
            ),
            SpawnError::EmptyCommand => f.write_str("empty command: no program to run"),
            SpawnError::NulByte { program, index: 0 } => {
                write!(
                    f,
                    "{}: the program name contains a NUL byte",
                    program.display()
                )
            }
            SpawnError::NulByte { program, index } => {
                write!(
                    f,
                    "{}: argument {index} contains a NUL byte",
                    program.display()
                )
            }
            SpawnError::NotFound { program } => {
                write!(f, "{}: program not found", program.display())
            }
            SpawnError::PermissionDenied { program } => write!(
                f,
                "{}: permission denied (a directory, or not executable)",
                program.display()
            ),
            SpawnError::ExecFormat { program } => {
                write!(
                    f,
                    "{}: exec format error (not an executable)",
                    program.display()
                )
            }
            SpawnError::ArgumentListTooLong { program } => {
                write!(f, "{}: argument list too long", program.display())
            }
            SpawnError::Unsupported {
                program,
                backend,
                reason,
            } => write!(
                f,
                "{}: the {backend} spawn backend cannot run here: {reason}",
                program.display()
            ),
            SpawnError::ResourceExhausted {
                program,
                stage,
                errno,
            }
            | SpawnError::System {
                program,
                stage,
                errno,
            } => write!(f, "{}: {stage}: {}", program.display(), os(*errno)),
        }
    }
}

impl std::error::Error for SpawnError {}

impl From<SpawnError> for io::Error {
    fn from(e: SpawnError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}
