//! Fault: the host set SIGCHLD to SIG_IGN before the executor started, so the kernel reaps
//! children by itself (no zombie, `waitid` says ECHILD).
//!
//! What the executor reports then (documented in the crate docs, "Caveats"): with pidfds the exit
//! is still seen (the pidfd turns readable) but the status is gone, so every child ends with
//! **exit code 255 and `status_lost() == true`**, whether it exited, was killed or was
//! signalled. Checked here for every backend: no hang (every status arrives, `kill()` returns,
//! `stop()` lets `run()` return), no panic, no busy loop (the process uses almost no CPU while it
//! waits), exec failures are still errors, quick children still give handles.
//!
//! With `ChildWatch::Signal` the executor leaves SIG_IGN alone (a handler would change it for the
//! host's own children too) and looks at every child every 10 ms: statuses are lost the same way,
//! or real where a handler was installed earlier in the process. Both are accepted, and the
//! disposition the host finds afterwards is printed. (SIG_IGN set *after* a handler was
//! installed: see `fault_sigchld_reignored.rs` and `fault_sigchld_displaced.rs`.) PosixSpawn in
//! Signal mode is refused while SIGCHLD is ignored (issue 21: no pidfd with its clone).
//!
//! It changes a process-wide disposition, so it is the only test of this file.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    RUN_WATCHDOG, STUBBORN, bounded, cpu_time, ignores, kill_bounded, spawn, spawn_ok,
    start_with_watch, wait_for, wait_until,
};
use napix_executor::direct::Prepared;
use napix_executor::{ChildWatch, SpawnBackend, SpawnError};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(10);

/// Sets SIGCHLD's disposition; restores the previous one when dropped.
struct SigchldDisposition {
    old: libc::sighandler_t,
}

impl SigchldDisposition {
    fn set(handler: libc::sighandler_t) -> SigchldDisposition {
        // SAFETY: signal() with SIG_IGN/SIG_DFL installs no Rust code as a handler.
        let old = unsafe { libc::signal(libc::SIGCHLD, handler) };
        assert_ne!(old, libc::SIG_ERR);
        SigchldDisposition { old }
    }
}

impl Drop for SigchldDisposition {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition signal() returned.
        unsafe { libc::signal(libc::SIGCHLD, self.old) };
    }
}

fn current_disposition() -> libc::sighandler_t {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old = std::mem::zeroed::<libc::sigaction>();
        libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old);
        old.sa_sigaction
    }
}

fn lost(s: ExitStatus) -> bool {
    s.code() == Some(255)
}

#[test]
fn sigchld_ignored_statuses_are_lost_but_nothing_hangs() {
    let _ign = SigchldDisposition::set(libc::SIG_IGN);

    // The direct API, too, returns instead of waiting forever: the kernel took the status.
    let direct = Prepared::new(&["/bin/true"]).unwrap();
    for backend in SpawnBackend::ALL {
        let child = direct.spawn(backend).expect("direct spawn");
        let waited = bounded(LIMIT, "DirectChild::wait", move || child.wait());
        match waited {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ECHILD), "{e}"),
            Ok(s) => panic!("DirectChild::wait got a status {s:?} the kernel should have reaped"),
        }
    }

    for backend in SpawnBackend::ALL {
        pidfd_mode(backend);
    }
    // The first Signal-mode executor installs signal-hook's SIGCHLD handler over SIG_IGN; it
    // stays installed (signal-hook never uninstalls), so the later ones find it in place.
    assert_eq!(current_disposition(), libc::SIG_IGN);
    for backend in SpawnBackend::ALL {
        signal_mode(backend);
        let after = current_disposition();
        eprintln!(
            "{}: SIGCHLD disposition after a Signal-mode executor: {}",
            backend.name(),
            match after {
                libc::SIG_IGN => "SIG_IGN".to_string(),
                libc::SIG_DFL => "SIG_DFL".to_string(),
                other => format!("a handler at {other:#x}"),
            }
        );
    }
}

