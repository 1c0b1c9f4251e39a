//! Fault: a child that ignores SIGTERM.
//!
//! Expected on every backend and both child-watch modes: `terminate()` succeeds but the child
//! keeps running; `kill()` escalates to SIGKILL once the grace is over and returns signal 9 (not
//! before the grace, not much after); `stop()` does the same for every such child at once, and
//! `run()` returns after about one grace however many there are.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{RUN_WATCHDOG, kill_bounded, spawn_ok, spawn_stubborn, start_with_watch};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(300);
/// Slack for scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

fn check(backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?}", backend.name());
    let mut r = start_with_watch(backend, watch, GRACE);

    // SIGTERM alone does nothing.
    let h = Arc::new(spawn_stubborn(&r.arc()));
    h.terminate().expect("terminate");
    assert!(
        h.wait_timeout(Duration::from_millis(200)).is_none(),
        "{what}: a child that ignores SIGTERM died of it"
    );

    // kill(): SIGKILL after the grace.
    let t = Instant::now();
    let (status, _) = kill_bounded(&h, GRACE + SLACK);
    let took = t.elapsed();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status:?}");
    assert!(!status.core_dumped());
    assert!(
        took >= GRACE,
        "{what}: SIGKILL after {took:?}, before the grace"
    );
    assert!(took < GRACE + SLACK, "{what}: kill() took {took:?}");
    assert!(r.exec().running().is_empty(), "{what}: still tracked");
    assert_eq!(
        h.send_signal(0).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );

    // stop() with five of them (and one that does die of SIGTERM): all at once.
    let stubborn: Vec<_> = (0..5).map(|_| Arc::new(spawn_stubborn(&r.arc()))).collect();
    let meek = spawn_ok(&r.arc(), &["sleep", "30"], true);
    let took = r.stop_and_join(GRACE + RUN_WATCHDOG);
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
