//! Shared helpers for the contract tests (`tests/contract_*.rs`) and the fault
//! tests (`tests/fault_*.rs`).
//!
//! Every contract test body is written once as a `fn name(backend: SpawnBackend)`
//! and instantiated for every backend by [`per_backend!`], so a failure names the
//! backend (`posix_spawn::name`, `fork::name`, `vfork::name`). Fault tests loop
//! over backends and child-watch modes themselves and start executors with
//! [`start_with_watch`].
//!
//! Every wait has a bound: the executor's `run()` loop lives on a background
//! thread owned by a [`Running`] guard whose drop stops it and joins it with a
//! watchdog, and blocking calls (`create_process`, `wait`, `kill`, reads from
//! pipes) go through [`bounded`], which panics instead of hanging.
#![allow(dead_code, unused_macros)]

pub mod cgroup;
pub mod faults;
pub mod files;
pub mod seeded;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use napix_executor::{ChildWatch, ExecHandle, Executor, ExecutorBuilder, SpawnBackend, SpawnError};

/// How long `run()` may take to return after `stop()` (beyond the kill grace,
/// when the guard knows it) before a guard's drop declares the executor hung.
pub const RUN_WATCHDOG: Duration = Duration::from_secs(20);

/// Bound for a single spawn request.
pub const SPAWN_LIMIT: Duration = Duration::from_secs(10);

/// Instantiates `fn $name(SpawnBackend)` as one `#[test]` per backend and child-watch mode:
/// `posix_spawn::x`, `fork::x`, `vfork::x` watch children through pidfds (the default on this
/// kernel); `sigchld_posix_spawn::x`, ... force `ChildWatch::Signal` (issue 6), so the whole
/// contract runs on both paths. Test bodies build executors with [`builder`], which applies the
/// mode of the test that is running.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),+ $(,)?) => {
        $crate::per_backend!(@mode posix_spawn, PosixSpawn, Pidfd; $($name),+);
        $crate::per_backend!(@mode fork, Fork, Pidfd; $($name),+);
        $crate::per_backend!(@mode vfork, Vfork, Pidfd; $($name),+);
        $crate::per_backend!(@mode sigchld_posix_spawn, PosixSpawn, Signal; $($name),+);
        $crate::per_backend!(@mode sigchld_fork, Fork, Signal; $($name),+);
        $crate::per_backend!(@mode sigchld_vfork, Vfork, Signal; $($name),+);
    };
    (@mode $module:ident, $backend:ident, $watch:ident; $($name:ident),+) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    $crate::common::set_watch(::napix_executor::ChildWatch::$watch);
                    super::$name(::napix_executor::SpawnBackend::$backend)
                }
            )+
        }
    };
}

thread_local! {
    static WATCH: std::cell::Cell<ChildWatch> = const { std::cell::Cell::new(ChildWatch::Auto) };
}

/// Sets the child-watch mode that [`builder`] applies on this thread.
pub fn set_watch(watch: ChildWatch) {
    WATCH.with(|w| w.set(watch));
}

/// The mode the running test asked for.
pub fn watch() -> ChildWatch {
    WATCH.with(|w| w.get())
}

/// An executor builder for `backend` in the running test's child-watch mode.
pub fn builder(backend: SpawnBackend) -> ExecutorBuilder {
    Executor::builder().backend(backend).child_watch(watch())
}

/// An executor whose `run()` loop runs on a background thread.
///
/// Dropping it calls `stop()` and joins the loop thread, panicking if `run()`
/// does not return within [`RUN_WATCHDOG`] plus the kill grace (when the guard
/// was made by [`start`] or [`start_with_watch`]) or returned an error.
pub struct Running {
    exec: Arc<Executor>,
    /// The executor's kill grace, if known (added to the drop watchdog).
    grace: Duration,
    run: Option<JoinHandle<io::Result<()>>>,
}

/// Builds an executor with `backend` and `grace`, in the running test's
/// child-watch mode, and starts its loop.
pub fn start(backend: SpawnBackend, grace: Duration) -> Running {
    start_with_watch(backend, watch(), grace)
}

/// Builds an executor with `backend`, `watch` and `grace` and starts its loop
/// (for tests that loop over the child-watch modes themselves).
pub fn start_with_watch(backend: SpawnBackend, watch: ChildWatch, grace: Duration) -> Running {
    let exec = Executor::builder()
        .backend(backend)
        .child_watch(watch)
        .kill_grace(grace)
        .build()
        .expect("ExecutorBuilder::build");
    let mut r = Running::spawn(Arc::new(exec));
    r.grace = grace;
    r
}

