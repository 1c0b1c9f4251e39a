//! The PosixSpawn backend: glibc's `posix_spawn` (compiled for Linux with glibc only).
//!
//! glibc (2.24+) runs the child in a `clone(CLONE_VM | CLONE_VFORK)` on a stack it maps per call,
//! applies the file actions, resets the signals in `sigdefault` one `sigaction` at a time, and
//! returns the child's exec errno from `posix_spawn` itself.
//!
//! Closing every descriptor above 2 needs `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34).
//! It is looked up at run time, as std's `weak!` does, so that linking this crate does not raise
//! the glibc a binary needs; without it the backend answers `Unsupported` rather than let the
//! child inherit the parent's descriptors.
//!
//! glibc's child reports a failed file action (a `dup2`, the `chdir`) with the same single
//! errno as a failed exec. The caller's thread checks beforehand what it can (the directory
//! exists, every descriptor is open, every number fits); a failure that still comes back is
//! attributed by [`step_that_failed`], so that it carries the same stage and option as on the
//! other backends.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use rustix::process::Pid;

use super::exec::{ChildFd, ChildStdio, SpawnFailure, Spawned};
use super::setup::ChildSetup;
use crate::error::CommandOption;
use crate::error::SpawnStage;

/// Spawn attributes: empty signal mask, every signal to SIG_DFL, and per spawn a new session
/// or process group.
pub(super) struct Attributes {
    attr: libc::posix_spawnattr_t,
    /// The session and group flags the attributes carry now (to skip setting them again).
    lifetime: (bool, Option<i32>),
}

/// The flags every spawn has.
const BASE_FLAGS: libc::c_int = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;

impl Attributes {
    pub(super) fn new() -> Result<Attributes, rustix::io::Errno> {
        let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        // SAFETY: posix_spawnattr_init initialises the struct it is given.
        let rc = unsafe { libc::posix_spawnattr_init(attr.as_mut_ptr()) };
        check(rc)?;
        let mut me = Attributes {
            // SAFETY: initialised by the successful init above; Drop destroys it from now on.
            attr: unsafe { attr.assume_init() },
            lifetime: (false, None),
        };
        let all = every_signal();
        // SAFETY: sigset_t is plain data that sigemptyset initialises. The setters copy the sets
        // into the initialised attribute object.
        unsafe {
            let mut empty = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut empty);
            check(libc::posix_spawnattr_setsigmask(&mut me.attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut me.attr, &all))?;
            check(libc::posix_spawnattr_setflags(
                &mut me.attr,
                BASE_FLAGS as libc::c_short,
            ))?;
        }
        Ok(me)
    }

    /// `setsid` (`POSIX_SPAWN_SETSID`, glibc 2.26) and `setpgid(0, pgid)`
    /// (`POSIX_SPAWN_SETPGROUP`) for the next spawn, as the command's lifetime steps ask.
    pub(super) fn set_lifetime(
        &mut self,
        setsid: bool,
        process_group: Option<i32>,
    ) -> Result<(), rustix::io::Errno> {
        // setsid already makes the child lead a new group (see lifetime_steps.rs).
        let process_group = process_group.filter(|&g| !(setsid && g == 0));
        if self.lifetime == (setsid, process_group) {
            return Ok(());
        }
        let mut flags = BASE_FLAGS;
        if setsid {
            flags |= libc::POSIX_SPAWN_SETSID as libc::c_int;
        }
        if process_group.is_some() {
            flags |= libc::POSIX_SPAWN_SETPGROUP;
        }
        // SAFETY: the attribute object is initialised; the setters store integers in it.
        unsafe {
            check(libc::posix_spawnattr_setpgroup(
                &mut self.attr,
                process_group.unwrap_or(0),
            ))?;
            check(libc::posix_spawnattr_setflags(
                &mut self.attr,
                flags as libc::c_short,
            ))?;
        }
        self.lifetime = (setsid, process_group);
        Ok(())
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: the attribute object was initialised in new().
        unsafe { libc::posix_spawnattr_destroy(&mut self.attr) };
    }
}

