//! The spawn backends, picked in one place: [`Spawner::spawn`].
//!
//! | backend | how | pidfd | cost grows with parent memory |
//! |---|---|---|---|
//! | [`SpawnBackend::Vfork`] | `clone(CLONE_VM \| CLONE_VFORK \| CLONE_PIDFD)` on a reused stack | atomic | no |
//! | [`SpawnBackend::PosixSpawn`] | glibc `posix_spawn` (itself a vfork-style clone) | `pidfd_open` after | no |
//! | [`SpawnBackend::Fork`] | raw `clone(SIGCHLD)` (a fork without atfork handlers) + `execve` | `pidfd_open` after | yes (page tables are copied) |
//!
//! Every backend gives the child fds 0, 1, 2 only, an empty signal mask and default dispositions
//! for every signal, and reports an exec failure as an errno to the parent, never as a child that
//! exits 127. A backend that cannot keep those promises on this system (PosixSpawn off glibc, or
//! on a glibc older than 2.34) fails with [`SpawnError::Unsupported`](crate::SpawnError), naming
//! itself, instead of spawning a child that inherits descriptors.
#![allow(unsafe_code)]

#[cfg(napix_asan)]
mod asan;
mod child;
mod child_raw;
mod exec;
mod fork;
mod lifetime_steps;
pub(crate) mod naming;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod posix_spawn;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[path = "posix_spawn_unsupported.rs"]
mod posix_spawn;
mod setup;
mod vfork;

pub use exec::SpawnBackend;
pub(crate) use exec::{ChildFd, ChildStdio, Program, SpawnFailure, Spawned};
pub(crate) use lifetime_steps::{LifetimeSteps, ParentDeath};
pub(crate) use setup::{CgroupPlace, ChildSetup, ExtraFd};

use crate::error::SpawnStage;
use crate::sys::BlockAllSignals;
use exec::Exec;

/// The first option of `setup` that `backend` cannot apply on this system, if any. Checked on
/// the caller's thread, before the request is queued.
pub(crate) fn unsupported_option(
    backend: SpawnBackend,
    setup: &ChildSetup,
) -> Option<crate::error::CommandOption> {
    match backend {
        SpawnBackend::PosixSpawn => posix_spawn::unsupported_option(setup),
        SpawnBackend::Fork | SpawnBackend::Vfork => {
            // clone3 with CLONE_INTO_CGROUP (Linux 5.7), not refused by a seccomp filter; the
            // Vfork shape also needs the assembly that starts the child on its stack.
            let clone3 = crate::sys::clone3::supported()
                && (backend == SpawnBackend::Fork || crate::sys::clone3::VFORK_SHAPE);
            match &setup.cgroup {
                Some(place) if !clone3 => {
                    Some(crate::error::CommandOption::Cgroup(place.path.clone()))
                }
                _ => None,
            }
        }
    }
}

/// The Vfork backend's stdio slots of an executor's calling threads (three descriptors a set,
/// see `vfork::StdioSlots`): a thread takes a set for one spawn and puts it back, so the
/// executor holds as many sets as threads ever spawned at once, and no thread holds any
/// between its spawns. Dropped with the executor.
#[derive(Default)]
pub(crate) struct SlotPool(std::sync::Mutex<Vec<vfork::StdioSlots>>);

impl SlotPool {
    fn take(&self) -> Option<vfork::StdioSlots> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn put(&self, slots: vfork::StdioSlots) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(slots);
    }
}

/// Per-thread spawn state reused across spawns: the argv pointer array, posix_spawn attributes and
/// the vfork child stack. One executor thread owns one, so nothing is allocated per spawn.
pub(crate) struct Spawner {
    argv: Vec<*const libc::c_char>,
    dispositions: super::SignalDispositions,
    posix: Option<posix_spawn::Attributes>,
    vfork_stack: Option<vfork::ChildStack>,
    vfork_slots: Option<vfork::StdioSlots>,
}

impl Spawner {
    pub(crate) fn new() -> Spawner {
        Spawner::new_with(super::open_proc_status())
    }

    fn new_with(status: Option<std::sync::Arc<std::fs::File>>) -> Spawner {
        Spawner {
            argv: Vec::new(),
            dispositions: super::SignalDispositions::reading(status),
            posix: None,
            vfork_stack: None,
            vfork_slots: None,
        }
    }

    /// A spawn state that holds no descriptor between spawns, for a thread that spawns now and
    /// then for some executor (a calling thread): the executor lends it its descriptors for
    /// each spawn ([`lend`](Self::lend), [`give_back`](Self::give_back)). The memory (the child
    /// stack, the argument array) is kept.
    pub(crate) fn without_descriptors() -> Spawner {
        Spawner::new_with(None)
    }

    /// Lends this spawn state the executor's descriptors for the next spawn: `status` to read
    /// signal dispositions through, and a set of Vfork stdio slots from `pool` (made at the
    /// spawn if the pool has none).
    pub(crate) fn lend(&mut self, status: Option<std::sync::Arc<std::fs::File>>, pool: &SlotPool) {
        self.dispositions.read_from(status);
        self.vfork_slots = pool.take();
    }

