//! `SpawnSite::CallingThread` (the default): the calling thread clones the child, on every
//! backend and in both watch modes, and the executor's loop still alone reaps, escalates and
//! tracks it. On every backend and watch mode: where the child was cloned (seen through the CPU affinity it inherits from the
//! spawning thread), the child's fds and signal state when the calling thread blocks signals,
//! typed errors, kill, timeout, the trace, a parent-death signal kept on the executor thread,
//! and spawns racing stop().

#[macro_use]
mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use napix_executor::{Command, SpawnBackend, SpawnError, SpawnSite};

const LONG: Duration = Duration::from_secs(10);

per_backend!(
    the_child_is_cloned_by_the_documented_thread,
    a_calling_thread_with_blocked_signals_gives_a_clean_child,
    errors_are_typed_on_the_calling_thread,
    kill_timeout_and_trace_work,
    a_parent_death_signal_does_not_follow_the_calling_thread,
    spawns_racing_stop_leave_no_child_behind,
    the_timeline_of_a_calling_thread_spawn_has_no_hand_off_in,
);

fn start_sited(b: SpawnBackend) -> Running {
    looping(
        common::builder(b)
            .spawn_site(SpawnSite::CallingThread)
            .kill_grace(Duration::from_millis(300)),
    )
}

/// Builds the executor and starts its loop, and returns once the loop serves requests: until
/// then a spawn goes through the queue (a loop that never comes must not leave a child
/// unreaped), which would hide the site under test.
fn looping(builder: napix_executor::ExecutorBuilder) -> Running {
    let r = Running::spawn(Arc::new(builder.build().expect("build")));
    let served = spawn_ok(&r.arc(), &["true"], true);
    assert!(wait_for(&served, LONG).success());
    r
}

/// Whether this test's executor clones on the calling thread (else on its spawner thread):
/// every backend and watch mode does.
fn clones_on_caller(_: SpawnBackend) -> bool {
    true
}

/// The CPUs this thread may run on, from /proc.
fn my_cpus() -> String {
    let me = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    field_of(&me, "Cpus_allowed_list").unwrap()
}

/// Pins the calling thread to its first allowed CPU; returns that CPU, or `None` when the
/// thread may run on one CPU only (then affinity cannot tell the threads apart).
fn pin_to_one_cpu() -> Option<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity/sched_setaffinity with pid 0 read and
    // change the calling thread's own mask.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
        if libc::CPU_COUNT(&set) < 2 {
            return None;
        }
        let first = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set))?;
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        assert_eq!(libc::sched_setaffinity(0, size, &one), 0);
        Some(first)
    }
}

/// A child inherits the CPU affinity of the thread that cloned it: pinned, the calling thread
/// sees its own mask in the child exactly when the site applies.
fn the_child_is_cloned_by_the_documented_thread(b: SpawnBackend) {
    let r = start_sited(b);
    let exec = r.arc();
    let seen = thread::spawn(move || {
        let cpu = pin_to_one_cpu()?;
        let h = exec.create_process(&["sleep", "30"], true).expect("spawn");
        let child = status_field(h.pid(), "Cpus_allowed_list");
        h.terminate().unwrap();
        wait_for(&h, LONG);
        Some((cpu, child, my_cpus()))
    })
    .join()
    .expect("spawning thread");
    let Some((cpu, child, caller)) = seen else {
        eprintln!("one CPU allowed: affinity cannot tell where the child was cloned");
        return;
    };
    let child = child.expect("the child's /proc status while it ran");
    assert_eq!(caller, cpu.to_string());
    if clones_on_caller(b) {
        assert_eq!(child, caller, "cloned by the calling thread");
    } else {
        assert_ne!(
            child, caller,
            "cloned by the spawner thread, not the pinned caller"
        );
    }
}

