//! Fault: a child killed from outside (by pid, not through the handle), and one stopped and
//! continued from outside.
//!
//! Expected on every backend and both child-watch modes: the status is the signal that killed it
//! (9, or 15 for SIGTERM), no core dump, not "lost"; the table forgets it; signalling through the
//! handle afterwards is ESRCH; a child stopped and continued from outside is not mistaken for an
//! exited one and still ends with its own exit code.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{RUN_WATCHDOG, proc_stat, spawn_ok, start_with_watch, wait_for, wait_until};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(10);

fn kill_pid(pid: u32, sig: i32) {
    // SAFETY: kill takes two integers; the pid is our unreaped child (it has no status yet).
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

fn check(backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?}", backend.name());
    let mut r = start_with_watch(backend, watch, GRACE);

    for sig in [libc::SIGKILL, libc::SIGTERM] {
        let h = spawn_ok(&r.arc(), &["sleep", "30"], false);
        let pid = h.pid();
        assert!(r.exec().running().iter().any(|p| p.pid == pid));
        kill_pid(pid, sig);
        let status = wait_for(&h, LIMIT);
        assert_eq!(status.signal(), Some(sig), "{what}: {status:?}");
        assert!(
            !status.core_dumped() && !h.status_lost(),
            "{what}: {status:?}"
        );
        assert!(status.code().is_none());
        assert!(
            !r.exec().running().iter().any(|p| p.pid == pid),
            "{what}: pid {pid} still in running()"
        );
        assert_eq!(
            h.send_signal(libc::SIGTERM).unwrap_err().raw_os_error(),
            Some(libc::ESRCH),
            "{what}"
        );
        // kill() after the fact returns the same status at once.
        assert_eq!(h.kill(), status);
    }

    // Stopped and continued from outside: still running, then its own exit code.
    let h = spawn_ok(&r.arc(), &["sh", "-c", "sleep 0.3; exit 7"], true);
    let pid = h.pid();
    kill_pid(pid, libc::SIGSTOP);
    assert!(wait_until(LIMIT, || proc_stat(pid)
        .is_some_and(|(state, _)| state == 'T')));
    assert!(
        h.wait_timeout(Duration::from_millis(500)).is_none(),
        "{what}: a stopped child got a status"
    );
    kill_pid(pid, libc::SIGCONT);
    let status = wait_for(&h, LIMIT);
    assert_eq!(status.code(), Some(7), "{what}: {status:?}");
    r.stop_and_join(GRACE + RUN_WATCHDOG);
}

#[test]
fn killed_from_outside_pidfd() {
    for backend in SpawnBackend::ALL {
        check(backend, ChildWatch::Pidfd);
    }
}

#[test]
fn killed_from_outside_signal_mode() {
    for backend in SpawnBackend::ALL {
        check(backend, ChildWatch::Signal);
    }
}
