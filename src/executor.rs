//! [`Executor`] and [`ExecutorBuilder`]: the public face. Callers prepare requests here; the loop
//! itself is in [`crate::reactor`].

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

use rustix::event::epoll;
use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};

use crate::error::SpawnError;
use crate::handle::ExecHandle;
use crate::queue::{Message, ReplySlot, RequestQueue, SpawnRequest};
use crate::request::PreparedCommand;
use crate::spin::SpinPolicy;
use crate::sys::spawn::SpawnBackend;
use crate::table::{ProcessInfo, Table};

/// The default time between SIGTERM and SIGKILL in [`ExecHandle::kill`] and [`Executor::stop`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// How long waiting threads and the loop poll before they sleep, by default.
const DEFAULT_SPIN: Duration = Duration::from_millis(1);

/// How the executor learns that a child exited.
///
/// | mode | kernel | how |
/// |---|---|---|
/// | `Pidfd` | Linux 5.4+ | one pidfd per child in the epoll set; signals through the pidfd |
/// | `Signal` | any | SIGCHLD (signalfd or a signal-hook handler) wakes the loop, which waits on each tracked pid; signals go through the executor thread |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChildWatch {
    /// Probe once whether pidfds work (`pidfd_open` and `waitid(P_PIDFD)`); use them if so, else
    /// the signal path. The default.
    #[default]
    Auto,
    /// pidfds; [`ExecutorBuilder::build`] fails with `Unsupported` on a kernel without them.
    Pidfd,
    /// SIGCHLD, for kernels without pidfds (before 5.4, RHEL 8). See [`crate::block_sigchld`].
    Signal,
}

/// Settings fixed when the executor is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) kill_grace: Duration,
    pub(crate) backend: SpawnBackend,
    pub(crate) spin: Duration,
    /// Never `Auto` once built.
    pub(crate) watch: ChildWatch,
}

/// State shared by the executor thread, the caller threads and (weakly) the handles.
pub(crate) struct Shared {
    pub(crate) queue: RequestQueue,
    pub(crate) stopped: AtomicBool,
    pub(crate) config: Config,
    pub(crate) spin: Arc<SpinPolicy>,
    pub(crate) epoll: OwnedFd,
    pub(crate) timer: OwnedFd,
    pub(crate) dev_null: OwnedFd,
    table: Mutex<Table>,
    /// Set while some thread is inside `run()`.
    looping: AtomicBool,
    next_serial: AtomicU64,
}

impl Shared {
    fn new(config: Config) -> io::Result<Shared> {
        let epoll = crate::sys::above_stdio(epoll::create(epoll::CreateFlags::CLOEXEC)?)?;
        let timer = crate::sys::above_stdio(timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?)?;
        Ok(Shared {
            queue: RequestQueue::new()?,
            stopped: AtomicBool::new(false),
            spin: Arc::new(SpinPolicy::new(config.spin)),
            config,
            epoll,
            timer,
            dev_null: crate::sys::open_dev_null()?,
            table: Mutex::new(Table::default()),
            looping: AtomicBool::new(false),
            next_serial: AtomicU64::new(1),
        })
    }

    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_serial(&self) -> u64 {
        self.next_serial.fetch_add(1, Ordering::Relaxed)
    }

    /// Answers every queued message with "stopped". Any thread may do it once `stopped` is set.
    pub(crate) fn refuse_pending(&self) {
        while let Some(m) = self.queue.pop() {
            m.refuse();
        }
    }
}

impl Drop for Shared {
    /// The last owner is gone and no loop runs: kill and reap what is left, so that no child
    /// stays a zombie and every handle gets a status.
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.refuse_pending();
        let mut table = self.table();
        crate::reactor::kill_and_reap_all(&mut table);
    }
}

/// Builds an [`Executor`] with settings other than the defaults.
///
/// ```
/// use std::time::Duration;
/// use napix_executor::{Executor, SpawnBackend};
/// let ex = Executor::builder()
///     .kill_grace(Duration::from_millis(500))
///     .backend(SpawnBackend::PosixSpawn)
///     .build()?;
/// # drop(ex);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ExecutorBuilder {
    config: Config,
}

