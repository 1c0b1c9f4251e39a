//! The process's descriptor limit ([`raise_fd_limit`]).

use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new soft limit.
///
/// Each tracked child costs the executor one descriptor (its pidfd), two more with pipes; the
/// common default soft limit of 1024 caps an executor at about a thousand children. Go raises it
/// at startup for the same reason. Call it early in `main` if you track many children.
pub fn raise_fd_limit() -> io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim)?;
    }
    Ok(lim.current.unwrap_or(u64::MAX))
}
