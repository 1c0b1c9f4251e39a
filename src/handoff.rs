//! The callers' side of a spawn: prepare the command, then either clone the child on this
//! thread ([`crate::spawn_site`]) or queue the request for the executor's spawner thread and
//! await the answer (blocking, in a batch, or as a future). Its other half, where a message
//! enters the loop, is [`crate::queue`]; [`crate::executor`] is only the public face.
//!
//! A caller that gives up (its request timeout, a dropped future) withdraws its request: the
//! command it prepared (stdin bytes, environment, a cgroup made for the child) is freed at
//! once on its own thread, not when some loop gets round to the queued message.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::Command;
use crate::error::{SpawnError, SpawnStage};
use crate::handle::ExecHandle;
use crate::proc_state::Spawned;
use crate::queue::{Announced, Message, ReplySlot, SpawnRequest};
use crate::request::{PreparedCommand, StdioPlan};
use crate::shared::Shared;
use crate::spawn_future::SpawnFuture;
use crate::spawn_site::{fits_calling_thread, on_calling_thread, spawn_here};

type SpawnReply = Arc<ReplySlot<Result<Spawned, SpawnError>>>;

thread_local! {
    /// Each thread's reply slot for its queued spawns, reused (see [`ReplySlot::take_cached`]).
    static SPAWN_REPLY: Cell<Option<SpawnReply>> = const { Cell::new(None) };
    #[cfg(feature = "bench-internals")]
    static PING_REPLY: Cell<Option<Arc<ReplySlot<()>>>> = const { Cell::new(None) };
}

/// Resolves `command` on the caller's thread and checks the executor's backend can apply it.
/// (An error drops the prepared command, and with it a cgroup made for the child.)
pub(crate) fn prepare(
    shared: &Shared,
    command: &Command,
    defaults: [StdioPlan; 3],
) -> Result<PreparedCommand, SpawnError> {
    let command = PreparedCommand::from_command(command, defaults)?;
    let backend = shared.config().backend;
    if let Some(option) = crate::sys::spawn::unsupported_option(backend, &command.setup) {
        return Err(SpawnError::UnsupportedOption {
            program: command.program.clone(),
            backend: backend.name(),
            option,
        });
    }
    Ok(command)
}

/// Spawns `command` and returns its handle: cloned on this thread when it may be, else queued
/// for the spawner thread and awaited within `timeout`. `announced` (the loop woken ahead of
/// a queued request) is withdrawn once the request is queued.
pub(crate) fn spawn_blocking(
    shared: &Arc<Shared>,
    command: PreparedCommand,
    timeout: Option<Duration>,
    announced: Option<Announced<'_>>,
) -> Result<ExecHandle, SpawnError> {
    let start = Instant::now();
    if fits_calling_thread(shared, &command) {
        drop(announced);
        if !shared.is_looping() {
            await_loop(shared, deadline(start, timeout), start)?;
        }
        let spawned = spawn_here(shared, command)?;
        return ExecHandle::new(spawned, Arc::downgrade(shared));
    }
    let reply = ReplySlot::take_cached(&SPAWN_REPLY);
    let request = Arc::new(request(shared, command, &reply));
    if !shared.is_looping() {
        shared.queue().shed_withdrawn();
    }
    let pushed = shared.queue().push(Message::Spawn(request.clone()));
    drop(announced);
    let answer = match pushed {
        Err(_) => Err(SpawnError::Stopped),
        Ok(()) => await_reply(shared, &request, deadline(start, timeout), start),
    };
    drop(request);
    ReplySlot::give_back(&SPAWN_REPLY, reply);
    answer
}

/// [`spawn_blocking`] for a batch: what may be cloned here is, one after the other; the rest is
/// queued at once (one wake-up of the loop) and awaited within one deadline for the batch.
pub(crate) fn spawn_many(
    shared: &Arc<Shared>,
    commands: &[Command],
    defaults: &[StdioPlan; 3],
    timeout: Option<Duration>,
) -> Vec<Result<ExecHandle, SpawnError>> {
    let start = Instant::now();
    let deadline = deadline(start, timeout);
    let mut results: Vec<Option<Result<ExecHandle, SpawnError>>> =
        Vec::with_capacity(commands.len());
    // Requests for the spawner thread and their index in `results`. One reply slot each: the
    // thread's cached slot serves one request at a time.
    let mut queued = Vec::new();
    let mut batch = Vec::new();
    for command in commands {
        let prepared = match prepare(shared, command, defaults.clone()) {
            Ok(prepared) => prepared,
            Err(e) => {
                results.push(Some(Err(e)));
                continue;
            }
        };
        if fits_calling_thread(shared, &prepared) {
            let looping = match shared.is_looping() {
                true => Ok(()),
                false => await_loop(shared, deadline, start),
            };
            let spawned = looping.and_then(|()| spawn_here(shared, prepared));
            results.push(Some(spawned.and_then(|spawned| {
                ExecHandle::new(spawned, Arc::downgrade(shared))
            })));
            continue;
        }
        let request = Arc::new(request(shared, prepared, &ReplySlot::for_current_thread()));
        batch.push(Message::Spawn(request.clone()));
        queued.push((results.len(), request));
        results.push(None);
    }
    if !batch.is_empty() && shared.queue().push_batch(batch).is_err() {
        for (i, _) in queued.drain(..) {
            results[i] = Some(Err(SpawnError::Stopped));
        }
    }
    for (i, request) in queued {
        results[i] = Some(await_reply(shared, &request, deadline, start));
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(SpawnError::Stopped)))
        .collect()
}

