//! [`ExecHandle`]: a caller's view of one child, and its pipes' read ends.
//!
//! A blocking [`ExecHandle::wait`] may reap the child itself (`waiter_reap`); otherwise the
//! executor thread reaps it, and whoever reaps stores the status in the shared [`ProcState`]. The handle keeps the pidfd alive (shared with
//! the table), so a signal sent after the reap reaches no one and says `ESRCH`, even if the PID
//! was recycled.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::error::{SpawnError, SpawnStage};
use crate::exit_future::{ExitFd, ExitFuture};
use crate::proc_state::{ProcState, Spawned};
use crate::queue::{Message, ReplySlot};
use crate::shared::Shared;
use crate::stdio::Stdio;
use crate::timeline::Timeline;

/// A running (or finished) child process.
///
/// Cheap to share between threads (`Send + Sync`): waiting, polling and killing work from any number
/// of threads at once. Dropping the handle does not kill the process (unless the command asked
/// for [`kill_on_drop`](crate::Command::kill_on_drop)); the executor still reaps it.
///
/// ```
/// # let ex = std::sync::Arc::new(napix_executor::Executor::new()?);
/// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
/// let child = ex.create_process(&["sh", "-c", "exit 3"], true)?;
/// assert_eq!(child.wait().code(), Some(3));
/// assert_eq!(child.return_code().and_then(|s| s.code()), Some(3));
/// # ex.stop(); runner.join().expect("run thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ExecHandle {
    state: Arc<ProcState>,
    executor: Weak<Shared>,
    stdin: Mutex<Option<ChildStdin>>,
    stdout: Mutex<Option<ChildStdout>>,
    stderr: Mutex<Option<ChildStderr>>,
    /// Without a pidfd: the eventfd `AsFd` gives, written when the child is reaped.
    exit_fd: Option<ExitFd>,
}

impl std::fmt::Debug for ExecHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecHandle")
            .field("pid", &self.state.pid)
            .field("status", &self.state.status())
            .finish()
    }
}

impl ExecHandle {
    /// Wraps the parts the executor thread answered a spawn with.
    ///
    /// A child without a pidfd comes with the eventfd that `AsFd` gives; should it not (a path
    /// that could not make one), one is made here, and if that fails the child is killed and the
    /// spawn fails: every handle has a readiness descriptor.
    pub(crate) fn new(spawned: Spawned, executor: Weak<Shared>) -> Result<ExecHandle, SpawnError> {
        let exit_fd = match (&spawned.state.pidfd, spawned.exit_fd) {
            (Some(_), _) => None,
            (None, Some(fd)) => Some(ExitFd::attach(fd, &spawned.state)),
            (None, None) => match ExitFd::create() {
                Ok(fd) => Some(ExitFd::attach(fd, &spawned.state)),
                Err(e) => {
                    if let Some(shared) = executor.upgrade() {
                        let _ = shared.queue().push(Message::Kill(spawned.state.clone()));
                    }
                    return Err(SpawnError::ResourceExhausted {
                        program: std::ffi::OsString::new(),
                        stage: SpawnStage::ExitFd,
                        errno: e.raw_os_error().unwrap_or(libc::EMFILE),
                    });
                }
            },
        };
        if let Some(t) = &spawned.state.timeline {
            t.replied(std::time::Instant::now());
        }
        Ok(ExecHandle {
            state: spawned.state,
            executor,
            stdin: Mutex::new(spawned.stdin.map(|fd| ChildStdin(File::from(fd)))),
            stdout: Mutex::new(spawned.stdout.map(|fd| ChildStdout(File::from(fd)))),
            stderr: Mutex::new(spawned.stderr.map(|fd| ChildStderr(File::from(fd)))),
            exit_fd,
        })
    }

    /// The executor that tracks this child (for async I/O woken by its loop).
    pub(crate) fn executor_weak(&self) -> Weak<Shared> {
        self.executor.clone()
    }

    /// The process id. Stays the same after the process exits (the number may then be reused by
    /// the system for another process; signal through the handle, never through the number).
    /// std's name is [`id`](Self::id).
    pub fn pid(&self) -> u32 {
        self.state.pid
    }

