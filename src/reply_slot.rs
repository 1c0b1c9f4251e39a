//! A one-shot answer from whoever serves a request (the spawner thread, the loop) to one
//! waiting caller: a thread or a task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker as TaskWaker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::request_timer::Expire;
use crate::spin::SpinPolicy;

/// A one-shot answer from the executor thread to one waiting caller: a thread (parked) or a task
/// (woken through its [`Waker`](std::task::Waker)).
///
/// A caller may give up waiting ([`abandon`](Self::abandon): a timeout, a dropped future). The
/// executor thread then either sees that before it serves the request and skips it
/// ([`is_abandoned`](Self::is_abandoned)), or gets its answer back from
/// [`fulfil`](Self::fulfil) and disposes of it itself: a child spawned for nobody is never left
/// running unwatched.
pub(crate) struct ReplySlot<T> {
    /// Set (after the value) once answered: lets a waiting thread spin without the lock.
    ready: AtomicBool,
    inner: Mutex<SlotInner<T>>,
    /// The thread to unpark; `None` for a slot awaited by a task.
    waiter: Option<Thread>,
}

struct SlotInner<T> {
    value: Option<T>,
    /// The task to wake, for a slot awaited by a future.
    waker: Option<TaskWaker>,
    abandoned: bool,
    /// Its request timeout passed before the answer came ([`Expire`]): the awaiting future
    /// gives up at its next poll.
    expired: bool,
}

impl<T> ReplySlot<T> {
    fn with_waiter(waiter: Option<Thread>) -> Arc<ReplySlot<T>> {
        Arc::new(ReplySlot {
            ready: AtomicBool::new(false),
            inner: Mutex::new(SlotInner {
                value: None,
                waker: None,
                abandoned: false,
                expired: false,
            }),
            waiter,
        })
    }

    /// A slot that the current thread will wait on.
    pub(crate) fn for_current_thread() -> Arc<ReplySlot<T>> {
        ReplySlot::with_waiter(Some(thread::current()))
    }

    /// A slot that a future will poll ([`poll_reply`](Self::poll_reply)).
    pub(crate) fn for_task() -> Arc<ReplySlot<T>> {
        ReplySlot::with_waiter(None)
    }

    /// A slot for the current thread, reused across its requests so that the hot path
    /// allocates none: taken out of `cache` (a fresh one if it is empty), and put back with
    /// [`give_back`](Self::give_back) once its answer was taken.
    ///
    /// Taken, not shared: a hook that runs on this thread while it waits (a tracing subscriber
    /// handling the slow-request warning) and asks for a spawn of its own gets another slot, and
    /// cannot be handed the answer the outer call is waiting for.
    pub(crate) fn take_cached(
        cache: &'static std::thread::LocalKey<std::cell::Cell<Option<Arc<ReplySlot<T>>>>>,
    ) -> Arc<ReplySlot<T>> {
        cache.take().unwrap_or_else(ReplySlot::for_current_thread)
    }

    /// Puts `slot` back in `cache` for the thread's next request, if nobody else holds it any
    /// more (a withdrawn request's slot may still be in the queue: it is left to the queue) and
    /// the cache is empty.
    pub(crate) fn give_back(
        cache: &'static std::thread::LocalKey<std::cell::Cell<Option<Arc<ReplySlot<T>>>>>,
        slot: Arc<ReplySlot<T>>,
    ) {
        if Arc::strong_count(&slot) != 1 || Arc::weak_count(&slot) != 0 {
            return;
        }
        {
            let mut inner = slot.lock();
            inner.value = None;
            inner.waker = None;
            inner.abandoned = false;
            inner.expired = false;
        }
        slot.ready.store(false, Ordering::Relaxed);
        let _ = cache.try_with(|c| {
            let previous = c.replace(Some(slot));
            // Keep the first one put back; drop this one if a nested call filled the cache.
            if previous.is_some() {
                c.set(previous);
            }
        });
    }

    /// True once answered (tests).
    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, SlotInner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the answer and wakes the waiter. Called once per request. Gives the answer back
    /// when the caller has given up waiting: the executor thread must then dispose of it.
    pub(crate) fn fulfil(&self, value: T) -> Result<(), T> {
        let mut inner = self.lock();
        if inner.abandoned {
            return Err(value);
        }
        inner.value = Some(value);
        let waker = inner.waker.take();
        drop(inner);
        self.ready.store(true, Ordering::Release);
        if let Some(t) = &self.waiter {
            t.unpark();
        }
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// True once the caller gave up waiting: the request need not be served.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.lock().abandoned
    }

    /// Gives up waiting. Returns the answer if it came meanwhile (the caller then owns it);
    /// otherwise a later [`fulfil`](Self::fulfil) gives the answer back to the executor thread.
    pub(crate) fn abandon(&self) -> Option<T> {
        let mut inner = self.lock();
        match inner.value.take() {
            Some(v) => Some(v),
            None => {
                inner.abandoned = true;
                inner.waker = None;
                None
            }
        }
    }

