//! Collecting a child's output without deadlocks: [`ExecHandle::wait_with_output`], its bounded
//! form [`ExecHandle::wait_with_output_bounded`] ([`OutputLimits`] in, [`LimitedOutput`] out),
//! and the drain that both run: its rules ([`Capture`]: what is kept, the time limit, the linger)
//! are also those of the async forms ([`crate::output_async`]), which only wait differently.
//!
//! # Where the pipes are drained: on the caller's thread
//!
//! The caller's thread sets its read ends non-blocking and waits in `poll(2)` on stdout, stderr
//! and the child's exit, reading whichever is ready. No thread per child or per pipe, and nothing
//! for the executor thread to copy: its loop stays a spawn/reap loop whose latency does not
//! depend on how much other children write, no buffer crosses threads, and the caller, who is
//! blocked on the result anyway, pays for its own bytes.
//!
//! The exit is watched through the handle's descriptor ([`AsFd`] for [`ExecHandle`]) in the
//! same `poll(2)`: the child's pidfd, readable once it exited, or in signal mode the eventfd the
//! executor writes when it reaped the child. No timer wakes the drain. The unbounded
//! [`ExecHandle::wait_with_output`] does not look at the exit before both pipes reach end of
//! file (std's behaviour).
//!
//! # A process that keeps the pipe open
//!
//! A child that starts a background process (`sh -c 'sleep 30 & echo hi'`) passes its stdout to
//! it: the pipe reaches end of file only when that process exits too. Reading to end of file,
//! as std's `wait_with_output`, Go's `CombinedOutput` and Python's `communicate` do, then waits
//! for the grandchild. The bounded form reads until the child itself has exited, then for at most
//! [`OutputLimits::linger`] more (what was written just before the exit is still in flight), then
//! stops reading and says so ([`LimitedOutput::pipes_left_open`]).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;

use crate::command::Command;
use crate::executor::Executor;
use crate::handle::ExecHandle;
use crate::request::StdioPlan;

/// The default [`OutputLimits::linger`]: how long the pipes are still read after the child
/// exited.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(100);

/// How much one `read(2)` takes from a pipe: the default pipe capacity, so one read usually
/// empties it.
const READ_CHUNK: usize = 64 * 1024;

/// Limits for [`ExecHandle::wait_with_output_bounded`]: bytes kept per stream, a time limit, and
/// how long to keep reading after the child exited. [`Default`] is no byte limit, no time limit,
/// and a linger of [`DEFAULT_LINGER`].
///
/// ```
/// use std::time::Duration;
/// use napix_executor::OutputLimits;
/// let limits = OutputLimits::default()
///     .max_stdout(1 << 20)
///     .max_stderr(64 * 1024)
///     .timeout(Duration::from_secs(10));
/// assert_eq!(limits.max_stdout, Some(1 << 20));
/// assert_eq!(limits.linger, Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// At most this many bytes of stdout are kept; the rest is read and dropped, so the child
    /// never blocks on a full pipe. `None`: everything.
    pub max_stdout: Option<usize>,
    /// As [`max_stdout`](Self::max_stdout), for stderr.
    pub max_stderr: Option<usize>,
    /// Counted from the call. When it passes before the child exited, the child gets the kill
    /// escalation ([`ExecHandle::start_kill`]: SIGTERM, then SIGKILL after the executor's kill
    /// grace), the pipes are still read until it exited, and the result says
    /// [`timed_out`](LimitedOutput::timed_out). `None`: no time limit.
    pub timeout: Option<Duration>,
    /// How long the pipes are still read once the child exited, for what it wrote just before;
    /// a pipe still open after that is held by a process the child started, and is no longer
    /// read ([`LimitedOutput::pipes_left_open`]). Default [`DEFAULT_LINGER`].
    pub linger: Duration,
}

impl Default for OutputLimits {
    fn default() -> OutputLimits {
        OutputLimits {
            max_stdout: None,
            max_stderr: None,
            timeout: None,
            linger: DEFAULT_LINGER,
        }
    }
}

impl OutputLimits {
    /// Keeps at most `bytes` of stdout.
    #[must_use]
    pub fn max_stdout(mut self, bytes: usize) -> OutputLimits {
        self.max_stdout = Some(bytes);
        self
    }

    /// Keeps at most `bytes` of stderr.
    #[must_use]
    pub fn max_stderr(mut self, bytes: usize) -> OutputLimits {
        self.max_stderr = Some(bytes);
        self
    }

