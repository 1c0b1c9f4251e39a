//! Collecting a child's output from async code: [`ExecHandle::wait_with_output_async`] and
//! [`ExecHandle::wait_with_output_bounded_async`], and [`Executor::output_async`] (spawn, then
//! collect).
//!
//! The same drain as the blocking forms ([`Capture`] in [`crate::output`]: what is kept, the
//! time limit, the linger after the exit), waiting differently: the pipes and a timerfd for the
//! time limit and the linger sit in the executor's poll set ([`crate::async_io`]), and the exit
//! is the handle's [`ExitFuture`](crate::ExitFuture). The executor's loop wakes the task; no
//! thread, no runtime dependency.

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::{ExitStatus, Output};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::async_io::{AsyncTimer, IoSource, READS_PER_POLL};
use crate::command::Command;
use crate::executor::Executor;
use crate::exit_future::ExitFuture;
use crate::handle::ExecHandle;
use crate::output::{Capture, LimitedOutput, OUTPUT_DEFAULTS, OutputLimits, Step, take_pipes};
use crate::poller::Interest;

/// How much one `read(2)` takes from a pipe (as the blocking drain).
const READ_CHUNK: usize = 64 * 1024;

impl Executor {
    /// [`output`](Self::output) for async code: spawns `command` as
    /// [`spawn_async`](Self::spawn_async) does (stdout and stderr piped and stdin `/dev/null`
    /// unless the command sets them, as std's `output()`), then
    /// [`ExecHandle::wait_with_output_async`]. The request is queued by this call; the future
    /// is `Send + 'static`, woken by the executor's loop, with no runtime dependency.
    ///
    /// ```
    /// use napix_executor::{Command, Executor};
    /// let ex = Executor::start()?;
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "echo $GREETING; exit 2"]).env("GREETING", "hi");
    /// let out = pollster::block_on(ex.output_async(&cmd))?; // or `.await` in any runtime
    /// assert_eq!(out.status.code(), Some(2));
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The spawn's [`SpawnError`](crate::SpawnError) as an [`io::Error`] (its kind kept), or
    /// what [`ExecHandle::wait_with_output_async`] returns.
    pub fn output_async(
        &self,
        command: &Command,
    ) -> impl Future<Output = io::Result<Output>> + Send + 'static {
        let spawned = self.spawn_async_with(command, OUTPUT_DEFAULTS);
        async move { spawned.await?.wait_with_output_async().await }
    }

    /// [`output_async`](Self::output_async) within `limits`:
    /// [`ExecHandle::wait_with_output_bounded_async`].
    ///
    /// # Errors
    /// As [`output_async`](Self::output_async).
    pub fn output_bounded_async(
        &self,
        command: &Command,
        limits: OutputLimits,
    ) -> impl Future<Output = io::Result<LimitedOutput>> + Send + 'static {
        let spawned = self.spawn_async_with(command, OUTPUT_DEFAULTS);
        async move { spawned.await?.wait_with_output_bounded_async(limits).await }
    }
}

impl ExecHandle {
    /// [`wait_with_output`](Self::wait_with_output) for async code: the same result (stdin
    /// closed first, both pipes read to end of file, then the status), woken by the executor's
    /// loop with no thread and no runtime dependency.
    ///
    /// Dropping the future before it completes closes the pipes (they leave the executor's poll
    /// set) and leaves the child running; the executor still reaps it.
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// let child = ex.create_process(&["sh", "-c", "echo out; echo err >&2; exit 3"], false)?;
    /// let output = pollster::block_on(child.wait_with_output_async())?; // or `.await`
    /// assert_eq!(output.status.code(), Some(3));
    /// assert_eq!(output.stdout, b"out\n");
    /// assert_eq!(output.stderr, b"err\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait_with_output`](Self::wait_with_output), and an error if the executor is dropped
    /// while it waits (nothing would wake it).
    pub async fn wait_with_output_async(self) -> io::Result<Output> {
        let capture = Capture::unbounded(self.async_pipes()?);
        Ok(drain(&self, capture).await?.output)
    }

