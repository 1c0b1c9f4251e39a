//! Exit statuses, return_code/poll/wait/wait_timeout, discard vs pipes, PATH
//! lookup, and the trace (running()/children_of()), on every backend.

#[macro_use]
mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::SpawnBackend;

const GRACE: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(10);

per_backend!(
    true_exits_zero,
    exit_code_is_kept,
    death_by_signal_is_kept,
    program_found_through_path,
    return_code_none_while_running_then_some,
    poll_tracks_exit,
    wait_returns_status,
    wait_from_several_threads,
    wait_timeout_none_then_some,
    wait_timeout_returns_at_exit_not_at_timeout,
    discard_output_gives_no_pipes,
    pipes_carry_stdout_and_stderr,
    take_pipes_only_once,
    pipes_stream_while_running,
    pid_is_the_child,
    running_lists_the_child,
    children_of_separates_owners,
    running_forgets_exited_child,
);

fn true_exits_zero(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/true"], true);
    let s = wait_for(&h, LONG);
    assert!(s.success(), "{s:?}");
    assert_eq!(code(s), Some(0));
    assert_eq!(signal(s), None);
}

fn exit_code_is_kept(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "exit 7"], true);
    let s = wait_for(&h, LONG);
    assert!(!s.success());
    assert_eq!(code(s), Some(7), "{s:?}");
    assert_eq!(signal(s), None);
}

fn death_by_signal_is_kept(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "kill -TERM $$"], true);
    let s = wait_for(&h, LONG);
    assert_eq!(signal(s), Some(libc::SIGTERM), "{s:?}");
    assert_eq!(code(s), None);
    assert!(!s.success());
}

fn program_found_through_path(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["sh", "-c", "exit 3"], true);
    assert_eq!(code(wait_for(&h, LONG)), Some(3));
}

fn return_code_none_while_running_then_some(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sleep", "0.4"], true);
    assert_eq!(h.return_code(), None, "return_code() of a running process");
    let s = wait_for(&h, LONG);
    assert_eq!(code(s), Some(0));
    assert_eq!(h.return_code(), Some(s), "return_code() after wait");
    // Stable on repeated calls.
    assert_eq!(h.return_code(), Some(s));
}

fn poll_tracks_exit(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "sleep 0.3; exit 5"], true);
    assert_eq!(h.poll(), None, "poll() of a running process");
    let mut seen = None;
    let start = Instant::now();
    while start.elapsed() < LONG {
        if let Some(s) = h.poll() {
            seen = Some(s);
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let s = seen.expect("poll() never reported the exit");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "poll() reported an exit before the child could have exited"
    );
    assert_eq!(code(s), Some(5));
    assert_eq!(h.poll(), Some(s));
    assert_eq!(h.return_code(), Some(s));
}

fn wait_returns_status(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = Arc::new(spawn_ok(
        &r.arc(),
        &["/bin/sh", "-c", "sleep 0.2; exit 9"],
        true,
    ));
    let h2 = Arc::clone(&h);
    let s = bounded(LONG, "ExecHandle::wait", move || h2.wait());
    assert_eq!(code(s), Some(9));
    // A second wait returns the same status at once.
    let h3 = Arc::clone(&h);
    let t = Instant::now();
    let again = bounded(LONG, "second ExecHandle::wait", move || h3.wait());
    assert_eq!(again, s);
    assert!(t.elapsed() < Duration::from_secs(1));
}

fn wait_from_several_threads(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = Arc::new(spawn_ok(
        &r.arc(),
        &["/bin/sh", "-c", "sleep 0.3; exit 4"],
        true,
    ));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let h = Arc::clone(&h);
            thread::spawn(move || h.wait())
        })
        .collect();
    let statuses = join_all(waiters, LONG);
    for s in statuses {
        assert_eq!(code(s), Some(4));
    }
}

fn wait_timeout_none_then_some(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sleep", "0.6"], true);
    let t = Instant::now();
    assert_eq!(h.wait_timeout(Duration::from_millis(100)), None);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(90) && took < Duration::from_millis(450),
        "wait_timeout(100ms) on a running process took {took:?}"
    );
    let s = wait_for(&h, LONG);
    assert_eq!(code(s), Some(0));
    // After the exit, wait_timeout answers at once.
    let t = Instant::now();
    assert_eq!(h.wait_timeout(Duration::from_secs(5)), Some(s));
    assert!(t.elapsed() < Duration::from_millis(500));
}

fn wait_timeout_returns_at_exit_not_at_timeout(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sleep", "0.2"], true);
    let t = Instant::now();
    let s = h.wait_timeout(Duration::from_secs(8));
    let took = t.elapsed();
    assert_eq!(s.and_then(code), Some(0));
    assert!(
        took < Duration::from_secs(3),
        "wait_timeout(8s) on a 0.2 s process took {took:?}"
    );
}

fn discard_output_gives_no_pipes(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(
        &r.arc(),
        &["/bin/sh", "-c", "echo hello; echo err >&2"],
        true,
    );
    assert!(h.take_stdout().is_none(), "stdout pipe with discard_output");
    assert!(h.take_stderr().is_none(), "stderr pipe with discard_output");
    // Output to /dev/null must not disturb the child.
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
}

