//! A child's pipes for async code, with no runtime dependency: [`AsyncChildStdout`],
//! [`AsyncChildStderr`], [`AsyncChildStdin`] (from [`ExecHandle::take_stdout_async`] and its
//! siblings), and the timer the async output capture sleeps on.
//!
//! # How a task is woken
//!
//! Each of these is an [`IoSource`]: a non-blocking descriptor that, the first time an operation
//! finds it not ready (`EAGAIN`), joins the executor's own epoll set, edge-triggered, under a
//! token of its own ([`Poller::add_io`]). The executor's loop, which already sleeps in that set
//! for pidfds and its timer, wakes the waiting task when the descriptor turns ready
//! ([`crate::io_registry`]). No thread per child or per pipe, no timer polling, and any
//! runtime (or none, as `pollster`) can drive the futures. The loop must run, as for
//! [`ExecHandle::wait_async`]: an operation waiting while no thread runs it (before `run`, or
//! after `run` returned from a stop while the executor lives on) is woken once one does; an
//! operation that would wait after the executor was dropped fails instead of waiting for ever.
//!
//! # Cancel safety
//!
//! A read gives its bytes to the caller in the same poll that takes them from the pipe: a read
//! future dropped before it completed took nothing, and the next read gets every byte.
//! [`read_to_end`](AsyncChildStdout::read_to_end) appends to the caller's vector as it goes, so
//! what it read before being dropped is there. Dropping a pipe takes it out of the poll set and
//! closes it.
//!
//! [`Poller::add_io`]: crate::poller::Poller::add_io

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use rustix::io::Errno;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};

use crate::handle::ExecHandle;
use crate::io_registry::{Readiness, executor_gone};
use crate::poller::{Interest, monotonic_timespec};
use crate::shared::Shared;

/// How much [`read_to_end`](AsyncChildStdout::read_to_end) asks one `read(2)` for: the default
/// pipe capacity, so one read usually empties the pipe.
const READ_CHUNK: usize = 64 * 1024;

/// How many reads one poll of a draining future makes before it lets other tasks run: a child
/// that writes as fast as it is read would otherwise keep the task's thread for ever.
pub(crate) const READS_PER_POLL: usize = 16;

/// A non-blocking descriptor whose readiness the executor's loop reports.
pub(crate) struct IoSource {
    fd: OwnedFd,
    interest: Interest,
    executor: Weak<Shared>,
    /// Set at the first wait: the source's id in the poll set, and its readiness.
    registered: Option<(u64, Arc<Readiness>)>,
    /// The waiting task's registration on the readiness.
    key: Option<u64>,
    nonblocking: bool,
}

impl IoSource {
    pub(crate) fn new(fd: OwnedFd, interest: Interest, executor: Weak<Shared>) -> IoSource {
        IoSource {
            fd,
            interest,
            executor,
            registered: None,
            key: None,
            nonblocking: false,
        }
    }

    /// Runs `op` on the descriptor until it does not say `EAGAIN`; after an `EAGAIN`, waits
    /// for the loop to see the descriptor turn ready. `op`'s other errors are returned.
    pub(crate) fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(BorrowedFd<'_>) -> Result<R, Errno>,
    ) -> Poll<io::Result<R>> {
        if !self.nonblocking {
            // Ours alone: the child's end is another open file, and does not change.
            if let Err(e) = rustix::io::ioctl_fionbio(&self.fd, true) {
                return Poll::Ready(Err(e.into()));
            }
            self.nonblocking = true;
        }
        loop {
            // Read before the try: an edge between the try and the wait then shows.
            let seen = self.registered.as_ref().map(|(_, r)| r.edges());
            match op(self.fd.as_fd()) {
                Ok(r) => return Poll::Ready(Ok(r)),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            let (Some(seen), Some((_, readiness))) = (seen, &self.registered) else {
                // Registering reports the descriptor's present state as an edge; try again.
                if let Err(e) = self.register() {
                    return Poll::Ready(Err(e));
                }
                continue;
            };
            match readiness.poll_edge(seen, cx, &mut self.key) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn register(&mut self) -> io::Result<()> {
        let shared = self.executor.upgrade().ok_or_else(executor_gone)?;
        let registered = shared.poller().add_io(&self.fd, self.interest)?;
        self.registered = Some(registered);
        Ok(())
    }

    /// Forgets the waiting task (its future was dropped): the source keeps no waker of it.
    pub(crate) fn forget_waker(&mut self) {
        if let Some((_, readiness)) = &self.registered {
            readiness.forget(self.key.take());
        }
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        self.forget_waker();
        if let Some((id, _)) = self.registered.take()
            && let Some(shared) = self.executor.upgrade()
        {
            // Without an executor the poll set is closed already.
            shared.poller().remove_io(&self.fd, id);
        }
    }
}

impl AsFd for IoSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Held by a future on a source: forgets the task's waker when the future is dropped, done or
/// not, so the source keeps no waker of a task that no longer waits.
struct ForgetOnDrop<'a>(&'a mut IoSource);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget_waker();
    }
}

