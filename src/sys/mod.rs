//! The unsafe boundary: every syscall that rustix does not wrap safely, wrapped once here.
//!
//! Above this module the crate is safe Rust (`#![deny(unsafe_code)]` at the root). Most syscalls go
//! through rustix's safe API directly (epoll, eventfd, timerfd, pidfd_open, waitid); what lives here
//! is what rustix lacks or leaves unsafe: `pidfd_send_signal` with any signal number, the thread's
//! signal mask, `environ`, and the spawn backends in [`spawn`]. Only rustix's public API is used;
//! what it does not publish (execve, a raw fork, rt_sigaction) goes through libc's `syscall(2)`.
//!
//! # Safety
//!
//! Each `unsafe` block carries a `// SAFETY:` comment. Code that runs in a child between
//! fork/vfork and execve lives in `spawn/child.rs` and makes raw syscalls only.
#![allow(unsafe_code)]

pub(crate) mod clone3;
pub(crate) mod procfs;
pub(crate) mod sigchld;
pub(crate) mod spawn;
pub(crate) mod wait;

// One topic per file; the `pub(crate) use` lines keep `crate::sys::name` paths working.
mod cstring_array;
mod environ;
mod fd;
mod fd_limit;
mod kill;
mod pidfd;
mod sigchld_disposition;
mod signal_dispositions;
mod signal_mask;
mod signalfd;

pub(crate) use cstring_array::{CStringArray, CStringArrayBuilder, for_each_environ};
pub(crate) use environ::environ;
pub(crate) use fd::{above_stdio, errno_of, open_dev_null, own_fd, pipe};
pub use fd_limit::raise_fd_limit;
pub(crate) use kill::{kill_group, kill_unreaped, kill_unreaped_child};
pub(crate) use pidfd::{pidfd_send_signal, pidfd_supported};
pub(crate) use sigchld_disposition::{SigchldDisposition, sigchld_disposition};
pub(crate) use signal_dispositions::{SignalDispositions, open_proc_status};
pub use signal_mask::block_sigchld;
pub(crate) use signal_mask::{BlockAllSignals, block_sigchld_called};
pub(crate) use signalfd::signalfd_sigchld;
