//! Async pipes and output capture without a runtime (issue 22): `take_stdout_async` and its
//! siblings, `wait_with_output_async`, `wait_with_output_bounded_async`, with real children in
//! both child-watch modes, driven by `pollster` (no runtime at all) or a tokio current-thread
//! runtime without its I/O driver: the executor's loop wakes every task. A `harness = false`
//! binary, one case at a time: the cases count this process's threads, descriptors and epoll
//! registrations.

mod common;

use std::future::{Future, poll_fn};
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{ChildWatch, Command, ExecHandle, Executor, OutputLimits, Stdio};

const LONG: Duration = Duration::from_secs(60);

fn started(watch: ChildWatch, grace: Duration) -> Executor {
    Executor::builder()
        .child_watch(watch)
        .kill_grace(grace)
        .start()
        .expect("start")
}

type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Polls every future on the calling thread until all are done, with no runtime (`pollster`
/// sleeps the thread between wake-ups); `during` runs at every poll.
fn join_all<T>(futures: Vec<Task<T>>, mut during: impl FnMut()) -> Vec<T> {
    let mut futures: Vec<Option<Task<T>>> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    pollster::block_on(poll_fn(|cx| {
        during();
        for (slot, result) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = slot
                && let Poll::Ready(v) = fut.as_mut().poll(cx)
            {
                *result = Some(v);
                *slot = None;
            }
        }
        if futures.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    out.into_iter()
        .map(|v| v.expect("every future done"))
        .collect()
}

/// Registrations in this process's epoll sets (`tfd:` lines of their fdinfo).
fn epoll_watches() -> usize {
    let mut n = 0;
    for fd in our_fds() {
        if fd_target(our_pid(), fd).as_deref() == Some("anon_inode:[eventpoll]")
            && let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        {
            n += info.lines().filter(|l| l.starts_with("tfd:")).count();
        }
    }
    n
}

fn script(i: usize) -> Vec<String> {
    let s = format!("echo out-{i}; echo err-{i} >&2; exit {}", i % 7);
    vec!["sh".into(), "-c".into(), s]
}

/// 100 children captured at once from one task set on one thread: no thread per child or pipe
/// (the thread count never moves), every output and status right.
fn hundred_children_at_once(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "100 async captures", move || {
        let ex = started(watch, Duration::from_secs(1));
        let threads = thread_count();
        let futures: Vec<Task<std::io::Result<std::process::Output>>> = (0..100)
            .map(|i| {
                let child = ex.create_process(&script(i), false).expect("spawn");
                Box::pin(child.wait_with_output_async()) as Task<_>
            })
            .collect();
        let mut most = threads;
        let outputs = join_all(futures, || most = most.max(thread_count()));
        assert!(most <= threads, "threads went from {threads} to {most}");
        for (i, out) in outputs.into_iter().enumerate() {
            let out = out.expect("output");
            assert_eq!(out.status.code(), Some((i % 7) as i32));
            assert_eq!(out.stdout, format!("out-{i}\n").as_bytes());
            assert_eq!(out.stderr, format!("err-{i}\n").as_bytes());
        }
        assert!(ex.running().is_empty());
    });
}

/// The same on a tokio current-thread runtime built without its I/O driver and timer: the
/// executor's loop alone wakes the tasks.
fn hundred_children_on_tokio_without_its_io_driver(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "100 captures on tokio", move || {
        let ex = started(watch, Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let threads = thread_count();
        rt.block_on(async {
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    let child = ex.create_process(&script(i), false).expect("spawn");
                    tokio::spawn(child.wait_with_output_async())
                })
                .collect();
            for (i, task) in tasks.into_iter().enumerate() {
                let out = task.await.expect("task").expect("output");
                assert_eq!(out.status.code(), Some((i % 7) as i32));
                assert_eq!(out.stdout, format!("out-{i}\n").as_bytes());
            }
        });
        // (A thread of the case before may still be ending: fewer is fine.)
        assert!(
            thread_count() <= threads,
            "{threads} -> {} threads",
            thread_count()
        );
    });
}

