//! The loop: waits on the [`Poller`](crate::poller::Poller) and says what each event means.
//!
//! - doorbell: drain the queue (wake-ups coalesce) and serve each message, at most
//!   [`PASS_BUDGET`] of them per pass;
//! - a pidfd readable, or SIGCHLD (signal mode): reap ([`crate::reap`]);
//! - timer: SIGKILL every escalation whose grace ran out ([`crate::escalation`]), retry the
//!   reaps that wait for it, re-arm to the next deadline.
//!
//! The loop never spawns: a child is cloned by the thread that asked for it, or by the
//! spawner thread to which the loop hands queued requests ([`crate::spawn_site`]); either puts
//! the child in the table and the poll set, and tells the loop only what it must act on. So
//! nothing the loop does can block on a child that has not exec'd yet.
//!
//! Idle, the loop blocks without a timeout: the timer is armed only while a kill escalation is
//! pending or a child needs reaping without a usable pidfd.

use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use tracing::{debug, info, warn};

use crate::cgroup::Leftovers;
use crate::error::SpawnError;
use crate::escalation::{Escalations, Start};
use crate::poller::{Event, Events};
use crate::proc_state::{ProcState, lost_status, reap_blocking};
use crate::queue::{Adopted, Message};
use crate::reap::{KillPid, ReapPid, ReapTracked, Reaped, Reaper, SigchldLook, StartTime, SysWait};
use crate::shared::{ChildWatch, Shared};
use crate::sigchld::SigchldSource;
use crate::spawner_thread::{Jobs, SpawnerThread};

/// The most queued messages the loop serves in one pass before it looks at its timer and its
/// children again: a flood of requests delays a deadline or a reap by one pass at most.
pub(crate) const PASS_BUDGET: usize = 64;

/// What the loop asks of the kernel about its children, behind [`crate::reap`]'s seams: the real
/// one ([`SysWait`]) in `run`, a fake in the unit tests below.
trait LoopKernel: ReapTracked + ReapPid + StartTime + KillPid + SigchldLook {}

impl<W: ReapTracked + ReapPid + StartTime + KillPid + SigchldLook> LoopKernel for W {}

struct Reactor<'scope, 'a, W = SysWait> {
    shared: &'a Shared,
    spawner: SpawnerThread<'scope, 'a>,
    escalations: Escalations,
    reaper: Reaper<W>,
    /// Cgroups made for reaped children, still to remove.
    cgroups: Leftovers,
    stop_seen: bool,
    /// What the timer is armed to.
    armed: Option<Instant>,
    /// With a timeline: when the poller last returned, while its events are handled (the instant
    /// a child reaped in that pass was observed to have exited); `None` outside that pass.
    woke: Option<Instant>,
    events: Events,
    /// The loop waited for an announced request since it last polled: it polls before it
    /// waits again, so a stream of announced requests cannot hold back exits and timers.
    awaited_since_poll: bool,
    /// The child whose pidfd event is being handled: its one-shot registration is spent.
    fired: Option<u64>,
}

/// Runs the loop until the executor is stopped and every child is reaped.
pub(crate) fn run(shared: &Shared) -> io::Result<()> {
    let sigchld = match shared.config().watch {
        ChildWatch::Signal => {
            let source = SigchldSource::new()?;
            if let Some(fd) = source.fd() {
                shared.poller().add_sigchld(fd)?;
            }
            Some(source)
        }
        _ => None,
    };
    let jobs = Jobs::default();
    // The spawner thread is scoped to this call: joined (once it has answered every request
    // handed to it) before the loop returns.
    std::thread::scope(|scope| {
        let spawner = SpawnerThread::new(scope, shared, &jobs);
        let mut reactor = Reactor::new(shared, spawner, Reaper::new(SysWait::new(), sigchld));
        let result = reactor.run_loop();
        jobs.close();
        // One last try: a cgroup still busy now is logged and left.
        reactor.cgroups.retry();
        if result.is_err() {
            // The poll set is broken: nothing can be reaped through it any more.
            shared.abandon();
            for pid in reactor.reaper.take_orphans() {
                reap_blocking(rustix::process::WaitId::Pid(pid));
            }
        }
        result
    })
}

