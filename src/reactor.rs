//! The loop: one epoll set holding the doorbell eventfd, the kill timerfd and one pidfd per child,
//! and what each readiness event means.
//!
//! - doorbell readable: drain the whole queue (eventfd wake-ups coalesce);
//! - a pidfd readable: `waitid(P_PIDFD, WEXITED | WNOHANG)`, store the status, drop the table entry,
//!   wake the waiters. Nothing else ever waits on a child;
//! - timerfd readable: SIGKILL every escalation whose grace ran out, re-arm to the next deadline.
//!
//! Idle, the loop blocks in `epoll_wait` with no timeout. The timer is armed only while a kill
//! escalation is pending, or (every 10 ms) while a child needs reaping without a usable pidfd.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::io::Errno;
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
use tracing::{debug, info, warn};

use crate::error::{SpawnError, SpawnStage};
use crate::escalation::Escalations;
use crate::executor::{ChildWatch, Shared};
use crate::handle::{ExecHandle, LOST_STATUS, ProcState, exit_status_from};
use crate::queue::{Message, SpawnRequest};
use crate::sys::spawn::{ChildStdio, Spawner};
use crate::table::{Entry, ProcessInfo, Table};

/// epoll tokens: pidfds use their spawn serial (from 1 up); these can never collide with one.
const DOORBELL: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;
const SIGCHLD_SOURCE: u64 = u64::MAX - 2;

/// How often to retry reaping a child that has no usable pidfd.
const RETRY_REAP: Duration = Duration::from_millis(10);

struct Reactor<'a> {
    shared: &'a Arc<Shared>,
    spawner: Spawner,
    escalations: Escalations,
    /// Children killed because they could not be tracked (no pidfd): reaped with WNOHANG.
    orphans: Vec<Pid>,
    /// Tracked children whose pidfd was readable but gave no status (ptraced): re-checked later.
    stalled: Vec<Arc<ProcState>>,
    stop_seen: bool,
    armed: Option<Instant>,
    events: Vec<epoll::Event>,
    /// With ChildWatch::Signal: what wakes the loop when a child may have exited.
    sigchld: Option<SigchldSource>,
}

/// How the loop learns that a child may have exited when it has no pidfds.
///
/// - a signalfd, when the user blocked SIGCHLD everywhere ([`crate::block_sigchld`]);
/// - else the read end of a socket written by a signal-hook SIGCHLD handler (which chains with
///   the host's own handler);
/// - else polling every 10 ms while children are tracked: when the host ignores SIGCHLD (the
///   kernel then reaps by itself and sends nothing; installing a handler would change that for
///   the host's own children), or when our handler turns out to be displaced.
struct SigchldSource {
    fd: Option<std::os::fd::OwnedFd>,
    handler: Option<signal_hook::SigId>,
    /// When the next look at every child is due (while children are tracked).
    check_at: Option<Instant>,
    /// Set once the handler was found displaced while running.
    forced_poll: bool,
}

/// With a SIGCHLD handler, how often to look at every child anyway: if the host sets SIGCHLD to
/// SIG_IGN while we run, the kernel reaps our children itself and no signal ever comes.
const HANDLER_SAFETY_CHECK: Duration = Duration::from_secs(5);

impl SigchldSource {
    fn new() -> io::Result<SigchldSource> {
        use crate::sys::SigchldDisposition;
        if crate::sys::sigchld_blocked() {
            return Ok(SigchldSource {
                fd: Some(crate::sys::signalfd_sigchld()?),
                handler: None,
                check_at: None,
                forced_poll: false,
            });
        }
        if crate::sys::sigchld_disposition() == SigchldDisposition::Ignored {
            warn!("SIGCHLD is ignored by the host: polling children every 10 ms, statuses lost");
            return Ok(SigchldSource::polling());
        }
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        // Both ends above fd 2: the host may have closed its stdio.
        let write = std::os::unix::net::UnixStream::from(crate::sys::above_stdio(write.into())?);
        let handler = signal_hook::low_level::pipe::register(libc::SIGCHLD, write)?;
        let source = SigchldSource {
            fd: Some(crate::sys::above_stdio(read.into())?),
            handler: Some(handler),
            check_at: None,
            forced_poll: false,
        };
        // signal-hook installs its OS handler once per process; if the host reset SIGCHLD since,
        // our action is registered but never called.
        if crate::sys::sigchld_disposition() != SigchldDisposition::Handled {
            warn!("SIGCHLD handler displaced by the host: polling children every 10 ms");
            return Ok(SigchldSource::polling());
        }
        Ok(source)
    }

