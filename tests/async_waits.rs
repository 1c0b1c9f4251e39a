//! Async waits: `ExecHandle::wait_async`, `Executor::create_process_async`, the handle's `AsFd`,
//! each scenario under tokio's current-thread and multi-thread runtimes and under a minimal
//! `block_on` (pollster), on every backend in both child-watch modes where the behaviour can
//! differ. Every test holds `serial()`: some count this process's threads and children.

mod common;

use std::future::Future;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::process::ExitStatus;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{ChildWatch, Executor, SpawnBackend, SpawnError};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// How a scenario's future is driven.
#[derive(Debug, Clone, Copy)]
enum Driver {
    TokioCurrentThread,
    TokioMultiThread,
    BlockOn,
}

const DRIVERS: [Driver; 3] = [
    Driver::TokioCurrentThread,
    Driver::TokioMultiThread,
    Driver::BlockOn,
];

impl Driver {
    /// Runs `f` to completion; the runtime (its threads) exists before `f` starts.
    fn run<F: Future>(self, f: F) -> F::Output {
        match self {
            Driver::TokioCurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio current-thread runtime")
                .block_on(f),
            Driver::TokioMultiThread => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio multi-thread runtime")
                .block_on(f),
            Driver::BlockOn => pollster::block_on(f),
        }
    }
}

/// Polls every future until all are done, in one task (no runtime needed).
struct JoinAll<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> JoinAll<F> {
    let futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let outputs = futures.iter().map(|_| None).collect();
    JoinAll { futures, outputs }
}

impl<F: Future> Future for JoinAll<F>
where
    F::Output: Unpin,
{
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut pending = false;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(
            this.outputs
                .iter_mut()
                .map(|o| o.take().expect("every future completed"))
                .collect(),
        )
    }
}

/// An executor with its loop on its own thread, in the running test's watch mode.
fn started(backend: SpawnBackend, grace: Duration) -> Executor {
    builder(backend)
        .kill_grace(grace)
        .start()
        .expect("ExecutorBuilder::start")
}

/// Runs `f` bounded by `limit` on a helper thread.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    bounded(limit, what, f)
}

fn spawn_and_wait_async(backend: SpawnBackend) {
    let _serial = serial();
    for driver in DRIVERS {
        let ex = started(backend, Duration::from_millis(200));
        let status: ExitStatus = within(
            Duration::from_secs(20),
            "spawn_async + wait_async",
            move || {
                driver.run(async {
                    let child = ex
                        .create_process_async(&["/bin/sh", "-c", "exit 7"], true)
                        .await
                        .expect("create_process_async");
                    let status = child.wait_async().await;
                    // Awaiting again, and the blocking form, agree.
                    assert_eq!(child.wait_async().await, status);
                    assert_eq!(child.wait(), status);
                    status
                })
            },
        );
        assert_eq!(code(status), Some(7), "{driver:?}");
    }
}

fn spawn_async_errors_are_typed(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_millis(200));
    within(Duration::from_secs(20), "spawn_async errors", move || {
        pollster::block_on(async {
            let e = ex
                .create_process_async(&["no-such-program-napix-async"], true)
                .await
                .expect_err("a missing program");
            assert!(matches!(e, SpawnError::NotFound { .. }), "{e:?}");
            let empty: [&str; 0] = [];
            let e = ex
                .create_process_async(&empty, true)
                .await
                .expect_err("empty");
            assert_eq!(e, SpawnError::EmptyCommand);
            ex.stop();
            let e = ex
                .create_process_async(&["/bin/true"], true)
                .await
                .expect_err("stopped");
            assert_eq!(e, SpawnError::Stopped);
        })
    });
}