    /// Gives back what [`lend`](Self::lend) lent: the slots go back to `pool`, so the
    /// executor, not this thread, holds them.
    pub(crate) fn give_back(&mut self, pool: &SlotPool) {
        self.dispositions.read_from(None);
        if let Some(slots) = self.vfork_slots.take() {
            pool.put(slots);
        }
    }

    /// Starts `command` with `stdio` through `backend`. `clone_pidfd` asks the Vfork backend for
    /// an atomic pidfd (CLONE_PIDFD); it is false when the executor watches children by SIGCHLD,
    /// and then Vfork and Fork still get one to confirm the start time with
    /// ([`Spawned::confirm`]), and a backend that cannot is refused while the kernel reaps
    /// children by itself ([`naming`]).
    pub(crate) fn spawn<'a>(
        &mut self,
        backend: SpawnBackend,
        command: impl Into<Program<'a>>,
        stdio: &ChildStdio<'_>,
        clone_pidfd: bool,
    ) -> Result<Spawned, SpawnFailure> {
        let command: Program<'a> = command.into();
        // Signal mode: a pidfd with the clone to confirm the start time with, or a refusal
        // while the kernel reaps by itself (see `naming`).
        let confirm = !clone_pidfd && naming::confirm_with_pidfd(backend);
        if !clone_pidfd && !confirm {
            naming::refuse_if_autoreaping(backend)?;
        }
        let spawned = match self.spawn_with(backend, command, stdio, clone_pidfd, confirm) {
            Err(f)
                if confirm
                    && matches!(f.stage, SpawnStage::Spawn | SpawnStage::Pidfd)
                    && matches!(f.errno, libc::EMFILE | libc::ENFILE) =>
            {
                // No descriptor for the pidfd: without it, as a backend that cannot get one;
                // while the kernel reaps by itself, the shortage is the error.
                if naming::kernel_autoreaps() {
                    return Err(f);
                }
                self.spawn_with(backend, command, stdio, false, false)
            }
            other => other,
        }?;
        Ok(match spawned {
            Spawned {
                pid,
                pidfd: Some(fd),
                ..
            } if confirm => Spawned {
                pid,
                pidfd: None,
                confirm: Some(fd),
            },
            other => other,
        })
    }

    /// [`spawn`](Self::spawn) through `backend`; `clone_pidfd` asks Vfork for a pidfd with the
    /// clone (Pidfd mode; Fork's comes from `pidfd_open` after the spawn), `confirm` asks Vfork
    /// and Fork for one (Signal mode, see [`Spawned::confirm`]).
    fn spawn_with(
        &mut self,
        backend: SpawnBackend,
        command: Program<'_>,
        stdio: &ChildStdio<'_>,
        clone_pidfd: bool,
        confirm: bool,
    ) -> Result<Spawned, SpawnFailure> {
        self.argv.clear();
        self.argv.extend(command.argv.iter().map(|a| a.as_ptr()));
        self.argv.push(std::ptr::null());
        let argv = self.argv.as_ptr();
        let envp = match command.envp {
            Some(envp) => envp.as_ptr(),
            None => super::environ(),
        };
        match backend {
            SpawnBackend::PosixSpawn => {
                let attrs = match &mut self.posix {
                    Some(a) => a,
                    slot @ None => slot.insert(posix_spawn::Attributes::new().map_err(spawn_err)?),
                };
                let steps = &command.setup.lifetime;
                attrs
                    .set_lifetime(steps.setsid, steps.process_group)
                    .map_err(spawn_err)?;
                posix_spawn::spawn(attrs, command.path, argv, envp, stdio, command.setup)
            }
            SpawnBackend::Fork => {
                // Block first, then sample: see SignalDispositions::non_default.
                let blocked = BlockAllSignals::new();
                let exec = Exec {
                    path: command.path,
                    argv,
                    envp,
                    non_default_signals: self.dispositions.non_default(&blocked),
                    setup: command.setup,
                };
                fork::spawn(&exec, stdio, confirm, &blocked)
            }
            SpawnBackend::Vfork => {
                let stack = match &mut self.vfork_stack {
                    Some(s) => s,
                    slot @ None => slot.insert(vfork::ChildStack::new().map_err(spawn_err)?),
                };
                if self.vfork_slots.is_none() {
                    // Without slots (out of fds) the clone copies the whole table: slower, fine.
                    self.vfork_slots = vfork::StdioSlots::new(stdio.null).ok();
                }
                let blocked = BlockAllSignals::new();
                let exec = Exec {
                    path: command.path,
                    argv,
                    envp,
                    non_default_signals: self.dispositions.non_default(&blocked),
                    setup: command.setup,
                };
                let slots = self.vfork_slots.as_mut();
                let pidfd = clone_pidfd || confirm;
                vfork::spawn(stack, slots, &exec, stdio, pidfd, &blocked)
            }
        }
    }
}

fn spawn_err(errno: rustix::io::Errno) -> SpawnFailure {
    SpawnFailure::new(SpawnStage::Spawn, errno.raw_os_error())
}