/// Signals 1..=64 in a `sigset_t`, glibc's internal 32 (SIGCANCEL) and 33 (SIGSETXID) included.
///
/// glibc's `sigfillset` and `sigaddset` leave those two out, and its spawn child then sets them to
/// SIG_IGN, which survives execve. Their bits are set by hand, in the layout glibc's own
/// `__sigaddset` uses (an array of `unsigned long`, signal `n` at bit `(n - 1) % BITS` of word
/// `(n - 1) / BITS`), so that the child resets them to SIG_DFL as well. The child is not in our
/// thread group, so glibc never needs them there.
fn every_signal() -> libc::sigset_t {
    const _: () = assert!(
        std::mem::align_of::<libc::sigset_t>() >= std::mem::align_of::<libc::c_ulong>()
            && std::mem::size_of::<libc::sigset_t>() * 8 >= 64
    );
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set = unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        set
    };
    for sig in 1..=64 {
        // SAFETY: `set` is an initialised sigset_t; sigaddset only checks `sig` and sets a bit.
        if unsafe { libc::sigaddset(&mut set, sig) } == 0 {
            continue;
        }
        let bit = (sig - 1) as usize;
        let word_bits = libc::c_ulong::BITS as usize;
        let words = (&mut set as *mut libc::sigset_t).cast::<libc::c_ulong>();
        // SAFETY: a sigset_t is an array of c_ulong at least 64 bits long and aligned for
        // c_ulong (asserted above), so word `bit / word_bits` is inside it and aligned.
        unsafe { *words.add(bit / word_bits) |= 1 << (bit % word_bits) };
    }
    set
}

/// `posix_spawn_file_actions_addclosefrom_np(actions, from)`.
type AddCloseFrom =
    unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, libc::c_int) -> libc::c_int;

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), looked up once with `dlsym`.
fn addclosefrom() -> Option<AddCloseFrom> {
    static FOUND: OnceLock<Option<AddCloseFrom>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
        let ptr = unsafe {
            libc::dlsym(
                libc::RTLD_DEFAULT,
                c"posix_spawn_file_actions_addclosefrom_np".as_ptr(),
            )
        };
        // SAFETY: a non-null address for this name is glibc's function, whose C signature is
        // `int (posix_spawn_file_actions_t *, int)`.
        (!ptr.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, AddCloseFrom>(ptr) })
    })
}

/// Why this backend cannot run without `addclosefrom_np`.
const NO_CLOSEFROM: &str = "this glibc lacks posix_spawn_file_actions_addclosefrom_np (glibc 2.34), \
                            without which the child would inherit every descriptor";

/// File actions for one spawn; destroyed on drop.
struct FileActions {
    actions: libc::posix_spawn_file_actions_t,
}

impl FileActions {
    /// In order: stdio onto 0-2, extra descriptors onto their numbers, every other descriptor
    /// from 3 up closed, then the working directory.
    fn new(
        stdio: &ChildStdio<'_>,
        setup: &ChildSetup,
        closefrom: AddCloseFrom,
    ) -> Result<FileActions, rustix::io::Errno> {
        let mut actions = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        // SAFETY: init initialises the struct it is given.
        check(unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) })?;
        let mut me = FileActions {
            // SAFETY: initialised by the successful init above; Drop destroys it from now on.
            actions: unsafe { actions.assume_init() },
        };
        let stdio = stdio
            .raw()
            .into_iter()
            .enumerate()
            .filter(|(_, fd)| *fd >= 0);
        let extras = setup
            .fds
            .iter()
            .map(|f| (f.target as usize, f.source.as_raw_fd()));
        for (target, fd) in stdio.chain(extras) {
            // SAFETY: the actions object is initialised; each source is above 2 and above every
            // extra number (or is the child's fd 1, for a merged stderr), so each dup2 lands on
            // another number, clears CLOEXEC and reads a source not yet overwritten.
            check(unsafe {
                libc::posix_spawn_file_actions_adddup2(&mut me.actions, fd, target as i32)
            })?;
        }
        let floor = setup.fd_floor();
        // SAFETY: as above; `closefrom` is glibc's addclosefrom_np (implemented with close_range
        // in the child).
        check(unsafe { closefrom(&mut me.actions, floor + 1) })?;
        let mut targets = setup.fds.iter().map(|f| f.target).peekable();
        for fd in 3..=floor {
            if targets.next_if_eq(&fd).is_some() {
                continue;
            }
            // SAFETY: as above. glibc ignores EBADF for a descriptor that is not open.
            check(unsafe { libc::posix_spawn_file_actions_addclose(&mut me.actions, fd) })?;
        }
        if let Some(dir) = &setup.cwd {
            let Some(addchdir) = addchdir() else {
                return Err(rustix::io::Errno::NOSYS);
            };
            // SAFETY: as above; `addchdir` is glibc's posix_spawn_file_actions_addchdir_np,
            // which copies the path.
            check(unsafe { addchdir(&mut me.actions, dir.as_ptr()) })?;
        }
        Ok(me)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: the actions object was initialised in new().
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.actions) };
    }
}

