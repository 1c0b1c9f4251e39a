//! Where a message for the loop enters: a lock-free queue of [`Message`]s, a doorbell rung only
//! when the loop may be asleep, and the stop protocol. (The callers' side of a request, which
//! builds and sends these and awaits the answer in a [`ReplySlot`], is [`crate::handoff`].)
//!
//! The queue owns "closed" the way a channel owns "disconnected": [`RequestQueue::close`] refuses
//! every queued message, and a push after the close gives the message back. A push that races
//! with the close is answered by whichever side drains last, so no message is ever left
//! unanswered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::thread;
use std::time::Instant;

use crossbeam_queue::SegQueue;

use crate::error::SpawnError;
use crate::poller::Waker;
use crate::proc_state::{ProcState, Spawned};
use crate::reap::Orphan;
pub(crate) use crate::reply_slot::{ReplySlot, SLOW_REPLY};
use crate::request::PreparedCommand;

/// What a caller thread asks of the executor thread.
pub(crate) enum Message {
    /// Spawn a process and answer with its parts. The loop hands it to the spawner thread.
    Spawn(Arc<SpawnRequest>),
    /// Start the kill escalation (SIGTERM now, SIGKILL after the grace) for a process.
    Kill(Arc<ProcState>),
    /// Answer at once: tells a caller that a loop runs (it then clones its child itself), and
    /// measures the hand-off alone (`Executor::round_trip`).
    Ping(Arc<ReplySlot<()>>),
    /// A child a calling thread spawned and tracks already (`SpawnSite::CallingThread`) whose
    /// deadline the loop must set, or which may have missed the escalation of `stop()`.
    Adopted(Adopted),
    /// A waiter reaped this child itself (the loop forgets its kill deadline, and a stop looks
    /// at the table again), or gave it back (the loop reaps it): see `waiter_reap`.
    Look(u64),
    /// Send a signal to a child that has no pidfd (ChildWatch::Signal), if it is still ours.
    Signal {
        state: Arc<ProcState>,
        signal: i32,
        reply: Arc<ReplySlot<std::io::Result<()>>>,
    },
    /// A child that was killed but could not be tracked (no pidfd, or the poll set refused
    /// it): the loop reaps it once it exits, if the pid still names it (pid and start time).
    Orphan(Orphan),
}

/// A spawn request, fully prepared by the caller.
///
/// The command sits in a cell that either side empties: the spawner thread takes it to spawn,
/// or the caller takes it to withdraw the request (a request timeout, a dropped future). So a
/// withdrawn request frees at once what it holds (its stdin-bytes pipe or memfd, its
/// environment copy, a cgroup made for it) however long it waits in a queue nobody drains;
/// only this small shell stays queued.
pub(crate) struct SpawnRequest {
    // Boxed: a withdrawn request's shell stays queued, and should be small.
    command: Mutex<Option<Box<PreparedCommand>>>,
    pub(crate) owner: thread::ThreadId,
    pub(crate) reply: Arc<ReplySlot<Result<Spawned, SpawnError>>>,
    /// When the caller queued it; `Some` only with [`ExecutorBuilder::timeline`](crate::ExecutorBuilder::timeline).
    pub(crate) queued: Option<Instant>,
}

impl SpawnRequest {
    pub(crate) fn new(
        command: PreparedCommand,
        reply: Arc<ReplySlot<Result<Spawned, SpawnError>>>,
        queued: Option<Instant>,
    ) -> SpawnRequest {
        SpawnRequest {
            command: Mutex::new(Some(Box::new(command))),
            owner: thread::current().id(),
            reply,
            queued,
        }
    }

