//! Helpers for the fault tests (`tests/fault_*.rs`): an executor whose loop runs on a background
//! thread and is stopped and joined with a watchdog, bounded waits, and /proc readers.
//!
//! No test may hang: every blocking call goes through [`bounded`] or a `wait_timeout`, and the
//! guard's drop panics if `run()` does not return after `stop()`.
#![allow(dead_code)]

#[path = "../fuzz_logic/procfs.rs"]
pub mod procfs;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use napix_executor::{ExecHandle, Executor, SpawnBackend, SpawnError};

/// How long `run()` may take to return after `stop()` (beyond the kill grace).
pub const RUN_WATCHDOG: Duration = Duration::from_secs(20);

/// An executor with its `run()` loop on a background thread.
pub struct Running {
    pub ex: Arc<Executor>,
    grace: Duration,
    run: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    pub fn start(backend: SpawnBackend, grace: Duration) -> Running {
        let ex = Executor::builder()
            .backend(backend)
            .kill_grace(grace)
            .build()
            .expect("build executor");
        Running::with(Arc::new(ex), grace)
    }

    pub fn with(ex: Arc<Executor>, grace: Duration) -> Running {
        let for_loop = Arc::clone(&ex);
        let run = thread::Builder::new()
            .name("executor-run".into())
            .spawn(move || for_loop.run())
            .expect("spawn the run() thread");
        Running {
            ex,
            grace,
            run: Some(run),
        }
    }

    /// `create_process` that panics on an error or after 10 s.
    pub fn spawn<S: AsRef<OsStr>>(&self, command: &[S], discard_output: bool) -> ExecHandle {
        match self.try_spawn(command, discard_output) {
            Ok(h) => h,
            Err(e) => panic!("create_process failed: {e} ({e:?})"),
        }
    }

    /// `create_process` bounded by 10 s.
    pub fn try_spawn<S: AsRef<OsStr>>(
        &self,
        command: &[S],
        discard_output: bool,
    ) -> Result<ExecHandle, SpawnError> {
        let ex = Arc::clone(&self.ex);
        let command: Vec<_> = command.iter().map(|s| s.as_ref().to_owned()).collect();
        let what = format!("create_process({command:?})");
        bounded(Duration::from_secs(10), &what, move || {
            ex.create_process(&command, discard_output)
        })
    }

    /// `stop()`, then waits for `run()` to return; returns how long that took.
    pub fn stop_and_join(&mut self) -> Duration {
        let t = Instant::now();
        self.ex.stop();
        let handle = self.run.take().expect("already joined");
        let limit = self.grace + RUN_WATCHDOG;
        while !handle.is_finished() {
            assert!(
                t.elapsed() < limit,
                "run() did not return within {limit:?} after stop()"
            );
            thread::sleep(Duration::from_millis(2));
        }
        match handle.join() {
            Ok(Ok(())) => t.elapsed(),
            Ok(Err(e)) => panic!("run() returned an error: {e}"),
            Err(_) => panic!("run() panicked"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.run.is_none() {
            return;
        }
        if thread::panicking() {
            // Best effort: stop, and do not wait forever for a broken loop.
            self.ex.stop();
            let h = self.run.take().unwrap();
            let t = Instant::now();
            while !h.is_finished() && t.elapsed() < self.grace + RUN_WATCHDOG {
                thread::sleep(Duration::from_millis(5));
            }
            return;
        }
        self.stop_and_join();
    }
}

/// Runs `f` on a helper thread; panics if it does not finish within `limit`.
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
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// The status of `h`, waiting at most `limit`.
pub fn status_within(h: &ExecHandle, limit: Duration) -> ExitStatus {
    h.wait_timeout(limit)
        .unwrap_or_else(|| panic!("pid {} did not exit within {limit:?}", h.pid()))
}

/// Polls `cond` every 5 ms for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A field of /proc/<pid>/status, trimmed.
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then(|| v.trim().to_string())
    })
}

/// Whether `pid` ignores `sig` (SigIgn of /proc/<pid>/status).
pub fn ignores(pid: u32, sig: i32) -> bool {
    status_field(pid, "SigIgn")
        .and_then(|m| u64::from_str_radix(&m, 16).ok())
        .is_some_and(|bits| bits & (1 << (sig - 1)) != 0)
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

/// Whether `pid` is a child of this process (alive or zombie).
pub fn is_our_child(pid: u32) -> bool {
    procfs::stat(pid).is_some_and(|(_, ppid, _)| ppid == std::process::id())
}

/// The children of this process, waiting up to `limit` for them to be gone; panics with the list
/// if some remain.
pub fn assert_no_children(limit: Duration) {
    let gone = wait_until(limit, || procfs::children().is_empty());
    assert!(gone, "processes of ours left: {:?}", procfs::children());
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

/// `kill()` on a helper thread, bounded by `limit`.
pub fn kill_within(h: &Arc<ExecHandle>, limit: Duration) -> ExitStatus {
    let h = Arc::clone(h);
    bounded(limit, "ExecHandle::kill", move || h.kill())
}
