//! Collecting output without deadlocks: `wait_with_output` and `wait_with_output_bounded` with
//! real children on every backend, in both child-watch modes: hundreds of KB on both streams at
//! once, byte limits, a time limit that kills, a grandchild holding the pipe open after the child
//! exited. Each test counts this process's descriptors before and after (one test at a time),
//! so a pipe end left open anywhere fails it.

#[macro_use]
mod common;

use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{ChildStdout, Command, Executor, OutputLimits, SpawnBackend, Stdio};

const LONG: Duration = Duration::from_secs(30);

per_backend!(
    unread_pipe_blocks_wait_but_not_wait_with_output,
    both_streams_interleaved_hundreds_of_kb,
    byte_limits_truncate_and_the_child_still_finishes,
    timeout_kills_with_escalation_and_returns_the_output,
    timeout_reaches_sigkill_for_a_child_ignoring_sigterm,
    grandchild_holding_the_pipe_returns_within_the_linger,
    a_linger_too_large_to_represent_means_no_linger,
    taken_and_discarded_streams_come_back_empty,
    piped_stdin_is_closed_first,
    executor_output_pipes_stdout_and_stderr_by_default,
);

/// Runs `body` with a started executor (kill grace `grace`) and checks that this process has
/// the same descriptors afterwards.
fn fds_checked(b: SpawnBackend, grace: Duration, body: impl FnOnce(&Arc<Executor>)) {
    let _serial = serial();
    let before = our_fds();
    {
        let running = start(b, grace);
        body(&running.arc());
    }
    assert!(
        wait_until(Duration::from_secs(3), || our_fds() == before),
        "descriptors left open: before {before:?}, after {}",
        describe_fds(&our_fds())
    );
}

/// Runs a drain on a helper thread so that a hang fails the test instead of blocking it.
fn collect<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    bounded(LONG, what, f)
}

fn unread_pipe_blocks_wait_but_not_wait_with_output(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        let h = spawn_ok(
            ex,
            &["sh", "-c", "head -c 200000 /dev/zero; echo done >&2"],
            false,
        );
        // Nobody reads: the child blocks on the full pipe and never exits.
        assert_eq!(h.wait_timeout(Duration::from_millis(500)), None);
        let out =
            collect("wait_with_output", move || h.wait_with_output()).expect("wait_with_output");
        assert!(out.status.success(), "{:?}", out.status);
        assert_eq!(out.stdout.len(), 200_000);
        assert!(out.stdout.iter().all(|&c| c == 0));
        assert_eq!(out.stderr, b"done\n");
    });
}

fn both_streams_interleaved_hundreds_of_kb(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        // Two writers at once, so the streams fill in turns.
        let script = "yes out | head -c 300000 & yes err | head -c 250000 >&2; wait; exit 7";
        let h = spawn_ok(ex, &["sh", "-c", script], false);
        let out =
            collect("wait_with_output", move || h.wait_with_output()).expect("wait_with_output");
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(out.stdout.len(), 300_000);
        assert_eq!(out.stderr.len(), 250_000);
        assert!(out.stdout.chunks(4).all(|c| c == &b"out\n"[..c.len()]));
        assert!(out.stderr.chunks(4).all(|c| c == &b"err\n"[..c.len()]));

        // The bounded form without limits collects the same.
        let h = spawn_ok(ex, &["sh", "-c", script], false);
        let got = collect("bounded", move || {
            h.wait_with_output_bounded(OutputLimits::default())
        })
        .expect("wait_with_output_bounded");
        assert_eq!(got.output.status.code(), Some(7));
        assert_eq!(
            (got.output.stdout.len(), got.output.stderr.len()),
            (300_000, 250_000)
        );
        assert!(!got.stdout_truncated && !got.stderr_truncated);
        assert!(!got.timed_out && !got.pipes_left_open);
    });
}

