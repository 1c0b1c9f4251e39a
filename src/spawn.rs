//! Where a child is spawned: one spawn request served on the executor thread. Pipes, the backend
//! call, the pidfd, registration in the poller and insertion in the table; the answer is the
//! child's parts ([`Spawned`]), which the caller wraps into its handle.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use rustix::io::Errno;
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
use tracing::{debug, warn};

use crate::child_stdio::StdioParts;
use crate::error::{SpawnError, SpawnStage};
use crate::exit_future::ExitFd;
use crate::proc_state::{ProcState, Spawned, lost_status};
use crate::queue::SpawnRequest;
use crate::reap::{Reaper, Wait};
use crate::request::PreparedCommand;
use crate::shared::{ChildWatch, Shared};
use crate::sys::spawn::Spawner;
use crate::table::{Entry, ProcessInfo};
use crate::timeline::TimelineRecorder;

/// A child the backend started, before it is tracked: its pid, its pidfd (if the backend made one
/// atomically), our ends of its pipes, and when it was spawned.
pub(crate) struct Started {
    pub(crate) pid: Pid,
    pub(crate) pidfd: Option<OwnedFd>,
    /// Our ends of its stdin, stdout and stderr pipes.
    pub(crate) parent: [Option<OwnedFd>; 3],
    /// When the backend was called.
    pub(crate) at: Instant,
    /// How long the backend call took (the clone and the exec).
    pub(crate) took: std::time::Duration,
}

/// The first half of every spawn, on whichever thread spawns: the pipes, then the backend call.
/// The child's copies of the pipe ends are closed when this returns (ours must go, or a reader
/// never sees EOF).
pub(crate) fn start_child(
    shared: &Shared,
    spawner: &mut Spawner,
    command: &PreparedCommand,
    clone_pidfd: bool,
) -> Result<Started, SpawnError> {
    let null = shared.dev_null();
    let plans = &command.stdio;
    let parts = StdioParts::new(plans, null, command.setup.fd_floor()).map_err(|e| {
        SpawnError::from_errno(&command.program, SpawnStage::Pipe, e.raw_os_error())
    })?;
    let stdio = parts.child_stdio(plans, null);
    let at = Instant::now();
    let spawned = spawner
        .spawn(shared.config().backend, command, &stdio, clone_pidfd)
        .map_err(|f| command.child_error(f))?;
    let took = at.elapsed();
    debug!(
        pid = spawned.pid.as_raw_nonzero().get(),
        program = %command.program.display(),
        backend = shared.config().backend.name(),
        spawn_us = took.as_micros() as u64,
        "spawned"
    );
    Ok(Started {
        pid: spawned.pid,
        pidfd: spawned.pidfd,
        parent: parts.parent,
        at,
        took,
    })
}

/// The second half: puts a tracked child in the table (the trace behind `running()`), with the
/// command it runs (moved out of `argv`) and the descriptor holding its stdin bytes. Fails with
/// [`SpawnError::Stopped`], the child killed and reaped, if the table was sealed (see
/// `Table::insert`).
pub(crate) fn insert_entry(
    shared: &Shared,
    state: &Arc<ProcState>,
    argv: &mut Vec<std::ffi::CString>,
    stdin_bytes: Option<Arc<std::os::fd::OwnedFd>>,
    owner: std::thread::ThreadId,
    started: Instant,
) -> Result<(), SpawnError> {
    let command = std::mem::take(argv)
        .into_iter()
        .map(|a| std::os::unix::ffi::OsStringExt::from_vec(a.into_bytes()))
        .collect();
    let refused = shared.table().insert(Entry {
        info: ProcessInfo {
            pid: state.pid,
            command,
            owner,
            started,
        },
        state: state.clone(),
        stdin_bytes,
    });
    if refused.is_err() {
        // The table was sealed by the last kill-and-reap pass (the loop broke): no loop will
        // reap this child, so it is killed and reaped here (SIGKILLed, it exits at once).
        state.kill_and_reap();
        return Err(SpawnError::Stopped);
    }
    Ok(())
}