/// The pidfd (or, in signal mode, the exit eventfd) turns readable when the child exits; the status
/// then comes from the handle.
fn as_fd_is_readable_once_exited(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_millis(200));
    let watch = ex.child_watch();
    for driver in [Driver::TokioCurrentThread, Driver::TokioMultiThread] {
        let ex = ex.clone();
        within(
            Duration::from_secs(20),
            "AsyncFd on the handle",
            move || {
                driver.run(async {
                    let child = ex
                        .create_process(&["/bin/sh", "-c", "sleep 0.2; exit 4"], true)
                        .expect("create_process");
                    assert_eq!(child.pidfd().is_some(), watch == ChildWatch::Pidfd);
                    let t0 = Instant::now();
                    // SAFETY: a handle's descriptor (pidfd or exit eventfd) is fixed at its creation
                    // and open until the handle drops; the AsyncFd owns the handle.
                    let fd = unsafe { AsyncFd::register_with_interest(child, Interest::READABLE) }
                        .expect("AsyncFd");
                    let guard = fd.readable().await.expect("readable");
                    let took = t0.elapsed();
                    assert!(
                        took >= Duration::from_millis(150),
                        "readable before the exit: {took:?}"
                    );
                    drop(guard);
                    let child = fd.into_inner();
                    assert_eq!(code(child.wait_async().await), Some(4));
                })
            },
        );
    }
}

/// A wait given up by a timeout leaves the child running and reaped later; `start_kill` then
/// ends it and the handle can be awaited again.
fn timeout_then_start_kill(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_millis(300));
    for driver in [Driver::TokioCurrentThread, Driver::TokioMultiThread] {
        let ex = ex.clone();
        within(
            Duration::from_secs(20),
            "timeout then start_kill",
            move || {
                driver.run(async {
                    let child = ex
                        .create_process_async(&["sleep", "30"], true)
                        .await
                        .expect("spawn sleep");
                    let waited =
                        tokio::time::timeout(Duration::from_millis(100), child.wait_async()).await;
                    assert!(waited.is_err(), "sleep 30 exited early: {waited:?}");
                    assert!(is_live_child(child.pid()));
                    let t = Instant::now();
                    child.start_kill().expect("start_kill");
                    let status = child.wait_async().await;
                    assert_eq!(signal(status), Some(libc::SIGTERM));
                    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
                })
            },
        );
    }
}

/// stdout read through tokio's `AsyncFd` on the pipe made non-blocking.
fn output_through_async_fd(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_millis(200));
    for driver in [Driver::TokioCurrentThread, Driver::TokioMultiThread] {
        let ex = ex.clone();
        let out = within(Duration::from_secs(20), "output via AsyncFd", move || {
            driver.run(async {
                let child = ex
                    .create_process_async(
                        &[
                            "/bin/sh",
                            "-c",
                            "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done",
                        ],
                        false,
                    )
                    .await
                    .expect("spawn");
                let stdout: OwnedFd = child.take_stdout().expect("stdout pipe").into();
                set_nonblocking(&stdout);
                let file = std::fs::File::from(stdout);
                // SAFETY: the File owns the pipe's read end and the AsyncFd owns the File.
                let pipe = unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }
                    .expect("AsyncFd on the pipe");
                let mut out = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let mut guard = pipe.readable().await.expect("readable");
                    match guard.try_io(|f| f.get_ref().read(&mut buf)) {
                        Ok(Ok(0)) => break,
                        Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                        Ok(Err(e)) => panic!("read: {e}"),
                        Err(_would_block) => continue,
                    }
                }
                assert!(child.wait_async().await.success());
                out
            })
        });
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text.lines().count(), 2000);
        assert_eq!(text.lines().last(), Some("line 1999"));
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: fcntl on a descriptor we own, with flags read from it.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(flags >= 0, "F_GETFL");
        assert_eq!(
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK),
            0,
            "F_SETFL"
        );
    }
}

/// `spawn_async(&Command)`: options applied, stdout piped and read, errors typed, under every
/// driver.
fn spawn_async_with_a_command(backend: SpawnBackend) {
    let _serial = serial();
    for driver in DRIVERS {
        let ex = started(backend, Duration::from_millis(200));
        let (out, status, missing) = within(Duration::from_secs(20), "spawn_async", move || {
            driver.run(async {
                let mut cmd = napix_executor::Command::new("/bin/sh");
                cmd.args(["-c", "echo $NAPIX_ASYNC; exit 9"])
                    .env("NAPIX_ASYNC", "from-env")
                    .stdout(napix_executor::Stdio::piped())
                    .stderr(napix_executor::Stdio::null());
                let child = ex.spawn_async(&cmd).await.expect("spawn_async");
                let mut out = String::new();
                child
                    .take_stdout()
                    .expect("piped stdout")
                    .read_to_string(&mut out)
                    .expect("read stdout");
                let status = child.wait_async().await;
                let missing = ex
                    .spawn_async(&napix_executor::Command::new("no-such-program-napix-async"))
                    .await
                    .expect_err("missing program");
                (out, status, missing)
            })
        });
        assert_eq!(out, "from-env\n", "{driver:?}");
        assert_eq!(code(status), Some(9), "{driver:?}");
        assert!(
            matches!(missing, SpawnError::NotFound { .. }),
            "{missing:?}"
        );
    }
}

