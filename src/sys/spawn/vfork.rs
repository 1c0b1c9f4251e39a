//! The Vfork backend: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` on a reused stack.
//!
//! The child shares our memory until it execs or exits, and the calling thread is suspended until
//! then, so the child can read its [`ChildPlan`] from our stack and store an exec errno into it. The
//! kernel writes the pidfd atomically with the clone: the child is never running untracked.
//! Other threads of the parent keep running; the child touches nothing of theirs.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use rustix::process::Pid;

use super::child::{ChildPlan, ExecErrorReport, UNSHARE_FAILED, exec_child};
use super::exec::{ChildFd, ChildStdio, Exec, SpawnFailure, Spawned};
use super::setup::ExtraFd;
use super::setup::ExtraSlots;
use crate::error::SpawnStage;
use crate::sys::BlockAllSignals;

/// Size of the child's stack. The child runs a few dozen syscalls and no deep calls.
const STACK_SIZE: usize = 64 * 1024;
/// One guard page at the bottom, so an overflow faults instead of writing over a neighbour.
const GUARD_SIZE: usize = 4096;

/// A stack mapped once and reused for every clone made by one thread.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    pub(super) fn new() -> Result<ChildStack, rustix::io::Errno> {
        let len = STACK_SIZE + GUARD_SIZE;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )?
        };
        let stack = ChildStack { base, len };
        // SAFETY: the first page of the mapping just created belongs to us alone.
        unsafe { rustix::mm::mprotect(base, GUARD_SIZE, MprotectFlags::empty())? };
        Ok(stack)
    }

    /// The initial stack pointer: the top of the mapping (stacks grow down), 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new(); no child runs on it any more (each
        // clone returns only after its child exec'd or exited).
        unsafe {
            let _ = rustix::mm::munmap(self.base, self.len);
        }
    }
}

/// The errno of a spawn whose child the kernel killed as it entered its cgroup, before it ran an
/// instruction. Linux kernels with the `CLONE_INTO_CGROUP` kill-sequence bug do that to every
/// child cloned into a cgroup that was once emptied through `cgroup.kill`.
pub(super) const BORN_KILLED: i32 = libc::ECANCELED;

/// A plan and the flag its child sets first thing: a child cloned into a cgroup that never set it
/// never ran.
struct MarkedPlan<'a> {
    started: AtomicBool,
    plan: &'a ChildPlan<'a>,
}

