//! The loop itself: an idle executor sleeps (no wake-up, no CPU) even while
//! it tracks a child; it never reaps children the host spawned itself (no
//! `waitpid(-1)`); a host that sets SIGCHLD to SIG_IGN (the kernel reaps by
//! itself) gets statuses and no busy loop; on every backend.
//!
//! SIGCHLD's disposition is process-wide, so the tests of this binary run one
//! at a time (a static mutex).

#[macro_use]
mod common;

use std::fs;
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use napix_executor::SpawnBackend;

const LONG: Duration = Duration::from_secs(10);

per_backend!(
    idle_loop_does_not_wake,
    host_children_are_not_reaped_by_the_executor,
    sigchld_ignored_by_host_no_spin,
);

/// Starts an executor and returns it with the tid of its loop thread.
fn start_traced(b: SpawnBackend) -> (Running, i32) {
    let exec = common::builder(b)
        .kill_grace(Duration::from_millis(300))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let r = Running::spawn_with(Arc::new(exec), move || {
        // SAFETY: gettid has no preconditions.
        let _ = tx.send(unsafe { libc::gettid() });
    });
    let tid = rx.recv_timeout(LONG).expect("loop thread started");
    (r, tid)
}

/// (context switches, CPU clock ticks) of thread `tid` of this process.
fn thread_activity(tid: i32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let switches: u64 = ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .map(|f| field_of(&status, f).unwrap().parse::<u64>().unwrap())
        .sum();
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat; `fields` starts at 3.
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (switches, ticks)
}

fn idle_loop_does_not_wake(b: SpawnBackend) {
    let _serial = serial();
    let (r, tid) = start_traced(b);
    let done = spawn_ok(&r.arc(), &["/bin/true"], false);
    assert_eq!(code(wait_for(&done, LONG)), Some(0));
    // A child that stays: its pidfd is in the poll set.
    let live = spawn_ok(&r.arc(), &["sleep", "30"], true);
    thread::sleep(Duration::from_millis(300));
    let (s1, t1) = thread_activity(tid);
    thread::sleep(Duration::from_millis(1200));
    let (s2, t2) = thread_activity(tid);
    // Signal mode looks by itself while it tracks children, so that a SIGCHLD another thread
    // takes only delays an exit: 10 looks and one look at every child a second, documented.
    let allowed = match watch() {
        napix_executor::ChildWatch::Signal => 16,
        _ => 0,
    };
    assert!(
        s2 - s1 <= allowed,
        "the loop thread woke {} times in 1.2 s with one child tracked (allowed {allowed})",
        s2 - s1
    );
    assert!(t2 - t1 <= 2, "the idle loop used {} ticks of CPU", t2 - t1);
    // And it still answers at once.
    live.terminate().unwrap();
    assert_eq!(signal(wait_for(&live, LONG)), Some(libc::SIGTERM));
    // With no child tracked it sleeps without a timeout, in every mode.
    thread::sleep(Duration::from_millis(300));
    let (s1, _) = thread_activity(tid);
    thread::sleep(Duration::from_millis(1200));
    let (s2, _) = thread_activity(tid);
    assert_eq!(
        s2 - s1,
        0,
        "the idle loop thread woke {} times in 1.2 s",
        s2 - s1
    );
}

fn host_children_are_not_reaped_by_the_executor(b: SpawnBackend) {
    let _serial = serial();
    let (r, _) = start_traced(b);
    // One host child that is already a zombie while the executor reaps its
    // own, and one that exits meanwhile.
    let mut early = Command::new("/bin/sh")
        .args(["-c", "exit 6"])
        .spawn()
        .unwrap();
    let mut late = Command::new("/bin/sh")
        .args(["-c", "sleep 0.3; exit 5"])
        .spawn()
        .unwrap();
    assert!(
        wait_until(LONG, || is_zombie_child(early.id())),
        "the host's child {} did not become a zombie waiting for the host",
        early.id()
    );
    for i in 0..20 {
        let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "exit 1"], i % 2 == 0);
        assert_eq!(code(wait_for(&h, LONG)), Some(1));
    }
    let h = spawn_ok(&r.arc(), &["sleep", "0.5"], true);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    let early = early
        .wait()
        .expect("the host's own child was reaped by someone else");
    assert_eq!(early.code(), Some(6));
    let late = late
        .wait()
        .expect("the host's own child was reaped by someone else");
    assert_eq!(late.code(), Some(5));
}

/// Sets SIGCHLD to SIG_IGN for the process; restores the previous action on drop (which may be
/// the SIGCHLD handler an earlier `ChildWatch::Signal` executor installed through signal-hook:
/// resetting it to SIG_DFL instead would displace it for the rest of this test process).
struct IgnoreSigchld(libc::sigaction);

impl IgnoreSigchld {
    fn new() -> IgnoreSigchld {
        // SAFETY: changing SIGCHLD's disposition has no memory-safety requirement; the tests of
        // this binary are serialized; `old` is a valid sigaction to fill.
        unsafe {
            let mut ignore: libc::sigaction = std::mem::zeroed();
            ignore.sa_sigaction = libc::SIG_IGN;
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGCHLD, &ignore, &mut old), 0);
            IgnoreSigchld(old)
        }
    }
}

impl Drop for IgnoreSigchld {
    fn drop(&mut self) {
        // SAFETY: restores the action saved in `new`.
        unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
    }
}

fn sigchld_ignored_by_host_no_spin(b: SpawnBackend) {
    let _serial = serial();
    let ignore = IgnoreSigchld::new();
    let (mut r, tid) = start_traced(b);
    if b == SpawnBackend::PosixSpawn && common::watch() == napix_executor::ChildWatch::Signal {
        // No pidfd with the clone: its child could not be named for sure (issue 21).
        let e = spawn(&r.arc(), &["/bin/true"], true).expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
        r.stop_and_join(LONG);
        return;
    }
    // Every kind of end still gives a status (the real one may be lost).
    // A child that exits at once may be gone (reaped by the kernel) before
    // the executor looks at it: still a spawned process, not an error.
    for i in 0..20 {
        match spawn(&r.arc(), &["/bin/true"], i % 2 == 0) {
            Ok(h) => assert!(h.wait_timeout(LONG).is_some(), "no status for /bin/true"),
            Err(e) => panic!(
                "spawn {i}: create_process failed for a program that ran \
                 (SIGCHLD ignored): {e} ({e:?})"
            ),
        }
    }
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "sleep 0.2; exit 3"], false);
    assert!(h.wait_timeout(LONG).is_some(), "no status for a sleeper");
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    kill_bounded(&h, LONG);
    assert!(
        wait_until(Duration::from_secs(2), || r.exec().running().is_empty()),
        "running() keeps children the kernel reaped: {:?}",
        r.exec().running()
    );
    // No busy loop once they are gone (after the kill's grace, whose timer
    // may still fire once).
    thread::sleep(Duration::from_millis(600));
    let (s1, t1) = thread_activity(tid);
    thread::sleep(Duration::from_millis(1200));
    let (s2, t2) = thread_activity(tid);
    assert!(
        t2 - t1 <= 2,
        "the loop spins with SIGCHLD ignored: {} CPU ticks in 1.2 s",
        t2 - t1
    );
    assert_eq!(s2 - s1, 0, "the loop woke {} times in 1.2 s", s2 - s1);
    // It still serves, and stops.
    let h = spawn_ok(&r.arc(), &["/bin/true"], true);
    assert!(h.wait_timeout(LONG).is_some());
    r.stop_and_join(LONG);
    drop(ignore);
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
}
