//! The hand-off between caller threads and the executor thread: a lock-free queue of
//! [`Message`]s, a doorbell rung only when the loop may be asleep, [`ReplySlot`]s on which callers
//! wait for the answer, and the stop protocol.
//!
//! The queue owns "closed" the way a channel owns "disconnected": [`RequestQueue::close`] refuses
//! every queued message, and a push after the close gives the message back. A push that races
//! with the close is answered by whichever side drains last, so no message is ever left
//! unanswered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::Duration;

use crossbeam_queue::SegQueue;

use crate::error::SpawnError;
use crate::poller::Waker;
use crate::proc_state::{ProcState, Spawned};
use crate::request::PreparedCommand;
use crate::spin::SpinPolicy;

/// What a caller thread asks of the executor thread.
pub(crate) enum Message {
    /// Spawn a process and answer with its parts.
    Spawn(Box<SpawnRequest>),
    /// Start the kill escalation (SIGTERM now, SIGKILL after the grace) for a process.
    Kill(Arc<ProcState>),
    /// Answer at once: measures the hand-off alone (sent only by `Executor::round_trip`).
    #[cfg_attr(not(feature = "bench-internals"), allow(dead_code))]
    Ping(Arc<ReplySlot<()>>),
    /// Send a signal to a child that has no pidfd (ChildWatch::Signal), if it is still ours.
    Signal {
        state: Arc<ProcState>,
        signal: i32,
        reply: Arc<ReplySlot<std::io::Result<()>>>,
    },
}

/// A spawn request, fully prepared by the caller.
pub(crate) struct SpawnRequest {
    pub(crate) command: PreparedCommand,
    pub(crate) discard_output: bool,
    pub(crate) owner: thread::ThreadId,
    pub(crate) reply: Arc<ReplySlot<Result<Spawned, SpawnError>>>,
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

/// The queue of messages, the doorbell that wakes the executor thread, and the closed flag.
pub(crate) struct RequestQueue {
    messages: SegQueue<Message>,
    waker: Waker,
    /// True while the executor thread is (about to be) blocked in its wait.
    sleeping: AtomicBool,
    /// Set once by `close()`; never cleared.
    closed: AtomicBool,
}

impl RequestQueue {
    pub(crate) fn new(waker: Waker) -> RequestQueue {
        RequestQueue {
            messages: SegQueue::new(),
            waker,
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues `message` and wakes the executor thread if it may be asleep. After
    /// [`close`](Self::close) the message comes back unqueued.
    ///
    /// `Ok` means the message will be answered: served by the loop, or refused (its reply
    /// fulfilled with "stopped") if the queue was closed meanwhile.
    pub(crate) fn push(&self, message: Message) -> Result<(), Message> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(message);
        }
        self.messages.push(message);
        // SeqCst pairs with `close`: either the closer's drain sees our message, or we see the
        // flag here and drain it ourselves.
        if self.closed.load(Ordering::SeqCst) {
            self.refuse_pending();
        } else {
            self.ring();
        }
        Ok(())
    }

    /// Closes the queue: refuses every queued message, refuses every later push, and wakes the
    /// loop so that it sees the close.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.refuse_pending();
        self.ring();
    }

    /// True once [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Answers every queued message with "stopped".
    fn refuse_pending(&self) {
        while let Some(m) = self.messages.pop() {
            m.refuse();
        }
    }

