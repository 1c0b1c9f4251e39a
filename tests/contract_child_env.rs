//! What the child gets, seen from inside it (/proc): fds 0, 1, 2 only (even
//! when the host left an fd without CLOEXEC), stdin on /dev/null, stdout and
//! stderr on /dev/null or on the handle's pipes, an empty signal mask and no
//! ignored signal (even when the executor thread blocks signals and the host
//! ignores SIGPIPE and SIGUSR1); on every backend.

#[macro_use]
mod common;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;
use std::sync::{Arc, Once};
use std::time::Duration;

use common::*;
use napix_executor::{ExecHandle, SpawnBackend};

const LONG: Duration = Duration::from_secs(10);

per_backend!(
    only_std_fds_with_discard,
    only_std_fds_with_pipes,
    shell_sees_only_std_fds,
    stdin_is_dev_null,
    signal_state_is_clean,
    signal_state_of_live_child,
    disposition_changed_after_start_is_reset,
);

/// An fd the host opened without CLOEXEC; closed on drop.
struct LeakyFd(i32);

impl LeakyFd {
    fn open() -> LeakyFd {
        let path = CString::new("/dev/zero").unwrap();
        // SAFETY: `path` is a valid NUL-terminated string; no O_CLOEXEC on
        // purpose.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 0, "open /dev/zero");
        // SAFETY: `fd` was just opened; dup gives a second fd without
        // FD_CLOEXEC.
        let dup = unsafe { libc::dup(fd) };
        assert!(dup >= 0, "dup");
        // SAFETY: `fd` was opened above and is owned here.
        unsafe { libc::close(fd) };
        // SAFETY: F_GETFD on an fd we own.
        let flags = unsafe { libc::fcntl(dup, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, 0, "the leaky fd has CLOEXEC");
        LeakyFd(dup)
    }
}

impl Drop for LeakyFd {
    fn drop(&mut self) {
        // SAFETY: the fd was opened by `LeakyFd::open` and is closed once.
        unsafe { libc::close(self.0) };
    }
}

/// The host ignores SIGUSR1 (and, as every Rust program, SIGPIPE).
fn host_ignores_signals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting SIG_IGN for SIGUSR1 has no memory-safety
        // requirements; nothing in this test binary handles SIGUSR1.
        let prev = unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
        assert_ne!(prev, libc::SIG_ERR);
    });
    let me = std::fs::read_to_string("/proc/self/status").unwrap();
    let ign = field_of(&me, "SigIgn").unwrap();
    assert!(
        in_sigset(&ign, libc::SIGPIPE),
        "host does not ignore SIGPIPE"
    );
    assert!(
        in_sigset(&ign, libc::SIGUSR1),
        "host does not ignore SIGUSR1"
    );
}

/// Blocks some signals in the calling thread (the one that will run the
/// loop) and returns that thread's SigBlk as /proc shows it.
fn block_signals_here() -> String {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it and
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGUSR2,
            libc::SIGHUP,
            libc::SIGALRM,
            libc::SIGWINCH,
            libc::SIGTERM,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        assert_eq!(rc, 0);
    }
    let me = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    field_of(&me, "SigBlk").unwrap()
}

/// Starts an executor whose loop thread blocks signals, in a host that
/// ignores SIGPIPE and SIGUSR1.
fn start_hostile(b: SpawnBackend) -> Running {
    host_ignores_signals();
    let exec = common::builder(b)
        .kill_grace(Duration::from_millis(300))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let r = Running::spawn_with(Arc::new(exec), move || {
        let _ = tx.send(block_signals_here());
    });
    let blocked = rx.recv_timeout(LONG).expect("loop thread started");
    assert!(
        in_sigset(&blocked, libc::SIGUSR2) && in_sigset(&blocked, libc::SIGTERM),
        "loop thread mask not set: {blocked}"
    );
    r
}

/// Waits until `h` runs `sleep` (exec done) with exactly fds 0, 1, 2; panics
/// with what it saw otherwise. A correct child converges at once; a leaked fd
/// never goes away.
fn wait_std_fds(h: &ExecHandle) {
    let pid = h.pid();
    let mut last = None;
    let ok = wait_until(Duration::from_secs(3), || {
        let c = comm(pid);
        let fds = fds_of(pid);
        let good = c.as_deref() == Some("sleep") && fds.as_deref() == Some(&[0, 1, 2][..]);
        last = Some((c, fds));
        good
    });
    assert!(
        ok,
        "child {pid} should run sleep with fds [0, 1, 2]; saw (comm, fds) = {last:?}"
    );
}

fn only_std_fds_with_discard(b: SpawnBackend) {
    let leaky = LeakyFd::open();
    let r = start_hostile(b);
    let h = spawn_ok(&r.arc(), &["sleep", "30"], true);
    wait_std_fds(&h);
    for fd in 0..3 {
        assert_eq!(
            fd_target(h.pid(), fd).as_deref(),
            Some("/dev/null"),
            "fd {fd} with discard_output"
        );
    }
    h.terminate().unwrap();
    wait_for(&h, LONG);
    drop(leaky);
}

