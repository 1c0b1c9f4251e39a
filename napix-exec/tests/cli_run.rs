//! `napix-exec run`: the built binary on files of commands.
//!
//! Every run is bounded: a runner that outlives [`LIMIT`] is killed and the test fails, so a
//! deadlock shows as a failure, not a hung test suite.

use std::collections::HashMap;
use std::io::{Read, Write};
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
    let out = reader(Box::new(child.stdout.take().expect("stdout piped")));
    let err = reader(Box::new(child.stderr.take().expect("stderr piped")));
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
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
    }
}

/// `napix-exec run ARGS FILE` with the given commands.
fn run(name: &str, args: &[&str], commands: &str) -> Run {
    let file = commands_file(name, commands);
    let started = Instant::now();
    finish(spawn(args, Some(&file), Stdio::null()), started)
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
    for expected in [
        "line 2: exit 0 in ",
        "line 4: exit 1 in ",
        "line 5: exit 3 in ",
        "line 6: could not start: no-such-program-napix-test",
        "line 7: parse error: missing closing quote: echo \"unterminated",
        "line 8: exit 0 in ",
    ] {
        assert!(r.stdout.contains(expected), "no {expected:?} in\n{r:?}");
    }
    assert_eq!(r.stdout.lines().count(), 6, "{r:?}");
    assert!(
        r.stderr
            .contains("6 commands: 2 succeeded, 2 failed, 2 could not start, 0 killed"),
        "{r:?}"
    );
}

#[test]
fn all_successes_exit_0() {
    let r = run("all-ok", &[], "true\necho hi\nsh -c 'exit 0'\n");
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert!(
        r.stderr
            .contains("3 commands: 3 succeeded, 0 failed, 0 could not start, 0 killed"),
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
        assert!(r.stdout.contains("line 1: exit 0"), "{r:?}");
        assert!(r.stdout.contains("line 2: exit 1"), "{r:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let file = commands_file("usage", "true\n");
    let file = file.to_str().expect("UTF-8 temp path");
    for args in [
        &["--jobs", "0", file][..],
        &["--timeout", "5", file],
        &["--timeout", "5x", file],
        &["--timeout", "0s", file],
        &["--grace", "soon", file],
        &["--output", "bogus", file],
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

#[test]
fn json_lines_parse_back() {
    let r = run(
        "json",
        &["--json", "--output", "capture"],
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
        r.stderr
            .contains("5 commands: 1 succeeded, 1 failed, 2 could not start, 1 killed"),
        "{r:?}"
    );
}

#[test]
fn json_without_capture_has_null_output() {
    let r = run("json-discard", &["--json"], "echo hello\n");
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
        r.stdout
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
        r.stdout.matches("killed by SIGTERM (signal 15)").count(),
        2,
        "{r:?}"
    );
    let name = if code == 130 { "SIGINT" } else { "SIGTERM" };
    let summary = format!(
        "4 commands: 0 succeeded, 0 failed, 0 could not start, 2 killed; \
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