/// The longest the loop waits for an announced request before it sleeps (it is woken again by
/// the request's push): preparing a command takes microseconds, not this.
const ANNOUNCED_WAIT: Duration = Duration::from_micros(50);

/// Whether `state`'s child (watched without a pidfd) is running, unreaped, by `waitid(WNOHANG |
/// WNOWAIT)`: no descriptor opened (unlike the reap, which reads `/proc` first), nothing taken.
/// False when it has exited or is no child of ours any more.
fn still_running(state: &ProcState) -> bool {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    loop {
        return match waitid(WaitId::Pid(state.os_pid), options) {
            Ok(None) => true,
            Err(Errno::INTR) => continue,
            _ => false,
        };
    }
}

impl<'scope, 'a, W> Reactor<'scope, 'a, W> {
    fn new(
        shared: &'a Shared,
        spawner: SpawnerThread<'scope, 'a>,
        reaper: Reaper<W>,
    ) -> Reactor<'scope, 'a, W> {
        Reactor {
            shared,
            spawner,
            escalations: Escalations::new(shared.config().kill_grace),
            reaper,
            cgroups: Leftovers::default(),
            stop_seen: false,
            awaited_since_poll: false,
            armed: None,
            woke: None,
            events: Events::with_capacity(256),
            fired: None,
        }
    }
}

#[cfg(test)]
impl<W> Reactor<'_, '_, W> {
    /// The fake kernel behind the reaper (tests).
    fn reaper_kernel(&self) -> &W {
        self.reaper.kernel()
    }
}

