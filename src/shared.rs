//! The state one executor's threads share ([`Shared`]): its settings ([`Config`], [`ChildWatch`]),
//! the request queue, the poller, the process table, and what happens to the children left when
//! the last owner goes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::SpawnError;
use crate::not_served::NotServedNotice;
use crate::poller::{Poller, Waker};
use crate::queue::RequestQueue;
use crate::reap::{StartTime, SysWait};
use crate::spin::SpinPolicy;
use crate::sys::spawn::{SlotPool, SpawnBackend};
use crate::table::Table;

/// How the executor learns that a child exited.
///
/// | mode | kernel | how |
/// |---|---|---|
/// | `Pidfd` | Linux 5.4+ | one pidfd per child in the epoll set; signals through the pidfd |
/// | `Signal` | any | SIGCHLD (signalfd or a signal-hook handler) wakes the loop, which also looks by itself every 100 ms while it tracks children (a SIGCHLD another thread takes only delays an exit); a child is named by pid and start time; signals go through the executor thread |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChildWatch {
    /// Probe once whether pidfds work (`pidfd_open` and `waitid(P_PIDFD)`); use them if so, else
    /// the signal path. The default.
    #[default]
    Auto,
    /// pidfds; [`ExecutorBuilder::build`](crate::ExecutorBuilder::build) fails with `Unsupported`
    /// on a kernel without them.
    Pidfd,
    /// SIGCHLD, for kernels without pidfds (before 5.4, RHEL 8). See [`crate::block_sigchld`].
    Signal,
}

/// Which thread clones the child. The executor's loop never does: it only watches (the trace,
/// reaps, kill escalation, deadlines, `stop()`), so a child stuck before its exec holds up only
/// the thread that spawns it.
///
/// | site | who clones | the caller waits for | fits |
/// |---|---|---|---|
/// | `CallingThread` (default) | the thread calling [`Executor::spawn`](crate::Executor::spawn), `create_process` or an async spawn | nothing: its own clone returns once the child exec'd | every backend, both watch modes |
/// | `ExecutorThread` | the executor's spawner thread (one per running loop, never the loop itself) | the spawner thread's reply (a cross-thread wake-up) | every backend, every option |
///
/// With `CallingThread`, a command with a
/// [`parent_death_signal`](crate::Command::parent_death_signal) (the signal follows the spawning
/// *thread*) and any request made while no thread runs the loop still go to the spawner
/// thread. A child cloned on the calling thread inherits that thread's per-thread attributes
/// (CPU affinity, nice value, seccomp filters) instead of the spawner thread's. See the crate
/// docs ("Which thread spawns") for why cloning from any thread is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpawnSite {
    /// The executor's spawner thread clones every child (the seed's one spawning thread; it is
    /// not the loop).
    ExecutorThread,
    /// The calling thread clones the child itself and hands it to the loop. The default.
    #[default]
    CallingThread,
}

/// Settings fixed when the executor is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) kill_grace: Duration,
    pub(crate) backend: SpawnBackend,
    pub(crate) spin: Duration,
    /// Never `Auto` once built.
    pub(crate) watch: ChildWatch,
    /// Record each child's [`Timeline`](crate::Timeline).
    pub(crate) timeline: bool,
    pub(crate) spawn_site: SpawnSite,
}

/// State shared by the executor thread, the caller threads and (weakly) the handles.
pub(crate) struct Shared {
    queue: RequestQueue,
    config: Config,
    spin: Arc<SpinPolicy>,
    poller: Poller,
    dev_null: OwnedFd,
    table: Mutex<Table>,
    /// Set while some thread is inside `run()`.
    looping: AtomicBool,
    next_serial: AtomicU64,
    /// The kernel's wait and /proc calls for the spawning threads: it reads start times also
    /// when the process is out of descriptors (it holds one in reserve).
    sys_wait: Mutex<SysWait>,
    /// `/proc/self/status`, lent to the calling threads' spawns (they read the signal
    /// dispositions there and keep no descriptor of their own).
    proc_status: Option<Arc<std::fs::File>>,
    /// The calling threads' Vfork stdio slots, kept here between their spawns.
    slot_pool: SlotPool,
    /// The process this executor was built in. A child forked without exec inherits a copy of
    /// everything but the loop thread, and the descriptors (epoll set, pidfds) stay shared with
    /// the parent: it must neither be served nor touch them.
    owner: u32,
    /// Tells a program that never runs the loop so (`not_served.rs`).
    not_served: NotServedNotice,
}

