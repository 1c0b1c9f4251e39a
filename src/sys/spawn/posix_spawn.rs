//! The PosixSpawn backend: glibc's `posix_spawn`.
//!
//! glibc (2.24+) runs the child in a `clone(CLONE_VM | CLONE_VFORK)` on a stack it maps per call,
//! applies the file actions, resets the signals in `sigdefault` one `sigaction` at a time, and
//! returns the child's exec errno from `posix_spawn` itself.

use std::ffi::CStr;
use std::mem::MaybeUninit;

use rustix::process::Pid;

use super::{ChildStdio, SpawnFailure, Spawned};
use crate::error::SpawnStage;

/// Spawn attributes that never change: empty signal mask, every signal to SIG_DFL.
pub(super) struct Attributes {
    attr: libc::posix_spawnattr_t,
}

impl Attributes {
    pub(super) fn new() -> Result<Attributes, rustix::io::Errno> {
        let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        // SAFETY: posix_spawnattr_init initialises the struct it is given.
        let rc = unsafe { libc::posix_spawnattr_init(attr.as_mut_ptr()) };
        check(rc)?;
        let mut me = Attributes {
            // SAFETY: initialised by the successful init above; Drop destroys it from now on.
            attr: unsafe { attr.assume_init() },
        };
        // SAFETY: sigset_t is plain data that sigemptyset/sigfillset initialise; on Linux it is a
        // 128-byte array of c_ulong, so its first 8 bytes are an aligned u64 holding signals 1-64.
        // The setters copy the sets into the initialised attribute object.
        unsafe {
            let mut empty = std::mem::zeroed::<libc::sigset_t>();
            let mut all = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut empty);
            libc::sigfillset(&mut all);
            // glibc's sigfillset leaves out its two internal signals (32 SIGCANCEL, 33 SIGSETXID)
            // and its spawn child then sets them to SIG_IGN, which survives execve. Set every bit
            // of signals 1..=64 by hand so that the child resets those two to SIG_DFL as well.
            // The child is not in our thread group, so glibc never needs them there.
            *(&mut all as *mut libc::sigset_t).cast::<u64>() = u64::MAX;
            check(libc::posix_spawnattr_setsigmask(&mut me.attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut me.attr, &all))?;
            let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(
                &mut me.attr,
                flags as libc::c_short,
            ))?;
        }
        Ok(me)
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: the attribute object was initialised in new().
        unsafe { libc::posix_spawnattr_destroy(&mut self.attr) };
    }
}

/// File actions for one spawn; destroyed on drop.
struct FileActions {
    actions: libc::posix_spawn_file_actions_t,
}

impl FileActions {
    fn new(stdio: &ChildStdio<'_>) -> Result<FileActions, rustix::io::Errno> {
        let mut actions = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        // SAFETY: init initialises the struct it is given.
        check(unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) })?;
        let mut me = FileActions {
            // SAFETY: initialised by the successful init above; Drop destroys it from now on.
            actions: unsafe { actions.assume_init() },
        };
        for (target, fd) in stdio.raw().into_iter().enumerate() {
            // SAFETY: the actions object is initialised; the fds are above 2, so each dup2
            // lands on a different number and clears CLOEXEC.
            check(unsafe {
                libc::posix_spawn_file_actions_adddup2(&mut me.actions, fd, target as i32)
            })?;
        }
        // SAFETY: as above; glibc 2.34+ implements it with close_range in the child.
        check(unsafe { libc::posix_spawn_file_actions_addclosefrom_np(&mut me.actions, 3) })?;
        Ok(me)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: the actions object was initialised in new().
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.actions) };
    }
}

fn check(rc: i32) -> Result<(), rustix::io::Errno> {
    if rc == 0 {
        Ok(())
    } else {
        Err(rustix::io::Errno::from_raw_os_error(rc))
    }
}

pub(super) fn spawn(
    attrs: &Attributes,
    path: &CStr,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdio: &ChildStdio<'_>,
) -> Result<Spawned, SpawnFailure> {
    let actions = FileActions::new(stdio).map_err(|e| SpawnFailure {
        stage: SpawnStage::Spawn,
        errno: e.raw_os_error(),
    })?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: path is a C string, argv/envp are NUL-terminated arrays of C strings kept alive by
    // the caller, actions and attrs are initialised objects; `pid` is written on success.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.actions,
            &attrs.attr,
            argv.cast(),
            envp.cast(),
        )
    };
    if rc != 0 {
        // glibc reports the child's exec errno here; a failure of clone itself too (EAGAIN).
        let stage = match rc {
            libc::EAGAIN | libc::ENOMEM => SpawnStage::Spawn,
            _ => SpawnStage::Exec,
        };
        return Err(SpawnFailure { stage, errno: rc });
    }
    match Pid::from_raw(pid) {
        Some(pid) => Ok(Spawned { pid, pidfd: None }),
        None => Err(SpawnFailure {
            stage: SpawnStage::Spawn,
            errno: libc::EINVAL,
        }),
    }
}