extern "C" fn marked_child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the &MarkedPlan passed to clone3 below; the parent is suspended
    // (CLONE_VFORK) so it outlives this use.
    let marked = unsafe { &*(arg as *const MarkedPlan<'_>) };
    marked.started.store(true, Ordering::Release);
    // SAFETY: as child_entry.
    unsafe { exec_child(marked.plan) }
}

extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the &ChildPlan passed to clone below; the parent is suspended (CLONE_VFORK)
    // so the plan outlives this use.
    unsafe { exec_child(&*(arg as *const ChildPlan<'_>)) }
}

/// Descriptors, at the lowest numbers free when they were made, that hold the child's
/// stdin/stdout/stderr sources and its extra descriptors' sources at spawn time.
///
/// The child is cloned with CLONE_FILES and takes a private copy of only the descriptors up to
/// the highest slot (see `child.rs`), instead of the kernel copying the whole table: with one
/// pidfd per tracked child, 10,000 children made every spawn copy and then close 10,000 fds.
/// The three stdio slots are made at the first spawn and kept. An extra descriptor's source is
/// duplicated for one spawn at the lowest free number and closed after it (so the executor
/// holds no more descriptors than before); where the table is dense that number sits high and
/// the child's copy reaches it, which is still no more than the whole table.
pub(super) struct StdioSlots {
    slots: [OwnedFd; 3],
    /// The descriptor each slot was last loaded from (to skip a dup3 when it has not changed).
    mirrors: [RawFd; 3],
    top: u32,
    /// This spawn's duplicates of the extra descriptors' sources, closed by `release`.
    extras: Vec<OwnedFd>,
    /// Their numbers, which the child reads (both vectors keep their capacity across spawns).
    extra_raw: Vec<i32>,
}

/// What one spawn's child reads from the slots.
struct Loaded {
    /// What the child installs on 0, 1, 2.
    stdio: [i32; 3],
    /// The highest number the child must copy.
    top: u32,
    /// First of the free numbers the child moves low extra sources to.
    spare: i32,
}

/// Why the slots cannot carry a spawn.
enum LoadError {
    /// Not for this spawn (no descriptor for another slot, or no room below `RLIMIT_NOFILE`
    /// for the child's moves): clone without CLONE_FILES instead.
    Decline,
    /// A `dup3` into a slot failed: the spawn fails.
    Failed(rustix::io::Errno),
}

impl StdioSlots {
    pub(super) fn new(fill: BorrowedFd<'_>) -> Result<StdioSlots, rustix::io::Errno> {
        let dup = || rustix::io::fcntl_dupfd_cloexec(fill, 3);
        let slots = [dup()?, dup()?, dup()?];
        let top = slots.iter().map(|s| s.as_raw_fd()).max().unwrap_or(2) as u32;
        Ok(StdioSlots {
            mirrors: [fill.as_raw_fd(); 3],
            slots,
            top,
            extras: Vec::new(),
            extra_raw: Vec::new(),
        })
    }

    /// Makes each slot refer to the matching source (close-on-exec in the parent; the child's
    /// dup2 onto 0-2 clears that) and returns what the child installs: a slot, or the
    /// untouched -1 / 1 of an inherited or merged stream (0-2 are in the child's copy). The
    /// extras' duplicates go to `extras` and their numbers to `extra_raw`.
    /// (`release` undoes all of it after the clone.)
    fn load(&mut self, stdio: &ChildStdio<'_>, extras: &[ExtraFd]) -> Result<Loaded, LoadError> {
        let mut top = self.top;
        let mut spare = 0;
        self.extras.clear();
        self.extra_raw.clear();
        if !extras.is_empty() {
            for fd in extras {
                let low = rustix::io::fcntl_dupfd_cloexec(&*fd.source, 3)
                    .map_err(|_| LoadError::Decline)?;
                self.extra_raw.push(low.as_raw_fd());
                self.extras.push(low);
            }
            top = top.max(
                self.extra_raw
                    .iter()
                    .map(|&fd| fd as u32)
                    .max()
                    .unwrap_or(0),
            );
            let floor = extras.iter().map(|f| f.target).max().unwrap_or(2);
            // The child moves sources up to `spare..spare + n`: above the copied part and
            // every extra number, and below the descriptor limit.
            spare = (top as i32).max(floor).saturating_add(1);
            let end = u64::try_from(spare).unwrap_or(0) + extras.len() as u64;
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
            if limit.is_some_and(|l| end > l) || spare == i32::MAX {
                return Err(LoadError::Decline);
            }
        }
        let mut raw = stdio.raw();
        for (i, fd) in stdio.fds.iter().enumerate() {
            let ChildFd::Fd(source) = fd else {
                continue;
            };
            if self.mirrors[i] != source.as_raw_fd() {
                rustix::io::dup3(source, &mut self.slots[i], rustix::io::DupFlags::CLOEXEC)
                    .map_err(|e| match e {
                        // The slot's number is at or above a descriptor limit lowered since it
                        // was made: clone without the slots instead.
                        rustix::io::Errno::BADF => LoadError::Decline,
                        e => LoadError::Failed(e),
                    })?;
                self.mirrors[i] = source.as_raw_fd();
            }
            raw[i] = self.slots[i].as_raw_fd();
        }
        Ok(Loaded {
            stdio: raw,
            top,
            spare,
        })
    }

    /// Points every slot back at `rest` (stdin's /dev/null) and closes the extras' duplicates,
    /// so that nothing of ours keeps a pipe's write end open (its reader would never see EOF).
    fn release(&mut self, rest: BorrowedFd<'_>) {
        for (slot, mirror) in self.slots.iter_mut().zip(self.mirrors.iter_mut()) {
            if *mirror != rest.as_raw_fd()
                && rustix::io::dup3(rest, slot, rustix::io::DupFlags::CLOEXEC).is_ok()
            {
                *mirror = rest.as_raw_fd();
            }
        }
        self.extras.clear();
        self.extra_raw.clear();
    }
}

/// False once a child failed to unshare its descriptor table (Linux before 5.9, or a seccomp
/// filter): every later spawn clones without CLONE_FILES.
static SHARE_FILES: AtomicBool = AtomicBool::new(true);

/// Clones and execs `exec` with `stdio`. Every signal is blocked on the calling thread
/// (`_blocked`): under CLONE_VM a handler of ours that ran in the child would run on our memory.
pub(super) fn spawn(
    stack: &mut ChildStack,
    slots: Option<&mut StdioSlots>,
    exec: &Exec<'_>,
    stdio: &ChildStdio<'_>,
    clone_pidfd: bool,
    _blocked: &BlockAllSignals,
) -> Result<Spawned, SpawnFailure> {
    let share = if SHARE_FILES.load(Ordering::Relaxed) {
        slots
    } else {
        None
    };
    let Some(slots) = share else {
        return clone_and_exec(stack, exec, stdio.raw(), None, clone_pidfd);
    };
    let loaded = match slots.load(stdio, &exec.setup.fds) {
        Ok(loaded) => loaded,
        Err(LoadError::Decline) => {
            slots.release(stdio.null);
            return clone_and_exec(stack, exec, stdio.raw(), None, clone_pidfd);
        }
        Err(LoadError::Failed(e)) => {
            slots.release(stdio.null);
            return Err(SpawnFailure::new(SpawnStage::Spawn, e.raw_os_error()));
        }
    };
    let shared = SharedTable {
        top: loaded.top,
        extras: (!exec.setup.fds.is_empty()).then_some(ExtraSlots {
            fds: &slots.extra_raw,
            spare: loaded.spare,
        }),
    };
    let result = clone_and_exec(stack, exec, loaded.stdio, Some(shared), clone_pidfd);
    slots.release(stdio.null);
    match result {
        Err(SpawnFailure { errno, .. }) if errno & UNSHARE_FAILED != 0 => {
            let cause = errno & !UNSHARE_FAILED;
            // Not there (before 5.9) or refused by a seccomp filter: stop trying. Anything else
            // (ENOMEM) is transient and not remembered.
            if matches!(cause, libc::ENOSYS | libc::EINVAL | libc::EPERM) {
                SHARE_FILES.store(false, Ordering::Relaxed);
                tracing::debug!(
                    errno = cause,
                    "close_range(CLOSE_RANGE_UNSHARE) unavailable: vfork clones copy the fd table"
                );
            }
            clone_and_exec(stack, exec, stdio.raw(), None, clone_pidfd)
        }
        other => other,
    }
}

/// A clone that shares our descriptor table: the child copies `0..=top`, and reads its extra
/// descriptors from `extras` when it has some.
struct SharedTable<'a> {
    top: u32,
    extras: Option<ExtraSlots<'a>>,
}

fn clone_and_exec(
    stack: &mut ChildStack,
    exec: &Exec<'_>,
    stdio: [i32; 3],
    shared: Option<SharedTable<'_>>,
    clone_pidfd: bool,
) -> Result<Spawned, SpawnFailure> {
    let exec_errno = AtomicI32::new(0);
    let plan = ChildPlan {
        path: exec.path,
        argv: exec.argv,
        envp: exec.envp,
        stdio,
        setup: exec.setup,
        non_default_signals: exec.non_default_signals,
        shared_fd_table: shared.as_ref().map(|s| s.top),
        extra_slots: shared.as_ref().and_then(|s| s.extras),
        report: ExecErrorReport::Shared(&exec_errno),
    };
    let mut pidfd: libc::c_int = -1;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if clone_pidfd {
        flags |= libc::CLONE_PIDFD;
    }
    if shared.is_some() {
        flags |= libc::CLONE_FILES;
    }
    let ret = if let Some(cgroup) = &exec.setup.cgroup {
        // The same clone through clone3, started inside the cgroup.
        let mut args = crate::sys::clone3::CloneArgs::new(
            flags & !libc::SIGCHLD,
            cgroup.dir.as_raw_fd(),
            clone_pidfd.then_some(&mut pidfd),
        );
        let marked = MarkedPlan {
            started: AtomicBool::new(false),
            plan: &plan,
        };
        // SAFETY: as for clone below: our own stack, an entry that only makes raw system calls
        // and never returns, a plan that outlives the call (CLONE_VFORK).
        let pid = match unsafe {
            crate::sys::clone3::clone3_vfork(
                &mut args,
                stack.base,
                stack.len,
                marked_child_entry,
                &marked as *const MarkedPlan<'_> as *mut libc::c_void,
            )
        } {
            Ok(pid) => pid,
            Err(e) => return Err(cgroup_failure(e)),
        };
        if !marked.started.load(Ordering::Acquire) {
            if clone_pidfd {
                // SAFETY: the kernel stored a new pidfd that nothing else owns.
                drop(unsafe { crate::sys::own_fd(pidfd) });
            }
            super::exec::reap_failed_child(pid);
            return Err(SpawnFailure::new(SpawnStage::Cgroup, BORN_KILLED));
        }
        pid.as_raw_nonzero().get()
    } else {
        // SAFETY: the stack is our own mapping, unused by anyone else; child_entry only runs
        // exec_child (raw syscalls, never returns); `plan` and `pidfd` live on our stack until
        // the clone returns, which CLONE_VFORK delays until the child exec'd or exited. The
        // caller blocked every signal on this thread, so the child starts with all of them
        // blocked.
        unsafe {
            libc::clone(
                child_entry,
                stack.top(),
                flags,
                &plan as *const ChildPlan<'_> as *mut libc::c_void,
                &mut pidfd as *mut libc::c_int,
            )
        }
    };
    #[cfg(napix_asan)]
    super::asan::child_stack_done(stack.base, stack.len);
    if ret < 0 {
        return Err(SpawnFailure::new(
            SpawnStage::Spawn,
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EAGAIN),
        ));
    }
    // SAFETY: with CLONE_PIDFD and a successful clone, the kernel stored a new pidfd that nothing
    // else owns.
    let pidfd: Option<OwnedFd> = clone_pidfd.then(|| unsafe { crate::sys::own_fd(pidfd) });
    let Some(pid) = Pid::from_raw(ret) else {
        return Err(SpawnFailure::new(SpawnStage::Spawn, libc::EINVAL));
    };
    let errno = exec_errno.load(Ordering::Acquire);
    if errno != 0 {
        super::exec::reap_failed_child(pid);
        if errno & UNSHARE_FAILED != 0 {
            // The caller retries without CLONE_FILES; the marker stays in the errno for it.
            return Err(SpawnFailure::new(SpawnStage::Spawn, errno));
        }
        return Err(SpawnFailure::from_child(errno));
    }
    let Some(pidfd) = pidfd else {
        return Ok(Spawned {
            pid,
            pidfd: None,
            confirm: None,
        });
    };
    match crate::sys::above_stdio(pidfd) {
        Ok(pidfd) => Ok(Spawned {
            pid,
            pidfd: Some(pidfd),
            confirm: None,
        }),
        Err(e) => {
            // Could not move the pidfd above 2 (EMFILE): the child is ours and unreaped, so its
            // pid is safe to signal; kill and reap it so nothing runs untracked.
            crate::sys::kill_unreaped_child(pid);
            super::exec::reap_failed_child(pid);
            Err(SpawnFailure::new(
                SpawnStage::Pidfd,
                e.raw_os_error().unwrap_or(libc::EMFILE),
            ))
        }
    }
}

/// A failed `clone3` into a cgroup: out of processes or memory is the spawn's, anything else
/// (the cgroup refuses the child: `EBUSY` with controllers in its subtree, `EACCES`, `EOPNOTSUPP`)
/// the cgroup option's.
pub(super) fn cgroup_failure(e: rustix::io::Errno) -> SpawnFailure {
    let errno = e.raw_os_error();
    let stage = match errno {
        libc::EAGAIN | libc::ENOMEM => SpawnStage::Spawn,
        _ => SpawnStage::Cgroup,
    };
    SpawnFailure::new(stage, errno)
}
