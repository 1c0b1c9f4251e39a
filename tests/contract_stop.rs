//! stop(): returns at once, every child gets the escalation at the same time,
//! run() returns once every child is reaped, pending and later requests get
//! Stopped, handles outlive the executor; on every backend.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{SpawnBackend, SpawnError};

const LONG: Duration = Duration::from_secs(10);

per_backend!(
    stop_escalates_all_stubborn_children_at_once,
    stop_with_children_that_honour_term,
    stop_idle_executor_returns_promptly,
    stop_fails_pending_requests,
    create_after_stop_fails_at_once,
    handles_outlive_the_executor,
    send_signal_after_stop_kills_at_once,
);

fn stop_escalates_all_stubborn_children_at_once(b: SpawnBackend) {
    const N: usize = 20;
    let grace = Duration::from_millis(500);
    let mut r = start(b, grace);
    let handles: Vec<_> = (0..N).map(|_| spawn_stubborn(&r.arc())).collect();
    let pids: Vec<u32> = handles.iter().map(|h| h.pid()).collect();
    let took = r.stop_and_join(LONG);
    // One grace for all 20 (one per child would be 10 s).
    assert!(
        took < grace + Duration::from_secs(2),
        "run() returned {took:?} after stop() with {N} stubborn children, grace {grace:?}"
    );
    assert!(
        took >= grace - Duration::from_millis(20),
        "run() returned after {took:?}, before the grace ran out"
    );
    for h in &handles {
        let s = h
            .return_code()
            .unwrap_or_else(|| panic!("pid {}: no status after run() returned", h.pid()));
        assert_eq!(signal(s), Some(libc::SIGKILL), "pid {}: {s:?}", h.pid());
    }
    assert_no_zombie(&pids);
    assert!(r.exec().running().is_empty(), "running() after run()");
}

fn stop_with_children_that_honour_term(b: SpawnBackend) {
    let grace = Duration::from_secs(5);
    let mut r = start(b, grace);
    let handles: Vec<_> = (0..10)
        .map(|_| spawn_ok(&r.arc(), &["sleep", "30"], true))
        .collect();
    let took = r.stop_and_join(LONG);
    assert!(
        took < Duration::from_secs(2),
        "run() took {took:?} although every child dies of SIGTERM (grace {grace:?})"
    );
    for h in &handles {
        let s = h.return_code().expect("status after run() returned");
        assert_eq!(signal(s), Some(libc::SIGTERM), "{s:?}");
    }
    let pids: Vec<u32> = handles.iter().map(|h| h.pid()).collect();
    assert_no_zombie(&pids);
}

fn stop_idle_executor_returns_promptly(b: SpawnBackend) {
    let mut r = start(b, Duration::from_secs(3));
    // It served one process that is long gone.
    let h = spawn_ok(&r.arc(), &["/bin/true"], true);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    let took = r.stop_and_join(LONG);
    assert!(took < Duration::from_secs(1), "run() took {took:?}");
    // stop() again is harmless.
    let t = Instant::now();
    r.exec().stop();
    assert!(t.elapsed() < Duration::from_millis(100));
}

