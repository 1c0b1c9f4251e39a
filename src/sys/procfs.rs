//! What `/proc/<pid>/stat` says about a process: its start time, which together with the pid
//! names one process for good.
//!
//! A pid alone is recycled once the process is reaped; when the kernel reaps a child behind the
//! executor's back (the host ignores SIGCHLD) the number may go to a stranger before the executor
//! looks. The start time (field 22, in clock ticks since boot) of the process now holding the pid
//! tells the two apart: a process that took over the pid started later.
//!
//! The limit: the start time counts clock ticks (`USER_HZ`, 100 a second), so a process that got
//! the pid within the same tick as the child's own start looks the same. That needs the whole pid
//! space to wrap within 10 ms.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;

use rustix::process::Pid;

/// `stat` is at most 52 numbers after a 16-byte name: well under this.
const STAT_MAX: usize = 2048;

/// The start time (clock ticks after boot) of process `pid`: `Ok(None)` when no process has that
/// pid (`ENOENT`/`ESRCH`: it was reaped), an error when `/proc` cannot be read at all.
pub(crate) fn start_time(pid: Pid) -> io::Result<Option<u64>> {
    use std::io::Read;
    let mut buf = [0u8; STAT_MAX];
    let path = format!("/proc/{}/stat", pid.as_raw_nonzero());
    let read = std::fs::File::open(path).and_then(|mut f| {
        let mut n = 0;
        // One read normally returns the whole line; loop for a short read all the same.
        loop {
            match f.read(&mut buf[n..]) {
                Ok(0) => return Ok(n),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if n == buf.len() {
                return Ok(n);
            }
        }
    });
    match read {
        Ok(n) => parse_start_time(&buf[..n]).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected /proc/<pid>/stat format",
            )
        }),
        // A reaped process's files read ESRCH when opened before and read after the reap.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        // No such process, unless there is no /proc at all (a chroot or container without it).
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            if std::path::Path::new("/proc/self/stat").exists() {
                Ok(None)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// Reads start times also when the process is out of descriptors: one descriptor (`/dev/null`)
/// is held in reserve and given up for the read when opening `/proc/<pid>/stat` fails with
/// `EMFILE` or `ENFILE`. A child that could not get its pidfd failed for exactly that reason, and
/// without its start time it would be named by its pid alone. The reserve is taken back right
/// after the read (the number it gave up is free again), or at a later read if that fails.
///
/// One per executor thread (not `Sync`): the loop alone reads through it.
pub(crate) struct StartTimes {
    reserve: RefCell<Option<OwnedFd>>,
}

impl StartTimes {
    pub(crate) fn new() -> StartTimes {
        StartTimes {
            reserve: RefCell::new(super::fd::open_dev_null().ok()),
        }
    }

    /// [`start_time`] of `pid`, with the reserve given up for the read if need be.
    pub(crate) fn read(&self, pid: Pid) -> io::Result<Option<u64>> {
        let mut reserve = self.reserve.borrow_mut();
        match start_time(pid) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                if reserve.take().is_none() {
                    return Err(e);
                }
                let read = start_time(pid);
                *reserve = super::fd::open_dev_null().ok();
                read
            }
            read => {
                if reserve.is_none() {
                    *reserve = super::fd::open_dev_null().ok();
                }
                read
            }
        }
    }
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line.
///
/// The second field, the command name in parentheses, may itself hold spaces and `)` (a program
/// may name itself anything), so the fields are counted from the *last* `)`: after it come field 3
/// (the state) to the end.
pub(crate) fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // Field 3 is the first after the name: field 22 is the 20th.
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(comm: &str, start: u64) -> String {
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[0] = "S".into();
        fields[22 - 3] = start.to_string();
        format!("4242 ({comm}) {}\n", fields.join(" "))
    }

    #[test]
    fn start_time_is_field_22_whatever_the_name_holds() {
        for comm in ["sleep", "a b c", "x) 1 2 3 (y", ")", "(", "))) ((", ""] {
            assert_eq!(
                parse_start_time(line(comm, 987_654).as_bytes()),
                Some(987_654),
                "comm {comm:?}"
            );
        }
    }

    #[test]
    fn a_cut_or_garbled_line_gives_nothing() {
        assert_eq!(parse_start_time(b""), None);
        assert_eq!(parse_start_time(b"12 (sh) S 1 2 3"), None);
        assert_eq!(parse_start_time(b"12 sh S 1 2 3"), None);
        let full = line("sh", 5);
        let cut = &full.as_bytes()[..full.find(") S").expect("state") + 2];
        assert_eq!(parse_start_time(cut), None);
        assert_eq!(
            parse_start_time(line("sh", 5).replace(" 5 ", " x ").as_bytes()),
            None
        );
    }

    #[test]
    fn our_own_start_time_is_read_and_a_free_pid_has_none() {
        let me = rustix::process::getpid();
        let ours = start_time(me).expect("/proc is mounted here");
        assert!(ours.is_some_and(|t| t > 0), "{ours:?}");
        assert_eq!(start_time(me).expect("again"), ours, "stable");
        // pid_max is at most 2^22: this one is free.
        let free = Pid::from_raw(i32::MAX).expect("positive");
        assert_eq!(start_time(free).expect("ENOENT is not an error"), None);
    }
}
