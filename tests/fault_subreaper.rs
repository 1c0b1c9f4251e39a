//! Fault: the host is a child subreaper (`PR_SET_CHILD_SUBREAPER`, as init systems and container
//! runtimes are), so the orphaned grandchild of an executor child becomes a child of this
//! process, one the executor never spawned.
//!
//! Expected, on every backend and both child-watch modes: the executor leaves that process alone
//! (it never waits on a pid it did not spawn, never `waitpid(-1)`): when it dies it stays a
//! zombie for the host to reap, and the host's own `waitpid` gets its real status. The
//! executor's own child gets its status as usual and nothing of the adoptee shows in
//! `running()`.
//!
//! Being a subreaper is process-wide, so it is the only test of this file.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::thread;
use std::time::Duration;

use common::{
    RUN_WATCHDOG, cmdline, is_child, proc_stat, spawn_ok, start_with_watch, wait_for, wait_until,
};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(10);

fn check(backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?}", backend.name());
    let mut r = start_with_watch(backend, watch, GRACE);

    let h = spawn_ok(
        &r.arc(),
        &["sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $!"],
        false,
    );
    let mut out = String::new();
    h.take_stdout().unwrap().read_to_string(&mut out).unwrap();
    let adoptee: u32 = out.trim().parse().expect("grandchild pid");
    assert_eq!(wait_for(&h, LIMIT).code(), Some(0), "{what}");
    assert!(
        wait_until(LIMIT, || is_child(adoptee)),
        "{what}: the orphan {adoptee} was not adopted by this subreaper"
    );
    assert!(wait_until(LIMIT, || cmdline(adoptee)
        .is_some_and(|c| c == ["sleep", "30"])));
    assert!(
        r.exec().running().is_empty(),
        "{what}: {:?}",
        r.exec().running()
    );

    // SAFETY: kill takes two integers; `adoptee` is our unreaped child (checked above).
    unsafe { libc::kill(adoptee as libc::pid_t, libc::SIGKILL) };
    // It must stay a zombie: nobody but us may reap it.
    assert!(
        wait_until(LIMIT, || proc_stat(adoptee)
            .is_some_and(|(state, _)| state == 'Z')),
        "{what}: the adoptee vanished: someone else reaped it"
    );
    thread::sleep(Duration::from_millis(200));
    assert!(
        proc_stat(adoptee).is_some_and(|(state, _)| state == 'Z'),
        "{what}: the executor reaped a process it did not spawn"
    );
    let mut raw = 0;
    // SAFETY: waitpid on our own child, writing into a local int.
    let got = unsafe { libc::waitpid(adoptee as libc::pid_t, &mut raw, 0) };
    assert_eq!(got, adoptee as libc::pid_t, "{what}: waitpid");
    assert_eq!(
        ExitStatus::from_raw(raw).signal(),
        Some(libc::SIGKILL),
        "{what}"
    );

    // The executor still works.
    let h = spawn_ok(&r.arc(), &["sh", "-c", "exit 5"], true);
    assert_eq!(wait_for(&h, LIMIT).code(), Some(5), "{what}");
    r.stop_and_join(GRACE + RUN_WATCHDOG);
}

#[test]
fn adopted_orphans_are_left_to_the_host() {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            check(backend, watch);
        }
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
}
