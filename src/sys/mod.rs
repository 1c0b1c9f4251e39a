//! The unsafe boundary: every syscall that rustix does not wrap safely, wrapped once here.
//!
//! Above this module the crate is safe Rust (`#![deny(unsafe_code)]` at the root). Most syscalls go
//! through rustix's safe API directly (epoll, eventfd, timerfd, pidfd_open, waitid); what lives here
//! is what rustix lacks or leaves unsafe: `pidfd_send_signal` with any signal number, the thread's
//! signal mask, `environ`, and the spawn backends in [`spawn`]. Only rustix's public API is used;
//! what it does not publish (execve, a raw fork, rt_sigaction) goes through libc's `syscall(2)`.
//!
//! # Safety
//!
//! Each `unsafe` block carries a `// SAFETY:` comment. Code that runs in a child between
//! fork/vfork and execve lives in `spawn/child.rs` and makes raw syscalls only.
#![allow(unsafe_code)]

pub(crate) mod clone3;
pub(crate) mod procfs;
pub(crate) mod sigchld;
pub(crate) mod spawn;
pub(crate) mod wait;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

/// Moves `fd` above the standard descriptors if it landed on 0, 1 or 2.
///
/// When the host closed stdin/stdout/stderr, a new descriptor takes the lowest free number. Our own
/// descriptors must never sit there: the child's `dup2(fd, 1)` onto the same number would keep
/// CLOEXEC set and the child would start with fd 1 closed.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// Opens `/dev/null` read-write, close-on-exec, above fd 2.
pub(crate) fn open_dev_null() -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    above_stdio(fd)
}

/// A close-on-exec pipe whose both ends are above fd 2: `(read end, write end)`.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let r = above_stdio(r).map_err(errno_of)?;
    let w = above_stdio(w).map_err(errno_of)?;
    Ok((r, w))
}

