//! Fault: the host closed fd 0, 1 and/or 2 before the executor started, so the next descriptor
//! anyone opens takes one of those numbers.
//!
//! Expected, for every subset of {0, 1, 2}, every backend and both child-watch modes:
//! - the executor's own descriptors (epoll, eventfd, timerfd, `/dev/null`, SIGCHLD source, the
//!   parent ends of pipes) never sit on 0, 1 or 2: those numbers stay closed in the host;
//! - the child gets exactly fds 0, 1, 2: stdin `/dev/null`; stdout and stderr `/dev/null` with
//!   `discard_output`, else the two pipes, each the one the handle reads (checked by inode from
//!   outside through /proc/<pid>/fd, and from inside by a shell that lists `/proc/$$/fd`, reads
//!   the link of its fd 0 and writes to each stream).
//!
//! Closing fds 0-2 is process-wide, so it is the only test of this file; a guard puts them back
//! before the test harness prints anything (also when an assertion fails).

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use common::{
    RUN_WATCHDOG, Running, cmdline, comm, fds_of, kill_bounded, proc_stat, spawn_ok, wait_for,
    wait_until,
};
use napix_executor::{ChildWatch, Executor, SpawnBackend};

const GRACE: Duration = Duration::from_millis(100);

/// Copies of fds 0-2 kept above 100; dropping puts them back on 0-2.
struct SavedStdio {
    saved: [RawFd; 3],
}

impl SavedStdio {
    fn save() -> SavedStdio {
        let mut saved = [-1; 3];
        for (fd, slot) in saved.iter_mut().enumerate() {
            // SAFETY: duplicates a descriptor we have; the copy is ours to close.
            *slot = unsafe { libc::fcntl(fd as RawFd, libc::F_DUPFD_CLOEXEC, 100) };
            assert!(
                *slot >= 100,
                "save fd {fd}: {}",
                std::io::Error::last_os_error()
            );
        }
        SavedStdio { saved }
    }

    fn close(&self, fds: &[RawFd]) {
        for &fd in fds {
            // SAFETY: closes one of 0-2, which nothing in this process owns as an OwnedFd (the
            // standard streams are used by number); the guard restores it.
            unsafe { libc::close(fd) };
        }
    }

    /// Puts the saved copies back on 0-2 (closing whatever took those numbers meanwhile).
    fn restore(&self) {
        for (fd, &copy) in self.saved.iter().enumerate() {
            // SAFETY: dup2 of our saved copy onto a standard number.
            unsafe { libc::dup2(copy, fd as RawFd) };
        }
    }
}

impl Drop for SavedStdio {
    fn drop(&mut self) {
        self.restore();
        for &copy in &self.saved {
            // SAFETY: our own copies.
            unsafe { libc::close(copy) };
        }
    }
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn link(pid: u32, fd: u32) -> String {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("({e})"))
}

fn child_fds(pid: u32) -> Vec<(u32, String)> {
    fds_of(pid)
        .expect("read the child's /proc/<pid>/fd")
        .into_iter()
        .map(|fd| (fd, link(pid, fd)))
        .collect()
}

/// The child's descriptors once `sleep` finished starting up (it opens and closes locale files
/// right after exec): polled until only 0-2 are left, for at most 2 s.
fn settled_fds(pid: u32) -> Vec<(u32, String)> {
    let mut fds = child_fds(pid);
    wait_until(Duration::from_secs(2), || {
        fds = child_fds(pid);
        fd_numbers(&fds) == [0, 1, 2]
    });
    fds
}

fn fd_numbers(fds: &[(u32, String)]) -> Vec<u32> {
    fds.iter().map(|(fd, _)| *fd).collect()
}

fn pipe_name(fd: &impl AsRawFd) -> String {
    // SAFETY: fstat writes a plain struct we own, for a descriptor we hold.
    let st = unsafe {
        let mut st = std::mem::zeroed::<libc::stat>();
        assert_eq!(libc::fstat(fd.as_raw_fd(), &mut st), 0);
        st
    };
    format!("pipe:[{}]", st.st_ino)
}

#[test]
fn closed_stdio_in_the_host_does_not_reach_the_child() {
    let saved = SavedStdio::save();
    let subsets: [&[RawFd]; 7] = [&[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2]];
    let mut cases = 0;
    for closed in subsets {
        for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
            for backend in SpawnBackend::ALL {
                saved.close(closed);
                let what = format!("{} {watch:?} with {closed:?} closed", backend.name());
                one_case(&what, closed, backend, watch);
                // Put 0-2 back between cases (the next case closes its own subset).
                saved.restore();
                cases += 1;
            }
        }
    }
    drop(saved);
    eprintln!("{cases} cases passed");
}

