//! [`ResourceUsage`]: what a child cost, as the kernel reported it when the child was reaped.

use std::time::Duration;

/// The resources a child used, reported by the kernel at its reap (`struct rusage` from the
/// `waitid` system call's fifth argument, or from `wait4` in signal mode).
///
/// The numbers cover the child and every descendant it waited for itself (a shell's commands,
/// for example), not descendants left running or reaped by someone else.
///
/// ```
/// # let ex = std::sync::Arc::new(napix_executor::Executor::new()?);
/// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
/// let child = ex.create_process(&["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"], true)?;
/// assert_eq!(child.rusage(), None); // not reaped yet (or not yet asked)
/// child.wait();
/// let usage = child.rusage().expect("reaped by the executor");
/// assert!(usage.user_time + usage.system_time > std::time::Duration::ZERO);
/// assert!(usage.max_rss_bytes > 0);
/// # ex.stop(); runner.join().expect("run thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// CPU time spent in user mode.
    pub user_time: Duration,
    /// CPU time spent in the kernel on its behalf.
    pub system_time: Duration,
    /// Peak resident set size, in bytes (the kernel counts KiB).
    pub max_rss_bytes: u64,
    /// Page faults served without I/O.
    pub minor_faults: u64,
    /// Page faults that needed I/O.
    pub major_faults: u64,
    /// Context switches because it waited (for I/O, a lock, a sleep).
    pub voluntary_context_switches: u64,
    /// Context switches because its time slice ran out or a higher-priority task ran.
    pub involuntary_context_switches: u64,
}

impl ResourceUsage {
    pub(crate) fn from_raw(raw: &libc::rusage) -> ResourceUsage {
        let time = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.clamp(0, 999_999) as u64)
        };
        let count = |n: libc::c_long| n.max(0) as u64;
        ResourceUsage {
            user_time: time(raw.ru_utime),
            system_time: time(raw.ru_stime),
            max_rss_bytes: count(raw.ru_maxrss).saturating_mul(1024),
            minor_faults: count(raw.ru_minflt),
            major_faults: count(raw.ru_majflt),
            voluntary_context_switches: count(raw.ru_nvcsw),
            involuntary_context_switches: count(raw.ru_nivcsw),
        }
    }

    /// User plus system CPU time.
    pub fn cpu_time(&self) -> Duration {
        self.user_time + self.system_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_become_bytes_and_times_add_up() {
        let mut raw = crate::sys::wait::empty_rusage();
        raw.ru_utime = libc::timeval {
            tv_sec: 1,
            tv_usec: 500_000,
        };
        raw.ru_stime = libc::timeval {
            tv_sec: 0,
            tv_usec: 250_000,
        };
        raw.ru_maxrss = 2048;
        raw.ru_minflt = 3;
        raw.ru_majflt = -1;
        raw.ru_nvcsw = 4;
        raw.ru_nivcsw = 5;
        let u = ResourceUsage::from_raw(&raw);
        assert_eq!(u.user_time, Duration::from_millis(1500));
        assert_eq!(u.cpu_time(), Duration::from_millis(1750));
        assert_eq!(u.max_rss_bytes, 2 * 1024 * 1024);
        assert_eq!(
            (u.minor_faults, u.major_faults),
            (3, 0),
            "negative counts clamp to 0"
        );
        assert_eq!(
            (u.voluntary_context_switches, u.involuntary_context_switches),
            (4, 5)
        );
    }
}
