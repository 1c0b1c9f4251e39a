//! `clone3(2)` with `CLONE_INTO_CGROUP` (Linux 5.7): a child that starts inside a cgroup v2, with
//! no moment outside it.
//!
//! Two shapes, one per backend:
//! - [`clone3_vfork`] (Vfork backend): `CLONE_VM | CLONE_VFORK` on a stack of ours. The child
//!   returns from the system call on that new stack, where no Rust frame exists, so the call and
//!   the jump into the child's entry function are a few lines of assembly (glibc does the same in
//!   its internal `__clone3`; it does not export it). x86-64 only; elsewhere it answers
//!   `Unsupported`.
//! - [`clone3_fork`] (Fork backend): no `CLONE_VM`, no new stack: the child returns on its copy of
//!   our stack, exactly as after `fork`.
//!
//! A kernel without `clone3` says `ENOSYS`, one without `CLONE_INTO_CGROUP` `E2BIG` (our argument
//! struct is larger than it knows) or `EINVAL`, and a seccomp filter `EPERM`: [`supported`] probes
//! once which it is, so that a spawn can tell "not here" from a refused cgroup.
#![allow(unsafe_code)]

use rustix::io::Errno;
use rustix::process::Pid;

/// `CLONE_INTO_CGROUP` from `linux/sched.h`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` (`CLONE_ARGS_SIZE_VER2`: up to `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

impl CloneArgs {
    /// A child that sends SIGCHLD at its exit and starts in the cgroup `cgroup` (a directory fd).
    /// `clone_flags` are the `CLONE_*` flags beside `CLONE_INTO_CGROUP`. With `CLONE_PIDFD`,
    /// `pidfd` receives the child's pidfd.
    pub(crate) fn new(clone_flags: libc::c_int, cgroup: i32, pidfd: Option<&mut i32>) -> CloneArgs {
        CloneArgs {
            flags: clone_flags as u32 as u64 | CLONE_INTO_CGROUP,
            pidfd: pidfd.map_or(0, |p| p as *mut i32 as u64),
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup as u32 as u64,
            ..CloneArgs::default()
        }
    }
}

fn errno_of(ret: i64) -> Errno {
    Errno::from_raw_os_error((-ret) as i32)
}

/// Whether `clone3` with `CLONE_INTO_CGROUP` is there: probed once (a call with a cgroup fd
/// number that is valid in form but not open, which a kernel that has both answers with `EBADF`
/// before the child exists).
pub(crate) fn supported() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static PROBED: AtomicU8 = AtomicU8::new(0);
    match PROBED.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let args = CloneArgs::new(0, i32::MAX, None);
    // SAFETY: clone3 reads `args` (valid for the call); with no such cgroup fd the kernel fails with
    // EBADF before creating a process, so no child ever runs this code. Should it ever succeed,
    // the child exits at once.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let yes = match ret {
        0 => {
            // SAFETY: exit_group ends this (child) process at once; it touches no memory.
            unsafe { libc::syscall(libc::SYS_exit_group, 0) };
            false
        }
        r if r > 0 => {
            if let Some(pid) = Pid::from_raw(r as i32) {
                use rustix::process::{WaitId, WaitIdOptions, waitid};
                while let Err(Errno::INTR) = waitid(WaitId::Pid(pid), WaitIdOptions::EXITED) {}
            }
            true
        }
        _ => {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            e == libc::EBADF
        }
    };
    PROBED.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
    yes
}

/// Whether [`clone3_vfork`] can start a child on this architecture.
pub(crate) const VFORK_SHAPE: bool = cfg!(target_arch = "x86_64");

/// `clone3` without `CLONE_VM`: the fork shape. `Ok(None)` in the child.
///
/// # Safety
/// As `fork`: in the child only async-signal-safe raw system calls until `execve` or exit.
pub(crate) unsafe fn clone3_fork(args: &CloneArgs) -> Result<Option<Pid>, Errno> {
    // SAFETY: clone3 reads `args` for the call; without CLONE_VM and with stack 0 the child
    // continues on its own copy of this stack, as after fork (the caller's contract).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => Ok(None),
        r if r > 0 => Pid::from_raw(r as i32).map(Some).ok_or(Errno::INVAL),
        _ => Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EAGAIN),
        )),
    }
}

/// `clone3` with `CLONE_VM | CLONE_VFORK` (which `args` must hold) on the stack
/// `stack_top - stack_size .. stack_top`: the child calls `entry(arg)` there and exits with its
/// return value; we resume once it has exec'd or exited.
///
/// # Safety
/// `stack` must be a mapping nobody else uses for the call; `entry` must only make raw system
/// calls (it shares our memory) and `arg` must stay valid until this returns (CLONE_VFORK makes
/// sure of that for anything on our stack).
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone3_vfork(
    args: &mut CloneArgs,
    stack_low: *mut libc::c_void,
    stack_size: usize,
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> Result<Pid, Errno> {
    args.stack = stack_low as u64;
    args.stack_size = stack_size as u64;
    let ret: i64;
    // SAFETY: the parent side is one `syscall` instruction (rcx and r11 clobbered, rax the
    // result). The child (rax == 0) starts with its stack pointer at the top of `stack`, 16-byte
    // aligned, where `call` leaves the alignment the ABI wants at function entry; it clears the
    // frame pointer, calls `entry(arg)` (r12, r13 survive the system call) and passes its return
    // value to exit_group, never coming back into Rust code on this stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, {exit_group}",
            "syscall",
            "ud2",
            "2:",
            exit_group = const libc::SYS_exit_group,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(errno_of(ret));
    }
    Pid::from_raw(ret as i32).ok_or(Errno::INVAL)
}