fn stop_fails_pending_requests(b: SpawnBackend) {
    // run() is not running: requests stay pending until stop().
    let exec = Arc::new(
        common::builder(b)
            .kill_grace(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    for _ in 0..4 {
        let exec = Arc::clone(&exec);
        let tx = tx.clone();
        thread::spawn(move || {
            let res = exec.create_process(&["/bin/true"], true);
            let _ = tx.send(res);
        });
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        rx.try_recv().is_err(),
        "create_process returned although run() is not running"
    );
    let t = Instant::now();
    exec.stop();
    assert!(t.elapsed() < Duration::from_millis(100), "stop() blocked");
    for i in 0..4 {
        let res = rx
            .recv_timeout(Duration::from_secs(3))
            .unwrap_or_else(|_| panic!("pending request {i} not answered after stop()"));
        assert!(
            matches!(res, Err(SpawnError::Stopped)),
            "pending request {i} got {:?}",
            res.map(|h| h.pid())
        );
    }
    // run() after stop() returns promptly.
    let mut r = Running::spawn(Arc::clone(&exec));
    let took = r.join(Duration::from_secs(5));
    assert!(
        took < Duration::from_secs(2),
        "run() after stop() took {took:?}"
    );
    // And later requests fail at once.
    let t = Instant::now();
    let res = spawn(&exec, &["/bin/true"], true);
    assert!(matches!(res, Err(SpawnError::Stopped)));
    assert!(t.elapsed() < Duration::from_millis(500));
}

fn create_after_stop_fails_at_once(b: SpawnBackend) {
    let mut r = start(b, Duration::from_millis(500));
    let exec = r.arc();
    // A stubborn child keeps run() alive for the grace: requests made while
    // run() is still going must fail too.
    let h = spawn_stubborn(&exec);
    exec.stop();
    let t = Instant::now();
    let res = spawn(&exec, &["/bin/true"], true);
    assert!(
        matches!(res, Err(SpawnError::Stopped)),
        "create_process after stop(): {:?}",
        res.map(|h| h.pid())
    );
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(!r.finished(), "run() returned before its child was reaped");
    r.join(LONG);
    assert_eq!(h.return_code().and_then(signal), Some(libc::SIGKILL));
    // After run() returned, too.
    let t = Instant::now();
    let res = spawn(&exec, &["/bin/true"], false);
    assert!(matches!(res, Err(SpawnError::Stopped)));
    assert!(t.elapsed() < Duration::from_millis(300));
}

fn handles_outlive_the_executor(b: SpawnBackend) {
    let mut r = start(b, Duration::from_millis(300));
    let done = spawn_ok(&r.arc(), &["/bin/sh", "-c", "exit 3"], true);
    assert_eq!(code(wait_for(&done, LONG)), Some(3));
    let live = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], false));
    let out = live.take_stdout().unwrap();
    r.stop_and_join(LONG);
    drop(r); // the last Arc<Executor> goes away
    // Everything answers at once from the stored state.
    let t = Instant::now();
    assert_eq!(done.return_code().and_then(code), Some(3));
    assert_eq!(done.poll().and_then(code), Some(3));
    let s = live
        .return_code()
        .expect("status of a child killed by stop()");
    assert_eq!(signal(s), Some(libc::SIGTERM));
    assert_eq!(live.wait_timeout(Duration::from_secs(5)), Some(s));
    let (k, _) = kill_bounded(&live, Duration::from_secs(5));
    assert_eq!(k, s);
    let e = live
        .terminate()
        .expect_err("terminate() after the executor is gone");
    assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    let e = live.send_signal(libc::SIGUSR1).expect_err("send_signal()");
    assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    assert!(t.elapsed() < Duration::from_secs(1));
    // The pipe reaches EOF: the child is gone and nobody else holds it.
    assert!(read_all(out, Duration::from_secs(5)).is_empty());
}

/// A second Ctrl-C: after `stop()`, while the grace of its escalation runs, `send_signal`
/// still reaches a child that is not reaped yet (in Signal mode too, where the loop takes no
/// more messages by then), so a SIGKILL ends a child that ignores SIGTERM at once.
fn send_signal_after_stop_kills_at_once(b: SpawnBackend) {
    // Far beyond every bound below: only the SIGKILL we send can end the child in time.
    let grace = Duration::from_secs(60);
    let mut r = start(b, grace);
    let h = spawn_stubborn(&r.arc());
    r.exec().stop();
    // The escalation is under way: SIGTERM (ignored) went out, or is about to.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        h.poll(),
        None,
        "a SIGTERM-ignoring child ended before SIGKILL"
    );
    h.send_signal(libc::SIGKILL)
        .expect("SIGKILL after stop() to an unreaped child");
    assert_eq!(signal(wait_for(&h, LONG)), Some(libc::SIGKILL));
    r.join(LONG);
    let e = h
        .send_signal(libc::SIGKILL)
        .expect_err("a signal after the reap");
    assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "{e}");
}