fn only_std_fds_with_pipes(b: SpawnBackend) {
    let leaky = LeakyFd::open();
    let r = start_hostile(b);
    let h = spawn_ok(&r.arc(), &["sleep", "30"], false);
    wait_std_fds(&h);
    let pid = h.pid();
    assert_eq!(fd_target(pid, 0).as_deref(), Some("/dev/null"), "stdin");
    let out = fd_target(pid, 1).unwrap();
    let err = fd_target(pid, 2).unwrap();
    assert!(out.starts_with("pipe:"), "stdout is {out}");
    assert!(err.starts_with("pipe:"), "stderr is {err}");
    assert_ne!(out, err, "stdout and stderr share a pipe");
    let our_out = h.take_stdout().unwrap();
    let our_err = h.take_stderr().unwrap();
    let me = our_pid();
    assert_eq!(
        fd_target(me, our_out.as_fd().as_raw_fd() as u32).as_deref(),
        Some(out.as_str()),
        "take_stdout() is not the read end of the child's stdout"
    );
    assert_eq!(
        fd_target(me, our_err.as_fd().as_raw_fd() as u32).as_deref(),
        Some(err.as_str()),
        "take_stderr() is not the read end of the child's stderr"
    );
    h.terminate().unwrap();
    wait_for(&h, LONG);
    // The pipes reach EOF.
    assert!(read_all(our_out, LONG).is_empty());
    assert!(read_all(our_err, LONG).is_empty());
    drop(leaky);
}

fn shell_sees_only_std_fds(b: SpawnBackend) {
    let leaky = LeakyFd::open();
    let r = start_hostile(b);
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "ls /proc/$$/fd"], false);
    let out = read_all(h.take_stdout().unwrap(), LONG);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    let fds: Vec<&str> = std::str::from_utf8(&out)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "the shell's fds (host leaked fd {})",
        leaky.0
    );
}

fn stdin_is_dev_null(b: SpawnBackend) {
    let r = start_hostile(b);
    for discard in [false, true] {
        let h = spawn_ok(
            &r.arc(),
            &[
                "/bin/sh",
                "-c",
                "[ \"$(readlink /proc/$$/fd/0)\" = /dev/null ] || exit 1; \
                 [ -z \"$(cat)\" ] || exit 2; exit 0",
            ],
            discard,
        );
        let s = wait_for(&h, LONG);
        assert_eq!(code(s), Some(0), "discard_output={discard}: {s:?}");
    }
}

fn signal_state_is_clean(b: SpawnBackend) {
    let r = start_hostile(b);
    let h = spawn_ok(&r.arc(), &["/bin/cat", "/proc/self/status"], false);
    let out = read_all(h.take_stdout().unwrap(), LONG);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        field_of(&text, "Name").as_deref(),
        Some("cat"),
        "unexpected output: {text}"
    );
    assert_eq!(
        field_of(&text, "SigBlk").as_deref(),
        Some("0000000000000000"),
        "the child's signal mask is not empty"
    );
    assert_eq!(
        field_of(&text, "SigIgn").as_deref(),
        Some("0000000000000000"),
        "the child ignores signals (SIGPIPE is 0x1000, SIGUSR1 0x200)"
    );
    assert_eq!(
        field_of(&text, "SigPnd").as_deref(),
        Some("0000000000000000"),
        "the child has pending signals"
    );
}

fn signal_state_of_live_child(b: SpawnBackend) {
    // The same seen from /proc/<pid> of a live child, and a SIGPIPE that
    // must kill it: a child that ignored SIGPIPE would get EPIPE instead.
    let r = start_hostile(b);
    let h = spawn_ok(&r.arc(), &["sleep", "30"], true);
    let pid = h.pid();
    assert!(wait_until(Duration::from_secs(3), || comm(pid).as_deref()
        == Some("sleep")));
    assert_eq!(
        status_field(pid, "SigBlk").as_deref(),
        Some("0000000000000000")
    );
    assert_eq!(
        status_field(pid, "SigIgn").as_deref(),
        Some("0000000000000000")
    );
    h.send_signal(libc::SIGPIPE).unwrap();
    assert_eq!(signal(wait_for(&h, LONG)), Some(libc::SIGPIPE));
    // And SIGUSR1, which the host ignores, kills by default.
    let h = spawn_ok(&r.arc(), &["sleep", "30"], true);
    let pid = h.pid();
    assert!(wait_until(Duration::from_secs(3), || comm(pid).as_deref()
        == Some("sleep")));
    h.send_signal(libc::SIGUSR1).unwrap();
    assert_eq!(signal(wait_for(&h, LONG)), Some(libc::SIGUSR1));
}

fn disposition_changed_after_start_is_reset(b: SpawnBackend) {
    // The host ignores a signal only after the executor has started and
    // spawned: the child must still get the default. One signal per backend,
    // so that each backend sees the change after its own start.
    let i = SpawnBackend::ALL.iter().position(|x| *x == b).unwrap();
    let sig = [libc::SIGURG, libc::SIGXFSZ, libc::SIGTTOU][i];
    let r = start_hostile(b);
    let h = spawn_ok(&r.arc(), &["/bin/true"], true);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    // SAFETY: ignoring a signal nothing in this binary uses has no
    // memory-safety requirement.
    let prev = unsafe { libc::signal(sig, libc::SIG_IGN) };
    assert_ne!(prev, libc::SIG_ERR);
    assert!(ignores(our_pid(), sig), "host does not ignore {sig}");
    let h = spawn_ok(&r.arc(), &["/bin/cat", "/proc/self/status"], false);
    let out = read_all(h.take_stdout().unwrap(), LONG);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    let text = String::from_utf8(out).unwrap();
    let ign = field_of(&text, "SigIgn").expect("SigIgn in the output");
    assert!(
        !in_sigset(&ign, sig),
        "signal {sig}, ignored by the host after start, is ignored in the child: {ign}"
    );
    assert_eq!(ign, "0000000000000000");
    // SAFETY: as above.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}
