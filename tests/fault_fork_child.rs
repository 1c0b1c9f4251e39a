//! Fault: the host forks without exec (a pre-fork server, a daemonizing library) while an
//! executor runs. The child inherits the executor but not its loop thread, and shares its
//! descriptors (epoll set, pidfds) with the parent.
//!
//! Wanted, on every backend in both child-watch modes: in the forked child `create_process` and
//! `run` fail at once with `SpawnError::ForkedChild` naming the parent; so do the signalling
//! methods of a handle inherited from the parent (`send_signal`, `terminate`, `start_kill`), and
//! dropping an inherited `kill_on_drop` handle kills nothing; `stop` and dropping the executor
//! leave the parent's executor and children alone; an executor the child builds itself works.
//! The parent's executor goes on as if nothing happened.
//!
//! Regression tests: `create_process` in the forked child blocked for good (here the child's
//! `alarm` would end it with SIGALRM); `send_signal` on an inherited handle killed the parent's
//! child in pidfd mode and blocked for good in signal mode, and `start_kill` did nothing and
//! said `Ok`.
//!
//! A plain `main` (`harness = false`): one thread forks at a time, and the child only reports
//! through a pipe and `_exit`s, never returns into a test harness.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{is_live_child, run_cases};
use napix_executor::{ChildWatch, Command, ExecHandle, Executor, SpawnBackend, SpawnError};

const LIMIT: Duration = Duration::from_secs(10);
/// The forked child's own deadline: a hang becomes SIGALRM.
const CHILD_ALARM: u32 = 5;

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors nothing else owns.
    unsafe {
        (
            OwnedFd::from_raw_fd(fds[0]).into(),
            OwnedFd::from_raw_fd(fds[1]).into(),
        )
    }
}

/// What the forked child checks; `Err` says what went wrong.
/// Every signalling method of a handle inherited from the parent fails with `ForkedChild` and
/// sends nothing; dropping a `kill_on_drop` one kills nothing.
fn inherited_handles_refuse_to_signal(
    parent: u32,
    sleeper: &ExecHandle,
    doomed: ExecHandle,
) -> Result<(), String> {
    let me = std::process::id();
    let forked_child = |what: &str, got: std::io::Result<()>| -> Result<(), String> {
        let e = match got {
            Err(e) => e,
            Ok(()) => return Err(format!("{what} on an inherited handle said Ok")),
        };
        match e.get_ref().and_then(|e| e.downcast_ref::<SpawnError>()) {
            Some(SpawnError::ForkedChild { owner, caller })
                if *owner == parent && *caller == me && e.kind() == std::io::ErrorKind::Other =>
            {
                Ok(())
            }
            _ => Err(format!("{what} on an inherited handle gave {e:?}")),
        }
    };
    forked_child("send_signal(SIGKILL)", sleeper.send_signal(libc::SIGKILL))?;
    forked_child("send_signal(0)", sleeper.send_signal(0))?;
    forked_child("terminate", sleeper.terminate())?;
    forked_child("start_kill", sleeper.start_kill())?;
    forked_child("start_kill", doomed.start_kill())?;
    // A number that is no signal is still EINVAL first, wherever it is asked.
    match sleeper.send_signal(-1) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        other => return Err(format!("send_signal(-1) gave {other:?}")),
    }
    drop(doomed);
    Ok(())
}

fn in_the_child(
    ex: Arc<Executor>,
    parent: u32,
    backend: SpawnBackend,
    watch: ChildWatch,
    handles: (&ExecHandle, ExecHandle),
) -> Result<String, String> {
    let me = std::process::id();
    inherited_handles_refuse_to_signal(parent, handles.0, handles.1)?;
    let t = Instant::now();
    let inherited = ex.create_process(&["true"], true);
    let took = t.elapsed();
    match inherited {
        Err(SpawnError::ForkedChild { owner, caller }) if owner == parent && caller == me => {}
        other => return Err(format!("create_process in the forked child gave {other:?}")),
    }
    if took > Duration::from_secs(1) {
        return Err(format!("create_process took {took:?} to fail"));
    }
    let message = SpawnError::ForkedChild {
        owner: parent,
        caller: me,
    }
    .to_string();
    if !message.contains(&format!("belongs to process {parent}")) {
        return Err(format!("the message does not name the owner: {message}"));
    }
    match ex.run() {
        Err(e) if e.kind() == std::io::ErrorKind::Other => {}
        other => return Err(format!("run() in the forked child gave {other:?}")),
    }
    ex.stop();
    // The run thread's reference died with the fork: this drop is the last one here. It must not
    // kill the parent's children through the inherited pidfds or pids.
    let raw = Arc::into_raw(ex);
    // SAFETY: the parent's run thread holds one strong count and does not exist in this process;
    // giving it up leaves exactly ours, which from_raw takes back and the drop releases.
    let ex = unsafe {
        Arc::decrement_strong_count(raw);
        Arc::from_raw(raw)
    };
    drop(ex);
    // The child's own executor works.
    let own = Arc::new(
        Executor::builder()
            .backend(backend)
            .child_watch(watch)
            .build()
            .map_err(|e| format!("Executor::new in the child: {e}"))?,
    );
    let runner = {
        let own = own.clone();
        std::thread::spawn(move || own.run())
    };
    let h = own
        .create_process(&["sh", "-c", "exit 7"], true)
        .map_err(|e| format!("the child's own executor: {e}"))?;
    let status = h.wait_timeout(LIMIT);
    own.stop();
    let _ = runner.join();
    if status.and_then(|s| s.code()) != Some(7) {
        return Err(format!("the child's own executor gave {status:?}"));
    }
    Ok(format!("create_process failed in {took:?}: {message}"))
}