/// The future of a spawn: ready at once when the child is cloned on this thread (as tokio's
/// spawn, which also clones on the task's thread), else queued and woken by the spawner
/// thread's answer.
pub(crate) fn spawn_async(
    shared: &Arc<Shared>,
    command: PreparedCommand,
    timeout: Option<Duration>,
) -> SpawnFuture {
    if on_calling_thread(shared, &command) {
        let spawned = spawn_here(shared, command);
        return SpawnFuture::ready(
            spawned.and_then(|spawned| ExecHandle::new(spawned, Arc::downgrade(shared))),
        );
    }
    queue_async(shared, command, timeout).unwrap_or_else(SpawnFuture::ready_err)
}

/// Queues a prepared spawn whose answer a task awaits; with a `timeout`, the request timer
/// ends the wait at its deadline.
fn queue_async(
    shared: &Arc<Shared>,
    command: PreparedCommand,
    timeout: Option<Duration>,
) -> Result<SpawnFuture, SpawnError> {
    let reply = ReplySlot::for_task();
    // No clock read without a timeout (the common case); one too far to represent is none.
    let queued_at = timeout.map(|_| Instant::now());
    let deadline = queued_at
        .zip(timeout)
        .and_then(|(now, t)| now.checked_add(t));
    if let Some(at) = deadline {
        let weak: std::sync::Weak<ReplySlot<_>> = Arc::downgrade(&reply);
        if let Err(e) = crate::request_timer::expire_at(at, weak) {
            let errno = e.raw_os_error().unwrap_or(libc::EAGAIN);
            return Err(SpawnError::from_errno(
                &command.program,
                SpawnStage::Prepare,
                errno,
            ));
        }
    }
    let request = Arc::new(request(shared, command, &reply));
    if !shared.is_looping() {
        shared.queue().shed_withdrawn();
    }
    if shared
        .queue()
        .push(Message::Spawn(request.clone()))
        .is_err()
    {
        return Err(SpawnError::Stopped);
    }
    Ok(SpawnFuture::queued(
        request,
        Arc::downgrade(shared),
        deadline.and(queued_at),
    ))
}

/// The request asking for `command`, answered in `reply`.
fn request(shared: &Shared, command: PreparedCommand, reply: &SpawnReply) -> SpawnRequest {
    let queued = shared.config().timeline.then(Instant::now);
    SpawnRequest::new(command, reply.clone(), queued)
}

/// `start + timeout`; none without a timeout or for one too far to represent.
fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| start.checked_add(t))
}

/// Waits for the answer to a queued spawn until `deadline`; withdraws the request if it
/// passes first ([`SpawnError::NotServed`], with the time since `start`).
fn await_reply(
    shared: &Arc<Shared>,
    request: &SpawnRequest,
    deadline: Option<Instant>,
    start: Instant,
) -> Result<ExecHandle, SpawnError> {
    let answer = request
        .reply
        .wait_until(shared.spin(), deadline, &mut || shared.warn_if_not_served())
        .or_else(|| request.withdraw());
    match answer {
        Some(spawned) => ExecHandle::new(spawned?, Arc::downgrade(shared)),
        None => Err(SpawnError::NotServed {
            waited: start.elapsed(),
        }),
    }
}

/// Waits until a thread runs the loop (the answer to a no-op request), until `deadline`:
/// [`SpawnError::NotServed`] if it passes first, with the time since `start`.
fn await_loop(
    shared: &Shared,
    deadline: Option<Instant>,
    start: Instant,
) -> Result<(), SpawnError> {
    let reply = ReplySlot::for_current_thread();
    shared.queue().shed_withdrawn();
    if shared.queue().push(Message::Ping(reply.clone())).is_err() {
        return Err(SpawnError::Stopped);
    }
    let answer = reply
        .wait_until(shared.spin(), deadline, &mut || shared.warn_if_not_served())
        .or_else(|| reply.abandon());
    match answer {
        Some(()) => Ok(()),
        None => Err(SpawnError::NotServed {
            waited: start.elapsed(),
        }),
    }
}

/// Sends one no-op request through the queue and waits for the loop's answer: the cost of the
/// hand-off alone (benchmarks).
#[cfg(feature = "bench-internals")]
pub(crate) fn round_trip(shared: &Shared) -> Result<(), SpawnError> {
    let reply = ReplySlot::take_cached(&PING_REPLY);
    if shared.queue().push(Message::Ping(reply.clone())).is_err() {
        return Err(SpawnError::Stopped);
    }
    reply.wait(shared.spin());
    ReplySlot::give_back(&PING_REPLY, reply);
    Ok(())
}
