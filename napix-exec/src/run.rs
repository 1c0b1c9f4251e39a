//! `napix-exec run [FILE]`: run a file of commands through one executor from worker threads.
//!
//! The shape is the seed's: the executor loop runs on the main thread, `-j` worker threads take
//! the next command line, ask the executor for a process and wait for it (with `--timeout`), and
//! a coordinating thread stops the executor once every worker is done, which lets `run()` return.
//! A signal thread (signal-hook) turns SIGINT/SIGTERM into `stop()`.
//!
//! ```text
//! main:         open input -> build executor -> executor.run() ............ -> summary, exit
//! input:        read a line -> channel (detached: a blocked read never holds the end)
//! coordinator:  spawn workers, work too -> join them -> executor.stop() --^
//! worker (xN):  next line -> parse -> spawn (own process group) -> [capture] -> wait(_timeout)/kill -> report
//! signals:      SIGINT/SIGTERM -> mark interrupted -> executor.stop(); again -> SIGKILL all
//! ```
//!
//! Output (`--output`): each command's stdout and stderr are passed through, as xargs and GNU
//! parallel do: by default grouped (read while the command runs, written whole when it ends, in
//! input order with `--keep-order`), or straight through (`ungroup`), tagged with the line number
//! (`tag`), or dropped (`discard`). One result line per command (`--json`: one JSON object, the
//! output inside it) in the order the commands end (input order with `--keep-order`): on stderr
//! while the commands' output fills stdout (`group`, `ungroup`), on stdout otherwise; `--joblog`
//! lines; the summary, notes and the progress bar on stderr.
//!
//! Exit status: 0 when every command exited 0; 1 otherwise (a failure, a kill, a line that could
//! not be parsed or started), and when the executor itself fails; 2 for a usage error or an
//! unreadable input; 128 + the signal after SIGINT (130) or SIGTERM (143).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use napix_executor::{ChildWatch, Command, ExecHandle, Executor, KillScope, SpawnError, Stdio};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::duration;

#[path = "run_capture.rs"]
mod capture;
#[path = "run_report.rs"]
mod report;

use capture::{Capture, Keep};
use report::{Outcome, Status, Tally, TextStyle};

/// How long captured pipes may stay open after their command ended before the runner stops
/// reading them (a background process that inherited them would otherwise hold the runner).
const DRAIN: Duration = Duration::from_secs(1);

/// How often a worker waiting for the next input line looks whether the run was stopped.
const IDLE_LOOK: Duration = Duration::from_millis(50);

#[derive(clap::Args)]
#[command(after_help = run_help())]
pub struct RunArgs {
    /// File of commands, one per line; stdin when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// Worker threads submitting commands (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    jobs: Option<NonZeroUsize>,

    /// Per-command time limit: seconds (10, 0.5) or with a unit (500ms, 2s, 1m, 1h); then the
    /// command gets SIGTERM, and SIGKILL after the grace.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    timeout: Option<Duration>,

    /// Time between SIGTERM and SIGKILL when a command is killed (timeout, interrupt,
    /// --kill-on-fail); same syntax as --timeout, 0 for SIGKILL at once.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, default_value = "3s")]
    grace: Duration,

    /// What to do with each command's stdout and stderr.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = OutputMode::Group)]
    output: OutputMode,

    /// Print one JSON object per command on stdout instead of a text line (keys: line, command,
    /// pid, code, signal, error, timed_out, duration_ms, stdout, stderr, stdout_invalid_utf8,
    /// stderr_invalid_utf8, rusage); the output of `group` and `tag` goes into it, `discard`
    /// leaves it null.
    #[arg(long)]
    json: bool,

    /// Print results and grouped output in input order (each waits for the lines before it),
    /// not as commands end.
    #[arg(short = 'k', long)]
    keep_order: bool,

    /// After the first command that does not succeed (non-zero exit, killed, could not start,
    /// parse error), start no new command; running ones go on to their end.
    #[arg(long)]
    fail_fast: bool,

    /// Like --fail-fast, and also kill the running commands (SIGTERM, SIGKILL after the grace).
    #[arg(long)]
    kill_on_fail: bool,