/// `posix_spawn_file_actions_addchdir_np(actions, path)`.
type AddChdir =
    unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const libc::c_char) -> libc::c_int;

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), looked up once at run time so that
/// linking this crate does not raise the glibc a binary needs.
fn addchdir() -> Option<AddChdir> {
    static FOUND: OnceLock<Option<AddChdir>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
        let ptr = unsafe {
            libc::dlsym(
                libc::RTLD_DEFAULT,
                c"posix_spawn_file_actions_addchdir_np".as_ptr(),
            )
        };
        // SAFETY: a non-null address for this name is glibc's function, whose C signature is
        // `int (posix_spawn_file_actions_t *, const char *)`.
        (!ptr.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, AddChdir>(ptr) })
    })
}

/// The first option of `setup` this backend cannot apply here: glibc's `posix_spawn` has no
/// step for the umask, rlimits or credentials, and the working directory needs glibc 2.29.
pub(super) fn unsupported_option(setup: &ChildSetup) -> Option<CommandOption> {
    if let Some(option) = setup.first_without_posix_spawn_step() {
        return Some(option);
    }
    // No attribute for either (glibc 2.39's posix_spawnattr_setcgroup_np is not looked for).
    if setup.lifetime.parent_death.is_some() {
        return Some(CommandOption::ParentDeathSignal);
    }
    if let Some(place) = &setup.cgroup {
        return Some(CommandOption::Cgroup(place.path.clone()));
    }
    (setup.cwd.is_some() && addchdir().is_none()).then_some(CommandOption::CurrentDir)
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
    setup: &ChildSetup,
) -> Result<Spawned, SpawnFailure> {
    let Some(closefrom) = addclosefrom() else {
        return Err(SpawnFailure::unsupported(
            super::exec::SpawnBackend::PosixSpawn,
            NO_CLOSEFROM,
        ));
    };
    let actions = FileActions::new(stdio, setup, closefrom)
        .map_err(|e| SpawnFailure::new(SpawnStage::Spawn, e.raw_os_error()))?;
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
        let failure = match rc {
            libc::EAGAIN | libc::ENOMEM => SpawnFailure::new(SpawnStage::Spawn, rc),
            _ => step_that_failed(rc, stdio, setup),
        };
        return Err(failure);
    }
    match Pid::from_raw(pid) {
        Some(pid) => Ok(Spawned {
            pid,
            pidfd: None,
            confirm: None,
        }),
        None => Err(SpawnFailure::new(SpawnStage::Spawn, libc::EINVAL)),
    }
}

