//! `napix-exec run [FILE]`: run a file of commands through one executor from worker threads.
//!
//! The shape is the seed's: the executor loop runs on the main thread, `-j` worker threads take
//! the next command line, ask the executor for a process and wait for it (with `--timeout`), and
//! a coordinating thread stops the executor once every worker is done, which lets `run()` return.
//! A signal thread (signal-hook) turns SIGINT/SIGTERM into `stop()`.
//!
//! ```text
//! main:         parse input -> build executor -> executor.run() ............ -> summary, exit
//! coordinator:  spawn workers, work too -> join them -> executor.stop() --^
//! worker (xN):  next line -> create_process -> [capture readers] -> wait(_timeout)/kill -> report
//! signals:      SIGINT/SIGTERM -> mark interrupted -> executor.stop()
//! ```
//!
//! Output: one result line per command on stdout (`--json`: one JSON object), in the order the
//! commands end; the summary, notes and the progress bar on stderr, so stdout stays a clean record.
//!
//! Exit status: 0 when every command exited 0; 1 otherwise (a failure, a kill, a line that could
//! not be parsed or started), and when the executor itself fails; 2 for a usage error or an
//! unreadable input; 128 + the signal after SIGINT (130) or SIGTERM (143).

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use napix_executor::{Executor, SpawnError};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[path = "run_capture.rs"]
mod capture;
#[path = "run_duration.rs"]
mod duration;
#[path = "run_report.rs"]
mod report;

use capture::Capture;
use report::{Outcome, Status, Tally};

/// How long captured pipes may stay open after their command ended before the runner stops
/// reading them (a background process that inherited them would otherwise hold the runner).
const DRAIN: Duration = Duration::from_secs(1);

#[derive(clap::Args)]
#[command(after_help = "\
Each line is one command, split with shell quoting rules (single and double quotes, backslash \
escapes) and run without a shell. Blank lines and lines starting with '#' are skipped. A result \
line per command goes to stdout as each command ends; the progress bar (on a terminal) and the \
summary go to stderr.

Exit status: 0 when every command exited 0, 1 otherwise, 2 for a usage error or unreadable input, \
130 after SIGINT and 143 after SIGTERM.")]
pub struct RunArgs {
    /// File of commands, one per line; stdin when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// Worker threads submitting commands (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    jobs: Option<NonZeroUsize>,

    /// Per-command time limit (e.g. 500ms, 2s, 1m); then the command gets SIGTERM, and SIGKILL
    /// after the grace.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    timeout: Option<Duration>,

    /// Time between SIGTERM and SIGKILL when a command is killed (timeout or interrupt).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, default_value = "3s")]
    grace: Duration,

    /// What to do with each command's stdout and stderr.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = OutputMode::Discard)]
    output: OutputMode,

    /// Print one JSON object per command instead of a text line (keys: line, command, pid, code,
    /// signal, error, timed_out, duration_ms, stdout, stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputMode {
    /// Send it to /dev/null.
    Discard,
    /// Read it while the command runs and print it after it ends, each line prefixed `N| `
    /// (stdout on stdout, stderr on stderr).
    Capture,
}

