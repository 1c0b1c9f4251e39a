//! [`ExecHandle`]: a caller's view of one child, and the state it shares with the executor thread.
//!
//! The executor thread is the only reaper: it stores the status here and wakes the waiters. The
//! handle never waits on the process itself. It keeps the pidfd alive (shared with the table), so a
//! signal sent after the reap reaches no one and says `ESRCH`, even if the PID was recycled.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::executor::Shared;
use crate::queue::{Message, ReplySlot};
use crate::spin::SpinPolicy;

/// What the executor thread and every handle of one child share.
pub(crate) struct ProcState {
    /// Unique per spawn (never reused, unlike a pid): the table and the kill heap key.
    pub(crate) serial: u64,
    pub(crate) pid: u32,
    pub(crate) os_pid: rustix::process::Pid,
    /// Every signal goes through it; stays open until the last owner drops. `None` when the
    /// executor watches children by SIGCHLD: signals then go through the executor thread, which
    /// alone reaps and so knows whether the pid is still ours.
    pub(crate) pidfd: Option<OwnedFd>,
    status: Mutex<Option<ExitStatus>>,
    exited: Condvar,
    /// Set (after `status`) once the status is stored: lets waiters spin without the lock.
    done: AtomicBool,
    /// How `wait` polls `done` before sleeping on the condition variable.
    spin: Arc<SpinPolicy>,
    /// True when the kernel reaped the child itself (the host set SIGCHLD to SIG_IGN) and the real
    /// status is unknown.
    status_lost: AtomicBool,
}

/// The raw wait status reported when the real one is lost: exit code 255.
pub(crate) const LOST_STATUS: i32 = 255 << 8;

impl ProcState {
    pub(crate) fn new(
        serial: u64,
        pid: rustix::process::Pid,
        pidfd: Option<OwnedFd>,
        spin: Arc<SpinPolicy>,
    ) -> ProcState {
        ProcState {
            serial,
            pid: pid.as_raw_nonzero().get() as u32,
            os_pid: pid,
            pidfd,
            status: Mutex::new(None),
            exited: Condvar::new(),
            done: AtomicBool::new(false),
            spin,
            status_lost: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<ExitStatus>> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the final status and wakes every waiter. Called by the reaper only.
    pub(crate) fn set_status(&self, status: ExitStatus, lost: bool) {
        self.status_lost.store(lost, Ordering::Release);
        let mut s = self.lock();
        if s.is_none() {
            *s = Some(status);
        }
        self.done.store(true, Ordering::Release);
        drop(s);
        self.exited.notify_all();
    }

    pub(crate) fn status(&self) -> Option<ExitStatus> {
        *self.lock()
    }

    /// Sends `signal` to the child. Through the pidfd when there is one (any thread may call it);
    /// without one only the executor thread may call it, while the child is in its table.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => crate::sys::pidfd_send_signal(fd.as_fd(), signal),
            None => crate::sys::kill_unreaped(self.os_pid, signal),
        }
    }

