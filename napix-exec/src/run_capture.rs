//! `--output group` and `tag`: read a command's stdout and stderr while it runs.
//!
//! Each pipe gets its own reader thread, so neither can fill up and block the child while the
//! worker waits on the process (with its timeout). The bytes go into a shared buffer rather than
//! back through the thread's result: when a background process inherited the pipe and keeps it
//! open after the command exited, the worker stops waiting after a short drain period and still
//! has everything read so far.
//!
//! Where the bytes are kept: output that is passed on as text has no limit, as with GNU
//! parallel; past [`IN_MEMORY`] it goes to an unnamed temporary file (in `$TMPDIR`, gone when
//! closed), so a command writing gigabytes costs disk, not the runner's memory. Output that goes
//! into a JSON record has to be held whole: at most [`KEEP_LIMIT`], the rest is read and counted.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, Write};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

/// Bytes kept per stream for a JSON record; the rest is read and dropped (counted), so that a
/// runaway writer cannot exhaust the runner's memory, nor block on a full pipe.
pub const KEEP_LIMIT: usize = 64 << 20;

/// Bytes per stream held in memory before the rest goes to a temporary file (text output).
pub const IN_MEMORY: usize = 1 << 20;

/// Where a capture keeps what it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Everything: [`IN_MEMORY`] bytes in memory, the rest in a temporary file.
    All,
    /// The first [`KEEP_LIMIT`] bytes, in memory.
    Limited,
}

/// What was read from one pipe.
#[derive(Debug, Default)]
pub struct Captured {
    /// The bytes, or their first part when the rest is in `spill`.
    pub bytes: Vec<u8>,
    /// What followed `bytes` (only with [`Keep::All`]), to be read from its start.
    pub spill: Option<File>,
    /// Bytes read and not kept: past [`KEEP_LIMIT`], or that the temporary file refused.
    pub dropped: u64,
    /// Why the temporary file could not take them, when it could not.
    pub spill_error: Option<String>,
    /// False when the pipe was still open at the drain deadline (a background process holds it)
    /// or could not be read at all.
    pub complete: bool,
}

impl Captured {
    /// Everything kept, as it was read: the bytes, then the temporary file.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.bytes)?;
        if let Some(mut file) = self.spill.as_ref() {
            file.rewind()?;
            io::copy(&mut file, out)?;
        }
        Ok(())
    }

    /// Keeps `chunk` as `keep` says.
    fn add(&mut self, chunk: &[u8], keep: Keep) {
        let limit = match keep {
            Keep::All => IN_MEMORY,
            Keep::Limited => KEEP_LIMIT,
        };
        let room = limit.saturating_sub(self.bytes.len()).min(chunk.len());
        self.bytes.extend_from_slice(&chunk[..room]);
        let rest = &chunk[room..];
        if rest.is_empty() {
            return;
        }
        if keep == Keep::Limited || self.spill_error.is_some() {
            self.dropped += rest.len() as u64;
            return;
        }
        let written = match &mut self.spill {
            Some(file) => file.write_all(rest),
            None => temporary_file().and_then(|mut file| {
                file.write_all(rest)?;
                self.spill = Some(file);
                Ok(())
            }),
        };
        if let Err(e) = written {
            // Whatever part of `rest` a failed write took is counted as dropped with the rest:
            // the file is no longer read back past that point.
            tracing::debug!(error = %e, "the temporary file for captured output failed");
            self.dropped += rest.len() as u64;
            self.spill_error = Some(e.to_string());
        }
    }
}

/// An unnamed file in the temporary directory (`O_TMPFILE`, or created and unlinked at once
/// where the file system has no `O_TMPFILE`): nothing to clean up, even after a crash.
fn temporary_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let unnamed = File::options()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir);
    match unnamed {
        Ok(f) => Ok(f),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            let path = dir.join(format!(
                "napix-exec-capture-{}-{:?}",
                std::process::id(),
                thread::current().id()
            ));
            let f = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(f)
        }
        Err(e) => Err(e),
    }
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
    /// Starts reading `pipe` on a new thread named after `name`, keeping what it reads as `keep`
    /// says. When no thread can be created the pipe is dropped (the child gets EPIPE if it
    /// writes) and the capture reports itself incomplete.
    pub fn start<R: Read + Send + 'static>(name: String, mut pipe: R, keep: Keep) -> Capture {
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
                s.captured.add(&chunk[..n], keep);
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

    fn read_all(data: Vec<u8>, keep: Keep) -> Captured {
        let c = Capture::start("t".into(), std::io::Cursor::new(data), keep);
        c.finish(Instant::now() + Duration::from_secs(10))
    }

    #[test]
    fn reads_to_end_of_file() {
        let data = vec![b'x'; 300_000];
        let got = read_all(data.clone(), Keep::Limited);
        assert!(got.complete);
        assert_eq!(got.bytes, data);
        assert_eq!(got.dropped, 0);
        assert!(got.spill.is_none());
    }

    #[test]
    fn text_output_past_memory_goes_to_a_file_and_comes_back_whole() {
        let data: Vec<u8> = (0..3 * IN_MEMORY + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        let got = read_all(data.clone(), Keep::All);
        assert!(got.complete);
        assert_eq!(got.bytes.len(), IN_MEMORY, "only the first part in memory");
        assert!(got.spill.is_some());
        assert_eq!(got.dropped, 0);
        let mut out = Vec::new();
        got.write_to(&mut out).expect("read back");
        assert_eq!(out, data);
        // Twice: each print reads the file from its start.
        let mut again = Vec::new();
        got.write_to(&mut again).expect("read back again");
        assert_eq!(again.len(), data.len());
    }

    #[test]
    fn json_output_keeps_the_limit_and_counts_the_rest() {
        let mut c = Captured::default();
        c.add(&vec![b'a'; KEEP_LIMIT - 10], Keep::Limited);
        c.add(&[b'b'; 30], Keep::Limited);
        assert_eq!(c.bytes.len(), KEEP_LIMIT);
        assert_eq!(c.dropped, 20);
        assert!(c.spill.is_none());
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
        let c = Capture::start("t".into(), Endless, Keep::All);
        let start = Instant::now();
        let got = c.finish(Instant::now() + Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!got.complete);
        assert!(got.bytes.iter().all(|&b| b == b'y'));
    }
}
