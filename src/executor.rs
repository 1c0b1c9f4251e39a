//! [`Executor`] and [`ExecutorBuilder`]: the public face. Callers prepare requests here and wrap
//! the loop's answers into handles; the loop itself is in [`crate::reactor`].

use std::ffi::OsStr;
use std::io;
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use crate::command::Command;
use crate::error::SpawnError;
use crate::handle::ExecHandle;
use crate::request::{PreparedCommand, StdioPlan};
use crate::run_modes::LoopThread;
use crate::shared::{ChildWatch, Config, Shared, SpawnSite};
use crate::spawn_future::SpawnFuture;
use crate::sys::spawn::SpawnBackend;
use crate::table::ProcessInfo;

/// The default time between SIGTERM and SIGKILL in [`ExecHandle::kill`] and [`Executor::stop`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// How long waiting threads and the loop poll before they sleep, by default.
const DEFAULT_SPIN: Duration = Duration::from_millis(1);

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
    request_timeout: Option<Duration>,
}

impl ExecutorBuilder {
    /// Time between SIGTERM and SIGKILL (default 3 s). A grace too large to represent as an
    /// instant (`Duration::MAX`) is no limit: SIGTERM only, never SIGKILL.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.config.kill_grace = grace;
        self
    }

    /// How children are spawned (default [`SpawnBackend::Vfork`]).
    pub fn backend(mut self, backend: SpawnBackend) -> Self {
        self.config.backend = backend;
        self
    }

    /// How long a caller waiting for its spawn reply or for an exit status keeps polling (yielding
    /// the CPU between checks) before it sleeps. Waking a thread parked on a halted core costs
    /// tens of microseconds on a VM, as much as a spawn; polling saves that. A caller waiting for
    /// a child watched through a pidfd first sleeps on the pidfd until the child exits, and polls
    /// only for the loop's reap after that. At most `cores - 1` threads poll at once, so pollers
    /// never starve the executor thread or the children.
    /// Default 1 ms (measured: enough for a dynamically linked program such as `/bin/true`, about
    /// 0.5 ms here, to exit within it; see docs/measurements.md); zero turns polling off. The executor thread itself never polls: idle, it
    /// sleeps.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.config.spin = spin;
        self
    }

    /// Which thread clones each child (default [`SpawnSite::CallingThread`]: the caller clones
    /// its own child, with every backend and in both watch modes, and the executor's loop alone
    /// reaps, escalates and tracks it). [`SpawnSite::ExecutorThread`] sends every request to the
    /// executor's spawner thread instead (one thread clones every child, never the loop): one
    /// hand-off there and back per spawn. See [`SpawnSite`] and the crate docs ("Which thread
    /// spawns") for what changes for the child; docs/measurements.md measures both sites.
    pub fn spawn_site(mut self, site: SpawnSite) -> Self {
        self.config.spawn_site = site;
        self
    }

    /// How to learn that a child exited (default [`ChildWatch::Auto`]).
    pub fn child_watch(mut self, watch: ChildWatch) -> Self {
        self.config.watch = watch;
        self
    }

    /// Whether to record each child's [`Timeline`](crate::Timeline): the instants of its request's
    /// way through the executor (queued, spawn started, spawned, exit observed, reaped, and the
    /// caller's replies), read with [`ExecHandle::timeline`]. Default off: then no child has one
    /// and nothing reads the clock for it. On, it costs five clock reads per child and one per
    /// wake-up of the loop (through the vDSO: no system call where the clocksource allows), and
    /// one small allocation per child.
    pub fn timeline(mut self, on: bool) -> Self {
        self.config.timeline = on;
        self
    }

    /// How long [`create_process`](Executor::create_process) and [`spawn`](Executor::spawn)
    /// wait for the executor thread to serve their request before they fail with
    /// [`SpawnError::NotServed`] (default: no limit); the futures of
    /// [`spawn_async`](Executor::spawn_async) and
    /// [`create_process_async`](Executor::create_process_async) resolve to it (see
    /// `spawn_async` for how a future is woken without a runtime).
    /// Guards against a loop that is not running (nobody called [`run`](Executor::run)). The
    /// request is then withdrawn; a child the loop spawns for it after all is killed and reaped.
    /// [`Executor::with_request_timeout`] sets it for some calls only.
    ///
    /// A request unanswered after a second logs a `tracing` warning when no thread runs the
    /// loop (once per request; with or without a request timeout): a blocking one on its
    /// thread, an async one at the poll the request timer's thread wakes it for, on the task's
    /// thread (only when no loop ran at its first poll).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Builds the executor and starts its loop on a thread it owns: see [`Executor::start`].
    ///
    /// # Errors
    /// As [`build`](Self::build), or the error of creating the thread.
    pub fn start(self) -> io::Result<Executor> {
        let mut ex = self.build()?;
        let shared = ex.shared().map_err(io::Error::from)?;
        ex.owned_loop = Some(Arc::new(LoopThread::spawn(shared)?));
        Ok(ex)
    }

    /// Creates the executor's descriptors (epoll set, eventfd, timerfd, `/dev/null`). Building
    /// is not running: a loop must run for requests to be served (see "Running the loop" in the
    /// crate docs); [`start`](Self::start) builds and runs it on a thread of its own.
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
            owned_loop: None,
            request_timeout: self.request_timeout,
        })
    }
}