impl Running {
    /// Starts `run()` of `exec` on a new thread.
    pub fn spawn(exec: Arc<Executor>) -> Running {
        Running::spawn_with(exec, || {})
    }

    /// Starts `run()` of `exec` on a new thread that first calls `before`
    /// (e.g. to change that thread's signal mask).
    pub fn spawn_with(exec: Arc<Executor>, before: impl FnOnce() + Send + 'static) -> Running {
        let for_loop = Arc::clone(&exec);
        let run = thread::Builder::new()
            .name("executor-run".into())
            .spawn(move || {
                before();
                for_loop.run()
            })
            .expect("spawn the run() thread");
        Running {
            exec,
            grace: Duration::ZERO,
            run: Some(run),
        }
    }

    pub fn exec(&self) -> &Executor {
        &self.exec
    }

    pub fn arc(&self) -> Arc<Executor> {
        Arc::clone(&self.exec)
    }

    /// Whether `run()` has returned.
    pub fn finished(&self) -> bool {
        self.run.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits (at most `limit`) for `run()` to return without calling
    /// `stop()`; asserts it returned `Ok`. Returns how long the wait took.
    pub fn join(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        let handle = self.run.take().expect("run() thread already joined");
        while !handle.is_finished() {
            if start.elapsed() > limit {
                // Put it back so that Drop still stops it.
                self.run = Some(handle);
                panic!("run() did not return within {limit:?}");
            }
            thread::sleep(Duration::from_millis(2));
        }
        let took = start.elapsed();
        match handle.join() {
            Ok(Ok(())) => took,
            Ok(Err(e)) => panic!("run() returned an error: {e}"),
            Err(_) => panic!("run() panicked"),
        }
    }

    /// Calls `stop()` (asserting it returns within 100 ms) and waits at most
    /// `limit` for `run()` to return. Returns the time from the `stop()` call
    /// to `run()` having returned.
    pub fn stop_and_join(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        self.exec.stop();
        let stop_took = start.elapsed();
        assert!(
            stop_took < Duration::from_millis(100),
            "stop() must return at once, took {stop_took:?}"
        );
        self.join(limit);
        start.elapsed()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(handle) = self.run.take() else {
            return;
        };
        self.exec.stop();
        let limit = self.grace + RUN_WATCHDOG;
        let start = Instant::now();
        while !handle.is_finished() {
            if start.elapsed() > limit {
                if thread::panicking() {
                    eprintln!("run() did not return within {limit:?} after stop()");
                    return;
                }
                panic!("run() did not return within {limit:?} after stop()");
            }
            thread::sleep(Duration::from_millis(5));
        }
        let result = handle.join();
        if thread::panicking() {
            return;
        }
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("run() returned an error: {e}"),
            Err(_) => panic!("run() panicked"),
        }
    }
}

/// Runs `f` on a helper thread and returns its result, panicking with `what`
/// if it does not finish within `limit` (the helper thread is then leaked).
pub fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// `create_process` from a helper thread, bounded by [`SPAWN_LIMIT`].
pub fn spawn<S: AsRef<OsStr>>(
    exec: &Arc<Executor>,
    command: &[S],
    discard_output: bool,
) -> Result<ExecHandle, SpawnError> {
    let exec = Arc::clone(exec);
    let command: Vec<OsString> = command.iter().map(|s| s.as_ref().to_owned()).collect();
    let what = format!("create_process({command:?})");
    bounded(SPAWN_LIMIT, &what, move || {
        exec.create_process(&command, discard_output)
    })
}

/// Like [`spawn`] but panics on a spawn error.
pub fn spawn_ok<S: AsRef<OsStr>>(
    exec: &Arc<Executor>,
    command: &[S],
    discard_output: bool,
) -> ExecHandle {
    match spawn(exec, command, discard_output) {
        Ok(h) => h,
        Err(e) => panic!("create_process failed: {e} ({e:?})"),
    }
}

/// `Executor::spawn` from a helper thread, bounded by [`SPAWN_LIMIT`].
pub fn spawn_command(
    exec: &Arc<Executor>,
    command: &Arc<napix_executor::Command>,
) -> Result<ExecHandle, SpawnError> {
    let exec = Arc::clone(exec);
    let command = Arc::clone(command);
    let what = format!("spawn({command:?})");
    bounded(SPAWN_LIMIT, &what, move || exec.spawn(&command))
}