/// One `read(2)` into `buf`.
fn poll_read(io: &mut IoSource, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    io.poll_io(cx, |fd| rustix::io::read(fd, &mut *buf))
}

/// `read(2)`s appended to `buf` until end of file; at most [`READS_PER_POLL`] per poll.
fn poll_read_to_end(
    io: &mut IoSource,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
    total: &mut usize,
) -> Poll<io::Result<usize>> {
    for _ in 0..READS_PER_POLL {
        let start = buf.len();
        buf.resize(start + READ_CHUNK, 0);
        let got = poll_read(io, cx, &mut buf[start..]);
        // Only what was read stays: a dropped or pending read leaves `buf` as it was.
        let n = match &got {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        match got {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(*total)),
            Poll::Ready(Ok(n)) => *total += n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

macro_rules! async_pipe_reader {
    ($name:ident, $what:literal, $take:ident) => {
        #[doc = concat!("The read end of a child's ", $what, " pipe for async code, from [`ExecHandle::", stringify!($take), "`].")]
        ///
        /// Woken by the executor's loop, with no runtime dependency (see the crate docs,
        /// [Async](crate#async)); with the `tokio` feature it is also a
        /// `tokio::io::AsyncRead`, with `futures-io` a `futures_io::AsyncRead`. Reads are
        /// cancel-safe: a read future dropped before it
        /// completed took no bytes. Dropping it closes the pipe.
        pub struct $name(IoSource);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0.fd).finish()
            }
        }

        impl $name {
            /// Reads what the pipe holds into `buf`, waiting (without blocking the thread) while
            /// it is empty; `Ok(0)` at end of file (every writer closed it), or for an empty
            /// `buf`. As tokio's `AsyncReadExt::read`; cancel-safe.
            pub fn read<'a>(
                &'a mut self,
                buf: &'a mut [u8],
            ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
                let io = ForgetOnDrop(&mut self.0);
                async move {
                    let io = io;
                    poll_fn(|cx| poll_read(&mut *io.0, cx, &mut *buf)).await
                }
            }

            /// Reads to end of file, appending to `buf`; returns how many bytes it appended.
            /// Dropped before it completes, what it read so far is in `buf`.
            pub fn read_to_end<'a>(
                &'a mut self,
                buf: &'a mut Vec<u8>,
            ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
                let io = ForgetOnDrop(&mut self.0);
                async move {
                    let io = io;
                    let mut total = 0;
                    poll_fn(|cx| poll_read_to_end(&mut *io.0, cx, &mut *buf, &mut total)).await
                }
            }

            /// The poll form of [`read`](Self::read), for hand-written futures and adapters: on
            /// `Pending` the task is woken when the pipe turns readable.
            pub fn poll_read(
                &mut self,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                poll_read(&mut self.0, cx, buf)
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_fd().as_raw_fd()
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncRead for $name {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let this = self.get_mut();
                match poll_read(&mut this.0, cx, buf.initialize_unfilled()) {
                    Poll::Ready(Ok(n)) => {
                        buf.advance(n);
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncRead for $name {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                poll_read(&mut self.get_mut().0, cx, buf)
            }
        }
    };
}

async_pipe_reader!(AsyncChildStdout, "stdout", take_stdout_async);
async_pipe_reader!(AsyncChildStderr, "stderr", take_stderr_async);

/// The write end of a child's stdin pipe for async code, from
/// [`ExecHandle::take_stdin_async`]. Drop it to give the child end of file.
///
/// Woken by the executor's loop, with no runtime dependency; with the `tokio` feature it is also
/// a `tokio::io::AsyncWrite`, with `futures-io` a `futures_io::AsyncWrite`. [`write`](Self::write) is cancel-safe (a dropped write wrote
/// nothing); [`write_all`](Self::write_all) is not (some of the bytes may be written). Writing
/// after the child closed its end fails with `BrokenPipe`.
pub struct AsyncChildStdin(IoSource);

impl std::fmt::Debug for AsyncChildStdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AsyncChildStdin").field(&self.0.fd).finish()
    }
}

fn poll_write(io: &mut IoSource, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    io.poll_io(cx, |fd| rustix::io::write(fd, buf))
}

