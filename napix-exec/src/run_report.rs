//! What `napix-exec run` says about each command, and the summary at the end.
//!
//! Outcomes are data ([`Outcome`]); this file turns them into a result line (text or JSON) and
//! counts them ([`Tally`]). No I/O here besides writing into the given writers.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, SystemTime};

use napix_executor::ResourceUsage;
use serde::Serialize;

use super::capture::{Captured, KEEP_LIMIT};

/// How a text result is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextStyle {
    /// The result line on stdout, the output after it with each line prefixed `N| `.
    Tagged,
    /// The result line on stderr, the output after it unchanged.
    Plain,
}

/// How a command line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The process exited with this code.
    Exited(i32),
    /// The process was ended by this signal.
    Signaled { signal: i32, core_dumped: bool },
    /// The executor reported a status that is neither (the library's "unknown" status, e.g. when
    /// the host ignores SIGCHLD and the kernel reaped the child itself).
    Unknown,
    /// `create_process` failed: the error's text (it names the program).
    SpawnFailed(String),
    /// The line could not be split into words.
    ParseError(String),
}

impl Status {
    /// Classifies an exit status from the library.
    pub fn from_exit(status: ExitStatus) -> Status {
        match (status.code(), status.signal()) {
            (Some(code), _) => Status::Exited(code),
            (None, Some(signal)) => Status::Signaled {
                signal,
                core_dumped: status.core_dumped(),
            },
            (None, None) => Status::Unknown,
        }
    }
}

/// One line's result.
#[derive(Debug)]
pub struct Outcome {
    /// Position among the input's command lines (0-based): the order of `--keep-order`.
    pub seq: usize,
    /// A line that held only a comment once split: nothing to report, only its place to keep.
    pub skipped: bool,
    /// 1-based line number in the input.
    pub line: usize,
    /// The line as written (trimmed).
    pub command: String,
    pub pid: Option<u32>,
    pub status: Status,
    /// True when `--timeout` ran out and the runner asked for the kill escalation.
    pub timed_out: bool,
    /// From just before `create_process` to the exit status; `None` for a parse error.
    pub duration: Option<Duration>,
    /// The wall-clock time just before `create_process` (for the job log).
    pub started_at: Option<SystemTime>,
    /// `Some` only with `--output group` or `tag` and a process that started.
    pub stdout: Option<Captured>,
    pub stderr: Option<Captured>,
    /// What the command used, from the reap (`None` if it never started or its status was lost).
    pub rusage: Option<ResourceUsage>,
}

/// The bucket an outcome counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Succeeded,
    Failed,
    ParseError,
    NotStarted,
    Killed,
}

/// The job log's header (`--joblog`), tab-separated like its lines.
pub const JOBLOG_HEADER: &str =
    "line\tstart\tseconds\texit\tsignal\tuser_cpu_s\tsystem_cpu_s\tmax_rss_kib\tcommand";

impl Outcome {
    /// A line with no process (yet): its status says why.
    pub fn not_run(seq: usize, line: usize, command: String, status: Status) -> Outcome {
        Outcome {
            seq,
            skipped: false,
            line,
            command,
            pid: None,
            status,
            timed_out: false,
            duration: None,
            started_at: None,
            stdout: None,
            stderr: None,
            rusage: None,
        }
    }

    /// The place of a line with nothing to run (only a comment once split).
    pub fn skipped(seq: usize) -> Outcome {
        let mut o = Outcome::not_run(seq, 0, String::new(), Status::Unknown);
        o.skipped = true;
        o
    }

    pub fn kind(&self) -> Kind {
        match self.status {
            Status::Exited(0) => Kind::Succeeded,
            Status::Exited(_) | Status::Unknown => Kind::Failed,
            Status::Signaled { .. } => Kind::Killed,
            Status::SpawnFailed(_) => Kind::NotStarted,
            Status::ParseError(_) => Kind::ParseError,
        }
    }

