//! [`Resource`]: the resource limits a [`Command`](crate::Command) can set in its child.

use std::fmt;

/// A resource limit (`setrlimit(2)`), for [`Command::rlimit`](crate::Command::rlimit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Resource {
    /// `RLIMIT_AS`: address space, bytes.
    As,
    /// `RLIMIT_CORE`: core file size, bytes.
    Core,
    /// `RLIMIT_CPU`: CPU time, seconds.
    Cpu,
    /// `RLIMIT_DATA`: data segment, bytes.
    Data,
    /// `RLIMIT_FSIZE`: file size, bytes.
    Fsize,
    /// `RLIMIT_LOCKS`: file locks.
    Locks,
    /// `RLIMIT_MEMLOCK`: locked memory, bytes.
    Memlock,
    /// `RLIMIT_MSGQUEUE`: POSIX message queues, bytes.
    Msgqueue,
    /// `RLIMIT_NICE`: ceiling of the nice value (20 - limit).
    Nice,
    /// `RLIMIT_NOFILE`: one more than the highest descriptor number.
    Nofile,
    /// `RLIMIT_NPROC`: processes of the real user.
    Nproc,
    /// `RLIMIT_RSS`: resident set, bytes (no effect on Linux since 2.6).
    Rss,
    /// `RLIMIT_RTPRIO`: real-time priority ceiling.
    Rtprio,
    /// `RLIMIT_RTTIME`: real-time CPU time without a blocking call, microseconds.
    Rttime,
    /// `RLIMIT_SIGPENDING`: queued signals.
    Sigpending,
    /// `RLIMIT_STACK`: main thread stack, bytes.
    Stack,
}

impl Resource {
    /// Every resource, for tests and fuzzing.
    pub const ALL: [Resource; 16] = [
        Resource::As,
        Resource::Core,
        Resource::Cpu,
        Resource::Data,
        Resource::Fsize,
        Resource::Locks,
        Resource::Memlock,
        Resource::Msgqueue,
        Resource::Nice,
        Resource::Nofile,
        Resource::Nproc,
        Resource::Rss,
        Resource::Rtprio,
        Resource::Rttime,
        Resource::Sigpending,
        Resource::Stack,
    ];

    /// The kernel's number for it (`RLIMIT_*`).
    pub fn as_raw(self) -> i32 {
        (match self {
            Resource::As => libc::RLIMIT_AS,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::Fsize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
            Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
            Resource::Nice => libc::RLIMIT_NICE,
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::Rtprio => libc::RLIMIT_RTPRIO,
            Resource::Rttime => libc::RLIMIT_RTTIME,
            Resource::Sigpending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
        }) as i32
    }

    /// The name without `RLIMIT_` (`NOFILE`).
    pub fn name(self) -> &'static str {
        match self {
            Resource::As => "AS",
            Resource::Core => "CORE",
            Resource::Cpu => "CPU",
            Resource::Data => "DATA",
            Resource::Fsize => "FSIZE",
            Resource::Locks => "LOCKS",
            Resource::Memlock => "MEMLOCK",
            Resource::Msgqueue => "MSGQUEUE",
            Resource::Nice => "NICE",
            Resource::Nofile => "NOFILE",
            Resource::Nproc => "NPROC",
            Resource::Rss => "RSS",
            Resource::Rtprio => "RTPRIO",
            Resource::Rttime => "RTTIME",
            Resource::Sigpending => "SIGPENDING",
            Resource::Stack => "STACK",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RLIMIT_{}", self.name())
    }
}