impl Shared {
    pub(crate) fn new(config: Config) -> io::Result<Shared> {
        let poller = Poller::new()?;
        let waker = Waker::new(&poller)?;
        Ok(Shared {
            queue: RequestQueue::new(waker),
            spin: Arc::new(SpinPolicy::new(config.spin)),
            config,
            poller,
            dev_null: crate::sys::open_dev_null()?,
            table: Mutex::new(Table::default()),
            sys_wait: Mutex::new(SysWait::new()),
            proc_status: crate::sys::open_proc_status(),
            slot_pool: SlotPool::default(),
            looping: AtomicBool::new(false),
            next_serial: AtomicU64::new(1),
            owner: std::process::id(),
            not_served: NotServedNotice::default(),
        })
    }

    /// `Err(ForkedChild)` when called in another process than the one this executor was built
    /// in (a child forked without exec). One `getpid` call.
    pub(crate) fn check_owner(&self) -> Result<(), SpawnError> {
        crate::error::check_owner(self.owner)
    }

    pub(crate) fn queue(&self) -> &RequestQueue {
        &self.queue
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// How callers and handles poll before they sleep.
    pub(crate) fn spin(&self) -> &Arc<SpinPolicy> {
        &self.spin
    }

    pub(crate) fn poller(&self) -> &Poller {
        &self.poller
    }

    /// What the children's stdin (and discarded output) is opened on.
    pub(crate) fn dev_null(&self) -> BorrowedFd<'_> {
        self.dev_null.as_fd()
    }

    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The start time of the process that has `pid` (`/proc/<pid>/stat` field 22): `None` if
    /// no process has it. Read through a reserve descriptor when the process is out of them.
    pub(crate) fn start_time(&self, pid: rustix::process::Pid) -> io::Result<Option<u64>> {
        self.sys_wait().start_time(pid)
    }

    /// `/proc/self/status` for a calling thread's spawn (see `Spawner::lend`).
    pub(crate) fn proc_status(&self) -> Option<Arc<std::fs::File>> {
        self.proc_status.clone()
    }

    /// The calling threads' Vfork stdio slots (see `Spawner::lend`).
    pub(crate) fn slot_pool(&self) -> &SlotPool {
        &self.slot_pool
    }

    /// The kernel's wait and /proc calls, for a spawning thread (see `crate::reap`).
    pub(crate) fn sys_wait(&self) -> MutexGuard<'_, SysWait> {
        self.sys_wait.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A number never used before by this executor: the key of one spawned child.
    pub(crate) fn next_serial(&self) -> u64 {
        self.next_serial.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks a thread as running the loop; false if another one already is.
    pub(crate) fn enter_loop(&self) -> bool {
        !self.looping.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn leave_loop(&self) {
        self.looping.store(false, Ordering::SeqCst);
    }

    /// True while some thread is inside the loop.
    pub(crate) fn is_looping(&self) -> bool {
        self.looping.load(Ordering::SeqCst)
    }

    /// Stops the executor: the queue refuses what is queued and what comes; the loop sees it.
    pub(crate) fn stop(&self) {
        self.queue.close();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.queue.is_closed()
    }

    /// Tells the user that a request has waited [`SLOW_REPLY`](crate::queue::SLOW_REPLY) for a
    /// loop nobody runs (nothing if one runs now, or the executor stopped): a `tracing` warning,
    /// and without a subscriber a line on stderr once per executor. Called once per request, by
    /// a blocking caller or an awaiting future.
    pub(crate) fn warn_if_not_served(&self) {
        if !self.is_looping() && !self.is_stopped() {
            self.not_served.emit(crate::queue::SLOW_REPLY);
        }
    }

    /// The loop cannot go on: refuse every request and kill and reap every child, so that no
    /// handle waits forever and no zombie stays.
    pub(crate) fn abandon(&self) {
        self.queue.close();
        Table::kill_and_reap_all(&self.table);
    }
}

impl Drop for Shared {
    /// The last owner is gone and no loop runs: kill and reap what is left, so that no child
    /// stays a zombie and every handle gets a status.
    fn drop(&mut self) {
        // In a forked child the children and the poll set are the parent's: leave them alone.
        if self.check_owner().is_ok() {
            self.abandon();
        }
    }
}
