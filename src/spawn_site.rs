//! Which thread clones the child: the executor thread (the default, the seed's one-spawner
//! design) or the thread that asked ([`SpawnSite::CallingThread`]). Either way the executor
//! thread alone reaps, escalates kills and keeps the table.
//!
//! Why cloning from any thread is safe, and what stays on the executor thread: the crate docs,
//! "Which thread spawns".
//!
//! # The stop() race
//!
//! A spawn on a calling thread registers itself (a counter in the queue) before it looks whether
//! the executor is stopped, and the loop does not end while one is registered. The child's pidfd
//! goes into the epoll set and the child into the table on the calling thread. A child with a
//! timeout, or one that may have missed the escalation `stop()` starts, is handed to the loop
//! too, which sets its deadline or escalates it: so no child is left untracked or unkilled.
//!
//! # A loop that breaks
//!
//! When the poll set breaks, `run()` abandons: it closes the queue and kills and reaps every
//! child in the table, and no loop looks again. A spawn already registered may insert its child
//! after that pass: the pass sealed the table, which refuses the insert, and the calling thread
//! kills and reaps its own child and fails with [`SpawnError::Stopped`].

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rustix::process::WaitId;

use crate::error::{SpawnError, SpawnStage};
use crate::proc_state::{ProcState, Spawned, reap_blocking};
use crate::queue::Adopted;
use crate::request::PreparedCommand;
use crate::shared::{ChildWatch, Shared, SpawnSite};
use crate::sys::spawn::{SpawnBackend, Spawner};
use crate::timeline::TimelineRecorder;

thread_local! {
    /// Each calling thread's spawn state (the vfork stack, the stdio slots): repeated spawns
    /// allocate nothing.
    static SPAWNER: RefCell<Spawner> = RefCell::new(Spawner::new());
}

/// Whether `command` is spawned on the calling thread by an executor with these settings.
pub(crate) fn on_calling_thread(shared: &Shared, command: &PreparedCommand) -> bool {
    may_spawn_here(shared) && command.setup.lifetime.parent_death.is_none()
}

/// Whether an executor with these settings spawns on the calling thread at all (then a
/// request need not wake the loop ahead: see `RequestQueue::announce`).
pub(crate) fn may_spawn_here(shared: &Shared) -> bool {
    let config = shared.config();
    config.spawn_site == SpawnSite::CallingThread
        && config.backend == SpawnBackend::Vfork
        && config.watch == ChildWatch::Pidfd
        && shared.is_looping()
}

/// Spawns `command` on this thread and hands the child to the executor thread. Errors as the
/// executor thread's spawn; [`SpawnError::Stopped`] if the executor stopped before the clone.
pub(crate) fn spawn_here(
    shared: &Shared,
    mut command: PreparedCommand,
) -> Result<Spawned, SpawnError> {
    // With a timeline: no queue to wait in, so the hand-off in is nil.
    let asked = shared.config().timeline.then(Instant::now);
    let queue = shared.queue();
    // Registered before the look at "stopped": the loop does not end while we are here.
    let Some(_registered) = queue.enter_caller_spawn() else {
        return Err(SpawnError::Stopped);
    };
    let started = SPAWNER
        .with_borrow_mut(|spawner| crate::spawn::start_child(shared, spawner, &command, true))?;
    let fail = |stage, errno: rustix::io::Errno| {
        SpawnError::from_errno(&command.program, stage, errno.raw_os_error())
    };
    let Some(pidfd) = started.pidfd else {
        // Pidfd mode means Linux 5.4+, where CLONE_PIDFD (5.2) works: not expected. The child is
        // ours and unreaped, so its pid is safe to signal; it dies at once.
        crate::sys::kill_unreaped_child(started.pid);
        reap_blocking(WaitId::Pid(started.pid));
        return Err(fail(SpawnStage::Pidfd, rustix::io::Errno::NOSYS));
    };
    let serial = shared.next_serial();
    let mut state = ProcState::new(serial, started.pid, Some(pidfd), shared.spin().clone());
    state.lifetime = command.lifetime.clone();
    state.timeline = asked.map(|at| {
        Box::new(TimelineRecorder::new(
            Some(at),
            at,
            started.at + started.took,
        ))
    });
    let state = Arc::new(state);
    #[cfg(test)]
    if let Some(hook) = tests::BEFORE_INSERT.take() {
        hook(shared, started.pid);
    }
    // Refused if the loop broke and made its last kill-and-reap pass before this insert: the
    // child is then killed and reaped, and the spawn fails with `Stopped`.
    crate::spawn::insert_entry(
        shared,
        &state,
        &mut command.argv,
        command.stdin_bytes.take(),
        thread::current().id(),
        started.at,
    )?;
    // A cgroup made for the child is its state's now (the loop removes it after the reap); on
    // an earlier return it goes with `command`.
    if let Some(made) = command.made_cgroup.take() {
        made.adopt();
    }
    // In the table before the poll set: the loop ignores a readable pidfd it cannot find in the
    // table, and level-triggered epoll would report it again at once, a busy loop until the
    // insert (measured: the loop's CPU per spawn grew tenfold with one calling thread).
    if let Some(fd) = &state.pidfd
        && let Err(e) = shared.poller().add_child(fd, serial)
    {
        // Not watched: out of the table, killed and reaped here (SIGKILLed, it exits at once).
        shared.table().remove(serial);
        let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        reap_blocking(WaitId::PidFd(fd.as_fd()));
        return Err(fail(SpawnStage::Register, e));
    }
    // The loop must set a deadline, or escalate a child that may have missed stop()'s
    // escalation (stop() came after our look above). Anything else needs no word to the loop.
    if state.lifetime.timeout.is_some() || queue.is_closed() {
        queue.push_adopted(Adopted {
            state: state.clone(),
            spawned_at: started.at,
        });
    }
    let [stdin, stdout, stderr] = started.parent;
    Ok(Spawned {
        state,
        stdin,
        stdout,
        stderr,
        exit_fd: None,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Mutex};

    use rustix::process::{Pid, WaitId, WaitIdOptions};

    use crate::error::SpawnError;
    use crate::shared::{ChildWatch, Shared, SpawnSite};
    use crate::sys::spawn::SpawnBackend;
    use crate::{Command, Executor};

    /// A hook run in `spawn_here` between the clone and the table insert.
    type Hook = Box<dyn FnOnce(&Shared, Pid)>;

    thread_local! {
        /// Test seam: runs once, on this thread's next calling-thread spawn, between its clone
        /// and its table insert (the window a breaking loop's last pass may fall into).
        pub(super) static BEFORE_INSERT: Cell<Option<Hook>> = const { Cell::new(None) };
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
        // Served by the loop once it runs: from then on spawns are cloned on this thread.
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
        let spawned = exec.spawn(Command::new("/bin/sleep").arg("30"));
        let pid = cloned
            .lock()
            .expect("not poisoned")
            .take()
            .expect("spawned on the calling thread");
        assert_eq!(spawned.err(), Some(SpawnError::Stopped));
        assert!(exec.running().is_empty(), "refused, yet in the table");
        // Not an unreaped child of ours any more (a zombie or a live one would be waitable).
        assert_eq!(
            rustix::process::waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG
            )
            .err(),
            Some(rustix::io::Errno::CHILD),
            "the child cloned after the last pass was left unreaped"
        );
    }
}
