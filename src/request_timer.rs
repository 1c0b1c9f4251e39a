//! The request timeout of async spawns ([`Executor::spawn_async`] and
//! [`Executor::create_process_async`] on an executor with a request timeout): one thread for
//! the whole process, started the first time such a future is made, that ends each request not
//! served by its deadline. It also wakes, after a second, a future whose first poll found no
//! thread running the loop, so that it can log the warning a blocking caller logs
//! ([`SpawnFuture`](crate::SpawnFuture)).
//!
//! Why a thread: a blocking caller times out by itself (`park_timeout`), but a future only runs
//! when something wakes it. The executor's loop cannot be that something (the timeout exists
//! for a loop nobody runs), the library has no runtime to ask for a timer, and a thread per
//! future would defeat the point of async. So one thread keeps a heap of deadlines and sleeps
//! on a condition variable until the earliest (with no deadline pending, without a timeout: it
//! never wakes an idle process). It is only started by an async spawn with a request timeout, or
//! one polled while no thread runs the loop; blocking callers never start it.
//!
//! It holds each request's reply slot weakly. A request answered and dropped before its
//! deadline leaves a void entry (a `Weak` whose slot is gone, which still pins the slot's
//! allocation); void entries are dropped whenever they outnumber the rest, so the heap and the
//! memory it pins stay proportional to the requests still waiting, at an amortized O(1) per
//! request.
//!
//! After `fork()` the child has no timer thread: the first async spawn with a timeout there
//! starts its own (the state records which process the thread belongs to). A fork that happens
//! while another thread holds the timer's lock (a heap push: a few instructions) leaves the
//! child's copy locked for good, as with any lock held across `fork()`.
//!
//! [`Executor::spawn_async`]: crate::Executor::spawn_async
//! [`Executor::create_process_async`]: crate::Executor::create_process_async

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

/// Something the timer ends at its deadline: a reply slot whose future then resolves to
/// `NotServed`, unless its answer came first.
pub(crate) trait Expire: Send + Sync {
    fn expire(&self);
}

/// Ends `slot` at `at`, unless it is gone by then. Starts the timer thread the first time (in
/// this process).
///
/// # Errors
/// The error of creating the thread (`EAGAIN`: out of threads); nothing was registered then.
pub(crate) fn expire_at(at: Instant, slot: Weak<dyn Expire>) -> io::Result<()> {
    let mut state = TIMER.lock();
    let pid = std::process::id();
    if state.thread_in != Some(pid) {
        // First use, or a process forked from the one whose thread it was (threads do not
        // survive fork): start one here.
        std::thread::Builder::new()
            .name("napix-request-timer".into())
            .spawn(|| TIMER.serve())?;
        state.thread_in = Some(pid);
    }
    let earliest = state.heap.peek().map(|e| e.at);
    state.push(at, slot);
    if earliest.is_none_or(|e| at < e) {
        // The thread sleeps until the old earliest deadline (or for good): it must look again.
        TIMER.changed.notify_one();
    }
    Ok(())
}

static TIMER: Timer = Timer {
    state: Mutex::new(State {
        heap: BinaryHeap::new(),
        next_seq: 0,
        kept: 0,
        thread_in: None,
    }),
    changed: Condvar::new(),
};

struct Timer {
    state: Mutex<State>,
    /// Signalled when a deadline earlier than every pending one arrives.
    changed: Condvar,
}

struct State {
    /// Pending deadlines, earliest on top.
    heap: BinaryHeap<Deadline>,
    /// Orders deadlines at the same instant (first come, first expired).
    next_seq: u64,
    /// How many entries the last sweep of void ones kept: the next sweep comes when the heap
    /// has doubled since (so each entry is swept a bounded number of times).
    kept: usize,
    /// The process whose timer thread runs (`None` before the first use).
    thread_in: Option<u32>,
}

/// Entries tolerated before the first sweep: a small heap is not worth sweeping.
const SWEEP_SLACK: usize = 64;

impl State {
    fn push(&mut self, at: Instant, slot: Weak<dyn Expire>) {
        if self.heap.len() > 2 * self.kept.max(SWEEP_SLACK) {
            self.sweep_void();
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Deadline { at, seq, slot });
    }

    /// Drops the entries whose slot is gone (answered and dropped, or withdrawn): nothing is
    /// left for them to end, and their `Weak` pins the slot's allocation.
    fn sweep_void(&mut self) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|e| e.slot.strong_count() > 0);
        self.kept = entries.len();
        self.heap = BinaryHeap::from(entries);
    }
}

struct Deadline {
    at: Instant,
    seq: u64,
    slot: Weak<dyn Expire>,
}