/// Elsewhere the child's start on a new stack has no assembly here: `Unsupported` (ENOSYS).
///
/// # Safety
/// None needed: it creates nothing.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn clone3_vfork(
    _args: &mut CloneArgs,
    _stack_low: *mut libc::c_void,
    _stack_size: usize,
    _entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    _arg: *mut libc::c_void,
) -> Result<Pid, Errno> {
    Err(Errno::NOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    use std::os::fd::AsRawFd;

    /// A fresh cgroup under the cgroup2 mount, removed on drop; None (with the reason printed)
    /// where there is no writable cgroup v2.
    struct TempCgroup(std::path::PathBuf, std::fs::File);

    impl TempCgroup {
        fn new(name: &str) -> Option<TempCgroup> {
            let root = match crate::cgroup::cgroup2_mount() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("skipped: {e}");
                    return None;
                }
            };
            let path = root.join(format!("napix-unit-{name}-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&path) {
                eprintln!("skipped: cannot create {}: {e}", path.display());
                return None;
            }
            let dir = std::fs::File::open(&path).expect("open the cgroup dir");
            Some(TempCgroup(path, dir))
        }
    }

    impl Drop for TempCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    fn reap(pid: Pid) -> i32 {
        let status = waitid(WaitId::Pid(pid), WaitIdOptions::EXITED)
            .expect("waitid")
            .expect("a status");
        status.exit_status().expect("exited")
    }

    extern "C" fn child_checks_its_cgroup(_arg: *mut libc::c_void) -> libc::c_int {
        // Raw system calls only: exit 0 when /proc/self/cgroup names a napix-unit cgroup... a
        // read needs a buffer on this stack, which is ours alone.
        let mut buf = [0u8; 256];
        // SAFETY: open/read/close of a proc file into a local buffer.
        unsafe {
            let fd = libc::syscall(
                libc::SYS_open,
                c"/proc/self/cgroup".as_ptr(),
                libc::O_RDONLY,
            );
            if fd < 0 {
                return 2;
            }
            let n = libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len());
            libc::syscall(libc::SYS_close, fd);
            if n <= 0 {
                return 3;
            }
            let text = &buf[..n as usize];
            if text.windows(10).any(|w| w == b"napix-unit") {
                0
            } else {
                4
            }
        }
    }

    #[test]
    fn children_start_inside_the_cgroup_in_both_shapes() {
        if !supported() {
            eprintln!("skipped: clone3 with CLONE_INTO_CGROUP is not available here");
            return;
        }
        let Some(cg) = TempCgroup::new("clone3") else {
            return;
        };
        let args = CloneArgs::new(0, cg.1.as_raw_fd(), None);
        // SAFETY: the child only makes raw system calls before exit_group.
        match unsafe { clone3_fork(&args) }.expect("clone3_fork") {
            None => {
                let code = child_checks_its_cgroup(std::ptr::null_mut());
                // SAFETY: ends the forked child.
                unsafe { libc::syscall(libc::SYS_exit_group, code) };
                unreachable!();
            }
            Some(pid) => assert_eq!(reap(pid), 0, "fork shape: not in the cgroup"),
        }
        // 64 KiB, 16-byte aligned, ours alone for the call.
        let mut stack = vec![0u128; 4096].into_boxed_slice();
        let stack = (
            stack.as_mut_ptr().cast::<libc::c_void>(),
            stack.len() * std::mem::size_of::<u128>(),
        );
        let mut args = CloneArgs::new(libc::CLONE_VM | libc::CLONE_VFORK, cg.1.as_raw_fd(), None);
        // SAFETY: our own fresh stack; the entry makes raw system calls only.
        let pid = unsafe {
            clone3_vfork(
                &mut args,
                stack.0,
                stack.1,
                child_checks_its_cgroup,
                std::ptr::null_mut(),
            )
        }
        .expect("clone3_vfork");
        assert_eq!(reap(pid), 0, "vfork shape: not in the cgroup");
    }

    #[test]
    fn a_bad_cgroup_fd_is_refused_before_any_child_exists() {
        if !supported() {
            return;
        }
        let args = CloneArgs::new(0, 1_000_000, None);
        // SAFETY: fails with EBADF before creating a child.
        assert_eq!(unsafe { clone3_fork(&args) }.err(), Some(Errno::BADF));
    }
}