/// Spawns `command` (stdout piped by the caller), reads stdout to its end and waits: the
/// output (lossy UTF-8) and the status.
pub fn run_command(
    exec: &Arc<Executor>,
    command: napix_executor::Command,
) -> Result<(String, ExitStatus), SpawnError> {
    let handle = spawn_command(exec, &Arc::new(command))?;
    let out = match handle.take_stdout() {
        Some(pipe) => read_all(pipe, Duration::from_secs(10)),
        None => Vec::new(),
    };
    let status = wait_for(&handle, Duration::from_secs(10));
    Ok((String::from_utf8_lossy(&out).into_owned(), status))
}

/// `wait_timeout` that panics when the process has not exited in `limit`.
pub fn wait_for(handle: &ExecHandle, limit: Duration) -> ExitStatus {
    match handle.wait_timeout(limit) {
        Some(s) => s,
        None => panic!("pid {} did not exit within {limit:?}", handle.pid()),
    }
}

/// `kill()` from a helper thread, bounded; returns the status and how long
/// `kill()` took.
pub fn kill_bounded(handle: &Arc<ExecHandle>, limit: Duration) -> (ExitStatus, Duration) {
    let h = Arc::clone(handle);
    bounded(limit, "ExecHandle::kill", move || {
        let t = Instant::now();
        let s = h.kill();
        (s, t.elapsed())
    })
}

/// Reads `r` to its end on a helper thread, bounded by `limit`.
pub fn read_all<R: Read + Send + 'static>(mut r: R, limit: Duration) -> Vec<u8> {
    bounded(limit, "read pipe to EOF", move || {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).expect("read pipe");
        buf
    })
}

/// Polls `cond` every 5 ms for at most `limit`; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

pub fn code(s: ExitStatus) -> Option<i32> {
    s.code()
}

pub fn signal(s: ExitStatus) -> Option<i32> {
    s.signal()
}

pub fn our_pid() -> u32 {
    std::process::id()
}