/// Megabytes on stdout and stderr in turns (a drain that reads one stream at a time deadlocks),
/// and megabytes through stdin written while stdout is read.
fn megabytes_on_every_stream(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "megabytes", move || {
        let ex = started(watch, Duration::from_secs(1));
        const MB: usize = 1_500_000;
        let turns = format!(
            "head -c {MB} /dev/zero; head -c {MB} /dev/zero >&2; head -c {MB} /dev/zero; \
             head -c {MB} /dev/zero >&2"
        );
        let child = ex
            .create_process(&["sh", "-c", &turns], false)
            .expect("spawn");
        let out = pollster::block_on(child.wait_with_output_async()).expect("output");
        assert!(out.status.success());
        assert_eq!((out.stdout.len(), out.stderr.len()), (2 * MB, 2 * MB));

        // The same, bounded: what is over the limit is read and dropped.
        let child = ex
            .create_process(&["sh", "-c", &turns], false)
            .expect("spawn");
        let limits = OutputLimits::default().max_stdout(1000).max_stderr(3 * MB);
        let got = pollster::block_on(child.wait_with_output_bounded_async(limits)).expect("out");
        assert!(got.output.status.success());
        assert_eq!(got.output.stdout.len(), 1000);
        assert_eq!(got.output.stderr.len(), 2 * MB);
        assert!(got.stdout_truncated && !got.stderr_truncated && !got.pipes_left_open);

        // stdin: 3 MB through `cat`, written and read by two futures on one thread.
        let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut cat = Command::new("cat");
        cat.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = ex.spawn(&cat).expect("cat");
        let mut stdin = child.take_stdin_async().expect("piped stdin");
        let mut stdout = child.take_stdout_async().expect("piped stdout");
        let data = input.clone();
        let writer: Task<std::io::Result<()>> = Box::pin(async move {
            stdin.write_all(&data).await?;
            drop(stdin); // end of file for cat
            Ok(())
        });
        let reader: Task<std::io::Result<()>> = Box::pin(async move {
            let mut got = Vec::new();
            stdout.read_to_end(&mut got).await?;
            assert!(
                got == input,
                "cat gave back {} bytes, not the input",
                got.len()
            );
            Ok(())
        });
        for r in join_all(vec![writer, reader], || {}) {
            r.expect("stdin or stdout");
        }
        assert!(pollster::block_on(child.wait_async()).success());
    });
}

/// A read future dropped while it waits takes no byte; `read_to_end` dropped midway keeps what
/// it read in the caller's vector; reading again gets the rest. (tokio's timer drops them; its
/// I/O driver is off: the executor's loop wakes the reads.)
fn a_dropped_read_loses_no_bytes(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "cancelled reads", move || {
        let ex = started(watch, Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let child = ex
            .create_process(
                &[
                    "sh",
                    "-c",
                    "sleep 0.3; printf first; sleep 2; printf second",
                ],
                false,
            )
            .expect("spawn");
        let mut out = child.take_stdout_async().expect("piped");
        rt.block_on(async {
            let mut buf = [0u8; 64];
            let early = tokio::time::timeout(Duration::from_millis(100), out.read(&mut buf)).await;
            assert!(early.is_err(), "nothing was written yet: {early:?}");
            let mut got = Vec::new();
            let midway =
                tokio::time::timeout(Duration::from_secs(1), out.read_to_end(&mut got)).await;
            assert!(midway.is_err(), "the pipe is still open: {midway:?}");
            assert_eq!(got, b"first", "what the dropped read_to_end had read");
            out.read_to_end(&mut got).await.expect("the rest");
            assert_eq!(got, b"firstsecond");
        });
        assert!(wait_for(&child, Duration::from_secs(10)).success());
    });
}