    /// The answer if it came (`Some`); `None` once the request timeout expired the slot (it
    /// is then abandoned: a later answer goes back to the executor thread); else registers the
    /// task to be woken when either happens.
    pub(crate) fn poll_reply(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut inner = self.lock();
        if let Some(v) = inner.value.take() {
            return Poll::Ready(Some(v));
        }
        if inner.expired {
            inner.abandoned = true;
            inner.waker = None;
            return Poll::Ready(None);
        }
        match &mut inner.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Wakes the awaiting task without an answer, so that its future looks again (the
    /// slow-request warning of [`SpawnFuture`](crate::SpawnFuture)); nothing once answered or
    /// given up.
    pub(crate) fn nudge(&self) {
        let inner = self.lock();
        if inner.value.is_some() || inner.abandoned {
            return;
        }
        let waker = inner.waker.clone();
        drop(inner);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Waits for the answer: polls for a while (see [`SpinPolicy`]), then parks; spurious
    /// wake-ups are re-checked.
    pub(crate) fn wait(&self, spin: &SpinPolicy) -> T {
        loop {
            if let Some(v) = self.wait_until(spin, None, &mut || {}) {
                return v;
            }
        }
    }

    /// Like [`wait`](Self::wait), giving up at `deadline` (`None` if it came first; the caller
    /// then [`abandon`](Self::abandon)s the slot). `slow` is called once if the answer has not
    /// come within [`SLOW_REPLY`].
    pub(crate) fn wait_until(
        &self,
        spin: &SpinPolicy,
        deadline: Option<Instant>,
        slow: &mut dyn FnMut(),
    ) -> Option<T> {
        let start = Instant::now();
        let cap = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(start));
        spin.poll(cap, || self.ready.load(Ordering::Acquire));
        let mut warned = false;
        loop {
            if self.ready.load(Ordering::Acquire)
                && let Some(v) = self.lock().value.take()
            {
                return Some(v);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            let mut sleep = deadline.map_or(Duration::MAX, |d| d - now);
            if !warned {
                let slow_at = start + SLOW_REPLY;
                if now >= slow_at {
                    warned = true;
                    slow();
                    continue;
                }
                sleep = sleep.min(slow_at - now);
            }
            if sleep == Duration::MAX {
                thread::park();
            } else {
                thread::park_timeout(sleep);
            }
        }
    }
}

/// The request timer's deadline passed: unless the answer came first, the awaiting task is woken
/// to give up.
impl<T: Send> Expire for ReplySlot<T> {
    fn expire(&self) {
        let mut inner = self.lock();
        if inner.value.is_some() || inner.abandoned {
            return;
        }
        inner.expired = true;
        let waker = inner.waker.take();
        drop(inner);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// How long a caller waits for the executor thread before [`ReplySlot::wait_until`] calls its
/// `slow` hook (which tells the user when no thread runs the loop).
pub(crate) const SLOW_REPLY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_slot_gives_a_late_answer_back_and_an_early_one_to_the_caller() {
        let late = ReplySlot::<u32>::for_current_thread();
        assert!(!late.is_abandoned());
        assert_eq!(late.abandon(), None);
        assert!(late.is_abandoned());
        // The executor thread gets its answer back: it must dispose of it.
        assert_eq!(late.fulfil(7), Err(7));
        let early = ReplySlot::<u32>::for_current_thread();
        assert_eq!(early.fulfil(8), Ok(()));
        // The answer came first: giving up hands it to the caller.
        assert_eq!(early.abandon(), Some(8));
    }

    #[test]
    fn a_task_slot_wakes_its_task_and_a_deadline_ends_a_thread_wait() {
        let (count, waker) = crate::test_support::counting_waker();
        let mut cx = Context::from_waker(&waker);
        let slot = ReplySlot::<u32>::for_task();
        assert!(slot.poll_reply(&mut cx).is_pending());
        assert_eq!(slot.fulfil(3), Ok(()));
        assert_eq!(count.wakes(), 1);
        assert_eq!(slot.poll_reply(&mut cx), Poll::Ready(Some(3)));
        // Expired before its answer: the task is woken and gives up; the answer goes back.
        let slot = ReplySlot::<u32>::for_task();
        assert!(slot.poll_reply(&mut cx).is_pending());
        slot.expire();
        assert_eq!(count.wakes(), 2);
        assert_eq!(slot.poll_reply(&mut cx), Poll::Ready(None));
        assert_eq!(slot.fulfil(4), Err(4));
        // Answered first: expiring changes nothing.
        let slot = ReplySlot::<u32>::for_task();
        assert_eq!(slot.fulfil(5), Ok(()));
        slot.expire();
        assert_eq!(slot.poll_reply(&mut cx), Poll::Ready(Some(5)));

        let slot = ReplySlot::<u32>::for_current_thread();
        let spin = SpinPolicy::new(Duration::ZERO);
        let t = Instant::now();
        let mut slow_calls = 0;
        let got = slot.wait_until(&spin, Some(t + Duration::from_millis(50)), &mut || {
            slow_calls += 1
        });
        assert_eq!(got, None);
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(slow_calls, 0, "SLOW_REPLY is longer than the deadline");
    }
}