fn check(backend: SpawnBackend, watch: ChildWatch) -> String {
    let what = format!("{backend:?} {watch:?}");
    let ex = Arc::new(
        Executor::builder()
            .backend(backend)
            .child_watch(watch)
            .kill_grace(Duration::from_millis(200))
            .build()
            .expect("build"),
    );
    let runner = {
        let ex = ex.clone();
        std::thread::spawn(move || ex.run())
    };
    let sleeper = ex
        .create_process(&["sleep", "30"], true)
        .expect("spawn sleep");
    let doomed = {
        let mut c = Command::new("sleep");
        c.arg("30").kill_on_drop(true);
        ex.spawn(&c).expect("spawn kill_on_drop sleep")
    };
    let doomed_pid = doomed.pid();
    let parent = std::process::id();
    let (mut read, mut write) = pipe();
    // SAFETY: fork in a test; the child runs the checks above (glibc makes malloc usable after
    // fork), reports through the pipe and leaves with _exit, never unwinding into the caller.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(read);
        // SAFETY: alarm has no preconditions; SIGALRM's default action ends the child.
        unsafe { libc::alarm(CHILD_ALARM) };
        // Moved, not cloned: with the run thread's count given up, the child's drop is the last.
        let sleeper = std::panic::AssertUnwindSafe(&sleeper);
        let result = std::panic::catch_unwind(move || {
            in_the_child(ex, parent, backend, watch, (*sleeper, doomed))
        });
        let (code, text) = match result {
            Ok(Ok(text)) => (0, text),
            Ok(Err(text)) => (1, text),
            Err(_) => (2, "panicked".to_string()),
        };
        let _ = write.write_all(text.as_bytes());
        // SAFETY: leaves the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(write);
    let mut report = String::new();
    read.read_to_string(&mut report)
        .expect("read the child's report");
    let mut raw = 0;
    // SAFETY: waits for the child we forked; `raw` is ours.
    assert_eq!(unsafe { libc::waitpid(pid, &mut raw, 0) }, pid);
    assert!(
        libc::WIFEXITED(raw) && libc::WEXITSTATUS(raw) == 0,
        "{what}: forked child: {report:?}; wait status {raw:#x} (signal {} = SIGALRM means it hung)",
        if libc::WIFSIGNALED(raw) {
            libc::WTERMSIG(raw)
        } else {
            0
        }
    );
    // The parent's executor and child are untouched.
    assert!(
        is_live_child(sleeper.pid()),
        "{what}: the parent's child was killed from the fork"
    );
    assert!(
        is_live_child(doomed_pid),
        "{what}: the parent's kill_on_drop child was killed from the fork"
    );
    assert!(
        !ex.is_stopped(),
        "{what}: the fork stopped the parent's executor"
    );
    let h = ex
        .create_process(&["sh", "-c", "exit 3"], true)
        .expect("parent spawn");
    assert_eq!(
        h.wait_timeout(LIMIT).and_then(|s| s.code()),
        Some(3),
        "{what}"
    );
    assert_eq!(sleeper.kill().code(), None, "{what}: sleep ends by SIGTERM");
    ex.stop();
    runner.join().expect("run thread").expect("run()");
    format!("forked child: {report}")
}

fn main() {
    let cases = [ChildWatch::Pidfd, ChildWatch::Signal]
        .into_iter()
        .flat_map(|watch| SpawnBackend::ALL.map(|backend| (backend, watch)));
    run_cases(
        cases,
        |(backend, watch)| format!("{backend:?} {watch:?}"),
        |(backend, watch)| check(backend, watch),
    );
}