    fn wait(&self) -> ExitStatus {
        self.spin
            .poll(Duration::MAX, || self.done.load(Ordering::Acquire));
        let mut s = self.lock();
        loop {
            if let Some(status) = *s {
                return status;
            }
            s = self.exited.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        self.spin
            .poll(timeout, || self.done.load(Ordering::Acquire));
        let deadline = Instant::now().checked_add(timeout);
        let mut s = self.lock();
        loop {
            if let Some(status) = *s {
                return Some(status);
            }
            let left = match deadline {
                Some(d) => d.checked_duration_since(Instant::now())?,
                // A timeout too large to represent: wait without one.
                None => Duration::from_secs(u64::MAX / 4),
            };
            if left.is_zero() {
                return None;
            }
            s = self
                .exited
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A running (or finished) child process.
///
/// Cheap to share between threads (`Send + Sync`): waiting, polling and killing work from any number
/// of threads at once. Dropping the handle does not kill the process; the executor still reaps it.
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
    stdout: Mutex<Option<ChildStdout>>,
    stderr: Mutex<Option<ChildStderr>>,
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
    pub(crate) fn new(
        state: Arc<ProcState>,
        executor: Weak<Shared>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> ExecHandle {
        ExecHandle {
            state,
            executor,
            stdout: Mutex::new(stdout.map(|fd| ChildStdout(File::from(fd)))),
            stderr: Mutex::new(stderr.map(|fd| ChildStderr(File::from(fd)))),
        }
    }

    /// The process id. Stays the same after the process exits (the number may then be reused by
    /// the system for another process; signal through the handle, never through the number).
    pub fn pid(&self) -> u32 {
        self.state.pid
    }

    /// The exit status once the executor has reaped the process, `None` while it runs.
    /// Never blocks and makes no syscall.
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
    pub fn wait(&self) -> ExitStatus {
        self.state.wait()
    }

    /// Like [`wait`](Self::wait), giving up after `timeout` with `None`.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        self.state.wait_timeout(timeout)
    }

    /// Kills with escalation: SIGTERM (and SIGCONT, so a stopped process acts on it) now, SIGKILL
    /// when the executor's kill grace (default 3 s) runs out; returns the final status once reaped.
    /// Returns at once if the process already exited. Any number of threads may call it at once.
    pub fn kill(&self) -> ExitStatus {
        if let Some(status) = self.state.status() {
            return status;
        }
        if let Some(shared) = self.executor.upgrade() {
            shared.queue.push(Message::Kill(self.state.clone()));
        }
        // Without an executor every child was reaped when it dropped, so the status is set.
        self.state.wait()
    }

    /// Sends SIGTERM alone (no escalation).
    ///
    /// Errors as [`send_signal`](Self::send_signal): `ESRCH` once the process has been reaped,
    /// `Stopped` after [`Executor::stop`](crate::Executor::stop) without pidfds.
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends `signal` (any number the kernel accepts; 0 probes) through the process's pidfd.
    ///
    /// Errors, checked in this order:
    /// - `EINVAL` for a number that is not a signal (outside `0..=SIGRTMAX`), always: whatever
    ///   the process's state, before and after [`Executor::stop`];
    /// - `ESRCH` once the process has been reaped (a recycled pid is never hit);
    /// - without pidfds ([`ChildWatch::Signal`]) the signal goes through the executor thread;
    ///   once [`Executor::stop`] was called, a signal the thread has not served yet is refused
    ///   with an error that wraps [`SpawnError::Stopped`] while the process is not yet reaped
    ///   (the executor is killing every child by then), `ESRCH` after; one it served is `Ok`.
    ///   With pidfds a signal is still delivered after `stop()` (`Ok` or `ESRCH`).
    ///
    /// [`ChildWatch::Signal`]: crate::ChildWatch::Signal
    /// [`Executor::stop`]: crate::Executor::stop
    /// [`SpawnError::Stopped`]: crate::SpawnError::Stopped
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        // First, so the answer to a bad number does not depend on the child's state or the mode.
        if !(0..=libc::SIGRTMAX()).contains(&signal) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
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
        shared.queue.push(Message::Signal {
            state: self.state.clone(),
            signal,
            reply: reply.clone(),
        });
        if shared.stopped.load(Ordering::SeqCst) {
            // The loop may have finished; whoever drains answers ESRCH (every child is reaped).
            shared.refuse_pending();
        }
        reply.wait(&shared.spin)
    }

    /// True when the status could not be collected because the kernel reaped the child itself
    /// (the host set SIGCHLD to SIG_IGN or SA_NOCLDWAIT). The status is then reported as exit
    /// code 255.
    pub fn status_lost(&self) -> bool {
        self.state.status().is_some() && self.state.status_lost.load(Ordering::Acquire)
    }

    /// The read end of the child's stdout pipe; `Some` once, and only without `discard_output`.
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The read end of the child's stderr pipe; `Some` once, and only without `discard_output`.
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Converts a `waitid` result into a std [`ExitStatus`] (the raw wait-status encoding).
pub(crate) fn exit_status_from(status: &rustix::process::WaitIdStatus) -> ExitStatus {
    if let Some(code) = status.exit_status() {
        ExitStatus::from_raw((code & 0xff) << 8)
    } else if let Some(sig) = status.terminating_signal() {
        let core = if status.dumped() { 0x80 } else { 0 };
        ExitStatus::from_raw((sig & 0x7f) | core)
    } else {
        ExitStatus::from_raw(LOST_STATUS)
    }
}

macro_rules! pipe_reader {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The read end of a child's ", $what, " pipe.")]
        #[derive(Debug)]
        pub struct $name(File);

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

pipe_reader!(ChildStdout, "stdout");
pipe_reader!(ChildStderr, "stderr");