/// Reads, writes, timers and captures dropped at every stage leave no descriptor and no epoll
/// registration behind, and their children are still reaped.
fn nothing_left_behind(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "leaks", move || {
        let ex = started(watch, Duration::from_millis(200));
        // Once: the executor's own descriptors, and the lazily made ones (`/proc` reader).
        let warm = ex.create_process(&["true"], false).expect("spawn");
        pollster::block_on(warm.wait_with_output_async()).expect("output");
        let (fds, watches) = (our_fds(), epoll_watches());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let rt_fds = our_fds().len() - fds.len();
        let rt_watches = epoll_watches() - watches;
        let mut pids = Vec::new();
        rt.block_on(async {
            for _ in 0..10 {
                // Completed, with a linger and a time limit (a timer in the poll set).
                let child = ex
                    .create_process(&["sh", "-c", "echo hi; sleep 2 & exit 0"], false)
                    .expect("spawn");
                pids.push(child.pid());
                let limits = OutputLimits::default()
                    .timeout(Duration::from_secs(20))
                    .linger(Duration::from_millis(50));
                let got = child
                    .wait_with_output_bounded_async(limits)
                    .await
                    .expect("out");
                assert_eq!(got.output.stdout, b"hi\n");
                assert!(got.pipes_left_open);

                // A read that registered and waited, dropped; then the pipes dropped unread.
                let child = ex
                    .create_process(&["sh", "-c", "sleep 0.2; echo late"], false)
                    .expect("spawn");
                pids.push(child.pid());
                let mut out = child.take_stdout_async().expect("piped");
                let err = child.take_stderr_async().expect("piped");
                let mut buf = [0u8; 8];
                let waited =
                    tokio::time::timeout(Duration::from_millis(20), out.read(&mut buf)).await;
                assert!(waited.is_err());
                drop((out, err));
                // `echo` may die of SIGPIPE now.
                child.wait_async().await;

                // A write that filled the pipe and waited, dropped (cat's stdout is never read).
                let mut cat = Command::new("cat");
                cat.stdin(Stdio::piped()).stdout(Stdio::piped());
                let child = ex.spawn(&cat).expect("cat");
                pids.push(child.pid());
                let mut stdin = child.take_stdin_async().expect("piped");
                let big = vec![b'x'; 1 << 20];
                let stuck =
                    tokio::time::timeout(Duration::from_millis(50), stdin.write_all(&big)).await;
                assert!(stuck.is_err(), "1 MiB went through pipes nobody reads");
                drop(stdin);
                drop(child.take_stdout_async());
                // Ends at the end of file, or by SIGPIPE writing to its closed stdout.
                child.wait_async().await;

                // A capture dropped midway (its child killed on drop).
                let mut cmd = Command::new("sh");
                cmd.args(["-c", "echo started; exec sleep 30"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true);
                let child = ex.spawn(&cmd).expect("spawn");
                pids.push(child.pid());
                let limits = OutputLimits::default().timeout(Duration::from_secs(20));
                let capture = child.wait_with_output_bounded_async(limits);
                let cut = tokio::time::timeout(Duration::from_millis(100), capture).await;
                assert!(cut.is_err(), "sleep 30 ended early: {cut:?}");
            }
        });
        drop(rt);
        assert!(
            wait_until(Duration::from_secs(20), || ex.running().is_empty()),
            "children left: {:?}",
            ex.running()
        );
        // Nothing new: a descriptor of the case before this one may close meanwhile.
        let settled = wait_until(Duration::from_secs(5), || {
            our_fds().iter().all(|fd| fds.contains(fd)) && epoll_watches() <= watches
        });
        let now = our_fds();
        assert!(
            settled,
            "fds {} -> {} ({}), epoll registrations {watches} -> {} \
             (the runtime had {rt_fds} fds, {rt_watches} registrations)",
            fds.len(),
            now.len(),
            describe_fds(
                &now.iter()
                    .filter(|f| !fds.contains(f))
                    .copied()
                    .collect::<Vec<_>>()
            ),
            epoll_watches()
        );
        assert_no_zombie(&pids);
    });
}

/// The async forms give what the blocking ones give, limit for limit: the same drain.
fn async_and_blocking_forms_agree(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "async vs blocking", move || {
        let ex = started(watch, Duration::from_millis(200));
        let cases: [(&str, OutputLimits); 4] = [
            (
                "yes | head -c 300000; echo err >&2; exit 4",
                OutputLimits::default().max_stdout(70000),
            ),
            // A grandchild holds the pipe: reading stops after the linger.
            (
                "echo before; sleep 5 & exit 0",
                OutputLimits::default().linger(Duration::from_millis(100)),
            ),
            // The time limit kills it (SIGTERM is ignored: SIGKILL after the grace).
            (
                "trap '' TERM; echo hi; exec sleep 30",
                OutputLimits::default().timeout(Duration::from_millis(200)),
            ),
            (
                "echo all; exit 0",
                OutputLimits::default()
                    .max_output(2)
                    .timeout(Duration::from_secs(20)),
            ),
        ];
        for (script, limits) in cases {
            let spawn = || -> ExecHandle {
                ex.create_process(&["sh", "-c", script], false)
                    .expect("spawn")
            };
            let blocking = spawn().wait_with_output_bounded(limits).expect("blocking");
            let t = Instant::now();
            let asynchronous =
                pollster::block_on(spawn().wait_with_output_bounded_async(limits)).expect("async");
            let took = t.elapsed();
            assert_eq!(asynchronous, blocking, "{script}");
            if limits.timeout == Some(Duration::from_millis(200)) {
                assert!(asynchronous.timed_out);
                assert_eq!(asynchronous.output.status.signal(), Some(libc::SIGKILL));
                assert!(
                    took >= Duration::from_millis(400),
                    "{script}: took {took:?}"
                );
                assert!(took < Duration::from_secs(10), "{script}: took {took:?}");
            }
        }
    });
}

