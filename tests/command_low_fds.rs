//! The closed-stdio trap with caller-given descriptors: the host closed fds 0, 1 and 2, so the
//! pipe and file it hands to a `Command` sit on 0, 1 and 2 themselves. The child must still get
//! them where asked (a `dup2` onto its own number would keep close-on-exec, and installing stdin
//! first would overwrite a stdout source on fd 0), on every backend and both child-watch modes.
//!
//! Closing fds 0-2 is process-wide, so it is the only test of this file; a guard puts them back
//! (also when an assertion fails).

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use common::{spawn_command, spawn_ok, start_with_watch, wait_for};
use napix_executor::{ChildWatch, Command, SpawnBackend, Stdio};

/// Copies of fds 0-2 kept above 100; dropping puts them back on 0-2.
struct SavedStdio([RawFd; 3]);

impl SavedStdio {
    fn save_and_close() -> SavedStdio {
        let mut saved = [-1; 3];
        for (fd, slot) in saved.iter_mut().enumerate() {
            // SAFETY: duplicates a descriptor we have; the copy is ours to close.
            *slot = unsafe { libc::fcntl(fd as RawFd, libc::F_DUPFD_CLOEXEC, 100) };
            assert!(*slot >= 100, "save fd {fd}");
        }
        for fd in 0..3 {
            // SAFETY: closes a standard number, used by number only; restored on drop.
            unsafe { libc::close(fd) };
        }
        SavedStdio(saved)
    }
}

impl Drop for SavedStdio {
    fn drop(&mut self) {
        for (fd, &copy) in self.0.iter().enumerate() {
            // SAFETY: dup2 of our saved copy onto a standard number, then close the copy.
            unsafe {
                libc::dup2(copy, fd as RawFd);
                libc::close(copy);
            }
        }
    }
}

#[test]
fn caller_descriptors_on_0_1_2_reach_the_child() {
    let mut want = Vec::new();
    std::fs::File::open("/etc/passwd")
        .expect("open")
        .read_to_end(&mut want)
        .expect("read");
    want.extend_from_slice(b"out\nerr\n");
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            let r = start_with_watch(backend, watch, Duration::from_millis(100));
            // Served once the loop runs: the loop thread's own start-up (its reserve descriptor
            // for /proc, opened then moved above 2) is over before stdio is closed below, so
            // the numbers the trap expects are free.
            let warm = spawn_ok(&r.arc(), &["/bin/true"], true);
            assert!(wait_for(&warm, Duration::from_secs(10)).success());
            let got = {
                let _guard = SavedStdio::save_and_close();
                let (read, write) = std::io::pipe().expect("pipe");
                let read = OwnedFd::from(read);
                let write = OwnedFd::from(write);
                let file = OwnedFd::from(std::fs::File::open("/etc/passwd").expect("open"));
                let numbers = [read.as_raw_fd(), write.as_raw_fd(), file.as_raw_fd()];
                let mut cmd = Command::new("sh");
                cmd.args(["-c", "cat <&5; echo out; echo err >&2"])
                    .stdout(write)
                    .stderr(Stdio::merge_stdout())
                    .fd(5, file);
                let handle = spawn_command(&r.arc(), &Arc::new(cmd));
                // The command (our write end) is dropped: EOF once the child is done.
                let mut got = Vec::new();
                let mut reader = std::fs::File::from(read);
                let read_result = reader.read_to_end(&mut got);
                let status = handle
                    .as_ref()
                    .ok()
                    .map(|h| wait_for(h, Duration::from_secs(10)));
                (numbers, handle.err(), read_result.err(), status, got)
            };
            let (numbers, spawn_err, read_err, status, got) = got;
            assert_eq!(
                numbers,
                [0, 1, 2],
                "{backend:?} {watch:?}: the trap was set"
            );
            assert_eq!(spawn_err, None, "{backend:?} {watch:?}");
            assert!(read_err.is_none(), "{backend:?} {watch:?}: {read_err:?}");
            assert!(status.is_some_and(|s| s.success()), "{backend:?} {watch:?}");
            assert!(
                got == want,
                "{backend:?} {watch:?}: got {:?}",
                String::from_utf8_lossy(&got)
            );
            drop(r);
        }
    }
}