impl<W: LoopKernel> Reactor<'_, '_, W> {
    fn run_loop(&mut self) -> io::Result<()> {
        let queue = self.shared.queue();
        loop {
            let more = self.drain_queue();
            if queue.is_closed() && !self.stop_seen {
                self.begin_stop();
            }
            // Done once stopped, every child reaped, and no caller thread is mid-spawn (the
            // count is read first: a caller's child is in the table before it leaves).
            let callers_settled = queue.callers_settled();
            let done =
                self.stop_seen && self.shared.table().is_empty() && !self.reaper.has_orphans();
            if done && callers_settled {
                return Ok(());
            }
            let waited = if more {
                // The budget ran out with messages left: look at what is ready, then go on.
                self.shared.poller().poll_now(&mut self.events)
            } else {
                if self.await_announced() || !queue.prepare_to_sleep(self.stop_seen, done) {
                    continue;
                }
                self.shared.poller().wait(&mut self.events)
            };
            self.awaited_since_poll = false;
            // Only for a wait that returned events: an interrupted one leaves no pass to stamp.
            self.woke = (waited.is_ok() && self.shared.config().timeline).then(Instant::now);
            queue.woke_up();
            match waited {
                Ok(()) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            for i in 0..self.events.len() {
                match self.events.get(i) {
                    Some(Event::Doorbell) => queue.clear_doorbell(),
                    Some(Event::Timer) => self.on_timer(),
                    Some(Event::Sigchld) => self.on_sigchld(),
                    Some(Event::Child(serial)) => self.on_child_ready(serial),
                    Some(Event::Io(id)) => self.shared.poller().io_ready(id),
                    None => {}
                }
            }
            self.woke = None;
        }
    }

    /// Waits a little for a request a caller announced and is still preparing (see
    /// [`RequestQueue::announce`](crate::queue::RequestQueue::announce)), yielding the CPU
    /// meanwhile: sleeping now would make that caller pay the wake-up its announcement paid
    /// ahead. True if a message came; false at once when none is announced or the loop already
    /// waited since it last polled, and after [`ANNOUNCED_WAIT`] (a caller that stalls costs
    /// the loop no more than that).
    fn await_announced(&mut self) -> bool {
        let queue = self.shared.queue();
        if !queue.expecting() || self.stop_seen || self.awaited_since_poll {
            return false;
        }
        self.awaited_since_poll = true;
        let until = Instant::now() + ANNOUNCED_WAIT;
        while queue.expecting() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Serves queued messages, at most [`PASS_BUDGET`]; true if some are left for the next
    /// pass.
    fn drain_queue(&mut self) -> bool {
        for message in self.shared.queue().take_late() {
            self.serve(message);
        }
        for _ in 0..PASS_BUDGET {
            match self.shared.queue().pop() {
                Some(message) => self.serve(message),
                None => return false,
            }
        }
        !self.shared.queue().is_empty()
    }

    fn serve(&mut self, message: Message) {
        match message {
            Message::Adopted(adopted) => self.adopt(adopted),
            Message::Spawn(request) => {
                if request.is_withdrawn() {
                    // Its caller timed out or dropped its future, and freed what it held.
                } else if self.shared.is_stopped() {
                    let _ = request.reply.fulfil(Err(SpawnError::Stopped));
                } else {
                    self.spawner.submit(request);
                }
            }
            Message::Kill(state) => self.start_escalation(Instant::now(), vec![state]),
            Message::Look(serial) => self.look(serial),
            Message::Ping(slot) => {
                let _ = slot.fulfil(());
            }
            Message::Signal {
                state,
                signal,
                reply,
            } => {
                // Still in the table and running means not reaped: the pid is still ours.
                let tracked = self.shared.table().get(state.serial).is_some();
                if tracked && state.still_ours() {
                    let _ = reply.fulfil(state.signal(signal));
                } else {
                    if tracked {
                        self.try_reap(&state);
                    }
                    let _ = reply.fulfil(Err(io::Error::from_raw_os_error(libc::ESRCH)));
                }
            }
            Message::Orphan(orphan) => {
                self.reaper.add_named_orphan(orphan);
                self.rearm(Instant::now());
            }
        }
    }

    /// A child a calling thread spawned (and put in the table and the poll set): its deadline,
    /// and the kill if the executor is stopping (it may have come after `begin_stop` looked at
    /// the table; an escalation under way already is left alone).
    fn adopt(&mut self, adopted: Adopted) {
        self.set_deadline(&adopted.state, adopted.spawned_at);
        if self.stop_seen || self.shared.is_stopped() {
            self.start_escalation(Instant::now(), vec![adopted.state.clone()]);
        }
        if adopted.state.pidfd.is_none()
            && self.shared.table().get(adopted.state.serial).is_some()
            && !still_running(&adopted.state)
        {
            // Signal mode: its SIGCHLD may have come before it was in the table, and found
            // nothing to reap. Reap it now; the timer's looks watch the others from here on.
            self.try_reap(&adopted.state);
        }
        if adopted.state.pidfd.is_none() {
            self.rearm(Instant::now());
        }
    }

    /// A waiter reaped child `serial` (`waiter_reap`): its kill deadline, if any, goes; or gave
    /// it back: it is reaped now if it can be (else the timer re-checks it).
    fn look(&mut self, serial: u64) {
        let tracked = self.shared.table().get(serial).map(|e| e.state.clone());
        match tracked {
            Some(state) => self.try_reap(&state),
            None => {
                if self.escalations.forget(serial) {
                    self.rearm(Instant::now());
                }
            }
        }
    }

    /// A child spawned with a timeout gets its deadline, counted from when the loop took its
    /// request, on the escalation timer.
    fn set_deadline(&mut self, state: &Arc<ProcState>, asked: Instant) {
        let Some(timeout) = state.lifetime.timeout else {
            return;
        };
        // Reaped already (its status was lost at spawn), or a timeout too far to represent.
        if state.status().is_some() {
            return;
        }
        if let Some(at) = asked.checked_add(timeout) {
            self.escalations.set_timeout(state.serial, at);
            self.rearm(Instant::now());
        }
    }

    /// stop() was called: escalate every child at the same instant.
    fn begin_stop(&mut self) {
        self.stop_seen = true;
        let states = self.shared.table().states();
        info!(children = states.len(), "stopping");
        self.start_escalation(Instant::now(), states);
    }

    /// Starts the escalation of `children`, all with the deadline `now + grace`; reaps those found
    /// already exited; re-arms the timer.
    fn start_escalation(&mut self, now: Instant, children: Vec<Arc<ProcState>>) {
        let mut gone = Vec::new();
        for state in children {
            // Before the look at the table: a waiter reaping it meanwhile (`waiter_reap`) either
            // sees this and tells us, or took the entry out before our look.
            state.set_escalated();
            if self.shared.table().get(state.serial).is_none() {
                continue;
            }
            if self.escalations.start(state.serial, &state, now) == Start::Gone {
                gone.push(state);
            }
        }
        for state in gone {
            self.try_reap(&state);
        }
        self.rearm(now);
    }

    fn on_timer(&mut self) {
        self.shared.poller().clear_timer();
        self.armed = None;
        let now = Instant::now();
        self.cgroups.retry();
        let table = self.shared;
        let gone = self.escalations.fire(now, |serial| {
            table.table().get(serial).map(|e| e.state.clone())
        });
        for state in gone {
            self.try_reap(&state);
        }
        let due = self.reaper.check_due(now);
        // A full look also when the quick one is blocked by a child that is not ours.
        if due.scan || (due.probe && !self.reap_waitable()) {
            self.reap_every_child();
        }
        self.reaper.reap_orphans();
        // try_reap puts those still without a status back on the list.
        for state in self.reaper.take_stalled() {
            if self.shared.table().get(state.serial).is_some() {
                self.try_reap(&state);
            }
        }
        self.rearm(now);
    }

    /// SIGCHLD arrived (coalesced: maybe several children exited): reap every child of ours that
    /// has a status.
    fn on_sigchld(&mut self) {
        if let Some(source) = self.reaper.sigchld() {
            source.drain();
        }
        if !self.reap_waitable() {
            self.reap_every_child();
        }
    }

    /// Reaps, one by one, the tracked children the kernel names as waitable
    /// (`waitid(P_ALL, WNOWAIT)`, which takes no status): one call per exit, however many
    /// children are tracked. Returns false when the kernel names a child that is not ours (the
    /// host's, not yet waited for): it hides the ones behind it, so the caller looks at every
    /// child instead.
    fn reap_waitable(&mut self) -> bool {
        while let Some(pid) = self.reaper.waitable() {
            let found = self
                .shared
                .table()
                .find_pid(pid.as_raw_nonzero().get() as u32);
            let Some(state) = found else {
                return false;
            };
            self.try_reap(&state);
            if self.shared.table().get(state.serial).is_some() {
                // Not reaped (it was not the one the kernel meant): do not ask again.
                return false;
            }
        }
        true
    }

    /// Looks at every tracked child and reaps those that exited. Waits on each tracked pid, never
    /// on -1, which would steal the statuses of children the host spawned itself.
    fn reap_every_child(&mut self) {
        // Not in the `for` head: the table guard would live through the loop, and a reap locks it.
        let states = self.shared.table().states();
        for state in states {
            self.try_reap(&state);
        }
    }

    /// A pidfd became readable: the child exited (or is a zombie we may reap).
    fn on_child_ready(&mut self, serial: u64) {
        let state = match self.shared.table().get(serial) {
            Some(entry) => entry.state.clone(),
            None => return,
        };
        // Its one-shot registration fired and is spent: the reap need not remove it.
        self.fired = Some(serial);
        self.try_reap(&state);
        self.fired = None;
    }

    /// Looks at a child that may have exited and reaps it. Every path that reaps a tracked child
    /// comes here: its pidfd turned readable, SIGCHLD (or the signal-mode look at every child),
    /// the timer's retry of a stalled child, and an escalation that found the child gone.
    ///
    /// A child whose kill reaches beyond it (group or cgroup scope) and whose kill is under way
    /// (kill, start_kill, a deadline, stop) has what is left of its scope SIGKILLed first, if it
    /// has exited: after the reap its group id may name a stranger.
    fn try_reap(&mut self, state: &Arc<ProcState>) {
        if state.lifetime.reaches_beyond_child()
            && (self.escalations.under_way(state.serial) || self.stop_seen)
            && self.reaper.kill_rest_if_exited(state)
        {
            debug!(
                pid = state.pid,
                "leader exited during a kill: rest of its scope killed"
            );
        }
        match self.reaper.try_reap(state) {
            Reaped::Exited(exit) => {
                if let Some(usage) = exit.rusage {
                    state.set_rusage(usage);
                }
                self.finish(state, exit.status, false)
            }
            Reaped::Running | Reaped::Already => {}
            Reaped::Stalled => {
                // Level-triggered epoll would report the pidfd again at once: stop watching it,
                // the timer re-checks.
                if let Some(fd) = &state.pidfd {
                    self.shared.poller().remove(fd);
                }
                self.rearm(Instant::now());
            }
            Reaped::Lost(e) => {
                warn!(
                    pid = state.pid,
                    error = %e,
                    "child reaped by someone else (SIGCHLD ignored?); status lost, reported as exit code 255"
                );
                self.finish(state, lost_status(), true);
            }
        }
    }

    fn finish(&mut self, state: &Arc<ProcState>, status: ExitStatus, lost: bool) {
        if let Some(t) = &state.timeline {
            t.exit_observed(self.woke.unwrap_or_else(Instant::now));
        }
        if let Some(fd) = &state.pidfd
            && self.fired != Some(state.serial)
        {
            self.shared.poller().remove(fd);
        }
        // Dropped once the status is out (see Entry): freeing it is no part of the wait.
        let entry = self.shared.table().remove(state.serial);
        if self.escalations.forget(state.serial) {
            self.rearm(Instant::now());
        }
        debug!(pid = state.pid, status = %status, "exited");
        if state.lifetime.owns_cgroup
            && let Some(path) = &state.lifetime.cgroup
        {
            // What is left in it is killed: the cgroup goes with the child.
            self.cgroups.remove(path.clone());
            if !self.cgroups.is_empty() {
                self.rearm(Instant::now());
            }
        }
        state.set_status(status, lost);
        drop(entry);
    }

    /// Arms the timer to the earliest pending deadline (kill or reap retry), disarms it if none.
    fn rearm(&mut self, now: Instant) {
        let tracking = !self.shared.table().is_empty();
        let next = match (
            self.escalations.next_deadline(),
            self.reaper.next_check(now, tracking),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let next = if self.cgroups.is_empty() {
            next
        } else {
            let retry = now + crate::reap::RETRY_REAP;
            Some(next.map_or(retry, |n| n.min(retry)))
        };
        if next == self.armed {
            return;
        }
        if self.shared.poller().arm_timer(next).is_ok() {
            self.armed = next;
        }
    }
}

/// The loop without a process: a real poll set and table, a fake kernel behind the reap seams
/// (its `kill` panics: nothing here may signal a pid), states with made-up pids.
#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::os::unix::process::ExitStatusExt;
    use std::thread;

    use rustix::process::Pid;

    use super::*;
    use crate::command::Command;
    use crate::queue::{ReplySlot, SpawnRequest};
    use crate::reap::{Exit, Orphan};
    use crate::request::{PreparedCommand, StdioPlan};
    use crate::shared::{Config, SpawnSite};
    use crate::sys::SigchldDisposition;
    use crate::sys::sigchld::SigchldAction;
    use crate::sys::spawn::SpawnBackend;
    use crate::table::{Entry, ProcessInfo};

    /// Exit statuses the kernel would report, by pid; a pid without one is still running.
    #[derive(Default)]
    struct FakeKernel {
        exits: RefCell<HashMap<u32, i32>>,
        orphans_exited: RefCell<Vec<Pid>>,
    }

    impl ReapTracked for FakeKernel {
        fn try_wait(&self, child: &ProcState) -> Result<Option<Exit>, Errno> {
            Ok(self.exits.borrow_mut().remove(&child.pid).map(|raw| Exit {
                status: ExitStatus::from_raw(raw),
                rusage: None,
            }))
        }
        fn exited_unreaped(&self, child: &ProcState) -> bool {
            self.exits.borrow().contains_key(&child.pid)
        }
    }

    impl ReapPid for FakeKernel {
        fn try_wait_pid(&self, pid: Pid) -> Result<Option<ExitStatus>, Errno> {
            let exited = self.orphans_exited.borrow().contains(&pid);
            Ok(exited.then(|| ExitStatus::from_raw(9)))
        }
        fn is_unreaped_child(&self, _: Pid) -> bool {
            true
        }
    }

    impl StartTime for FakeKernel {
        fn start_time(&self, _: Pid) -> io::Result<Option<u64>> {
            Ok(Some(1))
        }
    }

    impl KillPid for FakeKernel {
        fn kill(&self, pid: Pid) {
            panic!("the loop signalled pid {pid:?} in a unit test");
        }
    }

    impl SigchldLook for FakeKernel {
        fn sigchld_action(&self) -> SigchldAction {
            SigchldAction {
                disposition: SigchldDisposition::Default,
                handler: 0,
            }
        }
        fn waitable(&self) -> Option<Pid> {
            None
        }
    }

    fn shared() -> Shared {
        Shared::new(Config {
            kill_grace: Duration::from_secs(1),
            backend: SpawnBackend::Vfork,
            spin: Duration::ZERO,
            watch: ChildWatch::Pidfd,
            timeline: false,
            spawn_site: SpawnSite::CallingThread,
        })
        .expect("shared state")
    }

    /// Runs `test` with a reactor over `shared` and a fake kernel, outside any loop.
    fn with_reactor(shared: &Shared, test: impl FnOnce(&mut Reactor<'_, '_, FakeKernel>)) {
        let jobs = Jobs::default();
        thread::scope(|scope| {
            let spawner = SpawnerThread::new(scope, shared, &jobs);
            let reaper = Reaper::new(FakeKernel::default(), None);
            let mut reactor = Reactor::new(shared, spawner, reaper);
            test(&mut reactor);
            jobs.close();
        });
    }

    /// A child state with a made-up pid (no process has it: pids stop at 4,194,304).
    fn made_up(shared: &Shared, pid: i32) -> ProcState {
        let pid = Pid::from_raw(pid).expect("positive");
        ProcState::new(shared.next_serial(), pid, None, shared.spin().clone())
    }

    /// A tracked child with a made-up pid.
    fn tracked(shared: &Shared, pid: i32) -> Arc<ProcState> {
        insert(shared, made_up(shared, pid))
    }

    /// Puts `state` in the table.
    fn insert(shared: &Shared, state: ProcState) -> Arc<ProcState> {
        let state = Arc::new(state);
        let inserted = shared.table().insert(Entry {
            info: ProcessInfo {
                pid: state.pid,
                command: Vec::new(),
                owner: thread::current().id(),
                started: Instant::now(),
            },
            state: state.clone(),
            stdin_bytes: None,
        });
        assert!(inserted.is_ok());
        state
    }

    fn spawn_request() -> Arc<SpawnRequest> {
        let defaults = [StdioPlan::Null, StdioPlan::Null, StdioPlan::Null];
        let command =
            PreparedCommand::from_command(&Command::new("/bin/true"), defaults).expect("command");
        Arc::new(SpawnRequest::new(
            command,
            ReplySlot::for_current_thread(),
            None,
        ))
    }

    #[test]
    fn a_pass_serves_at_most_its_budget_of_messages() {
        let shared = shared();
        let slots: Vec<_> = (0..PASS_BUDGET + 10)
            .map(|_| ReplySlot::<()>::for_current_thread())
            .collect();
        for slot in &slots {
            assert!(shared.queue().push(Message::Ping(slot.clone())).is_ok());
        }
        with_reactor(&shared, |r| {
            assert!(r.drain_queue(), "messages left after a full budget");
            let answered = slots.iter().filter(|s| s.is_ready()).count();
            assert_eq!(answered, PASS_BUDGET);
            assert!(!r.drain_queue(), "the rest fits in one pass");
            assert!(slots.iter().all(|s| s.is_ready()));
        });
    }

    #[test]
    fn a_withdrawn_spawn_is_dropped_and_one_after_stop_refused_without_a_spawner_thread() {
        let shared = shared();
        with_reactor(&shared, |r| {
            let withdrawn = spawn_request();
            assert!(withdrawn.withdraw().is_none());
            r.serve(Message::Spawn(withdrawn.clone()));
            assert!(
                !withdrawn.reply.is_ready(),
                "a withdrawn request got an answer"
            );
            shared.stop();
            let refused = spawn_request();
            r.serve(Message::Spawn(refused.clone()));
            assert!(matches!(
                refused.reply.wait(shared.spin()),
                Err(crate::SpawnError::Stopped)
            ));
            assert!(
                !r.spawner.started(),
                "the spawner thread was started for nothing"
            );
        });
    }

    #[test]
    fn a_readable_child_is_reaped_once_it_has_a_status_and_kept_while_it_runs() {
        let shared = shared();
        let running = tracked(&shared, 4_194_400);
        let exited = tracked(&shared, 4_194_401);
        with_reactor(&shared, |r| {
            r.reaper_kernel()
                .exits
                .borrow_mut()
                .insert(exited.pid, 3 << 8);
            r.on_child_ready(running.serial);
            r.on_child_ready(exited.serial);
            assert_eq!(exited.status().and_then(|s| s.code()), Some(3));
            assert!(running.status().is_none());
            let left: Vec<u32> = shared.table().infos(None).iter().map(|p| p.pid).collect();
            assert_eq!(left, [running.pid], "only the exited child left the table");
        });
    }

    #[test]
    fn an_adopted_child_with_a_timeout_arms_the_timer_for_its_deadline() {
        let shared = shared();
        let mut state = made_up(&shared, 4_194_402);
        state.lifetime.timeout = Some(Duration::from_secs(60));
        let state = insert(&shared, state);
        let spawned_at = Instant::now();
        with_reactor(&shared, |r| {
            r.serve(Message::Adopted(Adopted {
                state: state.clone(),
                spawned_at,
            }));
            let deadline = spawned_at + Duration::from_secs(60);
            assert_eq!(r.escalations.next_deadline(), Some(deadline));
            assert_eq!(
                r.armed,
                Some(deadline),
                "the timer is armed to the deadline"
            );
        });
    }

    #[test]
    fn a_look_after_a_waiters_reap_forgets_the_kill_deadline() {
        let shared = shared();
        let state = tracked(&shared, 4_194_404);
        with_reactor(&shared, |r| {
            let deadline = Instant::now() + Duration::from_secs(60);
            r.escalations.set_timeout(state.serial, deadline);
            r.rearm(Instant::now());
            assert_eq!(r.armed, Some(deadline));
            // What `waiter_reap` does after its reap: the entry out, then the word.
            *state.reap_gate() = true;
            drop(shared.table().remove(state.serial));
            shared.queue().push_look(state.serial);
            assert!(!r.drain_queue());
            assert_eq!(r.escalations.next_deadline(), None, "a void deadline kept");
            assert_eq!(r.armed, None, "the timer still armed for it");
        });
    }

    #[test]
    fn a_child_its_waiter_reaped_is_left_to_the_waiter() {
        let shared = shared();
        let state = tracked(&shared, 4_194_405);
        with_reactor(&shared, |r| {
            // Reaped by its waiter (the gate says so), which has not yet stored the status
            // nor taken the entry out: the loop's look must neither wait for it again (the
            // kernel would say ECHILD: a lost status) nor finish it.
            *state.reap_gate() = true;
            r.reaper_kernel().exits.borrow_mut().insert(state.pid, 0);
            r.on_child_ready(state.serial);
            assert!(state.status().is_none(), "the loop stored a status");
            assert!(shared.table().get(state.serial).is_some());
            assert!(
                r.reaper_kernel().exits.borrow().contains_key(&state.pid),
                "the loop waited for a child already reaped"
            );
        });
    }

    #[test]
    fn an_orphan_is_kept_until_it_exits_and_a_message_after_close_still_arrives() {
        let shared = shared();
        let pid = Pid::from_raw(4_194_403).expect("positive");
        with_reactor(&shared, |r| {
            let orphan: Orphan = crate::reap::name_orphan(r.reaper_kernel(), pid).expect("named");
            // Pushed after the close: it waits on the late list, which the loop still drains.
            shared.stop();
            shared.queue().push_orphan(orphan);
            assert!(!r.drain_queue());
            assert!(r.reaper.has_orphans());
            assert!(r.armed.is_some(), "no timer to look at the orphan again");
            r.reaper.reap_orphans();
            assert!(r.reaper.has_orphans(), "reaped while it runs");
            r.reaper_kernel().orphans_exited.borrow_mut().push(pid);
            r.reaper.reap_orphans();
            assert!(!r.reaper.has_orphans());
        });
    }
}