/// The errno inside an `io::Error` (EIO if it has none).
pub(crate) fn errno_of(e: io::Error) -> Errno {
    Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO))
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`—Sends any signal number (0 to probe) through a pidfd.
///
/// rustix's safe wrapper takes only the named signals; callers of `send_signal` may pass realtime
/// ones. A pidfd always names the same process, so a reaped child gives `ESRCH`, never a stranger.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes an fd, an int, a NULL siginfo pointer and flags 0; the fd is
    // borrowed for the duration of the call. No memory is passed to the kernel.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `kill(pid, SIGKILL)` for a child that is ours and not yet reaped, so its PID cannot have been
/// recycled. Used only when no pidfd could be opened for it.
pub(crate) fn kill_unreaped_child(pid: rustix::process::Pid) {
    let _ = kill_unreaped(pid, libc::SIGKILL);
}

/// Blocks every signal on the calling thread until the guard drops, then restores the old mask.
///
/// Held around fork/clone so that no signal handler of the parent runs in the child before the
/// child has reset the dispositions, and taken before the dispositions are sampled (see
/// [`SignalDispositions::non_default`]). (glibc keeps its two internal signals, 32 and 33,
/// unblockable; the child resets them before it unblocks anything.)
pub(crate) struct BlockAllSignals {
    old: libc::sigset_t,
}

impl BlockAllSignals {
    pub(crate) fn new() -> BlockAllSignals {
        // SAFETY: sigset_t is plain data; sigfillset initialises it; pthread_sigmask only reads
        // `all` and writes `old`, both valid for the call.
        unsafe {
            let mut all = std::mem::zeroed::<libc::sigset_t>();
            let mut old = std::mem::zeroed::<libc::sigset_t>();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockAllSignals { old }
        }
    }
}

impl Drop for BlockAllSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in new(); the pointer is valid for the call.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// The process environment as the `envp` argument of execve.
///
/// The pointer is read at spawn time, on the spawning thread, as `posix_spawnp`/std do. Changing the
/// environment while other threads run is `unsafe` in Rust 2024 (`std::env::set_var`) for exactly
/// this reason, so a caller that follows that contract cannot race us.
pub(crate) fn environ() -> *const *const libc::c_char {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is the libc global; reading the pointer value is a plain load.
    unsafe { environ }
}

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

/// Owns a raw fd returned by a syscall wrapper above.
///
/// # Safety
/// `fd` must be a freshly created descriptor that nothing else owns.
pub(crate) unsafe fn own_fd(fd: i32) -> OwnedFd {
    // SAFETY: the caller promises `fd` is fresh and unowned.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Blocks SIGCHLD in the calling thread (and so in every thread it starts afterwards).
///
/// Call it at the top of `main`, before any thread starts, to let executors without pidfds
/// ([`ChildWatch::Signal`](crate::ChildWatch)) read SIGCHLD from a signalfd. A signalfd only
/// sees a process-directed signal if no thread could take it instead: a thread with SIGCHLD
/// unblocked would receive it (and, SIGCHLD's default being "ignore", drop it). Without this call
/// the executor installs a SIGCHLD handler (signal-hook, chained with any handler the host has)
/// that wakes its poll set. Children spawned by this crate start with an empty mask either way.
///
/// `run()` checks every thread's mask when it starts: if one has SIGCHLD unblocked, or waits for
/// it in `sigtimedwait`, it takes the handler path instead and logs why (a `warn` event). A
/// thread that does so later only delays exits (see the crate docs' caveats).
pub fn block_sigchld() -> io::Result<()> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset; pthread_sigmask reads
    // the set and changes only the calling thread's mask.
    let rc = unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    SIGCHLD_BLOCKED_BY_USER.store(true, std::sync::atomic::Ordering::SeqCst);
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

static SIGCHLD_BLOCKED_BY_USER: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether [`block_sigchld`] was called.
pub(crate) fn block_sigchld_called() -> bool {
    SIGCHLD_BLOCKED_BY_USER.load(std::sync::atomic::Ordering::SeqCst)
}

/// A non-blocking, close-on-exec signalfd for SIGCHLD (which must be blocked), above fd 2.
pub(crate) fn signalfd_sigchld() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t initialised by sigemptyset/sigaddset; signalfd(-1, ...) creates a new fd,
    // owned at once.
    let fd = unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        own_fd(fd)
    };
    above_stdio(fd)
}

/// Whether this kernel gives working pidfds: `pidfd_open` (5.3) and `waitid(P_PIDFD)` (5.4).
///
/// Probed once. ENOSYS, and EPERM from a seccomp filter (Docker answers EPERM), mean "no";
/// a transient failure (EMFILE) is not cached and counts as "yes".
pub(crate) fn pidfd_supported() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;
    static PROBED: AtomicU8 = AtomicU8::new(UNKNOWN);
    match PROBED.load(Ordering::Relaxed) {
        YES => return true,
        NO => return false,
        _ => {}
    }
    let answer = match rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    ) {
        Ok(fd) => {
            use rustix::process::{WaitId, WaitIdOptions, waitid};
            // We are not our own child: a kernel with P_PIDFD says ECHILD, an older one EINVAL.
            match waitid(
                WaitId::PidFd(fd.as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) {
                Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::PERM) => Some(false),
                _ => Some(true),
            }
        }
        Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::INVAL) => Some(false),
        Err(_) => None,
    };
    match answer {
        Some(yes) => {
            PROBED.store(if yes { YES } else { NO }, Ordering::Relaxed);
            yes
        }
        None => true,
    }
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

/// Which signals have a disposition other than SIG_DFL, read from `/proc/self/status`.
///
/// The kernel publishes the process's ignored and caught sets there (`SigIgn`, `SigCgt`, 64-bit
/// hex; `/proc/self/stat` has them too but cut to 31 bits). One `pread` of the file costs about
/// 6 us; asking `rt_sigaction` about all 64 signals costs about 15 us here (VM syscall overhead),
/// a fifth of a spawn. The file is opened once and re-read at every spawn, so a disposition
/// changed just before a spawn is seen.
pub(crate) struct SignalDispositions {
    status: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl SignalDispositions {
    pub(crate) fn new() -> SignalDispositions {
        SignalDispositions {
            // Not /proc/thread-self: dispositions are per process, and the reader may be any
            // thread that owns this (the executor's, or a direct spawner's).
            status: std::fs::File::open("/proc/self/status")
                .and_then(|f| above_stdio(f.into()))
                .map(std::fs::File::from)
                .ok(),
            buf: Vec::new(),
        }
    }

    /// Bit `n - 1` set when signal `n` is ignored or caught; all ones when /proc is unreadable.
    ///
    /// Takes the proof that every signal is blocked on this thread: sampled before the block, a
    /// handler that ran on this thread in between could install another one, which the child
    /// would then not reset and could run on our memory (CLONE_VM). The sample reflects every
    /// `sigaction` that completed before it; a `sigaction` by another thread racing the spawn
    /// itself is not seen, as with `environ` (see [`environ`]).
    pub(crate) fn non_default(&mut self, _blocked: &BlockAllSignals) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(status) = &self.status else {
            return u64::MAX;
        };
        self.buf.resize(4096, 0);
        let n = match status.read_at(&mut self.buf, 0) {
            Ok(n) => n,
            Err(_) => return u64::MAX,
        };
        parse_status_signal_sets(&self.buf[..n]).unwrap_or(u64::MAX)
    }
}

/// `SigIgn | SigCgt` from the text of `/proc/<pid>/status`.
pub(crate) fn parse_status_signal_sets(status: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(status).ok()?;
    let mut ignored = None;
    let mut caught = None;
    for line in text.lines() {
        if let Some(hex) = line.strip_prefix("SigIgn:") {
            ignored = u64::from_str_radix(hex.trim(), 16).ok();
        } else if let Some(hex) = line.strip_prefix("SigCgt:") {
            caught = u64::from_str_radix(hex.trim(), 16).ok();
            break;
        }
    }
    Some(ignored? | caught?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parse_takes_sigign_and_sigcgt() {
        let text = b"Name:\tx\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
SigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180004002\nCapInh:\t0\n";
        assert_eq!(parse_status_signal_sets(text), Some(0x1000 | 0x1_8000_4002));
        assert_eq!(parse_status_signal_sets(b"garbage"), None);
    }

    /// `SigBlk` of the calling thread, from /proc.
    fn blocked_mask() -> u64 {
        let status =
            std::fs::read_to_string("/proc/thread-self/status").expect("read thread status");
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .expect("SigBlk line");
        u64::from_str_radix(hex.trim(), 16).expect("hex mask")
    }

    #[test]
    fn block_all_signals_blocks_every_signal_and_restores_the_mask() {
        let before = blocked_mask();
        {
            let _blocked = BlockAllSignals::new();
            // The kernel never blocks SIGKILL and SIGSTOP; glibc keeps its internal 32 and 33 out
            // of any mask a program sets.
            let bit = |sig: i32| 1u64 << (sig - 1);
            let unblockable = bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(32) | bit(33);
            let blocked = blocked_mask();
            assert_eq!(
                blocked | unblockable,
                u64::MAX,
                "unblocked while held: {:#x}",
                !blocked & !unblockable
            );
        }
        assert_eq!(blocked_mask(), before);
    }

    #[test]
    fn our_own_sigpipe_is_seen_as_non_default() {
        // The Rust runtime sets SIGPIPE to SIG_IGN in every test binary.
        let mask = SignalDispositions::new().non_default(&BlockAllSignals::new());
        assert_ne!(mask & (1 << (libc::SIGPIPE - 1)), 0);
        assert_ne!(mask, u64::MAX, "/proc/self/status should be readable here");
    }
}

/// What the process does with SIGCHLD right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigchldDisposition {
    /// SIG_DFL (ignored, but children stay zombies until waited for).
    Default,
    /// SIG_IGN or SA_NOCLDWAIT: the kernel reaps children by itself.
    Ignored,
    /// A handler is installed.
    Handled,
}

pub(crate) fn sigchld_disposition() -> SigchldDisposition {
    // SAFETY: a query (null new action) into a zeroed sigaction struct.
    let old = unsafe {
        let mut old = std::mem::zeroed::<libc::sigaction>();
        libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old);
        old
    };
    if old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0 {
        SigchldDisposition::Ignored
    } else if old.sa_sigaction == libc::SIG_DFL {
        SigchldDisposition::Default
    } else {
        SigchldDisposition::Handled
    }
}

mod cstring_array;
pub(crate) use cstring_array::{CStringArray, CStringArrayBuilder, for_each_environ};
