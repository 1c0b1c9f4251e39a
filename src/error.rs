//! [`SpawnError`]: why `create_process` gave no process.

use std::ffi::OsString;
use std::fmt;
use std::io;

use crate::resource::Resource;

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
    /// Checking and preparing a [`Command`](crate::Command)'s options on the caller's thread.
    Prepare,
    /// Installing the child's stdin, stdout or stderr (`dup2` in the child).
    Stdio,
    /// Installing an extra descriptor at its number (`dup2` in the child).
    Fd,
    /// `chdir` in the child.
    Chdir,
    /// `setrlimit` in the child.
    Setrlimit,
    /// `setgroups` in the child.
    Setgroups,
    /// `setgid` in the child.
    Setgid,
    /// `setuid` in the child.
    Setuid,
    /// `setsid` in the child.
    Setsid,
    /// `setpgid` in the child.
    Setpgid,
    /// `prctl(PR_SET_PDEATHSIG)` in the child.
    ParentDeathSignal,
    /// Starting the child in its cgroup (`clone3` with `CLONE_INTO_CGROUP`).
    Cgroup,
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
            SpawnStage::Prepare => "preparing the command",
            SpawnStage::Stdio => "installing stdio in the child",
            SpawnStage::Fd => "installing a descriptor in the child",
            SpawnStage::Chdir => "chdir in the child",
            SpawnStage::Setrlimit => "setrlimit in the child",
            SpawnStage::Setgroups => "setgroups in the child",
            SpawnStage::Setgid => "setgid in the child",
            SpawnStage::Setuid => "setuid in the child",
            SpawnStage::Setsid => "setsid in the child",
            SpawnStage::Setpgid => "setpgid in the child",
            SpawnStage::ParentDeathSignal => "prctl(PR_SET_PDEATHSIG) in the child",
            SpawnStage::Cgroup => "starting the child in its cgroup (clone3)",
        })
    }
}

/// An option of a [`Command`](crate::Command), as named in a [`SpawnError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandOption {
    /// An environment variable ([`Command::env`](crate::Command::env)), by key.
    Env(OsString),
    /// [`Command::current_dir`](crate::Command::current_dir).
    CurrentDir,
    /// [`Command::stdin`](crate::Command::stdin).
    Stdin,
    /// [`Command::stdout`](crate::Command::stdout).
    Stdout,
    /// [`Command::stderr`](crate::Command::stderr).
    Stderr,
    /// [`Command::fd`](crate::Command::fd), by the number asked for in the child.
    Fd(i32),
    /// [`Command::umask`](crate::Command::umask).
    Umask,
    /// [`Command::rlimit`](crate::Command::rlimit), by resource.
    Rlimit(Resource),
    /// [`Command::uid`](crate::Command::uid).
    Uid,
    /// [`Command::gid`](crate::Command::gid).
    Gid,
    /// [`Command::groups`](crate::Command::groups).
    Groups,
    /// [`Command::process_group`](crate::Command::process_group).
    ProcessGroup,
    /// [`Command::setsid`](crate::Command::setsid).
    Setsid,
    /// [`Command::kill_scope`](crate::Command::kill_scope).
    KillScope,
    /// [`Command::parent_death_signal`](crate::Command::parent_death_signal).
    ParentDeathSignal,
    /// [`Command::cgroup`](crate::Command::cgroup) or
    /// [`Command::cgroup_per_child`](crate::Command::cgroup_per_child), by directory.
    Cgroup(std::path::PathBuf),
}

impl fmt::Display for CommandOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandOption::Env(key) => write!(f, "env {:?}", key.display().to_string()),
            CommandOption::CurrentDir => f.write_str("current_dir"),
            CommandOption::Stdin => f.write_str("stdin"),
            CommandOption::Stdout => f.write_str("stdout"),
            CommandOption::Stderr => f.write_str("stderr"),
            CommandOption::Fd(n) => write!(f, "fd {n}"),
            CommandOption::Umask => f.write_str("umask"),
            CommandOption::Rlimit(r) => write!(f, "rlimit {r}"),
            CommandOption::Uid => f.write_str("uid"),
            CommandOption::Gid => f.write_str("gid"),
            CommandOption::Groups => f.write_str("groups"),
            CommandOption::ProcessGroup => f.write_str("process_group"),
            CommandOption::Setsid => f.write_str("setsid"),
            CommandOption::KillScope => f.write_str("kill_scope"),
            CommandOption::ParentDeathSignal => f.write_str("parent_death_signal"),
            CommandOption::Cgroup(dir) => write!(f, "cgroup {}", dir.display()),
        }
    }
}