    /// One job-log line: line, start (Unix seconds), seconds, exit code, signal, user and system
    /// CPU seconds, max RSS in KiB, command; `-` where a value does not apply.
    pub fn write_joblog(&self, w: &mut impl Write) -> io::Result<()> {
        let dash = || "-".to_owned();
        let start = self
            .started_at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or_else(dash, |d| format!("{:.3}", d.as_secs_f64()));
        let seconds = self
            .duration
            .map_or_else(dash, |d| format!("{:.3}", d.as_secs_f64()));
        let (code, signal) = match &self.status {
            Status::Exited(c) => (c.to_string(), "0".to_owned()),
            Status::Signaled { signal, .. } => (dash(), signal.to_string()),
            _ => (dash(), dash()),
        };
        let (user, system, rss) = match &self.rusage {
            Some(u) => (
                format!("{:.3}", u.user_time.as_secs_f64()),
                format!("{:.3}", u.system_time.as_secs_f64()),
                (u.max_rss_bytes / 1024).to_string(),
            ),
            None => (dash(), dash(), dash()),
        };
        writeln!(
            w,
            "{}\t{start}\t{seconds}\t{code}\t{signal}\t{user}\t{system}\t{rss}\t{}",
            self.line,
            escape_controls(&self.command)
        )
    }

    /// The human result line, without newline: `line 3: exit 0 in 1.2ms: echo hi`.
    pub fn text_line(&self) -> String {
        let mut s = format!("line {}: ", self.line);
        match &self.status {
            Status::Exited(code) => {
                let _ = write!(s, "exit {code}");
            }
            Status::Signaled {
                signal,
                core_dumped,
            } => {
                let _ = write!(s, "killed by {}", signal_label(*signal));
                if *core_dumped {
                    s.push_str(" (core dumped)");
                }
            }
            Status::Unknown => s.push_str("exit status unknown"),
            Status::SpawnFailed(e) => {
                let _ = write!(s, "could not start: {e}");
                return s;
            }
            Status::ParseError(e) => {
                let _ = write!(s, "parse error: {e}: {}", escape_controls(&self.command));
                return s;
            }
        }
        if self.timed_out {
            s.push_str(" after timeout");
        }
        if let Some(d) = self.duration {
            let _ = write!(s, " in {}", human_duration(d));
        }
        let _ = write!(s, ": {}", escape_controls(&self.command));
        s
    }

    /// Writes the result line and the captured output: with [`TextStyle::Tagged`] the result
    /// line on `out`, then each output line prefixed with the line number (stdout's on `out`,
    /// stderr's on `err`); with [`TextStyle::Plain`] the result line on `err`, then the output
    /// unchanged (stdout's on `out`, stderr's on `err`). Flushes `err` before `out` is written,
    /// so that on a terminal each part shows in this order.
    pub fn write_text(
        &self,
        out: &mut impl Write,
        err: &mut impl Write,
        style: TextStyle,
    ) -> io::Result<()> {
        match style {
            TextStyle::Tagged => {
                writeln!(out, "{}", self.text_line())?;
                if let Some(c) = &self.stdout {
                    let mut tagged = Tagged::new(out, self.line);
                    c.write_to(&mut tagged)?;
                    tagged.end()?;
                }
                if let Some(c) = &self.stderr {
                    let mut tagged = Tagged::new(err, self.line);
                    c.write_to(&mut tagged)?;
                    tagged.end()?;
                }
            }
            TextStyle::Plain => {
                writeln!(err, "{}", self.text_line())?;
                err.flush()?;
                if let Some(c) = &self.stdout {
                    c.write_to(out)?;
                    out.flush()?;
                }
                if let Some(c) = &self.stderr {
                    c.write_to(err)?;
                }
            }
        }
        Ok(())
    }