    /// The command, for the one who serves the request; `None` once withdrawn (or taken).
    pub(crate) fn take_command(&self) -> Option<Box<PreparedCommand>> {
        self.command
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Gives up the request: the answer if it came meanwhile (the caller then owns it); else
    /// the command is dropped here and now, and an answer that still comes (the request was
    /// being served) goes back to whoever serves it, which disposes of it.
    pub(crate) fn withdraw(&self) -> Option<Result<Spawned, SpawnError>> {
        if let Some(answer) = self.reply.abandon() {
            return Some(answer);
        }
        drop(self.take_command());
        None
    }

    /// True once its command was taken or its caller gave up.
    pub(crate) fn is_withdrawn(&self) -> bool {
        self.reply.is_abandoned()
    }
}

/// A child spawned on its caller's thread, in the table and the poll set already.
pub(crate) struct Adopted {
    pub(crate) state: Arc<ProcState>,
    /// When it was spawned: its timeout counts from there.
    pub(crate) spawned_at: Instant,
}

impl Message {
    /// Answers a message that the loop will never serve because the executor stopped; a signal
    /// is sent by the caller instead. An adopted child or an orphan is no request to refuse: it
    /// comes back, for the loop to kill or reap.
    pub(crate) fn refuse(self) -> Option<Message> {
        match self {
            m @ (Message::Adopted(_) | Message::Orphan(_) | Message::Look(_)) => return Some(m),
            // A refusal given back (its caller gave up) is nothing to dispose of.
            Message::Spawn(req) => {
                let _ = req.reply.fulfil(Err(SpawnError::Stopped));
            }
            // Every child is escalated at stop anyway; the caller waits for the status.
            Message::Kill(_) => {}
            Message::Ping(slot) => {
                let _ = slot.fulfil(());
            }
            // The loop takes no more messages but is still escalating and reaping: the child is
            // ours until reaped, so the signal is sent here, under its reap gate (a second
            // Ctrl-C's SIGKILL must not wait for the grace).
            Message::Signal {
                state,
                signal,
                reply,
            } => {
                let _ = reply.fulfil(state.signal_unreaped(signal));
            }
        }
        None
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
    /// Spawns under way on calling threads ([`enter_caller_spawn`](Self::enter_caller_spawn)):
    /// the loop must not end while one is.
    caller_spawns: AtomicUsize,
    /// Adopted children, orphans and a waiter's looks that came after the close: the loop
    /// escalates or reaps them (only [`Message::Adopted`], [`Message::Orphan`] and
    /// [`Message::Look`] are ever here).
    late: Mutex<Vec<Message>>,
    /// Callers preparing a request they announced ([`announce`](RequestQueue::announce)).
    incoming: AtomicUsize,
    /// The queue's length after the last [`shed_withdrawn`](Self::shed_withdrawn); held while
    /// one runs.
    shed: Mutex<usize>,
}

/// The queue length from which a push made while no loop runs sheds withdrawn requests.
const SHED_AT: usize = 1024;

/// A request being prepared, announced to the loop; dropped once it is queued (or given up).
pub(crate) struct Announced<'a>(&'a AtomicUsize);

impl Drop for Announced<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A spawn under way on a calling thread; ends when dropped.
pub(crate) struct CallerSpawn<'a>(&'a RequestQueue);

impl Drop for CallerSpawn<'_> {
    fn drop(&mut self) {
        self.0.caller_spawns.fetch_sub(1, Ordering::SeqCst);
        if self.0.closed.load(Ordering::SeqCst) {
            // The stopping loop may be waiting for us alone.
            self.0.ring();
        }
    }
}

impl RequestQueue {
    pub(crate) fn new(waker: Waker) -> RequestQueue {
        RequestQueue {
            messages: SegQueue::new(),
            waker,
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            caller_spawns: AtomicUsize::new(0),
            late: Mutex::new(Vec::new()),
            incoming: AtomicUsize::new(0),
            shed: Mutex::new(0),
        }
    }

