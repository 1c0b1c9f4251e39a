//! Where a child is spawned and put under watch: pipes, the backend call, the pidfd, insertion
//! in the table and registration in the poll set; the answer is the child's parts
//! ([`Spawned`]), which the caller wraps into its handle. This runs on the thread that spawns
//! (see [`crate::spawn_site`]), never on the loop.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use rustix::io::Errno;
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
use tracing::{debug, warn};

use crate::child_stdio::StdioParts;
use crate::error::{SpawnError, SpawnStage};
use crate::exit_future::ExitFd;
use crate::proc_state::reap_blocking;
use crate::proc_state::{ProcState, Spawned, lost_status};
use crate::queue::Adopted;
use crate::request::PreparedCommand;
use crate::shared::{ChildWatch, Shared};
use crate::sys::spawn::{Spawner, naming};
use crate::table::{Entry, ProcessInfo};
use crate::timeline::TimelineRecorder;

/// A child the backend started, before it is tracked: its pid, its pidfd (if the backend made one
/// atomically), our ends of its pipes, and when it was spawned.
pub(crate) struct Started {
    pub(crate) pid: Pid,
    pub(crate) pidfd: Option<OwnedFd>,
    /// Signal mode: a pidfd to confirm the start time with (`sys::spawn::naming`).
    pub(crate) confirm: Option<OwnedFd>,
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
        confirm: spawned.confirm,
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

/// Who asked for a child and when: what its table entry and timeline record.
pub(crate) struct Asker {
    /// The thread that asked (the trace's owner).
    pub(crate) owner: std::thread::ThreadId,
    /// When the request was queued, for one the spawner thread serves (`Some` only with a
    /// timeline); `None` for a child its caller clones.
    pub(crate) queued: Option<Instant>,
}

/// Spawns `command` and tracks the child: pipes, the backend call, the pidfd (or, in signal
/// mode, the start time that names the child with its pid), the table, the poll set. Runs on
/// whichever thread spawns (a calling thread, or the executor's spawner thread), never on the
/// loop, which is told by a message only of what it must act on: a deadline, a stop it may have
/// missed, a signal-mode child that may have exited before it was in the table, an orphan.
///
/// The command's argument vector moves into the table; its cgroup (if it made one) goes to the
/// child's state. A child that runs but cannot be tracked is killed and the spawn fails.
pub(crate) fn spawn_tracked(
    shared: &Shared,
    spawner: &mut Spawner,
    command: &mut PreparedCommand,
    asker: &Asker,
) -> Result<Spawned, SpawnError> {
    let config = shared.config();
    let queue = shared.queue();
    // Registered before the look at "stopped": the loop does not end while we are here.
    let Some(_registered) = queue.enter_caller_spawn() else {
        return Err(SpawnError::Stopped);
    };
    let spawn_started = config.timeline.then(Instant::now);
    // A function, not a closure over `command`: its argv is moved into the table below.
    fn fail(program: &std::ffi::OsString, stage: SpawnStage, errno: Errno) -> SpawnError {
        SpawnError::from_errno(program, stage, errno.raw_os_error())
    }
    let watch_pidfd = config.watch == ChildWatch::Pidfd;
    let exit_fd = if watch_pidfd {
        None
    } else {
        Some(ExitFd::create().map_err(|e| {
            fail(
                &command.program,
                SpawnStage::ExitFd,
                crate::sys::errno_of(e),
            )
        })?)
    };
    let started = start_child(shared, spawner, command, watch_pidfd)?;
    // A child its caller cloned was never queued: its hand-off in is nil.
    let timeline = spawn_started.map(|at| {
        Box::new(TimelineRecorder::new(
            Some(asker.queued.unwrap_or(at)),
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
                // still ours, reaped by the loop later; the spawn fails.
                kill_untracked(shared, pid);
                return Err(fail(
                    &command.program,
                    SpawnStage::Pidfd,
                    crate::sys::errno_of(e),
                ));
            }
        },
    };
    // Without a pidfd the pid names the child only together with its start time: read it now,
    // while the pid is surely the child's (unreaped, unless the kernel reaps by itself).
    let start_time = match &pidfd {
        Some(_) => None,
        None => match naming::start_time(pid, started.confirm.as_ref(), |p| shared.start_time(p)) {
            Ok(Some(t)) => Some(t),
            Ok(None) => return Ok(lost_at_spawn(shared, pid, stdin, stdout, stderr)),
            Err(e) => {
                debug!(error = %e, "no /proc/<pid>/stat: the child is named by its pid alone");
                None
            }
        },
    };
    let serial = shared.next_serial();
    let mut state =
        ProcState::new(serial, pid, pidfd, shared.spin().clone()).with_start_time(start_time);
    state.timeline = timeline;
    state.lifetime = command.lifetime.clone();
    let state = Arc::new(state);
    #[cfg(test)]
    tests::before_insert(shared, pid);
    // Refused if the loop broke and made its last kill-and-reap pass before this insert: the
    // child is then killed and reaped, and the spawn fails with `Stopped`.
    insert_entry(
        shared,
        &state,
        &mut command.argv,
        command.stdin_bytes.take(),
        asker.owner,
        started.at,
    )?;
    // In the table before the poll set: the loop ignores a readable pidfd it cannot find in the
    // table, so an event that came before the insert would be lost (one-shot registration).
    if let Some(fd) = &state.pidfd
        && let Err(e) = shared.poller().add_child(fd, serial)
    {
        // Not watched: out of the table, killed and reaped here (SIGKILLed, it exits at once;
        // the pidfd names it, so the wait cannot take another child's status).
        shared.table().remove(serial);
        let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        reap_blocking(WaitId::PidFd(fd.as_fd()));
        return Err(fail(&command.program, SpawnStage::Register, e));
    }
    // Watched now: a cgroup made for the child is its state's (the loop removes it after the
    // reap). On an earlier return, the refused insert or the refused poll set, it goes with
    // `command`, whose drop removes it (the child in it was killed and reaped by then).
    if let Some(made) = command.made_cgroup.take() {
        made.adopt();
    }
    // What the loop must hear of: a deadline to set; a child that may have missed stop()'s
    // escalation (stop() came after our look above); in signal mode, a child that may have
    // exited before it was in the table (its SIGCHLD found nothing to reap). Anything else
    // needs no word to the loop.
    if state.lifetime.timeout.is_some() || queue.is_closed() || !watch_pidfd {
        queue.push_adopted(Adopted {
            state: state.clone(),
            spawned_at: started.at,
        });
    }
    Ok(Spawned {
        state,
        stdin,
        stdout,
        stderr,
        exit_fd,
    })
}

/// A child that runs but got no pidfd (`pidfd_open` failed, `EMFILE`): named by pid and start
/// time while it is surely ours (unreaped), killed if it still is, and handed to the loop,
/// which reaps it once it exits.
fn kill_untracked(shared: &Shared, pid: Pid) {
    let orphan = crate::reap::kill_untracked(&*shared.sys_wait(), pid);
    if let Some(orphan) = orphan {
        shared.queue().push_orphan(orphan);
    }
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
    use std::cell::Cell;
    use std::process::Command;
    use std::sync::Mutex;

    use crate::shared::SpawnSite;
    use crate::sys::spawn::SpawnBackend;
    use crate::{Command as NapixCommand, Executor};

    /// A hook run in `spawn_tracked` between the clone and the table insert.
    type Hook = Box<dyn FnOnce(&Shared, Pid)>;

    thread_local! {
        /// Test seam: runs once, on this thread's next spawn, between its clone and its table
        /// insert (the window a breaking loop's last pass may fall into).
        static BEFORE_INSERT: Cell<Option<Hook>> = const { Cell::new(None) };
    }

    pub(super) fn before_insert(shared: &Shared, pid: Pid) {
        if let Some(hook) = BEFORE_INSERT.take() {
            hook(shared, pid);
        }
    }

    #[test]
    fn a_child_inserted_after_the_broken_loops_last_pass_is_killed_and_reaped_by_its_caller() {
        if !crate::sys::pidfd_supported() {
            return;
        }
        let exec = Executor::builder()
            .backend(SpawnBackend::Vfork)
            .child_watch(ChildWatch::Pidfd)
            .spawn_site(SpawnSite::CallingThread)
            .start()
            .expect("start");
        // Served by the spawner thread if the loop is not running yet; cloned on this thread
        // from then on.
        let warm = exec
            .create_process(&["/bin/true"], true)
            .expect("spawn true");
        assert!(warm.wait().success());
        let cloned: Arc<Mutex<Option<Pid>>> = Arc::default();
        let seen = cloned.clone();
        // What run() does when its poll set breaks, right after this spawn's clone.
        BEFORE_INSERT.set(Some(Box::new(move |shared: &Shared, pid| {
            shared.abandon();
            *seen.lock().expect("not poisoned") = Some(pid);
        })));
        let spawned = exec.spawn(NapixCommand::new("/bin/sleep").arg("30"));
        let pid = cloned
            .lock()
            .expect("not poisoned")
            .take()
            .expect("spawned on the calling thread");
        assert_eq!(spawned.err(), Some(SpawnError::Stopped));
        assert!(exec.running().is_empty(), "refused, yet in the table");
        // Not an unreaped child of ours any more (a zombie or a live one would be waitable).
        assert_eq!(
            waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG
            )
            .err(),
            Some(Errno::CHILD),
            "the child cloned after the last pass was left unreaped"
        );
    }
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
