//! Fault: the host ignores SIGCHLD, so the kernel reaps a child (A) the moment it exits, and
//! another child of the host takes A's pid before the executor looks (forced here by writing
//! `/proc/sys/kernel/ns_last_pid`).
//!
//! Wanted, on every backend and in both child-watch modes: A is reported gone (a lost status,
//! `ESRCH` for signals, `kill()` returns at once) and the process that recycled the pid is never
//! signalled. With pidfds every signal goes through A's pidfd; without them the executor names A
//! by pid *and* start time and checks both before any signal or wait.
//!
//! Regression test: in Signal mode A's handle used to say "running" while the stranger lived, and
//! `send_signal(SIGTERM)` on A killed the stranger (the only check, `waitid(P_PID, WNOWAIT)`,
//! cannot tell A from a sibling).
//!
//! Issue 21: the start time must itself be read while the pid is surely A's. Vfork and Fork
//! confirm it with a pidfd from the clone; PosixSpawn gets none, so in Signal mode under an
//! ignored SIGCHLD it is refused (`Unsupported`), checked here; `stop()` spares the stranger on
//! every backend and in both modes.
//!
//! It changes SIGCHLD's disposition and the pid counter, so it is the only test of this file.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::faults::{NS_LAST_PID, SavedSigchld, take_pid};
use common::{RUN_WATCHDOG, Running, is_live_child, spawn_ok, start_with_watch};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(100);
/// Attempts per configuration: another process on the machine may take the pid first, or the
/// executor may look before the stranger is there (then nothing was at stake).
const ATTEMPTS: usize = 60;

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; a new fd is owned at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a fresh descriptor nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Blocks until `fd` is readable (a pidfd: the process exited), at most `limit`.
fn readable(fd: &OwnedFd, limit: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd we own.
    unsafe { libc::poll(&mut p, 1, limit.as_millis() as i32) == 1 }
}

/// What one configuration saw.
#[derive(Default, Debug)]
struct Tally {
    /// The stranger got A's pid.
    recycled: usize,
    /// ... while A's handle still said "running" (the executor had not looked yet).
    before_the_executor_looked: usize,
    /// Spawns refused (PosixSpawn in Signal mode).
    refused: usize,
}

/// The only spawn refused here: PosixSpawn in Signal mode while SIGCHLD is ignored (no pidfd
/// with the clone, so its child cannot be named for sure; issue 21).
fn assert_refused(what: &str, e: &napix_executor::SpawnError) {
    assert!(
        what.starts_with("posix_spawn Signal"),
        "{what}: spawn failed: {e}"
    );
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{what}: {e}");
}

/// One attempt: A exits, a stranger takes its pid, A is used. Returns what happened.
fn attempt(r: &Running, what: &str, tally: &mut Tally) {
    let a = match common::spawn(&r.arc(), &["sleep", "0.05"], true) {
        Ok(a) => a,
        Err(e) => {
            assert_refused(what, &e);
            tally.refused += 1;
            return;
        }
    };
    let pid = a.pid();
    let Some(watch) = pidfd_open(pid) else { return };
    assert!(
        readable(&watch, Duration::from_secs(10)),
        "{what}: sleep 0.05 did not end"
    );
    let Some(stranger) = take_pid(pid) else {
        return;
    };
    tally.recycled += 1;
    if a.poll().is_none() {
        tally.before_the_executor_looked += 1;
    }
    let signalled = a.send_signal(libc::SIGTERM);
    let status = a.wait_timeout(Duration::from_secs(2));
    let killed_at = Instant::now();
    let killed = a.kill();
    let kill_took = killed_at.elapsed();
    let stranger_lives = is_live_child(pid);
    stranger.kill();
    assert_eq!(
        signalled.as_ref().map_err(|e| e.raw_os_error()),
        Err(Some(libc::ESRCH)),
        "{what}: send_signal on a child whose pid went to another process"
    );
    assert!(
        stranger_lives,
        "{what}: the process that took pid {pid} was killed"
    );
    assert!(
        status.is_some() && a.status_lost(),
        "{what}: status {status:?}, lost {}",
        a.status_lost()
    );
    assert_eq!(killed.code(), Some(255), "{what}: kill() gave {killed:?}");
    assert!(
        kill_took < Duration::from_millis(500),
        "{what}: kill() took {kill_took:?}"
    );
}