    /// Append one tab-separated line per command to FILE: line, start (Unix time), seconds, exit
    /// code, signal, user and system CPU seconds, max RSS (KiB), command. A header line starts a
    /// new file.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// Run every command in napix-exec's own process group instead of a new group per command:
    /// a kill (timeout, interrupt, --kill-on-fail) then reaches the command's own process only,
    /// and the processes it started keep running.
    #[arg(long)]
    same_group: bool,

    /// How the executor learns that a command ended: pidfds (Linux 5.4+), SIGCHLD (`signal`, for
    /// older kernels), or `auto`: pidfds where the kernel has them.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = WatchMode::Auto)]
    child_watch: WatchMode,
}

/// `--child-watch`: the library's [`ChildWatch`].
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WatchMode {
    Auto,
    Pidfd,
    Signal,
}

impl WatchMode {
    fn child_watch(self) -> ChildWatch {
        match self {
            WatchMode::Auto => ChildWatch::Auto,
            WatchMode::Pidfd => ChildWatch::Pidfd,
            WatchMode::Signal => ChildWatch::Signal,
        }
    }
}

/// `--output`: where each command's stdout and stderr go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OutputMode {
    /// Read while the command runs, then written unchanged and whole when it ends (GNU
    /// parallel's default): stdout to stdout, stderr to stderr, one command's after another's,
    /// in input order with --keep-order. Past 1 MiB a command's output waits in a temporary
    /// file ($TMPDIR); in a --json record at most 64 MiB per stream (a note counts the rest).
    Group,
    /// The commands write to napix-exec's own stdout and stderr as they run (xargs, GNU
    /// parallel's --ungroup): nothing held back; lines of commands running at once may mix.
    Ungroup,
    /// Like group, each line prefixed `N| ` (N: the command's input line); the result line
    /// stays on stdout, before the output.
    #[value(alias = "capture")]
    Tag,
    /// Send it to /dev/null; the result lines go to stdout.
    Discard,
}

impl OutputMode {
    /// Whether the runner reads the command's pipes.
    fn captures(self) -> bool {
        matches!(self, OutputMode::Group | OutputMode::Tag)
    }

    /// Whether the text result lines go to stderr: while the commands' own output fills stdout,
    /// stdout carries nothing else (as with xargs and parallel).
    fn results_on_stderr(self) -> bool {
        matches!(self, OutputMode::Group | OutputMode::Ungroup)
    }
}

/// The text after `run --help`'s options.
fn run_help() -> String {
    format!(
        "\
Each line is one command, split with shell quoting rules (single and double quotes, backslash \
escapes) and run without a shell. Blank lines and lines starting with '#' are skipped. Each line \
starts as soon as it is read and a worker is free, so `producer | napix-exec run` streams.

Output: each command's stdout and stderr are passed through (--output group: whole, as each \
command ends; in input order with --keep-order). A result line per command (exit status, time) \
goes to stderr while the commands' output fills stdout, to stdout with --output tag or discard; \
--json prints one JSON object per command on stdout, its output inside. The progress bar (on a \
terminal) and the summary go to stderr.

Durations: {}.

Process groups: each command leads a process group of its own, and every kill (--timeout, \
--kill-on-fail, Ctrl-C, SIGTERM) goes to that whole group: the processes the command started are \
killed with it, unless they left the group (setsid, as daemons do). Nothing is killed \
when a command ends by itself: what it left running in the background keeps running, as with \
xargs. --same-group keeps every command in napix-exec's own group, and a kill reaches the \
command's own process only.

Ctrl-C (SIGINT) or SIGTERM: no new command starts, running ones get SIGTERM, then SIGKILL after \
the grace. A second Ctrl-C sends SIGKILL to every running command at once.

Exit status: 0 when every command exited 0, 1 otherwise, 2 for a usage error or unreadable input, \
130 after SIGINT and 143 after SIGTERM.",
        duration::syntax()
    )
}

