//! The SIGCHLD path of signal mode ([`ChildWatch::Signal`](crate::ChildWatch::Signal)): how the
//! loop learns that a child may have exited without pidfds, and when it looks without being told.
//!
//! What tells the loop ([`SigchldSource`]):
//! - a signalfd, when the user blocked SIGCHLD in every thread ([`crate::block_sigchld`]);
//! - else a signal-hook SIGCHLD handler (chained with the host's own) writing to a socket;
//! - else nothing: the host ignores SIGCHLD (the kernel then reaps by itself and sends nothing;
//!   installing a handler would change that for the host's own children).
//!
//! A SIGCHLD can be lost: another thread takes it (`sigtimedwait`, or a thread that unblocks it
//! and so drops it under the default disposition), or the host replaces our handler (SIG_DFL,
//! SIG_IGN, a handler of its own that does not chain). A lost signal must only delay an exit, so
//! while children are tracked the loop also looks by itself ([`CheckSchedule`]):
//! - every [`LOOK_EVERY`] (100 ms): it asks the kernel for a waitable child
//!   (`waitid(P_ALL, WNOWAIT)`, which takes no status) and, on the handler path, whether our
//!   handler is still the installed one (one `sigaction` query). A displaced handler turns these
//!   looks to every [`POLL_EVERY`] (10 ms) until it is back;
//! - every [`SCAN_EVERY`] (1 s): it looks at every tracked child, for what the first look cannot
//!   see (a zombie the host never waits for stands first in the kernel's answer, hiding ours);
//! - when the host ignores SIGCHLD, at every child every 10 ms: the kernel reaps them itself,
//!   leaving nothing waitable, and only a look at each tells which one went.
//!
//! So a stolen SIGCHLD delays an exit by at most 100 ms (1 s while the host keeps an exited child
//! of its own unwaited), and a displaced handler is seen within 100 ms, exits within 10 ms after.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::sys::SigchldDisposition;
use crate::sys::sigchld::SigchldAction;

/// How often, while children are tracked, the loop asks the kernel for a waitable child and
/// checks that our SIGCHLD handler is still installed.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How often the loop looks while nothing can tell it of exits (the handler is displaced).
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(10);

/// How often, while children are tracked, the loop looks at every one of them.
pub(crate) const SCAN_EVERY: Duration = Duration::from_secs(1);

/// How the loop learns that a child may have exited when it has no pidfds.
pub(crate) struct SigchldSource {
    fd: Option<OwnedFd>,
    handler: Option<signal_hook::SigId>,
    schedule: CheckSchedule,
}

impl SigchldSource {
    pub(crate) fn new() -> io::Result<SigchldSource> {
        if crate::sys::block_sigchld_called() {
            match crate::sys::sigchld::sigchld_unblocked_thread() {
                Ok(None) => {
                    return Ok(SigchldSource {
                        fd: Some(crate::sys::signalfd_sigchld()?),
                        handler: None,
                        schedule: CheckSchedule::new(Told::Signalfd, Seen::InPlace),
                    });
                }
                Ok(Some(thread)) => warn!(
                    thread,
                    "block_sigchld() was called but this thread has SIGCHLD unblocked or waits \
                     for it (sigtimedwait): a signalfd would miss what it takes, so a SIGCHLD \
                     handler is used"
                ),
                Err(e) => warn!(
                    error = %e,
                    "/proc/self/task unreadable: cannot tell whether a signalfd would see every \
                     SIGCHLD, so a SIGCHLD handler is used"
                ),
            }
        }
        if crate::sys::sigchld_disposition() == SigchldDisposition::Ignored {
            warn!("SIGCHLD is ignored by the host: looking at children every 10 ms, statuses lost");
            return Ok(SigchldSource {
                fd: None,
                handler: None,
                schedule: CheckSchedule::new(Told::Handler { ours: 0 }, Seen::Ignored),
            });
        }
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        // Both ends above fd 2: the host may have closed its stdio.
        let write = std::os::unix::net::UnixStream::from(crate::sys::above_stdio(write.into())?);
        let handler = signal_hook::low_level::pipe::register(libc::SIGCHLD, write)?;
        // signal-hook installs its OS handler once per process; if the host reset SIGCHLD since,
        // our action is registered but never called: no handler of ours is installed (0).
        let action = crate::sys::sigchld::sigchld_action();
        let ours = match action.disposition {
            SigchldDisposition::Handled => action.handler,
            _ => 0,
        };
        let seen = Seen::of(action, ours);
        if seen != Seen::InPlace {
            warn!("SIGCHLD handler displaced by the host: looking for exits every 10 ms");
        }
        Ok(SigchldSource {
            fd: Some(crate::sys::above_stdio(read.into())?),
            handler: Some(handler),
            schedule: CheckSchedule::new(Told::Handler { ours }, seen),
        })
    }