/// Known library bugs (reported, not yet fixed when this was written): two descriptors the
/// executor opens are not moved above fd 2, so with 0-2 closed they become the host's stdio:
/// - the spawner's `/proc/self/status` (read for the signal dispositions): `File::open` in
///   `SignalDispositions::new` (src/sys/mod.rs);
/// - in `ChildWatch::Signal` mode, the write end of the `UnixStream::pair` handed to
///   signal-hook (`SigchldSource::new` in src/reactor.rs moves only the read end): the host's
///   next `println!` then goes into that socket.
///
/// While this is `true` those two are printed instead of failing; set it to `false` once both
/// use `above_stdio`.
const TOLERATE_KNOWN_BUGS: bool = false;

fn known_bug(target: &str, watch: ChildWatch) -> bool {
    TOLERATE_KNOWN_BUGS
        && (target == format!("/proc/{}/status", std::process::id())
            || (watch == ChildWatch::Signal && target.starts_with("socket:[")))
}

fn still_closed(what: &str, watch: ChildWatch, closed: &[RawFd], when: &str) {
    for &fd in closed {
        if !is_open(fd) {
            continue;
        }
        let target = link(std::process::id(), fd as u32);
        if known_bug(&target, watch) {
            eprintln!("KNOWN BUG: {what}: fd {fd} taken {when} by {target}");
            continue;
        }
        panic!("{what}: fd {fd} was taken {when} (by {target})");
    }
}

fn one_case(what: &str, closed: &[RawFd], backend: SpawnBackend, watch: ChildWatch) {
    let ex = Executor::builder()
        .backend(backend)
        .kill_grace(GRACE)
        .child_watch(watch)
        .build()
        .expect("build executor");
    still_closed(what, watch, closed, "by build()");
    let mut r = Running::spawn(Arc::new(ex));

    // discard_output: 0, 1, 2 all /dev/null, nothing else.
    let quiet = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let pid = quiet.pid();
    // create_process returns once the child is past the point of no return of execve (the
    // parent of a vfork resumes when the child drops the old memory), which can be before the
    // new image has its arguments in place: wait for that.
    let want = Some(vec!["sleep".to_string(), "30".to_string()]);
    let started = wait_until(Duration::from_secs(2), || cmdline(pid) == want);
    assert!(
        started,
        "{what}: pid {pid} is not running `sleep 30` (cmdline {:?}, stat {:?}, comm {:?}, status {:?})",
        cmdline(pid),
        proc_stat(pid),
        comm(pid),
        quiet.poll()
    );
    let fds = settled_fds(pid);
    assert_eq!(fd_numbers(&fds), [0, 1, 2], "{what}: child fds {fds:?}");
    for fd in 0..3 {
        assert_eq!(link(pid, fd), "/dev/null", "{what}: discard child fd {fd}");
    }
    still_closed(what, watch, closed, "by run() or a spawn");

    // Pipes: 0 /dev/null, 1 and 2 exactly the pipes the handle reads.
    let piped = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], false));
    let out = piped.take_stdout().expect("stdout pipe");
    let err = piped.take_stderr().expect("stderr pipe");
    assert!(
        out.as_raw_fd() > 2 && err.as_raw_fd() > 2,
        "{what}: pipe ends on 0-2"
    );
    let pid = piped.pid();
    let fds = settled_fds(pid);
    assert_eq!(fd_numbers(&fds), [0, 1, 2], "{what}: child fds {fds:?}");
    assert_eq!(link(pid, 0), "/dev/null", "{what}: child stdin");
    assert_eq!(link(pid, 1), pipe_name(&out), "{what}: child stdout");
    assert_eq!(link(pid, 2), pipe_name(&err), "{what}: child stderr");
    still_closed(what, watch, closed, "by a spawn with pipes");

    // From the inside: the shell lists its own fds and writes to both streams.
    let talk = spawn_ok(
        &r.arc(),
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; ls /proc/$$/fd; readlink /proc/$$/fd/0",
        ],
        false,
    );
    let mut said = String::new();
    talk.take_stdout()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    let mut complained = String::new();
    talk.take_stderr()
        .unwrap()
        .read_to_string(&mut complained)
        .unwrap();
    assert_eq!(
        said, "out\n0\n1\n2\n/dev/null\n",
        "{what}: what the child saw"
    );
    assert_eq!(complained, "err\n", "{what}: child stderr");
    assert_eq!(wait_for(&talk, Duration::from_secs(10)).code(), Some(0));

    for h in [&quiet, &piped] {
        kill_bounded(h, GRACE + Duration::from_secs(10));
    }
    drop((out, err));
    r.stop_and_join(GRACE + RUN_WATCHDOG);
    still_closed(what, watch, closed, "at the end");
}
