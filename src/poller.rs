//! The loop's one wait: an epoll set holding the timerfd, the doorbell eventfd ([`Waker`]), the
//! SIGCHLD source (signal mode), one pidfd per child, and the descriptors async code waits on
//! (pipe ends, timers: [`crate::async_io`]), behind one small type ([`Poller`]), the way mio's
//! `Selector` hides epoll. Nothing else of the crate touches epoll or the timerfd.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use rustix::event::{EventfdFlags, epoll, eventfd};
use rustix::io::Errno;
use rustix::time::{
    ClockId, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, clock_gettime,
    timerfd_create, timerfd_settime,
};

use crate::io_registry::{IoRegistry, Readiness};

/// epoll tokens: pidfds use their spawn serial (from 1 up); these can never collide with one.
const DOORBELL: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;
const SIGCHLD_SOURCE: u64 = u64::MAX - 2;
/// Async I/O sources: their registry id with this bit set. Serials count up from 1 and never
/// reach it; the fixed tokens above have it set too, and are matched first.
const IO_TAG: u64 = 1 << 62;

/// What a readiness event means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A caller rang the doorbell: messages are queued.
    Doorbell,
    /// The timer fired.
    Timer,
    /// A child may have exited (signal mode).
    Sigchld,
    /// The pidfd of the child with this serial is readable.
    Child(u64),
    /// The async I/O source with this registry id turned ready ([`crate::io_registry`]).
    Io(u64),
}

impl Event {
    fn from_token(token: u64) -> Event {
        match token {
            DOORBELL => Event::Doorbell,
            TIMER => Event::Timer,
            SIGCHLD_SOURCE => Event::Sigchld,
            io if io & IO_TAG != 0 => Event::Io(io & !IO_TAG),
            serial => Event::Child(serial),
        }
    }
}

/// A buffer of readiness events, reused across waits.
pub(crate) struct Events(Vec<epoll::Event>);

impl Events {
    pub(crate) fn with_capacity(n: usize) -> Events {
        Events(Vec::with_capacity(n))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The `i`th event of the last wait.
    pub(crate) fn get(&self, i: usize) -> Option<Event> {
        self.0.get(i).map(|e| Event::from_token(e.data.u64()))
    }
}

/// What an async I/O source waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Readable (a pipe's read end, a timerfd), or its writers gone.
    Read,
    /// Writable (a pipe's write end), or its reader gone.
    Write,
}

