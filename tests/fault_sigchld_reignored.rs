//! Fault: the host sets SIGCHLD to SIG_IGN *after* a `ChildWatch::Signal` executor has installed
//! its SIGCHLD handler (signal-hook installs the process-wide handler once, at the first
//! registration, and never again).
//!
//! Wanted (as with pidfds, `fault_sigchld_ignored.rs`): every child still ends, with its status
//! or with the lost-status report (exit code 255, `status_lost()`), and `stop()` lets `run()`
//! return. Every wait here is bounded: a failure is a panic, never a hang.
//!
//! Regression test: the Signal-mode executor used to never learn of an exit once the host
//! re-ignored SIGCHLD (the kernel reaps the child, no signal comes), so `wait_timeout` gave nothing
//! and `run()` did not return after `stop()`. It now checks the disposition when `run()` starts
//! (and every 100 ms while children are tracked) and polls if SIGCHLD is ignored.
//!
//! It changes a process-wide disposition, so it is the only test of this file.

mod common;

use std::time::Duration;

use common::{RUN_WATCHDOG, Running, spawn_ok, start_with_watch, wait_until};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(100);

fn start(backend: SpawnBackend) -> Running {
    start_with_watch(backend, ChildWatch::Signal, GRACE)
}

/// On Fork and Vfork; PosixSpawn (no pidfd with its clone, so it cannot name a child the kernel
/// may reap at once) is refused while SIGCHLD is ignored (issue 21), checked last.
#[test]
fn signal_mode_survives_sigchld_reignored_by_the_host() {
    for backend in [SpawnBackend::Fork, SpawnBackend::Vfork] {
        survives(backend);
    }
    let mut first = start(SpawnBackend::PosixSpawn);
    let h = spawn_ok(&first.arc(), &["sh", "-c", "exit 3"], true);
    assert_eq!(
        h.wait_timeout(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(3)
    );
    // SAFETY: SIG_IGN installs no code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let refused = common::spawn(&first.arc(), &["sh", "-c", "exit 4"], true);
    // SAFETY: back to the default before the assertion can fail.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let e = refused.expect_err("posix_spawn in Signal mode under SIG_IGN");
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
    first.stop_and_join(GRACE + RUN_WATCHDOG);
}

fn survives(backend: SpawnBackend) {
    // First executor: installs the handler; all is well.
    let mut first = start(backend);
    let h = spawn_ok(&first.arc(), &["sh", "-c", "exit 3"], true);
    assert_eq!(
        h.wait_timeout(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(3)
    );
    // The host re-ignores SIGCHLD while this executor runs with its handler in place: no signal
    // will come, and the kernel reaps by itself. The loop's periodic look (every 100 ms while it
    // tracks children) must notice and report the status as lost, not wait forever.
    // SAFETY: SIG_IGN installs no code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let h = spawn_ok(&first.arc(), &["sh", "-c", "exit 4"], true);
    let status = h.wait_timeout(Duration::from_secs(8));
    assert!(
        status.is_some(),
        "no status 8 s after SIGCHLD was ignored under a running Signal-mode executor"
    );
    assert!(h.status_lost(), "{status:?}");
    // SAFETY: back to the default.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    first.stop_and_join(GRACE + RUN_WATCHDOG);

    // The host now ignores SIGCHLD (e.g. a daemon that does not want zombies).
    // SAFETY: SIG_IGN installs no code.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };

    let second = start(backend);
    let h = spawn_ok(&second.arc(), &["sh", "-c", "exit 3"], true);
    let status = h.wait_timeout(Duration::from_secs(5));
    let ex = second.arc();
    ex.stop();
    let emptied = wait_until(GRACE + Duration::from_secs(5), || ex.running().is_empty());
    // SAFETY: back to the default before the assertion can fail.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    assert!(
        status.is_some() && emptied,
        "pid {}: status after 5 s: {status:?}; still tracked 5 s after stop(): {:?}",
        h.pid(),
        ex.running()
    );
    drop(second);
}