per_backend!(
    spawn_async_with_a_command,
    spawn_and_wait_async,
    spawn_async_errors_are_typed,
    as_fd_is_readable_once_exited,
    timeout_then_start_kill,
    output_through_async_fd,
);

/// 1,000 children spawned and awaited at once from one task: the thread count stays flat (no
/// thread per child, no blocking pool).
///
/// The children are `cat`s reading one pipe whose only write end the test holds: none can exit
/// before the test closes it, so all 1,000 are surely running, and awaited, when the threads are
/// counted. (They used to be `sleep 1`: on a loaded machine spawning 1,000 took longer than a
/// second, the first ones exited early and "most children still run" failed.)
#[test]
fn thousand_children_awaited_without_a_thread_each() {
    let _serial = serial();
    napix_executor::raise_fd_limit().expect("raise the fd limit");
    const N: usize = 1000;
    for driver in DRIVERS {
        let ex = Executor::builder()
            .kill_grace(Duration::from_millis(200))
            .start()
            .expect("start");
        // CLOEXEC on both ends (std): the children get the read end as stdin only.
        let (reader, writer) = std::io::pipe().expect("pipe");
        let mut cat = napix_executor::Command::new("cat");
        cat.stdin(napix_executor::Stdio::from(OwnedFd::from(reader)))
            .stdout(napix_executor::Stdio::null());
        let (before, during, statuses) =
            within(Duration::from_secs(120), "1,000 children", move || {
                driver.run(async move {
                    // The runtime's own threads exist by now.
                    let before = thread_count();
                    let handles = join_all((0..N).map(|_| ex.spawn_async(&cat))).await;
                    let handles: Vec<_> =
                        handles.into_iter().map(|h| h.expect("spawn cat")).collect();
                    // Awaited (each future registered with its child) while all of them run.
                    let mut waits = join_all(handles.iter().map(|h| h.wait_async()));
                    let pending = std::future::poll_fn(|cx| {
                        Poll::Ready(Pin::new(&mut waits).poll(cx).is_pending())
                    })
                    .await;
                    assert!(pending, "a cat exited before its input ended");
                    let live = handles.iter().filter(|h| h.return_code().is_none()).count();
                    assert_eq!(live, N, "every child runs until the pipe closes");
                    let during = thread_count();
                    drop(writer);
                    let statuses = waits.await;
                    (before, during, statuses)
                })
            });
        eprintln!("{driver:?}: threads before {before}, with {N} children awaited {during}");
        assert!(
            during <= before + 1,
            "{driver:?}: threads grew from {before} to {during} with {N} children awaited"
        );
        assert_eq!(statuses.len(), N);
        assert!(statuses.iter().all(|s| s.success()), "{driver:?}");
    }
    assert_no_children(Duration::from_secs(10));
}

/// The same from a tokio task set: every child awaited in its own task (`Send + 'static`
/// futures), still no thread per child.
#[test]
fn thousand_children_in_a_tokio_join_set() {
    let _serial = serial();
    napix_executor::raise_fd_limit().expect("raise the fd limit");
    const N: usize = 1000;
    let ex = Executor::builder()
        .kill_grace(Duration::from_millis(200))
        .start()
        .expect("start");
    let (before, peak, ok) = within(Duration::from_secs(120), "join set", move || {
        Driver::TokioMultiThread.run(async move {
            let before = thread_count();
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..N {
                let spawn = ex.create_process_async(&["sleep", "1"], true);
                set.spawn(async move {
                    let child = spawn.await.expect("spawn");
                    child.wait_async().await
                });
            }
            let mut peak = thread_count();
            let mut ok = 0;
            while let Some(status) = set.join_next().await {
                peak = peak.max(thread_count());
                ok += usize::from(status.expect("task").success());
            }
            (before, peak, ok)
        })
    });
    eprintln!("JoinSet: threads before {before}, peak {peak}");
    assert!(peak <= before + 1, "threads grew from {before} to {peak}");
    assert_eq!(ok, N);
    assert_no_children(Duration::from_secs(10));
}

