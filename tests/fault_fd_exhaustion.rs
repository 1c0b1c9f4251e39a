//! Fault: the process runs out of descriptors (RLIMIT_NOFILE lowered so that only 0..6 numbers
//! are free), so `pipe2`, `clone(CLONE_PIDFD)`, the Fork backend's error pipe or `pidfd_open`
//! fails in the middle of a spawn.
//!
//! Expected, for every backend and both child-watch modes, with and without pipes: either a
//! process (when enough descriptors were free) or `SpawnError::ResourceExhausted` with `EMFILE`;
//! after a failure nothing is half-registered (`running()` is empty, no child of ours is left,
//! alive or zombie, once the executor reaped what it had to kill) and not one descriptor leaked;
//! once the limit is back the same executor spawns and captures output as before.
//!
//! It changes a process-wide limit, so it is the only test of this file (its own process).

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use common::faults::{NofileLimit, limit_leaving};
use common::{
    RUN_WATCHDOG, Running, assert_no_children, describe_fds, kill_bounded, our_fds, spawn_ok,
    start_with_watch, wait_for, wait_until,
};
use napix_executor::{ChildWatch, SpawnBackend, SpawnError, SpawnStage};

const GRACE: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Outcome {
    backend: SpawnBackend,
    watch: ChildWatch,
    discard: bool,
    free: usize,
    result: Result<(), (SpawnStage, i32)>,
}

#[test]
fn emfile_during_spawn_is_an_error_and_leaves_nothing_behind() {
    let mut outcomes = Vec::new();
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            let mut r = start_with_watch(backend, watch, GRACE);
            // Warm up: the loop's per-thread spawn state and the SIGCHLD source exist now, so any
            // descriptor that appears later is the spawn's.
            let warm = spawn_ok(&r.arc(), &["/bin/echo", "warm"], false);
            let mut out = String::new();
            warm.take_stdout()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(wait_for(&warm, Duration::from_secs(10)).code(), Some(0));
            drop(warm);

            for discard in [true, false] {
                for free in 0..=7 {
                    outcomes.push(attempt(&r, backend, watch, discard, free));
                }
            }

            // The limit is back: the same executor serves as before.
            let h = spawn_ok(&r.arc(), &["sh", "-c", "echo back; echo err >&2"], false);
            let mut out = String::new();
            h.take_stdout().unwrap().read_to_string(&mut out).unwrap();
            let mut err = String::new();
            h.take_stderr().unwrap().read_to_string(&mut err).unwrap();
            assert_eq!((out.as_str(), err.as_str()), ("back\n", "err\n"));
            assert_eq!(wait_for(&h, Duration::from_secs(10)).code(), Some(0));
            assert!(r.exec().running().is_empty());
            r.stop_and_join(GRACE + RUN_WATCHDOG);
        }
    }
    for o in &outcomes {
        eprintln!(
            "{:>11} {:?} discard={:<5} free={}: {:?}",
            o.backend.name(),
            o.watch,
            o.discard,
            o.free,
            o.result
        );
    }
    for o in &outcomes {
        // No descriptor at all: with pidfds nothing can be tracked; with pipes nothing can start.
        if o.free == 0 && (o.watch == ChildWatch::Pidfd || !o.discard) {
            assert!(o.result.is_err(), "{o:?}: succeeded without a descriptor");
        }
        // One free number: a pipe needs two.
        if o.free == 1 && !o.discard {
            assert_eq!(o.result, Err((SpawnStage::Pipe, libc::EMFILE)), "{o:?}");
        }
        // Seven free numbers are enough for everything (two pipes, an error pipe, a pidfd).
        if o.free == 7 {
            assert!(o.result.is_ok(), "{o:?}: failed with enough descriptors");
        }
    }
    // The interesting stages were all reached somewhere.
    let mut stages: Vec<SpawnStage> = Vec::new();
    for (stage, _) in outcomes.iter().filter_map(|o| o.result.err()) {
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    eprintln!("failing stages seen: {stages:?}");
    assert!(stages.contains(&SpawnStage::Pipe));
}

fn attempt(
    r: &Running,
    backend: SpawnBackend,
    watch: ChildWatch,
    discard: bool,
    free: usize,
) -> Outcome {
    let fds_before = our_fds();
    let result = {
        let _limit = NofileLimit::lower_to(limit_leaving(free));
        // Called on this thread: a helper thread needs no descriptor, but keep it simple.
        r.exec().create_process(&["sleep", "30"], discard)
    };
    let what = format!("{} {watch:?} discard={discard} free={free}", backend.name());
    let result = match result {
        Ok(h) => {
            let h = Arc::new(h);
            assert!(
                r.exec().running().iter().any(|p| p.pid == h.pid()),
                "{what}: spawned pid {} is not in running()",
                h.pid()
            );
            assert_eq!(h.take_stdout().is_some(), !discard);
            let (status, _) = kill_bounded(&h, GRACE + Duration::from_secs(10));
            assert_eq!(status.signal(), Some(libc::SIGTERM), "{what}");
            Ok(())
        }
        Err(SpawnError::ResourceExhausted {
            program,
            stage,
            errno,
        }) => {
            assert_eq!(program, "sleep");
            assert_eq!(errno, libc::EMFILE, "{what}: stage {stage:?}");
            Err((stage, errno))
        }
        Err(e) => panic!("{what}: expected ResourceExhausted/EMFILE or a process, got {e:?}"),
    };
    // Nothing half-registered: the table is empty, a child that was started and could not be
    // tracked has been killed and reaped, and every descriptor of the attempt is closed.
    assert!(
        r.exec().running().is_empty(),
        "{what}: running() = {:?}",
        r.exec().running()
    );
    assert_no_children(Duration::from_secs(5));
    // The executor thread may still hold the child's state (and so its pidfd) for a moment
    // after the status was published.
    wait_until(Duration::from_secs(5), || our_fds() == fds_before);
    let fds_after = our_fds();
    assert_eq!(
        fds_before,
        fds_after,
        "{what} ({result:?}): descriptors leaked: before [{}] after [{}]",
        describe_fds(&fds_before),
        describe_fds(&fds_after)
    );
    Outcome {
        backend,
        watch,
        discard,
        free,
        result,
    }
}