    /// Writes the doorbell only if the loop announced it is going to sleep; under load the loop
    /// is awake and draining, and the write (a syscall) is skipped.
    fn ring(&self) {
        // SeqCst pairs with `prepare_to_sleep`: either we see `sleeping` or the loop sees our
        // message (or the close) when it re-checks.
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.waker.ring();
        }
    }

    pub(crate) fn pop(&self) -> Option<Message> {
        self.messages.pop()
    }

    /// Announces that the loop is about to block. Returns false (and stays awake) when a message
    /// arrived meanwhile, or when the queue was closed and the loop has not acted on it yet
    /// (`close_seen`).
    pub(crate) fn prepare_to_sleep(&self, close_seen: bool) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.messages.is_empty() && (close_seen || !self.closed.load(Ordering::SeqCst)) {
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

    /// Resets the doorbell after it was seen readable.
    pub(crate) fn clear_doorbell(&self) {
        self.waker.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poller::Poller;
    use std::time::Instant;

    fn queue() -> (Poller, RequestQueue) {
        let poller = Poller::new().expect("poller");
        let waker = Waker::new(&poller).expect("waker");
        (poller, RequestQueue::new(waker))
    }

    fn ping() -> (Arc<ReplySlot<()>>, Message) {
        let slot = ReplySlot::for_current_thread();
        (slot.clone(), Message::Ping(slot))
    }

    #[test]
    fn push_after_close_gives_the_message_back() {
        let (_poller, q) = queue();
        let (queued, m) = ping();
        assert!(q.push(m).is_ok());
        q.close();
        // The queued one was refused (a ping's refusal is its answer).
        assert!(queued.ready.load(Ordering::Acquire));
        let (late, m) = ping();
        assert!(matches!(q.push(m), Err(Message::Ping(_))));
        assert!(!late.ready.load(Ordering::Acquire));
        assert!(q.pop().is_none());
        assert!(q.is_closed());
    }

    #[test]
    fn close_refuses_a_queued_spawn_with_stopped() {
        let (_poller, q) = queue();
        let reply = ReplySlot::for_current_thread();
        let request = SpawnRequest {
            command: PreparedCommand::new(&["/bin/true"]).expect("command"),
            discard_output: true,
            owner: thread::current().id(),
            reply: reply.clone(),
        };
        assert!(q.push(Message::Spawn(Box::new(request))).is_ok());
        q.close();
        let spin = SpinPolicy::new(Duration::ZERO);
        assert!(matches!(reply.wait(&spin), Err(SpawnError::Stopped)));
    }

    #[test]
    fn a_sleeping_loop_is_woken_by_close_and_a_closed_queue_keeps_it_awake() {
        let (poller, q) = queue();
        assert!(q.prepare_to_sleep(false));
        q.close();
        let mut events = crate::poller::Events::with_capacity(4);
        poller
            .wait(&mut events)
            .expect("the close rang the doorbell");
        assert_eq!(events.get(0), Some(crate::poller::Event::Doorbell));
        q.woke_up();
        // Until the loop has acted on the close it may not sleep; afterwards it may.
        assert!(!q.prepare_to_sleep(false));
        assert!(q.prepare_to_sleep(true));
    }

    /// Threads push while another closes and a fake loop serves: every push is either given back
    /// or answered, and nothing stays queued.
    #[test]
    fn close_while_pushing_from_threads_leaves_nothing_unanswered() {
        for round in 0..20 {
            let (_poller, q) = queue();
            let q = Arc::new(q);
            let loop_thread = {
                let q = q.clone();
                thread::spawn(move || {
                    while !q.is_closed() {
                        while let Some(m) = q.pop() {
                            if let Message::Ping(slot) = m {
                                slot.fulfil(());
                            }
                        }
                        thread::yield_now();
                    }
                })
            };
            let pushers: Vec<_> = (0..4)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || {
                        let (mut answered, mut given_back) = (0, 0);
                        for _ in 0..500 {
                            let (slot, m) = ping();
                            match q.push(m) {
                                Ok(()) => {
                                    let deadline = Instant::now() + Duration::from_secs(10);
                                    while !slot.ready.load(Ordering::Acquire) {
                                        assert!(
                                            Instant::now() < deadline,
                                            "a push was never answered"
                                        );
                                        thread::yield_now();
                                    }
                                    answered += 1;
                                }
                                Err(_) => given_back += 1,
                            }
                        }
                        (answered, given_back)
                    })
                })
                .collect();
            thread::sleep(Duration::from_micros(200 * (round % 5)));
            q.close();
            let mut total = 0;
            for p in pushers {
                let (a, g) = p.join().expect("pusher");
                total += a + g;
            }
            loop_thread.join().expect("loop");
            assert_eq!(total, 4 * 500);
            assert!(q.pop().is_none(), "a message stayed queued after close");
        }
    }
}
