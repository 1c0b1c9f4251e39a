//! Helpers for the unit tests: real processes in the shapes the tests need, and a waker that
//! counts its wake-ups.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use rustix::process::Pid;

/// A live process that is not our child (a shell's child): what a recycled pid names.
pub(crate) struct Stranger {
    shell: std::process::Child,
    pub(crate) pid: Pid,
}

impl Stranger {
    pub(crate) fn new() -> Stranger {
        let mut shell = Command::new("/bin/sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        BufReader::new(shell.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the grandchild's pid");
        let pid = Pid::from_raw(line.trim().parse().expect("a pid")).expect("positive");
        Stranger { shell, pid }
    }

    /// True while the process lives (not yet dead, not a zombie) for all of `for_at_least`.
    pub(crate) fn stays_alive(&self, for_at_least: Duration) -> bool {
        let until = Instant::now() + for_at_least;
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid.as_raw_nonzero()));
            // The state follows the command name in parentheses.
            let alive = stat.ok().and_then(|s| {
                let state = s.rsplit_once(')')?.1.trim_start().chars().next()?;
                Some(state != 'Z' && state != 'X')
            });
            if alive != Some(true) {
                return false;
            }
            if Instant::now() >= until {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::KILL);
        let _ = self.shell.wait();
    }
}

/// Counts the wake-ups of the [`Waker`] made with [`counting_waker`].
pub(crate) struct WakeCount(AtomicUsize);

impl WakeCount {
    /// How many times the waker was woken so far.
    pub(crate) fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts its wake-ups, and the count.
pub(crate) fn counting_waker() -> (Arc<WakeCount>, Waker) {
    let count = Arc::new(WakeCount(AtomicUsize::new(0)));
    (count.clone(), Waker::from(count))
}