    fn polling() -> SigchldSource {
        SigchldSource {
            fd: None,
            handler: None,
            check_at: None,
            forced_poll: false,
        }
    }

    fn polls(&self) -> bool {
        self.fd.is_none() || self.forced_poll
    }

    /// When the loop must next look at every child without being told (None: no need).
    fn next_check(&mut self, now: Instant, tracking: bool) -> Option<Instant> {
        if !tracking {
            self.check_at = None;
            return None;
        }
        if self.polls() {
            return Some(now + RETRY_REAP);
        }
        // A signalfd cannot be displaced; only a handler needs the periodic look.
        self.handler.as_ref()?;
        Some(*self.check_at.get_or_insert(now + HANDLER_SAFETY_CHECK))
    }

    /// Whether the timer that just fired was (also) for a look at every child. With a handler,
    /// also switches to polling if the host set SIGCHLD to SIG_IGN meanwhile.
    fn check_due(&mut self, now: Instant) -> bool {
        if self.polls() {
            return true;
        }
        match self.check_at {
            Some(at) if at <= now => {
                self.check_at = None;
                if crate::sys::sigchld_disposition() == crate::sys::SigchldDisposition::Ignored {
                    warn!("SIGCHLD now ignored by the host: polling children every 10 ms");
                    // Keep the socket open: the handler still writes to it (a closed peer would
                    // raise SIGPIPE inside the signal handler).
                    self.forced_poll = true;
                }
                true
            }
            _ => false,
        }
    }