fn pidfd_mode(backend: SpawnBackend) {
    let name = backend.name();
    let mut r = start_with_watch(backend, ChildWatch::Pidfd, GRACE);

    // A child that exits by itself: exit code 3 is lost, 255 reported.
    let h = spawn_ok(&r.arc(), &["sh", "-c", "exit 3"], true);
    let s = wait_for(&h, LIMIT);
    assert!(lost(s) && h.status_lost(), "{name}: exit 3 gave {s:?}");
    assert_eq!(
        h.send_signal(0).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );

    // The same through wait(), where the blocked caller reaps: the kernel beat it to the status.
    let h = spawn_ok(&r.arc(), &["sh", "-c", "exit 4"], true);
    let (s, was_lost) = bounded(LIMIT, "ExecHandle::wait", move || {
        let s = h.wait();
        (s, h.status_lost())
    });
    assert!(lost(s) && was_lost, "{name}: exit 4 waited gave {s:?}");
    assert!(
        r.exec().running().is_empty(),
        "{name}: a lost child still tracked"
    );

    // kill() returns (SIGTERM is lost the same way).
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let (s, _) = kill_bounded(&h, GRACE + LIMIT);
    assert!(lost(s) && h.status_lost(), "{name}: kill gave {s:?}");

    // A child that ignores SIGTERM still gets SIGKILL after the grace.
    let h = Arc::new(spawn_ok(&r.arc(), &STUBBORN, true));
    assert!(wait_until(LIMIT, || ignores(h.pid(), libc::SIGTERM)));
    let t = Instant::now();
    let (s, _) = kill_bounded(&h, GRACE + LIMIT);
    assert!(
        lost(s) && h.status_lost(),
        "{name}: escalated kill gave {s:?}"
    );
    assert!(
        t.elapsed() >= GRACE,
        "{name}: SIGKILL came before the grace"
    );

    // Output through pipes still works; exec failures are still errors.
    let h = spawn_ok(&r.arc(), &["echo", "piped"], false);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut h.take_stdout().unwrap(), &mut out).unwrap();
    assert_eq!(out, "piped\n");
    assert!(h.status_lost() || h.wait_timeout(LIMIT).is_some_and(lost));
    match spawn(&r.arc(), &["/nonexistent/prog"], true) {
        Err(SpawnError::NotFound { .. }) => {}
        other => panic!("{name}: exec failure gave {other:?}"),
    }

    // Children that exit at once: each create must still give a handle (the child may be gone
    // and reaped by the kernel before the executor looked at it).
    let mut results = Vec::new();
    for _ in 0..30 {
        results.push(spawn(&r.arc(), &["/bin/true"], true));
    }
    for res in &results {
        match res {
            Ok(h) => {
                let s = wait_for(h, LIMIT);
                assert!(lost(s) && h.status_lost(), "{name}: true gave {s:?}");
            }
            Err(e) => panic!("{name}: create_process of a quick child failed: {e:?} ({e})"),
        }
    }
    drop(results);

    // No busy loop: nothing runs, so the process uses (almost) no CPU.
    let cpu = cpu_time();
    std::thread::sleep(Duration::from_millis(300));
    let used = cpu_time() - cpu;
    assert!(
        used < Duration::from_millis(100),
        "{name}: idle executor used {used:?} of CPU in 300 ms"
    );

    // stop() with a running child: run() returns once it is gone.
    let sleeper = spawn_ok(&r.arc(), &["sleep", "30"], true);
    r.stop_and_join(GRACE + RUN_WATCHDOG);
    assert!(sleeper.poll().is_some_and(lost) && sleeper.status_lost());
    assert!(r.exec().running().is_empty());
}

fn signal_mode(backend: SpawnBackend) {
    let name = backend.name();
    let mut r = start_with_watch(backend, ChildWatch::Signal, GRACE);
    if backend == SpawnBackend::PosixSpawn && current_disposition() == libc::SIG_IGN {
        // No pidfd with the clone: its child could not be named for sure (issue 21).
        let e = spawn(&r.arc(), &["sh", "-c", "exit 3"], true).expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{name}: {e}");
        r.stop_and_join(GRACE + RUN_WATCHDOG);
        return;
    }
    let h = spawn_ok(&r.arc(), &["sh", "-c", "exit 3"], true);
    let s = wait_for(&h, LIMIT);
    // With its own handler installed the kernel no longer reaps by itself: real statuses.
    eprintln!(
        "{name} Signal mode under SIG_IGN: exit 3 reported as {s:?}, lost={}",
        h.status_lost()
    );
    assert!(
        s.code() == Some(3) || (lost(s) && h.status_lost()),
        "{name}: {s:?}"
    );
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let (s, _) = kill_bounded(&h, GRACE + LIMIT);
    assert!(
        s.signal() == Some(libc::SIGTERM) || (lost(s) && h.status_lost()),
        "{name}: {s:?}"
    );
    let cpu = cpu_time();
    std::thread::sleep(Duration::from_millis(300));
    let used = cpu_time() - cpu;
    assert!(
        used < Duration::from_millis(100),
        "{name}: idle executor used {used:?} of CPU in 300 ms"
    );
    r.stop_and_join(GRACE + RUN_WATCHDOG);
}
