//! Helpers for the fault tests that change process-wide things: SIGCHLD's disposition, the pid
//! counter, the descriptor limit. Each such test is alone in its binary.

use std::collections::HashSet;

use super::our_fds;

/// The pid counter of this pid namespace: the next process gets the number after it.
pub const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// SIGCHLD's whole action, put back when dropped (signal-hook's handler included).
pub struct SavedSigchld(libc::sigaction);

impl SavedSigchld {
    pub fn set(handler: libc::sighandler_t) -> SavedSigchld {
        // SAFETY: sigaction writes the old action into a zeroed struct we own; the new one is
        // SIG_IGN or SIG_DFL, no code of ours.
        unsafe {
            let mut old = std::mem::zeroed::<libc::sigaction>();
            let mut new = std::mem::zeroed::<libc::sigaction>();
            new.sa_sigaction = handler;
            assert_eq!(libc::sigaction(libc::SIGCHLD, &new, &mut old), 0);
            SavedSigchld(old)
        }
    }
}

impl Drop for SavedSigchld {
    fn drop(&mut self) {
        // SAFETY: puts back the action sigaction returned.
        unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
    }
}

/// Another child of this process, waiting in `pause()` until killed.
pub struct Stranger(pub libc::pid_t);

impl Stranger {
    pub fn kill(&self) {
        // SAFETY: kill takes two integers; the pid is our unreaped child (SIGCHLD is ignored
        // only after it is dead, when the kernel reaps it).
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// A host child with pid `pid` if the pid counter lets us have it. A raw `fork` right after the
/// counter is written: the less time in between, the less often another process on the machine
/// takes the pid first.
pub fn take_pid(pid: u32) -> Option<Stranger> {
    let counter = std::fs::OpenOptions::new()
        .write(true)
        .open(NS_LAST_PID)
        .ok()?;
    let value = (pid - 1).to_string();
    std::io::Write::write_all(&mut &counter, value.as_bytes()).ok()?;
    // SAFETY: the child only calls pause() and _exit, both async-signal-safe.
    let got = unsafe { libc::fork() };
    if got == 0 {
        loop {
            // SAFETY: async-signal-safe; SIGKILL ends it.
            unsafe { libc::pause() };
        }
    }
    if got < 0 {
        return None;
    }
    let stranger = Stranger(got);
    if got as u32 == pid {
        return Some(stranger);
    }
    stranger.kill();
    None
}

/// Restores the soft RLIMIT_NOFILE when dropped (also when an assertion fails meanwhile).
pub struct NofileLimit {
    saved: libc::rlimit,
}

impl NofileLimit {
    pub fn lower_to(soft: u64) -> NofileLimit {
        let saved = get_nofile();
        set_nofile(libc::rlimit {
            rlim_cur: soft,
            rlim_max: saved.rlim_max,
        });
        NofileLimit { saved }
    }
}

impl Drop for NofileLimit {
    fn drop(&mut self) {
        set_nofile(self.saved);
    }
}

pub fn get_nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    lim
}

pub fn set_nofile(lim: libc::rlimit) {
    // SAFETY: setrlimit reads the struct we pass.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// The soft limit that leaves exactly `free` descriptor numbers available: a new descriptor
/// takes the lowest free number, and fails with EMFILE when that number is not below the limit.
pub fn limit_leaving(free: usize) -> u64 {
    let open: HashSet<u32> = our_fds().into_iter().collect();
    let mut seen = 0;
    let mut n = 0;
    loop {
        if !open.contains(&n) {
            if seen == free {
                return n as u64;
            }
            seen += 1;
        }
        n += 1;
    }
}
