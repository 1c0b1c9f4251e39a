//! Resource usage at the reap and the non-blocking kill, on every backend and both child-watch
//! modes.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::SpawnBackend;

const BUSY: [&str; 3] = [
    "/bin/sh",
    "-c",
    "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
];

fn rusage_of_a_busy_shell_shows_cpu_time_and_memory(backend: SpawnBackend) {
    let r = start(backend, Duration::from_secs(1));
    let h = spawn_ok(&r.arc(), &BUSY, true);
    assert_eq!(h.rusage(), None, "no usage before the reap");
    let status = wait_for(&h, Duration::from_secs(60));
    assert!(status.success());
    let usage = h.rusage().expect("usage after the reap");
    eprintln!("{backend:?} {:?}: {usage:?}", watch());
    assert!(
        usage.user_time + usage.system_time > Duration::ZERO,
        "CPU time {usage:?}"
    );
    assert!(usage.max_rss_bytes > 1024 * 1024, "max RSS {usage:?}");
    assert!(usage.minor_faults > 0, "faults {usage:?}");
}

fn rusage_is_there_for_a_killed_child_too(backend: SpawnBackend) {
    let r = start(backend, Duration::from_secs(1));
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let (status, _) = kill_bounded(&h, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let usage = h.rusage().expect("usage of a killed child");
    assert!(usage.max_rss_bytes > 0);
}

fn start_kill_returns_at_once_and_the_escalation_runs(backend: SpawnBackend) {
    let grace = Duration::from_millis(300);
    let r = start(backend, grace);
    let exec = r.arc();
    // Ignores SIGTERM: only the SIGKILL after the grace ends it.
    let h = spawn_stubborn(&exec);
    let t = Instant::now();
    h.start_kill().expect("start_kill");
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "start_kill blocked {took:?}"
    );
    assert_eq!(h.poll(), None, "still in its grace");
    h.start_kill().expect("a second start_kill");
    let status = wait_for(&h, Duration::from_secs(10));
    let total = t.elapsed();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(total >= grace, "SIGKILL came before the grace: {total:?}");
    assert!(!h.timed_out(), "a kill asked for is not a timeout");
    h.start_kill().expect("start_kill after the exit is Ok");
}

per_backend!(
    rusage_of_a_busy_shell_shows_cpu_time_and_memory,
    rusage_is_there_for_a_killed_child_too,
    start_kill_returns_at_once_and_the_escalation_runs,
);
