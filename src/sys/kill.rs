//! Signals by pid: to a child of ours that is not yet reaped, and to the group it leads.

use std::io;

/// `kill(pid, SIGKILL)` for a child that is ours and not yet reaped, so its PID cannot have been
/// recycled. Used only when no pidfd could be opened for it.
pub(crate) fn kill_unreaped_child(pid: rustix::process::Pid) {
    let _ = kill_unreaped(pid, libc::SIGKILL);
}

/// `kill(pid, signal)` for a child that is ours and not yet reaped (only the executor thread
/// reaps, and only it calls this), so the pid cannot have been recycled.
pub(crate) fn kill_unreaped(pid: rustix::process::Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers.
    let rc = unsafe { libc::kill(pid.as_raw_nonzero().get(), signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `kill(-pgid, signal)` for the process group led by a child that is ours and not yet reaped
/// (the caller holds the child's reap gate): the leader's zombie pins the group id, so it cannot
/// name another group.
pub(crate) fn kill_group(leader: rustix::process::Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers.
    let rc = unsafe { libc::kill(-leader.as_raw_nonzero().get(), signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