    /// Keeps at most `bytes` of each stream.
    #[must_use]
    pub fn max_output(self, bytes: usize) -> OutputLimits {
        self.max_stdout(bytes).max_stderr(bytes)
    }

    /// Kills the child (with escalation) if it has not exited `timeout` after the call. A
    /// timeout too large to represent as an instant (`Duration::MAX`) is no timeout.
    ///
    /// This bounds one collection of output, from the call. For a deadline on the child's
    /// life, counted from its spawn and kept whether or not anyone waits, use
    /// [`Command::timeout`](crate::Command::timeout); with both, the earlier ends the child.
    /// Either kill reaches the command's [`KillScope`](crate::KillScope), by default the child
    /// alone: a shell's own children outlive it unless the command sets
    /// [`kill_scope`](crate::Command::kill_scope).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> OutputLimits {
        self.timeout = Some(timeout);
        self
    }

    /// Reads the pipes for at most `linger` after the child exited. A linger too large to
    /// represent as an instant (`Duration::MAX`) is no limit: the pipes are read to their end.
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> OutputLimits {
        self.linger = linger;
        self
    }
}

/// What [`ExecHandle::wait_with_output_bounded`] collected, and which limit cut it short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitedOutput {
    /// The status and the bytes kept (at most the limits' worth of each stream).
    pub output: Output,
    /// The child wrote more to stdout than [`OutputLimits::max_stdout`]; the excess was dropped.
    pub stdout_truncated: bool,
    /// As [`stdout_truncated`](Self::stdout_truncated), for stderr.
    pub stderr_truncated: bool,
    /// The time limit passed before the child exited, and the child was killed; or the
    /// command's own deadline killed it ([`ExecHandle::timed_out`]).
    pub timed_out: bool,
    /// The child exited but its stdout or stderr stayed open longer than
    /// [`OutputLimits::linger`] (a process it started holds it): reading stopped there, and
    /// what that process writes later is not collected.
    pub pipes_left_open: bool,
}

/// What [`Executor::output`] gives the streams a command leaves unset: std's defaults for
/// `output()`.
pub(crate) const OUTPUT_DEFAULTS: [StdioPlan; 3] =
    [StdioPlan::Null, StdioPlan::Piped, StdioPlan::Piped];
/// `std::process::Command::status`'s defaults: the three streams inherited.
const STATUS_DEFAULTS: [StdioPlan; 3] =
    [StdioPlan::Inherit, StdioPlan::Inherit, StdioPlan::Inherit];

impl Executor {
    /// Runs `command` to its end and collects its status, stdout and stderr, as
    /// [`std::process::Command::output`]: stdout and stderr are pipes and stdin is `/dev/null`
    /// unless the command sets them; then [`ExecHandle::wait_with_output`].
    ///
    /// ```
    /// # let ex = std::sync::Arc::new(napix_executor::Executor::new()?);
    /// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
    /// use napix_executor::Command;
    /// let out = ex.output(Command::new("sh").args(["-c", "echo $GREETING; exit 2"]).env("GREETING", "hi"))?;
    /// assert_eq!(out.status.code(), Some(2));
    /// assert_eq!(out.stdout, b"hi\n");
    /// # ex.stop(); runner.join().expect("run thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The spawn's [`SpawnError`](crate::SpawnError) as an [`io::Error`] (its kind kept), or
    /// what [`ExecHandle::wait_with_output`] returns.
    pub fn output(&self, command: &Command) -> io::Result<Output> {
        self.spawn_with(command, OUTPUT_DEFAULTS)?
            .wait_with_output()
    }

    /// Runs `command` to its end and returns its status, as [`std::process::Command::status`]:
    /// stdin, stdout and stderr are inherited from this process unless the command sets them
    /// (where [`spawn`](Self::spawn) gives stdin `/dev/null`).
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// use napix_executor::Command;
    /// let status = ex.status(Command::new("sh").args(["-c", "exit 4"]))?;
    /// assert_eq!(status.code(), Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The spawn's [`SpawnError`](crate::SpawnError) as an [`io::Error`] (its kind kept).
    pub fn status(&self, command: &Command) -> io::Result<ExitStatus> {
        Ok(self.spawn_with(command, STATUS_DEFAULTS)?.wait())
    }

    /// [`output`](Self::output) within `limits`: [`ExecHandle::wait_with_output_bounded`].
    ///
    /// # Errors
    /// As [`output`](Self::output).
    pub fn output_bounded(
        &self,
        command: &Command,
        limits: OutputLimits,
    ) -> io::Result<LimitedOutput> {
        self.spawn_with(command, OUTPUT_DEFAULTS)?
            .wait_with_output_bounded(limits)
    }
}