/// Why [`Executor::create_process`](crate::Executor::create_process) or
/// [`Executor::spawn`](crate::Executor::spawn) returned no process.
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
    /// No such file (ENOENT), or not found in any `PATH` directory. A path through something
    /// that is not a directory (`/etc/passwd/x`, ENOTDIR) is a [`System`](Self::System) error of
    /// kind `NotADirectory` instead, keeping the errno.
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
    /// An option of the [`Command`](crate::Command) is malformed (found before spawning):
    /// an env key that is empty or holds `=` or NUL, a value with NUL, an extra fd number
    /// below 3 or given twice, an rlimit whose soft limit exceeds the hard one, a [`Stdio`]
    /// kind the stream cannot take. Kind `InvalidInput`.
    ///
    /// [`Stdio`]: crate::Stdio
    InvalidOption {
        /// The program as given.
        program: OsString,
        /// Which option.
        option: CommandOption,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Applying an option failed with a system error, on the caller's thread before spawning
    /// ([`SpawnStage::Prepare`]: a missing working directory, a closed descriptor) or in the
    /// child (`Chdir`, `Setrlimit`, `Setgroups`, `Setgid`, `Setuid`, `Stdio`, `Fd`). The kind
    /// is the errno's (`NotFound`, `PermissionDenied`, ...).
    OptionFailed {
        /// The program as given.
        program: OsString,
        /// Which option.
        option: CommandOption,
        /// Where it failed.
        stage: SpawnStage,
        /// The errno.
        errno: i32,
    },
    /// The executor's spawn backend cannot apply this option (glibc's `posix_spawn` has no
    /// step for rlimits, credentials or the umask). Kind `Unsupported`. Another backend
    /// ([`SpawnBackend::Vfork`](crate::SpawnBackend::Vfork), the default) can.
    UnsupportedOption {
        /// The program as given.
        program: OsString,
        /// The backend's [`name`](crate::SpawnBackend::name).
        backend: &'static str,
        /// Which option.
        option: CommandOption,
    },
}

impl SpawnError {
    /// Classifies an errno from `stage` for `program`.
    pub(crate) fn from_errno(program: &OsString, stage: SpawnStage, errno: i32) -> SpawnError {
        let program = program.clone();
        match errno {
            // ENOTDIR (a path through a regular file) keeps its own errno and kind, as std and
            // CPython report it: `System`, kind `NotADirectory`.
            libc::ENOENT if stage == SpawnStage::Exec => SpawnError::NotFound { program },
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
            | SpawnError::System { program, .. }
            | SpawnError::InvalidOption { program, .. }
            | SpawnError::OptionFailed { program, .. }
            | SpawnError::UnsupportedOption { program, .. } => Some(program),
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
            | SpawnError::NotServed { .. }
            | SpawnError::InvalidOption { .. }
            | SpawnError::UnsupportedOption { .. } => None,
            SpawnError::Unavailable { errno }
            | SpawnError::ResourceExhausted { errno, .. }
            | SpawnError::System { errno, .. }
            | SpawnError::OptionFailed { errno, .. } => Some(*errno),
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
            SpawnError::EmptyCommand
            | SpawnError::NulByte { .. }
            | SpawnError::InvalidOption { .. } => io::ErrorKind::InvalidInput,
            SpawnError::UnsupportedOption { .. } => io::ErrorKind::Unsupported,
            SpawnError::NotFound { .. } => io::ErrorKind::NotFound,
            SpawnError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            SpawnError::ArgumentListTooLong { .. } => io::ErrorKind::ArgumentListTooLong,
            SpawnError::ExecFormat { .. } => io::ErrorKind::InvalidData,
            SpawnError::Unsupported { .. } => io::ErrorKind::Unsupported,
            SpawnError::Unavailable { errno }
            | SpawnError::ResourceExhausted { errno, .. }
            | SpawnError::System { errno, .. }
            | SpawnError::OptionFailed { errno, .. } => io::Error::from_raw_os_error(*errno).kind(),
        }
    }
}