    /// Writes one JSON object and a newline.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let (code, signal, error) = match &self.status {
            Status::Exited(code) => (Some(*code), None, None),
            Status::Signaled { signal, .. } => (None, Some(*signal), None),
            Status::Unknown => (None, None, Some("exit status unknown".to_owned())),
            Status::SpawnFailed(e) => (None, None, Some(e.clone())),
            Status::ParseError(e) => (None, None, Some(format!("parse error: {e}"))),
        };
        let text = |c: &Option<Captured>| {
            c.as_ref()
                .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
        };
        // The text keys replace what is not UTF-8 with U+FFFD; these say when that happened.
        let invalid =
            |c: &Option<Captured>| c.as_ref().map(|c| std::str::from_utf8(&c.bytes).is_err());
        let record = JsonRecord {
            line: self.line,
            command: &self.command,
            pid: self.pid,
            code,
            signal,
            error,
            timed_out: self.timed_out,
            // Rounded to the microsecond: more digits would be noise.
            duration_ms: self.duration.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            stdout_invalid_utf8: invalid(&self.stdout),
            stderr_invalid_utf8: invalid(&self.stderr),
            rusage: self.rusage.as_ref().map(JsonUsage::from),
        };
        serde_json::to_writer(&mut *out, &record)?;
        writeln!(out)
    }

    /// Notes on stderr about output that was not captured whole (over the limit, or a pipe held
    /// open by a background process).
    pub fn capture_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for (name, c) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let Some(c) = c else { continue };
            match (&c.spill_error, c.dropped) {
                (_, 0) => {}
                (Some(e), dropped) => notes.push(format!(
                    "line {}: {name}: dropped {dropped} bytes after the first {}: the temporary \
                     file for them failed: {e}",
                    self.line,
                    c.bytes.len()
                )),
                (None, dropped) => notes.push(format!(
                    "line {}: {name}: kept the first {} MiB for the JSON record, dropped \
                     {dropped} bytes",
                    self.line,
                    KEEP_LIMIT >> 20,
                )),
            }
            if !c.complete {
                notes.push(format!(
                    "line {}: {name}: stopped reading: the pipe was still open after the command \
                     ended (a background process holds it?)",
                    self.line
                ));
            }
        }
        notes
    }
}

/// The JSON form of an [`Outcome`]: every key always present, `null` when it does not apply.
#[derive(Serialize)]
struct JsonRecord<'a> {
    line: usize,
    command: &'a str,
    pid: Option<u32>,
    code: Option<i32>,
    signal: Option<i32>,
    error: Option<String>,
    timed_out: bool,
    duration_ms: Option<f64>,
    stdout: Option<String>,
    stderr: Option<String>,
    /// True when the captured bytes were not valid UTF-8 and `stdout` holds a lossy copy.
    stdout_invalid_utf8: Option<bool>,
    stderr_invalid_utf8: Option<bool>,
    rusage: Option<JsonUsage>,
}

/// `rusage` of a JSON record: CPU times in milliseconds (to the microsecond), peak memory in bytes.
#[derive(Serialize)]
struct JsonUsage {
    user_ms: f64,
    system_ms: f64,
    max_rss_bytes: u64,
    minor_faults: u64,
    major_faults: u64,
    voluntary_context_switches: u64,
    involuntary_context_switches: u64,
}

impl From<&ResourceUsage> for JsonUsage {
    fn from(u: &ResourceUsage) -> JsonUsage {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        JsonUsage {
            user_ms: ms(u.user_time),
            system_ms: ms(u.system_time),
            max_rss_bytes: u.max_rss_bytes,
            minor_faults: u.minor_faults,
            major_faults: u.major_faults,
            voluntary_context_switches: u.voluntary_context_switches,
            involuntary_context_switches: u.involuntary_context_switches,
        }
    }
}

/// `bytes` split into lines (a last line without newline counts), each written as `N| text`.
/// A writer that starts every line with `N| ` (the command's input line), so that tagged output
/// can be written as it is read back (from memory, then from the temporary file).
struct Tagged<'a, W: Write> {
    out: &'a mut W,
    line: usize,
    /// The next byte starts a line.
    at_start: bool,
}

impl<'a, W: Write> Tagged<'a, W> {
    fn new(out: &'a mut W, line: usize) -> Self {
        Tagged {
            out,
            line,
            at_start: true,
        }
    }

    /// Ends a last line that had no newline.
    fn end(self) -> io::Result<()> {
        if !self.at_start {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Tagged<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.at_start {
                write!(self.out, "{}| ", self.line)?;
                self.at_start = false;
            }
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            self.out.write_all(&rest[..end])?;
            self.at_start = rest[end - 1] == b'\n';
            rest = &rest[end..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `s` with control characters escaped (`\x1b`, `\t`, `\u{9b}`), so that a line can never
/// move the cursor or clear a terminal it is printed on.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_char(&mut out, c);
    }
    out
}

/// `bytes` as text: valid UTF-8 kept (control characters escaped), every other byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        c if (c as u32) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `SIGTERM (signal 15)`, or `signal 42` for one without a usual name.
pub fn signal_label(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {signal}"),
    };
    format!("{name} (signal {signal})")
}

/// `850µs`, `12.3ms`, `4.56s`, `2m03.4s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1}ms", secs * 1e3)
    } else if d < Duration::from_secs(60) {
        format!("{secs:.2}s")
    } else {
        let mins = d.as_secs() / 60;
        format!("{mins}m{:04.1}s", secs - (mins * 60) as f64)
    }
}

