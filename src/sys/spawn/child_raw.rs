//! The two raw helpers every child-side file uses (`child.rs`, `setup.rs`,
//! `lifetime_steps.rs`): the thread's errno after a failed `syscall(2)`, and `exit_group`. A
//! leaf, so that those files need not import each other for them. Raw system calls only (see
//! `child.rs` for why they are safe in a CLONE_VM child).
#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "runs in the child between clone and execve (CLONE_VM: the parent's memory): \
              no panic machinery may be reached from here"
)]

/// `exit_group(status)` as a raw syscall.
pub(super) fn exit_now_with(status: i32) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { libc::syscall(libc::SYS_exit_group, status as libc::c_long) };
    }
}

/// The errno the last failed `syscall(2)` left in this thread's slot.
pub(super) fn last_errno() -> i32 {
    // SAFETY: __errno_location returns the address of the calling thread's errno, valid for the
    // thread's lifetime; reading it is a plain load (see the module docs for the CLONE_VM case).
    unsafe { *libc::__errno_location() }
}
