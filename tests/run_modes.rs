//! Ways to run the loop that cannot hang their user: `Executor::start` (a loop thread owned by
//! the executor, stopped and joined when the last clone drops), `Executor::run_with` (the loop on
//! the calling thread while a closure runs), and request timeouts for a loop nobody runs.

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{Executor, SpawnBackend, SpawnError};

/// The README's example, with the loop owned by the executor: a typo in the program name is an
/// error returned at once, not a hang.
fn readme_example(program: &str) -> io::Result<Option<i32>> {
    let ex = Executor::start()?;
    let child = ex.create_process(&[program, "-c", "exit 3"], true)?;
    Ok(child.wait().code())
}

#[test]
fn started_executor_example_returns_an_error_promptly() {
    let _serial = serial();
    let (ok, typo, took) = bounded(Duration::from_secs(10), "README example", || {
        let ok = readme_example("sh");
        let t = Instant::now();
        let typo = readme_example("shh-no-such-program");
        (
            ok.map_err(|e| e.kind()),
            typo.map_err(|e| e.kind()),
            t.elapsed(),
        )
    });
    assert_eq!(ok, Ok(Some(3)));
    assert_eq!(typo, Err(io::ErrorKind::NotFound));
    assert!(took < Duration::from_secs(2), "the error took {took:?}");
}

#[test]
fn run_with_example_returns_an_error_promptly() {
    let _serial = serial();
    let (result, took) = bounded(Duration::from_secs(10), "run_with with a typo", || {
        let t = Instant::now();
        let ex = Executor::new().expect("new");
        let r = ex.run_with(|ex| -> Result<(), SpawnError> {
            let child = ex.create_process(&["shh-no-such-program", "-c", "exit 3"], true)?;
            child.wait();
            Ok(())
        });
        (r.map(|inner| inner.map_err(|e| e.kind())), t.elapsed())
    });
    assert_eq!(result.expect("the loop ran"), Err(io::ErrorKind::NotFound));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// Dropping the last clone of a started executor (the drop rule) SIGKILLs every child left, with
/// no grace, and returns once the loop thread reaped them and ended: well under the kill grace,
/// even for a child that ignores SIGTERM.
fn drop_of_last_clone_kills_and_joins(backend: SpawnBackend) {
    let _serial = serial();
    let ex = builder(backend).start().expect("start");
    // The thread names itself once it runs.
    assert!(
        wait_until(Duration::from_secs(5), || loop_threads() == 1),
        "no loop thread named napix-executor"
    );
    let clone = ex.clone();
    let sleeper = ex.create_process(&["sleep", "30"], true).expect("sleep");
    let stubborn = spawn_stubborn(&std::sync::Arc::new(ex.clone()));
    let pids = [sleeper.pid(), stubborn.pid()];
    drop(ex);
    // A clone still owns it: the loop keeps serving.
    assert!(is_live_child(pids[0]));
    let more = clone
        .create_process(&["/bin/true"], true)
        .expect("still served");
    assert!(wait_for(&more, Duration::from_secs(5)).success());
    let took = bounded(
        Duration::from_secs(20),
        "drop of the last clone",
        move || {
            let t = Instant::now();
            drop(clone);
            t.elapsed()
        },
    );
    // The default grace is 3 s; the kill and the reaps take milliseconds.
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    for child in [&sleeper, &stubborn] {
        assert_eq!(
            signal(child.return_code().expect("reaped")),
            Some(libc::SIGKILL)
        );
    }
    assert_no_zombie(&pids);
    // Joined by the drop: gone at once.
    assert_eq!(loop_threads(), 0, "the loop thread is still there");
}

/// `shutdown()` is the graceful stop for async code: SIGTERM, the grace for a child that ignores
/// it, SIGKILL; the future resolves once every child is reaped, and no child is left.
fn shutdown_resolves_after_the_escalation(backend: SpawnBackend) {
    let _serial = serial();
    let grace = Duration::from_millis(300);
    let ex = builder(backend).kill_grace(grace).start().expect("start");
    let sleeper = ex.create_process(&["sleep", "30"], true).expect("sleep");
    let stubborn = spawn_stubborn(&std::sync::Arc::new(ex.clone()));
    let pids = [sleeper.pid(), stubborn.pid()];
    let threads = thread_count();
    // From before the call: the grace runs from the stop, which the call makes.
    let t = Instant::now();
    let shutdown = ex.shutdown();
    assert!(ex.is_stopped(), "shutdown() stops at once");
    let (result, took, threads_meanwhile) =
        bounded(Duration::from_secs(20), "shutdown", move || {
            let result = pollster::block_on(shutdown);
            (result.map_err(|e| e.kind()), t.elapsed(), thread_count())
        });
    assert_eq!(result, Ok(()));
    assert!(took >= grace, "resolved after {took:?}, before the grace");
    assert!(took < grace + Duration::from_secs(3), "took {took:?}");
    // The `bounded` runner is the one extra thread: nothing waits per child.
    assert!(
        threads_meanwhile <= threads + 1,
        "{threads} -> {threads_meanwhile} threads"
    );
    assert_eq!(
        signal(sleeper.return_code().expect("reaped when it resolved")),
        Some(libc::SIGTERM)
    );
    assert_eq!(
        signal(stubborn.return_code().expect("reaped when it resolved")),
        Some(libc::SIGKILL)
    );
    assert!(ex.running().is_empty());
    assert_no_zombie(&pids);
    // Awaited again, or once the executor is gone: at once.
    assert_eq!(
        pollster::block_on(ex.shutdown()).map_err(|e| e.kind()),
        Ok(())
    );
    let late = ex.shutdown();
    drop(ex);
    assert_eq!(pollster::block_on(late).map_err(|e| e.kind()), Ok(()));
}

/// The shutdown future is woken by the loop: a tokio current-thread runtime drives it (with a
/// timer of its own beside it) and the drop of the executor inside the runtime returns at once.
#[test]
fn shutdown_under_tokio_and_drop_inside_the_runtime() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ex = Executor::builder()
            .kill_grace(Duration::from_millis(200))
            .start()
            .expect("start");
        let child = ex.create_process(&["sleep", "30"], true).expect("sleep");
        tokio::time::timeout(Duration::from_secs(10), ex.shutdown())
            .await
            .expect("shutdown resolved")
            .expect("shutdown");
        assert_eq!(
            signal(child.return_code().expect("reaped")),
            Some(libc::SIGTERM)
        );

        let ex = Executor::start().expect("start");
        let stubborn = spawn_stubborn(&std::sync::Arc::new(ex.clone()));
        let t = Instant::now();
        drop(ex);
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "drop in the runtime took {took:?}"
        );
        assert_eq!(
            signal(stubborn.return_code().expect("reaped")),
            Some(libc::SIGKILL)
        );
        assert_no_zombie(&[child.pid(), stubborn.pid()]);
    });
}

