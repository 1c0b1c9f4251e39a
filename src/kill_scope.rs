//! Signalling every process of a child's cgroup without naming a stranger.
//!
//! SIGKILL is one write to `cgroup.kill` (the kernel walks the cgroup and its descendants, even
//! processes forked meanwhile). Any other signal goes to each process listed in `cgroup.procs`
//! (of the cgroup and every cgroup below it) through a pidfd: the pidfd is opened first, then the
//! process's `/proc/<pid>/cgroup` is checked, then a probe through the pidfd confirms that the
//! process read about is still the one the pidfd names (a pid cannot be reused while its process
//! lives), and only then is the signal sent.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// Sends `signal` to every process in the cgroup at `path` and below.
pub(crate) fn signal_cgroup(path: &Path, signal: i32) -> io::Result<()> {
    if signal == libc::SIGKILL {
        return crate::cgroup::kill(path);
    }
    let mountpoint = crate::cgroup::cgroup2_mount()?;
    let Ok(relative) = path.strip_prefix(&mountpoint) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cgroup {}: not under {}",
                path.display(),
                mountpoint.display()
            ),
        ));
    };
    let expected = format!("0::/{}", relative.display());
    let mut sent = false;
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            continue;
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            sent |= signal_member(pid, &expected, signal);
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    if sent {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::ESRCH))
    }
}

/// Signals `pid` if, through a pidfd, it is a live process whose cgroup starts with `expected`.
fn signal_member(pid: i32, expected: &str, signal: i32) -> bool {
    let Some(pid) = Pid::from_raw(pid) else {
        return false;
    };
    let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
        return false;
    };
    let Ok(cgroup) = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.as_raw_nonzero()))
    else {
        return false;
    };
    let inside = cgroup.lines().any(|l| {
        l.strip_prefix(expected)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    // Still alive after the read: the file described the process the pidfd names.
    inside
        && crate::sys::pidfd_send_signal(fd.as_fd(), 0).is_ok()
        && crate::sys::pidfd_send_signal(fd.as_fd(), signal).is_ok()
}