    /// Empties the source so level-triggered epoll stops reporting it.
    fn drain(&self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 512];
        while let Ok(n) = rustix::io::read(fd, &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

impl Drop for SigchldSource {
    fn drop(&mut self) {
        if let Some(id) = self.handler.take() {
            signal_hook::low_level::unregister(id);
        }
    }
}

pub(crate) fn run(shared: &Arc<Shared>) -> io::Result<()> {
    epoll::add(
        &shared.epoll,
        shared.queue.doorbell(),
        epoll::EventData::new_u64(DOORBELL),
        epoll::EventFlags::IN,
    )
    .or_else(already_added)?;
    epoll::add(
        &shared.epoll,
        &shared.timer,
        epoll::EventData::new_u64(TIMER),
        epoll::EventFlags::IN,
    )
    .or_else(already_added)?;
    let sigchld = match shared.config.watch {
        ChildWatch::Signal => {
            let source = SigchldSource::new()?;
            if let Some(fd) = &source.fd {
                epoll::add(
                    &shared.epoll,
                    fd,
                    epoll::EventData::new_u64(SIGCHLD_SOURCE),
                    epoll::EventFlags::IN,
                )?;
            }
            Some(source)
        }
        _ => None,
    };
    let mut reactor = Reactor {
        shared,
        spawner: Spawner::new(),
        escalations: Escalations::default(),
        orphans: Vec::new(),
        stalled: Vec::new(),
        stop_seen: false,
        armed: None,
        events: Vec::with_capacity(256),
        sigchld,
    };
    let result = reactor.run_loop();
    if result.is_err() {
        // The poll set is broken: nothing can be reaped through it any more. Kill and reap every
        // child so that no handle waits forever.
        shared.stopped.store(true, Ordering::SeqCst);
        shared.refuse_pending();
        kill_and_reap_all(&mut shared.table());
        for pid in reactor.orphans.drain(..) {
            reap_blocking(WaitId::Pid(pid));
        }
    }
    result
}

/// A second `run()` after the first returned finds the doorbell and timer already registered.
fn already_added(e: Errno) -> Result<(), Errno> {
    if e == Errno::EXIST { Ok(()) } else { Err(e) }
}

impl Reactor<'_> {
    fn run_loop(&mut self) -> io::Result<()> {
        loop {
            self.drain_queue();
            if self.shared.stopped.load(Ordering::SeqCst) && !self.stop_seen {
                self.begin_stop();
            }
            if self.stop_seen && self.shared.table().is_empty() && self.orphans.is_empty() {
                return Ok(());
            }
            if !self.shared.queue.prepare_to_sleep() {
                continue;
            }
            self.events.clear();
            let waited = epoll::wait(
                &self.shared.epoll,
                rustix::buffer::spare_capacity(&mut self.events),
                None,
            );
            self.shared.queue.woke_up();
            match waited {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            for i in 0..self.events.len() {
                match self.events[i].data.u64() {
                    DOORBELL => self.shared.queue.clear_doorbell(),
                    TIMER => self.on_timer(),
                    SIGCHLD_SOURCE => self.on_sigchld(),
                    serial => self.on_child_ready(serial),
                }
            }
        }
    }

    fn drain_queue(&mut self) {
        while let Some(message) = self.shared.queue.pop() {
            match message {
                Message::Spawn(request) => self.serve_spawn(*request),
                Message::Kill(state) => self.start_kill(&state, Instant::now()),
                Message::Ping(slot) => slot.fulfil(()),
                Message::Signal {
                    state,
                    signal,
                    reply,
                } => {
                    // Still in the table and running means not reaped: the pid is still ours.
                    let tracked = self.shared.table().get(state.serial).is_some();
                    if tracked && still_ours(&state) {
                        reply.fulfil(state.signal(signal));
                    } else {
                        if tracked {
                            self.try_reap(&state);
                        }
                        reply.fulfil(Err(io::Error::from_raw_os_error(libc::ESRCH)));
                    }
                }
                Message::Wake => {}
            }
        }
    }

    /// SIGCHLD arrived (coalesced: maybe several children exited): reap every child of ours that
    /// has a status. Waits on each tracked pid, never on -1, which would steal the statuses of
    /// children the host spawned itself.
    fn on_sigchld(&mut self) {
        if let Some(source) = &self.sigchld {
            source.drain();
        }
        let states: Vec<Arc<ProcState>> = self
            .shared
            .table()
            .entries_mut()
            .map(|e| e.state.clone())
            .collect();
        for state in states {
            self.try_reap(&state);
        }
    }

    fn serve_spawn(&mut self, request: SpawnRequest) {
        let reply = request.reply.clone();
        if self.shared.stopped.load(Ordering::SeqCst) {
            reply.fulfil(Err(SpawnError::Stopped));
            return;
        }
        let result = self.spawn(request);
        reply.fulfil(result);
    }

    fn spawn(&mut self, request: SpawnRequest) -> Result<ExecHandle, SpawnError> {
        let shared = self.shared;
        let program = &request.command.program;
        let fail = |stage: SpawnStage, errno: Errno| {
            SpawnError::from_errno(program, stage, errno.raw_os_error())
        };
        let pipes = if request.discard_output {
            None
        } else {
            let out = crate::sys::pipe().map_err(|e| fail(SpawnStage::Pipe, e))?;
            let err = crate::sys::pipe().map_err(|e| fail(SpawnStage::Pipe, e))?;
            Some((out, err))
        };
        let null = shared.dev_null.as_fd();
        let stdio = ChildStdio {
            stdin: null,
            stdout: pipes.as_ref().map_or(null, |((_, w), _)| w.as_fd()),
            stderr: pipes.as_ref().map_or(null, |(_, (_, w))| w.as_fd()),
        };
        let started = Instant::now();
        let spawned = self
            .spawner
            .spawn(
                shared.config.backend,
                &request.command,
                &stdio,
                shared.config.watch == ChildWatch::Pidfd,
            )
            .map_err(|f| SpawnError::from_errno(program, f.stage, f.errno))?;
        let spawn_time = started.elapsed();
        // The child has its copies; ours must go or the reader never sees EOF.
        let (stdout, stderr) = match pipes {
            Some(((out_r, _), (err_r, _))) => (Some(out_r), Some(err_r)),
            None => (None, None),
        };
        let pid = spawned.pid;
        let watch_pidfd = shared.config.watch == ChildWatch::Pidfd;
        let pidfd = match spawned.pidfd {
            Some(fd) => Some(fd),
            None if !watch_pidfd => None,
            None => match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                .map_err(io::Error::from)
                .and_then(crate::sys::above_stdio)
            {
                Ok(fd) => Some(fd),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    // Gone already: the host ignores SIGCHLD, so the kernel reaped the child the
                    // moment it exited. It did run; only its status is lost. Its pid may already
                    // be someone else's, so it must not be signalled.
                    warn!(
                        pid = pid.as_raw_nonzero().get(),
                        "child reaped by the kernel before it could be tracked (SIGCHLD ignored?); status lost"
                    );
                    let state =
                        ProcState::new(shared.next_serial(), pid, None, shared.spin.clone());
                    state.set_status(
                        std::os::unix::process::ExitStatusExt::from_raw(LOST_STATUS),
                        true,
                    );
                    return Ok(ExecHandle::new(
                        Arc::new(state),
                        Arc::downgrade(shared),
                        stdout,
                        stderr,
                    ));
                }
                Err(e) => {
                    // Running but untrackable (out of fds): it is our unreaped child, so its pid
                    // is still safe to signal. Kill it, reap it later without blocking, report.
                    crate::sys::kill_unreaped_child(pid);
                    self.orphans.push(pid);
                    self.rearm(Instant::now());
                    return Err(fail(SpawnStage::Pidfd, crate::sys::errno_of(e)));
                }
            },
        };
        let serial = shared.next_serial();
        if let Some(fd) = &pidfd
            && let Err(e) = epoll::add(
                &shared.epoll,
                fd,
                epoll::EventData::new_u64(serial),
                epoll::EventFlags::IN,
            )
        {
            let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            self.orphans.push(pid);
            self.rearm(Instant::now());
            return Err(fail(SpawnStage::Register, e));
        }
        let raw_pid = pid.as_raw_nonzero().get() as u32;
        let state = Arc::new(ProcState::new(serial, pid, pidfd, shared.spin.clone()));
        debug!(
            pid = raw_pid,
            program = %program.display(),
            backend = shared.config.backend.name(),
            spawn_us = spawn_time.as_micros() as u64,
            "spawned"
        );
        let command = request
            .command
            .argv
            .into_iter()
            .map(|a| std::os::unix::ffi::OsStringExt::from_vec(a.into_bytes()))
            .collect();
        shared.table().insert(Entry {
            info: ProcessInfo {
                pid: raw_pid,
                command,
                owner: request.owner,
                started,
            },
            state: state.clone(),
            kill_deadline: None,
        });
        if self.sigchld.is_some() {
            // Without pidfds the timer may have to watch this child too (see SigchldSource).
            self.rearm(Instant::now());
        }
        Ok(ExecHandle::new(
            state,
            Arc::downgrade(shared),
            stdout,
            stderr,
        ))
    }

    /// A pidfd became readable: the child exited (or is a zombie we may reap).
    fn on_child_ready(&mut self, serial: u64) {
        let state = match self.shared.table().get(serial) {
            Some(entry) => entry.state.clone(),
            None => return,
        };
        self.try_reap(&state);
    }

    /// Reaps `state`'s child if it has a status; returns true once it is finished.
    fn try_reap(&mut self, state: &Arc<ProcState>) -> bool {
        loop {
            match waitid(
                state_wait_id(state),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) {
                Ok(Some(status)) => {
                    self.finish(state, exit_status_from(&status), false);
                    return true;
                }
                Ok(None) if state.pidfd.is_none() => return false,
                Ok(None) => {
                    // Readable but no status (a tracer holds it). Level-triggered epoll would
                    // report it again at once: stop watching, re-check on the timer instead.
                    self.unwatch(state);
                    if !self.stalled.iter().any(|s| Arc::ptr_eq(s, state)) {
                        self.stalled.push(state.clone());
                    }
                    self.rearm(Instant::now());
                    return false;
                }
                Err(Errno::INTR) => continue,
                Err(e) => {
                    // ECHILD: the kernel reaped it itself (the host ignores SIGCHLD), or another
                    // waiter took the status. It is gone; the status is lost.
                    warn!(
                        pid = state.pid,
                        error = %e,
                        "child reaped by someone else (SIGCHLD ignored?); status lost, reported as exit code 255"
                    );
                    self.finish(
                        state,
                        std::os::unix::process::ExitStatusExt::from_raw(LOST_STATUS),
                        true,
                    );
                    return true;
                }
            }
        }
    }

    fn unwatch(&self, state: &ProcState) {
        if let Some(fd) = &state.pidfd {
            let _ = epoll::delete(&self.shared.epoll, fd);
        }
    }

    fn finish(&mut self, state: &Arc<ProcState>, status: std::process::ExitStatus, lost: bool) {
        self.unwatch(state);
        let removed = self.shared.table().remove(state.serial);
        if removed.is_some_and(|e| e.kill_deadline.is_some()) {
            // Its SIGKILL deadline is void now: drop it (and any other void ones at the top of
            // the heap) so the timer does not wake the loop for nothing.
            let shared = self.shared;
            self.escalations
                .prune(|serial| shared.table().get(serial).is_some());
            self.rearm(Instant::now());
        }
        debug!(pid = state.pid, status = %status, "exited");
        state.set_status(status, lost);
    }

    /// The kill escalation for one child, unless it is already under way.
    fn start_kill(&mut self, state: &ProcState, now: Instant) {
        self.start_escalation(now, Some(state.serial));
    }

    /// stop() was called: refuse what is queued, escalate every child at the same instant.
    fn begin_stop(&mut self) {
        self.stop_seen = true;
        self.shared.refuse_pending();
        info!(children = self.shared.table().len(), "stopping");
        self.start_escalation(Instant::now(), None);
    }

    /// Starts the escalation of child `serial` (of every tracked child for `None`), all with the
    /// deadline `now + grace`; reaps those found already exited; re-arms the timer.
    fn start_escalation(&mut self, now: Instant, serial: Option<u64>) {
        let shared = self.shared;
        let mut gone = Vec::new();
        let mut table = shared.table();
        let entries: Box<dyn Iterator<Item = &mut Entry>> = match serial {
            Some(serial) => Box::new(table.get_mut(serial).into_iter()),
            None => Box::new(table.entries_mut()),
        };
        for entry in entries {
            escalate(
                entry,
                &mut self.escalations,
                now,
                shared.config.kill_grace,
                &mut gone,
            );
        }
        drop(table);
        for state in gone {
            self.try_reap(&state);
        }
        self.rearm(now);
    }

    fn on_timer(&mut self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.shared.timer, &mut buf);
        self.armed = None;
        let now = Instant::now();
        let mut gone = Vec::new();
        {
            let table = self.shared.table();
            for (deadline, serial) in self.escalations.take_due(now) {
                if let Some(entry) = table.get(serial)
                    && entry.kill_deadline == Some(deadline)
                {
                    if still_ours(&entry.state) {
                        let _ = entry.state.signal(libc::SIGKILL);
                        info!(pid = entry.state.pid, "grace over: SIGKILL sent");
                    } else {
                        gone.push(entry.state.clone());
                    }
                }
            }
        }
        for state in gone {
            self.try_reap(&state);
        }
        if let Some(source) = &mut self.sigchld
            && source.check_due(now)
        {
            self.on_sigchld();
        }
        self.orphans.retain(|&pid| !reap_nohang(pid));
        // try_reap puts those still without a status back on the list.
        for state in std::mem::take(&mut self.stalled) {
            if self.shared.table().get(state.serial).is_some() {
                self.try_reap(&state);
            }
        }
        self.rearm(now);
    }

