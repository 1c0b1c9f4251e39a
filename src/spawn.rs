//! Where a child is spawned: one spawn request served on the executor thread. Pipes, the backend
//! call, the pidfd, registration in the poller and insertion in the table; the answer is the
//! child's parts ([`Spawned`]), which the caller wraps into its handle.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use rustix::io::Errno;
use tracing::{debug, warn};

use crate::error::{SpawnError, SpawnStage};
use crate::proc_state::{ProcState, Spawned, lost_status};
use crate::queue::SpawnRequest;
use crate::reap::{Reaper, Wait};
use crate::shared::{ChildWatch, Shared};
use crate::sys::spawn::{ChildStdio, Spawner};
use crate::table::{Entry, ProcessInfo};

/// Spawns what `request` asks for and tracks it. A child that runs but cannot be tracked is
/// killed and handed to `reaper` as an orphan, and the spawn fails.
pub(crate) fn spawn<W: Wait>(
    shared: &Shared,
    spawner: &mut Spawner,
    reaper: &mut Reaper<W>,
    request: SpawnRequest,
) -> Result<Spawned, SpawnError> {
    let config = shared.config();
    let program = &request.command.program;
    let fail = |stage: SpawnStage, errno: Errno| {
        SpawnError::from_errno(program, stage, errno.raw_os_error())
    };
    let pipes = if request.discard_output {
        None
    } else {
        let out = crate::sys::pipe().map_err(|e| fail(SpawnStage::Pipe, e))?;
        let err = crate::sys::pipe().map_err(|e| fail(SpawnStage::Pipe, e))?;
        Some((out, err))
    };
    let null = shared.dev_null();
    let stdio = ChildStdio {
        stdin: null,
        stdout: pipes.as_ref().map_or(null, |((_, w), _)| w.as_fd()),
        stderr: pipes.as_ref().map_or(null, |(_, (_, w))| w.as_fd()),
    };
    let watch_pidfd = config.watch == ChildWatch::Pidfd;
    let started = Instant::now();
    let spawned = spawner
        .spawn(config.backend, &request.command, &stdio, watch_pidfd)
        .map_err(|f| SpawnError::from_errno(program, f.stage, f.errno))?;
    let spawn_time = started.elapsed();
    // The child has its copies; ours must go or the reader never sees EOF.
    let (stdout, stderr) = match pipes {
        Some(((out_r, _), (err_r, _))) => (Some(out_r), Some(err_r)),
        None => (None, None),
    };
    let pid = spawned.pid;
    let pidfd = match spawned.pidfd {
        Some(fd) => Some(fd),
        None if !watch_pidfd => None,
        None => match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(std::io::Error::from)
            .and_then(crate::sys::above_stdio)
        {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                // Gone already: the host ignores SIGCHLD, so the kernel reaped the child the
                // moment it exited. It did run; only its status is lost. Its pid may already be
                // someone else's, so it must not be signalled.
                warn!(
                    pid = pid.as_raw_nonzero().get(),
                    "child reaped by the kernel before it could be tracked (SIGCHLD ignored?); status lost"
                );
                let state = ProcState::new(shared.next_serial(), pid, None, shared.spin().clone());
                state.set_status(lost_status(), true);
                return Ok(Spawned {
                    state: Arc::new(state),
                    stdout,
                    stderr,
                });
            }
            Err(e) => {
                // Running but untrackable (out of fds): it is our unreaped child, so its pid is
                // still safe to signal. Kill it, reap it later without blocking, report.
                crate::sys::kill_unreaped_child(pid);
                reaper.add_orphan(pid);
                return Err(fail(SpawnStage::Pidfd, crate::sys::errno_of(e)));
            }
        },
    };
    let serial = shared.next_serial();
    if let Some(fd) = &pidfd
        && let Err(e) = shared.poller().add_child(fd, serial)
    {
        let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        reaper.add_orphan(pid);
        return Err(fail(SpawnStage::Register, e));
    }
    let raw_pid = pid.as_raw_nonzero().get() as u32;
    let state = Arc::new(ProcState::new(serial, pid, pidfd, shared.spin().clone()));
    debug!(
        pid = raw_pid,
        program = %program.display(),
        backend = config.backend.name(),
        spawn_us = spawn_time.as_micros() as u64,
        "spawned"
    );
    let command = request
        .command
        .argv
        .into_iter()
        .map(|a| std::os::unix::ffi::OsStringExt::from_vec(a.into_bytes()))
        .collect();
    shared.table().insert(Entry {
        info: ProcessInfo {
            pid: raw_pid,
            command,
            owner: request.owner,
            started,
        },
        state: state.clone(),
    });
    Ok(Spawned {
        state,
        stdout,
        stderr,
    })
}