/// Dropping a spawn future before the loop served it withdraws the request: no child is ever
/// started for it.
#[test]
fn dropped_spawn_future_is_withdrawn() {
    let _serial = serial();
    let ex = Executor::builder()
        .kill_grace(Duration::from_millis(200))
        .build()
        .expect("build");
    // No loop yet: the request stays queued.
    let fut = ex.create_process_async(&["sleep", "30"], true);
    drop(fut);
    let ex2 = ex.clone();
    let runner = std::thread::spawn(move || ex2.run());
    // The loop drains the queue at once; give it time to (wrongly) spawn.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        children().is_empty(),
        "a withdrawn request was spawned: {:?}",
        children()
    );
    assert!(ex.running().is_empty());
    ex.stop();
    runner.join().expect("run thread").expect("run");
}

/// Dropping a spawn future after the child was spawned (never polled again) treats the child like
/// a dropped handle's: it runs to its end and is reaped.
#[test]
fn dropped_spawn_future_after_the_spawn_still_reaps() {
    let _serial = serial();
    let ex = Executor::builder().start().expect("start");
    let fut = ex.create_process_async(&["/bin/sh", "-c", "sleep 0.2"], true);
    assert!(
        wait_until(Duration::from_secs(5), || ex.running().len() == 1),
        "the loop never spawned the child"
    );
    let pid = ex.running()[0].pid;
    drop(fut);
    assert!(wait_until(Duration::from_secs(5), || ex
        .running()
        .is_empty()));
    assert_no_zombie(&[pid]);
}

/// An exit future dropped mid-wait (select, timeout) leaves the child alone; the next one gets the
/// status. Under block_on: a hand-rolled poll with a no-op waker, then a drop.
#[test]
fn dropped_exit_future_leaves_the_child_reaped() {
    let _serial = serial();
    let ex = Executor::builder().start().expect("start");
    let child = ex
        .create_process(&["/bin/sh", "-c", "sleep 0.3; exit 5"], true)
        .expect("spawn");
    for _ in 0..100 {
        let mut fut = Box::pin(child.wait_async());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(fut);
    }
    let status = within(
        Duration::from_secs(10),
        "wait_async after drops",
        move || pollster::block_on(child.wait_async()),
    );
    assert_eq!(code(status), Some(5));
}

/// A handle dropped while its wait future is pending elsewhere: the future still completes.
#[test]
fn exit_future_outlives_its_handle() {
    let _serial = serial();
    let ex = Executor::builder().start().expect("start");
    let child = ex
        .create_process(&["/bin/sh", "-c", "sleep 0.2; exit 6"], true)
        .expect("spawn");
    let fut = child.wait_async();
    drop(child);
    let status = within(Duration::from_secs(10), "orphaned wait_async", move || {
        pollster::block_on(fut)
    });
    assert_eq!(code(status), Some(6));
}

/// Stopping the executor while spawn futures are queued answers them with `Stopped`.
#[test]
fn pending_spawn_futures_get_stopped() {
    let _serial = serial();
    let ex = Executor::new().expect("new");
    let futs: Vec<_> = (0..10)
        .map(|_| ex.create_process_async(&["/bin/true"], true))
        .collect();
    ex.stop();
    let results = within(Duration::from_secs(10), "stopped futures", move || {
        pollster::block_on(join_all(futs))
    });
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(SpawnError::Stopped))),
        "{results:?}"
    );
}

/// The futures can be spawned as tasks on any runtime; the executor can be shared and unwound.
#[test]
fn futures_are_send_and_static() {
    fn send_static<T: Send + 'static>() {}
    fn shared<T: Send + Sync + Clone + std::panic::RefUnwindSafe + std::panic::UnwindSafe>() {}
    send_static::<napix_executor::ExitFuture>();
    send_static::<napix_executor::SpawnFuture>();
    shared::<Executor>();
}
