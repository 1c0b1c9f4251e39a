//! `--output group` and `tag`: read a command's stdout and stderr while it runs.
//!
//! Each pipe gets its own reader thread, so neither can fill up and block the child while the
//! worker waits on the process (with its timeout). The bytes go into a shared buffer rather than
//! back through the thread's result: when a background process inherited the pipe and keeps it
//! open after the command exited, the worker stops waiting after a short drain period and still
//! has everything read so far.

use std::io::{ErrorKind, Read};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

/// Bytes kept per stream; the rest is read and dropped (counted), so that a runaway writer cannot
/// exhaust the runner's memory, nor block on a full pipe.
pub const KEEP_LIMIT: usize = 64 << 20;

/// What was read from one pipe.
#[derive(Debug, Default)]
pub struct Captured {
    /// The bytes, at most [`KEEP_LIMIT`] of them.
    pub bytes: Vec<u8>,
    /// Bytes read past [`KEEP_LIMIT`] and dropped.
    pub dropped: u64,
    /// False when the pipe was still open at the drain deadline (a background process holds it)
    /// or could not be read at all.
    pub complete: bool,
}

/// The shared state between a reader thread and its worker.
#[derive(Default)]
struct Shared {
    captured: Captured,
    /// Set by the worker when it gives up waiting: the reader stops at its next wake-up and drops
    /// the pipe.
    abandoned: bool,
}

/// A pipe being read on its own thread.
pub struct Capture {
    shared: Arc<Mutex<Shared>>,
    /// Disconnected once the reader thread is done (EOF or error): the sender lives in the thread.
    done: Receiver<()>,
}

impl Capture {
    /// Starts reading `pipe` on a new thread named after `name`. When no thread can be created the
    /// pipe is dropped (the child gets EPIPE if it writes) and the capture reports itself
    /// incomplete.
    pub fn start<R: Read + Send + 'static>(name: String, mut pipe: R) -> Capture {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, done) = mpsc::channel::<()>();
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new().name(name).spawn(move || {
            let _done = tx;
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "reading a captured pipe failed");
                        return;
                    }
                };
                let mut s = thread_shared.lock().unwrap_or_else(PoisonError::into_inner);
                if s.abandoned {
                    return;
                }
                let room = KEEP_LIMIT.saturating_sub(s.captured.bytes.len()).min(n);
                s.captured.bytes.extend_from_slice(&chunk[..room]);
                s.captured.dropped += (n - room) as u64;
            }
            thread_shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .captured
                .complete = true;
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no thread to read a captured pipe; its output is lost");
        }
        Capture { shared, done }
    }

    /// Waits for the pipe's end of file until `deadline`, then returns what was read.
    pub fn finish(self, deadline: Instant) -> Captured {
        let timeout = deadline.saturating_duration_since(Instant::now());
        // Nothing is ever sent: the thread ending drops the sender, which wakes this up at once.
        // Whether it ended at EOF is in `captured.complete`.
        let _ = self.done.recv_timeout(timeout);
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        s.abandoned = true;
        std::mem::take(&mut s.captured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_to_end_of_file() {
        let data = vec![b'x'; 300_000];
        let c = Capture::start("t".into(), std::io::Cursor::new(data.clone()));
        let got = c.finish(Instant::now() + Duration::from_secs(10));
        assert!(got.complete);
        assert_eq!(got.bytes, data);
        assert_eq!(got.dropped, 0);
    }

    /// A reader that never reaches end of file, like a pipe a background process keeps open.
    struct Endless;
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            thread::sleep(Duration::from_millis(5));
            buf[0] = b'y';
            Ok(1)
        }
    }

    #[test]
    fn gives_up_at_the_deadline_keeping_what_was_read() {
        let c = Capture::start("t".into(), Endless);
        let start = Instant::now();
        let got = c.finish(Instant::now() + Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!got.complete);
        assert!(got.bytes.iter().all(|&b| b == b'y'));
    }
}
