//! Which signals the process ignores or catches, read from `/proc/self/status`: the signals a
//! child must reset before it execs.

use std::sync::Arc;

use super::fd::above_stdio;
use super::signal_mask::BlockAllSignals;

/// Which signals have a disposition other than SIG_DFL, read from `/proc/self/status`.
///
/// The kernel publishes the process's ignored and caught sets there (`SigIgn`, `SigCgt`, 64-bit
/// hex; `/proc/self/stat` has them too but cut to 31 bits). One `pread` of the file costs about
/// 6 us; asking `rt_sigaction` about all 64 signals costs about 15 us here (VM syscall overhead),
/// a fifth of a spawn. The file is opened once and re-read at every spawn, so a disposition
/// changed just before a spawn is seen.
pub(crate) struct SignalDispositions {
    status: Option<Arc<std::fs::File>>,
    buf: Vec<u8>,
}

/// `/proc/self/status`, opened above the stdio numbers, for [`SignalDispositions`]: `None` if
/// it cannot be opened (then every signal is reset in the child).
pub(crate) fn open_proc_status() -> Option<Arc<std::fs::File>> {
    // Not /proc/thread-self: dispositions are per process, and the reader may be any thread.
    std::fs::File::open("/proc/self/status")
        .and_then(|f| above_stdio(f.into()))
        .map(|fd| Arc::new(std::fs::File::from(fd)))
        .ok()
}

impl SignalDispositions {
    /// Reading `status` (shared: `pread` at offset 0 needs no exclusive use); `None` until
    /// [`read_from`](Self::read_from) gives one.
    pub(crate) fn reading(status: Option<Arc<std::fs::File>>) -> SignalDispositions {
        SignalDispositions {
            status,
            buf: Vec::new(),
        }
    }

    /// Reads from `status` from now on (dropping the one held before).
    pub(crate) fn read_from(&mut self, status: Option<Arc<std::fs::File>>) {
        self.status = status;
    }

    /// Bit `n - 1` set when signal `n` is ignored or caught; all ones when /proc is unreadable.
    ///
    /// Takes the proof that every signal is blocked on this thread: sampled before the block, a
    /// handler that ran on this thread in between could install another one, which the child
    /// would then not reset and could run on our memory (CLONE_VM). The sample reflects every
    /// `sigaction` that completed before it; a `sigaction` by another thread racing the spawn
    /// itself is not seen, as with `environ` (see [`environ`](super::environ::environ)).
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

    #[test]
    fn our_own_sigpipe_is_seen_as_non_default() {
        // The Rust runtime sets SIGPIPE to SIG_IGN in every test binary.
        let mask =
            SignalDispositions::reading(open_proc_status()).non_default(&BlockAllSignals::new());
        assert_ne!(mask & (1 << (libc::SIGPIPE - 1)), 0);
        assert_ne!(mask, u64::MAX, "/proc/self/status should be readable here");
    }
}