impl ExecHandle {
    /// Waits for the child to exit and collects its status, stdout and stderr, as
    /// [`std::process::Child::wait_with_output`]: a piped stdin not yet taken is closed first (so
    /// a child reading it sees end of file), both pipes are read at once to their end, whatever
    /// the sizes, so neither the child nor the caller can block on a full pipe; then the status.
    /// A stream that is not a pipe, or whose read end was taken, comes back empty.
    ///
    /// Runs on the calling thread (see the [module docs](crate#capturing-output)); the executor's
    /// [`run`](crate::Executor::run) loop must be running in another thread for the status.
    ///
    /// Like std's, it reads to end of file: a process the child started in the background that
    /// keeps the pipe open keeps this waiting. The bounded form,
    /// [`wait_with_output_bounded`](Self::wait_with_output_bounded), stops shortly after the
    /// child's own exit.
    ///
    /// ```
    /// # let ex = std::sync::Arc::new(napix_executor::Executor::new()?);
    /// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
    /// let child = ex.create_process(&["sh", "-c", "echo out; echo err >&2; exit 3"], false)?;
    /// let output = child.wait_with_output()?;
    /// assert_eq!(output.status.code(), Some(3));
    /// assert_eq!(output.stdout, b"out\n");
    /// assert_eq!(output.stderr, b"err\n");
    /// # ex.stop(); runner.join().expect("run thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The errno of a failed `poll(2)` or `read(2)` on the pipes (never `EINTR` or `EAGAIN`:
    /// those are retried). The child is left running then; the executor still reaps it.
    pub fn wait_with_output(self) -> io::Result<Output> {
        let drained = self.drain(Capture::unbounded(take_pipes(&self)?))?;
        Ok(drained.output)
    }

    /// Like [`wait_with_output`](Self::wait_with_output), within `limits`: at most
    /// `max_stdout`/`max_stderr` bytes kept (the rest is read and dropped, so the child does not
    /// block), the child killed with escalation when `timeout` passes, and reading stopped
    /// `linger` after the child exited even if a process it started keeps a pipe open. The
    /// result says which limit cut it short. Returns after at most `timeout` + the executor's kill
    /// grace + `linger` (plus the reap) when a timeout is given.
    ///
    /// ```
    /// # let ex = std::sync::Arc::new(napix_executor::Executor::builder()
    /// #     .kill_grace(std::time::Duration::from_millis(100)).build()?);
    /// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
    /// use std::time::Duration;
    /// use napix_executor::OutputLimits;
    /// // The shell exits at once; the `sleep` it left behind holds stdout open for 30 s.
    /// let child = ex.create_process(&["sh", "-c", "sleep 30 & yes | head -c 100000"], false)?;
    /// let limits = OutputLimits::default().max_stdout(1000).timeout(Duration::from_secs(10));
    /// let got = child.wait_with_output_bounded(limits)?;
    /// assert!(got.output.status.success());
    /// assert_eq!(got.output.stdout.len(), 1000);
    /// assert!(got.stdout_truncated && got.pipes_left_open && !got.timed_out);
    /// # ex.stop(); runner.join().expect("run thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait_with_output`](Self::wait_with_output).
    pub fn wait_with_output_bounded(self, limits: OutputLimits) -> io::Result<LimitedOutput> {
        self.drain(Capture::bounded(take_pipes(&self)?, limits))
    }