/// Runs attempts until the stranger twice came before the executor looked (Signal mode), or a
/// few pids were recycled (pidfd mode). Returns the tally.
fn run_config(backend: SpawnBackend, watch: ChildWatch, when: &str, r: &Running) -> Tally {
    let what = format!("{} {watch:?} SIGCHLD ignored {when}", backend.name());
    let mut tally = Tally::default();
    for _ in 0..ATTEMPTS {
        attempt(r, &what, &mut tally);
        // With pidfds the executor hears of the exit at once: a few recycled pids show enough.
        if tally.before_the_executor_looked >= 2
            || (watch == ChildWatch::Pidfd && tally.recycled >= 3)
            || tally.refused > 0
        {
            break;
        }
    }
    println!("{what}: {tally:?}");
    if tally.recycled == 0 {
        // Other processes on the machine took every pid first: nothing was tested here.
        println!("{what}: the pid never came back to us ({ATTEMPTS} attempts)");
    }
    tally
}

#[test]
fn a_recycled_pid_is_never_signalled_and_the_child_is_lost() {
    let _serial = common::serial();
    if let Err(e) = std::fs::OpenOptions::new().write(true).open(NS_LAST_PID) {
        println!("skipped: {NS_LAST_PID} is not writable here ({e}); pid reuse cannot be forced");
        return;
    }
    // How often, in Signal mode, the stranger had the pid before the executor looked: then the
    // start time alone told them apart. A loaded machine may lose single races (the executor
    // looks every 10 ms when SIGCHLD is ignored before run()), not all of them.
    let mut exercised = 0;
    // SIGCHLD ignored before the executor starts: Signal mode polls, pidfd mode sees the pidfd.
    {
        let _ign = SavedSigchld::set(libc::SIG_IGN);
        for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
            for backend in SpawnBackend::ALL {
                let mut r = start_with_watch(backend, watch, GRACE);
                let tally = run_config(backend, watch, "before run()", &r);
                let refused = backend == SpawnBackend::PosixSpawn && watch == ChildWatch::Signal;
                assert_eq!(
                    tally.refused > 0,
                    refused,
                    "{tally:?}: refused exactly there"
                );
                if watch == ChildWatch::Signal {
                    exercised += tally.before_the_executor_looked;
                }
                r.stop_and_join(GRACE + RUN_WATCHDOG);
            }
        }
    }
    // SIGCHLD ignored after a Signal-mode executor installed its handler.
    for backend in SpawnBackend::ALL {
        let mut r = start_with_watch(backend, ChildWatch::Signal, GRACE);
        let h = spawn_ok(&r.arc(), &["true"], true);
        assert_eq!(
            common::wait_for(&h, Duration::from_secs(10)).code(),
            Some(0)
        );
        {
            let _ign = SavedSigchld::set(libc::SIG_IGN);
            exercised += run_config(backend, ChildWatch::Signal, "after run()", &r)
                .before_the_executor_looked;
        }
        r.stop_and_join(GRACE + RUN_WATCHDOG);
    }
    assert!(
        exercised > 0,
        "Signal mode: the stranger never took the pid before the executor looked"
    );
    // stop() while A's pid belongs to a stranger: the kill escalation must spare it (issue 21:
    // with PosixSpawn in Signal mode it did not).
    let _ign = SavedSigchld::set(libc::SIG_IGN);
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            stop_spares_the_stranger(backend, watch);
        }
    }
}

/// A exits (reaped by the kernel), a stranger takes its pid, `stop()`: the stranger lives.
/// A configuration the executor refuses under an ignored SIGCHLD (a typed error) is fine too.
fn stop_spares_the_stranger(backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?} SIGCHLD ignored, stop()", backend.name());
    let mut recycled = 0;
    for _ in 0..ATTEMPTS {
        let mut r = start_with_watch(backend, watch, GRACE);
        let a = match common::spawn(&r.arc(), &["sleep", "0.05"], true) {
            Ok(a) => a,
            Err(e) => {
                assert_refused(&what, &e);
                println!("{what}: refused: {e}");
                r.stop_and_join(GRACE + RUN_WATCHDOG);
                return;
            }
        };
        let pid = a.pid();
        let Some(watcher) = pidfd_open(pid) else {
            continue;
        };
        assert!(
            readable(&watcher, Duration::from_secs(10)),
            "{what}: sleep 0.05 did not end"
        );
        let Some(stranger) = take_pid(pid) else {
            r.stop_and_join(GRACE + RUN_WATCHDOG);
            continue;
        };
        r.stop_and_join(GRACE + RUN_WATCHDOG);
        let lives = is_live_child(pid);
        stranger.kill();
        assert!(
            lives,
            "{what}: stop() killed the process that took pid {pid}"
        );
        recycled += 1;
        if recycled >= 3 {
            break;
        }
    }
    println!("{what}: {recycled} recycled pids, the stranger spared");
}