    /// Registers a spawn on the calling thread; `None` (nothing registered) once closed.
    /// SeqCst pairs with the loop's [`callers_settled`](Self::callers_settled): either the loop
    /// sees our count, or we see the close.
    pub(crate) fn enter_caller_spawn(&self) -> Option<CallerSpawn<'_>> {
        self.caller_spawns.fetch_add(1, Ordering::SeqCst);
        let registered = CallerSpawn(self);
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        Some(registered)
    }

    /// Hands a killed, untracked child to the loop, which reaps it: see [`Message::Orphan`].
    pub(crate) fn push_orphan(&self, orphan: Orphan) {
        self.push_for_loop(Message::Orphan(orphan));
    }

    /// Hands an adopted child to the loop; after the close it waits on the late list, which the
    /// loop drains as long as it runs (it runs while a caller spawn is registered).
    pub(crate) fn push_adopted(&self, adopted: Adopted) {
        self.push_for_loop(Message::Adopted(adopted));
    }

    /// Tells the loop of a child a waiter reaped or gave back: see [`Message::Look`].
    pub(crate) fn push_look(&self, serial: u64) {
        self.push_for_loop(Message::Look(serial));
    }

    /// Queues a message the loop must act on even after the close (an adopted child, an orphan,
    /// a look).
    fn push_for_loop(&self, message: Message) {
        if self.closed.load(Ordering::SeqCst) {
            self.lock_late().push(message);
        } else {
            self.messages.push(message);
            if self.closed.load(Ordering::SeqCst) {
                self.refuse_pending();
            }
        }
        self.ring();
    }

    /// Adopted children, orphans and looks that came after the close.
    pub(crate) fn take_late(&self) -> Vec<Message> {
        std::mem::take(&mut *self.lock_late())
    }

    /// True when no spawn is under way on a calling thread and none of their children waits
    /// for the loop: a stopped loop may end. (Reads the count first: a caller pushes to the late
    /// list before it leaves.)
    pub(crate) fn callers_settled(&self) -> bool {
        self.caller_spawns.load(Ordering::SeqCst) == 0 && self.lock_late().is_empty()
    }

    fn lock_late(&self) -> MutexGuard<'_, Vec<Message>> {
        self.late.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the loop a request is on its way and wakes it now, so that waking the executor
    /// thread (tens of microseconds on a VM whose idle vCPU halted) overlaps the caller's
    /// preparation (environment, stdin bytes, working directory check) instead of following
    /// it. The loop waits a little for announced requests before it sleeps again
    /// ([`expecting`](Self::expecting)). Drop the guard once the request is pushed.
    pub(crate) fn announce(&self) -> Announced<'_> {
        self.incoming.fetch_add(1, Ordering::SeqCst);
        self.ring();
        Announced(&self.incoming)
    }

    /// True while an announced request is still being prepared and the queue is empty.
    pub(crate) fn expecting(&self) -> bool {
        self.incoming.load(Ordering::SeqCst) > 0 && self.messages.is_empty()
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
        self.after_push();
        Ok(())
    }

    /// Queues every message of `batch` and wakes the executor thread once, if it may be asleep:
    /// [`push`](Self::push) for many. After [`close`](Self::close) the batch comes back unqueued.
    pub(crate) fn push_batch(&self, batch: Vec<Message>) -> Result<(), Vec<Message>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(batch);
        }
        for message in batch {
            self.messages.push(message);
        }
        self.after_push();
        Ok(())
    }

    /// After a push: refuses what is queued if the queue was closed meanwhile, else rings.
    fn after_push(&self) {
        // SeqCst pairs with `close`: either the closer's drain sees what we pushed, or we see
        // the flag here and drain it ourselves.
        if self.closed.load(Ordering::SeqCst) {
            self.refuse_pending();
        } else {
            self.ring();
        }
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
            if let Some(for_loop) = m.refuse() {
                self.lock_late().push(for_loop);
            }
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

    /// Drops the withdrawn requests' shells (and the abandoned waits for a loop) from a queue
    /// that nobody drains (no loop runs), once
    /// it holds [`SHED_AT`] messages and twice as many as after the last shedding: so however
    /// many requests time out or are dropped before a loop runs, the queue stays proportional
    /// to those still wanted, at a cost amortized over the pushes. The others keep their order
    /// among themselves.
    pub(crate) fn shed_withdrawn(&self) {
        let Ok(mut floor) = self.shed.try_lock() else {
            return;
        };
        let len = self.messages.len();
        if len < SHED_AT.max(floor.saturating_mul(2)) {
            return;
        }
        for _ in 0..len {
            match self.messages.pop() {
                Some(Message::Spawn(request)) if request.is_withdrawn() => {}
                // A caller that gave up waiting for a loop to run.
                Some(Message::Ping(slot)) if slot.is_abandoned() => {}
                Some(message) => self.messages.push(message),
                None => break,
            }
        }
        *floor = self.messages.len();
        drop(floor);
        // Closed meanwhile: what went back in is refused, as after any push.
        self.after_push();
    }

    /// True when no message is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub(crate) fn pop(&self) -> Option<Message> {
        self.messages.pop()
    }

    /// Announces that the loop is about to block. Returns false (and stays awake) when a message
    /// arrived meanwhile, or when the queue was closed and the loop has not acted on it yet
    /// (`close_seen`), or when the loop waits only for caller spawns (`awaiting_callers`) and
    /// they are done (SeqCst pairs with [`CallerSpawn`]'s drop: either it sees `sleeping` and
    /// rings, or we see it gone).
    pub(crate) fn prepare_to_sleep(&self, close_seen: bool, awaiting_callers: bool) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.messages.is_empty()
            && (close_seen || !self.closed.load(Ordering::SeqCst))
            && !(awaiting_callers && self.callers_settled())
            && self.lock_late().is_empty()
        {
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
    use crate::spin::SpinPolicy;
    use std::time::{Duration, Instant};

    fn queue() -> (Poller, RequestQueue) {
        let poller = Poller::new().expect("poller");
        let waker = Waker::new(&poller).expect("waker");
        (poller, RequestQueue::new(waker))
    }

    fn ping() -> (Arc<ReplySlot<()>>, Message) {
        let slot = ReplySlot::for_current_thread();
        (slot.clone(), Message::Ping(slot))
    }

    fn adopted(serial: u64) -> Adopted {
        let pid = rustix::process::Pid::from_raw(1).expect("positive");
        let spin = Arc::new(SpinPolicy::new(Duration::ZERO));
        Adopted {
            state: Arc::new(ProcState::new(serial, pid, None, spin)),
            spawned_at: Instant::now(),
        }
    }

    #[test]
    fn an_adopted_child_is_never_refused_and_a_stopped_loop_waits_for_caller_spawns() {
        let (_poller, q) = queue();
        q.push_adopted(adopted(1));
        assert!(matches!(q.pop(), Some(Message::Adopted(a)) if a.state.serial == 1));
        // Queued when the close comes: moved to the late list, not dropped.
        q.push_adopted(adopted(2));
        let registered = q.enter_caller_spawn().expect("not closed yet");
        q.close();
        assert!(q.pop().is_none());
        assert!(!q.callers_settled(), "a caller spawn is under way");
        // The loop, done but for the caller, sleeps (it is rung when the caller leaves).
        assert!(
            !q.prepare_to_sleep(true, true),
            "the late adoption is pending"
        );
        let late = q.take_late();
        let serials: Vec<u64> = late
            .iter()
            .map(|m| match m {
                Message::Adopted(a) => a.state.serial,
                _ => 0,
            })
            .collect();
        assert_eq!(serials, [2]);
        assert!(q.prepare_to_sleep(true, true), "still registered: sleep");
        q.woke_up();
        // After the close: straight to the late list.
        q.push_adopted(adopted(3));
        drop(registered);
        assert!(!q.callers_settled(), "its child waits for the loop");
        assert_eq!(q.take_late().len(), 1);
        assert!(q.callers_settled());
        assert!(
            !q.prepare_to_sleep(true, true),
            "nothing left to wait for: end"
        );
        assert!(q.enter_caller_spawn().is_none(), "no spawn after the close");
        assert!(q.callers_settled(), "a refused registration does not count");
    }

    #[test]
    fn push_after_close_gives_the_message_back() {
        let (_poller, q) = queue();
        let (queued, m) = ping();
        assert!(q.push(m).is_ok());
        q.close();
        // The queued one was refused (a ping's refusal is its answer).
        assert!(queued.is_ready());
        let (late, m) = ping();
        assert!(matches!(q.push(m), Err(Message::Ping(_))));
        assert!(!late.is_ready());
        assert!(q.pop().is_none());
        assert!(q.is_closed());
    }

    #[test]
    fn withdrawn_requests_are_shed_from_a_queue_nobody_drains() {
        let (_poller, q) = queue();
        let keep: Vec<_> = (0..10).map(|_| ping()).collect();
        let mut withdrawn = Vec::new();
        for _ in 0..SHED_AT {
            let command = PreparedCommand::new(&["/bin/true"]).expect("command");
            let request = Arc::new(SpawnRequest::new(
                command,
                ReplySlot::for_current_thread(),
                None,
            ));
            assert!(q.push(Message::Spawn(request.clone())).is_ok());
            assert!(request.withdraw().is_none());
            assert!(request.take_command().is_none(), "freed at once");
            withdrawn.push(request);
        }
        for (_, m) in keep.iter().map(|(s, _)| (s, Message::Ping(s.clone()))) {
            assert!(q.push(m).is_ok());
        }
        q.shed_withdrawn();
        assert_eq!(q.messages.len(), 10, "only the wanted messages are left");
        assert!(
            withdrawn.iter().all(|r| Arc::strong_count(r) == 1),
            "the queue still holds withdrawn shells"
        );
    }

    #[test]
    fn close_refuses_a_queued_spawn_with_stopped() {
        let (_poller, q) = queue();
        let reply = ReplySlot::for_current_thread();
        let command = PreparedCommand::new(&["/bin/true"]).expect("command");
        let request = SpawnRequest::new(command, reply.clone(), None);
        assert!(q.push(Message::Spawn(Arc::new(request))).is_ok());
        q.close();
        let spin = SpinPolicy::new(Duration::ZERO);
        assert!(matches!(reply.wait(&spin), Err(SpawnError::Stopped)));
    }

    #[test]
    fn an_announcement_wakes_a_sleeping_loop_and_lasts_until_the_push() {
        let (poller, q) = queue();
        assert!(!q.expecting(), "nothing announced");
        assert!(q.prepare_to_sleep(false, false));
        let first = q.announce();
        let second = q.announce();
        let mut events = crate::poller::Events::with_capacity(4);
        poller
            .wait(&mut events)
            .expect("the announcement rang the doorbell");
        assert_eq!(events.get(0), Some(crate::poller::Event::Doorbell));
        q.woke_up();
        q.clear_doorbell();
        assert!(q.expecting(), "two requests on their way");
        let (_slot, m) = ping();
        assert!(q.push(m).is_ok());
        drop(first);
        assert!(!q.expecting(), "a message is there to serve");
        assert!(q.pop().is_some());
        assert!(q.expecting(), "the second is still being prepared");
        drop(second);
        assert!(!q.expecting(), "given up: nothing more is coming");
        assert!(q.prepare_to_sleep(false, false));
    }

    #[test]
    fn a_sleeping_loop_is_woken_by_close_and_a_closed_queue_keeps_it_awake() {
        let (poller, q) = queue();
        assert!(q.prepare_to_sleep(false, false));
        q.close();
        let mut events = crate::poller::Events::with_capacity(4);
        poller
            .wait(&mut events)
            .expect("the close rang the doorbell");
        assert_eq!(events.get(0), Some(crate::poller::Event::Doorbell));
        q.woke_up();
        // Until the loop has acted on the close it may not sleep; afterwards it may.
        assert!(!q.prepare_to_sleep(false, false));
        assert!(q.prepare_to_sleep(true, false));
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
                                let _ = slot.fulfil(());
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
                                    while !slot.is_ready() {
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