    /// The descriptor to watch, unless nothing tells the loop.
    pub(crate) fn fd(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Empties the source so level-triggered epoll stops reporting it.
    pub(crate) fn drain(&self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 512];
        while let Ok(n) = rustix::io::read(fd, &mut buf) {
            if n == 0 {
                break;
            }
        }
    }

    /// When the timer must next fire for a look (None: no need). `tracking`: the table is not
    /// empty.
    pub(crate) fn next_check(&mut self, now: Instant, tracking: bool) -> Option<Instant> {
        self.schedule.next_check(now, tracking)
    }

    /// What the timer that fired at `now` asks for; `action` reads SIGCHLD's action.
    pub(crate) fn check_due(
        &mut self,
        now: Instant,
        action: impl FnOnce() -> SigchldAction,
    ) -> Due {
        self.schedule.check_due(now, action)
    }
}

#[cfg(test)]
impl SigchldSource {
    /// A handler-path source with handler address `ours` in place, without any descriptor.
    pub(crate) fn handler_for_tests(ours: usize) -> SigchldSource {
        SigchldSource {
            fd: None,
            handler: None,
            schedule: CheckSchedule::new(Told::Handler { ours }, Seen::InPlace),
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

/// What the loop must do because the timer fired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    /// Reap the children the kernel says are waitable.
    pub(crate) probe: bool,
    /// Look at every tracked child.
    pub(crate) scan: bool,
}

/// How the loop is told of exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    /// A signalfd: cannot be displaced (but another thread can take the signal).
    Signalfd,
    /// A handler, `ours` its address (0: none of ours is installed).
    Handler { ours: usize },
}

/// What the last look at SIGCHLD's action found (the handler path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Our handler is installed (or, with a signalfd, nothing to check).
    InPlace,
    /// SIG_DFL or someone else's handler: exits leave zombies, but nothing tells us.
    Displaced,
    /// SIG_IGN or SA_NOCLDWAIT: the kernel reaps by itself.
    Ignored,
}

impl Seen {
    fn of(action: SigchldAction, ours: usize) -> Seen {
        match action.disposition {
            SigchldDisposition::Ignored => Seen::Ignored,
            SigchldDisposition::Handled if ours != 0 && action.handler == ours => Seen::InPlace,
            _ => Seen::Displaced,
        }
    }
}

/// When the loop looks without being told: the pure part of [`SigchldSource`].
struct CheckSchedule {
    told: Told,
    seen: Seen,
    /// The next look for a waitable child (and at the handler), while children are tracked.
    look_at: Option<Instant>,
    /// The next look at every child, while children are tracked.
    scan_at: Option<Instant>,
}

impl CheckSchedule {
    fn new(told: Told, seen: Seen) -> CheckSchedule {
        CheckSchedule {
            told,
            seen,
            look_at: None,
            scan_at: None,
        }
    }

    /// (between looks, between scans)
    fn periods(&self) -> (Duration, Duration) {
        match self.seen {
            Seen::InPlace => (LOOK_EVERY, SCAN_EVERY),
            Seen::Displaced => (POLL_EVERY, SCAN_EVERY),
            Seen::Ignored => (POLL_EVERY, POLL_EVERY),
        }
    }

    fn next_check(&mut self, now: Instant, tracking: bool) -> Option<Instant> {
        if !tracking {
            self.look_at = None;
            self.scan_at = None;
            return None;
        }
        let (look, scan) = self.periods();
        let look = *self.look_at.get_or_insert(now + look);
        let scan = *self.scan_at.get_or_insert(now + scan);
        Some(look.min(scan))
    }

