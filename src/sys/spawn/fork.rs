//! The Fork backend: `fork` + `execve` through rustix.
//!
//! The child only runs [`child::exec_child`]: raw syscalls, exec errno written to a close-on-exec
//! pipe. A read of 0 bytes from that pipe means the exec succeeded (the pipe closed on exec).

use std::os::fd::AsFd;

use crate::sys::raw_runtime::Fork;

use super::child::{ChildPlan, ExecErrorReport, exec_child};
use super::{ChildStdio, Exec, SpawnFailure, Spawned, reap_failed_child};
use crate::error::SpawnStage;
use crate::sys::BlockAllSignals;

pub(super) fn spawn(exec: &Exec<'_>, stdio: &ChildStdio<'_>) -> Result<Spawned, SpawnFailure> {
    let (err_read, err_write) = crate::sys::pipe().map_err(|e| SpawnFailure {
        stage: SpawnStage::Pipe,
        errno: e.raw_os_error(),
    })?;
    let plan = ChildPlan {
        path: exec.path,
        argv: exec.argv,
        envp: exec.envp,
        stdio: stdio.raw(),
        non_default_signals: exec.non_default_signals,
        shared_fd_table: None,
        report: ExecErrorReport::Pipe(err_write.as_fd()),
    };
    let forked = {
        let _blocked = BlockAllSignals::new();
        // SAFETY: the child runs only exec_child (raw syscalls, no allocation, no locks) and never
        // returns into Rust code of the parent; everything it reads was prepared above.
        match unsafe { crate::sys::raw_runtime::kernel_fork() } {
            // SAFETY: we are the fresh child; the plan's pointers are valid (copied address
            // space) and exec_child only makes raw syscalls.
            Ok(Fork::Child(_)) => unsafe { exec_child(&plan) },
            other => other,
        }
    };
    let pid = match forked {
        Ok(Fork::ParentOf(pid)) => pid,
        Ok(Fork::Child(_)) => unreachable_child(),
        Err(e) => {
            return Err(SpawnFailure {
                stage: SpawnStage::Spawn,
                errno: e.raw_os_error(),
            });
        }
    };
    drop(err_write);
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match rustix::io::read(&err_read, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    if got == 4 {
        reap_failed_child(pid);
        return Err(SpawnFailure {
            stage: SpawnStage::Exec,
            errno: i32::from_ne_bytes(buf),
        });
    }
    Ok(Spawned { pid, pidfd: None })
}

/// The child branch above diverges (`exec_child` returns `!`), so this is never reached; it
/// exists to keep the match exhaustive without a panic.
fn unreachable_child() -> ! {
    crate::sys::raw_runtime::exit_group(127)
}