impl AsyncChildStdin {
    /// Writes what fits in the pipe from `buf`, waiting (without blocking the thread) while it
    /// is full; returns how many bytes it wrote. As tokio's `AsyncWriteExt::write`; cancel-safe.
    pub fn write<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        let io = ForgetOnDrop(&mut self.0);
        async move {
            let io = io;
            poll_fn(|cx| poll_write(&mut *io.0, cx, buf)).await
        }
    }

    /// Writes all of `buf`. Not cancel-safe: dropped before it completes, part of `buf` may have
    /// been written.
    pub fn write_all<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        let io = ForgetOnDrop(&mut self.0);
        async move {
            let io = io;
            let mut rest = buf;
            while !rest.is_empty() {
                let n = poll_fn(|cx| poll_write(&mut *io.0, cx, rest)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                rest = &rest[n..];
            }
            Ok(())
        }
    }

    /// The poll form of [`write`](Self::write): on `Pending` the task is woken when the pipe has
    /// room again.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_write(&mut self.0, cx, buf)
    }
}

impl AsFd for AsyncChildStdin {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for AsyncChildStdin {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

#[cfg(feature = "tokio")]
impl tokio::io::AsyncWrite for AsyncChildStdin {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&mut self.get_mut().0, cx, buf)
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A pipe has no buffer of ours to flush.
        Poll::Ready(Ok(()))
    }

    /// Nothing to do: the child sees end of file once this is dropped (as tokio's own
    /// `ChildStdin`).
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "futures-io")]
impl futures_io::AsyncWrite for AsyncChildStdin {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&mut self.get_mut().0, cx, buf)
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Nothing to do: the child sees end of file once this is dropped.
    fn poll_close(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl ExecHandle {
    /// The read end of the child's stdout pipe for async code ([`AsyncChildStdout`]): `Some`
    /// once, and only for a piped stdout, like [`take_stdout`](Self::take_stdout) (the two share
    /// the one read end).
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// let child = ex.create_process(&["sh", "-c", "echo hello"], false)?;
    /// let mut out = child.take_stdout_async().expect("piped");
    /// let mut got = Vec::new();
    /// pollster::block_on(out.read_to_end(&mut got))?; // or `.await` in any runtime
    /// assert_eq!(got, b"hello\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_stdout_async(&self) -> Option<AsyncChildStdout> {
        let fd = OwnedFd::from(self.take_stdout()?);
        Some(AsyncChildStdout(self.io_source(fd, Interest::Read)))
    }

    /// As [`take_stdout_async`](Self::take_stdout_async), for stderr.
    pub fn take_stderr_async(&self) -> Option<AsyncChildStderr> {
        let fd = OwnedFd::from(self.take_stderr()?);
        Some(AsyncChildStderr(self.io_source(fd, Interest::Read)))
    }

    /// The write end of the child's stdin pipe for async code ([`AsyncChildStdin`]): `Some`
    /// once, and only for [`Stdio::piped`](crate::Stdio::piped) stdin.
    pub fn take_stdin_async(&self) -> Option<AsyncChildStdin> {
        let fd = OwnedFd::from(self.take_stdin()?);
        Some(AsyncChildStdin(self.io_source(fd, Interest::Write)))
    }
}

/// A timer for async code, woken by the executor's loop: a timerfd in its poll set.
pub(crate) struct AsyncTimer {
    io: IoSource,
    /// What the timerfd is armed to (`None`: disarmed, or fired).
    armed: Option<Instant>,
}

impl AsyncTimer {
    pub(crate) fn new(executor: Weak<Shared>) -> io::Result<AsyncTimer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        let fd = crate::sys::above_stdio(fd)?;
        Ok(AsyncTimer {
            io: IoSource::new(fd, Interest::Read, executor),
            armed: None,
        })
    }

    /// Ready once `at` has passed; else arms the timer to it and waits.
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<io::Result<()>> {
        if Instant::now() >= at {
            return Poll::Ready(Ok(()));
        }
        if self.armed != Some(at) {
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: monotonic_timespec(at),
            };
            timerfd_settime(&self.io.fd, TimerfdTimerFlags::ABSTIME, &spec)?;
            self.armed = Some(at);
        }
        let mut expirations = [0u8; 8];
        match self
            .io
            .poll_io(cx, |fd| rustix::io::read(fd, &mut expirations))
        {
            Poll::Ready(Ok(_)) => {
                // Fired: disarmed until armed again (a clock reading a hair behind the
                // timer's re-arms it, and it fires at once).
                self.armed = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl ExecHandle {
    /// An [`IoSource`] woken by this handle's executor.
    pub(crate) fn io_source(&self, fd: OwnedFd, interest: Interest) -> IoSource {
        IoSource::new(fd, interest, self.executor_weak())
    }
}
