//! The process table: every child spawned and not yet reaped, keyed by spawn serial.
//!
//! Bookkeeping; its only syscalls are the last-resort kill-and-reap of every child. The spawning
//! thread (a calling thread, or the executor's spawner thread) inserts at spawn and whoever
//! reaps (the executor thread, or a blocking waiter) removes at reap; other threads read it
//! through [`Executor::running`](crate::Executor::running).

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Instant;

use crate::proc_state::ProcState;

/// One line of the trace: a running child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: u32,
    /// The command vector as given to `create_process`.
    pub command: Vec<OsString>,
    /// The thread that asked for it.
    pub owner: ThreadId,
    /// When it was spawned.
    pub started: Instant,
}

/// A tracked child.
pub(crate) struct Entry {
    pub(crate) info: ProcessInfo,
    pub(crate) state: Arc<ProcState>,
    /// The pipe or memfd holding the child's stdin bytes, if any: kept until the child is
    /// reaped and its waiters answered, so that its last close (which frees the pipe) is not
    /// made by the exiting child, on the way to the status a waiter is waiting for.
    #[allow(dead_code, reason = "held for its drop, never read")]
    pub(crate) stdin_bytes: Option<Arc<std::os::fd::OwnedFd>>,
}

#[derive(Default)]
pub(crate) struct Table {
    entries: HashMap<u64, Entry>,
    /// Set by [`kill_and_reap_all`](Self::kill_and_reap_all): nobody will look at the table
    /// again, so nothing more may go in.
    sealed: bool,
}

impl Table {
    /// Tracks `entry`; gives it back if the table is sealed (the loop broke, or the executor
    /// is gone): its child would then be reaped by nobody, and the inserter must kill and reap
    /// it. (A calling thread inserts its own child, and may come after the last pass.)
    pub(crate) fn insert(&mut self, entry: Entry) -> Result<(), Entry> {
        if self.sealed {
            return Err(entry);
        }
        self.entries.insert(entry.state.serial, entry);
        Ok(())
    }

    pub(crate) fn remove(&mut self, serial: u64) -> Option<Entry> {
        self.entries.remove(&serial)
    }

    pub(crate) fn get(&self, serial: u64) -> Option<&Entry> {
        self.entries.get(&serial)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A tracked child with process id `pid` (linear: used once per exit in signal mode, where
    /// the kernel names an exited child by pid). Two may share a pid for a moment when one was
    /// reaped by the kernel behind our back; either is returned.
    pub(crate) fn find_pid(&self, pid: u32) -> Option<Arc<ProcState>> {
        self.entries
            .values()
            .find(|e| e.state.pid == pid)
            .map(|e| e.state.clone())
    }

    /// The state of every tracked child.
    pub(crate) fn states(&self) -> Vec<Arc<ProcState>> {
        self.entries.values().map(|e| e.state.clone()).collect()
    }

    /// SIGKILL and blocking reap of every child in `table` (executor dropped, or its loop
    /// broke); seals the table, so that a child inserted later is refused, not left unreaped.
    ///
    /// The entries are taken out under the lock and killed, reaped and answered outside it: a
    /// blocking `waitid` must not hold up `running()`, and waking a waiter runs code (an inline
    /// waker) that may itself look at the table.
    pub(crate) fn kill_and_reap_all(table: &Mutex<Table>) {
        let entries = {
            let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
            table.sealed = true;
            std::mem::take(&mut table.entries)
        };
        for (_, entry) in entries {
            entry.state.kill_and_reap();
        }
    }

    /// The trace, optionally only the children of one thread, oldest first.
    pub(crate) fn infos(&self, owner: Option<ThreadId>) -> Vec<ProcessInfo> {
        let mut v: Vec<ProcessInfo> = self
            .entries
            .values()
            .filter(|e| owner.is_none_or(|o| e.info.owner == o))
            .map(|e| e.info.clone())
            .collect();
        v.sort_by_key(|i| i.started);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::task::{Context, Wake, Waker};
    use std::time::Duration;

    use rustix::process::Pid;

    use crate::spin::SpinPolicy;

    /// A waker that, when woken, reads the table (as `Executor::running` does).
    struct LooksAtTheTable {
        table: Arc<Mutex<Table>>,
        saw: mpsc::Sender<usize>,
    }

    impl Wake for LooksAtTheTable {
        fn wake(self: Arc<Self>) {
            let running = self
                .table
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .infos(None)
                .len();
            let _ = self.saw.send(running);
        }
    }

    #[test]
    fn kill_and_reap_all_wakes_outside_the_table_lock() {
        let table = Arc::new(Mutex::new(Table::default()));
        #[allow(clippy::zombie_processes, reason = "kill_and_reap_all reaps it")]
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = Pid::from_raw(child.id() as i32).expect("positive");
        let start_time = crate::sys::procfs::start_time(pid).expect("/proc stat");
        let spin = Arc::new(SpinPolicy::new(Duration::ZERO));
        let state = Arc::new(ProcState::new(1, pid, None, spin).with_start_time(start_time));
        let (saw, seen) = mpsc::channel();
        let waker = Waker::from(Arc::new(LooksAtTheTable {
            table: table.clone(),
            saw,
        }));
        let mut key = None;
        assert!(
            state
                .poll_exit(&mut Context::from_waker(&waker), &mut key)
                .is_pending()
        );
        let entry = Entry {
            info: ProcessInfo {
                pid: state.pid,
                command: vec!["sleep".into()],
                owner: std::thread::current().id(),
                started: Instant::now(),
            },
            state: state.clone(),
            stdin_bytes: None,
        };
        assert!(table.lock().expect("table").insert(entry).is_ok());

        // On another thread, so that a deadlock fails the test instead of hanging it.
        let (done, finished) = mpsc::channel();
        let killer = table.clone();
        std::thread::spawn(move || {
            Table::kill_and_reap_all(&killer);
            let _ = done.send(());
        });
        let watchdog = Duration::from_secs(10);
        assert_eq!(
            seen.recv_timeout(watchdog),
            Ok(0),
            "the waker could not read the table"
        );
        assert_eq!(finished.recv_timeout(watchdog), Ok(()));
        assert!(state.status().is_some());
        // Sealed: a child inserted now is handed back to be killed by its inserter.
        let late = Entry {
            info: ProcessInfo {
                pid: 1,
                command: Vec::new(),
                owner: std::thread::current().id(),
                started: Instant::now(),
            },
            state: Arc::new(ProcState::new(
                2,
                Pid::from_raw(1).expect("positive"),
                None,
                Arc::new(SpinPolicy::new(Duration::ZERO)),
            )),
            stdin_bytes: None,
        };
        assert!(table.lock().expect("table").insert(late).is_err());
    }
}