    /// Where this child's time went so far: the instants of its request's way through the
    /// executor and the hops between them ([`Timeline`]). `None` unless the executor was built
    /// with [`ExecutorBuilder::timeline(true)`](crate::ExecutorBuilder::timeline).
    ///
    /// ```
    /// # let ex = napix_executor::Executor::builder().timeline(true).start()?;
    /// let child = ex.create_process(&["true"], true)?;
    /// let before = child.timeline().expect("recorded");
    /// assert!(before.spawned.is_some() && before.wait_returned.is_none());
    /// child.wait();
    /// let after = child.timeline().expect("recorded");
    /// println!("queue wait {:?}, spawn {:?}", after.hand_off_in(), after.clone_exec());
    /// assert!(after.hand_off_out().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeline(&self) -> Option<Timeline> {
        self.state.timeline.as_ref().map(|t| t.snapshot())
    }

    /// The exit status once the executor has reaped the process, `None` while it runs.
    /// Never blocks and makes no syscall. The seed's name, as [`poll`](Self::poll); std's is
    /// [`try_wait`](Self::try_wait).
    pub fn return_code(&self) -> Option<ExitStatus> {
        self.state.status()
    }

    /// Same as [`return_code`](Self::return_code) (the name of `subprocess.Popen.poll`): the
    /// executor thread reaps, so polling needs no syscall.
    pub fn poll(&self) -> Option<ExitStatus> {
        self.state.status()
    }

    /// Blocks until the process has exited and been reaped, and returns its status.
    ///
    /// The executor's [`run`](crate::Executor::run) loop must be running in another thread (or the
    /// executor must be stopped or dropped, which reaps every child).
    ///
    /// In pidfd mode, for a child without a deadline whose kill reaches only itself, the calling
    /// thread reaps the child itself (one blocking `waitid`, as a raw caller would): the
    /// executor thread is not woken for it ("Who reaps" in the crate docs).
    ///
    /// Unlike std's `Child::wait`, it does not close a piped stdin first (the handle is shared,
    /// and other threads may still write): a child that reads its stdin to the end waits until
    /// the write end is closed, so take it with [`take_stdin`](Self::take_stdin) and drop it.
    /// [`wait_with_output`](Self::wait_with_output) closes an untaken one, as std does.
    pub fn wait(&self) -> ExitStatus {
        if let Some(status) = crate::waiter_reap::wait_and_reap(&self.executor, &self.state) {
            self.state.note_wait_returned();
            return status;
        }
        self.state.wait()
    }

    /// A future of the exit status, for async code: woken by the executor thread when it reaps
    /// the process (no thread per child, no polling, no runtime dependency). `Send` and
    /// `'static`, so it can be spawned as a task.
    ///
    /// Cancel-safe: dropping the future (a `select!`, a timeout) leaves the process running and
    /// still reaped; await the handle again, or [`kill`](Self::kill) it.
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// let child = ex.create_process(&["sh", "-c", "exit 3"], true)?;
    /// let status = pollster::block_on(child.wait_async()); // or `.await` in any runtime
    /// assert_eq!(status.code(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_async(&self) -> ExitFuture {
        ExitFuture::new(self.state.clone())
    }

    /// The pidfd, for readiness only: it turns readable when the process exits. `None` when the
    /// executor watches children by SIGCHLD ([`ChildWatch::Signal`](crate::ChildWatch::Signal));
    /// [`AsFd`] then gives an eventfd instead.
    ///
    /// The executor alone reaps: never `waitid` on this descriptor (that would steal the status
    /// from every waiter); take the status from [`wait_async`](Self::wait_async) or
    /// [`return_code`](Self::return_code). The descriptor lives as long as the handle.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.state.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// Like [`wait`](Self::wait), giving up after `timeout` with `None`. A timeout too large to
    /// represent as an instant (`Duration::MAX`) waits as `wait` does.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        self.state.wait_timeout(timeout)
    }

    /// Kills with escalation: SIGTERM (and SIGCONT, so a stopped process acts on it) now, SIGKILL
    /// when the executor's kill grace (default 3 s) runs out; returns the final status once reaped.
    /// Returns at once if the process already exited. Any number of threads may call it at once.
    ///
    /// The signals reach the command's kill scope ([`KillScope`](crate::KillScope)): the process
    /// alone by default, its process group, or its cgroup. The grace is the command's own when it
    /// set one.
    ///
    /// In a child forked (without exec) from the executor's process the handle is the parent's:
    /// `kill` signals nothing there, logs the [`SpawnError::ForkedChild`] error, and returns
    /// what [`wait`](Self::wait) would, which there never comes unless the parent's status was
    /// known at the fork. [`start_kill`](Self::start_kill) and
    /// [`send_signal`](Self::send_signal) return the error instead.
    pub fn kill(&self) -> ExitStatus {
        if let Some(status) = self.state.status() {
            return status;
        }
        if let Err(e) = self.state.check_owner() {
            tracing::error!(pid = self.state.pid, "kill: {e}");
            return self.state.wait();
        }
        if let Some(shared) = self.executor.upgrade() {
            // Refused after stop(): the executor escalates every child then anyway.
            let _ = shared.queue().push(Message::Kill(self.state.clone()));
        }
        // Without an executor every child was reaped when it dropped, so the status is set.
        self.wait()
    }

    /// Begins the kill escalation (as [`kill`](Self::kill): SIGTERM and SIGCONT now, SIGKILL
    /// after the grace) and returns at once; [`wait`](Self::wait) or [`poll`](Self::poll) tell
    /// when it is over. A second call, or a call during an escalation already under way
    /// ([`Executor::stop`](crate::Executor::stop), a deadline), changes nothing.
    ///
    /// `Ok` for a process that already exited (it needs no kill, like
    /// [`std::process::Child::kill`]), and after `stop()` (the executor is killing every child
    /// anyway).
    ///
    /// # Errors
    /// [`SpawnError::ForkedChild`] (as an [`io::Error`] of kind `Other`, the `SpawnError` its
    /// source) in a child forked without exec from the executor's process: the handle is the
    /// parent's, and nothing is sent.
    ///
    /// ```
    /// # let ex = std::sync::Arc::new(napix_executor::Executor::builder()
    /// #     .kill_grace(std::time::Duration::from_millis(100)).build()?);
    /// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
    /// use std::os::unix::process::ExitStatusExt;
    /// let child = ex.create_process(&["sleep", "30"], true)?;
    /// child.start_kill()?; // returns at once
    /// assert_eq!(child.wait().signal(), Some(libc::SIGTERM));
    /// # ex.stop(); runner.join().expect("run thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_kill(&self) -> io::Result<()> {
        self.state.check_owner()?;
        if self.state.status().is_some() {
            return Ok(());
        }
        if let Some(shared) = self.executor.upgrade() {
            // Refused after stop(): the executor escalates every child then anyway.
            let _ = shared.queue().push(Message::Kill(self.state.clone()));
        }
        Ok(())
    }

    /// True when the command's deadline (its timeout) passed while it ran and started the kill escalation. Stays false for a kill asked for by
    /// [`kill`](Self::kill), [`start_kill`](Self::start_kill) or `stop()`.
    pub fn timed_out(&self) -> bool {
        self.state.timed_out()
    }

    /// What the process used (CPU time, peak memory, faults, context switches), once the
    /// executor has reaped it; `None` while it runs, and when the status was lost
    /// ([`status_lost`](Self::status_lost)). See [`ResourceUsage`](crate::ResourceUsage).
    pub fn rusage(&self) -> Option<crate::ResourceUsage> {
        self.state.rusage()
    }

    /// Sends SIGTERM alone (no escalation).
    ///
    /// Errors as [`send_signal`](Self::send_signal): `ESRCH` once the process has been reaped.
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends `signal` (any number the kernel accepts; 0 probes) through the process's pidfd, or
    /// to its whole kill scope ([`KillScope`](crate::KillScope)): its process group while it is
    /// unreaped, or every process of its cgroup.
    ///
    /// Errors, checked in this order:
    /// - `EINVAL` for a number that is not a signal (outside `0..=SIGRTMAX`), always: whatever
    ///   the process's state, before and after [`Executor::stop`];
    /// - [`SpawnError::ForkedChild`] (as an [`io::Error`] of kind `Other`) in a child forked
    ///   without exec from the executor's process: the handle is the parent's, and nothing is
    ///   sent;
    /// - `ESRCH` once the process has been reaped (a recycled pid is never hit), and without
    ///   pidfds ([`ChildWatch::Signal`]) also once it has exited and waits to be reaped.
    ///
    /// After [`Executor::stop`] a signal still reaches a process that has not been reaped, in
    /// both child-watch modes (`Ok` or `ESRCH`): a SIGKILL ends a child at once instead of at
    /// the end of the kill grace. Without pidfds the signal goes through the executor thread
    /// before `stop()`, and is sent on the calling thread after it (the pid is checked to be
    /// still our unreaped child, with its start time, while the reaper is held off).
    ///
    /// [`ChildWatch::Signal`]: crate::ChildWatch::Signal
    /// [`Executor::stop`]: crate::Executor::stop
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        // First, so the answer to a bad number does not depend on the child's state or the mode.
        if !(0..=libc::SIGRTMAX()).contains(&signal) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.state.check_owner()?;
        if self.state.status().is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        if self.state.pidfd.is_some() {
            return self.state.signal(signal);
        }
        // No pidfd: a pid is only safe to signal until it is reaped, and only the executor thread
        // knows that; ask it.
        let Some(shared) = self.executor.upgrade() else {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        };
        let reply = ReplySlot::for_current_thread();
        let message = Message::Signal {
            state: self.state.clone(),
            signal,
            reply: reply.clone(),
        };
        if let Err(refused) = shared.queue().push(message) {
            // Stopped: sent at once on this thread (ESRCH once reaped).
            // (A signal message is never an adopted child: nothing comes back.)
            let _ = refused.refuse();
        }
        reply.wait(shared.spin())
    }

    /// True when the status could not be collected because the kernel reaped the child itself
    /// (the host set SIGCHLD to SIG_IGN or SA_NOCLDWAIT). The status is then reported as exit
    /// code 255.
    pub fn status_lost(&self) -> bool {
        self.state.status_lost()
    }

    /// The write end of the child's stdin pipe; `Some` once, and only for
    /// [`Stdio::piped`](crate::Stdio::piped) stdin. Drop it to give the child end of file.
    pub fn take_stdin(&self) -> Option<ChildStdin> {
        self.stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The read end of the child's stdout pipe; `Some` once, and only for a piped stdout
    /// (`create_process` without `discard_output`, or [`Stdio::piped`](crate::Stdio::piped)).
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The read end of the child's stderr pipe; `Some` once, and only for a piped stderr.
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A descriptor that turns readable when the process has exited, for an event loop (tokio's
/// `AsyncFd`, mio, `poll(2)`): readiness only.
///
/// - [`ChildWatch::Pidfd`](crate::ChildWatch::Pidfd): the process's pidfd, readable once it has
///   exited (the executor may not have stored the status yet: await
///   [`wait_async`](ExecHandle::wait_async), which then completes at once or within the reap).
/// - [`ChildWatch::Signal`](crate::ChildWatch::Signal): an eventfd the executor writes once it has
///   reaped the process, readable from then on (the status is there).
///
/// The executor alone reaps: never `waitid` or `read` on this descriptor; take the status from the
/// handle. It is closed when the handle drops.
impl AsFd for ExecHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match (&self.state.pidfd, &self.exit_fd) {
            (Some(fd), _) => fd.as_fd(),
            (None, Some(fd)) => fd.as_fd(),
            // `new` gives every handle without a pidfd an exit eventfd (or fails), and neither
            // field changes afterwards.
            (None, None) => unreachable!("ExecHandle without pidfd or exit eventfd"),
        }
    }
}