    fn check_due(&mut self, now: Instant, action: impl FnOnce() -> SigchldAction) -> Due {
        let mut due = Due::default();
        if self.look_at.is_some_and(|at| at <= now) {
            self.look_at = None;
            due.probe = true;
            if let Told::Handler { ours } = self.told {
                let seen = Seen::of(action(), ours);
                if seen != self.seen {
                    match seen {
                        Seen::InPlace => info!("SIGCHLD handler back in place"),
                        Seen::Displaced => warn!(
                            "SIGCHLD handler displaced by the host (SIG_DFL or a handler that \
                             does not chain): looking for exits every 10 ms"
                        ),
                        Seen::Ignored => warn!(
                            "SIGCHLD now ignored by the host: looking at children every 10 ms, \
                             statuses lost"
                        ),
                    }
                    self.seen = seen;
                    // The scan period may have changed: count it from now, and look at once.
                    self.scan_at = None;
                    due.scan = true;
                }
            }
        }
        if self.scan_at.is_some_and(|at| at <= now) {
            self.scan_at = None;
            due.scan = true;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: usize = 0x1000;

    fn action(disposition: SigchldDisposition, handler: usize) -> SigchldAction {
        SigchldAction {
            disposition,
            handler,
        }
    }

    fn in_place() -> SigchldAction {
        action(SigchldDisposition::Handled, OURS)
    }

    #[test]
    fn nothing_is_scheduled_while_no_child_is_tracked() {
        let mut s = CheckSchedule::new(Told::Signalfd, Seen::InPlace);
        let t0 = Instant::now();
        assert_eq!(s.next_check(t0, false), None);
        assert_eq!(
            s.check_due(t0 + SCAN_EVERY, || panic!("no look")),
            Due::default()
        );
    }

    #[test]
    fn a_signalfd_gets_a_look_every_100ms_and_a_scan_every_second() {
        let mut s = CheckSchedule::new(Told::Signalfd, Seen::InPlace);
        let t0 = Instant::now();
        assert_eq!(s.next_check(t0, true), Some(t0 + LOOK_EVERY));
        // A look stays where it was first put.
        assert_eq!(
            s.next_check(t0 + LOOK_EVERY / 2, true),
            Some(t0 + LOOK_EVERY)
        );
        assert_eq!(
            s.check_due(t0 + LOOK_EVERY / 2, || panic!("none")),
            Due::default()
        );
        let due = s.check_due(t0 + LOOK_EVERY, || panic!("a signalfd has no handler"));
        assert_eq!(
            due,
            Due {
                probe: true,
                scan: false
            }
        );
        let mut t = t0 + LOOK_EVERY;
        while t < t0 + SCAN_EVERY {
            t = s.next_check(t, true).expect("tracking");
            let due = s.check_due(t, || panic!("no handler"));
            assert!(due.probe || due.scan);
            assert_eq!(due.scan, t >= t0 + SCAN_EVERY, "at {:?}", t - t0);
        }
    }

    #[test]
    fn a_displaced_handler_is_seen_at_the_next_look_and_polling_follows() {
        let mut s = CheckSchedule::new(Told::Handler { ours: OURS }, Seen::InPlace);
        let t0 = Instant::now();
        let look = s.next_check(t0, true).expect("tracking");
        assert_eq!(look, t0 + LOOK_EVERY);
        assert_eq!(
            s.check_due(look, in_place),
            Due {
                probe: true,
                scan: false
            }
        );
        let look = s.next_check(look, true).expect("tracking");
        let due = s.check_due(look, || action(SigchldDisposition::Default, 0));
        assert_eq!(
            due,
            Due {
                probe: true,
                scan: true
            },
            "displaced: look at every child now"
        );
        assert_eq!(s.next_check(look, true), Some(look + POLL_EVERY));
        let due = s.check_due(look + POLL_EVERY, || action(SigchldDisposition::Default, 0));
        assert_eq!(
            due,
            Due {
                probe: true,
                scan: false
            }
        );
        // Someone else's handler is no better than SIG_DFL.
        let t = look + 2 * POLL_EVERY;
        assert_eq!(s.next_check(t - POLL_EVERY, true), Some(t));
        let due = s.check_due(t, || action(SigchldDisposition::Handled, OURS + 8));
        assert_eq!(
            due,
            Due {
                probe: true,
                scan: false
            }
        );
        // Ours again: back to a look every 100 ms.
        let t = s.next_check(t, true).expect("tracking");
        assert_eq!(
            s.check_due(t, in_place),
            Due {
                probe: true,
                scan: true
            }
        );
        assert_eq!(s.next_check(t, true), Some(t + LOOK_EVERY));
    }

    #[test]
    fn an_ignored_sigchld_means_looking_at_every_child_every_10ms() {
        let mut s = CheckSchedule::new(Told::Handler { ours: OURS }, Seen::InPlace);
        let t0 = Instant::now();
        let look = s.next_check(t0, true).expect("tracking");
        let due = s.check_due(look, || action(SigchldDisposition::Ignored, 1));
        assert!(due.scan);
        for i in 1..5 {
            let t = s
                .next_check(look + POLL_EVERY * (i - 1), true)
                .expect("tracking");
            assert_eq!(t, look + POLL_EVERY * i);
            let due = s.check_due(t, || action(SigchldDisposition::Ignored, 1));
            assert_eq!(
                due,
                Due {
                    probe: true,
                    scan: true
                }
            );
        }
    }

    #[test]
    fn without_a_handler_of_ours_the_path_never_counts_as_in_place() {
        // signal-hook's handler was displaced before this executor started: its address is
        // unknown, so any handler counts as someone else's.
        assert_eq!(
            Seen::of(action(SigchldDisposition::Handled, 0x2000), 0),
            Seen::Displaced
        );
        assert_eq!(
            Seen::of(action(SigchldDisposition::Default, 0), 0),
            Seen::Displaced
        );
        assert_eq!(
            Seen::of(action(SigchldDisposition::Ignored, 1), OURS),
            Seen::Ignored
        );
        assert_eq!(Seen::of(in_place(), OURS), Seen::InPlace);
    }
}