/// Threads of this process named like the executor's loop thread.
fn loop_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "napix-executor")
        })
        .count()
}

/// run_with: the loop stops when the closure returns, even with children still running; they are
/// reaped before run_with returns.
fn run_with_stops_when_the_closure_returns(backend: SpawnBackend) {
    let _serial = serial();
    let ex = builder(backend)
        .kill_grace(Duration::from_millis(200))
        .build()
        .expect("build");
    let (pid, handle) = bounded(Duration::from_secs(20), "run_with", move || {
        let r = ex.run_with(|ex| {
            let h = ex.create_process(&["sleep", "30"], true).expect("sleep");
            (h.pid(), h)
        });
        assert!(ex.is_stopped());
        r.expect("run_with")
    });
    assert_eq!(
        signal(handle.return_code().expect("reaped by then")),
        Some(libc::SIGTERM)
    );
    assert_no_zombie(&[pid]);
}

/// A panic in the closure stops the loop, the children are reaped, and the panic comes back out.
fn run_with_propagates_a_panic_after_reaping(backend: SpawnBackend) {
    let _serial = serial();
    let ex = builder(backend)
        .kill_grace(Duration::from_millis(200))
        .build()
        .expect("build");
    let (payload, pid) = bounded(Duration::from_secs(20), "run_with panic", move || {
        let pid = std::sync::Mutex::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ex.run_with(|ex| {
                let h = ex.create_process(&["sleep", "30"], true).expect("sleep");
                *pid.lock().expect("pid") = h.pid();
                panic!("closure failed on purpose");
            })
        }));
        let payload = r.expect_err("the panic is propagated");
        let msg = payload.downcast_ref::<&str>().map(|s| s.to_string());
        (msg, *pid.lock().expect("pid"))
    });
    assert_eq!(payload.as_deref(), Some("closure failed on purpose"));
    assert!(pid > 0);
    assert!(!is_live_child(pid), "the child outlived run_with");
    assert_no_zombie(&[pid]);
}

per_backend!(
    drop_of_last_clone_kills_and_joins,
    shutdown_resolves_after_the_escalation,
    run_with_stops_when_the_closure_returns,
    run_with_propagates_a_panic_after_reaping,
);

#[test]
fn run_with_on_a_started_executor_is_busy() {
    let _serial = serial();
    let ex = Executor::start().expect("start");
    let mut called = false;
    let e = ex.run_with(|_| called = true).expect_err("busy");
    assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
    assert!(!called);
    // And it still works.
    assert!(
        ex.create_process(&["/bin/true"], true)
            .expect("spawn")
            .wait()
            .success()
    );
}

