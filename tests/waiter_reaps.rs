//! A thread blocked in `ExecHandle::wait` reaps its own child (pidfd mode) instead of waking
//! the loop: the status, the resource usage and the trace are as if the loop had reaped, and
//! every case where the loop also has a say (a kill, stop(), the executor's drop, the loop
//! reaping first) still ends with one status and no zombie; on every backend and watch mode
//! (several threads waiting for one child: `contract_status.rs`, `wait_from_several_threads`).

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{ChildWatch, Command, Executor, SpawnBackend};

const LIMIT: Duration = Duration::from_secs(10);

per_backend!(
    many_threads_waiting_each_get_their_own_childs_status,
    wait_gives_the_status_the_usage_and_an_empty_trace,
    kill_from_another_thread_ends_a_wait,
    stop_ends_promptly_while_a_thread_waits,
    dropping_the_executor_kills_what_a_waiter_sleeps_on,
);

fn wait_gives_the_status_the_usage_and_an_empty_trace(b: SpawnBackend) {
    let r = start(b, Duration::from_secs(3));
    let ex = r.arc();
    let mut pids = Vec::new();
    for code in 0..20 {
        let h = ex
            .spawn(Command::new("/bin/sh").args(["-c", &format!("exit {code}")]))
            .expect("spawn");
        pids.push(h.pid());
        let status = h.wait();
        assert_eq!(status.code(), Some(code), "pid {}", h.pid());
        assert!(h.rusage().is_some(), "pid {}: no resource usage", h.pid());
        // Out of the trace by the time the wait returns.
        assert!(
            ex.running().is_empty(),
            "running() after wait: {:?}",
            ex.running()
        );
    }
    assert_no_zombie(&pids);
}

/// Waiters racing the loop (a child that exits before its caller reaches `wait` is the loop's
/// to reap): every status goes to the caller of its own child.
fn many_threads_waiting_each_get_their_own_childs_status(b: SpawnBackend) {
    const THREADS: i32 = 6;
    const EACH: i32 = 25;
    let r = start(b, Duration::from_secs(3));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let ex = r.arc();
            thread::spawn(move || {
                let mut pids = Vec::new();
                for i in 0..EACH {
                    let code = t * EACH + i;
                    let h = ex
                        .spawn(
                            Command::new("/bin/sh").args(["-c", &format!("exit {}", code % 256)]),
                        )
                        .expect("spawn");
                    pids.push(h.pid());
                    assert_eq!(h.wait().code(), Some(code % 256), "pid {}", h.pid());
                }
                pids
            })
        })
        .collect();
    let pids: Vec<u32> = join_all(workers, LIMIT * 3).into_iter().flatten().collect();
    assert_no_zombie(&pids);
    assert!(r.exec().running().is_empty(), "{:?}", r.exec().running());
}

fn kill_from_another_thread_ends_a_wait(b: SpawnBackend) {
    let r = start(b, Duration::from_secs(3));
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let waiter = {
        let h = h.clone();
        thread::spawn(move || h.wait())
    };
    // The waiter is asleep on the child by now (or soon; either way it must end).
    thread::sleep(Duration::from_millis(100));
    let (killed, took) = kill_bounded(&h, LIMIT);
    assert!(took < Duration::from_secs(2), "kill() took {took:?}");
    let waited = join_all(vec![waiter], LIMIT).remove(0);
    assert_eq!(signal(killed), Some(libc::SIGTERM), "{killed:?}");
    assert_eq!(waited, killed, "the waiter and kill() disagree");
    assert_no_zombie(&[h.pid()]);
    // The loop still serves, and its books hold nothing of the killed child.
    let again = spawn_ok(&r.arc(), &["true"], true);
    assert_eq!(code(again.wait()), Some(0));
    assert!(r.exec().running().is_empty());
}

fn stop_ends_promptly_while_a_thread_waits(b: SpawnBackend) {
    // A grace far longer than the bound below: run() must not wait for it, since SIGTERM ends
    // `sleep` at once; the loop must learn that the waiter reaped the child.
    let grace = Duration::from_secs(8);
    let mut r = start(b, grace);
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let waiter = {
        let h = h.clone();
        thread::spawn(move || h.wait())
    };
    thread::sleep(Duration::from_millis(100));
    let took = r.stop_and_join(LIMIT);
    assert!(
        took < Duration::from_secs(3),
        "run() returned {took:?} after stop(), with a grace of {grace:?}"
    );
    let status = join_all(vec![waiter], LIMIT).remove(0);
    assert_eq!(signal(status), Some(libc::SIGTERM), "{status:?}");
    assert_no_zombie(&[h.pid()]);
}

fn dropping_the_executor_kills_what_a_waiter_sleeps_on(b: SpawnBackend) {
    let ex = builder(b)
        .kill_grace(Duration::from_secs(3))
        .start()
        .expect("start");
    let h = ex.spawn(Command::new("sleep").arg("30")).expect("spawn");
    let pid = h.pid();
    let waiter = thread::spawn(move || h.wait());
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(ex);
    let status = join_all(vec![waiter], LIMIT).remove(0);
    assert_eq!(signal(status), Some(libc::SIGKILL), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the waiter got its status {:?} after the drop",
        started.elapsed()
    );
    assert_no_zombie(&[pid]);
}

/// The point of reaping on the waiter's thread: the loop sleeps through children that are
/// waited for. Counted as the loop thread's voluntary context switches (one per wake-up).
#[test]
fn a_waited_child_does_not_wake_the_loop() {
    let tid = Arc::new(AtomicI32::new(0));
    let exec = Arc::new(
        Executor::builder()
            .child_watch(ChildWatch::Pidfd)
            .build()
            .expect("build"),
    );
    let _r = {
        let tid = tid.clone();
        Running::spawn_with(exec.clone(), move || {
            // SAFETY: gettid has no preconditions.
            tid.store(unsafe { libc::gettid() }, Ordering::SeqCst)
        })
    };
    assert!(wait_until(LIMIT, || tid.load(Ordering::SeqCst) != 0));
    let tid = tid.load(Ordering::SeqCst);
    let switches = || {
        let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
            .expect("the loop thread's status");
        field_of(&text, "voluntary_ctxt_switches")
            .and_then(|v| v.parse::<u64>().ok())
            .expect("voluntary_ctxt_switches")
    };
    // Served once, so that its start-up is behind us.
    exec.round_trip().expect("round trip");
    // Children that live 10 ms: one that exits before its caller reaches `wait` is the loop's
    // to reap (its wake-up is then due), which other tests' load on the CPUs would make common
    // with children that exit at once. Before the waiter reaped, the loop woke for every child.
    const N: u64 = 100;
    let before = switches();
    for _ in 0..N {
        let h = exec
            .spawn(Command::new("sleep").arg("0.01"))
            .expect("spawn");
        assert_eq!(h.wait().code(), Some(0));
    }
    let woke = switches() - before;
    assert!(
        woke < N / 2,
        "the loop woke {woke} times for {N} children their callers waited for"
    );
}
