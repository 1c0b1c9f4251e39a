//! [`Command`]'s lifetime options: process group and session, kill scope, parent-death signal,
//! deadline, kill grace and cgroup. Like the other options they are only recorded here and
//! checked when the command is spawned (`request/lifetime.rs`).

use std::path::Path;
use std::time::Duration;

use crate::command::Command;
use crate::lifetime::KillScope;

impl Command {
    /// Puts the child in process group `pgid` before it execs; 0 makes a new group led by the
    /// child (std's `CommandExt::process_group`). `setpgid(0, pgid)` in the child; every backend.
    ///
    /// A negative id is an `InvalidInput` error at spawn.
    pub fn process_group(&mut self, pgid: i32) -> &mut Command {
        self.lifetime.process_group = Some(pgid);
        self
    }

    /// Makes the child the leader of a new session (and of a new process group) before it
    /// execs: it has no controlling terminal, and a terminal's signals (Ctrl-C) do not reach it.
    /// `setsid()` in the child; every backend (`POSIX_SPAWN_SETSID` for PosixSpawn).
    ///
    /// With `process_group` other than 0 it is an `InvalidInput` error at spawn: a new session
    /// cannot join an existing group.
    pub fn setsid(&mut self) -> &mut Command {
        self.lifetime.setsid = true;
        self
    }

    /// Which processes a kill reaches ([`KillScope`]; default the child only).
    ///
    /// `Group` needs the child to lead its group: without `process_group` or `setsid` it implies
    /// `process_group(0)`, and with `process_group(n)` for another group it is an `InvalidInput`
    /// error at spawn. `Cgroup` needs [`cgroup`](Self::cgroup) or
    /// [`cgroup_per_child`](Self::cgroup_per_child).
    ///
    /// ```
    /// use napix_executor::{Command, KillScope};
    /// # let ex = std::sync::Arc::new(napix_executor::Executor::builder()
    /// #     .kill_grace(std::time::Duration::from_millis(200)).build()?);
    /// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "sleep 100 & sleep 100; wait"]).kill_scope(KillScope::Group);
    /// let child = ex.spawn(&cmd)?;
    /// child.kill(); // both sleeps get SIGTERM with the shell
    /// # ex.stop(); runner.join().expect("run thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_scope(&mut self, scope: KillScope) -> &mut Command {
        self.lifetime.scope = scope;
        self
    }

    /// Has the kernel send `signal` to the child when the thread that spawned it ends
    /// (`PR_SET_PDEATHSIG`, then a check that the parent has not died already).
    ///
    /// The thread is the executor's, the one in [`Executor::run`](crate::Executor::run): the
    /// signal comes when `run()`'s thread exits or the executor's process dies, not when the
    /// thread that called `spawn` ends. Fork and Vfork; PosixSpawn answers
    /// [`SpawnError::UnsupportedOption`](crate::SpawnError::UnsupportedOption). A number that is
    /// not a signal is an `InvalidInput` error at spawn.
    pub fn parent_death_signal(&mut self, signal: i32) -> &mut Command {
        self.lifetime.parent_death_signal = Some(signal);
        self
    }

    /// Starts the kill escalation (SIGTERM to the kill scope, SIGKILL after the grace) by itself
    /// once `timeout` has passed since the spawn, unless the child has exited.
    /// [`ExecHandle::timed_out`](crate::ExecHandle::timed_out) then says so. Served by the
    /// executor's one timer (no thread per child). A timeout too large to represent as an
    /// instant (`Duration::MAX`) is no timeout.
    ///
    /// The kill reaches the command's [`kill_scope`](Self::kill_scope): by default
    /// ([`KillScope::Process`]) the child alone, so the processes a shell or a build tool
    /// started keep running after it timed out; [`KillScope::Group`] or [`KillScope::Cgroup`]
    /// take them along. To bound only one collection of output, from the call, use
    /// [`OutputLimits::timeout`](crate::OutputLimits::timeout) instead.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Command {
        self.lifetime.timeout = Some(timeout);
        self
    }

    /// The time between SIGTERM and SIGKILL when this child is killed (by `kill`, `start_kill`,
    /// a timeout or `stop`), instead of the executor's. A grace too large to represent as an
    /// instant (`Duration::MAX`) is no limit: SIGTERM only, never SIGKILL.
    pub fn kill_grace(&mut self, grace: Duration) -> &mut Command {
        self.lifetime.kill_grace = Some(grace);
        self
    }

    /// Starts the child inside the cgroup v2 directory `dir` (`clone3` with
    /// `CLONE_INTO_CGROUP`, Linux 5.7: it is never outside it). With
    /// [`KillScope::Cgroup`] a kill reaches every process in that cgroup and below (SIGKILL with
    /// `cgroup.kill`, Linux 5.14), also those that left the process group with `setsid`; a cgroup
    /// shared with other processes would be killed with them.
    ///
    /// Fork and Vfork (x86-64); PosixSpawn answers `UnsupportedOption`. A directory that is not
    /// in a cgroup v2 hierarchy (see [`cgroup2_mount`](crate::cgroup2_mount)) or a kernel
    /// without `clone3`/`CLONE_INTO_CGROUP` is `Unsupported`; one that cannot be written,
    /// `PermissionDenied`.
    pub fn cgroup<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.lifetime.cgroup = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Starts the child in a new cgroup v2 that the executor makes for it under `parent`
    /// (`napix-<pid>-<n>`), and empties (`cgroup.kill`) and removes after the child is reaped:
    /// processes the child left in it die then. Otherwise as [`cgroup`](Self::cgroup).
    pub fn cgroup_per_child<P: AsRef<Path>>(&mut self, parent: P) -> &mut Command {
        self.lifetime.cgroup_parent = Some(parent.as_ref().to_path_buf());
        self
    }

    /// Kills the child (the escalation of [`ExecHandle::kill`](crate::ExecHandle::kill): SIGTERM
    /// to its kill scope, SIGKILL after its grace) when its [`ExecHandle`](crate::ExecHandle)
    /// is dropped while it runs (tokio's `Command::kill_on_drop`). Default `false`: a dropped
    /// handle's child runs on. Either way the executor reaps it.
    ///
    /// What counts as the handle going away: dropping the `ExecHandle` (when it is shared
    /// through an `Arc`, dropping the last clone), and dropping a
    /// [`spawn_async`](crate::Executor::spawn_async) future after the executor spawned its
    /// child but before it handed the handle out. An [`ExitFuture`](crate::ExitFuture) does
    /// not keep the child alive: awaited after the handle's drop, it gives the kill's status.
    /// The drop itself does not wait; the kill is served by the executor's thread.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use napix_executor::{Command, Executor};
    /// let ex = Executor::start()?;
    /// let child = ex.spawn(Command::new("sleep").arg("30").kill_on_drop(true))?;
    /// let exit = child.wait_async();
    /// drop(child); // SIGTERM now
    /// assert_eq!(pollster::block_on(exit).signal(), Some(libc::SIGTERM));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.lifetime.kill_on_drop = kill_on_drop;
        self
    }
}