fn byte_limits_truncate_and_the_child_still_finishes(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        let script = "yes | head -c 1000000; printf hello-world >&2; exit 3";
        let h = spawn_ok(ex, &["sh", "-c", script], false);
        let limits = OutputLimits::default()
            .max_stdout(1000)
            .max_stderr(5)
            .timeout(LONG);
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        // Past the limit the bytes are read and dropped: the child is never blocked.
        assert_eq!(got.output.status.code(), Some(3));
        assert_eq!(got.output.stdout, "y\n".repeat(500).as_bytes());
        assert_eq!(got.output.stderr, b"hello");
        assert!(got.stdout_truncated && got.stderr_truncated);
        assert!(!got.timed_out && !got.pipes_left_open);

        // Exactly at the limit is not truncated.
        let h = spawn_ok(ex, &["sh", "-c", "printf 12345"], false);
        let limits = OutputLimits::default().max_output(5);
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        assert_eq!(got.output.stdout, b"12345");
        assert!(!got.stdout_truncated);
    });
}

fn timeout_kills_with_escalation_and_returns_the_output(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        let h = spawn_ok(ex, &["sh", "-c", "echo started; exec sleep 30"], false);
        let limits = OutputLimits::default().timeout(Duration::from_millis(300));
        let t = Instant::now();
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        let took = t.elapsed();
        assert!(got.timed_out);
        assert_eq!(signal(got.output.status), Some(libc::SIGTERM));
        assert_eq!(got.output.stdout, b"started\n");
        assert!(!got.pipes_left_open);
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "took {took:?}"
        );
    });
}

fn timeout_reaches_sigkill_for_a_child_ignoring_sigterm(b: SpawnBackend) {
    let grace = Duration::from_millis(300);
    fds_checked(b, grace, |ex| {
        let script = "trap '' TERM; echo stubborn; exec sleep 30";
        let h = spawn_ok(ex, &["sh", "-c", script], false);
        let limits = OutputLimits::default().timeout(Duration::from_millis(200));
        let t = Instant::now();
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        let took = t.elapsed();
        assert!(got.timed_out);
        assert_eq!(signal(got.output.status), Some(libc::SIGKILL));
        assert_eq!(got.output.stdout, b"stubborn\n");
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "the timeout plus the grace: took {took:?}"
        );
    });
}

fn grandchild_holding_the_pipe_returns_within_the_linger(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        // The shell exits at once; its `sleep` keeps stdout and stderr open for 30 s.
        let h = spawn_ok(ex, &["sh", "-c", "sleep 30 & echo $!; echo hi"], false);
        let limits = OutputLimits::default().timeout(LONG);
        let t = Instant::now();
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        let took = t.elapsed();
        let text = String::from_utf8(got.output.stdout.clone()).expect("utf-8");
        let grandchild: i32 = text
            .lines()
            .next()
            .and_then(|l| l.parse().ok())
            .expect("pid");
        // The sleep is the test's to end; it was reparented when the shell exited.
        let pid = rustix::process::Pid::from_raw(grandchild).expect("positive pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        assert!(got.output.status.success(), "{:?}", got.output.status);
        assert!(text.ends_with("\nhi\n"), "{text:?}");
        assert!(got.pipes_left_open && !got.timed_out);
        assert!(took < Duration::from_secs(2), "took {took:?}");

        // A longer linger still catches output written just after the exit.
        let script = "(sleep 0.2; echo late) & echo early";
        let h = spawn_ok(ex, &["sh", "-c", script], false);
        let limits = OutputLimits::default().linger(Duration::from_secs(5));
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        assert_eq!(got.output.stdout, b"early\nlate\n");
        assert!(!got.pipes_left_open);
    });
}

fn a_linger_too_large_to_represent_means_no_linger(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        // Duration::MAX cannot be added to an instant: it must mean "read to the end", as a
        // too-large timeout means no timeout, never "stop at the exit".
        let script = "(sleep 0.3; echo late) & echo early";
        let h = spawn_ok(ex, &["sh", "-c", script], false);
        let limits = OutputLimits::default().linger(Duration::MAX);
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        assert_eq!(got.output.stdout, b"early\nlate\n");
        assert!(!got.pipes_left_open && !got.timed_out);
    });
}

