//! No fd leaked by the executor and no zombie left, after hundreds of spawns
//! of every kind; dropped handles' processes are reaped; running out of fds
//! (EMFILE) is a ResourceExhausted error that leaves no process behind; on
//! every backend.
//!
//! These tests count this process's fds and children, so they run one at a
//! time (a static mutex) and no other test shares this binary.

#[macro_use]
mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use napix_executor::{Executor, SpawnBackend, SpawnError};

const LONG: Duration = Duration::from_secs(10);

per_backend!(
    no_fd_or_zombie_left_after_300_spawns,
    dropped_handle_is_still_reaped,
    emfile_is_resource_exhausted_and_leaves_no_process,
);

/// One spawn of kind `i % 5`: every combination of pipes or not, waited or
/// not, pipes taken or not.
fn spawn_kind(exec: &Arc<Executor>, i: usize) {
    match i % 5 {
        0 => {
            let h = spawn_ok(exec, &["/bin/true"], true);
            assert_eq!(code(wait_for(&h, LONG)), Some(0));
        }
        1 => {
            let h = spawn_ok(exec, &["/bin/echo", "hi"], false);
            let out = read_all(h.take_stdout().unwrap(), LONG);
            assert_eq!(out, b"hi\n");
            assert_eq!(code(wait_for(&h, LONG)), Some(0));
        }
        2 => {
            // Pipes never taken, handle dropped at once.
            drop(spawn_ok(exec, &["/bin/echo", "hi"], false));
        }
        3 => {
            // Discarded output, handle dropped at once.
            drop(spawn_ok(exec, &["/bin/true"], true));
        }
        _ => {
            // stdout taken, handle dropped, then the pipe read to EOF.
            let h = spawn_ok(exec, &["/bin/echo", "hi"], false);
            let out = h.take_stdout().unwrap();
            drop(h);
            assert_eq!(read_all(out, LONG), b"hi\n");
        }
    }
}

fn no_fd_or_zombie_left_after_300_spawns(b: SpawnBackend) {
    let _serial = serial();
    let before = fd_count();
    let exec = Arc::new(
        common::builder(b)
            .kill_grace(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let mut r = Running::spawn(Arc::clone(&exec));
    // Warm up (one of each kind), so that anything the executor opens lazily
    // once is open, then take the baseline.
    for i in 0..5 {
        spawn_kind(&exec, i);
    }
    assert!(wait_until(LONG, || exec.running().is_empty()));
    let baseline = fd_count();
    for i in 0..300 {
        spawn_kind(&exec, i);
    }
    assert!(
        wait_until(LONG, || exec.running().is_empty()),
        "{} processes still in running()",
        exec.running().len()
    );
    assert!(
        wait_until(Duration::from_secs(3), || fd_count() == baseline),
        "after 300 spawns the process has {} fds, {baseline} before them",
        fd_count()
    );
    assert!(
        wait_until(Duration::from_secs(3), || zombie_children().is_empty()),
        "zombie children while running: {:?}",
        zombie_children()
    );
    r.stop_and_join(LONG);
    drop(r);
    drop(exec);
    assert!(
        wait_until(Duration::from_secs(2), || fd_count() == before),
        "{} fds after the executor is gone, {before} before it was built",
        fd_count()
    );
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
    assert!(children().is_empty(), "children left: {:?}", children());
}

fn dropped_handle_is_still_reaped(b: SpawnBackend) {
    let _serial = serial();
    let r = start(b, Duration::from_millis(300));
    let h = spawn_ok(&r.arc(), &["sleep", "0.2"], true);
    let pid = h.pid();
    assert!(is_live_child(pid), "pid {pid} is not a live child");
    drop(h);
    thread::sleep(Duration::from_secs(1));
    assert!(
        wait_until(Duration::from_secs(2), || proc_stat(pid)
            .is_none_or(|(_, ppid)| ppid != our_pid())),
        "the dropped handle's process {pid} was not reaped: {:?}",
        proc_stat(pid)
    );
    assert!(
        r.exec().running().iter().all(|i| i.pid != pid),
        "dropped and exited process still in running()"
    );
    // With pipes whose read ends are never taken: the child writes into a
    // pipe nobody reads and must still end and be reaped.
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "echo x; sleep 0.2"], false);
    let pid = h.pid();
    drop(h);
    assert!(
        wait_until(Duration::from_secs(3), || proc_stat(pid)
            .is_none_or(|(_, ppid)| ppid != our_pid())),
        "process {pid} not reaped after its handle (with pipes) was dropped"
    );
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
}

/// Lowers the soft RLIMIT_NOFILE to the lowest free fd, so that any new fd
/// fails with EMFILE; restores it on drop.
struct NoFdsLeft(libc::rlimit);

impl NoFdsLeft {
    fn new() -> NoFdsLeft {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid rlimit to fill.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
        // SAFETY: F_DUPFD_CLOEXEC of fd 0 (open in a test process) returns
        // the lowest free fd, which is closed at once.
        let lowest = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
        assert!(lowest >= 0);
        // SAFETY: `lowest` was just opened here.
        unsafe { libc::close(lowest) };
        let low = libc::rlimit {
            rlim_cur: lowest as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        // SAFETY: `low` is a valid rlimit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        NoFdsLeft(old)
    }
}

impl Drop for NoFdsLeft {
    fn drop(&mut self) {
        // SAFETY: restores the limit read in `new`.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
    }
}

fn emfile_is_resource_exhausted_and_leaves_no_process(b: SpawnBackend) {
    let _serial = serial();
    let r = start(b, Duration::from_millis(300));
    let exec = r.arc();
    // Warm up: whatever the executor opens once is open.
    spawn_kind(&exec, 0);
    spawn_kind(&exec, 1);
    assert!(wait_until(LONG, || children().is_empty()));
    for discard in [true, false] {
        let limit = NoFdsLeft::new();
        let res = spawn(&exec, &["sleep", "30"], discard);
        drop(limit);
        match res {
            Err(SpawnError::ResourceExhausted { .. }) => {}
            Err(e) => panic!("discard={discard}: EMFILE gave {e:?}, not ResourceExhausted"),
            // Watching by SIGCHLD, a spawn without pipes needs no new fd at all (no pidfd), so it
            // legitimately succeeds with none left (the fork backend still needs its exec-error
            // pipe and fails). It must then be a normal, killable, reaped child.
            Ok(h) if discard && watch() == napix_executor::ChildWatch::Signal => {
                let status = bounded(LONG, "kill after EMFILE", move || h.kill());
                assert_eq!(
                    std::os::unix::process::ExitStatusExt::signal(&status),
                    Some(libc::SIGTERM)
                );
            }
            Ok(h) => {
                let pid = h.pid();
                h.terminate().ok();
                panic!("discard={discard}: spawned pid {pid} with no fd left")
            }
        }
        // A child spawned before the failure (e.g. when pidfd_open fails)
        // must be killed and reaped, not left running untracked.
        assert!(
            wait_until(Duration::from_secs(3), || children().is_empty()),
            "discard={discard}: children left after EMFILE: {:?}",
            children()
        );
        assert!(exec.running().is_empty(), "{:?}", exec.running());
        // The executor keeps serving.
        spawn_kind(&exec, 1);
        spawn_kind(&exec, 0);
    }
}
