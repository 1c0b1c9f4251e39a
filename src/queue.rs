//! The hand-off between caller threads and the executor thread: a lock-free queue of
//! [`Message`]s, an eventfd doorbell rung only when the loop may be asleep, and [`ReplySlot`]s on
//! which callers wait for the answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::OwnedFd;

use crate::error::SpawnError;
use crate::handle::{ExecHandle, ProcState};
use crate::request::PreparedCommand;
use crate::spin::SpinPolicy;

/// What a caller thread asks of the executor thread.
pub(crate) enum Message {
    /// Spawn a process and answer with its handle.
    Spawn(Box<SpawnRequest>),
    /// Start the kill escalation (SIGTERM now, SIGKILL after the grace) for a process.
    Kill(Arc<ProcState>),
    /// Answer at once: measures the hand-off alone.
    Ping(Arc<ReplySlot<()>>),
    /// Send a signal to a child that has no pidfd (ChildWatch::Signal), if it is still ours.
    Signal {
        state: Arc<ProcState>,
        signal: i32,
        reply: Arc<ReplySlot<std::io::Result<()>>>,
    },
    /// Nothing to do but look at the flags again (sent by `stop()`).
    Wake,
}

/// A spawn request, fully prepared by the caller.
pub(crate) struct SpawnRequest {
    pub(crate) command: PreparedCommand,
    pub(crate) discard_output: bool,
    pub(crate) owner: thread::ThreadId,
    pub(crate) reply: Arc<ReplySlot<Result<ExecHandle, SpawnError>>>,
}

impl Message {
    /// Answers a message that will never be served because the executor stopped.
    pub(crate) fn refuse(self) {
        match self {
            Message::Spawn(req) => req.reply.fulfil(Err(SpawnError::Stopped)),
            // Every child is escalated at stop anyway; the caller waits for the status.
            Message::Kill(_) => {}
            Message::Ping(slot) => slot.fulfil(()),
            // Without a pidfd only the loop may signal; once stopped, the loop is killing every
            // child anyway (or has reaped them all: then the process is gone, ESRCH).
            Message::Signal { state, reply, .. } => reply.fulfil(Err(match state.status() {
                Some(_) => std::io::Error::from_raw_os_error(libc::ESRCH),
                None => SpawnError::Stopped.into(),
            })),
            Message::Wake => {}
        }
    }
}

/// A one-shot answer from the executor thread to one waiting caller.
pub(crate) struct ReplySlot<T> {
    ready: AtomicBool,
    value: Mutex<Option<T>>,
    waiter: Thread,
}

impl<T> ReplySlot<T> {
    /// A slot that the current thread will wait on.
    pub(crate) fn for_current_thread() -> Arc<ReplySlot<T>> {
        Arc::new(ReplySlot {
            ready: AtomicBool::new(false),
            value: Mutex::new(None),
            waiter: thread::current(),
        })
    }

    /// A slot for the current thread, reused across its requests: the thread waits for each
    /// answer before it asks again, so one slot per thread (per answer type) is enough and the
    /// hot path allocates none.
    pub(crate) fn reusable(
        key: &'static std::thread::LocalKey<Arc<ReplySlot<T>>>,
    ) -> Arc<ReplySlot<T>> {
        let slot = key.with(Arc::clone);
        // The previous answer was taken by `wait`; only the flag is left to clear.
        slot.ready.store(false, Ordering::Relaxed);
        slot
    }

    /// Stores the answer and wakes the waiter. Called once per request.
    pub(crate) fn fulfil(&self, value: T) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
        self.ready.store(true, Ordering::Release);
        self.waiter.unpark();
    }

    /// Waits for the answer: polls for a while (see [`SpinPolicy`]), then parks; spurious
    /// wake-ups are re-checked.
    pub(crate) fn wait(&self, spin: &SpinPolicy) -> T {
        spin.poll(Duration::MAX, || self.ready.load(Ordering::Acquire));
        loop {
            if self.ready.load(Ordering::Acquire)
                && let Some(v) = self
                    .value
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
            {
                return v;
            }
            thread::park();
        }
    }
}

/// The queue of messages and the eventfd that wakes the executor thread.
pub(crate) struct RequestQueue {
    messages: SegQueue<Message>,
    doorbell: OwnedFd,
    /// True while the executor thread is (about to be) blocked in epoll_wait.
    sleeping: AtomicBool,
}

impl RequestQueue {
    pub(crate) fn new() -> std::io::Result<RequestQueue> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(RequestQueue {
            messages: SegQueue::new(),
            doorbell: crate::sys::above_stdio(fd)?,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The eventfd the executor thread polls.
    pub(crate) fn doorbell(&self) -> &OwnedFd {
        &self.doorbell
    }

    /// Queues `message` and wakes the executor thread if it may be asleep.
    pub(crate) fn push(&self, message: Message) {
        self.messages.push(message);
        self.ring();
    }

    /// Writes the eventfd only if the loop announced it is going to sleep; under load the loop is
    /// awake and draining, and the write (a syscall) is skipped.
    pub(crate) fn ring(&self) {
        // SeqCst pairs with `prepare_to_sleep`: either we see `sleeping` or the loop sees our
        // message when it re-checks the queue.
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = rustix::io::write(&self.doorbell, &1u64.to_ne_bytes());
        }
    }

    pub(crate) fn pop(&self) -> Option<Message> {
        self.messages.pop()
    }

    /// Announces that the loop is about to block. Returns false (and stays awake) when a message
    /// arrived meanwhile.
    pub(crate) fn prepare_to_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.messages.is_empty() {
            true
        } else {
            self.sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    /// Called by the loop after it woke up, for whatever reason.
    pub(crate) fn woke_up(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Resets the eventfd counter after it was seen readable.
    pub(crate) fn clear_doorbell(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.doorbell, &mut buf);
    }
}
