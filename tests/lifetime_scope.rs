//! Kill scopes with real process trees, on every backend and both child-watch modes: a group kill
//! leaves nothing of the group, a leader that exits during a kill takes its group along, and a
//! group id that a stranger took over after the reap is never signalled.

mod common;

use std::os::unix::process::CommandExt as _;
use std::os::unix::process::ExitStatusExt;
use std::process::Command as StdCommand;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{Command, ExecHandle, Executor, KillScope, SpawnBackend};

/// `spawn(&cmd)` from a helper thread, bounded.
fn spawn_cmd(exec: &Arc<Executor>, build: impl FnOnce() -> Command + Send + 'static) -> ExecHandle {
    let exec = Arc::clone(exec);
    bounded(SPAWN_LIMIT, "Executor::spawn", move || exec.spawn(&build()))
        .unwrap_or_else(|e| panic!("spawn failed: {e} ({e:?})"))
}

/// A shell (after `prelude`) running two `sleep 100`, spawned with `KillScope::Group`; returns
/// once both sleeps run, with their pids.
fn shell_with_two_sleeps(exec: &Arc<Executor>, prelude: &str) -> (ExecHandle, Vec<u32>) {
    let script = format!("{prelude}sleep 100 & sleep 100; wait");
    let h = spawn_cmd(exec, move || {
        let mut c = Command::new("sh");
        c.args(["-c", &script]).kill_scope(KillScope::Group);
        c
    });
    let leader = h.pid();
    assert!(
        wait_until(Duration::from_secs(5), || children_of(leader).len() == 2),
        "the shell never started its two sleeps"
    );
    let sleeps = children_of(leader);
    (h, sleeps)
}

/// Live (non-zombie) processes whose process group is `pgid`, from /proc.
fn members_of_group(pgid: u32) -> Vec<u32> {
    proc_stats()
        .into_iter()
        .filter(|&(_, state, _, pgrp, _)| state != 'Z' && pgrp == pgid)
        .map(|(pid, ..)| pid)
        .collect()
}

/// Children (any state) of `pid`, from /proc/<pid>/task/*/children.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|s| s.parse::<u32>().ok()),
                );
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

fn a_group_kill_leaves_no_process_of_the_tree(backend: SpawnBackend) {
    let _serial = serial();
    let r = start(backend, Duration::from_secs(2));
    let (h, sleeps) = shell_with_two_sleeps(&r.arc(), "");
    let h = Arc::new(h);
    let leader = h.pid();
    assert_eq!(
        members_of_group(leader).len(),
        3,
        "shell + 2 sleeps in one group"
    );
    let (status, took) = kill_bounded(&h, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM should be enough: {took:?}"
    );
    assert!(
        wait_until(Duration::from_secs(2), || members_of_group(leader)
            .is_empty()
            && sleeps.iter().all(|&p| !alive(p))),
        "left behind: {:?}",
        members_of_group(leader)
    );
}

fn a_leader_that_exits_during_a_kill_takes_its_group_along(backend: SpawnBackend) {
    let _serial = serial();
    // The grace is long: the member ignores SIGTERM, and only the SIGKILL sent before the
    // leader's reap (not the one after the grace) can end it in time.
    let r = start(backend, Duration::from_secs(30));
    let h = Arc::new(spawn_cmd(&r.arc(), || {
        let mut c = Command::new("sh");
        c.args(["-c", "(trap '' TERM; exec sleep 100) & wait"])
            .kill_scope(KillScope::Group);
        c
    }));
    let leader = h.pid();
    assert!(
        wait_until(Duration::from_secs(5), || children_of(leader)
            .first()
            .is_some_and(|&m| ignores(m, libc::SIGTERM))),
        "the member never came to ignore SIGTERM"
    );
    let member = children_of(leader)[0];
    let (status, took) = kill_bounded(&h, Duration::from_secs(10));
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "the leader dies of SIGTERM"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        wait_until(Duration::from_secs(2), || !alive(member)),
        "the member outlived its leader's kill"
    );
}

