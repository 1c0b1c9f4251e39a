//! Fault: a child that ignores SIGTERM.
//!
//! Expected on every backend and both child-watch modes: `terminate()` succeeds but the child
//! keeps running; `kill()` escalates to SIGKILL once the grace is over and returns signal 9 (not
//! before the grace, not much after); `stop()` does the same for every such child at once, and
//! `run()` returns after about one grace however many there are.

mod fault_support;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_support::{Running, ignores, kill_within, wait_until};
use napix_executor::{ChildWatch, Executor, SpawnBackend};

const GRACE: Duration = Duration::from_millis(300);
/// Slack for scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

/// The shell ignores TERM and then execs `sleep`, which keeps the disposition.
const STUBBORN: [&str; 3] = ["/bin/sh", "-c", "trap '' TERM; exec sleep 30"];

fn start(backend: SpawnBackend, watch: ChildWatch) -> Running {
    let ex = Executor::builder()
        .backend(backend)
        .kill_grace(GRACE)
        .child_watch(watch)
        .build()
        .expect("build executor");
    Running::with(Arc::new(ex), GRACE)
}

fn stubborn(r: &Running) -> Arc<napix_executor::ExecHandle> {
    let h = r.spawn(&STUBBORN, true);
    let pid = h.pid();
    assert!(
        wait_until(Duration::from_secs(5), || ignores(pid, libc::SIGTERM)),
        "pid {pid} never ignored SIGTERM"
    );
    Arc::new(h)
}

fn check(backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?}", backend.name());
    let mut r = start(backend, watch);

    // SIGTERM alone does nothing.
    let h = stubborn(&r);
    h.terminate().expect("terminate");
    assert!(
        h.wait_timeout(Duration::from_millis(200)).is_none(),
        "{what}: a child that ignores SIGTERM died of it"
    );

    // kill(): SIGKILL after the grace.
    let t = Instant::now();
    let status = kill_within(&h, GRACE + SLACK);
    let took = t.elapsed();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status:?}");
    assert!(!status.core_dumped());
    assert!(
        took >= GRACE,
        "{what}: SIGKILL after {took:?}, before the grace"
    );
    assert!(took < GRACE + SLACK, "{what}: kill() took {took:?}");
    assert!(r.ex.running().is_empty(), "{what}: still tracked");
    assert_eq!(
        h.send_signal(0).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );

    // stop() with five of them (and one that does die of SIGTERM): all at once.
    let stubborn: Vec<_> = (0..5).map(|_| stubborn(&r)).collect();
    let meek = r.spawn(&["sleep", "30"], true);
    let took = r.stop_and_join();
    assert!(
        took >= GRACE && took < GRACE + SLACK,
        "{what}: run() returned {took:?} after stop() (grace {GRACE:?})"
    );
    for h in &stubborn {
        assert_eq!(
            h.poll().and_then(|s| s.signal()),
            Some(libc::SIGKILL),
            "{what}"
        );
    }
    assert_eq!(
        meek.poll().and_then(|s| s.signal()),
        Some(libc::SIGTERM),
        "{what}"
    );
}

#[test]
fn sigterm_ignored_pidfd() {
    for backend in SpawnBackend::ALL {
        check(backend, ChildWatch::Pidfd);
    }
}

#[test]
fn sigterm_ignored_signal_mode() {
    for backend in SpawnBackend::ALL {
        check(backend, ChildWatch::Signal);
    }
}