/// Runs and manages child processes for a multi-threaded program.
///
/// Any thread calls [`create_process`](Self::create_process); one thread runs
/// [`run`](Self::run), which does every spawn, keeps the table of running processes, reaps them
/// and escalates kills. `Executor` is `Send + Sync`.
///
/// Three ways to run the loop: [`start`](Self::start) (a thread the executor owns, stopped when
/// the last clone drops), [`run_with`](Self::run_with) (the calling thread, while a closure runs
/// on another) and [`run`](Self::run) (the calling thread, until [`stop`](Self::stop)).
///
/// Cloning is cheap and gives another owner of the same executor (its loop, table and queue).
///
/// # Dropping
///
/// Dropping the last owner never waits for a kill grace: every child the executor still
/// tracks gets SIGKILL (its whole [`KillScope`](crate::KillScope)) and is reaped before the drop
/// returns, so no handle waits forever, no zombie is left, and an async runtime's worker is
/// stalled for milliseconds, not seconds. With an owned loop ([`start`](Self::start)) the loop
/// thread reaps them and is joined; without one the dropping thread reaps them itself. For the
/// graceful way (SIGTERM, the grace, then SIGKILL) stop first: [`stop`](Self::stop) and let
/// [`run`](Self::run) return, or `.await` [`shutdown`](Self::shutdown).
///
/// # After `fork()`
///
/// An executor belongs to the process that built it. A child forked without exec (a pre-fork
/// server, a daemonizing library) inherits it, including [`executor()`], but not its loop thread,
/// and shares its descriptors with the parent: there `create_process` and `run` fail at once with
/// [`SpawnError::ForkedChild`], `stop` and drop do nothing, and the parent's children are never
/// touched. The forked child builds an executor of its own and runs it:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use napix_executor::Executor;
/// // In the child, after fork():
/// let own = Arc::new(Executor::new()?);
/// let runner = { let own = own.clone(); std::thread::spawn(move || own.run()) };
/// let status = own.create_process(&["true"], true)?.wait();
/// # let _ = (status, runner);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Handles inherited from the parent are the parent's too: their signalling methods fail with
/// [`SpawnError::ForkedChild`] in the child, and their `wait` would block for good there.
#[derive(Clone)]
pub struct Executor {
    /// `Err(errno)` only for the global instance when its setup failed: every call then reports
    /// it instead of panicking.
    shared: Result<Arc<Shared>, i32>,
    /// The loop thread this executor owns ([`Executor::start`]): stopped and joined when the
    /// last clone drops.
    owned_loop: Option<Arc<LoopThread>>,
    /// How long a spawn request may wait for the loop (None: no limit).
    request_timeout: Option<Duration>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Executor");
        match &self.shared {
            Ok(s) => d
                .field("config", s.config())
                .field("stopped", &s.is_stopped())
                .field("running", &s.table().len()),
            Err(errno) => d.field("setup_errno", errno),
        };
        d.finish()
    }
}

static GLOBAL: OnceLock<Executor> = OnceLock::new();

