//! What /proc says about this process: its descriptors and its children.

use std::fs;

/// Sorted numbers of this process's open descriptors.
pub fn fds() -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    // read_dir itself held one descriptor while listing: drop the ones that are gone now.
    v.retain(|fd| fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    v.sort_unstable();
    v
}

/// `fd -> target` lines for a failure message.
pub fn describe_fds(fds: &[i32]) -> String {
    fds.iter()
        .map(|fd| {
            let target = fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("({e})"));
            format!("{fd} -> {target}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// State letter, ppid and command name of `pid`, from /proc/<pid>/stat.
pub fn stat(pid: u32) -> Option<(char, u32, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let mut it = text[close + 1..].split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid, comm))
}

/// Every process whose parent is this process: `(pid, state, comm)`. Not AddressSanitizer's
/// `llvm-symbolizer`, which the fuzzer itself starts (to name functions in its reports) and
/// keeps: it is no child of the executor's.
pub fn children() -> Vec<(u32, char, String)> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, ppid, comm) = stat(pid)?;
            (ppid == me && comm != "llvm-symbolizer").then_some((pid, state, comm))
        })
        .collect()
}

/// `Threads:` of /proc/self/status.
pub fn thread_count() -> usize {
    let text = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: in /proc/self/status")
}

/// The ignored-signal set (`SigIgn`) of process `pid`, while it exists.
pub fn ignored(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Waits (at most 2 s) until this process has no descriptor `before` did not hold (by number
/// and target) and no child, then panics naming `what` if it still has. The executor thread
/// drops its copy of a request (a stdin pipe or memfd) just after answering, and a reaped child's
/// state (its pidfd) a moment later, also an earlier case's: a descriptor of `before` that is
/// closed meanwhile is not a leak.
pub fn assert_settled(what: &dyn std::fmt::Debug, before: &[(i32, String)]) {
    let start = std::time::Instant::now();
    let settled = loop {
        let new = new_fds(before, std::time::Duration::ZERO);
        if new.is_empty() && children().is_empty() {
            break true;
        }
        if start.elapsed() > std::time::Duration::from_secs(2) {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(
        settled,
        "{what:?}: left behind: fds {:?} (before: {before:?}), children {:?}",
        new_fds(before, std::time::Duration::ZERO),
        children()
    );
}

/// This process's descriptors with their targets (`readlink /proc/self/fd/N`), sorted.
pub fn fd_targets() -> Vec<(i32, String)> {
    fds()
        .into_iter()
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// The descriptors open now that `before` did not hold (same number and target), once they
/// stay for `settle` (a spawn's own descriptors may be closed just after its answer).
pub fn new_fds(before: &[(i32, String)], settle: std::time::Duration) -> Vec<(i32, String)> {
    let start = std::time::Instant::now();
    loop {
        let new: Vec<(i32, String)> = fd_targets()
            .into_iter()
            .filter(|entry| !before.contains(entry))
            .collect();
        if new.is_empty() || start.elapsed() > settle {
            return new;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