/// Starts the kill escalation of a child still running when it was spawned with
/// [`Command::kill_on_drop`](crate::Command::kill_on_drop); otherwise the child runs on. Either
/// way the executor reaps it.
impl Drop for ExecHandle {
    fn drop(&mut self) {
        // In a forked child the process is the parent's to kill, not this copy's.
        if self.state.lifetime.kill_on_drop
            && self.state.status().is_none()
            && self.state.check_owner().is_ok()
        {
            // Refused after stop(), and no executor left: every child is being (or was) killed.
            if let Some(shared) = self.executor.upgrade() {
                let _ = shared.queue().push(Message::Kill(self.state.clone()));
            }
        }
    }
}

impl AsRawFd for ExecHandle {
    /// The descriptor [`AsFd`] gives (what tokio's `AsyncFd` wants).
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

// Here, not in stdio.rs: the pipe types are the handle's, and stdio.rs sits below it.
impl From<ChildStdout> for Stdio {
    /// Another child's stdout pipe, e.g. to chain two commands.
    fn from(pipe: ChildStdout) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

impl From<ChildStderr> for Stdio {
    /// Another child's stderr pipe.
    fn from(pipe: ChildStderr) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

impl From<ChildStdin> for Stdio {
    /// Another child's stdin pipe (this child writes into it).
    fn from(pipe: ChildStdin) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

macro_rules! pipe_reader {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The read end of a child's ", $what, " pipe.")]
        ///
        /// Blocking by default, like std's; [`set_nonblocking`](Self::set_nonblocking) makes it
        /// fit for an event loop (tokio's `AsyncFd` or `tokio::net::unix::pipe::Receiver`,
        /// through [`AsFd`] or `Into<OwnedFd>`).
        #[derive(Debug)]
        pub struct $name(File);

        impl $name {
            /// Makes reads return `WouldBlock` instead of waiting when the pipe is empty
            /// (`true`), or wait again (`false`). Only this read end changes: the child's end
            /// is another open file.
            pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
                Ok(rustix::io::ioctl_fionbio(&self.0, nonblocking)?)
            }
        }

        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                self.0.into_raw_fd()
            }
        }

