//! Heavy: 10,000 concurrent children (long sleepers) tracked by one executor, then `stop()`.
//!
//! Expected: every spawn succeeds once `raise_fd_limit()` made room for the pidfds; `running()`
//! lists all of them and /proc shows them as live children; `stop()` returns at once and `run()`
//! returns once all are reaped (SIGTERM to all at the same instant, so about as long as reaping
//! takes, not 10,000 graces); every handle has signal 15; no child of ours and not one extra
//! descriptor is left.
//!
//! About 7 s here (debug or release build: the time is the kernel's, ~1,800 spawns/s, then well
//! under a second from `stop()` to `run()` returning) and ~1.5 GB of RAM for the sleepers;
//! 20 s with a fuzzer busy on the other core. `NAPIX_CHILDREN` changes the count. It raises this
//! process's fd limit, so it is the only test of this file.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{RUN_WATCHDOG, Running, children, our_fds, wait_until};
use napix_executor::{ExecHandle, Executor, raise_fd_limit};

const CALLERS: usize = 4;

#[test]
fn ten_thousand_sleepers_then_stop() {
    let n: usize = std::env::var("NAPIX_CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let fd_limit = raise_fd_limit().expect("raise_fd_limit");
    assert!(
        fd_limit >= n as u64 + 64,
        "RLIMIT_NOFILE hard limit {fd_limit} is too low for {n} pidfds"
    );
    let fds_before = our_fds();
    let grace = Duration::from_secs(2);
    let ex = Executor::builder()
        .kill_grace(grace)
        .build()
        .expect("build executor");
    let mut r = Running::spawn(Arc::new(ex));

    let t = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let ex = r.arc();
            let count = n / CALLERS + usize::from(i < n % CALLERS);
            thread::spawn(move || -> Vec<ExecHandle> {
                (0..count)
                    .map(|k| {
                        ex.create_process(&["sleep", "600"], true)
                            .unwrap_or_else(|e| panic!("spawn {k} of caller {i}: {e:?} ({e})"))
                    })
                    .collect()
            })
        })
        .collect();
    let mut handles: Vec<ExecHandle> = Vec::with_capacity(n);
    for c in callers {
        let limit = Instant::now() + Duration::from_secs(600);
        while !c.is_finished() {
            assert!(Instant::now() < limit, "spawning {n} children hangs");
            thread::sleep(Duration::from_millis(50));
        }
        handles.extend(c.join().expect("caller panicked"));
    }
    let spawn_time = t.elapsed();
    assert_eq!(handles.len(), n);
    assert_eq!(
        r.exec().running().len(),
        n,
        "running() does not list them all"
    );
    let live = children()
        .iter()
        .filter(|c| c.1 != 'Z' && c.2 == "sleep")
        .count();
    assert_eq!(live, n, "live sleeping children in /proc");
    assert!(handles.iter().all(|h| h.poll().is_none()));

    let t = Instant::now();
    let took = r.stop_and_join(grace + RUN_WATCHDOG);
    eprintln!(
        "{n} children: spawned in {spawn_time:?} ({:.0}/s), stop() to run() returned {took:?}",
        n as f64 / spawn_time.as_secs_f64()
    );
    assert!(
        took < grace + Duration::from_secs(60),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(r.exec().running().is_empty());
    for h in &handles {
        assert_eq!(
            h.poll().and_then(|s| s.signal()),
            Some(libc::SIGTERM),
            "pid {}",
            h.pid()
        );
    }
    drop(handles);
    drop(r);
    assert!(
        wait_until(Duration::from_secs(10), || children().is_empty()),
        "children left: {}",
        children().len()
    );
    wait_until(Duration::from_secs(10), || our_fds() == fds_before);
    assert_eq!(our_fds(), fds_before, "descriptors left");
}