/// The epoll set, the timerfd, and the readiness of the async I/O sources in the set.
pub(crate) struct Poller {
    epoll: OwnedFd,
    timer: OwnedFd,
    io: IoRegistry,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let epoll = crate::sys::above_stdio(epoll::create(epoll::CreateFlags::CLOEXEC)?)?;
        let timer = crate::sys::above_stdio(timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?)?;
        let poller = Poller {
            epoll,
            timer,
            io: IoRegistry::default(),
        };
        poller.add(&poller.timer, TIMER)?;
        Ok(poller)
    }

    fn add(&self, fd: impl AsFd, token: u64) -> Result<(), Errno> {
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN,
        )
    }

    /// Watches child `serial`'s pidfd, for one event: a pidfd turns readable once, when the
    /// child exits, and stays so; one-shot, the event needs no `epoll_ctl` to silence it
    /// afterwards (the reap that follows it saves a system call per child). A registration
    /// that has not fired is removed with [`remove`](Self::remove).
    pub(crate) fn add_child(&self, pidfd: impl AsFd, serial: u64) -> Result<(), Errno> {
        epoll::add(
            &self.epoll,
            pidfd,
            epoll::EventData::new_u64(serial),
            epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
        )
    }

    /// Watches the SIGCHLD source (signalfd or the handler's socket).
    pub(crate) fn add_sigchld(&self, fd: impl AsFd) -> Result<(), Errno> {
        self.add(fd, SIGCHLD_SOURCE)
    }

    /// Watches an async I/O source, edge-triggered: each change to ready is reported once
    /// (a level-triggered pipe nobody reads yet would wake the loop on every pass). Returns the
    /// source's registry id and readiness; undo with [`remove_io`](Self::remove_io).
    pub(crate) fn add_io(
        &self,
        fd: impl AsFd,
        interest: Interest,
    ) -> Result<(u64, Arc<Readiness>), Errno> {
        let (id, readiness) = self.io.insert();
        let flags = epoll::EventFlags::ET
            | match interest {
                Interest::Read => epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
                Interest::Write => epoll::EventFlags::OUT,
            };
        match epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(id | IO_TAG),
            flags,
        ) {
            Ok(()) => Ok((id, readiness)),
            Err(e) => {
                self.io.remove(id);
                Err(e)
            }
        }
    }

    /// Stops watching async I/O source `id` on `fd`.
    pub(crate) fn remove_io(&self, fd: impl AsFd, id: u64) {
        let _ = epoll::delete(&self.epoll, fd);
        self.io.remove(id);
    }

    /// The loop saw async I/O source `id` turn ready: wakes the tasks waiting for it.
    pub(crate) fn io_ready(&self, id: u64) {
        self.io.ready(id);
    }

    /// Stops watching `fd` (a pidfd that is reaped or stalled).
    pub(crate) fn remove(&self, fd: impl AsFd) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Blocks until something is ready (no timeout: the timer is in the set).
    pub(crate) fn wait(&self, events: &mut Events) -> Result<(), Errno> {
        self.wait_for(events, None)
    }

    /// What is ready now, without blocking: the loop looks at its timer and children between
    /// batches of queued messages.
    pub(crate) fn poll_now(&self, events: &mut Events) -> Result<(), Errno> {
        self.wait_for(events, Some(&rustix::time::Timespec::default()))
    }

    fn wait_for(
        &self,
        events: &mut Events,
        timeout: Option<&rustix::time::Timespec>,
    ) -> Result<(), Errno> {
        events.0.clear();
        epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events.0),
            timeout,
        )
        .map(|_| ())
    }

    /// Resets the timer's expiry count after it was seen readable.
    pub(crate) fn clear_timer(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.timer, &mut buf);
    }

    /// Arms the timer to fire at `at`, or disarms it for `None`.
    ///
    /// The deadline is absolute (`TFD_TIMER_ABSTIME` on CLOCK_MONOTONIC): a relative value would
    /// be measured from whenever the caller took its `now`, and fire late by the time spent since
    /// (a SIGTERM fan-out to every child, at stop).
    pub(crate) fn arm_timer(&self, at: Option<Instant>) -> Result<(), Errno> {
        let spec = Itimerspec {
            it_interval: ZERO,
            it_value: at.map_or(ZERO, monotonic_timespec),
        };
        timerfd_settime(&self.timer, TimerfdTimerFlags::ABSTIME, &spec).map(|_| ())
    }
}

const ZERO: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

const NANOS: i128 = 1_000_000_000;

/// `at` on the CLOCK_MONOTONIC scale, never zero (a zero `it_value` disarms; a time in the past
/// fires at once).
///
/// `Instant` reads CLOCK_MONOTONIC on Linux but does not expose its value, so the conversion goes
/// through one reading of each, taken back to back (they differ by the time between the two
/// calls, well under a microsecond).
pub(crate) fn monotonic_timespec(at: Instant) -> Timespec {
    let now = Instant::now();
    let mono = clock_gettime(ClockId::Monotonic);
    let offset = match at.checked_duration_since(now) {
        Some(ahead) => ahead.as_nanos() as i128,
        None => -(now.duration_since(at).as_nanos() as i128),
    };
    let ns = (i128::from(mono.tv_sec) * NANOS + i128::from(mono.tv_nsec) + offset)
        .clamp(1, i128::from(i64::MAX) * NANOS);
    Timespec {
        tv_sec: (ns / NANOS) as i64,
        tv_nsec: (ns % NANOS) as i64,
    }
}

