//! The loop's one wait: an epoll set holding the timerfd, the doorbell eventfd ([`Waker`]), the
//! SIGCHLD source (signal mode) and one pidfd per child, behind one small type ([`Poller`]),
//! the way mio's `Selector` hides epoll. Nothing else of the crate touches epoll or the timerfd.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, epoll, eventfd};
use rustix::io::Errno;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};

/// epoll tokens: pidfds use their spawn serial (from 1 up); these can never collide with one.
const DOORBELL: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;
const SIGCHLD_SOURCE: u64 = u64::MAX - 2;

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
}

impl Event {
    fn from_token(token: u64) -> Event {
        match token {
            DOORBELL => Event::Doorbell,
            TIMER => Event::Timer,
            SIGCHLD_SOURCE => Event::Sigchld,
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

/// The epoll set and the timerfd.
pub(crate) struct Poller {
    epoll: OwnedFd,
    timer: OwnedFd,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let epoll = crate::sys::above_stdio(epoll::create(epoll::CreateFlags::CLOEXEC)?)?;
        let timer = crate::sys::above_stdio(timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?)?;
        let poller = Poller { epoll, timer };
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

    /// Watches child `serial`'s pidfd.
    pub(crate) fn add_child(&self, pidfd: impl AsFd, serial: u64) -> Result<(), Errno> {
        self.add(pidfd, serial)
    }

    /// Watches the SIGCHLD source (signalfd or the handler's socket).
    pub(crate) fn add_sigchld(&self, fd: impl AsFd) -> Result<(), Errno> {
        self.add(fd, SIGCHLD_SOURCE)
    }

    /// Stops watching `fd` (a pidfd that is reaped or stalled).
    pub(crate) fn remove(&self, fd: impl AsFd) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Blocks until something is ready (no timeout: the timer is in the set).
    pub(crate) fn wait(&self, events: &mut Events) -> Result<(), Errno> {
        events.0.clear();
        epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events.0),
            None,
        )
        .map(|_| ())
    }

    /// Resets the timer's expiry count after it was seen readable.
    pub(crate) fn clear_timer(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.timer, &mut buf);
    }

    /// Arms the timer to fire at `at` (measured from `now`), or disarms it for `None`.
    pub(crate) fn arm_timer(&self, at: Option<Instant>, now: Instant) -> Result<(), Errno> {
        let value = match at {
            // A zero it_value disarms, so a deadline already past gets 1 ns.
            Some(at) => duration_to_timespec(
                at.saturating_duration_since(now)
                    .max(Duration::from_nanos(1)),
            ),
            None => ZERO,
        };
        let spec = Itimerspec {
            it_interval: ZERO,
            it_value: value,
        };
        timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &spec).map(|_| ())
    }
}

const ZERO: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

fn duration_to_timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
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
            .arm_timer(Some(now + Duration::from_millis(5)), now)
            .expect("arm");
        poller.wait(&mut events).expect("wait");
        assert_eq!(events.get(0), Some(Event::Timer));
        assert!(now.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn child_tokens_are_serials() {
        assert_eq!(Event::from_token(1), Event::Child(1));
        assert_eq!(Event::from_token(u64::MAX - 3), Event::Child(u64::MAX - 3));
        assert_eq!(Event::from_token(u64::MAX - 2), Event::Sigchld);
    }
}