fn parse_jobs(s: &str) -> Result<NonZeroUsize, String> {
    match s.parse::<usize>() {
        Ok(n) => NonZeroUsize::new(n).ok_or_else(|| "must be at least 1".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A line to run.
struct Job {
    /// Position among the input's command lines (0-based): the order of `--keep-order`.
    seq: usize,
    line: usize,
    command: String,
    argv: Vec<String>,
}

/// A line read from the input that is not blank nor a comment, not parsed yet.
struct RawLine {
    seq: usize,
    line: usize,
    bytes: Vec<u8>,
}

/// A line without its end of line and surrounding blanks, or `None` when there is nothing to run.
fn significant(raw: &[u8]) -> Option<&[u8]> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = raw.trim_ascii();
    (!raw.is_empty() && !raw.starts_with(b"#")).then_some(raw)
}

/// Splits a significant line into a job, or the outcome of a line that cannot be parsed (`None`
/// when only a comment is left).
fn parse_line(raw: &RawLine) -> Option<Result<Job, Outcome>> {
    let parse_error = |command: String, error: &str| {
        Some(Err(Outcome::not_run(
            raw.seq,
            raw.line,
            command,
            Status::ParseError(error.to_owned()),
        )))
    };
    let Ok(text) = std::str::from_utf8(&raw.bytes) else {
        return parse_error(report::escape_bytes(&raw.bytes), "not valid UTF-8");
    };
    match shell_words::split(text) {
        // Only whitespace and a comment: nothing to run.
        Ok(argv) if argv.is_empty() => None,
        Ok(argv) => Some(Ok(Job {
            seq: raw.seq,
            line: raw.line,
            command: text.to_owned(),
            argv,
        })),
        Err(e) => parse_error(text.to_owned(), &e.to_string()),
    }
}

/// Reads the input line by line and hands each significant line on as soon as it is read (so a
/// slow producer's first commands run while it writes the next). Runs on a detached thread: a
/// read blocked on a terminal or pipe must not hold the run's end.
fn read_lines(
    mut input: Box<dyn BufRead + Send>,
    tx: Sender<RawLine>,
    total: Arc<AtomicUsize>,
    bar: ProgressBar,
    read_error: Arc<Mutex<Option<io::Error>>>,
) {
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                *read_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                break;
            }
        }
        line += 1;
        let Some(text) = significant(&buf) else {
            continue;
        };
        let seq = total.fetch_add(1, Ordering::SeqCst);
        bar.set_prefix((seq + 1).to_string());
        let raw = RawLine {
            seq,
            line,
            bytes: text.to_vec(),
        };
        if tx.send(raw).is_err() {
            // Every worker is gone (the run was stopped): nothing more to read for.
            return;
        }
    }
    // No more lines: the total is known, the bar can show how far the run is.
    bar.set_length(total.load(Ordering::SeqCst) as u64);
    bar.set_style(counted_style());
}

/// Where the result lines go, in end order or (`--keep-order`) input order.
struct Printer {
    keep_order: bool,
    /// The next sequence number to print with `--keep-order`.
    next: usize,
    /// Outcomes that ended before an earlier line's.
    pending: BTreeMap<usize, Outcome>,
    joblog: Option<BufWriter<File>>,
}

/// Everything the worker, signal and main threads share.
struct Runner<'a> {
    executor: &'a Executor,
    lines: Mutex<Receiver<RawLine>>,
    output: OutputMode,
    same_group: bool,
    timeout: Option<Duration>,
    json: bool,
    fail_fast: bool,
    kill_on_fail: bool,
    /// The first of SIGINT/SIGTERM received, 0 before.
    interrupted: AtomicI32,
    /// Set by the first failure under --fail-fast / --kill-on-fail.
    halted: AtomicBool,
    running: AtomicUsize,
    /// The handles of the running commands, by sequence number: a second Ctrl-C kills them.
    handles: Mutex<HashMap<usize, Arc<ExecHandle>>>,
    /// Also the print lock: one command's lines are never interleaved with another's.
    tally: Mutex<(Tally, Printer)>,
    bar: ProgressBar,
}