        /// Wraps any descriptor, as std's `From<OwnedFd>` for its pipe types.
        impl From<OwnedFd> for $name {
            fn from(fd: OwnedFd) -> $name {
                $name(File::from(fd))
            }
        }

        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                p.0.into()
            }
        }
    };
}

/// The write end of a child's stdin pipe, from [`ExecHandle::take_stdin`]. Writing after the
/// child closed its end fails with `BrokenPipe` (a Rust program ignores SIGPIPE).
#[derive(Debug)]
pub struct ChildStdin(File);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for ChildStdin {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for ChildStdin {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl From<ChildStdin> for OwnedFd {
    fn from(p: ChildStdin) -> OwnedFd {
        p.0.into()
    }
}

impl ChildStdin {
    /// Makes writes to a full pipe return `WouldBlock` instead of waiting (`true`), or wait
    /// again (`false`), for an event loop (tokio's `AsyncFd`, `tokio::net::unix::pipe::Sender`).
    /// Only this write end changes: the child's end is another open file.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        Ok(rustix::io::ioctl_fionbio(&self.0, nonblocking)?)
    }
}

impl IntoRawFd for ChildStdin {
    fn into_raw_fd(self) -> RawFd {
        self.0.into_raw_fd()
    }
}

/// Wraps any descriptor, as std's `From<OwnedFd>` for its pipe types.
impl From<OwnedFd> for ChildStdin {
    fn from(fd: OwnedFd) -> ChildStdin {
        ChildStdin(File::from(fd))
    }
}

pipe_reader!(ChildStdout, "stdout");
pipe_reader!(ChildStderr, "stderr");

/// std's names (`std::process::Child`) for what the seed's names above already do, with std's
/// types, so that code written for std reads the same here.
impl ExecHandle {
    /// The process id: std's name for [`pid`](Self::pid) (`Child::id`). Unlike tokio's `id()`
    /// (an `Option`, `None` once the child was reaped) it always gives the number, which may be
    /// reused once the process was reaped: signal through the handle, never through the number.
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// let child = ex.create_process(&["true"], true)?;
    /// assert_eq!(child.id(), child.pid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.pid()
    }

    /// The exit status if the process has been reaped, `Ok(None)` while it runs: std's
    /// `Child::try_wait`, the same answer as the seed's [`return_code`](Self::return_code) and
    /// [`poll`](Self::poll) in std's type. Never blocks, makes no system call, and never fails
    /// today (the executor thread took the status already); the `io::Result` is std's shape.
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// let child = ex.create_process(&["sleep", "30"], true)?;
    /// assert!(child.try_wait()?.is_none());
    /// child.start_kill()?;
    /// child.wait();
    /// assert!(child.try_wait()?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        Ok(self.state.status())
    }
}
