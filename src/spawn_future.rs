//! [`SpawnFuture`]: a spawn awaited by a task instead of a parked thread. A child cloned on the
//! task's thread makes a future ready at once; a request queued for the spawner thread (see
//! [`crate::spawn_site`]) goes through the same queue as a blocking one, and its reply slot
//! holds the task's waker, woken when the child is spawned (or the request refused).
//!
//! Dropping the future withdraws a queued request: what it holds is freed at once, the spawner
//! thread skips it if it has not spawned it yet, and a child spawned for a future already gone
//! is killed (see [`SpawnRequest::withdraw`](crate::queue::SpawnRequest::withdraw)).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::SpawnError;
use crate::handle::ExecHandle;
use crate::proc_state::Spawned;
use crate::queue::{ReplySlot, SLOW_REPLY, SpawnRequest};
use crate::request_timer::Expire;
use crate::shared::Shared;

type Reply = Arc<ReplySlot<Result<Spawned, SpawnError>>>;

/// A future of a spawned child's [`ExecHandle`], from
/// [`Executor::spawn_async`](crate::Executor::spawn_async) or
/// [`Executor::create_process_async`](crate::Executor::create_process_async).
///
/// `Send` and `'static`; needs no particular runtime. With a request timeout
/// ([`ExecutorBuilder::request_timeout`](crate::ExecutorBuilder::request_timeout)) it resolves to
/// [`SpawnError::NotServed`] when the executor's loop has not served it in time (one timer
/// thread for the process wakes it; see [`Executor::spawn_async`](crate::Executor::spawn_async)).
/// Cancel-safe: dropping it before it completes
/// withdraws the request, and a child the executor thread spawned for it meanwhile is killed
/// (SIGTERM, the grace, SIGKILL) and reaped; dropping it once the child is spawned but before it
/// was polled again treats the child like a dropped handle's (it runs on and is reaped, or is
/// killed if the command asked for [`kill_on_drop`](crate::Command::kill_on_drop)).
#[must_use = "futures do nothing unless awaited; dropping this one withdraws the request"]
pub struct SpawnFuture {
    inner: Inner,
}

enum Inner {
    /// Answered before anything was queued: spawned on the calling thread, or refused (a bad
    /// command, a stopped executor).
    Ready(Option<Result<ExecHandle, SpawnError>>),
    /// Queued; the spawner thread answers through the request's reply slot.
    Queued {
        request: Arc<SpawnRequest>,
        executor: Weak<Shared>,
        /// When it was queued, if a request timeout may end it (for `NotServed::waited`).
        queued_at: Option<Instant>,
        slow: SlowWarning,
    },
    /// The answer was handed out.
    Done,
}

impl std::fmt::Debug for SpawnFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.inner {
            Inner::Ready(_) => "ready",
            Inner::Queued { .. } => "queued",
            Inner::Done => "done",
        };
        f.debug_struct("SpawnFuture")
            .field("state", &state)
            .finish()
    }
}

impl SpawnFuture {
    pub(crate) fn ready(answer: Result<ExecHandle, SpawnError>) -> SpawnFuture {
        SpawnFuture {
            inner: Inner::Ready(Some(answer)),
        }
    }

    pub(crate) fn ready_err(error: SpawnError) -> SpawnFuture {
        SpawnFuture::ready(Err(error))
    }

    /// A queued request; `queued_at` is set when a request timeout was registered for it
    /// (see [`crate::request_timer`]).
    pub(crate) fn queued(
        request: Arc<SpawnRequest>,
        executor: Weak<Shared>,
        queued_at: Option<Instant>,
    ) -> SpawnFuture {
        SpawnFuture {
            inner: Inner::Queued {
                request,
                executor,
                queued_at,
                slow: SlowWarning::Unarmed,
            },
        }
    }
}