impl Runner<'_> {
    fn stopping(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed) != 0 || self.halted.load(Ordering::Relaxed)
    }

    /// The next input line, waiting for the reader; `None` at the end of the input or once the
    /// run is stopping.
    fn next_line(&self) -> Option<RawLine> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.stopping() {
                return None;
            }
            match lines.recv_timeout(IDLE_LOOK) {
                Ok(raw) => return Some(raw),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// A worker: takes lines until there are none left, or the run is stopping.
    fn work(&self) {
        while let Some(raw) = self.next_line() {
            let outcome = match parse_line(&raw) {
                None => {
                    self.report(Outcome::skipped(raw.seq));
                    continue;
                }
                Some(Err(bad)) => bad,
                Some(Ok(job)) => match self.run_one(&job) {
                    Some(outcome) => outcome,
                    // Stopped: nothing new starts; the job counts as not run.
                    None => return,
                },
            };
            self.report(outcome);
        }
    }

    /// Runs one command to its end; `None` when the executor was stopped before it started.
    /// The command of a line: stdin `/dev/null`, output as `--output` says (pipes, ours, or
    /// `/dev/null`), leading its own process group unless --same-group.
    fn command_of(&self, job: &Job) -> Command {
        let mut cmd = Command::new(&job.argv[0]);
        cmd.args(&job.argv[1..]);
        let output = || match self.output {
            OutputMode::Group | OutputMode::Tag => Stdio::piped(),
            OutputMode::Ungroup => Stdio::inherit(),
            OutputMode::Discard => Stdio::null(),
        };
        cmd.stdout(output()).stderr(output());
        if !self.same_group {
            cmd.kill_scope(KillScope::Group);
        }
        cmd
    }

    fn run_one(&self, job: &Job) -> Option<Outcome> {
        let start = Instant::now();
        let mut outcome = Outcome::not_run(job.seq, job.line, job.command.clone(), Status::Unknown);
        outcome.started_at = Some(SystemTime::now());
        let handle = match self.executor.spawn(&self.command_of(job)) {
            Ok(h) => Arc::new(h),
            Err(SpawnError::Stopped) => return None,
            Err(e) => {
                tracing::debug!(line = job.line, error = %e, "could not start");
                outcome.status = Status::SpawnFailed(e.to_string());
                outcome.duration = Some(start.elapsed());
                return Some(outcome);
            }
        };
        let pid = handle.pid();
        outcome.pid = Some(pid);
        let _span = tracing::debug_span!("command", line = job.line, pid).entered();
        tracing::debug!(command = %job.command, "started");
        self.running_changed(1);
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job.seq, Arc::clone(&handle));

        // A JSON record holds its output whole in memory: bounded; text output has no bound.
        let keep = if self.json { Keep::Limited } else { Keep::All };
        let captures = self.output.captures().then(|| {
            let name = |stream: &str| format!("L{}-{stream}", job.line);
            (
                handle
                    .take_stdout()
                    .map(|p| Capture::start(name("out"), p, keep)),
                handle
                    .take_stderr()
                    .map(|p| Capture::start(name("err"), p, keep)),
            )
        });

        let status = match self.timeout {
            None => handle.wait(),
            Some(limit) => handle.wait_timeout(limit).unwrap_or_else(|| {
                tracing::debug!(?limit, "timed out; killing");
                outcome.timed_out = true;
                handle.kill()
            }),
        };
        outcome.duration = Some(start.elapsed());
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&job.seq);
        // The library reports a lost status (the kernel reaped the child itself) as exit 255.
        outcome.status = if handle.status_lost() {
            Status::Unknown
        } else {
            Status::from_exit(status)
        };
        outcome.rusage = handle.rusage();
        tracing::debug!(%status, "ended");
        self.running_changed(-1);

        if let Some((out, err)) = captures {
            let deadline = Instant::now() + DRAIN;
            outcome.stdout = out.map(|c| c.finish(deadline));
            outcome.stderr = err.map(|c| c.finish(deadline));
        }
        Some(outcome)
    }

    fn running_changed(&self, delta: isize) {
        let now = if delta > 0 {
            self.running.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.running.fetch_sub(1, Ordering::Relaxed) - 1
        };
        self.bar.set_message(format!("{now} running"));
    }

    /// Counts an outcome, prints it (now, or with --keep-order once the lines before it are
    /// printed), logs it to the job log, and halts the run on a failure under --fail-fast.
    fn report(&self, outcome: Outcome) {
        let mut guard = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let (tally, printer) = &mut *guard;
        let failed = !outcome.skipped && outcome.kind() != report::Kind::Succeeded;
        tally.add(&outcome);
        if printer.keep_order {
            printer.pending.insert(outcome.seq, outcome);
            while let Some(o) = printer.pending.remove(&printer.next) {
                printer.next += 1;
                self.print(&o, &mut printer.joblog);
            }
        } else {
            self.print(&outcome, &mut printer.joblog);
        }
        drop(guard);
        if failed && (self.fail_fast || self.kill_on_fail) {
            self.halt();
        }
    }

    /// Prints every outcome still held back by --keep-order (lines before them never ran).
    fn flush_pending(&self) {
        let mut guard = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, printer) = &mut *guard;
        for (_, o) in std::mem::take(&mut printer.pending) {
            self.print(&o, &mut printer.joblog);
        }
    }

    /// How a text result and its output are laid out.
    fn text_style(&self) -> TextStyle {
        if self.output.results_on_stderr() {
            TextStyle::Plain
        } else {
            TextStyle::Tagged
        }
    }

    /// Prints an outcome (its result line, its captured output and notes) and appends it to the
    /// job log. Called with the print lock held.
    fn print(&self, outcome: &Outcome, joblog: &mut Option<BufWriter<File>>) {
        if outcome.skipped {
            self.bar.inc(1);
            return;
        }
        if let Some(log) = joblog {
            let written = outcome.write_joblog(log).and_then(|()| log.flush());
            if let Err(e) = written {
                self.bar.suspend(|| {
                    eprintln!("napix-exec: --joblog: cannot write: {e}; no more job log lines");
                });
                *joblog = None;
            }
        }
        self.bar.suspend(|| {
            let mut out = BufWriter::new(io::stdout().lock());
            let mut err = BufWriter::new(io::stderr().lock());
            // A closed stdout (`| head`) must not stop the run nor panic: results are dropped.
            let _ = if self.json {
                outcome.write_json(&mut out)
            } else {
                outcome.write_text(&mut out, &mut err, self.text_style())
            };
            for note in outcome.capture_notes() {
                let _ = writeln!(err, "napix-exec: {note}");
            }
            let _ = out.flush();
            let _ = err.flush();
        });
        self.bar.inc(1);
    }

    /// A line on stderr that does not break the progress bar: the bar is cleared first.
    fn note(&self, text: &str) {
        let _tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        self.bar.suspend(|| {
            let _ = writeln!(io::stderr().lock(), "napix-exec: {text}");
        });
    }

    /// The first failure under --fail-fast: no new command starts; with --kill-on-fail the
    /// executor is stopped, which kills the running ones with the usual escalation.
    fn halt(&self) {
        if self.halted.swap(true, Ordering::Relaxed) {
            return;
        }
        let running = self.running.load(Ordering::Relaxed);
        if self.kill_on_fail {
            self.executor.stop();
            self.note(&format!(
                "a command failed: starting no more; {running} running get SIGTERM, then SIGKILL \
                 after the grace (--kill-on-fail)"
            ));
        } else {
            self.note(&format!(
                "a command failed: starting no more; waiting for {running} running (--fail-fast)"
            ));
        }
    }

    /// What SIGINT/SIGTERM does: the first one stops the executor (SIGTERM to every command,
    /// SIGKILL after the grace); the next one sends SIGKILL to every running command at once.
    fn interrupt(&self, signal: i32, grace: Duration) {
        let label = report::signal_label(signal);
        let name = label.split(' ').next().unwrap_or("signal");
        if self
            .interrupted
            .compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(signal, "interrupted; stopping the executor");
            self.executor.stop();
            self.note(&format!(
                "{name}: stopping; running commands get SIGTERM, then SIGKILL after {} (again to \
                 kill them now)",
                report::human_duration(grace)
            ));
            return;
        }
        let handles: Vec<Arc<ExecHandle>> = self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        tracing::info!(
            signal,
            running = handles.len(),
            "interrupted again; SIGKILL"
        );
        let (mut killed, mut refused) = (0, 0);
        for h in &handles {
            match h.send_signal(libc::SIGKILL) {
                Ok(()) => killed += 1,
                // Ended meanwhile: nothing left to kill.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => {
                    tracing::debug!(pid = h.pid(), error = %e, "SIGKILL refused");
                    refused += 1;
                }
            }
        }
        let mut text = format!(
            "{name} again: sent SIGKILL to {killed} running command{}",
            if killed == 1 { "" } else { "s" }
        );
        if refused > 0 {
            // Not expected (an unreaped child of ours takes any signal), but not silent either.
            text.push_str(&format!(
                "; {refused} could not be signalled now and get SIGKILL at the end of the grace"
            ));
        }
        self.note(&text);
    }
}