    /// Arms the timer to the earliest pending deadline (or the reap retry), disarms it if none.
    fn rearm(&mut self, now: Instant) {
        let mut next = self.escalations.next_deadline();
        let tracking = !self.shared.table().is_empty();
        if let Some(check) = self
            .sigchld
            .as_mut()
            .and_then(|s| s.next_check(now, tracking))
        {
            next = Some(next.map_or(check, |n| n.min(check)));
        }
        if !self.orphans.is_empty() || !self.stalled.is_empty() {
            let retry = now + RETRY_REAP;
            next = Some(next.map_or(retry, |n| n.min(retry)));
        }
        if next == self.armed {
            return;
        }
        let value = match next {
            // A zero it_value disarms, so a deadline already past gets 1 ns.
            Some(at) => duration_to_timespec(
                at.saturating_duration_since(now)
                    .max(Duration::from_nanos(1)),
            ),
            None => Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        if timerfd_settime(&self.shared.timer, TimerfdTimerFlags::empty(), &spec).is_ok() {
            self.armed = next;
        }
    }
}

/// SIGTERM (and SIGCONT, so a stopped child acts on it) now; SIGKILL due after `grace`.
/// A child found already exited (or reaped by the kernel) is put in `gone` instead.
fn escalate(
    entry: &mut Entry,
    escalations: &mut Escalations,
    now: Instant,
    grace: Duration,
    gone: &mut Vec<Arc<ProcState>>,
) {
    if entry.kill_deadline.is_some() {
        return;
    }
    if !still_ours(&entry.state) {
        gone.push(entry.state.clone());
        return;
    }
    let _ = entry.state.signal(libc::SIGTERM);
    let _ = entry.state.signal(libc::SIGCONT);
    entry.kill_deadline = Some(escalations.start(entry.state.serial, now, grace));
    info!(
        pid = entry.state.pid,
        grace_ms = grace.as_millis() as u64,
        "SIGTERM sent"
    );
}

fn duration_to_timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Reaps `pid` if it has exited; true when it is gone (reaped now, or no longer our child).
fn reap_nohang(pid: Pid) -> bool {
    match waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
    ) {
        Ok(Some(_)) => true,
        Ok(None) => false,
        Err(Errno::INTR) => false,
        Err(_) => true,
    }
}