impl ExecutorBuilder {
    /// Time between SIGTERM and SIGKILL (default 3 s).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.config.kill_grace = grace;
        self
    }

    /// How the executor thread spawns (default [`SpawnBackend::Vfork`]).
    pub fn backend(mut self, backend: SpawnBackend) -> Self {
        self.config.backend = backend;
        self
    }

    /// How long a caller waiting for its spawn reply or for an exit status keeps polling (yielding
    /// the CPU between checks) before it sleeps. Waking a thread parked on a halted core costs
    /// tens of microseconds on a VM, as much as a spawn; polling saves that. At most `cores - 1`
    /// threads poll at once, so pollers never starve the executor thread or the children.
    /// Default 1 ms (measured: enough for a dynamically linked program such as `/bin/true`, about
    /// 0.5 ms here, to exit within it; see the README); zero turns polling off. The executor thread itself never polls: idle, it
    /// sleeps.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.config.spin = spin;
        self
    }

    /// How to learn that a child exited (default [`ChildWatch::Auto`]).
    pub fn child_watch(mut self, watch: ChildWatch) -> Self {
        self.config.watch = watch;
        self
    }

    /// Creates the executor's descriptors (epoll set, eventfd, timerfd, `/dev/null`).
    ///
    /// # Errors
    /// `Unsupported` for [`ChildWatch::Pidfd`] on a kernel without pidfds; the errno of a failed
    /// descriptor creation otherwise.
    pub fn build(mut self) -> io::Result<Executor> {
        let pidfds = crate::sys::pidfd_supported();
        self.config.watch = match self.config.watch {
            ChildWatch::Auto if pidfds => ChildWatch::Pidfd,
            ChildWatch::Auto => {
                tracing::warn!("pidfds unavailable on this kernel: watching children by SIGCHLD");
                ChildWatch::Signal
            }
            ChildWatch::Pidfd if !pidfds => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "ChildWatch::Pidfd: this kernel has no pidfd_open/waitid(P_PIDFD) (Linux 5.4+)",
                ));
            }
            other => other,
        };
        Ok(Executor {
            shared: Ok(Arc::new(Shared::new(self.config)?)),
        })
    }
}

/// Runs and manages child processes for a multi-threaded program.
///
/// Any thread calls [`create_process`](Self::create_process); one thread runs
/// [`run`](Self::run), which does every spawn, keeps the table of running processes, reaps them
/// and escalates kills. `Executor` is `Send + Sync`.
///
/// Dropping an executor that still tracks children kills them (SIGKILL) and reaps them, so no
/// handle waits forever and no zombie is left behind. Call [`stop`](Self::stop) and let
/// [`run`](Self::run) return for the graceful way.
pub struct Executor {
    /// `Err(errno)` only for the global instance when its setup failed: every call then reports
    /// it instead of panicking.
    shared: Result<Arc<Shared>, i32>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Executor");
        match &self.shared {
            Ok(s) => d
                .field("config", &s.config)
                .field("stopped", &s.stopped.load(Ordering::Relaxed))
                .field("running", &s.table().len()),
            Err(errno) => d.field("setup_errno", errno),
        };
        d.finish()
    }
}

static GLOBAL: OnceLock<Executor> = OnceLock::new();

thread_local! {
    /// Each thread's reply slot for its spawn requests (see [`ReplySlot::reusable`]).
    static SPAWN_REPLY: Arc<ReplySlot<Result<ExecHandle, SpawnError>>> =
        ReplySlot::for_current_thread();
    static PING_REPLY: Arc<ReplySlot<()>> = ReplySlot::for_current_thread();
}

/// The one process-wide executor, built with the defaults on first use.
///
/// If its descriptors cannot be created (the process is out of fds), it still returns an
/// executor: `create_process` then fails with [`SpawnError::Unavailable`] and `run` with the
/// error, instead of a panic.
pub fn executor() -> &'static Executor {
    GLOBAL.get_or_init(|| {
        Executor::new().unwrap_or_else(|e| Executor {
            shared: Err(e.raw_os_error().unwrap_or(libc::EMFILE)),
        })
    })
}

impl Executor {
    /// A new executor with the defaults: 3 s kill grace, the [`SpawnBackend::Vfork`] backend.
    pub fn new() -> io::Result<Executor> {
        Executor::builder().build()
    }