impl Future for SpawnFuture {
    type Output = Result<ExecHandle, SpawnError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let answer = match &mut this.inner {
            Inner::Ready(answer) => match answer.take() {
                Some(answer) => answer,
                // Polled again after completion: stays an error rather than a panic.
                None => Err(SpawnError::Stopped),
            },
            Inner::Queued {
                request,
                executor,
                queued_at,
                slow,
            } => match request.reply.poll_reply(cx) {
                Poll::Pending => {
                    slow.on_pending(&request.reply, executor);
                    return Poll::Pending;
                }
                Poll::Ready(Some(answer)) => {
                    answer.and_then(|spawned| ExecHandle::new(spawned, executor.clone()))
                }
                // The request timeout expired the slot: withdrawn, what it held is freed.
                Poll::Ready(None) => match request.withdraw() {
                    Some(answer) => {
                        answer.and_then(|spawned| ExecHandle::new(spawned, executor.clone()))
                    }
                    None => Err(SpawnError::NotServed {
                        waited: queued_at.map_or(Duration::ZERO, |t| t.elapsed()),
                    }),
                },
            },
            Inner::Done => Err(SpawnError::Stopped),
        };
        this.inner = Inner::Done;
        Poll::Ready(answer)
    }
}

impl Drop for SpawnFuture {
    fn drop(&mut self) {
        if let Inner::Queued {
            request, executor, ..
        } = &self.inner
        {
            // An answer that came meanwhile becomes the handle nobody took, dropped here: its
            // child runs on, or is killed if the command asked for kill_on_drop. Without one, the
            // command is freed now and the spawner thread disposes of a late answer (it kills
            // the child).
            if let Some(Ok(spawned)) = request.withdraw() {
                drop(ExecHandle::new(spawned, executor.clone()));
            }
        }
    }
}

/// The warning a blocking caller logs when its request has waited [`SLOW_REPLY`] for a loop
/// nobody runs, for a future: nothing polls a future that nobody wakes, so the request timer's
/// thread ([`crate::request_timer`]) wakes it once after [`SLOW_REPLY`], and that poll logs the
/// warning (on the task's thread, as a blocking caller's is on its own) if the loop still does
/// not run. Armed only when no thread runs the loop at the first pending poll: with a loop
/// running (the common case) a future costs the timer nothing, and the timer thread is not
/// started. (A loop that stops running later, without `stop()`, goes unreported.)
enum SlowWarning {
    /// Not polled yet, or polled only with the answer ready.
    Unarmed,
    /// The timer wakes the task once the request has waited [`SLOW_REPLY`].
    Armed(Arc<SlowCheck>),
    /// Warned, or nothing to warn about.
    Settled,
}

/// What the timer holds (weakly: a future dropped meanwhile takes it along).
struct SlowCheck {
    reply: Weak<ReplySlot<Result<Spawned, SpawnError>>>,
    due: AtomicBool,
}

impl Expire for SlowCheck {
    fn expire(&self) {
        self.due.store(true, Ordering::Release);
        if let Some(reply) = self.reply.upgrade() {
            reply.nudge();
        }
    }
}

impl SlowWarning {
    /// After a poll that found no answer.
    fn on_pending(&mut self, reply: &Reply, executor: &Weak<Shared>) {
        match self {
            SlowWarning::Unarmed => {
                *self = SlowWarning::Settled;
                let Some(shared) = executor.upgrade() else {
                    return;
                };
                if shared.is_looping() || shared.is_stopped() {
                    return;
                }
                let check = Arc::new(SlowCheck {
                    reply: Arc::downgrade(reply),
                    due: AtomicBool::new(false),
                });
                let weak: Weak<SlowCheck> = Arc::downgrade(&check);
                match crate::request_timer::expire_at(Instant::now() + SLOW_REPLY, weak) {
                    Ok(()) => *self = SlowWarning::Armed(check),
                    // Out of threads: the request still works, only the warning is lost.
                    Err(e) => tracing::debug!(error = %e, "no timer for the slow-request warning"),
                }
            }
            SlowWarning::Armed(check) if check.due.load(Ordering::Acquire) => {
                *self = SlowWarning::Settled;
                if let Some(shared) = executor.upgrade() {
                    shared.warn_if_not_served();
                }
            }
            SlowWarning::Armed(_) | SlowWarning::Settled => {}
        }
    }
}
