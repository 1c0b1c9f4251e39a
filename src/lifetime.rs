//! A command's lifetime options: as the caller sets them ([`LifetimeOptions`], on the
//! [`Command`](crate::Command)) and as the executor keeps them for one child ([`Lifetime`]): its
//! deadline, its kill grace, its kill scope ([`KillScope`]: which processes a kill reaches) and
//! its cgroup.
//!
//! Resolved on the caller's thread; the escalation ([`crate::escalation`]) and the signalling in
//! [`crate::proc_state`] read them from the child's state.

use std::path::PathBuf;
use std::time::Duration;

/// Which processes a kill of the child reaches: [`ExecHandle::kill`], `start_kill`, `terminate`,
/// `send_signal`, a deadline and [`Executor::stop`] all act on the scope.
///
/// | scope | reaches | race-free because |
/// |---|---|---|
/// | `Process` (default) | the child only | signals go through its pidfd |
/// | `Group` | the child's process group (the child leads it) | the group is signalled only while the child is unreaped: its zombie pins the group id |
/// | `Cgroup` | every process in the child's cgroup v2 and below, also those that left the group with `setsid` | SIGKILL is `cgroup.kill`; other signals go through a pidfd per member, checked to be in the cgroup |
///
/// When a `Group` or `Cgroup` child exits while a kill of it is under way (or the executor
/// stops), what is left of its scope gets SIGKILL before the child is reaped: after the reap its
/// group id may be reused, so this is the last moment the group can be named safely.
///
/// [`ExecHandle::kill`]: crate::ExecHandle::kill
/// [`Executor::stop`]: crate::Executor::stop
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KillScope {
    /// The child process only.
    #[default]
    Process,
    /// The child's process group. The child must lead it: with this scope a command without
    /// `process_group` or `setsid` gets `process_group(0)`.
    Group,
    /// The child's cgroup v2 (a command `cgroup` directory, or one the executor makes for it).
    Cgroup,
}

/// The lifetime options of a [`Command`](crate::Command), as the caller set them (checked when
/// the command is spawned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LifetimeOptions {
    pub(crate) process_group: Option<i32>,
    pub(crate) setsid: bool,
    pub(crate) scope: KillScope,
    pub(crate) parent_death_signal: Option<i32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) kill_grace: Option<Duration>,
    pub(crate) cgroup: Option<PathBuf>,
    /// The parent under which the executor makes one cgroup per child.
    pub(crate) cgroup_parent: Option<PathBuf>,
    pub(crate) kill_on_drop: bool,
}

/// The lifetime options of one child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lifetime {
    /// The kill escalation starts by itself this long after the spawn.
    pub(crate) timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL for this child; `None`: the executor's.
    pub(crate) kill_grace: Option<Duration>,
    pub(crate) scope: KillScope,
    /// The cgroup the child was put into, when it was.
    pub(crate) cgroup: Option<PathBuf>,
    /// True when the executor made that cgroup for this child: emptied and removed after the reap.
    pub(crate) owns_cgroup: bool,
    /// The kill escalation starts when the child's handle goes away while it runs.
    pub(crate) kill_on_drop: bool,
}

impl Lifetime {
    /// Whether a kill reaches more than the child, so what is left of the scope must be killed
    /// before the reap when a kill is under way.
    pub(crate) fn reaches_beyond_child(&self) -> bool {
        match self.scope {
            KillScope::Process => false,
            KillScope::Group => true,
            KillScope::Cgroup => self.cgroup.is_some(),
        }
    }
}
