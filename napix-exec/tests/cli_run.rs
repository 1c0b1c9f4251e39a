//! `napix-exec run`: the built binary on files of commands.
//!
//! Every run is bounded: a runner that outlives [`LIMIT`] is killed and the test fails, so a
//! deadlock shows as a failure, not a hung test suite.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_napix-exec");
/// The most any runner may take here.
const LIMIT: Duration = Duration::from_secs(20);

/// What a finished runner left.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clip = |s: &str| s.chars().take(2000).collect::<String>();
        write!(
            f,
            "status {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.elapsed,
            clip(&self.stdout),
            clip(&self.stderr)
        )
    }
}

/// A fresh directory for one test.
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_run")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// Writes `commands` to a file of its own and returns its path.
fn commands_file(name: &str, commands: &str) -> PathBuf {
    let path = test_dir(name).join("commands.txt");
    std::fs::write(&path, commands).expect("write the commands file");
    path
}

fn spawn(args: &[&str], file: Option<&Path>, stdin: Stdio) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG");
    if let Some(file) = file {
        cmd.arg(file);
    }
    cmd.spawn().expect("start napix-exec")
}

/// Reads both pipes to the end (on threads: neither may fill up) and waits, at most [`LIMIT`].
fn finish(mut child: Child, started: Instant) -> Run {
    let reader = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    // A test may have taken a pipe to read it itself.
    let out = child.stdout.take().map(|p| reader(Box::new(p)));
    let err = child.stderr.take().map(|p| reader(Box::new(p)));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for napix-exec") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("napix-exec run took more than {LIMIT:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    Run {
        status,
        stdout: out.map_or_else(String::new, |t| t.join().expect("stdout reader")),
        stderr: err.map_or_else(String::new, |t| t.join().expect("stderr reader")),
        elapsed,
    }
}

/// `napix-exec run ARGS FILE` with the given commands.
fn run(name: &str, args: &[&str], commands: &str) -> Run {
    let file = commands_file(name, commands);
    let started = Instant::now();
    finish(spawn(args, Some(&file), Stdio::null()), started)
}

/// The result lines (`line N: ...`) in `text`, in order.
fn result_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("line ")).collect()
}

/// The JSON records on stdout, by line number; every stdout line must be one.
fn json_records(run: &Run) -> HashMap<u64, Value> {
    let keys = [
        "line",
        "command",
        "pid",
        "code",
        "signal",
        "error",
        "duration_ms",
        "stdout",
        "stderr",
    ];
    let mut records = HashMap::new();
    for line in run.stdout.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{run:?}"));
        for key in keys {
            assert!(v.get(key).is_some(), "no {key:?} in {line}");
        }
        let n = v["line"].as_u64().expect("line is a number");
        assert!(records.insert(n, v).is_none(), "line {n} reported twice");
    }
    records
}

/// Pids of live processes whose command line contains `token`.
fn processes_with(token: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(token)
            .then_some(pid)
    })
    .collect()
}

/// Whether process `pid` runs `sleep` (its `comm`).
fn is_sleep(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
}