/// A program name as an error message shows it: as given when it prints plainly, quoted and
/// escaped as `Debug` does when it holds a NUL, a control character or bytes that are not
/// UTF-8 (so that a message never carries them raw), and named when it is empty.
struct Program<'a>(&'a OsString);

impl fmt::Display for Program<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.to_str() {
            Some("") => f.write_str("empty program name"),
            Some(plain) if !plain.chars().any(char::is_control) => f.write_str(plain),
            _ => write!(f, "{:?}", self.0),
        }
    }
}

/// Why a cgroup option failed, where the errno alone would not say it.
fn cgroup_reason(stage: SpawnStage, errno: i32) -> Option<&'static str> {
    match (stage, errno) {
        (SpawnStage::Cgroup, libc::ECANCELED) => Some(
            "the kernel killed the child as it entered the cgroup (ECANCELED): some kernels do \
             that to every child cloned into a cgroup that was once emptied through cgroup.kill; \
             use Command::cgroup_per_child (a new cgroup for each child) or a cgroup never killed",
        ),
        (SpawnStage::Prepare, libc::EOPNOTSUPP) => Some(
            "not a cgroup v2 directory (it is outside the cgroup2 file system; \
             napix_executor::cgroup2_mount() says where that is mounted)",
        ),
        (SpawnStage::Prepare, libc::ENOSYS) => {
            Some("this kernel has no cgroup.kill (Linux 5.14+), which KillScope::Cgroup needs")
        }
        _ => None,
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
                "the executor did not serve the request within {waited:?}: its loop is not \
                 running or is too busy; if no thread runs it, {}",
                crate::not_served::FIX
            ),
            SpawnError::EmptyCommand => f.write_str("empty command: no program to run"),
            SpawnError::NulByte { program, index: 0 } => {
                write!(
                    f,
                    "{}: the program name contains a NUL byte",
                    Program(program)
                )
            }
            SpawnError::NulByte { program, index } => {
                write!(
                    f,
                    "{}: argument {index} contains a NUL byte",
                    Program(program)
                )
            }
            SpawnError::NotFound { program } if program.is_empty() => {
                f.write_str("empty program name: there is no program to run")
            }
            SpawnError::NotFound { program } => {
                write!(f, "{}: program not found", Program(program))
            }
            SpawnError::PermissionDenied { program } => write!(
                f,
                "{}: permission denied (a directory, or not executable)",
                Program(program)
            ),
            SpawnError::ExecFormat { program } => {
                write!(
                    f,
                    "{}: exec format error (not an executable)",
                    Program(program)
                )
            }
            SpawnError::ArgumentListTooLong { program } => {
                write!(f, "{}: argument list too long", Program(program))
            }
            SpawnError::Unsupported {
                program,
                backend,
                reason,
            } => write!(
                f,
                "{}: the {backend} spawn backend cannot run here: {reason}",
                Program(program)
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
            } => write!(f, "{}: {stage}: {}", Program(program), os(*errno)),
            SpawnError::InvalidOption {
                program,
                option,
                reason,
            } => write!(f, "{}: {option}: {reason}", Program(program)),
            SpawnError::OptionFailed {
                program,
                option: option @ CommandOption::Cgroup(_),
                stage,
                errno,
            } if cgroup_reason(*stage, *errno).is_some() => write!(
                f,
                "{}: {option}: {}",
                Program(program),
                cgroup_reason(*stage, *errno).unwrap_or_default()
            ),
            SpawnError::OptionFailed {
                program,
                option,
                stage,
                errno,
            } => write!(f, "{}: {option}: {stage}: {}", Program(program), os(*errno)),
            SpawnError::UnsupportedOption {
                program,
                backend,
                option,
            } => write!(
                f,
                "{}: {option} is not supported by the {backend} spawn backend",
                Program(program)
            ),
        }
    }
}

impl std::error::Error for SpawnError {}

impl From<SpawnError> for io::Error {
    fn from(e: SpawnError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// `Err(ForkedChild)` unless this process is `owner`, the one that built the executor (or
/// spawned the child): in a child forked without exec, an inherited executor or handle must
/// not act on the parent's children. One `getpid` call.
pub(crate) fn check_owner(owner: u32) -> Result<(), SpawnError> {
    let caller = std::process::id();
    if caller == owner {
        Ok(())
    } else {
        Err(SpawnError::ForkedChild { owner, caller })
    }
}