/// The counts behind the summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub succeeded: usize,
    pub failed: usize,
    pub parse_errors: usize,
    pub not_started: usize,
    pub killed: usize,
    /// Of the killed, those the runner killed for `--timeout`.
    pub timed_out: usize,
    /// Lines that held only a comment once split: not commands, not counted in the total.
    pub skipped: usize,
}

impl Tally {
    pub fn add(&mut self, o: &Outcome) {
        if o.skipped {
            self.skipped += 1;
            return;
        }
        match o.kind() {
            Kind::Succeeded => self.succeeded += 1,
            Kind::Failed => self.failed += 1,
            Kind::ParseError => self.parse_errors += 1,
            Kind::NotStarted => self.not_started += 1,
            Kind::Killed => self.killed += 1,
        }
        // A command that timed out but exited by itself during the grace still counts as such.
        if o.timed_out {
            self.timed_out += 1;
        }
    }

    pub fn reported(&self) -> usize {
        self.succeeded + self.failed + self.parse_errors + self.not_started + self.killed
    }

    pub fn all_succeeded(&self) -> bool {
        self.reported() == self.succeeded
    }

    /// `6 commands: 2 succeeded, 1 failed, 1 parse error, 1 could not start, 1 killed (1 timed
    /// out)`; `total` counts every command line read, so that those never started after an
    /// interrupt or a halt show as such.
    pub fn summary(&self, total: usize, interrupted_by: Option<i32>, halted: bool) -> String {
        let mut s = format!(
            "{total} command{}: {} succeeded, {} failed, {} parse error{}, {} could not start, {} \
             killed",
            if total == 1 { "" } else { "s" },
            self.succeeded,
            self.failed,
            self.parse_errors,
            if self.parse_errors == 1 { "" } else { "s" },
            self.not_started,
            self.killed,
        );
        if self.timed_out > 0 {
            let _ = write!(s, " ({} timed out)", self.timed_out);
        }
        if let Some(signal) = interrupted_by {
            let name = signal_label(signal);
            let name = name.split(' ').next().unwrap_or("a signal");
            let _ = write!(
                s,
                "; interrupted by {name}: {} not run",
                total.saturating_sub(self.reported())
            );
        } else if halted {
            let _ = write!(
                s,
                "; halted after a failure: {} not run",
                total.saturating_sub(self.reported())
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Status) -> Outcome {
        let mut o = Outcome::not_run(0, 7, "echo hi".into(), status);
        o.pid = Some(42);
        o.duration = Some(Duration::from_micros(1500));
        o
    }

    #[test]
    fn text_lines() {
        assert_eq!(
            outcome(Status::Exited(0)).text_line(),
            "line 7: exit 0 in 1.5ms: echo hi"
        );
        let mut o = outcome(Status::Signaled {
            signal: 9,
            core_dumped: false,
        });
        o.timed_out = true;
        assert_eq!(
            o.text_line(),
            "line 7: killed by SIGKILL (signal 9) after timeout in 1.5ms: echo hi"
        );
        assert_eq!(
            outcome(Status::SpawnFailed("nope: program not found".into())).text_line(),
            "line 7: could not start: nope: program not found"
        );
        assert_eq!(
            outcome(Status::ParseError("missing closing quote".into())).text_line(),
            "line 7: parse error: missing closing quote: echo hi"
        );
    }

    fn with_output(stdout: &[u8], stderr: &[u8]) -> Outcome {
        let mut o = outcome(Status::Exited(0));
        let captured = |bytes: &[u8]| {
            Some(Captured {
                bytes: bytes.to_vec(),
                complete: true,
                ..Captured::default()
            })
        };
        o.stdout = captured(stdout);
        o.stderr = captured(stderr);
        o
    }

    #[test]
    fn tagged_output_is_prefixed_per_line_after_the_result_on_stdout() {
        let o = with_output(b"a\n\nb", b"warn\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        o.write_text(&mut out, &mut err, TextStyle::Tagged)
            .expect("test setup");
        assert_eq!(
            String::from_utf8(out).expect("test setup"),
            "line 7: exit 0 in 1.5ms: echo hi\n7| a\n7| \n7| b\n"
        );
        assert_eq!(String::from_utf8(err).expect("test setup"), "7| warn\n");
    }

    #[test]
    fn tagging_holds_across_writes_split_anywhere() {
        let text = b"one\ntwo words\n\nlast without newline";
        for cut in 0..text.len() {
            let mut out = Vec::new();
            let mut tagged = Tagged::new(&mut out, 3);
            tagged.write_all(&text[..cut]).expect("test setup");
            tagged.write_all(&text[cut..]).expect("test setup");
            tagged.end().expect("test setup");
            assert_eq!(
                String::from_utf8(out).expect("test setup"),
                "3| one\n3| two words\n3| \n3| last without newline\n",
                "cut at {cut}"
            );
        }
        let mut out = Vec::new();
        Tagged::new(&mut out, 3).end().expect("test setup");
        assert!(out.is_empty(), "no output, no line");
    }

    #[test]
    fn plain_output_passes_unchanged_and_the_result_goes_to_stderr() {
        let o = with_output(b"a\n\nb", b"warn\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        o.write_text(&mut out, &mut err, TextStyle::Plain)
            .expect("test setup");
        assert_eq!(out, b"a\n\nb", "the bytes as the command wrote them");
        assert_eq!(
            String::from_utf8(err).expect("test setup"),
            "line 7: exit 0 in 1.5ms: echo hi\nwarn\n"
        );
    }

    #[test]
    fn json_has_every_key() {
        let mut out = Vec::new();
        outcome(Status::Exited(3))
            .write_json(&mut out)
            .expect("test setup");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("test setup");
        assert_eq!(v["line"], 7);
        assert_eq!(v["code"], 3);
        assert_eq!(v["duration_ms"], 1.5);
        for key in ["signal", "error", "stdout", "stderr"] {
            assert!(v[key].is_null(), "{key}");
        }
    }

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(escape_controls("a\tb\x1b[2Jé"), "a\\tb\\x1b[2Jé");
        assert_eq!(escape_controls("\u{9b}"), "\\u{9b}");
        assert_eq!(escape_bytes(b"ok \xff\x07 \xc3\xa9"), "ok \\xff\\x07 é");
    }

    #[test]
    fn parse_errors_are_counted_apart_and_halts_are_said() {
        let mut t = Tally::default();
        t.add(&outcome(Status::ParseError("missing closing quote".into())));
        t.add(&outcome(Status::SpawnFailed("nope".into())));
        t.add(&Outcome::skipped(3));
        assert_eq!((t.parse_errors, t.not_started, t.skipped), (1, 1, 1));
        assert_eq!(
            t.summary(4, None, true),
            "4 commands: 0 succeeded, 0 failed, 1 parse error, 1 could not start, 0 killed; \
             halted after a failure: 2 not run"
        );
    }

    #[test]
    fn joblog_lines() {
        let mut o = outcome(Status::Exited(3));
        o.started_at = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_500));
        let mut out = Vec::new();
        o.write_joblog(&mut out).expect("test setup");
        assert_eq!(
            String::from_utf8(out).expect("test setup"),
            "7\t1.500\t0.002\t3\t0\t-\t-\t-\techo hi\n"
        );
        assert_eq!(JOBLOG_HEADER.split('\t').count(), 9);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_micros(850)), "850µs");
        assert_eq!(human_duration(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(human_duration(Duration::from_millis(4_561)), "4.56s");
        assert_eq!(human_duration(Duration::from_millis(123_400)), "2m03.4s");
    }

    #[test]
    fn summary_counts_the_unrun_after_an_interrupt() {
        let mut t = Tally::default();
        t.add(&outcome(Status::Exited(0)));
        t.add(&outcome(Status::Signaled {
            signal: 15,
            core_dumped: false,
        }));
        assert_eq!(
            t.summary(5, Some(libc::SIGINT), false),
            "5 commands: 1 succeeded, 0 failed, 0 parse errors, 0 could not start, 1 killed; \
             interrupted by SIGINT: 3 not run"
        );
        assert!(!t.all_succeeded());
    }
}