// Reversed, so that `BinaryHeap` (a max-heap) has the earliest deadline on top.
impl Ord for Deadline {
    fn cmp(&self, other: &Deadline) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Deadline) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Deadline) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Deadline {}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: expires what is due, sleeps until the next deadline.
    fn serve(&self) {
        let mut due = Vec::new();
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            due.extend(take_due(&mut state.heap, now));
            if !due.is_empty() {
                // Outside the lock: expiring wakes a task, which may do anything.
                drop(state);
                for slot in due.drain(..) {
                    if let Some(slot) = slot.upgrade() {
                        slot.expire();
                    }
                }
                state = self.lock();
                continue;
            }
            state = match state
                .heap
                .peek()
                .map(|e| e.at.saturating_duration_since(now))
            {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(sleep) => {
                    self.changed
                        .wait_timeout(state, sleep)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// Pops every deadline at or before `now`.
fn take_due(heap: &mut BinaryHeap<Deadline>, now: Instant) -> Vec<Weak<dyn Expire>> {
    let mut due = Vec::new();
    while heap.peek().is_some_and(|e| e.at <= now) {
        if let Some(e) = heap.pop() {
            due.push(e.slot);
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use std::time::Duration;

    struct Count(AtomicUsize);

    impl Expire for Count {
        fn expire(&self) {
            self.0.fetch_add(1, AtomicOrdering::SeqCst);
        }
    }

    fn weak(c: &Arc<Count>) -> Weak<dyn Expire> {
        let w: Weak<Count> = Arc::downgrade(c);
        w
    }

    fn empty_state() -> State {
        State {
            heap: BinaryHeap::new(),
            next_seq: 0,
            kept: 0,
            thread_in: None,
        }
    }

    #[test]
    fn slots_dropped_before_their_deadline_are_released() {
        let t = Instant::now();
        let mut state = empty_state();
        // One request waits for an hour...
        let waiting = Arc::new(Count(AtomicUsize::new(0)));
        state.push(t + Duration::from_secs(3600), weak(&waiting));
        // ...while 100,000 answered ones, with later deadlines, come and go.
        let mut most = 0;
        for i in 0..100_000u64 {
            let answered = Arc::new(Count(AtomicUsize::new(0)));
            state.push(t + Duration::from_secs(7200 + i), weak(&answered));
            drop(answered);
            most = most.max(state.heap.len());
        }
        assert!(
            most <= 2 * SWEEP_SLACK + 1,
            "{most} entries for one waiting request"
        );
        // What a sweep dropped is no longer pinned; the waiting request is still there, first.
        state.sweep_void();
        assert_eq!(state.heap.len(), 1);
        assert_eq!(Arc::weak_count(&waiting), 1);
        assert_eq!(
            state.heap.peek().map(|e| e.at),
            Some(t + Duration::from_secs(3600))
        );
    }

    #[test]
    fn live_slots_survive_a_sweep() {
        let t = Instant::now();
        let mut state = empty_state();
        let live: Vec<_> = (0..200)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        for (i, slot) in live.iter().enumerate() {
            state.push(t + Duration::from_millis(i as u64), weak(slot));
        }
        // Pushing past 2 x SWEEP_SLACK swept nothing that was live.
        assert_eq!(state.heap.len(), 200);
        assert!(state.kept >= 2 * SWEEP_SLACK);
        let due = take_due(&mut state.heap, t + Duration::from_secs(1));
        assert_eq!(due.len(), 200);
    }

    #[test]
    fn deadlines_come_out_earliest_first_and_only_when_due() {
        let t = Instant::now();
        let a = Arc::new(Count(AtomicUsize::new(0)));
        let mut heap = BinaryHeap::new();
        for (i, ms) in [30u64, 10, 20, 10].into_iter().enumerate() {
            heap.push(Deadline {
                at: t + Duration::from_millis(ms),
                seq: i as u64,
                slot: weak(&a),
            });
        }
        assert!(take_due(&mut heap, t).is_empty());
        assert_eq!(take_due(&mut heap, t + Duration::from_millis(10)).len(), 2);
        assert_eq!(
            heap.peek().map(|e| e.at),
            Some(t + Duration::from_millis(20))
        );
        assert_eq!(take_due(&mut heap, t + Duration::from_secs(1)).len(), 2);
        assert!(heap.is_empty());
    }

    /// Through the real thread: a later deadline registered first does not delay an earlier
    /// one, each fires once, and a slot dropped before its deadline is skipped.
    #[test]
    fn the_thread_expires_each_slot_once_at_its_deadline() {
        let late = Arc::new(Count(AtomicUsize::new(0)));
        let early = Arc::new(Count(AtomicUsize::new(0)));
        let dropped = Arc::new(Count(AtomicUsize::new(0)));
        let t = Instant::now();
        expire_at(t + Duration::from_millis(400), weak(&late)).expect("timer thread");
        expire_at(t + Duration::from_millis(50), weak(&early)).expect("timer thread");
        expire_at(t + Duration::from_millis(50), weak(&dropped)).expect("timer thread");
        let dropped_weak = Arc::downgrade(&dropped);
        drop(dropped);
        let start = Instant::now();
        while early.0.load(AtomicOrdering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never expired");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(dropped_weak.upgrade().is_none());
        while late.0.load(AtomicOrdering::SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never expired");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(t.elapsed() >= Duration::from_millis(400));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(early.0.load(AtomicOrdering::SeqCst), 1);
        assert_eq!(late.0.load(AtomicOrdering::SeqCst), 1);
    }
}