/// The calling thread blocks signals and the host ignores SIGPIPE (every Rust program): the
/// child still gets an empty mask, no ignored signal, and fds 0, 1, 2 only.
fn a_calling_thread_with_blocked_signals_gives_a_clean_child(b: SpawnBackend) {
    let r = start_sited(b);
    let exec = r.arc();
    let (fds, status) = bounded(LONG, "spawn with blocked signals", move || {
        // SAFETY: sigset_t is plain data; pthread_sigmask changes this helper thread's mask only.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGUSR2, libc::SIGTERM, libc::SIGCHLD] {
                libc::sigaddset(&mut set, sig);
            }
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
        let run = |argv: &[&str]| {
            let h = exec.create_process(argv, false).expect("spawn");
            let out = read_all(h.take_stdout().expect("piped"), LONG);
            let status = wait_for(&h, LONG);
            assert_eq!(code(status), Some(0), "{argv:?}");
            String::from_utf8(out).expect("utf-8")
        };
        (
            run(&["/bin/sh", "-c", "ls /proc/$$/fd"]),
            run(&["/bin/cat", "/proc/self/status"]),
        )
    });
    let fds: Vec<&str> = fds.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2"], "the shell's fds");
    for field in ["SigBlk", "SigIgn"] {
        let mask = field_of(&status, field).unwrap_or_else(|| panic!("{field} in {status}"));
        assert!(
            mask.chars().all(|c| c == '0'),
            "{field} of the child is {mask}"
        );
    }
}

/// Exec failures come back as typed errors naming the program, and a bad option fails before
/// anything is spawned; the executor keeps serving.
fn errors_are_typed_on_the_calling_thread(b: SpawnBackend) {
    let r = start_sited(b);
    let exec = r.arc();
    let kinds = bounded(LONG, "failing spawns", move || {
        let kind = |argv: &[&str]| match exec.create_process(argv, true) {
            Ok(h) => panic!("{argv:?} spawned (pid {})", h.pid()),
            Err(e) => {
                assert!(e.to_string().contains(argv[0]), "{e} names {}", argv[0]);
                std::io::Error::from(e).kind()
            }
        };
        let mut cmd = Command::new("true");
        cmd.current_dir("/nonexistent/dir");
        let bad_dir = exec.spawn(&cmd).map(|h| h.pid());
        (
            kind(&["/nonexistent/program"]),
            kind(&["/etc/passwd"]),
            kind(&["/etc/passwd/child"]),
            bad_dir,
            exec.create_process(&["true"], true).expect("spawn").wait(),
        )
    });
    assert_eq!(kinds.0, std::io::ErrorKind::NotFound);
    assert_eq!(kinds.1, std::io::ErrorKind::PermissionDenied);
    assert_eq!(kinds.2, std::io::ErrorKind::NotADirectory);
    assert!(
        matches!(kinds.3, Err(SpawnError::OptionFailed { .. })),
        "a missing working directory: {:?}",
        kinds.3
    );
    assert!(kinds.4.success(), "the executor serves on after errors");
}

/// kill() escalates, a command's timeout fires (its deadline set by the executor thread), and
/// the trace names the calling thread as the owner.
fn kill_timeout_and_trace_work(b: SpawnBackend) {
    let r = start_sited(b);
    let exec = r.arc();
    let (owner, h) = bounded(LONG, "spawn sleep", move || {
        let h = exec.create_process(&["sleep", "30"], true).expect("spawn");
        (thread::current().id(), h)
    });
    let info = r
        .exec()
        .running()
        .into_iter()
        .find(|p| p.pid == h.pid())
        .expect("the child is in the trace");
    assert_eq!(info.owner, owner);
    assert_eq!(r.exec().children_of(owner).len(), 1);
    let h = Arc::new(h);
    let (status, _) = kill_bounded(&h, LONG);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(r.exec().running().iter().all(|p| p.pid != h.pid()));

    let mut cmd = Command::new("sleep");
    cmd.arg("30").timeout(Duration::from_millis(200));
    let timed = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    let status = wait_for(&timed, LONG);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(timed.timed_out());
}

