//! The executor's spawner thread: it serves the spawn requests that come through the queue (a
//! command with a parent-death signal, any request made while no thread ran the loop, every
//! request with [`SpawnSite::ExecutorThread`](crate::SpawnSite::ExecutorThread)). The loop
//! hands each one over and goes on watching; the spawner thread clones the child, puts it in
//! the table and the poll set ([`crate::spawn::spawn_tracked`], the same path a calling thread
//! takes) and answers the caller. A child stuck before its exec holds up this thread alone.
//!
//! Started by the loop the first time it has a request to hand over, it lives as long as the
//! loop does (a scoped thread of `run()`, joined before `run()` returns): a child's
//! parent-death signal, which follows the thread that spawned it, so follows the executor's
//! loop, as it did when the loop itself spawned.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};

use tracing::debug;

use crate::error::{SpawnError, SpawnStage};
use crate::queue::{Message, SpawnRequest};
use crate::shared::Shared;
use crate::spawn::Asker;
use crate::sys::spawn::Spawner;

/// The requests handed to the spawner thread, and whether the loop has ended.
#[derive(Default)]
pub(crate) struct Jobs {
    state: Mutex<JobsState>,
    wake: Condvar,
}

#[derive(Default)]
struct JobsState {
    requests: VecDeque<Arc<SpawnRequest>>,
    closed: bool,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, JobsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next request; `None` once closed and empty.
    fn next(&self) -> Option<Arc<SpawnRequest>> {
        let mut state = self.lock();
        loop {
            if let Some(request) = state.requests.pop_front() {
                return Some(request);
            }
            if state.closed {
                return None;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Tells the spawner thread to end once it has answered what it holds.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }
}

/// The loop's end of the spawner thread: started on first use.
pub(crate) struct SpawnerThread<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    shared: &'env Shared,
    jobs: &'env Jobs,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope, 'env> SpawnerThread<'scope, 'env> {
    pub(crate) fn new(
        scope: &'scope Scope<'scope, 'env>,
        shared: &'env Shared,
        jobs: &'env Jobs,
    ) -> Self {
        SpawnerThread {
            scope,
            shared,
            jobs,
            thread: None,
        }
    }

    /// Whether the thread was started (tests).
    #[cfg(test)]
    pub(crate) fn started(&self) -> bool {
        self.thread.is_some()
    }

    /// Hands `request` to the spawner thread, starting it if need be. If no thread can be
    /// started, the request is answered with that error (the loop never spawns itself).
    pub(crate) fn submit(&mut self, request: Arc<SpawnRequest>) {
        if self.thread.is_none() {
            let (shared, jobs) = (self.shared, self.jobs);
            let started = std::thread::Builder::new()
                .name("napix-spawner".into())
                .spawn_scoped(self.scope, move || serve(shared, jobs));
            match started {
                Ok(handle) => self.thread = Some(handle),
                Err(e) => {
                    let program = request
                        .take_command()
                        .map(|c| c.program)
                        .unwrap_or_default();
                    let errno = e.raw_os_error().unwrap_or(libc::EAGAIN);
                    let _ = request.reply.fulfil(Err(SpawnError::from_errno(
                        &program,
                        SpawnStage::Spawn,
                        errno,
                    )));
                    return;
                }
            }
        }
        self.jobs.lock().requests.push_back(request);
        self.jobs.wake.notify_one();
    }
}

/// The spawner thread's body: serves requests until the loop closes `jobs`.
fn serve(shared: &Shared, jobs: &Jobs) {
    let mut spawner = Spawner::new();
    while let Some(request) = jobs.next() {
        // Withdrawn meanwhile (a request timeout, a dropped future): its command is gone.
        let Some(mut command) = request.take_command() else {
            continue;
        };
        if request.is_withdrawn() {
            continue;
        }
        let asker = Asker {
            owner: request.owner,
            queued: request.queued,
        };
        let result = crate::spawn::spawn_tracked(shared, &mut spawner, &mut command, &asker);
        if let Err(Ok(unwanted)) = request.reply.fulfil(result) {
            // Its caller gave up while it was spawned: nobody holds a handle, so it is killed
            // (with the usual escalation) rather than left running. After a stop the queue
            // refuses the message, and stop()'s escalation covers the child.
            debug!(
                pid = unwanted.state.pid,
                "spawned for a caller that gave up: killing"
            );
            let _ = shared.queue().push(Message::Kill(unwanted.state.clone()));
        }
        // Only now, with the requester answered: its environment, stdin source and setup are
        // freed (no part of the spawn the requester waits for).
        drop(command);
    }
}