fn taken_and_discarded_streams_come_back_empty(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        let h = spawn_ok(ex, &["sh", "-c", "echo out; echo err >&2"], false);
        let stdout = h.take_stdout().expect("stdout pipe");
        let out =
            collect("wait_with_output", move || h.wait_with_output()).expect("wait_with_output");
        assert!(out.stdout.is_empty());
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(read_all(stdout, LONG), b"out\n");

        let h = spawn_ok(ex, &["sh", "-c", "echo out; exit 4"], true);
        let out =
            collect("wait_with_output", move || h.wait_with_output()).expect("wait_with_output");
        assert_eq!(out.status.code(), Some(4));
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    });
}

#[test]
fn pipe_readers_turn_non_blocking_and_convert_like_std() {
    fds_checked(SpawnBackend::default(), Duration::from_millis(200), |ex| {
        let h = spawn_ok(ex, &["sh", "-c", "sleep 0.3; echo late"], false);
        let stdout = h.take_stdout().expect("stdout pipe");
        stdout.set_nonblocking(true).expect("set_nonblocking");
        let flags = rustix::fs::fcntl_getfl(stdout.as_fd()).expect("F_GETFL");
        assert!(flags.contains(rustix::fs::OFlags::NONBLOCK));
        let mut stdout = stdout;
        let mut buf = [0u8; 16];
        let e = stdout.read(&mut buf).expect_err("nothing written yet");
        assert_eq!(e.kind(), ErrorKind::WouldBlock);

        // Back to blocking, through an OwnedFd and back.
        let raw = stdout.as_raw_fd();
        let fd: OwnedFd = stdout.into();
        assert_eq!(fd.as_raw_fd(), raw);
        let stdout = ChildStdout::from(fd);
        stdout.set_nonblocking(false).expect("set_nonblocking");
        assert_eq!(read_all(stdout, LONG), b"late\n");
        assert!(wait_for(&h, LONG).success());
    });
}

fn piped_stdin_is_closed_first(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        // `cat` ends only at end of file on its stdin: an open stdin would hang the collection.
        let mut cmd = Command::new("cat");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let h = ex.spawn(&cmd).expect("spawn cat");
        let out =
            collect("wait_with_output", move || h.wait_with_output()).expect("wait_with_output");
        assert!(out.status.success(), "{:?}", out.status);
        assert!(out.stdout.is_empty() && out.stderr.is_empty());

        let h = ex.spawn(&cmd).expect("spawn cat");
        let limits = OutputLimits::default().timeout(LONG);
        let got = collect("bounded", move || h.wait_with_output_bounded(limits))
            .expect("wait_with_output_bounded");
        assert!(got.output.status.success() && !got.timed_out);
    });
}

fn executor_output_pipes_stdout_and_stderr_by_default(b: SpawnBackend) {
    fds_checked(b, Duration::from_millis(200), |ex| {
        // stdin /dev/null by default: `cat` ends at once.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo \"$K\"; echo err >&2; exit 5"])
            .env("K", "v");
        let exec = Arc::clone(ex);
        let out = collect("output", move || exec.output(&cmd)).expect("output");
        assert_eq!(out.status.code(), Some(5));
        assert_eq!(out.stdout, b"v\n");
        assert_eq!(out.stderr, b"err\n");

        // What the command sets wins over the defaults.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2"])
            .stdout(Stdio::null());
        let exec = Arc::clone(ex);
        let out = collect("output", move || exec.output(&cmd)).expect("output");
        assert!(out.stdout.is_empty());
        assert_eq!(out.stderr, b"err\n");

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "yes | head -c 100000"]);
        let exec = Arc::clone(ex);
        let limits = OutputLimits::default().max_stdout(10);
        let got = collect("output_bounded", move || exec.output_bounded(&cmd, limits))
            .expect("output_bounded");
        assert_eq!(got.output.stdout, b"y\ny\ny\ny\ny\n");
        assert!(got.stdout_truncated && got.output.status.success());

        // A spawn error keeps its kind.
        let exec = Arc::clone(ex);
        let e = collect("output", move || {
            exec.output(&Command::new("/no/such/program"))
        })
        .expect_err("no such program");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    });
}