/// The one process-wide executor, built with the defaults on first use. Its loop runs where the
/// program calls [`run`](Executor::run) (the seed's way: the main thread), and until then its
/// requests wait; see "Running the loop" in the crate docs.
///
/// If its descriptors cannot be created (the process is out of fds), it still returns an
/// executor: `create_process` then fails with [`SpawnError::Unavailable`] and `run` with the
/// error, instead of a panic.
pub fn executor() -> &'static Executor {
    GLOBAL.get_or_init(|| {
        Executor::new().unwrap_or_else(|e| Executor {
            shared: Err(e.raw_os_error().unwrap_or(libc::EMFILE)),
            owned_loop: None,
            request_timeout: None,
        })
    })
}

impl Executor {
    /// A new executor with the defaults: 3 s kill grace, the [`SpawnBackend::Vfork`] backend.
    ///
    /// Building is not running: a loop must run for requests to be served (see "Running the
    /// loop" in the crate docs). [`Executor::start`] builds one whose loop runs on a thread it
    /// owns; with `new`, call [`run`](Self::run) on a thread, or use [`run_with`](Self::run_with).
    /// A request made before the loop starts waits for it, and warns after a second (on stderr
    /// too when no `tracing` subscriber is installed).
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
                timeline: false,
                spawn_site: SpawnSite::default(),
            },
            request_timeout: None,
        }
    }

    /// A new executor with the defaults whose loop runs on a thread it owns (named
    /// `napix-executor`): nothing to forget, nothing to hang. Clones share it; when the last one
    /// drops, every child left gets SIGKILL, and the drop returns once the thread has reaped
    /// them and ended (see [Dropping](Self#dropping); [`shutdown`](Self::shutdown) is the
    /// graceful stop).
    /// [`ExecutorBuilder::start`] does the same with other settings.
    ///
    /// ```
    /// use napix_executor::Executor;
    /// let ex = Executor::start()?;
    /// let child = ex.create_process(&["sh", "-c", "exit 3"], true)?;
    /// assert_eq!(child.wait().code(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](Self::new), or the error of creating the thread.
    pub fn start() -> io::Result<Executor> {
        Executor::builder().start()
    }

    /// Runs the loop on the calling thread (the seed's main-thread style) while `f` runs on a new
    /// thread with this executor; stops the executor as soon as `f` returns, errs or panics, and
    /// returns `f`'s result once every child is reaped. A panic in `f` is resumed after that. The
    /// executor is stopped for good afterwards.
    ///
    /// ```
    /// use napix_executor::Executor;
    /// let ex = Executor::new()?;
    /// let code = ex.run_with(|ex| -> Result<_, napix_executor::SpawnError> {
    ///     let child = ex.create_process(&["sh", "-c", "exit 3"], true)?;
    ///     Ok(child.wait().code())
    /// })??;
    /// assert_eq!(code, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `ResourceBusy` if the loop already runs elsewhere ([`start`](Self::start), or
    /// [`run`](Self::run) on another thread; `f` is not called); the loop's own error, as
    /// [`run`](Self::run)'s; the error of creating the thread.
    pub fn run_with<R: Send>(&self, f: impl FnOnce(&Executor) -> R + Send) -> io::Result<R> {
        let shared = self.shared().map_err(io::Error::from)?;
        crate::run_modes::scoped(shared, || f(self))
    }

    /// This executor with another request timeout (see
    /// [`ExecutorBuilder::request_timeout`]; `None`: no limit), for some calls only: the same
    /// executor, a cheap clone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use napix_executor::{Executor, SpawnError};
    /// let ex = Executor::new()?; // no thread runs its loop
    /// let err = ex
    ///     .with_request_timeout(Some(Duration::from_millis(50)))
    ///     .create_process(&["true"], true)
    ///     .unwrap_err();
    /// assert!(matches!(err, SpawnError::NotServed { .. }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_request_timeout(&self, timeout: Option<Duration>) -> Executor {
        Executor {
            request_timeout: timeout,
            ..self.clone()
        }
    }

    /// The shared state, if it was set up and belongs to this process (not to a parent this
    /// process was forked from).
    pub(crate) fn shared(&self) -> Result<&Arc<Shared>, SpawnError> {
        let shared = self
            .shared
            .as_ref()
            .map_err(|&errno| SpawnError::Unavailable { errno })?;
        shared.check_owner()?;
        Ok(shared)
    }

    /// Starts `command` (`command[0]` the program, looked up in `PATH` when it has no slash) and
    /// returns its handle once the executor thread has spawned it: the seed's shortcut for
    /// [`spawn`](Self::spawn) of a [`Command`] with these arguments.
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
    /// [`stop`](Self::stop); [`ForkedChild`](SpawnError::ForkedChild) at once in a child forked
    /// from the executor's process. The executor keeps serving other requests after any of them.
    pub fn create_process<S: AsRef<OsStr>>(
        &self,
        command: &[S],
        discard_output: bool,
    ) -> Result<ExecHandle, SpawnError> {
        // Stopped (or forked) first: that answer does not depend on the command.
        let shared = self.ready()?;
        // The same request a Command with these arguments makes, built without the Command.
        let mut prepared = PreparedCommand::new(command)?;
        if !discard_output {
            prepared.stdio = [StdioPlan::Null, StdioPlan::Piped, StdioPlan::Piped];
        }
        crate::handoff::spawn_blocking(shared, prepared, self.request_timeout, None)
    }

    /// Starts `command` and returns its handle once the executor thread has spawned it.
    ///
    /// Every option is checked and prepared on the calling thread (C strings, environment,
    /// `PATH` search, descriptors); the executor thread only spawns. Streams the command leaves
    /// unset: stdin `/dev/null`, stdout and stderr inherited. The child gets fds 0, 1, 2 and the
    /// command's extra descriptors only, an empty signal mask and default dispositions.
    ///
    /// ```
    /// use napix_executor::{Command, Executor, Stdio};
    /// # let ex = std::sync::Arc::new(Executor::new()?);
    /// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "test \"$(cat)\" = hi && exit 7"])
    ///     .stdin(Stdio::from_bytes("hi"));
    /// assert_eq!(ex.spawn(&cmd)?.wait().code(), Some(7));
    /// assert_eq!(ex.spawn(&cmd)?.wait().code(), Some(7)); // built once, spawned again
    /// # ex.stop(); runner.join().expect("run thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Everything [`create_process`](Self::create_process) reports, and for the options:
    /// [`SpawnError::InvalidOption`] (malformed, found before spawning),
    /// [`SpawnError::OptionFailed`] (a system error on this thread, e.g. a missing working
    /// directory, or in the child, e.g. `setuid` without the right), and
    /// [`SpawnError::UnsupportedOption`] when the executor's backend cannot apply an option.
    pub fn spawn(&self, command: &Command) -> Result<ExecHandle, SpawnError> {
        self.spawn_with(
            command,
            [StdioPlan::Null, StdioPlan::Inherit, StdioPlan::Inherit],
        )
    }

    /// [`spawn`](Self::spawn) with `defaults` for the streams `command` leaves unset.
    pub(crate) fn spawn_with(
        &self,
        command: &Command,
        defaults: [StdioPlan; 3],
    ) -> Result<ExecHandle, SpawnError> {
        self.spawn_on(self.ready()?, command, defaults)
    }

    /// The shared state, if this executor takes requests: not stopped, not a forked copy.
    fn ready(&self) -> Result<&Arc<Shared>, SpawnError> {
        let shared = self.shared()?;
        if shared.is_stopped() {
            return Err(SpawnError::Stopped);
        }
        Ok(shared)
    }

    fn spawn_on(
        &self,
        shared: &Arc<Shared>,
        command: &Command,
        defaults: [StdioPlan; 3],
    ) -> Result<ExecHandle, SpawnError> {
        // A command's preparation can take microseconds (environment, stdin bytes, directory
        // check): if the request is to be queued, the loop wakes up meanwhile.
        let announced =
            (!crate::spawn_site::may_spawn_here(shared)).then(|| shared.queue().announce());
        let prepared = crate::handoff::prepare(shared, command, defaults)?;
        crate::handoff::spawn_blocking(shared, prepared, self.request_timeout, announced)
    }

    /// Starts every command of `commands` and returns their handles, in order, once the
    /// executor thread has spawned them all: [`spawn`](Self::spawn) for a batch, with one
    /// hand-off for the whole batch (every request queued, then one wake-up of the executor
    /// thread, which spawns them in one pass) instead of one per command.
    ///
    /// Each element is the result [`spawn`](Self::spawn) would give for that command alone: a
    /// command that fails (a bad option, a missing program, an exec error) gets its own typed
    /// error and the others still spawn. With [`SpawnSite::CallingThread`] the commands the
    /// calling thread may spawn are spawned here, one after the other, without any hand-off.
    ///
    /// ```
    /// use napix_executor::{Command, Executor, SpawnError};
    /// let ex = Executor::start()?;
    /// let exit_4 = || {
    ///     let mut cmd = Command::new("sh");
    ///     cmd.args(["-c", "exit 4"]);
    ///     cmd
    /// };
    /// let missing = Command::new("/nonexistent/program");
    /// let results = ex.spawn_many(&[exit_4(), missing, exit_4()]);
    /// assert!(matches!(results[1], Err(SpawnError::NotFound { .. })));
    /// for result in [&results[0], &results[2]] {
    ///     assert_eq!(result.as_ref().map(|h| h.wait().code()).ok(), Some(Some(4)));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Per element, as [`spawn`](Self::spawn); after [`stop`](Self::stop) every element is
    /// [`SpawnError::Stopped`].
    pub fn spawn_many(&self, commands: &[Command]) -> Vec<Result<ExecHandle, SpawnError>> {
        let defaults = [StdioPlan::Null, StdioPlan::Inherit, StdioPlan::Inherit];
        match self.ready() {
            Ok(shared) => {
                crate::handoff::spawn_many(shared, commands, &defaults, self.request_timeout)
            }
            Err(e) => commands.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// [`create_process`](Self::create_process) for async code: queues the request at once and
    /// returns a future of the handle, woken by the executor thread when it has spawned the
    /// child. The calling thread never blocks; no runtime is needed (any executor of futures
    /// drives it). Errors found before queueing (empty command, NUL byte, program not found,
    /// stopped) are the future's output.
    ///
    /// Dropping the future before it completes withdraws the request; a child spawned for it
    /// meanwhile is killed and reaped. With a request timeout
    /// ([`ExecutorBuilder::request_timeout`]) the future resolves to
    /// [`SpawnError::NotServed`] if the loop has not served it in time, as
    /// [`spawn_async`](Self::spawn_async) says.
    ///
    /// ```
    /// # let ex = napix_executor::Executor::start()?;
    /// let status = pollster::block_on(async {
    ///     let child = ex.create_process_async(&["sh", "-c", "exit 3"], true).await?;
    ///     Ok::<_, napix_executor::SpawnError>(child.wait_async().await)
    /// })?;
    /// assert_eq!(status.code(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_process_async<S: AsRef<OsStr>>(
        &self,
        command: &[S],
        discard_output: bool,
    ) -> SpawnFuture {
        let queued = (|| {
            let shared = self.shared()?;
            if shared.is_stopped() {
                return Err(SpawnError::Stopped);
            }
            let mut command = PreparedCommand::new(command)?;
            if !discard_output {
                command.stdio = [StdioPlan::Null, StdioPlan::Piped, StdioPlan::Piped];
            }
            Ok(crate::handoff::spawn_async(
                shared,
                command,
                self.request_timeout,
            ))
        })();
        queued.unwrap_or_else(SpawnFuture::ready_err)
    }

    /// [`spawn`](Self::spawn) for async code: a future of the handle, woken by the executor
    /// thread when it has spawned the child; the calling thread never blocks, and no runtime is
    /// needed. Errors found before queueing (a bad option, a missing program, stopped) are the
    /// future's output.
    ///
    /// Cancel-safe: dropping the future before it completes withdraws the request, and a child
    /// the executor thread spawned for it meanwhile is killed (SIGTERM, the grace, SIGKILL) and
    /// reaped. A child whose spawn completed before the drop runs on like a dropped handle's and
    /// is reaped when it exits (or is killed, with [`Command::kill_on_drop`]).
    ///
    /// # Request timeout
    ///
    /// With [`ExecutorBuilder::request_timeout`] (or [`with_request_timeout`](Self::with_request_timeout))
    /// the future resolves to [`SpawnError::NotServed`] when the loop has not served the request
    /// by then (nobody runs it), and the request is withdrawn. A blocking caller times out by
    /// itself; a future needs something to wake it, and the loop cannot (it is not running) nor
    /// can a runtime the library does not depend on. So one thread per process
    /// (`napix-request-timer`) keeps every pending deadline and wakes each expired future: it
    /// is started by the first async spawn made with a request timeout, sleeps without a
    /// timeout when no deadline is pending, and costs nothing to executors without a request
    /// timeout. Inside a runtime, its own timer does the same without that thread:
    /// `tokio::time::timeout(d, ex.spawn_async(&cmd))` (the dropped future withdraws the
    /// request).
    ///
    /// ```
    /// use std::time::Duration;
    /// use napix_executor::{Command, Executor, SpawnError};
    /// let ex = Executor::builder().request_timeout(Duration::from_millis(100)).build()?;
    /// // Nobody runs the loop.
    /// let got = pollster::block_on(ex.spawn_async(&Command::new("true")));
    /// assert!(matches!(got, Err(SpawnError::NotServed { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```
    /// use napix_executor::{Command, Executor, Stdio};
    /// let ex = Executor::start()?;
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "exit 3"]).stdout(Stdio::null());
    /// let status = pollster::block_on(async {
    ///     let child = ex.spawn_async(&cmd).await?;
    ///     Ok::<_, napix_executor::SpawnError>(child.wait_async().await)
    /// })?;
    /// assert_eq!(status.code(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_async(&self, command: &Command) -> SpawnFuture {
        let defaults = [StdioPlan::Null, StdioPlan::Inherit, StdioPlan::Inherit];
        self.spawn_async_with(command, defaults)
    }

    /// [`spawn_async`](Self::spawn_async) with `defaults` for the streams `command` leaves unset.
    pub(crate) fn spawn_async_with(
        &self,
        command: &Command,
        defaults: [StdioPlan; 3],
    ) -> SpawnFuture {
        let queued = self.ready().and_then(|shared| {
            let prepared = crate::handoff::prepare(shared, command, defaults)?;
            Ok(crate::handoff::spawn_async(
                shared,
                prepared,
                self.request_timeout,
            ))
        });
        queued.unwrap_or_else(SpawnFuture::ready_err)
    }

    /// Runs the loop on the calling thread (normally the main thread): spawns what is asked,
    /// reaps what exits, escalates kills. Returns after [`stop`](Self::stop) once every child is
    /// reaped. Idle, it sleeps in `epoll_wait` without a timeout.
    ///
    /// # Errors
    /// If another thread is already in `run()` on this executor, or if the poll set fails (then
    /// every child is killed and reaped before it returns); at once, without touching the
    /// parent's poll set, in a child forked from the executor's process
    /// ([`SpawnError::ForkedChild`], kind `Other`).
    pub fn run(&self) -> io::Result<()> {
        let shared = self.shared().map_err(io::Error::from)?;
        crate::run_modes::run_here(shared)
    }

    /// Stops the executor and returns at once: pending and later requests get
    /// [`SpawnError::Stopped`]; every child gets SIGTERM now and SIGKILL after the grace, all at the
    /// same time; [`run`](Self::run) returns once the table is empty. Does nothing in a child
    /// forked from the executor's process (see [`SpawnError::ForkedChild`]).
    pub fn stop(&self) {
        // Not in a forked child: its copy of the executor is not the parent's to stop.
        if let Ok(shared) = self.shared() {
            shared.stop();
        }
    }

    /// How this executor watches its children (`Pidfd` or `Signal`, never `Auto`).
    pub fn child_watch(&self) -> ChildWatch {
        self.shared
            .as_ref()
            .map_or(ChildWatch::Auto, |s| s.config().watch)
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.as_ref().map_or(true, |s| s.is_stopped())
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
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn round_trip(&self) -> Result<(), SpawnError> {
        crate::handoff::round_trip(self.shared()?)
    }
}