    /// A builder to change the kill grace or the spawn backend.
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder {
            config: Config {
                kill_grace: DEFAULT_KILL_GRACE,
                backend: SpawnBackend::default(),
                spin: DEFAULT_SPIN,
                watch: ChildWatch::Auto,
            },
        }
    }

    fn shared(&self) -> Result<&Arc<Shared>, SpawnError> {
        self.shared
            .as_ref()
            .map_err(|&errno| SpawnError::Unavailable { errno })
    }

    /// Starts `command` (`command[0]` the program, looked up in `PATH` when it has no slash) and
    /// returns its handle once the executor thread has spawned it.
    ///
    /// stdin is `/dev/null`; with `discard_output` stdout and stderr are too, otherwise they are
    /// pipes whose read ends [`ExecHandle::take_stdout`]/[`take_stderr`](ExecHandle::take_stderr)
    /// give. The child gets fds 0, 1, 2 only, an empty signal mask and default dispositions.
    ///
    /// Blocks until [`run`](Self::run) (in another thread) has served the request. Callable from
    /// any number of threads at once.
    ///
    /// # Errors
    /// A [`SpawnError`] naming the program: empty command, NUL byte, not found, permission
    /// denied, exec format error, argument list too long, out of fds or processes; `Stopped` after
    /// [`stop`](Self::stop). The executor keeps serving other requests after any of them.
    pub fn create_process<S: AsRef<OsStr>>(
        &self,
        command: &[S],
        discard_output: bool,
    ) -> Result<ExecHandle, SpawnError> {
        let shared = self.shared()?;
        if shared.stopped.load(Ordering::SeqCst) {
            return Err(SpawnError::Stopped);
        }
        let command = PreparedCommand::new(command)?;
        let reply = ReplySlot::reusable(&SPAWN_REPLY);
        shared.queue.push(Message::Spawn(Box::new(SpawnRequest {
            command,
            discard_output,
            owner: thread::current().id(),
            reply: reply.clone(),
        })));
        // stop() may have drained the queue between our check and our push; then nobody else
        // will answer this request, so answer it (and anything else left) ourselves.
        if shared.stopped.load(Ordering::SeqCst) {
            shared.refuse_pending();
        }
        reply.wait(&shared.spin)
    }

    /// Runs the loop on the calling thread (normally the main thread): spawns what is asked,
    /// reaps what exits, escalates kills. Returns after [`stop`](Self::stop) once every child is
    /// reaped. Idle, it sleeps in `epoll_wait` without a timeout.
    ///
    /// # Errors
    /// If another thread is already in `run()` on this executor, or if the poll set fails (then
    /// every child is killed and reaped before it returns).
    pub fn run(&self) -> io::Result<()> {
        let shared = self.shared().map_err(io::Error::from)?;
        if shared.looping.swap(true, Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "Executor::run is already running on another thread",
            ));
        }
        let result = crate::reactor::run(shared);
        shared.looping.store(false, Ordering::SeqCst);
        result
    }

    /// Stops the executor and returns at once: pending and later requests get
    /// [`SpawnError::Stopped`]; every child gets SIGTERM now and SIGKILL after the grace, all at the
    /// same time; [`run`](Self::run) returns once the table is empty.
    pub fn stop(&self) {
        if let Ok(shared) = &self.shared {
            shared.stopped.store(true, Ordering::SeqCst);
            shared.refuse_pending();
            // A message, not a bare ring: the loop re-checks the queue (not the flag) right
            // before sleeping, so only a message is sure to wake it.
            shared.queue.push(Message::Wake);
        }
    }

    /// How this executor watches its children (`Pidfd` or `Signal`, never `Auto`).
    pub fn child_watch(&self) -> ChildWatch {
        self.shared
            .as_ref()
            .map_or(ChildWatch::Auto, |s| s.config.watch)
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.shared
            .as_ref()
            .map_or(true, |s| s.stopped.load(Ordering::SeqCst))
    }

    /// The trace: every child spawned and not yet reaped, oldest first.
    pub fn running(&self) -> Vec<ProcessInfo> {
        match &self.shared {
            Ok(s) => s.table().infos(None),
            Err(_) => Vec::new(),
        }
    }

    /// The running children that thread `owner` asked for.
    pub fn children_of(&self, owner: ThreadId) -> Vec<ProcessInfo> {
        match &self.shared {
            Ok(s) => s.table().infos(Some(owner)),
            Err(_) => Vec::new(),
        }
    }

    /// Sends one no-op request through the queue and waits for the executor thread's answer:
    /// the cost of the hand-off alone (benchmarks).
    #[doc(hidden)]
    pub fn round_trip(&self) -> Result<(), SpawnError> {
        let shared = self.shared()?;
        if shared.stopped.load(Ordering::SeqCst) {
            return Err(SpawnError::Stopped);
        }
        let reply = ReplySlot::reusable(&PING_REPLY);
        shared.queue.push(Message::Ping(reply.clone()));
        if shared.stopped.load(Ordering::SeqCst) {
            shared.refuse_pending();
        }
        reply.wait(&shared.spin);
        Ok(())
    }
}
