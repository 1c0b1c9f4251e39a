//! The calling thread's signal mask: every signal blocked around a clone, and SIGCHLD blocked
//! for good by the host ([`block_sigchld`]).

use std::io;

/// Blocks every signal on the calling thread until the guard drops, then restores the old mask.
///
/// Held around fork/clone so that no signal handler of the parent runs in the child before the
/// child has reset the dispositions, and taken before the dispositions are sampled (see
/// `SignalDispositions::non_default` in `signal_dispositions.rs`). (glibc keeps its two internal
/// signals, 32 and 33, unblockable; the child resets them before it unblocks anything.)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