/// The doorbell: an eventfd in the poller's set that caller threads write to wake the loop.
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A doorbell registered in `poller`'s set.
    pub(crate) fn new(poller: &Poller) -> io::Result<Waker> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let fd = crate::sys::above_stdio(fd)?;
        poller.add(&fd, DOORBELL)?;
        Ok(Waker { fd })
    }

    pub(crate) fn ring(&self) {
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Resets the eventfd counter after it was seen readable.
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn nanos(t: Timespec) -> i128 {
        i128::from(t.tv_sec) * NANOS + i128::from(t.tv_nsec)
    }

    #[test]
    fn instants_convert_to_the_monotonic_clock() {
        let clock = nanos(clock_gettime(ClockId::Monotonic));
        let now = nanos(monotonic_timespec(Instant::now()));
        let ms = 1_000_000;
        assert!((now - clock).abs() < ms, "now is {} ns off", now - clock);
        let later = nanos(monotonic_timespec(Instant::now() + Duration::from_secs(5)));
        assert!((later - clock - 5 * NANOS).abs() < ms);
        if let Some(earlier) = Instant::now().checked_sub(Duration::from_millis(20)) {
            let earlier = nanos(monotonic_timespec(earlier));
            assert!((clock - earlier - 20 * ms).abs() < ms);
        }
        let far = Instant::now() + Duration::from_secs(u64::from(u32::MAX));
        assert!(nanos(monotonic_timespec(far)) > clock);
        let t = monotonic_timespec(Instant::now());
        assert!((0..NANOS as i64).contains(&t.tv_nsec));
    }

    #[test]
    fn disarming_stops_a_pending_timer() {
        let poller = Poller::new().expect("poller");
        let waker = Waker::new(&poller).expect("waker");
        poller
            .arm_timer(Some(Instant::now() + Duration::from_millis(20)))
            .expect("arm");
        poller.arm_timer(None).expect("disarm");
        std::thread::sleep(Duration::from_millis(50));
        waker.ring();
        let mut events = Events::with_capacity(4);
        poller.wait(&mut events).expect("wait");
        assert_eq!(events.len(), 1, "only the doorbell");
        assert_eq!(events.get(0), Some(Event::Doorbell));
    }

    #[test]
    fn doorbell_and_timer_are_reported_by_their_names() {
        let poller = Poller::new().expect("poller");
        let waker = Waker::new(&poller).expect("waker");
        let mut events = Events::with_capacity(8);
        waker.ring();
        poller.wait(&mut events).expect("wait");
        assert_eq!(events.len(), 1);
        assert_eq!(events.get(0), Some(Event::Doorbell));
        waker.clear();
        let now = Instant::now();
        poller
            .arm_timer(Some(now + Duration::from_millis(5)))
            .expect("arm");
        poller.wait(&mut events).expect("wait");
        assert_eq!(events.get(0), Some(Event::Timer));
        assert!(now.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn a_deadline_armed_late_fires_at_the_deadline_not_later() {
        let poller = Poller::new().expect("poller");
        let now = Instant::now();
        let deadline = now + Duration::from_millis(100);
        // The loop took `now` and set the deadline, then spent time (a SIGTERM fan-out to many
        // children) before arming the timer.
        std::thread::sleep(Duration::from_millis(150));
        poller.arm_timer(Some(deadline)).expect("arm");
        let armed = Instant::now();
        let mut events = Events::with_capacity(4);
        poller.wait(&mut events).expect("wait");
        assert_eq!(events.get(0), Some(Event::Timer));
        let late = armed.elapsed();
        assert!(
            late < Duration::from_millis(60),
            "fired {late:?} after arming, deadline past"
        );
    }

    #[test]
    fn child_tokens_are_serials() {
        assert_eq!(Event::from_token(1), Event::Child(1));
        assert_eq!(Event::from_token(u64::MAX - 2), Event::Sigchld);
        assert_eq!(Event::from_token(IO_TAG | 7), Event::Io(7));
        assert_eq!(Event::from_token(IO_TAG - 1), Event::Child(IO_TAG - 1));
    }
}