/// Calls `stop()` when dropped, so that a panicking worker cannot leave `run()` waiting forever.
struct StopOnDrop<'a>(&'a Executor);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The progress bar on stderr (hidden unless it is a terminal). Its length stays unknown while
/// the input is read (a stream may go on for long): a spinner with the counts done and read;
/// once the input ends, [`read_lines`] sets the total and the [`counted_style`] bar.
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} {pos} done, {prefix} read so far, {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        .with_style(style)
        .with_prefix("0")
        .with_message("0 running");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The bar once the number of commands is known.
fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} done, {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Opens the input: the file, or stdin (saying so when it is a terminal, where a user could
/// otherwise wait for a run that waits for them).
fn open_input(file: Option<&PathBuf>) -> io::Result<Box<dyn BufRead + Send>> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            let f = File::open(path)?;
            if f.metadata()?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "is a directory",
                ));
            }
            Ok(Box::new(BufReader::new(f)))
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "napix-exec run: reading commands from stdin, one per line (end with Ctrl-D)"
                );
            }
            Ok(Box::new(BufReader::new(stdin)))
        }
    }
}

/// Opens the job log for appending; a new (empty) file gets the header line.
fn open_joblog(path: &PathBuf) -> io::Result<BufWriter<File>> {
    let f = File::options().create(true).append(true).open(path)?;
    let empty = f.metadata()?.len() == 0;
    let mut w = BufWriter::new(f);
    if empty {
        writeln!(w, "{}", report::JOBLOG_HEADER)?;
        w.flush()?;
    }
    Ok(w)
}

