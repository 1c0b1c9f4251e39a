//! Fault, pidfd mode: a child runs but its pidfd cannot be opened (`pidfd_open` after the spawn
//! fails with `EMFILE`: RLIMIT_NOFILE lowered so that no descriptor number is free), and the host
//! ignores SIGCHLD, so the kernel reaps the child the moment the executor kills it and the pid is
//! free for another process, here another child of ours (forced through `ns_last_pid`).
//!
//! Wanted, on every backend that opens its pidfd after the spawn: the spawn fails with
//! `ResourceExhausted` at the pidfd stage; the untracked child is named by pid *and* start time
//! (read despite `EMFILE`), so once the kernel reaped it the process that took the pid over is
//! neither signalled nor waited for, and `run()` returns after `stop()` while that process lives.
//!
//! Regression test: the untracked child was named by its pid alone; the executor kept waiting for
//! the stranger in its place (`waitid(P_PID)` on another child of ours), and `run()` did not return
//! after `stop()` until the stranger died.
//!
//! It changes SIGCHLD's disposition, the pid counter and the descriptor limit, so it is the only
//! test of this file.

mod common;

use std::time::Duration;

use common::faults::{NS_LAST_PID, NofileLimit, SavedSigchld, Stranger, limit_leaving, take_pid};
use common::{is_live_child, spawn_ok, start_with_watch, wait_for, wait_until};
use napix_executor::{ChildWatch, SpawnBackend, SpawnError, SpawnStage};

const GRACE: Duration = Duration::from_millis(100);
/// Attempts per backend: another process on the machine may take a pid first.
const ATTEMPTS: usize = 60;
/// Times the stranger is to take the pid, per backend with the window.
const WANTED: usize = 4;
/// How long `run()` may take to return after `stop()` with nothing to wait for, on a loaded
/// machine. The regression held it as long as the stranger lived.
const RUN_RETURNS: Duration = Duration::from_secs(10);

/// The clock tick a process started now would record as its start time (`/proc/<pid>/stat` field
/// 22 counts `USER_HZ` = 100 ticks a second of CLOCK_BOOTTIME).
fn boot_tick() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME)");
    (ts.tv_sec as u64) * 100 + (ts.tv_nsec as u64) / 10_000_000
}

fn last_pid() -> u32 {
    std::fs::read_to_string(NS_LAST_PID)
        .expect("read ns_last_pid")
        .trim()
        .parse()
        .expect("ns_last_pid is a number")
}

struct KillOnDrop(Stranger);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// The pidfd stage failed, the child's pid went to a stranger, and the executor let both be.
    Exercised,
    /// This backend got its pidfd some other way, or failed at another stage.
    NoWindow(String),
    /// Another process took a pid first: nothing was tested.
    PidTaken,
}

fn attempt(backend: SpawnBackend) -> Attempt {
    let what = format!("{} pidfd mode", backend.name());
    let r = start_with_watch(backend, ChildWatch::Pidfd, GRACE);
    // Warm up: the loop's own descriptors exist before the limit is computed.
    let warm = spawn_ok(&r.arc(), &["true"], true);
    assert_eq!(wait_for(&warm, Duration::from_secs(10)).code(), Some(0));
    drop(warm);
    let _ignored = SavedSigchld::set(libc::SIG_IGN);
    // The child is to get pid `expected`: the next one after a number we write.
    let expected = last_pid() + 50;
    std::fs::write(NS_LAST_PID, (expected - 1).to_string()).expect("write ns_last_pid");
    let result = {
        let _limit = NofileLimit::lower_to(limit_leaving(0));
        r.exec().create_process(&["sleep", "30"], true)
    };
    // Exactly one pid was handed out since the write, so it was the child's.
    let child_got_it = last_pid() == expected;
    match result {
        Err(SpawnError::ResourceExhausted {
            stage: SpawnStage::Pidfd,
            errno,
            ..
        }) => assert_eq!(errno, libc::EMFILE, "{what}"),
        Ok(h) => {
            let _ = h.kill();
            return Attempt::NoWindow("spawned with a pidfd from the spawn itself".into());
        }
        Err(e) => return Attempt::NoWindow(format!("failed at another stage: {e}")),
    }
    if !child_got_it {
        return Attempt::PidTaken;
    }
    // The executor killed the child and the kernel reaped it (SIGCHLD ignored): the pid is free.
    // The stranger takes it as early as its start time can differ from the child's (a tick after
    // the spawn answered), so that it is often there before the executor's first look at the
    // untracked child (10 ms after the kill).
    let tick = boot_tick();
    while boot_tick() == tick {
        std::hint::spin_loop();
    }
    let Some(stranger) = take_pid(expected) else {
        return Attempt::PidTaken;
    };
    // Killed when this attempt ends, also when an assertion fails (it would hold run() forever
    // if the executor waited for it).
    let _stranger = KillOnDrop(stranger);
    r.exec().stop();
    let returned = wait_until(RUN_RETURNS, || r.finished());
    let lives = is_live_child(expected);
    assert!(
        returned,
        "{what}: run() did not return within {RUN_RETURNS:?} after stop(): it kept waiting for \
         pid {expected}, which another process had taken over"
    );
    assert!(
        lives,
        "{what}: the process that took pid {expected} over was killed or reaped"
    );
    Attempt::Exercised
}

#[test]
fn an_untracked_child_is_named_by_pid_and_start_time() {
    if let Err(e) = std::fs::OpenOptions::new().write(true).open(NS_LAST_PID) {
        println!("skipped: {NS_LAST_PID} is not writable here ({e}); pid reuse cannot be forced");
        return;
    }
    let mut exercised = Vec::new();
    for backend in SpawnBackend::ALL {
        let mut outcomes = Vec::new();
        for _ in 0..ATTEMPTS {
            let outcome = attempt(backend);
            let no_window = matches!(outcome, Attempt::NoWindow(_));
            outcomes.push(outcome);
            let done = outcomes
                .iter()
                .filter(|o| **o == Attempt::Exercised)
                .count();
            if no_window || done == WANTED {
                break;
            }
        }
        println!("{}: {outcomes:?}", backend.name());
        if outcomes.contains(&Attempt::Exercised) {
            exercised.push(backend);
        }
    }
    // posix_spawn has no way to return a pidfd: it always opens one after the spawn.
    assert!(
        exercised.contains(&SpawnBackend::PosixSpawn),
        "posix_spawn: the untracked child's pid never went to a stranger ({ATTEMPTS} attempts)"
    );
}
