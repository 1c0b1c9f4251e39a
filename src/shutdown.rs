//! Stopping an executor and awaiting the end of its children from async code:
//! [`Executor::shutdown`] and its future, [`Shutdown`].
//!
//! The future hangs on the tracked children's waker lists, one child at a time, the way
//! [`ExitFuture`](crate::ExitFuture) does: the loop, which alone reaps, wakes it when it stores a
//! status. No thread waits and nothing polls on a timer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use crate::executor::Executor;
use crate::proc_state::ProcState;
use crate::shared::Shared;

/// The future of [`Executor::shutdown`]: resolves once the executor is stopped and every child
/// it tracked has been reaped. `Send`, `'static`, runtime-agnostic.
///
/// Dropping it changes nothing: the executor stays stopped and its loop goes on escalating and
/// reaping.
#[must_use = "futures do nothing unless awaited"]
pub struct Shutdown {
    /// Weak: an executor whose last owner drops while this waits kills and reaps what is
    /// left (the drop rule), which wakes this future through the children's statuses.
    shared: Result<Weak<Shared>, Option<io::Error>>,
    /// Every child seen in the table so far and not yet seen reaped. A child leaves the table
    /// just before its status is stored: keeping it here means this future never resolves
    /// between the two.
    children: Vec<Arc<ProcState>>,
    /// The registration on the first child's waker list.
    key: Option<u64>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("children", &self.children.len())
            .finish()
    }
}

impl Executor {
    /// Stops the executor now, as [`stop`](Self::stop) (requests refused; every child gets
    /// SIGTERM, and SIGKILL once its kill grace ran out), and returns a future that resolves
    /// once every child is reaped: the graceful stop, for async code, where dropping the last
    /// clone (SIGKILL at once) would be too rough and a blocking join would stall the runtime.
    ///
    /// Woken by the executor's loop as it reaps (no thread, no timer, no runtime dependency), so
    /// the loop must run somewhere ([`start`](Self::start), [`run`](Self::run) on a thread): with
    /// no loop the future waits until one runs, or until the last owner drops the executor (which
    /// kills and reaps what is left).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use napix_executor::Executor;
    /// let ex = Executor::builder().kill_grace(Duration::from_millis(200)).start()?;
    /// let child = ex.create_process(&["sh", "-c", "trap '' TERM; sleep 30"], true)?;
    /// # std::thread::sleep(Duration::from_millis(100)); // the trap is set
    /// let t = Instant::now();
    /// pollster::block_on(ex.shutdown())?; // or `.await` in any runtime
    /// assert!(t.elapsed() >= Duration::from_millis(200)); // it ignored SIGTERM: the grace ran
    /// assert!(child.return_code().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SpawnError::Unavailable`](crate::SpawnError::Unavailable) or
    /// [`ForkedChild`](crate::SpawnError::ForkedChild) as an [`io::Error`], when this executor
    /// cannot be stopped from here (nothing is stopped then).
    pub fn shutdown(&self) -> Shutdown {
        let shared = match self.shared() {
            Ok(shared) => shared,
            Err(e) => {
                return Shutdown {
                    shared: Err(Some(e.into())),
                    children: Vec::new(),
                    key: None,
                };
            }
        };
        shared.stop();
        Shutdown {
            shared: Ok(Arc::downgrade(shared)),
            children: shared.table().states(),
            key: None,
        }
    }
}

impl Future for Shutdown {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let weak = match &mut this.shared {
            Ok(weak) => weak.clone(),
            Err(e) => {
                return Poll::Ready(Err(e
                    .take()
                    .unwrap_or_else(|| io::Error::other("Shutdown polled after it completed"))));
            }
        };
        loop {
            while let Some(first) = this.children.first() {
                if first.poll_exit(cx, &mut this.key).is_pending() {
                    return Poll::Pending;
                }
                this.key = None;
                this.children.swap_remove(0);
            }
            // Every child seen so far is reaped. The executor may be gone: it reaped the rest
            // when its last owner dropped.
            let Some(shared) = weak.upgrade() else {
                return Poll::Ready(Ok(()));
            };
            let more = shared.table().states();
            if !more.is_empty() {
                this.children = more;
                continue;
            }
            if shared.queue().callers_settled() {
                return Poll::Ready(Ok(()));
            }
            // A calling thread is between its check and the table (a clone takes microseconds):
            // its child is the loop's to kill, and no waker would say when it is in. Yield.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(first) = self.children.first() {
            first.forget_waker(self.key.take());
        }
    }
}
