//! Which thread clones the child. Never the loop: it only watches (the trace, reaps, kill
//! escalation, deadlines, stop), so that a child stuck before its exec (a frozen cgroup, a
//! program on a hung NFS mount) holds up only the thread that spawns it.
//!
//! - By default ([`SpawnSite::CallingThread`]) the thread that asks clones its own child, with
//!   any backend and in either watch mode, and hands it to the loop by putting it in the table
//!   and the poll set ([`crate::spawn::spawn_tracked`]).
//! - A blocking call made while no thread runs the loop first waits for the loop (nothing would
//!   watch its child yet), then clones its child itself.
//! - What must not be cloned there goes to the executor's spawner thread
//!   ([`crate::spawner_thread`]), through the request queue: a command with a
//!   [`parent_death_signal`](crate::Command::parent_death_signal) (it follows the spawning
//!   *thread*, and a calling thread may end long before the executor), an async spawn made
//!   while no thread runs the loop (a task must not block waiting for it), and, with
//!   [`SpawnSite::ExecutorThread`], every request.
//!
//! Why cloning from any thread is safe: the crate docs, "Which thread spawns".
//!
//! # The stop() race
//!
//! A spawn registers itself (a counter in the queue) before it looks whether the executor is
//! stopped, and the loop does not end while one is registered. The child's pidfd goes into the
//! epoll set and the child into the table on the spawning thread. A child with a timeout, one
//! that may have missed the escalation `stop()` starts, or (signal mode) one that may have
//! exited before it was in the table is handed to the loop too, which sets its deadline,
//! escalates it or looks at it: so no child is left untracked, unkilled or unreaped.
//!
//! # A loop that breaks
//!
//! When the poll set breaks, `run()` abandons: it closes the queue and kills and reaps every
//! child in the table, and no loop looks again. A spawn already registered may insert its child
//! after that pass: the pass sealed the table, which refuses the insert, and the spawning thread
//! kills and reaps its own child and fails with [`SpawnError::Stopped`].

use std::cell::RefCell;
use std::thread;

use crate::error::SpawnError;
use crate::proc_state::Spawned;
use crate::request::PreparedCommand;
use crate::shared::{Shared, SpawnSite};
use crate::spawn::Asker;
use crate::sys::spawn::Spawner;

thread_local! {
    /// Each spawning thread's spawn state (the vfork stack, the stdio slots): repeated spawns
    /// allocate nothing.
    static SPAWNER: RefCell<Spawner> = RefCell::new(Spawner::without_descriptors());
}

/// Whether `command` is spawned on the calling thread by an executor with these settings (else
/// it is queued for the spawner thread).
pub(crate) fn on_calling_thread(shared: &Shared, command: &PreparedCommand) -> bool {
    may_spawn_here(shared) && fits_calling_thread(shared, command)
}

/// Whether `command` may be cloned on the calling thread once a loop runs.
pub(crate) fn fits_calling_thread(shared: &Shared, command: &PreparedCommand) -> bool {
    shared.config().spawn_site == SpawnSite::CallingThread
        && command.setup.lifetime.parent_death.is_none()
}

/// Whether an executor with these settings spawns on the calling thread at all (then a
/// request need not wake the loop ahead: see `RequestQueue::announce`).
pub(crate) fn may_spawn_here(shared: &Shared) -> bool {
    shared.config().spawn_site == SpawnSite::CallingThread && shared.is_looping()
}

/// Spawns `command` on this thread and hands the child to the loop. Errors as any spawn;
/// [`SpawnError::Stopped`] if the executor stopped before the clone.
pub(crate) fn spawn_here(
    shared: &Shared,
    mut command: PreparedCommand,
) -> Result<Spawned, SpawnError> {
    // Never queued: with a timeline, the hand-off in is nil.
    let asker = Asker {
        owner: thread::current().id(),
        queued: None,
    };
    SPAWNER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut spawner) => spawn_with(shared, &mut spawner, &mut command, &asker),
        // Re-entered: a hook that runs on this thread during a spawn (a tracing subscriber's
        // event) spawns too. It gets a spawn state of its own.
        Err(_) => spawn_with(
            shared,
            &mut Spawner::without_descriptors(),
            &mut command,
            &asker,
        ),
    })
}

/// One spawn with a calling thread's spawn state, which holds no descriptor before or after.
fn spawn_with(
    shared: &Shared,
    spawner: &mut Spawner,
    command: &mut PreparedCommand,
    asker: &Asker,
) -> Result<Spawned, SpawnError> {
    spawner.lend(shared.proc_status(), shared.slot_pool());
    let spawned = crate::spawn::spawn_tracked(shared, spawner, command, asker);
    spawner.give_back(shared.slot_pool());
    spawned
}