/// PR_SET_PDEATHSIG fires when the spawning *thread* exits: such a command is spawned by the
/// executor thread, so the caller's thread exiting does not kill it.
fn a_parent_death_signal_does_not_follow_the_calling_thread(b: SpawnBackend) {
    let r = start_sited(b);
    let exec = r.arc();
    let spawned = thread::spawn(move || {
        let mut cmd = Command::new("sleep");
        cmd.arg("30").parent_death_signal(libc::SIGKILL);
        exec.spawn(&cmd)
    })
    .join()
    .expect("the spawning thread exits here");
    let h = match spawned {
        Ok(h) => h,
        // posix_spawn has no step for it (tested with the lifetime options).
        Err(SpawnError::UnsupportedOption { .. }) if b == SpawnBackend::PosixSpawn => return,
        Err(e) => panic!("spawn: {e}"),
    };
    // A parent-death signal would have come with the thread's exit.
    assert_eq!(h.wait_timeout(Duration::from_millis(300)), None);
    assert!(is_live_child(h.pid()));
    h.terminate().unwrap();
    assert_eq!(wait_for(&h, LONG).signal(), Some(libc::SIGTERM));
}

/// Threads spawn in a loop while stop() comes: each spawn is refused (`Stopped`) or gives a
/// handle whose child the executor kills and reaps before run() returns. No child is left
/// running or a zombie.
fn spawns_racing_stop_leave_no_child_behind(b: SpawnBackend) {
    let mut r = start_sited(b);
    let stopping = Arc::new(AtomicBool::new(false));
    let spawners: Vec<_> = (0..4)
        .map(|_| {
            let (exec, stopping) = (r.arc(), stopping.clone());
            thread::spawn(move || {
                let mut handles = Vec::new();
                loop {
                    match exec.create_process(&["sleep", "30"], true) {
                        Ok(h) => handles.push(h),
                        Err(SpawnError::Stopped) => break,
                        Err(e) => panic!("unexpected spawn error: {e}"),
                    }
                    if stopping.load(Ordering::Relaxed) && handles.len() > 1000 {
                        panic!("spawns still accepted long after stop()");
                    }
                }
                handles
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    stopping.store(true, Ordering::Relaxed);
    r.stop_and_join(LONG);
    let handles: Vec<_> = join_all(spawners, LONG).into_iter().flatten().collect();
    assert!(!handles.is_empty(), "nothing was spawned before stop()");
    for h in &handles {
        let status = h.return_code().unwrap_or_else(|| {
            panic!("pid {} has no status after run() returned", h.pid());
        });
        assert_eq!(status.signal(), Some(libc::SIGTERM), "pid {}", h.pid());
    }
    let pids: Vec<u32> = handles.iter().map(|h| h.pid()).collect();
    assert_no_zombie(&pids);
}

/// With a timeline, a child the calling thread cloned has no queue to wait in: its hand-off in
/// is nil and every later instant is recorded in order.
fn the_timeline_of_a_calling_thread_spawn_has_no_hand_off_in(b: SpawnBackend) {
    let r = looping(
        common::builder(b)
            .spawn_site(SpawnSite::CallingThread)
            .timeline(true),
    );
    let h = spawn_ok(&r.arc(), &["true"], true);
    assert!(wait_for(&h, LONG).success());
    let t = h.timeline().expect("built with timeline(true)");
    let hand_off_in = t.hand_off_in().expect("queued and spawn_started");
    if clones_on_caller(b) {
        assert_eq!(hand_off_in, Duration::ZERO);
    }
    let order = [
        t.spawn_started,
        t.spawned,
        t.exit_observed,
        t.reaped,
        t.wait_returned,
    ];
    assert!(order.iter().all(Option::is_some), "{t:?}");
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
    assert!(t.replied.is_some_and(|at| Some(at) >= t.spawned), "{t:?}");
}