fn parse_jobs(s: &str) -> Result<NonZeroUsize, String> {
    match s.parse::<usize>() {
        Ok(n) => NonZeroUsize::new(n).ok_or_else(|| "must be at least 1".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A line to run.
struct Job {
    line: usize,
    command: String,
    argv: Vec<String>,
}

/// Splits the input into jobs, and outcomes for the lines that cannot be parsed.
fn parse_input(input: &[u8]) -> (Vec<Job>, Vec<Outcome>) {
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let parse_error = |command: &str, error: String| Outcome {
            line,
            command: command.to_owned(),
            pid: None,
            status: Status::ParseError(error),
            timed_out: false,
            duration: None,
            stdout: None,
            stderr: None,
            rusage: None,
        };
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t.trim(),
            Err(_) => {
                let lossy = String::from_utf8_lossy(raw);
                bad.push(parse_error(lossy.trim(), "not valid UTF-8".to_owned()));
                continue;
            }
        };
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match shell_words::split(text) {
            // Only whitespace and a comment: nothing to run.
            Ok(argv) if argv.is_empty() => {}
            Ok(argv) => jobs.push(Job {
                line,
                command: text.to_owned(),
                argv,
            }),
            Err(e) => bad.push(parse_error(text, e.to_string())),
        }
    }
    (jobs, bad)
}

fn read_input(file: Option<&PathBuf>) -> io::Result<Vec<u8>> {
    match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read(path),
        _ => {
            let mut buf = Vec::new();
            io::stdin().lock().read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

/// Everything the worker, signal and main threads share.
struct Runner<'a> {
    executor: &'a Executor,
    jobs: &'a [Job],
    next: AtomicUsize,
    discard_output: bool,
    timeout: Option<Duration>,
    json: bool,
    /// The first of SIGINT/SIGTERM received, 0 before.
    interrupted: AtomicI32,
    running: AtomicUsize,
    /// Also the print lock: one command's lines are never interleaved with another's.
    tally: Mutex<Tally>,
    bar: ProgressBar,
}

impl Runner<'_> {
    /// A worker: takes lines until there are none left, or the run is interrupted.
    fn work(&self) {
        while self.interrupted.load(Ordering::Relaxed) == 0 {
            let Some(job) = self.jobs.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
                return;
            };
            match self.run_one(job) {
                Some(outcome) => self.report(&outcome),
                // Stopped: nothing new starts; the job counts as not run.
                None => return,
            }
        }
    }

    /// Runs one command to its end; `None` when the executor was stopped before it started.
    fn run_one(&self, job: &Job) -> Option<Outcome> {
        let start = Instant::now();
        let mut outcome = Outcome {
            line: job.line,
            command: job.command.clone(),
            pid: None,
            status: Status::Unknown,
            timed_out: false,
            duration: None,
            stdout: None,
            stderr: None,
            rusage: None,
        };
        let handle = match self.executor.create_process(&job.argv, self.discard_output) {
            Ok(h) => h,
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

        let captures = (!self.discard_output).then(|| {
            let name = |stream: &str| format!("L{}-{stream}", job.line);
            (
                handle.take_stdout().map(|p| Capture::start(name("out"), p)),
                handle.take_stderr().map(|p| Capture::start(name("err"), p)),
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

    /// Prints an outcome (stdout: result line and captured output; stderr: captured stderr and
    /// notes) and counts it.
    fn report(&self, outcome: &Outcome) {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.add(outcome);
        self.bar.suspend(|| {
            let mut out = BufWriter::new(io::stdout().lock());
            let mut err = BufWriter::new(io::stderr().lock());
            // A closed stdout (`| head`) must not stop the run nor panic: results are dropped.
            let _ = if self.json {
                outcome.write_json(&mut out)
            } else {
                outcome.write_text(&mut out, &mut err)
            };
            for note in outcome.capture_notes() {
                let _ = writeln!(err, "napix-exec: {note}");
            }
            let _ = out.flush();
            let _ = err.flush();
        });
        self.bar.inc(1);
    }

    /// A line on stderr that does not break the progress bar.
    fn note(&self, text: &str) {
        let _tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        self.bar.suspend(|| {
            let _ = writeln!(io::stderr().lock(), "napix-exec: {text}");
        });
    }

    /// What SIGINT/SIGTERM does: the first one stops the executor; later ones change nothing (the
    /// escalation is already under way and ends within the grace).
    fn interrupt(&self, signal: i32, grace: Duration) {
        if self
            .interrupted
            .compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(signal, "interrupted; stopping the executor");
            self.executor.stop();
            let name = report::signal_label(signal);
            let name = name.split(' ').next().unwrap_or("signal");
            self.note(&format!(
                "{name}: stopping; running commands get SIGTERM, then SIGKILL after {}",
                report::human_duration(grace)
            ));
        }
    }
}

/// Calls `stop()` when dropped, so that a panicking worker cannot leave `run()` waiting forever.
struct StopOnDrop<'a>(&'a Executor);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn progress_bar(total: usize) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} done, {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message("0 running");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn main(args: RunArgs) -> ExitCode {
    let input = match read_input(args.file.as_ref()) {
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
    let (jobs, parse_errors) = parse_input(&input);
    let total = jobs.len() + parse_errors.len();

    let executor = match Executor::builder().kill_grace(args.grace).build() {
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
        .map_or(1, NonZeroUsize::get)
        .min(jobs.len())
        .max(1);
    tracing::debug!(commands = jobs.len(), workers, "starting");
    let runner = Runner {
        executor: &executor,
        jobs: &jobs,
        next: AtomicUsize::new(0),
        discard_output: args.output == OutputMode::Discard,
        timeout: args.timeout,
        json: args.json,
        interrupted: AtomicI32::new(0),
        running: AtomicUsize::new(0),
        tally: Mutex::new(Tally::default()),
        bar: progress_bar(total),
    };
    for outcome in &parse_errors {
        runner.report(outcome);
    }

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

    runner.bar.finish_and_clear();
    let tally = runner
        .tally
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let interrupted = match runner.interrupted.into_inner() {
        0 => None,
        signal => Some(signal),
    };
    eprintln!("{}", tally.summary(total, interrupted));
    match interrupted {
        Some(signal) => ExitCode::from(128 + signal as u8),
        None if tally.all_succeeded() && tally.reported() == total => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_are_split_skipped_or_reported() {
        let input =
            b"echo 'a b' c\n\n  # comment\n\techo \"open\r\nprintf '%s\\n' x # trailing\n\xff\n";
        let (jobs, bad) = parse_input(input);
        let lines: Vec<_> = jobs.iter().map(|j| (j.line, j.argv.clone())).collect();
        assert_eq!(
            lines,
            vec![
                (1, vec!["echo".into(), "a b".into(), "c".into()]),
                (5, vec!["printf".into(), "%s\\n".into(), "x".into()]),
            ]
        );
        let bad: Vec<_> = bad.iter().map(|o| (o.line, o.status.clone())).collect();
        assert_eq!(
            bad,
            vec![
                (4, Status::ParseError("missing closing quote".into())),
                (6, Status::ParseError("not valid UTF-8".into())),
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
