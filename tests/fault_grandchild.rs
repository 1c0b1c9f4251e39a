//! Fault: a child that forks a grandchild and exits.
//!
//! Expected on every backend and both child-watch modes: the child's own status arrives at once
//! (exit 0) even while the grandchild lives on, and even while the grandchild still holds the
//! child's stdout pipe; the grandchild is not ours (re-parented away from this process, not in
//! `running()` nor `children_of`); the pipe reaches EOF only when the grandchild goes.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::thread;
use std::time::Duration;

use common::{RUN_WATCHDOG, cmdline, is_child, spawn_ok, start_with_watch, wait_for, wait_until};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(10);

/// Kills the grandchild `pid` if it is still the `sleep 30` we started (checked first, so a
/// recycled pid is never hit).
fn kill_grandchild(pid: u32) {
    if cmdline(pid).is_some_and(|c| c == ["sleep", "30"]) {
        // SAFETY: kill takes two integers; the pid was just checked to be our sleeper.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
}

fn check(backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?}", backend.name());
    let mut r = start_with_watch(backend, watch, GRACE);

    // The grandchild lets go of the pipes.
    let h = spawn_ok(
        &r.arc(),
        &["sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $!"],
        false,
    );
    let mut out = String::new();
    h.take_stdout().unwrap().read_to_string(&mut out).unwrap();
    let grandchild: u32 = out.trim().parse().expect("grandchild pid");
    assert_eq!(wait_for(&h, LIMIT).code(), Some(0), "{what}");
    assert!(
        wait_until(LIMIT, || cmdline(grandchild)
            .is_some_and(|c| c == ["sleep", "30"])),
        "{what}: grandchild {grandchild} not running"
    );
    assert!(!is_child(grandchild), "{what}: the grandchild became ours");
    assert!(
        r.exec().running().is_empty(),
        "{what}: {:?}",
        r.exec().running()
    );
    assert!(r.exec().children_of(thread::current().id()).is_empty());
    kill_grandchild(grandchild);

    // The grandchild keeps stdout: the status comes anyway, EOF only once it is gone.
    let h = spawn_ok(&r.arc(), &["sh", "-c", "sleep 30 & echo $!"], false);
    let mut stdout = BufReader::new(h.take_stdout().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let grandchild: u32 = line.trim().parse().expect("grandchild pid");
    assert_eq!(wait_for(&h, LIMIT).code(), Some(0), "{what}");
    let reader = thread::spawn(move || {
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).map(|_| rest)
    });
    thread::sleep(Duration::from_millis(300));
    assert!(
        !reader.is_finished(),
        "{what}: EOF while the grandchild still holds the pipe"
    );
    wait_until(LIMIT, || {
        cmdline(grandchild).is_some_and(|c| c == ["sleep", "30"])
    });
    kill_grandchild(grandchild);
    assert!(
        wait_until(LIMIT, || reader.is_finished()),
        "{what}: no EOF after the grandchild died"
    );
    assert_eq!(reader.join().unwrap().unwrap(), b"");
    r.stop_and_join(GRACE + RUN_WATCHDOG);
}

#[test]
fn grandchild_pidfd() {
    for backend in SpawnBackend::ALL {
        check(backend, ChildWatch::Pidfd);
    }
}

#[test]
fn grandchild_signal_mode() {
    for backend in SpawnBackend::ALL {
        check(backend, ChildWatch::Signal);
    }
}