    /// [`wait_with_output_bounded`](Self::wait_with_output_bounded) for async code: the same
    /// limits with the same meaning, woken by the executor's loop (a timerfd in its poll set
    /// stands for the time limit and the linger).
    ///
    /// ```
    /// use std::time::Duration;
    /// use napix_executor::{Executor, OutputLimits};
    /// let ex = Executor::builder().kill_grace(Duration::from_millis(100)).start()?;
    /// // The shell exits at once; the `sleep` it left behind holds stdout open for 30 s.
    /// let child = ex.create_process(&["sh", "-c", "sleep 30 & yes | head -c 100000"], false)?;
    /// let limits = OutputLimits::default().max_stdout(1000).timeout(Duration::from_secs(10));
    /// let got = pollster::block_on(child.wait_with_output_bounded_async(limits))?;
    /// assert!(got.output.status.success());
    /// assert_eq!(got.output.stdout.len(), 1000);
    /// assert!(got.stdout_truncated && got.pipes_left_open && !got.timed_out);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait_with_output_async`](Self::wait_with_output_async).
    pub async fn wait_with_output_bounded_async(
        self,
        limits: OutputLimits,
    ) -> io::Result<LimitedOutput> {
        let capture = Capture::bounded(self.async_pipes()?, limits);
        drain(&self, capture).await
    }

    /// The pipes to drain, as sources the executor's loop wakes.
    fn async_pipes(&self) -> io::Result<[Option<IoSource>; 2]> {
        let source = |fd: Option<OwnedFd>| fd.map(|fd| self.io_source(fd, Interest::Read));
        let [stdout, stderr] = take_pipes(self)?;
        Ok([source(stdout), source(stderr)])
    }
}

/// The async drain behind both forms.
async fn drain(handle: &ExecHandle, mut capture: Capture<IoSource>) -> io::Result<LimitedOutput> {
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut exit = handle.wait_async();
    // Made when a time limit or a linger first needs one.
    let mut timer: Option<AsyncTimer> = None;
    poll_fn(|cx| {
        poll_drain(
            handle,
            &mut capture,
            &mut scratch,
            &mut exit,
            &mut timer,
            cx,
        )
    })
    .await?;
    let status = match capture.status_deadline() {
        Some(deadline) => {
            let exited = poll_fn(|cx| {
                if let Poll::Ready(status) = Pin::new(&mut exit).poll(cx) {
                    return Poll::Ready(Ok(Some(status)));
                }
                match timer_for(&mut timer, handle)?.poll_at(cx, deadline) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(None)),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await?;
            match exited {
                Some(status) => status,
                None => {
                    capture.time_out(handle)?;
                    exit_status(&mut exit).await
                }
            }
        }
        None => exit_status(&mut exit).await,
    };
    Ok(capture.finish(handle, status))
}

async fn exit_status(exit: &mut ExitFuture) -> ExitStatus {
    poll_fn(|cx| Pin::new(&mut *exit).poll(cx)).await
}

fn timer_for<'a>(
    timer: &'a mut Option<AsyncTimer>,
    handle: &ExecHandle,
) -> io::Result<&'a mut AsyncTimer> {
    if timer.is_none() {
        *timer = Some(AsyncTimer::new(handle.executor_weak())?);
    }
    timer.as_mut().ok_or_else(|| io::Error::other("no timer"))
}

/// Reads what the pipes hold, notes the exit, and follows the capture's steps until it says
/// done (`Ready`) or nothing is ready (`Pending`, every source registered to wake the task).
fn poll_drain(
    handle: &ExecHandle,
    capture: &mut Capture<IoSource>,
    scratch: &mut [u8],
    exit: &mut ExitFuture,
    timer: &mut Option<AsyncTimer>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let mut reads = 0;
    loop {
        let (watch_exit, wake) = match capture.step(handle, Instant::now())? {
            Step::Done => return Poll::Ready(Ok(())),
            Step::Wait { watch_exit, wake } => (watch_exit, wake),
        };
        let mut progressed = false;
        for stream in &mut capture.streams {
            let got = match &mut stream.fd {
                Some(io) => io.poll_io(cx, |fd| rustix::io::read(fd, &mut *scratch)),
                None => continue,
            };
            match got {
                Poll::Ready(Ok(n)) => {
                    // End of file (n = 0) drops the source: out of the poll set, closed.
                    stream.took(&scratch[..n]);
                    progressed = true;
                    reads += 1;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if watch_exit && Pin::new(&mut *exit).poll(cx).is_ready() {
            capture.exit_seen(Instant::now());
            progressed = true;
        }
        if let Some(at) = wake
            && timer_for(timer, handle)?.poll_at(cx, at)?.is_ready()
        {
            progressed = true;
        }
        if !progressed {
            return Poll::Pending;
        }
        if reads >= READS_PER_POLL {
            // A child writing as fast as it is read: let the task's other work run.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
    }
}