/// Whether a child may be signalled: always through a pidfd; by pid only while the child is
/// running and unreaped. Without a pidfd the kernel may have reaped it behind our back (the host
/// set SIGCHLD to SIG_IGN while we ran), and its pid may then be a stranger's: ask the kernel first
/// (`waitid(WNOWAIT)` leaves a zombie in place). An exited child is reaped by the caller instead.
fn still_ours(state: &ProcState) -> bool {
    if state.pidfd.is_some() {
        return true;
    }
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    matches!(waitid(WaitId::Pid(state.os_pid), options), Ok(None))
}

/// How to name `state`'s child to waitid: by pidfd when it has one, else by pid.
fn state_wait_id(state: &ProcState) -> WaitId<'_> {
    match &state.pidfd {
        Some(fd) => WaitId::PidFd(fd.as_fd()),
        None => WaitId::Pid(state.os_pid),
    }
}

fn reap_blocking(id: WaitId<'_>) -> Option<rustix::process::WaitIdStatus> {
    loop {
        match waitid(id.clone(), WaitIdOptions::EXITED) {
            Err(Errno::INTR) => continue,
            Ok(status) => return status,
            Err(_) => return None,
        }
    }
}

/// SIGKILL and blocking reap of every child in `table` (executor dropped, or its loop broke).
pub(crate) fn kill_and_reap_all(table: &mut Table) {
    for entry in table.drain() {
        let state = entry.state;
        let _ = state.signal(libc::SIGKILL);
        let (status, lost) = match reap_blocking(state_wait_id(&state)) {
            Some(s) => (exit_status_from(&s), false),
            None => (
                std::os::unix::process::ExitStatusExt::from_raw(LOST_STATUS),
                true,
            ),
        };
        info!(pid = state.pid, "executor gone: child killed and reaped");
        state.set_status(status, lost);
    }
}