/// After the executor is dropped, a read that would wait fails instead of waiting for ever (a
/// grandchild still holds the pipe, so no end of file comes).
fn a_read_without_an_executor_fails_instead_of_hanging(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "read after the executor", move || {
        let ex = started(watch, Duration::from_secs(1));
        let child = ex
            // The grandchild exists once `one` is read: the drop's SIGKILL to the shell
            // leaves it holding the pipe.
            .create_process(&["sh", "-c", "sleep 3 & echo one; wait"], false)
            .expect("spawn");
        let mut out = child.take_stdout_async().expect("piped");
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        let n = pollster::block_on(out.read(&mut buf)).expect("first line");
        got.extend_from_slice(&buf[..n]);
        drop(ex);
        // Whatever is in the pipe still comes; then the error, not a hang.
        let t = Instant::now();
        let err = loop {
            match pollster::block_on(out.read(&mut buf)) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                Ok(_) => panic!("end of file while the grandchild holds the pipe"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, b"one\n");
        assert!(err.to_string().contains("executor was dropped"), "{err}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
    });
}

/// `Executor::output_async`: std's `output()` defaults (stdout and stderr piped, stdin null),
/// the spawn's error as an `io::Error` of its kind, and the bounded form's limits.
fn executor_output_async(watch: ChildWatch) {
    let _serial = serial();
    bounded(LONG, "output_async", move || {
        let ex = started(watch, Duration::from_millis(200));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo out; echo err >&2; exit 5"]);
        let out = pollster::block_on(ex.output_async(&cmd)).expect("output");
        assert_eq!(out.status.code(), Some(5));
        // stdin was /dev/null: `cat` ended at once.
        assert_eq!(
            (out.stdout, out.stderr),
            (b"out\n".to_vec(), b"err\n".to_vec())
        );

        let missing = pollster::block_on(ex.output_async(&Command::new("no-such-program-22")));
        assert_eq!(
            missing.map(|o| o.status).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::NotFound)
        );

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "yes | head -c 100000; trap '' TERM; exec sleep 30"]);
        let limits = OutputLimits::default()
            .max_stdout(10)
            .timeout(Duration::from_millis(300));
        let got = pollster::block_on(ex.output_bounded_async(&cmd, limits)).expect("bounded");
        assert_eq!(got.output.stdout, b"y\ny\ny\ny\ny\n");
        assert!(got.stdout_truncated && got.timed_out);
        assert_eq!(got.output.status.signal(), Some(libc::SIGKILL));
    });
}

/// With the `tokio` feature the pipes are tokio's `AsyncRead`/`AsyncWrite`: its extension traits
/// (`io-util`) work on them, on a runtime whose own I/O driver is off. The repository's tests
/// have the feature (the path dev-dependency); a packaged crate's do not, and say so.
fn tokio_io_traits(watch: ChildWatch) {
    #[cfg(feature = "tokio")]
    tokio_io_traits_with_the_feature(watch);
    #[cfg(not(feature = "tokio"))]
    eprintln!("skipped ({watch:?}): built without the tokio feature");
}

#[cfg(feature = "tokio")]
fn tokio_io_traits_with_the_feature(watch: ChildWatch) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let _serial = serial();
    bounded(LONG, "tokio traits", move || {
        let ex = started(watch, Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                "while read -r l; do echo \"got $l\"; echo \"e $l\" >&2; done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let child = ex.spawn(&cmd).expect("spawn");
            let mut stdin = child.take_stdin_async().expect("stdin");
            let stdout = child.take_stdout_async().expect("stdout");
            let mut stderr = child.take_stderr_async().expect("stderr");
            let mut lines = BufReader::new(stdout).lines();
            for word in ["one", "two", "three"] {
                AsyncWriteExt::write_all(&mut stdin, format!("{word}\n").as_bytes())
                    .await
                    .expect("write");
                AsyncWriteExt::flush(&mut stdin).await.expect("flush");
                let line = lines.next_line().await.expect("read").expect("a line");
                assert_eq!(line, format!("got {word}"));
            }
            AsyncWriteExt::shutdown(&mut stdin).await.expect("shutdown");
            drop(stdin);
            assert_eq!(lines.next_line().await.expect("read"), None);
            let mut err = String::new();
            AsyncReadExt::read_to_string(&mut stderr, &mut err)
                .await
                .expect("stderr");
            assert_eq!(err, "e one\ne two\ne three\n");
            assert!(child.wait_async().await.success());
        });
    });
}