/// Waits (bounded) until `n` processes carry `token`.
fn wait_for_processes(token: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(token).len() < n {
        assert!(
            Instant::now() < deadline,
            "{n} processes with {token:?} never showed up"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A `sleep` argument no other test (or process) uses: `1000.<pid><n>`.
fn sleep_token(n: u32) -> String {
    format!("1000.{}{n}", std::process::id())
}

#[test]
fn mixed_lines_are_each_reported_and_the_status_is_1() {
    let r = run(
        "mixed",
        &["-j", "3"],
        "# a comment\n\
         true\n\
         \n\
         false\n\
         sh -c 'exit 3'\n\
         no-such-program-napix-test --flag\n\
         echo \"unterminated\n\
         \x20\x20echo 'two words'   # trailing comment\n",
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    // By default the commands' output is passed through: stdout holds it and nothing else, the
    // result lines go to stderr.
    assert_eq!(r.stdout, "two words\n", "{r:?}");
    for expected in [
        "line 2: exit 0 in ",
        "line 4: exit 1 in ",
        "line 5: exit 3 in ",
        "line 6: could not start: no-such-program-napix-test",
        "line 7: parse error: missing closing quote: echo \"unterminated",
        "line 8: exit 0 in ",
    ] {
        assert!(r.stderr.contains(expected), "no {expected:?} in\n{r:?}");
    }
    assert_eq!(result_lines(&r.stderr).len(), 6, "{r:?}");
    assert!(
        r.stderr.contains(
            "6 commands: 2 succeeded, 2 failed, 1 parse error, 1 could not start, 0 killed"
        ),
        "{r:?}"
    );
}

#[test]
fn all_successes_exit_0() {
    let r = run("all-ok", &[], "true\necho hi\nsh -c 'exit 0'\n");
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert!(
        r.stderr.contains(
            "3 commands: 3 succeeded, 0 failed, 0 parse errors, 0 could not start, 0 killed"
        ),
        "{r:?}"
    );
}

#[test]
fn a_file_of_only_comments_exits_0() {
    let r = run("empty", &[], "# nothing\n\n   \n");
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(r.stderr.contains("0 commands: "), "{r:?}");
}

#[test]
fn a_parse_error_alone_makes_the_status_1() {
    let r = run("parse-only", &[], "true\necho 'open\n");
    assert_eq!(r.code(), Some(1), "{r:?}");
}

#[test]
fn commands_come_from_stdin_without_a_file_or_with_dash() {
    for args in [&[][..], &["-"][..]] {
        let started = Instant::now();
        let mut child = spawn(args, None, Stdio::piped());
        let mut stdin = child.stdin.take().expect("stdin piped");
        stdin.write_all(b"true\nfalse\n").expect("write stdin");
        drop(stdin);
        let r = finish(child, started);
        assert_eq!(r.code(), Some(1), "{r:?}");
        assert!(r.stderr.contains("line 1: exit 0"), "{r:?}");
        assert!(r.stderr.contains("line 2: exit 1"), "{r:?}");
        // Not a terminal: no note about reading stdin.
        assert!(!r.stderr.contains("reading commands"), "{r:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let file = commands_file("usage", "true\n");
    let file = file.to_str().expect("UTF-8 temp path");
    for args in [
        &["--jobs", "0", file][..],
        &["--timeout=-5", file],
        &["--timeout", "5x", file],
        &["--timeout", "0s", file],
        &["--timeout", "0", file],
        &["--timeout", "1d2", file],
        &["--grace", "soon", file],
        &["--output", "bogus", file],
        &["--output", "ungroup", "--json", file],
        &["--output", "ungroup", "--keep-order", file],
        &["--no-such-flag", file],
        &[file, "extra-argument"],
    ] {
        let started = Instant::now();
        let r = finish(spawn(args, None, Stdio::null()), started);
        assert_eq!(r.code(), Some(2), "args {args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "args {args:?}: {r:?}");
    }
}

#[test]
fn an_unreadable_file_exits_2() {
    let missing = test_dir("missing").join("no-such-file.txt");
    let started = Instant::now();
    let r = finish(spawn(&[], Some(&missing), Stdio::null()), started);
    assert_eq!(r.code(), Some(2), "{r:?}");
    assert!(r.stderr.contains("no-such-file.txt"), "{r:?}");
}

/// Reads a pipe line by line on a thread; each line arrives on the channel as it is written.
fn line_channel(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn each_stdin_line_starts_as_it_arrives() {
    let started = Instant::now();
    let mut child = spawn(&[], None, Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin piped");
    let lines = line_channel(child.stdout.take().expect("stdout piped"));
    stdin
        .write_all(b"echo first\n")
        .expect("write the first line");
    stdin.flush().expect("flush");
    // The first output must come while the second line is not even written.
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the first command ran before the input ended");
    assert_eq!(first, "first");
    stdin
        .write_all(b"echo second\n")
        .expect("write the second line");
    drop(stdin);
    let second = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the second output");
    assert_eq!(second, "second");
    let r = finish(child, started);
    assert_eq!(r.code(), Some(0), "{r:?}");
}

#[test]
fn stdin_on_a_terminal_says_it_reads_commands() {
    // `script` gives the runner a pseudo-terminal as stdin (and stdout/stderr); its own stdin is
    // empty, so the runner sees end of input at once.
    let out = Command::new("script")
        .args(["-qec", &format!("{BIN} run"), "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run `script` (util-linux) to give napix-exec a terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("napix-exec run: reading commands from stdin, one per line"),
        "{text:?}"
    );
}

#[test]
fn the_progress_bar_is_cleared_before_a_message() {
    let token = sleep_token(6);
    let file = commands_file("pty-bar", &format!("sleep {token}\n").repeat(2));
    let file = file.to_str().expect("UTF-8 temp path").to_owned();
    // Under `script` the runner's stderr is a terminal, so it draws its progress bar.
    let mut script = Command::new("script")
        .args([
            "-qec",
            &format!("{BIN} run -j 2 --grace 0.2 {file}"),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run `script` (util-linux) to give napix-exec a terminal");
    let output = script.stdout.take().expect("stdout piped");
    let reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::BufReader::new(output).read_to_end(&mut bytes);
        bytes
    });
    wait_for_processes(&token, 2);
    // Let the bar be drawn (it ticks every 200 ms), then interrupt the runner itself.
    thread::sleep(Duration::from_millis(600));
    let runner = processes_with(&file)
        .into_iter()
        .find(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(BIN.as_bytes()))
        })
        .expect("the runner's pid");
    let pid = rustix::process::Pid::from_raw(runner as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let deadline = Instant::now() + LIMIT;
    while script.try_wait().expect("wait for script").is_none() {
        assert!(Instant::now() < deadline, "the runner did not end");
        thread::sleep(Duration::from_millis(20));
    }
    let text = String::from_utf8_lossy(&reader.join().expect("the reader")).into_owned();
    assert!(text.contains("running"), "no progress bar drawn: {text:?}");
    for message in ["napix-exec: SIGINT: stopping", "2 commands: "] {
        let at = text
            .find(message)
            .unwrap_or_else(|| panic!("no {message:?} in {text:?}"));
        let before = text[..at].trim_end_matches('\r');
        assert!(
            before.ends_with("\x1b[2K") || before.ends_with('\n'),
            "{message:?} printed over the bar: {:?}",
            &text[at.saturating_sub(120)..at]
        );
    }
}

/// While a stream is read the total is unknown: the bar counts what was read (no full "0/0"
/// bar before the first line); once the input ends it shows done/total.
#[test]
fn the_progress_bar_has_no_total_until_the_input_ends() {
    // The producer writes one command and keeps the input open for a second; the command
    // outlives it, so the bar is drawn in both phases.
    let pipeline = format!("(echo 'sleep 3'; sleep 1) | {BIN} run");
    let out = Command::new("script")
        .args(["-qec", &pipeline, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run `script` (util-linux) to give napix-exec a terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {text:?}", out.status);
    assert!(
        !text.contains("0/0"),
        "a total before the input ended: {text:?}"
    );
    let reading = text
        .find("0 done, 1 read so far, 1 running")
        .unwrap_or_else(|| panic!("no bar while reading: {text:?}"));
    let counted = text
        .find("0/1 done, 1 running")
        .unwrap_or_else(|| panic!("no total once the input ended: {text:?}"));
    assert!(reading < counted, "{text:?}");
}

#[test]
fn durations_take_bare_seconds_and_the_usual_units() {
    let token = sleep_token(3);
    let r = run(
        "durations",
        &["--timeout", "0.3", "--grace", "0"],
        &format!("sh -c 'trap \"\" TERM; exec sleep {token}'\n"),
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    // Grace 0: SIGKILL right away.
    assert!(
        r.stderr
            .contains("killed by SIGKILL (signal 9) after timeout"),
        "{r:?}"
    );
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    for timeout in ["1h", "10", "1m30s", "2.5"] {
        let r = run("durations-units", &["--timeout", timeout], "true\n");
        assert_eq!(r.code(), Some(0), "--timeout {timeout}: {r:?}");
    }
}

#[test]
fn a_second_interrupt_kills_at_once_and_says_so_with_pidfds() {
    second_interrupt_kills_at_once("pidfd", 91);
}

/// Without pidfds the stopped executor takes no more messages: the SIGKILL is still sent.
#[test]
fn a_second_interrupt_kills_at_once_and_says_so_with_sigchld() {
    second_interrupt_kills_at_once("signal", 92);
}

fn second_interrupt_kills_at_once(child_watch: &str, n: u32) {
    let token = sleep_token(n);
    // The sleepers ignore SIGTERM, and the grace is long: only SIGKILL ends them soon.
    let commands = format!("sh -c 'trap \"\" TERM; exec sleep {token}'\n").repeat(2);
    let file = commands_file(&format!("second-interrupt-{child_watch}"), &commands);
    let started = Instant::now();
    let args = ["-j", "2", "--grace", "1h", "--child-watch", child_watch];
    let child = spawn(&args, Some(&file), Stdio::null());
    wait_for_processes(&token, 2);
    // Until both shells have set their trap and exec'd `sleep` (it keeps the ignored SIGTERM),
    // a SIGTERM would still end them: the shell carries the token before its trap runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&token).iter().all(|&p| is_sleep(p)) {
        assert!(Instant::now() < deadline, "the shells never exec'd sleep");
        thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("first SIGINT");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(processes_with(&token).len(), 2, "SIGTERM is ignored");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("second SIGINT");
    let r = finish(child, started);
    assert_eq!(r.code(), Some(130), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    assert!(
        r.stderr
            .contains("SIGINT again: sent SIGKILL to 2 running commands"),
        "{r:?}"
    );
    assert_eq!(r.stderr.matches("killed by SIGKILL").count(), 2, "{r:?}");
    assert_eq!(processes_with(&token), Vec::<u32>::new(), "sleepers left");
}

#[test]
fn control_bytes_of_a_binary_input_are_escaped() {
    let dir = test_dir("binary");
    let file = dir.join("commands.bin");
    std::fs::write(&file, b"\xff\x1b[2J\x07\necho \"\x1b]0;title\n").expect("write the input");
    let started = Instant::now();
    let r = finish(spawn(&[], Some(&file), Stdio::null()), started);
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("line 1: parse error: not valid UTF-8: \\xff\\x1b[2J\\x07"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("line 2: parse error: missing closing quote: echo \"\\x1b]0;title"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains('\x1b') && !r.stderr.contains('\x07'),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("2 parse errors, 0 could not start"),
        "{r:?}"
    );
}

#[test]
fn json_capture_says_when_output_is_not_utf8() {
    let r = run(
        "json-utf8",
        &["--json"],
        "printf 'ok'\nprintf '\\377\\376'\n",
    );
    let records = json_records(&r);
    assert_eq!(records[&1]["stdout_invalid_utf8"], false, "{r:?}");
    assert_eq!(records[&2]["stdout_invalid_utf8"], true, "{r:?}");
    assert_eq!(records[&2]["stdout"], "\u{fffd}\u{fffd}", "{r:?}");
    assert_eq!(records[&2]["stderr_invalid_utf8"], false, "{r:?}");
}

#[test]
fn keep_order_prints_in_input_order() {
    let r = run(
        "keep-order",
        &["-j", "3", "--keep-order"],
        "sleep 0.6\nsleep 0.3\ntrue\necho 'open\n",
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    let lines = result_lines(&r.stderr);
    assert_eq!(lines.len(), 4, "{r:?}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("line {}: ", i + 1)), "{r:?}");
    }
}

#[test]
fn fail_fast_starts_nothing_after_a_failure() {
    let r = run(
        "fail-fast",
        &["-j", "1", "--fail-fast"],
        "true\nfalse\ntrue\ntrue\n",
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert_eq!(result_lines(&r.stderr).len(), 2, "{r:?}");
    assert!(
        r.stderr.contains(
            "4 commands: 1 succeeded, 1 failed, 0 parse errors, 0 could not start, 0 killed; \
             halted after a failure: 2 not run"
        ),
        "{r:?}"
    );
}

#[test]
fn kill_on_fail_kills_the_running_ones() {
    let token = sleep_token(5);
    let r = run(
        "kill-on-fail",
        &["-j", "2", "--kill-on-fail", "--grace", "5s"],
        &format!("sleep {token}\nsh -c 'sleep 0.3; exit 1'\ntrue\n"),
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    assert!(r.stderr.contains("line 1: killed by SIGTERM"), "{r:?}");
    assert!(r.stderr.contains("line 2: exit 1"), "{r:?}");
    assert!(
        r.stderr.contains("halted after a failure: 1 not run"),
        "{r:?}"
    );
    assert_eq!(processes_with(&token), Vec::<u32>::new(), "sleeper left");
}

#[test]
fn joblog_records_start_duration_status_and_usage() {
    let dir = test_dir("joblog");
    let log = dir.join("jobs.tsv");
    let _ = std::fs::remove_file(&log);
    let file = commands_file(
        "joblog-commands",
        "true\nsh -c 'exit 3'\nsh -c 'kill -KILL $$'\nno-such-program-napix-joblog\n",
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let log_arg = log.to_str().expect("UTF-8 temp path");
    let started = Instant::now();
    let r = finish(
        spawn(
            &["-j", "1", "--joblog", log_arg],
            Some(&file),
            Stdio::null(),
        ),
        started,
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    let text = std::fs::read_to_string(&log).expect("the job log was written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("line\tstart\tseconds\texit\tsignal\tuser_cpu_s\tsystem_cpu_s\tmax_rss_kib\tcommand")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    let expect = [
        ("1", "0", "0"),
        ("2", "3", "0"),
        ("3", "-", "9"),
        ("4", "-", "-"),
    ];
    for (row, (line, exit, signal)) in rows.iter().zip(expect) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!((row[0], row[3], row[4]), (line, exit, signal), "{text}");
    }
    for row in &rows[..3] {
        let start: f64 = row[1].parse().expect("a start time");
        assert!(start >= before - 1.0 && start < before + 60.0, "{row:?}");
        let secs: f64 = row[2].parse().expect("a duration");
        assert!((0.0..20.0).contains(&secs), "{row:?}");
        let _: f64 = row[5].parse().expect("user CPU seconds");
        let _: f64 = row[6].parse().expect("system CPU seconds");
        let rss: u64 = row[7].parse().expect("max RSS");
        assert!(rss > 0, "{row:?}");
    }
    assert_eq!(rows[3][7], "-", "never started: no usage");
    assert_eq!(rows[1][8], "sh -c 'exit 3'");
}

#[test]
fn json_lines_parse_back() {
    let r = run(
        "json",
        &["--json"],
        "echo hello\n\
         sh -c 'echo oops >&2; exit 4'\n\
         no-such-program-napix-json\n\
         echo \"bad\n\
         sh -c 'kill -TERM $$'\n",
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    let records = json_records(&r);
    assert_eq!(records.len(), 5, "{r:?}");

    let ok = &records[&1];
    assert_eq!(ok["command"], "echo hello");
    assert_eq!(ok["code"], 0);
    assert!(ok["signal"].is_null() && ok["error"].is_null());
    assert!(ok["pid"].as_u64().is_some_and(|p| p > 0));
    assert!(ok["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(ok["stdout"], "hello\n");
    assert_eq!(ok["stderr"], "");

    let failed = &records[&2];
    assert_eq!(failed["code"], 4);
    assert_eq!(failed["stdout"], "");
    assert_eq!(failed["stderr"], "oops\n");

    let missing = &records[&3];
    assert!(missing["pid"].is_null() && missing["code"].is_null());
    let error = missing["error"].as_str().expect("an error text");
    assert!(error.contains("no-such-program-napix-json"), "{error}");

    let bad = &records[&4];
    assert!(bad["pid"].is_null() && bad["duration_ms"].is_null());
    assert!(
        bad["error"]
            .as_str()
            .is_some_and(|e| e.contains("parse error"))
    );

    let signaled = &records[&5];
    assert!(signaled["code"].is_null());
    assert_eq!(signaled["signal"], 15);
    assert_eq!(signaled["timed_out"], false);

    assert!(
        r.stderr.contains(
            "5 commands: 1 succeeded, 1 failed, 1 parse error, 1 could not start, 1 killed"
        ),
        "{r:?}"
    );
}

#[test]
fn json_without_capture_has_null_output() {
    let r = run(
        "json-discard",
        &["--json", "--output", "discard"],
        "echo hello\n",
    );
    assert_eq!(r.code(), Some(0), "{r:?}");
    let records = json_records(&r);
    assert!(records[&1]["stdout"].is_null() && records[&1]["stderr"].is_null());
}

#[test]
fn timeout_kills_a_sleeper_with_sigterm() {
    let r = run(
        "timeout-term",
        &["--json", "--timeout", "300ms"],
        "sleep 30\n",
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    let rec = &json_records(&r)[&1];
    assert_eq!(rec["signal"], 15, "{r:?}");
    assert_eq!(rec["timed_out"], true);
    let ms = rec["duration_ms"].as_f64().expect("duration");
    assert!((250.0..8000.0).contains(&ms), "{ms} ms");
    assert!(r.stderr.contains("1 killed (1 timed out)"), "{r:?}");
}

#[test]
fn timeout_escalates_to_sigkill_when_term_is_ignored() {
    let r = run(
        "timeout-kill",
        &["--timeout", "300ms", "--grace", "300ms"],
        "sh -c 'trap \"\" TERM; while :; do sleep 0.05; done'\n",
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    assert!(
        r.stderr
            .contains("line 1: killed by SIGKILL (signal 9) after timeout in "),
        "{r:?}"
    );
}

#[test]
fn capture_of_a_mebibyte_on_each_pipe_does_not_deadlock() {
    const MIB: usize = 1 << 20;
    let r = run(
        "capture",
        &["--output", "capture"],
        "sh -c \"head -c 1048576 /dev/zero | tr '\\\\0' a & \
         head -c 1048576 /dev/zero | tr '\\\\0' b >&2; wait\"\n\
         echo after\n",
    );
    assert_eq!(r.code(), Some(0), "{r:?}");
    let out_line = format!("1| {}", "a".repeat(MIB));
    let err_line = format!("1| {}", "b".repeat(MIB));
    assert!(r.stdout.lines().any(|l| l == out_line), "{r:?}");
    assert!(r.stderr.lines().any(|l| l == err_line), "{r:?}");
    assert!(r.stdout.contains("line 1: exit 0 in "), "{r:?}");
    assert!(r.stdout.lines().any(|l| l == "2| after"), "{r:?}");
}

/// Sends `signal` to the runner while two sleepers run and two more wait; checks the exit status,
/// the results and summary, and that no sleeper is left.
fn interrupt_mid_run(name: &str, signal: rustix::process::Signal, n: u32, code: i32) {
    let token = sleep_token(n);
    let commands = format!("sleep {token}\n").repeat(4);
    let file = commands_file(name, &commands);
    let started = Instant::now();
    let child = spawn(&["-j", "2"], Some(&file), Stdio::null());
    wait_for_processes(&token, 2);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, signal).expect("signal the runner");
    let r = finish(child, started);

    assert_eq!(r.code(), Some(code), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(15), "{r:?}");
    assert_eq!(
        r.stderr.matches("killed by SIGTERM (signal 15)").count(),
        2,
        "{r:?}"
    );
    let name = if code == 130 { "SIGINT" } else { "SIGTERM" };
    let summary = format!(
        "4 commands: 0 succeeded, 0 failed, 0 parse errors, 0 could not start, 2 killed; \
         interrupted by {name}: 2 not run"
    );
    assert!(r.stderr.contains(&summary), "{r:?}");
    assert_eq!(processes_with(&token), Vec::<u32>::new(), "sleepers left");
}

#[test]
fn sigint_stops_the_run_and_exits_130() {
    interrupt_mid_run("sigint", rustix::process::Signal::INT, 1, 130);
}

#[test]
fn sigterm_stops_the_run_and_exits_143() {
    interrupt_mid_run("sigterm", rustix::process::Signal::TERM, 2, 143);
}

#[test]
fn json_reports_the_resource_usage_of_each_command() {
    let r = run(
        "json-rusage",
        &["--json"],
        "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'\n\
         no-such-program-napix-rusage\n",
    );
    let records = json_records(&r);
    let busy = &records[&1]["rusage"];
    let cpu =
        busy["user_ms"].as_f64().expect("user_ms") + busy["system_ms"].as_f64().expect("system_ms");
    assert!(cpu > 0.0, "{busy}");
    assert!(
        busy["max_rss_bytes"].as_u64().is_some_and(|b| b > 1 << 20),
        "{busy}"
    );
    assert!(busy["minor_faults"].as_u64().is_some(), "{busy}");
    assert!(
        records[&2]["rusage"].is_null(),
        "a command that never started used nothing"
    );
}

/// `--timeout` on a shell whose `sleep` would outlive it: by default every command leads its own
/// process group and the kill reaches the whole group, so nothing is left; with `--same-group`
/// the kill reaches the shell only and the `sleep` survives it (and is cleaned up here).
#[test]
fn a_timeout_leaves_no_grandchild_unless_same_group() {
    for (n, same_group) in [(81, false), (82, true)] {
        let token = sleep_token(n);
        let mut args = vec!["--timeout", "200ms"];
        if same_group {
            args.push("--same-group");
        }
        let r = run(
            &format!("group-{n}"),
            &args,
            &format!("sh -c 'sleep {token}; echo finished'\n"),
        );
        assert_eq!(r.code(), Some(1), "{r:?}");
        let deadline = Instant::now() + Duration::from_secs(2);
        while !processes_with(&token).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let left = processes_with(&token);
        for &pid in &left {
            let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        if same_group {
            assert_eq!(left.len(), 1, "--same-group: the sleep outlives its shell");
        } else {
            assert_eq!(
                left,
                Vec::<u32>::new(),
                "the shell's sleep survived the timeout"
            );
        }
    }
}

/// SIGTERM to napix-exec: each running command's whole group is killed, grandchildren included.
#[test]
fn sigterm_leaves_no_grandchild() {
    let token = sleep_token(83);
    let file = commands_file(
        "sigterm-tree",
        &format!("sh -c 'sleep {token}; true'\n").repeat(2),
    );
    let started = Instant::now();
    let child = spawn(&["-j", "2"], Some(&file), Stdio::null());
    wait_for_processes(&format!("sleep {token}"), 2);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal the runner");
    let r = finish(child, started);
    assert_eq!(r.code(), Some(143), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !processes_with(&token).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        processes_with(&token),
        Vec::<u32>::new(),
        "grandchildren left"
    );
}

/// Two commands writing at once: `group` (the default) prints each one's output whole as it
/// ends; `ungroup` lets them write straight to stdout, so their lines mix as written. The steps
/// are 0.5 s apart: a1, b1, a2 (a ends), b2 (b ends).
#[test]
fn group_prints_each_output_whole_and_ungroup_as_written() {
    let commands = "sh -c 'echo a1; sleep 1; echo a2'\n\
                    sh -c 'sleep 0.5; echo b1; sleep 1; echo b2'\n";
    for (mode, expected) in [
        (None, "a1\na2\nb1\nb2\n"),
        (Some("group"), "a1\na2\nb1\nb2\n"),
        (Some("ungroup"), "a1\nb1\na2\nb2\n"),
    ] {
        let mut args = vec!["-j", "2"];
        args.extend(mode.map(|m| ["--output", m]).into_iter().flatten());
        let r = run("group-ungroup", &args, commands);
        assert_eq!(r.code(), Some(0), "{mode:?}: {r:?}");
        assert_eq!(r.stdout, expected, "{mode:?}: {r:?}");
        assert_eq!(result_lines(&r.stderr).len(), 2, "{mode:?}: {r:?}");
    }
}

/// With --keep-order the grouped output comes in input order too, each command's whole, even
/// when later commands end first.
#[test]
fn keep_order_groups_output_in_input_order() {
    let r = run(
        "keep-order-output",
        &["-j", "3", "--keep-order"],
        "sh -c 'echo one; sleep 0.6; echo one-end; echo one-err >&2'\n\
         sh -c 'echo two; sleep 0.3; echo two-end'\n\
         echo three\n",
    );
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(r.stdout, "one\none-end\ntwo\ntwo-end\nthree\n", "{r:?}");
    // Each result line comes before its command's stderr.
    let err: Vec<&str> = r.stderr.lines().collect();
    let at = |needle: &str| {
        err.iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?}: {r:?}"))
    };
    assert!(at("line 1: ") < at("one-err"), "{r:?}");
    assert!(at("one-err") < at("line 2: "), "{r:?}");
    assert!(at("line 2: ") < at("line 3: "), "{r:?}");
}

/// A mebibyte on each stream passes through grouped, byte for byte, not mixed with the other
/// command's output.
#[test]
fn grouped_output_of_a_mebibyte_passes_unchanged() {
    const MIB: usize = 1 << 20;
    let r = run(
        "group-mib",
        &["-j", "2"],
        "sh -c \"head -c 1048576 /dev/zero | tr '\\\\0' a & \
         head -c 1048576 /dev/zero | tr '\\\\0' b >&2; wait\"\n\
         echo after\n",
    );
    assert_eq!(r.code(), Some(0), "{r:?}");
    let a = "a".repeat(MIB);
    assert!(
        r.stdout == format!("{a}after\n") || r.stdout == format!("after\n{a}"),
        "{r:?}"
    );
    assert!(r.stderr.contains(&"b".repeat(MIB)), "{r:?}");
}

/// Grouped output has no size limit: past 1 MiB it waits in a temporary file, and 70 MiB (more
/// than a JSON record keeps) come out whole.
#[test]
fn grouped_output_has_no_size_limit() {
    const SIZE: usize = 70 << 20;
    let r = run(
        "group-70mib",
        &[],
        &format!("sh -c \"head -c {SIZE} /dev/zero | tr '\\\\0' a\"\n"),
    );
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(r.stdout.len(), SIZE, "{r:?}");
    assert!(r.stdout.bytes().all(|b| b == b'a'));
    assert!(!r.stderr.contains("dropped"), "{r:?}");
}

/// A bad duration is named, and the syntax is given once, with the units it accepts.
#[test]
fn a_bad_duration_prints_one_unit_list() {
    let file = commands_file("bad-duration", "true\n");
    let file = file.to_str().expect("UTF-8 temp path");
    for args in [
        &["--timeout", "5x", file][..],
        &["--grace", "soon", file],
        &["--timeout", "1d2", file],
    ] {
        let started = Instant::now();
        let r = finish(spawn(args, None, Stdio::null()), started);
        assert_eq!(r.code(), Some(2), "{args:?}: {r:?}");
        assert!(r.stderr.contains(args[1]), "{args:?}: {r:?}");
        assert_eq!(
            r.stderr.matches("ns, us, ms, s, m, h, d, w, M, y").count(),
            1,
            "{args:?}: {r:?}"
        );
        assert!(!r.stderr.contains("supported units"), "{args:?}: {r:?}");
    }
    let help = Command::new(BIN)
        .args(["run", "--help"])
        .output()
        .expect("run --help");
    // Wrapped to the terminal's width: compare with the line breaks as spaces.
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        help.matches("ns, us, ms, s, m, h, d, w, M, y").count(),
        1,
        "{help}"
    );
    assert!(
        help.contains("unless they left the group (setsid"),
        "{help}"
    );
    assert!(!help.contains("nothing behind"), "{help}");
    assert!(!help.contains("old behaviour"), "{help}");
    assert!(
        help.contains("--same-group Run every command in napix-exec's own process group"),
        "{help}"
    );
}

/// What a run cleans up, exactly as the help says: a kill (here --timeout) reaches the command's
/// whole process group, but not a process that left it (setsid); and a command that ends by
/// itself is not cleaned up after: what it left in the background keeps running.
#[test]
fn a_kill_reaches_the_group_only_and_an_ended_command_leaves_its_background() {
    let escaped = sleep_token(84);
    let grouped = sleep_token(85);
    let background = sleep_token(86);
    let r = run(
        "what-is-cleaned",
        &["-j", "2", "--timeout", "1s", "--output", "discard"],
        &format!(
            "sh -c 'setsid sleep {escaped} & sleep {grouped}'\n\
             sh -c 'sleep {background} &'\n"
        ),
    );
    let left = |token: &str| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !processes_with(token).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let pids = processes_with(token);
        for &pid in &pids {
            let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        pids.len()
    };
    let (escaped, grouped, background) = (left(&escaped), left(&grouped), left(&background));
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.stdout.contains("line 1: killed by SIGTERM"), "{r:?}");
    assert!(r.stdout.contains("line 2: exit 0"), "{r:?}");
    assert_eq!(grouped, 0, "the timeout killed the command's group");
    assert_eq!(
        escaped, 1,
        "setsid left the group: the kill does not reach it"
    );
    assert_eq!(
        background, 1,
        "a command that ended by itself is not cleaned up after"
    );
}