fn without_a_kill_a_leaders_exit_leaves_its_group_alone(backend: SpawnBackend) {
    let _serial = serial();
    let r = start(backend, Duration::from_secs(1));
    let h = spawn_cmd(&r.arc(), || {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 100 & echo started"])
            .stdout(napix_executor::Stdio::null())
            .kill_scope(KillScope::Group);
        c
    });
    let leader = h.pid();
    let status = wait_for(&h, Duration::from_secs(10));
    assert!(status.success());
    let left = members_of_group(leader);
    assert_eq!(left.len(), 1, "the background sleep lives on: {left:?}");
    // SAFETY-free cleanup through a pidfd-less kill: it is our grandchild, alive.
    let _ = StdCommand::new("kill").arg(left[0].to_string()).status();
}

/// A stranger process group (not our child's) whose id is `pgid`, if the pid counter lets us.
fn take_group_id(pgid: u32) -> Option<std::process::Child> {
    std::fs::write(common::faults::NS_LAST_PID, (pgid - 1).to_string()).ok()?;
    let mut stranger = StdCommand::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .ok()?;
    if stranger.id() == pgid {
        return Some(stranger);
    }
    let _ = stranger.kill();
    let _ = stranger.wait();
    None
}

fn a_group_id_a_stranger_took_over_is_never_signalled(backend: SpawnBackend) {
    let _serial = serial();
    let mut recycled = 0;
    for _ in 0..30 {
        let r = start(backend, Duration::from_millis(100));
        let h = Arc::new(spawn_cmd(&r.arc(), || {
            let mut c = Command::new("sh");
            c.args(["-c", "exit 0"]).kill_scope(KillScope::Group);
            c
        }));
        let pgid = h.pid();
        wait_for(&h, Duration::from_secs(10));
        let Some(mut stranger) = take_group_id(pgid) else {
            continue;
        };
        recycled += 1;
        assert_eq!(
            h.send_signal(libc::SIGTERM).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
        assert_eq!(
            h.terminate().map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
        h.start_kill().expect("start_kill after the exit");
        let t = Instant::now();
        h.kill();
        assert!(t.elapsed() < Duration::from_millis(100));
        drop(r); // stop() and run() returning
        std::thread::sleep(Duration::from_millis(100));
        let lives = matches!(stranger.try_wait(), Ok(None));
        let _ = stranger.kill();
        let _ = stranger.wait();
        assert!(lives, "the stranger group {pgid} was signalled");
        if recycled >= 3 {
            break;
        }
    }
    assert!(recycled > 0, "never managed to recycle a group id");
}

/// The drop rule reaches the kill scope: dropping the last owner of a started executor SIGKILLs
/// the whole group of a child with `KillScope::Group` (all of it ignoring SIGTERM), without
/// waiting for the kill grace.
fn dropping_the_last_executor_kills_the_whole_group(backend: SpawnBackend) {
    let _serial = serial();
    let ex = Arc::new(builder(backend).start().expect("start"));
    let (h, sleeps) = shell_with_two_sleeps(&ex, "trap '' TERM; ");
    let leader = h.pid();
    let ex = Arc::into_inner(ex).expect("the last owner");
    let took = bounded(Duration::from_secs(20), "drop", move || {
        let t = std::time::Instant::now();
        drop(ex);
        t.elapsed()
    });
    // The default grace is 3 s.
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    assert_eq!(
        h.return_code().and_then(|s| s.signal()),
        Some(libc::SIGKILL)
    );
    assert!(
        wait_until(Duration::from_secs(2), || members_of_group(leader)
            .is_empty()
            && sleeps.iter().all(|&p| !alive(p))),
        "left behind: {:?}",
        members_of_group(leader)
    );
}

per_backend!(
    dropping_the_last_executor_kills_the_whole_group,
    a_group_kill_leaves_no_process_of_the_tree,
    a_leader_that_exits_during_a_kill_takes_its_group_along,
    without_a_kill_a_leaders_exit_leaves_its_group_alone,
    a_group_id_a_stranger_took_over_is_never_signalled,
);
