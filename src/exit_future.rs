//! Awaiting a child's exit without a thread: [`ExitFuture`] (what
//! [`ExecHandle::wait_async`](crate::ExecHandle::wait_async) returns) and [`ExitFd`], the
//! descriptor that turns readable when a child without a pidfd has been reaped.
//!
//! Both hang on the child's waker list ([`ProcState::poll_exit`]): the executor thread, which alone
//! reaps, wakes every registered task when it stores the status. Nothing polls on a timer and no
//! thread waits per child, so any async runtime (or none) can drive them.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use rustix::event::{EventfdFlags, eventfd};

use crate::proc_state::ProcState;

/// A future of a child's [`ExitStatus`], from [`ExecHandle::wait_async`](crate::ExecHandle::wait_async).
///
/// Woken by the executor thread when it reaps the child; `Send`, `'static` and runtime-agnostic.
/// Dropping it before it completes is harmless: the child still runs and is still reaped, and
/// the handle can be awaited again.
#[must_use = "futures do nothing unless awaited"]
pub struct ExitFuture {
    state: Arc<ProcState>,
    key: Option<u64>,
}

impl std::fmt::Debug for ExitFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitFuture")
            .field("pid", &self.state.pid)
            .finish()
    }
}

impl ExitFuture {
    pub(crate) fn new(state: Arc<ProcState>) -> ExitFuture {
        ExitFuture { state, key: None }
    }
}

impl Future for ExitFuture {
    type Output = ExitStatus;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ExitStatus> {
        let this = self.get_mut();
        this.state.poll_exit(cx, &mut this.key)
    }
}

impl Drop for ExitFuture {
    fn drop(&mut self) {
        self.state.forget_waker(self.key.take());
    }
}

/// An eventfd written once when the executor has reaped one child: what
/// [`ExecHandle`](crate::ExecHandle)'s `AsFd` gives when the executor watches children by SIGCHLD
/// and so holds no pidfd. Readable means the status is there.
pub(crate) struct ExitFd {
    fd: Arc<EventFd>,
    /// The registration on the child's waker list, and the child, to withdraw it on drop.
    key: Option<u64>,
    state: Option<Arc<ProcState>>,
}

struct EventFd(OwnedFd);

impl Wake for EventFd {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // A full counter (never, for one write) would only mean it is readable already.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }
}

impl ExitFd {
    /// Creates the descriptor for a child about to be spawned without a pidfd (before the spawn,
    /// so a failure costs no child).
    pub(crate) fn create() -> io::Result<OwnedFd> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        crate::sys::above_stdio(fd)
    }

    /// Ties `fd` (from [`create`](Self::create)) to `state`: written at once if the child is
    /// reaped already, else when the executor reaps it.
    pub(crate) fn attach(fd: OwnedFd, state: &Arc<ProcState>) -> ExitFd {
        let fd = Arc::new(EventFd(fd));
        let waker = Waker::from(fd.clone());
        let mut key = None;
        let mut cx = Context::from_waker(&waker);
        let state = if state.poll_exit(&mut cx, &mut key).is_ready() {
            waker.wake();
            None
        } else {
            Some(state.clone())
        };
        ExitFd { fd, key, state }
    }
}

impl AsFd for ExitFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.0.as_fd()
    }
}

impl Drop for ExitFd {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.forget_waker(self.key.take());
        }
    }
}
