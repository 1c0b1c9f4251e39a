//! Fault: the process limit (RLIMIT_NPROC) is reached, so `clone`/`fork`/`posix_spawn` fail
//! with EAGAIN.
//!
//! Root is exempt from RLIMIT_NPROC: the kernel skips the check for the initial user namespace's
//! root user and for holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN. Part 1 shows what happens as
//! the user the test runs as (root in CI: the limit does not bite, the spawn succeeds; both
//! outcomes are accepted and printed). Part 2 makes it bite: when running as root the process
//! drops to `nobody` (65534, all capabilities gone; irreversible, hence a file of its own), sets
//! RLIMIT_NPROC a few tasks above what that user runs now, and spawns sleepers until the kernel
//! says no.
//!
//! Expected, for every backend and both child-watch modes: the refused spawn is
//! `SpawnError::ResourceExhausted { stage: Spawn, errno: EAGAIN }`; nothing half-registered
//! (`running()` holds exactly the sleepers that started, no untracked child of ours exists); once
//! a sleeper is gone the same executor spawns again; `stop()` still ends everything.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{RUN_WATCHDOG, Running, children, start_with_watch};
use napix_executor::{ChildWatch, ExecHandle, SpawnBackend, SpawnError, SpawnStage};

const NOBODY: libc::uid_t = 65534;
const HEADROOM: u64 = 3;
const GRACE: Duration = Duration::from_millis(100);

fn set_nproc(soft: u64) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write plain structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NPROC, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: soft.min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_NPROC, &new),
            0,
            "setrlimit(RLIMIT_NPROC): {}",
            std::io::Error::last_os_error()
        );
    }
    old
}

fn restore_nproc(old: libc::rlimit) {
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &old) };
}

/// Tasks (threads included, as RLIMIT_NPROC counts them) whose real uid is `uid`.
fn tasks_of(uid: libc::uid_t) -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        if name.to_str().and_then(|s| s.parse::<u32>().ok()).is_none() {
            continue;
        }
        let Ok(text) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            n += field("Threads:").unwrap_or(1);
        }
    }
    n
}

/// Drops every privilege: real, effective and saved ids become nobody's. Returns false when this
/// process may not do that (not root).
fn become_nobody() -> bool {
    // SAFETY: plain id-changing syscalls (glibc applies them to every thread); prctl with integer
    // arguments.
    unsafe {
        if libc::geteuid() != 0 {
            return false;
        }
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setresgid(NOBODY, NOBODY, NOBODY), 0, "setresgid");
        assert_eq!(libc::setresuid(NOBODY, NOBODY, NOBODY), 0, "setresuid");
        // Changing uid cleared "dumpable", which makes /proc/self root's; we read it.
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    true
}

#[test]
fn nproc_exhaustion_is_an_error_and_the_executor_keeps_serving() {
    // Part 1: as whoever we are.
    // SAFETY: getuid takes nothing.
    let uid = unsafe { libc::getuid() };
    {
        let mut r = start_with_watch(SpawnBackend::Vfork, ChildWatch::Pidfd, GRACE);
        let old = set_nproc(1);
        let res = r.exec().create_process(&["/bin/true"], true);
        restore_nproc(old);
        eprintln!(
            "as uid {uid} with RLIMIT_NPROC=1: {:?}",
            res.as_ref().map(|h| h.pid())
        );
        match res {
            Ok(h) => {
                assert_eq!(uid, 0, "the limit did not bite for a non-root user");
                assert_eq!(
                    h.wait_timeout(Duration::from_secs(10))
                        .and_then(|s| s.code()),
                    Some(0)
                );
            }
            Err(SpawnError::ResourceExhausted { errno, stage, .. }) => {
                assert_eq!((stage, errno), (SpawnStage::Spawn, libc::EAGAIN));
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        r.stop_and_join(GRACE + RUN_WATCHDOG);
    }

    // Part 2: make it bite.
    let dropped = become_nobody();
    // SAFETY: getuid takes nothing.
    let uid = unsafe { libc::getuid() };
    eprintln!("part 2 as uid {uid} (dropped from root: {dropped})");
    let mut runs: Vec<(SpawnBackend, ChildWatch, Running)> = Vec::new();
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            runs.push((backend, watch, start_with_watch(backend, watch, GRACE)));
        }
    }
    // Every thread exists now; the limit leaves room for HEADROOM more tasks of this user.
    let now = tasks_of(uid);
    let old = set_nproc(now + HEADROOM);
    eprintln!(
        "{now} tasks of uid {uid}; RLIMIT_NPROC set to {}",
        now + HEADROOM
    );
    let mut failure = None;
    for (backend, watch, r) in &runs {
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            exhaust(r, *backend, *watch)
        })) {
            failure = Some(e);
            break;
        }
    }
    restore_nproc(old);
    if let Some(e) = failure {
        std::panic::resume_unwind(e);
    }
    for (_, _, mut r) in runs {
        r.stop_and_join(GRACE + RUN_WATCHDOG);
        assert!(r.exec().running().is_empty());
    }
}

fn exhaust(r: &Running, backend: SpawnBackend, watch: ChildWatch) {
    let what = format!("{} {watch:?}", backend.name());
    let mut sleepers: Vec<ExecHandle> = Vec::new();
    let refused = loop {
        assert!(
            sleepers.len() < (HEADROOM as usize) + 10,
            "{what}: {} sleepers started, the limit never bit",
            sleepers.len()
        );
        // Called on this thread: a helper thread would itself need a task.
        match r.exec().create_process(&["sleep", "30"], true) {
            Ok(h) => sleepers.push(h),
            Err(e) => break e,
        }
    };
    eprintln!("{what}: {} started, then {refused:?}", sleepers.len());
    match refused {
        SpawnError::ResourceExhausted {
            stage: SpawnStage::Spawn,
            errno: libc::EAGAIN,
            ref program,
        } => assert_eq!(program, "sleep"),
        ref e => panic!("{what}: expected ResourceExhausted(Spawn, EAGAIN), got {e:?}"),
    }
    assert!(!refused.to_string().is_empty());
    // Nothing half-registered: the table holds exactly the sleepers, and so does /proc.
    let mut tracked: Vec<u32> = r.exec().running().iter().map(|p| p.pid).collect();
    let mut started: Vec<u32> = sleepers.iter().map(|h| h.pid()).collect();
    tracked.sort_unstable();
    started.sort_unstable();
    assert_eq!(tracked, started, "{what}: running() vs started");
    let mut ours: Vec<u32> = children().iter().map(|c| c.0).collect();
    ours.retain(|pid| !started.contains(pid));
    assert!(ours.is_empty(), "{what}: untracked children {ours:?}");

    // One sleeper goes: the executor serves again.
    if let Some(h) = sleepers.pop() {
        assert_eq!(h.kill().signal(), Some(libc::SIGTERM), "{what}");
    }
    let again = r
        .exec()
        .create_process(&["sh", "-c", "exit 4"], true)
        .unwrap_or_else(|e| panic!("{what}: no spawn after a slot was freed: {e:?}"));
    assert_eq!(
        again
            .wait_timeout(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(4),
        "{what}"
    );
    for h in sleepers {
        assert_eq!(h.kill().signal(), Some(libc::SIGTERM), "{what}");
    }
    assert!(r.exec().running().is_empty(), "{what}");
}