    /// The blocking drain behind both forms: waits in `poll(2)` on the pipes and the exit.
    fn drain(&self, mut capture: Capture<OwnedFd>) -> io::Result<LimitedOutput> {
        let mut scratch = vec![0u8; READ_CHUNK];
        // Readable once the child exited (its pidfd) or was reaped (signal mode's eventfd).
        let exit_fd = self.as_fd();
        loop {
            let now = Instant::now();
            let (watch_exit, wake) = match capture.step(self, now)? {
                Step::Done => break,
                Step::Wait { watch_exit, wake } => (watch_exit, wake),
            };
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
            let mut which: Vec<Option<usize>> = Vec::with_capacity(3);
            for (i, stream) in capture.streams.iter().enumerate() {
                if let Some(fd) = &stream.fd {
                    fds.push(PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::IN));
                    which.push(Some(i));
                }
            }
            if watch_exit {
                fds.push(PollFd::from_borrowed_fd(exit_fd, PollFlags::IN));
                which.push(None);
            }
            let timeout = wake.map(|w| timespec(w.saturating_duration_since(now)));
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let mut exit_seen = false;
            let mut ready = [false, false];
            for (fd, which) in fds.iter().zip(&which) {
                if fd.revents().is_empty() {
                    continue;
                }
                match which {
                    Some(i) => ready[*i] = true,
                    None => exit_seen = true,
                }
            }
            drop(fds);
            for (stream, ready) in capture.streams.iter_mut().zip(ready) {
                if ready {
                    stream.read_once(&mut scratch)?;
                }
            }
            if exit_seen {
                capture.exit_seen(Instant::now());
            }
        }
        let status = match capture.status_deadline() {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.wait_timeout(left) {
                    Some(status) => status,
                    None => {
                        capture.time_out(self)?;
                        self.wait()
                    }
                }
            }
            None => self.wait(),
        };
        Ok(capture.finish(self, status))
    }
}

/// The read ends of the child's stdout and stderr (`None`: not a pipe, or taken already), once
/// its stdin is closed: like std, so that a child reading its stdin to the end does not wait
/// for us while we wait for it. Made non-blocking (ours alone: the child's ends are other open
/// files).
pub(crate) fn take_pipes(handle: &ExecHandle) -> io::Result<[Option<OwnedFd>; 2]> {
    drop(handle.take_stdin());
    let pipes = [
        handle.take_stdout().map(OwnedFd::from),
        handle.take_stderr().map(OwnedFd::from),
    ];
    for fd in pipes.iter().flatten() {
        rustix::io::ioctl_fionbio(fd, true)?;
    }
    Ok(pipes)
}

/// What every drain shares, blocking ([`ExecHandle::drain`]) or async
/// ([`crate::output_async`]): the two streams and the bytes kept from each within its limit,
/// the time limit, and when reading stops after the child's exit. The drivers differ only in
/// how they wait; `F` is how they hold a pipe's read end.
pub(crate) struct Capture<F> {
    pub(crate) streams: [Stream<F>; 2],
    deadline: Option<Instant>,
    /// `None`: read to end of file however long that takes (the unbounded form).
    linger: Option<Duration>,
    timed_out: bool,
    /// When the child was seen to have exited.
    exited_at: Option<Instant>,
}

/// What a drain does next.
pub(crate) enum Step {
    /// Reading is over: both pipes at end of file, or the linger after the exit ran out.
    Done,
    /// Wait for an open pipe to turn readable, for the child's exit when `watch_exit`, and at
    /// most until `wake`; then [`Capture::step`] again.
    Wait {
        watch_exit: bool,
        wake: Option<Instant>,
    },
}

impl<F> Capture<F> {
    /// The unbounded form: everything kept, no time limit, read to end of file (std's).
    pub(crate) fn unbounded(pipes: [Option<F>; 2]) -> Capture<F> {
        Capture::new(pipes, None, [None, None], None)
    }

    /// The bounded form, its time limit counted from now.
    pub(crate) fn bounded(pipes: [Option<F>; 2], limits: OutputLimits) -> Capture<F> {
        // A timeout too large to represent is no timeout.
        let deadline = limits
            .timeout
            .and_then(|timeout| Instant::now().checked_add(timeout));
        Capture::new(
            pipes,
            deadline,
            [limits.max_stdout, limits.max_stderr],
            Some(limits.linger),
        )
    }

    fn new(
        pipes: [Option<F>; 2],
        deadline: Option<Instant>,
        limits: [Option<usize>; 2],
        linger: Option<Duration>,
    ) -> Capture<F> {
        let [stdout, stderr] = pipes;
        Capture {
            streams: [
                Stream::new(stdout, limits[0]),
                Stream::new(stderr, limits[1]),
            ],
            deadline,
            linger,
            timed_out: false,
            exited_at: None,
        }
    }