/// Which step of the child most likely failed with `errno`: glibc's child runs the file actions
/// (stdio and extra `dup2`s, the closes, `chdir`) before `execve` and reports whichever failed
/// with the same single errno, so the parent looks again at what each action needed.
///
/// - `EBADF` never comes from `execve`: it is a `dup2` whose source is no longer open or whose
///   number is at or above `RLIMIT_NOFILE` (lowered since the command was prepared). The first
///   such stdio stream or extra descriptor is named; if none is found now, the first extra (or
///   stdin) is.
/// - An errno `chdir` can give, for a command with a working directory that is now missing,
///   not a directory, or not searchable (`access(X_OK)`), is the working directory's.
/// - Anything else is the exec's, as for the other backends.
///
/// The look happens after the fact, so a directory that comes back in between is blamed on the
/// exec; the caller-side check before the spawn (`request.rs`) catches the usual cases first.
fn step_that_failed(errno: i32, stdio: &ChildStdio<'_>, setup: &ChildSetup) -> SpawnFailure {
    let at = |stage, index| SpawnFailure {
        index,
        ..SpawnFailure::new(stage, errno)
    };
    if errno == libc::EBADF {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let usable = |source: BorrowedFd<'_>, target: i32| {
            rustix::io::fcntl_getfd(source).is_ok()
                && limit.is_none_or(|l| u64::try_from(target).is_ok_and(|t| t < l))
        };
        for (stream, fd) in stdio.fds.iter().enumerate() {
            if let ChildFd::Fd(fd) = fd
                && !usable(*fd, stream as i32)
            {
                return at(SpawnStage::Stdio, stream);
            }
        }
        if let Some(index) = setup
            .fds
            .iter()
            .position(|f| !usable(f.source.as_fd(), f.target))
        {
            return at(SpawnStage::Fd, index);
        }
        return match setup.fds.is_empty() {
            false => at(SpawnStage::Fd, 0),
            true => at(SpawnStage::Stdio, 0),
        };
    }
    let chdir_errno = matches!(
        errno,
        libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ELOOP | libc::ENAMETOOLONG | libc::EIO
    );
    if let Some(dir) = &setup.cwd
        && chdir_errno
    {
        let enterable = rustix::fs::stat(dir.as_c_str()).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        }) && rustix::fs::access(dir.as_c_str(), rustix::fs::Access::EXEC_OK)
            .is_ok();
        if !enterable {
            return at(SpawnStage::Chdir, 0);
        }
    }
    SpawnFailure::new(SpawnStage::Exec, errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_holds_1_to_64_glibc_internal_ones_included() {
        let set = every_signal();
        for sig in 1..=64 {
            // SAFETY: `set` is an initialised sigset_t; sigismember only reads it.
            let member = unsafe { libc::sigismember(&set, sig) };
            assert_eq!(member, 1, "signal {sig} missing from the sigdefault set");
        }
    }

    #[test]
    fn file_action_failures_are_named_not_blamed_on_the_exec() {
        use super::super::setup::ExtraFd;
        use std::sync::Arc;
        let null = std::fs::File::open("/dev/null").expect("open");
        let null = std::os::fd::OwnedFd::from(null);
        let stdio = ChildStdio {
            fds: [ChildFd::Fd(null.as_fd()), ChildFd::Inherit, ChildFd::Stdout],
            null: null.as_fd(),
        };
        let source = Arc::new(null.try_clone().expect("dup"));
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1 << 20);
        let beyond = i32::try_from(limit).unwrap_or(i32::MAX);
        let setup = ChildSetup {
            fds: vec![
                ExtraFd {
                    target: 5,
                    source: source.clone(),
                },
                ExtraFd {
                    target: beyond,
                    source,
                },
            ],
            ..ChildSetup::default()
        };
        // A dup2 onto a number at or above RLIMIT_NOFILE: the second extra descriptor.
        let f = step_that_failed(libc::EBADF, &stdio, &setup);
        assert!(matches!(f.stage, SpawnStage::Fd) && f.index == 1, "{f:?}");
        // A working directory that is gone: the chdir's; one that is there: the exec's.
        let mut setup = ChildSetup {
            cwd: Some(c"/nonexistent/napix-dir".to_owned()),
            ..ChildSetup::default()
        };
        let f = step_that_failed(libc::ENOENT, &stdio, &setup);
        assert!(matches!(f.stage, SpawnStage::Chdir), "{f:?}");
        setup.cwd = Some(c"/".to_owned());
        let f = step_that_failed(libc::ENOENT, &stdio, &setup);
        assert!(matches!(f.stage, SpawnStage::Exec), "{f:?}");
        let f = step_that_failed(libc::EACCES, &stdio, &ChildSetup::default());
        assert!(matches!(f.stage, SpawnStage::Exec), "{f:?}");
    }

    #[test]
    fn addclosefrom_is_found_on_this_glibc() {
        // SAFETY: gnu_get_libc_version returns a static C string.
        let version = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
        let version = version.to_str().expect("ASCII version");
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let at_least_2_34 = (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 34);
        assert_eq!(
            addclosefrom().is_some(),
            at_least_2_34,
            "glibc {version}: addclosefrom_np found iff glibc >= 2.34"
        );
    }
}