/// Nobody runs the loop: a request timeout turns the hang into NotServed, and the withdrawn
/// request is never spawned once a loop does run.
#[test]
fn request_timeout_without_a_loop() {
    let _serial = serial();
    // Far apart, so that the per-call timeout below is told from the builder's even when a
    // loaded machine wakes the caller late.
    let builders = Duration::from_secs(2);
    let per_call = Duration::from_millis(50);
    let ex = Executor::builder()
        .request_timeout(builders)
        .build()
        .expect("build");
    let t = Instant::now();
    let e = ex
        .create_process(&["sleep", "30"], true)
        .expect_err("no loop");
    let took = t.elapsed();
    assert!(matches!(e, SpawnError::NotServed { .. }), "{e:?}");
    assert_eq!(io::Error::from(e.clone()).kind(), io::ErrorKind::TimedOut);
    assert!(e.to_string().contains("loop"), "{e}");
    assert!(took >= builders, "gave up early: {took:?}");
    assert!(took < builders * 5, "{took:?}");
    // The per-call form overrides the builder's: never early, and ended long before the
    // builder's timeout would have ended it.
    let t = Instant::now();
    let e = ex
        .with_request_timeout(Some(per_call))
        .create_process(&["sleep", "30"], true)
        .expect_err("no loop");
    let took = t.elapsed();
    assert!(matches!(e, SpawnError::NotServed { .. }));
    assert!(took >= per_call, "gave up early: {took:?}");
    assert!(
        took < builders * 3 / 4,
        "{took:?}: the builder's {builders:?} timeout, not the call's {per_call:?}"
    );
    // Now a loop runs: the withdrawn requests are skipped, new ones served.
    let runner = {
        let ex = ex.clone();
        std::thread::spawn(move || ex.run())
    };
    let h = ex.create_process(&["/bin/true"], true).expect("served now");
    assert!(wait_for(&h, Duration::from_secs(5)).success());
    assert!(
        children().is_empty(),
        "a withdrawn request was spawned: {:?}",
        children()
    );
    ex.stop();
    runner.join().expect("run thread").expect("run");
}

/// With a request timeout and a loop that serves, every request is answered as usual, from many
/// threads at once.
#[test]
fn request_timeout_with_a_loop_serves_everything() {
    let _serial = serial();
    let ex = Executor::builder()
        .request_timeout(Duration::from_secs(10))
        .start()
        .expect("start");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ex = ex.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let h = ex.create_process(&["/bin/true"], true).expect("spawn");
                    assert!(h.wait().success());
                }
            })
        })
        .collect();
    join_all(threads, Duration::from_secs(60));
}

/// The request timeout applies to async spawns too: on a loop nobody runs, `create_process_async`
/// and `spawn_async` resolve to `NotServed` after it, under pollster and tokio, 50 at once with
/// one timer thread for all of them (not one per future); the withdrawn requests are never
/// spawned once a loop runs, and a served future with a timeout completes as usual.
#[test]
fn request_timeout_ends_async_spawns_without_a_loop() {
    let _serial = serial();
    let ex = Executor::builder()
        .request_timeout(Duration::from_millis(300))
        .build()
        .expect("build");
    let limit = Duration::from_secs(10);
    let pollster_ex = ex.clone();
    let (e, took) = bounded(limit, "create_process_async, pollster", move || {
        let t = Instant::now();
        let e = pollster::block_on(pollster_ex.create_process_async(&["sleep", "30"], true))
            .expect_err("no loop");
        (e, t.elapsed())
    });
    match e {
        SpawnError::NotServed { waited } => {
            assert!(waited >= Duration::from_millis(300), "{waited:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let tokio_ex = ex.clone();
    let (results, threads_before, threads_during) =
        bounded(limit, "spawn_async x50, tokio", move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let before = thread_count();
                    let mut cmd = napix_executor::Command::new("sleep");
                    cmd.arg("30");
                    let tasks: Vec<_> = (0..50)
                        .map(|_| tokio::spawn(tokio_ex.spawn_async(&cmd)))
                        .collect();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let during = thread_count();
                    let mut results = Vec::new();
                    for t in tasks {
                        results.push(t.await.expect("task"));
                    }
                    (results, before, during)
                })
        });
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(SpawnError::NotServed { .. }))),
        "{results:?}"
    );
    assert!(
        threads_during <= threads_before + 1,
        "50 waiting futures took {threads_before} -> {threads_during} threads"
    );
    // A loop now: nothing withdrawn is spawned; a future with a timeout is served.
    let runner = {
        let ex = ex.clone();
        std::thread::spawn(move || ex.run())
    };
    let served = ex.clone();
    let h = bounded(limit, "served async spawn", move || {
        pollster::block_on(served.create_process_async(&["/bin/true"], true))
    })
    .expect("served now");
    assert!(wait_for(&h, Duration::from_secs(5)).success());
    assert!(
        children().is_empty(),
        "a withdrawn request was spawned: {:?}",
        children()
    );
    ex.stop();
    runner.join().expect("run thread").expect("run");
}