    /// Decides at `now` whether reading goes on: starts the kill when the time limit passed
    /// before the exit, notes an exit the handle already knows of, and stops reading once both
    /// pipes are closed or the linger after the exit ran out.
    ///
    /// # Errors
    /// The kill's ([`ExecHandle::start_kill`]).
    pub(crate) fn step(&mut self, handle: &ExecHandle, now: Instant) -> io::Result<Step> {
        if !self.streams.iter().any(Stream::is_open) {
            return Ok(Step::Done);
        }
        if let Some(at) = self.deadline
            && now >= at
            && self.exited_at.is_none()
        {
            self.deadline = None;
            self.time_out(handle)?;
        }
        if self.exited_at.is_none() && self.linger.is_some() && handle.return_code().is_some() {
            self.exited_at = Some(now);
        }
        // A linger too large to represent is no linger: read to the end, as for a timeout.
        let stop_at = match (self.exited_at, self.linger) {
            (Some(at), Some(linger)) => at.checked_add(linger),
            _ => None,
        };
        if stop_at.is_some_and(|stop| now >= stop) {
            return Ok(Step::Done);
        }
        Ok(Step::Wait {
            // The exit matters only to stop reading after the linger.
            watch_exit: self.linger.is_some() && self.exited_at.is_none(),
            wake: [stop_at, self.deadline].into_iter().flatten().min(),
        })
    }

    /// The child's exit was seen (its pidfd or exit descriptor turned readable) at `now`.
    pub(crate) fn exit_seen(&mut self, now: Instant) {
        if self.exited_at.is_none() {
            self.exited_at = Some(now);
        }
    }

    /// The time limit still in force for the status once reading is over: none once the exit
    /// was seen (the reap is under way), or when it already passed and started the kill.
    pub(crate) fn status_deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.exited_at.is_none())
    }

    /// The time limit passed before the exit: the kill escalation starts.
    pub(crate) fn time_out(&mut self, handle: &ExecHandle) -> io::Result<()> {
        self.timed_out = true;
        self.deadline = None;
        handle.start_kill()
    }

    /// The result, with the child's `status`.
    pub(crate) fn finish(self, handle: &ExecHandle, status: ExitStatus) -> LimitedOutput {
        let pipes_left_open = self.streams.iter().any(Stream::is_open);
        let [stdout, stderr] = self.streams;
        LimitedOutput {
            output: Output {
                status,
                stdout: stdout.kept,
                stderr: stderr.kept,
            },
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
            // Or the command's own deadline killed it.
            timed_out: self.timed_out || handle.timed_out(),
            pipes_left_open,
        }
    }
}

/// One pipe being drained: its read end (`None` once at end of file or never a pipe), the bytes
/// kept and the limit.
pub(crate) struct Stream<F> {
    pub(crate) fd: Option<F>,
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl<F> Stream<F> {
    fn new(fd: Option<F>, limit: Option<usize>) -> Stream<F> {
        Stream {
            fd,
            kept: Vec::new(),
            limit: limit.unwrap_or(usize::MAX),
            truncated: false,
        }
    }

    fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// What one `read(2)` gave: `bytes`, kept up to the limit; end of file (none) closes the
    /// stream.
    pub(crate) fn took(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            self.fd = None;
            return;
        }
        let room = self.limit.saturating_sub(self.kept.len());
        let keep = bytes.len().min(room);
        self.kept.extend_from_slice(&bytes[..keep]);
        self.truncated |= keep < bytes.len();
    }
}

impl Stream<OwnedFd> {
    /// One `read(2)` of the non-blocking read end.
    fn read_once(&mut self, scratch: &mut [u8]) -> io::Result<()> {
        let Some(fd) = &self.fd else {
            return Ok(());
        };
        match rustix::io::read(fd, &mut *scratch) {
            Ok(n) => self.took(&scratch[..n]),
            Err(Errno::AGAIN | Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

/// A poll timeout, rounded up to the next millisecond so that a wake-up is never early (a
/// zero-length sleep would spin until the deadline).
fn timespec(d: Duration) -> Timespec {
    let ms = d.as_nanos().div_ceil(1_000_000);
    let d = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX / 1000));
    Timespec::try_from(d).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timespec(Duration::ZERO).tv_nsec, 0);
        assert_eq!(timespec(Duration::from_nanos(1)).tv_nsec, 1_000_000);
        assert_eq!(timespec(Duration::from_micros(1500)).tv_nsec, 2_000_000);
        assert_eq!(timespec(Duration::from_secs(3)).tv_sec, 3);
        assert!(
            timespec(Duration::MAX).tv_sec > 1 << 40,
            "no wrap to a short sleep"
        );
    }

    #[test]
    fn limits_default_to_nothing_but_the_linger() {
        let d = OutputLimits::default();
        assert_eq!((d.max_stdout, d.max_stderr, d.timeout), (None, None, None));
        assert_eq!(d.linger, DEFAULT_LINGER);
        let both = OutputLimits::default().max_output(7);
        assert_eq!((both.max_stdout, both.max_stderr), (Some(7), Some(7)));
    }
}
