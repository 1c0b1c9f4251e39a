//! The PosixSpawn backend where it cannot work (any target but Linux with glibc): every spawn
//! answers `Unsupported`, naming the backend.
//!
//! The backend relies on glibc specifics (the child's reset of glibc-internal signals,
//! `posix_spawn_file_actions_addclosefrom_np`); without them the child would inherit the
//! parent's descriptors. The Vfork and Fork backends work on any Linux libc.

use std::ffi::CStr;

use super::exec::{ChildStdio, SpawnBackend, SpawnFailure, Spawned};
use super::setup::ChildSetup;

/// Nothing to prepare: [`spawn`] always declines.
pub(super) struct Attributes;

impl Attributes {
    pub(super) fn new() -> Result<Attributes, rustix::io::Errno> {
        Ok(Attributes)
    }
}

pub(super) fn spawn(
    _attrs: &Attributes,
    _path: &CStr,
    _argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
    _stdio: &ChildStdio<'_>,
    _setup: &ChildSetup,
) -> Result<Spawned, SpawnFailure> {
    Err(SpawnFailure::unsupported(
        SpawnBackend::PosixSpawn,
        "it needs Linux with glibc; use the Vfork or Fork backend",
    ))
}

/// Nothing to decline option by option: every spawn declines as a whole.
pub(super) fn unsupported_option(_setup: &ChildSetup) -> Option<crate::error::CommandOption> {
    None
}