/// Spawns what `request` asks for on the executor thread and tracks it. A child that runs but
/// cannot be tracked is killed and handed to `reaper` as an orphan, and the spawn fails.
///
/// The request's argument vector moves into the table; the rest of it (environment, stdin
/// source, setup) stays for the caller to drop once the reply is out: freeing it is no part of
/// the spawn the requester waits for.
pub(crate) fn spawn<W: Wait>(
    shared: &Shared,
    spawner: &mut Spawner,
    reaper: &mut Reaper<W>,
    request: &mut SpawnRequest,
) -> Result<Spawned, SpawnError> {
    let config = shared.config();
    // With a timeline, this request's wait in the queue ends here.
    let spawn_started = config.timeline.then(Instant::now);
    let program = &request.command.program;
    let fail = |stage: SpawnStage, errno: Errno| {
        SpawnError::from_errno(program, stage, errno.raw_os_error())
    };
    let watch_pidfd = config.watch == ChildWatch::Pidfd;
    let exit_fd = if watch_pidfd {
        None
    } else {
        Some(ExitFd::create().map_err(|e| fail(SpawnStage::ExitFd, crate::sys::errno_of(e)))?)
    };
    let started = start_child(shared, spawner, &request.command, watch_pidfd)?;
    let timeline = spawn_started.map(|at| {
        Box::new(TimelineRecorder::new(
            request.queued,
            at,
            started.at + started.took,
        ))
    });
    let [stdin, stdout, stderr] = started.parent;
    let pid = started.pid;
    let pidfd = match started.pidfd {
        Some(fd) => Some(fd),
        None if !watch_pidfd => None,
        None => match open_pidfd(pid) {
            Opened::Tracked(fd) => Some(fd),
            Opened::Gone => return Ok(lost_at_spawn(shared, pid, stdin, stdout, stderr)),
            Opened::Failed(e) => {
                // Running but untrackable (out of fds): named by pid and start time, killed if
                // still ours, reaped later without blocking; the spawn fails.
                reaper.kill_untracked(pid);
                return Err(fail(SpawnStage::Pidfd, crate::sys::errno_of(e)));
            }
        },
    };
    // Without a pidfd the pid names the child only together with its start time: read it now,
    // while the pid is surely the child's (unreaped, unless the kernel reaps by itself).
    let start_time = match &pidfd {
        Some(_) => None,
        None => match reaper.start_time(pid) {
            Ok(Some(t)) => Some(t),
            Ok(None) => return Ok(lost_at_spawn(shared, pid, stdin, stdout, stderr)),
            Err(e) => {
                debug!(error = %e, "no /proc/<pid>/stat: the child is named by its pid alone");
                None
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
    let mut state =
        ProcState::new(serial, pid, pidfd, shared.spin().clone()).with_start_time(start_time);
    state.timeline = timeline;
    state.lifetime = request.command.lifetime.clone();
    let state = Arc::new(state);
    insert_entry(
        shared,
        &state,
        &mut request.command.argv,
        request.command.stdin_bytes.take(),
        request.owner,
        started.at,
    )?;
    Ok(Spawned {
        state,
        stdin,
        stdout,
        stderr,
        exit_fd,
    })
}

/// What `pidfd_open` found for a child that a backend spawned without a pidfd.
enum Opened {
    /// A pidfd for our child.
    Tracked(OwnedFd),
    /// The child is gone: reaped by the kernel already (the host ignores SIGCHLD). Its pid may
    /// name a stranger by now: never signal it.
    Gone,
    /// No pidfd (out of fds); the child is ours and unreaped.
    Failed(std::io::Error),
}

/// Opens a pidfd for `pid`, a child we just spawned and have not reaped.
///
/// When the host ignores SIGCHLD the kernel reaps the child the moment it exits, and by the time
/// of `pidfd_open` its pid may have gone to another process: the open then succeeds on a
/// stranger. `waitid(P_PIDFD, WNOHANG | WNOWAIT)` tells: it answers for our children only
/// (running or zombie) and fails with `ECHILD` for anyone else, without reaping.
fn open_pidfd(pid: Pid) -> Opened {
    let fd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(std::io::Error::from)
        .and_then(crate::sys::above_stdio)
    {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Opened::Gone,
        Err(e) => return Opened::Failed(e),
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    loop {
        return match waitid(WaitId::PidFd(fd.as_fd()), options) {
            Ok(_) => Opened::Tracked(fd),
            Err(Errno::INTR) => continue,
            // ECHILD: not our child. Anything else: we cannot tell, so it must not be signalled.
            Err(_) => Opened::Gone,
        };
    }
}

/// The answer for a child the kernel reaped before it could be tracked: the host ignores SIGCHLD,
/// so the kernel reaped the child the moment it exited. It did run; only its status is lost. Its
/// pid may already be someone else's, so it is never signalled.
fn lost_at_spawn(
    shared: &Shared,
    pid: rustix::process::Pid,
    stdin: Option<std::os::fd::OwnedFd>,
    stdout: Option<std::os::fd::OwnedFd>,
    stderr: Option<std::os::fd::OwnedFd>,
) -> Spawned {
    warn!(
        pid = pid.as_raw_nonzero().get(),
        "child reaped by the kernel before it could be tracked (SIGCHLD ignored?); status lost"
    );
    let state = ProcState::new(shared.next_serial(), pid, None, shared.spin().clone());
    state.set_status(lost_status(), true);
    Spawned {
        state: Arc::new(state),
        stdin,
        stdout,
        stderr,
        // The handle makes the readiness eventfd (written at once: the status is set).
        exit_fd: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Stranger;
    use std::process::Command;

    #[test]
    fn a_pidfd_naming_a_process_that_is_not_our_child_is_not_tracked() {
        if !crate::sys::pidfd_supported() {
            return;
        }
        let stranger = Stranger::new();
        assert!(
            matches!(open_pidfd(stranger.pid), Opened::Gone),
            "a recycled pid was taken for our child"
        );
        let mut own = Command::new("/bin/sleep").arg("30").spawn().expect("sleep");
        let pid = Pid::from_raw(own.id() as i32).expect("positive");
        assert!(matches!(open_pidfd(pid), Opened::Tracked(_)));
        own.kill().expect("kill");
        own.wait().expect("wait");
        let exited = Command::new("/bin/true").spawn().expect("true");
        let pid = Pid::from_raw(exited.id() as i32).expect("positive");
        // Exited but not reaped: still ours, tracked (the pidfd is readable at once).
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(matches!(open_pidfd(pid), Opened::Tracked(_)));
        let mut exited = exited;
        exited.wait().expect("wait");
    }
}