/// Refuses options that cannot work together (a usage error, exit 2).
fn check_args(args: &RunArgs) -> Result<(), String> {
    if args.output == OutputMode::Ungroup && args.json {
        return Err(
            "--output ungroup lets the commands write to stdout, between --json's \
                    records: use --output group (the output goes into each record) or discard"
                .into(),
        );
    }
    if args.output == OutputMode::Ungroup && args.keep_order {
        return Err(
            "--keep-order cannot order --output ungroup's output (the commands write it \
                    themselves as they run): use --output group"
                .into(),
        );
    }
    Ok(())
}

pub fn main(args: RunArgs) -> ExitCode {
    if let Err(e) = check_args(&args) {
        eprintln!("napix-exec run: {e}");
        return ExitCode::from(2);
    }
    let input = match open_input(args.file.as_ref()) {
        Ok(input) => input,
        Err(e) => {
            let name = match &args.file {
                Some(p) if p.as_os_str() != "-" => p.display().to_string(),
                _ => "stdin".to_owned(),
            };
            eprintln!("napix-exec run: cannot read {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let joblog = match args.joblog.as_ref().map(open_joblog).transpose() {
        Ok(log) => log,
        Err(e) => {
            let path = args
                .joblog
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string());
            eprintln!("napix-exec run: --joblog {path}: {e}");
            return ExitCode::from(2);
        }
    };

    let executor = match Executor::builder()
        .kill_grace(args.grace)
        .child_watch(args.child_watch.child_watch())
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("napix-exec run: cannot set up the executor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("napix-exec run: cannot handle SIGINT/SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signals_handle = signals.handle();

    let workers = args
        .jobs
        .or_else(|| thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    tracing::debug!(workers, "starting");
    // Commands writing to the terminal themselves would be drawn over by the bar.
    let bar = if args.output == OutputMode::Ungroup {
        ProgressBar::hidden()
    } else {
        progress_bar()
    };
    let total = Arc::new(AtomicUsize::new(0));
    let read_error = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    {
        let (total, bar, read_error) = (Arc::clone(&total), bar.clone(), Arc::clone(&read_error));
        let spawned = thread::Builder::new()
            .name("input".into())
            .spawn(move || read_lines(input, tx, total, bar, read_error));
        if let Err(e) = spawned {
            eprintln!("napix-exec run: cannot start the input thread: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runner = Runner {
        executor: &executor,
        lines: Mutex::new(rx),
        output: args.output,
        timeout: args.timeout,
        json: args.json,
        fail_fast: args.fail_fast,
        kill_on_fail: args.kill_on_fail,
        same_group: args.same_group,
        interrupted: AtomicI32::new(0),
        halted: AtomicBool::new(false),
        running: AtomicUsize::new(0),
        handles: Mutex::new(HashMap::new()),
        tally: Mutex::new((
            Tally::default(),
            Printer {
                keep_order: args.keep_order,
                next: 0,
                pending: BTreeMap::new(),
                joblog,
            },
        )),
        bar,
    };

    thread::scope(|s| {
        let runner = &runner;
        s.spawn(move || {
            for signal in signals.forever() {
                runner.interrupt(signal, args.grace);
            }
        });
        s.spawn(move || {
            let _stop = StopOnDrop(runner.executor);
            thread::scope(|ws| {
                for i in 1..workers {
                    let spawned = thread::Builder::new()
                        .name(format!("worker-{i}"))
                        .spawn_scoped(ws, || runner.work());
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "cannot start a worker thread; fewer workers");
                    }
                }
                // This thread is a worker too: the run goes on even if no other could start.
                runner.work();
            });
        });
        let result = executor.run();
        signals_handle.close();
        if let Err(e) = result {
            // Handles may never see their children's status now: do not wait for the workers.
            executor.stop();
            runner.bar.abandon();
            eprintln!("napix-exec run: the executor loop failed: {e}");
            std::process::exit(1);
        }
    });
    runner.flush_pending();

    runner.bar.finish_and_clear();
    let read_error = read_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let (tally, _) = runner
        .tally
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let interrupted = match runner.interrupted.into_inner() {
        0 => None,
        signal => Some(signal),
    };
    let halted = runner.halted.into_inner();
    let total = total.load(Ordering::SeqCst) - tally.skipped;
    eprintln!("{}", tally.summary(total, interrupted, halted));
    if let Some(e) = &read_error {
        eprintln!("napix-exec run: stopped reading the input: {e}");
    }
    match interrupted {
        Some(signal) => ExitCode::from(128 + signal as u8),
        None if read_error.is_some() => ExitCode::from(2),
        None if tally.all_succeeded() && tally.reported() == total => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_are_split_skipped_or_reported() {
        let input: &[&[u8]] = &[
            b"echo 'a b' c\n",
            b"\n",
            b"  # comment\n",
            b"\techo \"open\r\n",
            b"printf '%s\\n' x # trailing\n",
            b"\xff\x1b[2J\n",
        ];
        let mut jobs = Vec::new();
        let mut bad = Vec::new();
        for (i, bytes) in input.iter().enumerate() {
            let Some(text) = significant(bytes) else {
                continue;
            };
            let raw = RawLine {
                seq: i,
                line: i + 1,
                bytes: text.to_vec(),
            };
            match parse_line(&raw) {
                Some(Ok(j)) => jobs.push((j.line, j.argv)),
                Some(Err(o)) => bad.push((o.line, o.command, o.status)),
                None => {}
            }
        }
        assert_eq!(
            jobs,
            vec![
                (1, vec!["echo".into(), "a b".into(), "c".into()]),
                (5, vec!["printf".into(), "%s\\n".into(), "x".into()]),
            ]
        );
        assert_eq!(
            bad,
            vec![
                (
                    4,
                    "echo \"open".into(),
                    Status::ParseError("missing closing quote".into())
                ),
                (
                    6,
                    "\\xff\\x1b[2J".into(),
                    Status::ParseError("not valid UTF-8".into())
                ),
            ]
        );
    }

    #[test]
    fn jobs_must_be_positive() {
        assert!(parse_jobs("0").is_err());
        assert!(parse_jobs("x").is_err());
        assert_eq!(
            parse_jobs("3"),
            Ok(NonZeroUsize::new(3).expect("test setup"))
        );
    }
}