fn pipes_carry_stdout_and_stderr(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(
        &r.arc(),
        &["/bin/sh", "-c", "echo hello; echo err >&2"],
        false,
    );
    let out = h.take_stdout().expect("stdout pipe without discard_output");
    let err = h.take_stderr().expect("stderr pipe without discard_output");
    // Reading to EOF also proves that no other copy of the write ends is left
    // open (in the executor or in another child).
    let out = read_all(out, LONG);
    let err = read_all(err, LONG);
    assert_eq!(String::from_utf8_lossy(&out), "hello\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
}

fn take_pipes_only_once(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/echo", "x"], false);
    let out = h.take_stdout();
    let err = h.take_stderr();
    assert!(out.is_some() && err.is_some());
    assert!(h.take_stdout().is_none(), "second take_stdout");
    assert!(h.take_stderr().is_none(), "second take_stderr");
    assert_eq!(read_all(out.unwrap(), LONG), b"x\n");
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
}

fn pipes_stream_while_running(b: SpawnBackend) {
    // More than a pipe buffer: the child can only finish if we read while it
    // runs.
    let r = start(b, GRACE);
    let h = spawn_ok(
        &r.arc(),
        &["/bin/sh", "-c", "head -c 300000 /dev/zero"],
        false,
    );
    let out = h.take_stdout().unwrap();
    let data = read_all(out, LONG);
    assert_eq!(data.len(), 300_000);
    assert!(data.iter().all(|&b| b == 0));
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
}

fn pid_is_the_child(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sleep", "30"], true);
    let pid = h.pid();
    assert!(pid > 0);
    assert!(
        wait_until(Duration::from_secs(5), || comm(pid).as_deref()
            == Some("sleep")),
        "pid {pid} is not the sleep process: comm {:?}",
        comm(pid)
    );
    assert!(is_live_child(pid), "pid {pid} is not our child");
    let h = Arc::new(h);
    let (s, _) = kill_bounded(&h, LONG);
    assert_eq!(signal(s), Some(libc::SIGTERM));
}

fn running_lists_the_child(b: SpawnBackend) {
    let r = start(b, GRACE);
    let exec = r.arc();
    let before = Instant::now();
    let (h, owner) = bounded(SPAWN_LIMIT, "create_process", move || {
        let h = exec
            .create_process(&["/bin/sleep", "30"], true)
            .expect("spawn sleep");
        (h, thread::current().id())
    });
    let after = Instant::now();
    let pid = h.pid();
    let infos = r.exec().running();
    let info = infos
        .iter()
        .find(|i| i.pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} not in running(): {infos:?}"));
    assert_eq!(info.command, vec!["/bin/sleep", "30"]);
    assert_eq!(info.owner, owner);
    assert!(
        info.started >= before && info.started <= after,
        "started {:?} not within the create_process call",
        info.started
    );
    let mine = r.exec().children_of(owner);
    assert!(mine.iter().any(|i| i.pid == pid), "children_of(owner)");
    let others = r.exec().children_of(thread::current().id());
    assert!(
        others.iter().all(|i| i.pid != pid),
        "children_of(another thread) lists pid {pid}"
    );
    let h = Arc::new(h);
    kill_bounded(&h, LONG);
}

fn children_of_separates_owners(b: SpawnBackend) {
    let r = start(b, GRACE);
    let spawn_from_thread = |exec: Arc<napix_executor::Executor>| {
        bounded(SPAWN_LIMIT, "create_process", move || {
            let a = exec.create_process(&["/bin/sleep", "30"], true).unwrap();
            let b = exec.create_process(&["/bin/sleep", "31"], true).unwrap();
            (a, b, thread::current().id())
        })
    };
    let (a1, a2, ta) = spawn_from_thread(r.arc());
    let (b1, _b2, tb) = spawn_from_thread(r.arc());
    assert_ne!(ta, tb);
    let mut of_a: Vec<u32> = r.exec().children_of(ta).iter().map(|i| i.pid).collect();
    of_a.sort_unstable();
    let mut want = vec![a1.pid(), a2.pid()];
    want.sort_unstable();
    assert_eq!(of_a, want, "children_of(thread A)");
    let of_b = r.exec().children_of(tb);
    assert_eq!(of_b.len(), 2, "children_of(thread B): {of_b:?}");
    assert!(of_b.iter().all(|i| i.owner == tb));
    assert!(of_b.iter().any(|i| i.pid == b1.pid()));
    let all: Vec<u32> = r.exec().running().iter().map(|i| i.pid).collect();
    assert_eq!(all.len(), 4, "running(): {all:?}");
    // After one of A's children ends, A owns one.
    a1.terminate().unwrap();
    wait_for(&a1, LONG);
    assert!(
        wait_until(Duration::from_secs(1), || r.exec().children_of(ta).len()
            == 1),
        "children_of(A) after one exit: {:?}",
        r.exec().children_of(ta)
    );
}

fn running_forgets_exited_child(b: SpawnBackend) {
    let r = start(b, GRACE);
    let h = spawn_ok(&r.arc(), &["/bin/sleep", "0.2"], true);
    let pid = h.pid();
    assert!(r.exec().running().iter().any(|i| i.pid == pid));
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    assert!(
        wait_until(Duration::from_secs(1), || {
            r.exec().running().iter().all(|i| i.pid != pid)
        }),
        "pid {pid} still in running() after it exited: {:?}",
        r.exec().running()
    );
    assert!(r.exec().running().is_empty());
}
