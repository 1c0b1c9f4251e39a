//! What the process does with SIGCHLD right now (default, ignored, handled).

/// What the process does with SIGCHLD right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigchldDisposition {
    /// SIG_DFL (ignored, but children stay zombies until waited for).
    Default,
    /// SIG_IGN or SA_NOCLDWAIT: the kernel reaps children by itself.
    Ignored,
    /// A handler is installed.
    Handled,
}

pub(crate) fn sigchld_disposition() -> SigchldDisposition {
    // SAFETY: a query (null new action) into a zeroed sigaction struct.
    let old = unsafe {
        let mut old = std::mem::zeroed::<libc::sigaction>();
        libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old);
        old
    };
    if old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0 {
        SigchldDisposition::Ignored
    } else if old.sa_sigaction == libc::SIG_DFL {
        SigchldDisposition::Default
    } else {
        SigchldDisposition::Handled
    }
}
