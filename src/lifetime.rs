//! A command's lifetime options as the executor thread keeps them for one child: its deadline
//! and its kill grace.
//!
//! Resolved on the caller's thread; the escalation ([`crate::escalation`]) reads them from the
//! child's state.

use std::time::Duration;

/// The lifetime options of one child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lifetime {
    /// The kill escalation starts by itself this long after the spawn.
    pub(crate) timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL for this child; `None`: the executor's.
    pub(crate) kill_grace: Option<Duration>,
}
