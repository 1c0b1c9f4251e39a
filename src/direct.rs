//! Spawning without the executor thread: the same backends, called on the current thread.
//!
//! For benchmarks and tests that want the raw spawn path and do their own waiting. The child
//! gets the same treatment as through the executor (stdio on `/dev/null`, fds 0-2 only, signals
//! reset); the caller owns its reaping through [`DirectChild::wait`]. Each thread keeps its own spawn
//! state (the vfork stack, the posix_spawn attributes), so repeated spawns allocate nothing.
//!
//! Compiled only with the `bench-internals` cargo feature, which is not covered by semver: it exists
//! for napix-exec's benchmarks (the "raw" contenders) and this crate's own tests and fuzz targets.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitStatus;

use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};

use crate::error::{SpawnError, SpawnStage};
use crate::proc_state::exit_status_from;
use crate::request::PreparedCommand;
use crate::sys::spawn::{ChildFd, ChildStdio, SpawnBackend, Spawner};

thread_local! {
    static SPAWNER: RefCell<Spawner> = RefCell::new(Spawner::new());
    static DEV_NULL: RefCell<Option<OwnedFd>> = const { RefCell::new(None) };
}

/// A command validated and resolved once, ready to spawn many times.
///
/// ```
/// use napix_executor::{SpawnBackend, direct::Prepared};
/// let cmd = Prepared::new(&["/bin/sh", "-c", "exit 4"])?;
/// for backend in SpawnBackend::ALL {
///     assert_eq!(cmd.spawn(backend)?.wait()?.code(), Some(4));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Prepared {
    command: PreparedCommand,
}

impl Prepared {
    /// Validates `command` and looks its program up in `PATH`.
    pub fn new<S: AsRef<OsStr>>(command: &[S]) -> Result<Prepared, SpawnError> {
        Ok(Prepared {
            command: PreparedCommand::new(command)?,
        })
    }

    /// Spawns it on the calling thread through `backend`, stdio on `/dev/null`.
    pub fn spawn(&self, backend: SpawnBackend) -> Result<DirectChild, SpawnError> {
        let program = &self.command.program;
        let fail = |stage, errno| SpawnError::from_errno(program, stage, errno);
        DEV_NULL.with_borrow_mut(|null| {
            let null = match null {
                Some(fd) => fd,
                slot @ None => slot.insert(
                    crate::sys::open_dev_null()
                        .map_err(|e| fail(SpawnStage::Spawn, e.raw_os_error().unwrap_or(0)))?,
                ),
            };
            let stdio = ChildStdio {
                fds: [ChildFd::Fd(null.as_fd()); 3],
                null: null.as_fd(),
            };
            let spawned = SPAWNER
                .with_borrow_mut(|s| {
                    s.spawn(
                        backend,
                        &self.command,
                        &stdio,
                        crate::sys::pidfd_supported(),
                    )
                })
                .map_err(|f| f.into_error(program))?;
            Ok(DirectChild {
                pid: spawned.pid,
                pidfd: spawned.pidfd,
            })
        })
    }
}

/// A child spawned by [`Prepared::spawn`]; the caller must [`wait`](Self::wait) for it (dropping
/// it without waiting leaves a zombie until this process exits, as with `std::process::Child`).
#[derive(Debug)]
#[must_use = "wait() for the child, or it stays a zombie"]
pub struct DirectChild {
    pid: Pid,
    pidfd: Option<OwnedFd>,
}

impl DirectChild {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// Blocks until the child exits and reaps it (`waitid`, through the pidfd when there is one).
    pub fn wait(self) -> io::Result<ExitStatus> {
        loop {
            let id = match &self.pidfd {
                Some(fd) => WaitId::PidFd(fd.as_fd()),
                None => WaitId::Pid(self.pid),
            };
            match waitid(id, WaitIdOptions::EXITED) {
                Ok(Some(status)) => return Ok(exit_status_from(&status)),
                Ok(None) => continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
