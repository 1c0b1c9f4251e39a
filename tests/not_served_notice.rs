//! A program that never runs the executor's loop is told so within seconds, on stderr when it
//! installed no `tracing` subscriber (once per executor), through `tracing` alone when it did;
//! and the requests it made before the loop started are still served once it does.
//!
//! Each case runs in a fresh copy of this test binary (a process with no subscriber set by any
//! other test), selected by `CHILD_ENV`; the parent reads its stderr and stdout.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napix_executor::Executor;

/// Which case the copy of this binary plays; unset in the parent.
const CHILD_ENV: &str = "NAPIX_NOT_SERVED_CHILD";
/// The start of the stderr line.
const NOTICE: &str = "napix-executor: a spawn request has waited";
/// How long the copy waits before it starts its loops.
const LOOP_STARTS_AFTER: Duration = Duration::from_millis(3500);

/// The copy's side: two executors nobody runs, three requests to the first and one to the
/// second (blocking or async), then the loops start and every request must be served.
#[test]
fn child_case() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    if case == "subscriber" {
        tracing::subscriber::set_global_default(PrintWarnings).expect("first subscriber");
    }
    let first = Executor::new().expect("new");
    let second = Executor::new().expect("new");
    let requests: Vec<_> = [&first, &first, &first, &second]
        .into_iter()
        .map(|ex| {
            let ex = ex.clone();
            let asynchronous = case == "async";
            std::thread::spawn(move || {
                let h = if asynchronous {
                    pollster::block_on(ex.create_process_async(&["/bin/true"], true))
                } else {
                    ex.create_process(&["/bin/true"], true)
                };
                h.expect("served once the loop runs").wait().success()
            })
        })
        .collect();
    std::thread::sleep(LOOP_STARTS_AFTER);
    let loops: Vec<_> = [&first, &second]
        .into_iter()
        .map(|ex| {
            let ex = ex.clone();
            std::thread::spawn(move || ex.run())
        })
        .collect();
    let served = requests
        .into_iter()
        .map(|r| r.join())
        .filter(|r| matches!(r, Ok(true)))
        .count();
    println!("SERVED {served}");
    first.stop();
    second.stop();
    for l in loops {
        l.join().expect("loop thread").expect("run");
    }
}

/// Writes every WARN event's message to stdout, marked.
struct PrintWarnings;

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for PrintWarnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        println!("EVENT {}", message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// What the copy wrote: its stderr lines with when each came (from its spawn), and its stdout.
struct ChildRun {
    stderr: Vec<(Duration, String)>,
    stdout: String,
}

fn run_child(case: &str) -> ChildRun {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the copy");
    let t0 = Instant::now();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                lines.lock().expect("lock").push((t0.elapsed(), line));
            }
        })
    };
    let mut stdout = String::new();
    let mut out = child.stdout.take().expect("piped");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the copy ({case}) did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    out.read_to_string(&mut stdout).expect("stdout");
    reader.join().expect("reader");
    let stderr = std::mem::take(&mut *lines.lock().expect("lock"));
    assert!(
        status.success(),
        "the copy ({case}) failed: {stdout}\n{stderr:?}"
    );
    ChildRun { stderr, stdout }
}

fn check_stderr_notice(case: &str) {
    let run = run_child(case);
    let notices: Vec<_> = run
        .stderr
        .iter()
        .filter(|(_, line)| line.starts_with(NOTICE))
        .collect();
    // One line per executor (two), not one per request (four).
    assert_eq!(notices.len(), 2, "{:?}", run.stderr);
    for (at, line) in notices {
        assert!(
            *at < Duration::from_secs(3),
            "the notice came {at:?} after the spawn"
        );
        assert!(
            line.contains("Executor::start()") && line.contains("run_with"),
            "the notice names the fix: {line}"
        );
    }
    assert!(run.stdout.contains("SERVED 4"), "{}", run.stdout);
}

/// No subscriber, blocking requests: the notice is on stderr within 3 s, once per executor, and
/// the loop that starts later serves every request.
#[test]
fn blocking_requests_without_a_subscriber_write_the_notice_to_stderr() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    check_stderr_notice("blocking");
}

/// The same with futures (woken once by the request timer to tell).
#[test]
fn async_requests_without_a_subscriber_write_the_notice_to_stderr() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    check_stderr_notice("async");
}

/// With a subscriber the warning goes to it (once per request) and nothing goes to stderr.
#[test]
fn with_a_subscriber_the_warning_goes_to_tracing_only() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let run = run_child("subscriber");
    assert!(
        !run.stderr.iter().any(|(_, line)| line.contains(NOTICE)),
        "{:?}",
        run.stderr
    );
    let events = run
        .stdout
        .lines()
        .filter(|l| l.contains("EVENT ") && l.contains("no thread runs it"))
        .count();
    assert_eq!(events, 4, "{}", run.stdout);
    assert!(
        run.stdout.contains("Executor::start()"),
        "the warning names the fix: {}",
        run.stdout
    );
    assert!(run.stdout.contains("SERVED 4"), "{}", run.stdout);
}