/// State letter and ppid of `pid` from /proc/<pid>/stat, if it exists.
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let mut it = after.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` is a child of this process (alive or zombie).
pub fn is_child(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((_, ppid)) if ppid == our_pid())
}

/// Whether `pid` is a zombie child of this process right now.
pub fn is_zombie_child(pid: u32) -> bool {
    matches!(proc_stat(pid), Some(('Z', ppid)) if ppid == our_pid())
}

/// Whether `pid` is a live (non-zombie) child of this process.
pub fn is_live_child(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, ppid)) if ppid == our_pid() && state != 'Z' && state != 'X')
}

/// All children of this process, as (pid, state, comm).
pub fn children() -> Vec<(u32, char, String)> {
    let me = our_pid();
    proc_stats()
        .into_iter()
        .filter(|(_, _, ppid, _, _)| *ppid == me)
        .map(|(pid, state, _, _, comm)| (pid, state, comm))
        .collect()
}

/// Every process in /proc as (pid, state, ppid, pgrp, comm), parsed from /proc/PID/stat after
/// the last ')' (a comm may hold spaces and parentheses). Processes that vanish meanwhile are
/// skipped.
pub fn proc_stats() -> Vec<(u32, char, u32, u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
            continue;
        };
        let comm = text[open + 1..close].to_string();
        let mut it = text[close + 1..].split_whitespace();
        let state = it.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let pgrp: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, state, ppid, pgrp, comm));
    }
    out
}

/// Pids of zombie children of this process.
pub fn zombie_children() -> Vec<u32> {
    children()
        .into_iter()
        .filter(|(_, state, _)| *state == 'Z')
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Waits up to `limit` for this process to have no children (alive or zombie);
/// panics with the list if some remain.
pub fn assert_no_children(limit: Duration) {
    let gone = wait_until(limit, || children().is_empty());
    assert!(gone, "processes of ours left: {:?}", children());
}

/// A field of /proc/<pid>/status (e.g. "SigIgn"), trimmed.
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_of(&text, field)
}

/// A field of a /proc/.../status text, trimmed.
pub fn field_of(status_text: &str, field: &str) -> Option<String> {
    status_text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == field).then(|| v.trim().to_string())
    })
}

/// Whether `sig` is in the hex signal set `mask` (as in /proc status).
pub fn in_sigset(mask: &str, sig: i32) -> bool {
    let bits = u64::from_str_radix(mask, 16).expect("hex signal mask");
    bits & (1u64 << (sig - 1)) != 0
}

/// Whether `pid` ignores `sig` according to /proc/<pid>/status.
pub fn ignores(pid: u32, sig: i32) -> bool {
    status_field(pid, "SigIgn").is_some_and(|m| in_sigset(&m, sig))
}

/// The command that ignores SIGTERM as the tracked pid itself: the shell
/// ignores TERM and then execs `sleep`, which keeps the disposition.
pub const STUBBORN: [&str; 3] = ["/bin/sh", "-c", "trap '' TERM; exec sleep 30"];

/// Spawns a child that ignores SIGTERM and waits until it really does.
pub fn spawn_stubborn(exec: &Arc<Executor>) -> ExecHandle {
    let h = spawn_ok(exec, &STUBBORN, true);
    let pid = h.pid();
    assert!(
        wait_until(Duration::from_secs(5), || ignores(pid, libc::SIGTERM)),
        "pid {pid} never got to ignore SIGTERM"
    );
    h
}

/// `Threads:` of this process's /proc status.
pub fn thread_count() -> usize {
    status_field(our_pid(), "Threads")
        .and_then(|v| v.parse().ok())
        .expect("Threads: in /proc/self/status")
}

/// CPU time (user + system) this process used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes a plain struct we own.
    let usage = unsafe {
        let mut u = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Sorted fd numbers open in `pid`.
pub fn fds_of(pid: u32) -> Option<Vec<u32>> {
    let dir = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut fds: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    Some(fds)
}

/// Sorted fd numbers open in this process (without the one used to list them).
pub fn our_fds() -> Vec<u32> {
    let me = our_pid();
    let mut fds = fds_of(me).expect("read /proc/self/fd");
    // Listing held one descriptor itself: drop the ones that are gone now.
    fds.retain(|&fd| fd_target(me, fd).is_some());
    fds
}

/// `fd -> target` of this process's `fds`, for a failure message.
pub fn describe_fds(fds: &[u32]) -> String {
    fds.iter()
        .map(|fd| {
            let target = fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("({e})"));
            format!("{fd} -> {target}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Target of /proc/<pid>/fd/<fd>.
pub fn fd_target(pid: u32, fd: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// `/proc/<pid>/cmdline` split at NULs.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// /proc/<pid>/comm, trimmed.
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Joins `handles`, panicking when they are not all done within `limit`.
pub fn join_all<T>(handles: Vec<JoinHandle<T>>, limit: Duration) -> Vec<T> {
    let start = Instant::now();
    while !handles.iter().all(|h| h.is_finished()) {
        assert!(
            start.elapsed() < limit,
            "threads did not finish within {limit:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect()
}

/// Asserts that none of `pids` stays a zombie child of ours (a pid that is a
/// zombie for a moment may have been recycled by another test's child, so
/// each gets a second to go away).
pub fn assert_no_zombie(pids: &[u32]) {
    for &pid in pids {
        assert!(
            wait_until(Duration::from_secs(1), || !is_zombie_child(pid)),
            "pid {pid} is left as a zombie child"
        );
    }
}

/// Serializes the tests of one binary that count process-wide things (fds, children, CPU ticks):
/// hold the guard for the whole test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `main` of a `harness = false` test (one that must own its process: `block_sigchld()`
/// before any thread starts, a `fork` while no other test runs). Runs `check` for every case, in
/// order, on this thread; prints `<name>: <what check returned>` for a case that passed and the
/// panic for one that failed, still runs the cases after a failure, and exits with status 1 when
/// any case failed, so that a failure is never silent.
pub fn run_cases<C: Copy>(
    cases: impl IntoIterator<Item = C>,
    name: impl Fn(C) -> String,
    check: impl Fn(C) -> String,
) {
    let mut failed = Vec::new();
    for case in cases {
        let name = name(case);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(case))) {
            Ok(report) => println!("{name}: {report}"),
            Err(_) => {
                // The panic message itself went to stderr through the default hook.
                println!("{name}: FAILED");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("{} case(s) failed: {}", failed.len(), failed.join("; "));
        std::process::exit(1);
    }
}

/// Whether this process holds a signalfd (a Signal-mode loop's SIGCHLD source when SIGCHLD is
/// blocked everywhere).
pub fn has_signalfd() -> bool {
    fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|target| target.to_string_lossy().contains("signalfd"))
}