/// With the `futures-io` feature the pipes are `futures_io::AsyncRead`/`AsyncWrite`, driven here
/// through the traits' poll methods alone (no `futures` crate, no runtime). Skipped, saying so,
/// without the feature (a packaged crate's tests), as the tokio case.
fn futures_io_traits(watch: ChildWatch) {
    #[cfg(feature = "futures-io")]
    futures_io_traits_with_the_feature(watch);
    #[cfg(not(feature = "futures-io"))]
    eprintln!("skipped ({watch:?}): built without the futures-io feature");
}

#[cfg(feature = "futures-io")]
fn futures_io_traits_with_the_feature(watch: ChildWatch) {
    use futures_io::{AsyncRead, AsyncWrite};
    let _serial = serial();
    bounded(LONG, "futures-io traits", move || {
        let ex = started(watch, Duration::from_secs(1));
        let mut cat = Command::new("cat");
        cat.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = ex.spawn(&cat).expect("cat");
        let mut stdin = Some(child.take_stdin_async().expect("stdin"));
        let mut stdout = child.take_stdout_async().expect("stdout");
        let input: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();
        let mut written = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 10_000];
        pollster::block_on(poll_fn(|cx| {
            // Write and read by turns until cat's stdout ends: neither side may wait for ever.
            if let Some(pipe) = &mut stdin {
                while written < input.len() {
                    match Pin::new(&mut *pipe).poll_write(cx, &input[written..]) {
                        Poll::Ready(Ok(n)) => written += n,
                        Poll::Ready(Err(e)) => panic!("write: {e}"),
                        Poll::Pending => break,
                    }
                }
                if written == input.len() {
                    let closed = Pin::new(&mut *pipe).poll_close(cx);
                    assert!(matches!(closed, Poll::Ready(Ok(()))));
                    // Dropped: cat's end of file.
                    stdin = None;
                }
            }
            loop {
                match Pin::new(&mut stdout).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(()),
                    Poll::Ready(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    Poll::Ready(Err(e)) => panic!("read: {e}"),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }));
        assert!(
            got == input,
            "cat gave back {} of {} bytes",
            got.len(),
            input.len()
        );
        assert!(pollster::block_on(child.wait_async()).success());
    });
}

/// One process, one case at a time (`harness = false`): the thread and descriptor counts see
/// no other test's threads or children.
fn main() {
    type Case = fn(ChildWatch);
    let mut cases: Vec<(Case, &str)> = vec![
        (executor_output_async, "executor_output_async"),
        (hundred_children_at_once, "hundred_children_at_once"),
        (
            hundred_children_on_tokio_without_its_io_driver,
            "hundred_children_on_tokio_without_its_io_driver",
        ),
        (megabytes_on_every_stream, "megabytes_on_every_stream"),
        (
            a_dropped_read_loses_no_bytes,
            "a_dropped_read_loses_no_bytes",
        ),
        (nothing_left_behind, "nothing_left_behind"),
        (
            async_and_blocking_forms_agree,
            "async_and_blocking_forms_agree",
        ),
        (
            a_read_without_an_executor_fails_instead_of_hanging,
            "a_read_without_an_executor_fails_instead_of_hanging",
        ),
    ];
    // Each skips, saying so, when built without its feature.
    cases.push((tokio_io_traits, "tokio_io_traits"));
    cases.push((futures_io_traits, "futures_io_traits"));
    let all = cases.into_iter().flat_map(|(f, name)| {
        [ChildWatch::Pidfd, ChildWatch::Signal].map(|watch| (f, name, watch))
    });
    run_cases(
        all,
        |(_, name, watch)| format!("{name} ({watch:?})"),
        |(f, _, watch)| {
            f(watch);
            "ok".to_string()
        },
    );
}
