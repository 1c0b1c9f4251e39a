//! cgroup v2 scope with a real tree: a grandchild that leaves the process group with `setsid`
//! survives a group kill and dies by the cgroup kill. Fork and Vfork (clone3 with
//! CLONE_INTO_CGROUP) in both child-watch modes; PosixSpawn answers a typed `Unsupported`.
//! Where no writable cgroup v2 exists, each test prints why it skipped.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::cgroup::TempCgroup;
use common::*;
use napix_executor::{ChildWatch, Command, ExecHandle, Executor, KillScope, SpawnBackend};

fn spawn_cmd(exec: &Arc<Executor>, build: impl FnOnce() -> Command + Send + 'static) -> ExecHandle {
    let exec = Arc::clone(exec);
    bounded(SPAWN_LIMIT, "Executor::spawn", move || exec.spawn(&build()))
        .unwrap_or_else(|e| panic!("spawn failed: {e} ({e:?})"))
}

fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// Session id of `pid` (field 6 of /proc/<pid>/stat).
fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(3)?.parse().ok()
}

/// The pid of a process in `cg` that leads its own session (the setsid'd grandchild).
fn setsid_member(cg: &TempCgroup, leader: u32) -> Option<u32> {
    cg.procs()
        .into_iter()
        .find(|&p| p != leader && session_of(p) == Some(p))
}

const TREE: &str = "setsid sleep 100 & sleep 100; wait";

fn a_setsid_grandchild_survives_the_group_kill_and_dies_by_the_cgroup_kill(
    backend: SpawnBackend,
    watch: ChildWatch,
) {
    let Some(cg) = TempCgroup::new(&format!("{}-{watch:?}", backend.name())) else {
        return;
    };
    let r = start_with_watch(backend, watch, Duration::from_secs(2));
    // Group scope: the setsid'd sleep left the group and survives.
    let dir = cg.0.clone();
    let h = Arc::new(spawn_cmd(&r.arc(), move || {
        let mut c = Command::new("sh");
        c.args(["-c", TREE])
            .cgroup(dir)
            .kill_scope(KillScope::Group);
        c
    }));
    let leader = h.pid();
    assert!(
        cg.procs().contains(&leader),
        "the child is not in its cgroup: {:?}",
        cg.procs()
    );
    assert!(
        wait_until(Duration::from_secs(5), || setsid_member(&cg, leader)
            .is_some()),
        "the setsid grandchild never showed up"
    );
    let escaped = setsid_member(&cg, leader).expect("setsid member");
    let (status, _) = kill_bounded(&h, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        alive(escaped),
        "the group kill reached a process outside the group"
    );
    drop(cg);

    // Cgroup scope: everything in the cgroup dies, the setsid'd sleep too. A fresh cgroup: on
    // kernels with the CLONE_INTO_CGROUP kill-sequence bug, one emptied through cgroup.kill
    // kills every child cloned into it later (see the test below).
    let Some(cg) = TempCgroup::new(&format!("{}-{watch:?}-scope", backend.name())) else {
        return;
    };
    let dir = cg.0.clone();
    let h = Arc::new(spawn_cmd(&r.arc(), move || {
        let mut c = Command::new("sh");
        c.args(["-c", TREE])
            .cgroup(dir)
            .kill_scope(KillScope::Cgroup);
        c
    }));
    let leader = h.pid();
    assert!(
        wait_until(Duration::from_secs(5), || setsid_member(&cg, leader)
            .is_some()),
        "no setsid grandchild in {:?} (leader {:?}): {:?}",
        cg.procs(),
        h.poll(),
        cg.procs()
            .iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    let escaped = setsid_member(&cg, leader).expect("setsid member");
    let (status, _) = kill_bounded(&h, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(
        wait_until(Duration::from_secs(2), || !alive(escaped)
            && cg.procs().is_empty()),
        "left in the cgroup: {:?}",
        cg.procs()
    );
}

#[test]
fn cgroup_scope_on_fork_and_vfork_in_both_watch_modes() {
    for backend in [SpawnBackend::Fork, SpawnBackend::Vfork] {
        for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
            a_setsid_grandchild_survives_the_group_kill_and_dies_by_the_cgroup_kill(backend, watch);
        }
    }
}

#[test]
fn posix_spawn_cannot_place_a_child_in_a_cgroup_and_says_so() {
    let Some(cg) = TempCgroup::new("posix") else {
        return;
    };
    let r = start_with_watch(
        SpawnBackend::PosixSpawn,
        ChildWatch::Auto,
        Duration::from_secs(1),
    );
    let exec = r.arc();
    let dir = cg.0.clone();
    let err = bounded(SPAWN_LIMIT, "spawn", move || {
        exec.spawn(Command::new("true").cgroup(dir))
    })
    .expect_err("posix_spawn has no cgroup step");
    let text = err.to_string();
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::Unsupported,
        "{text}"
    );
    assert!(
        text.contains("posix_spawn") && text.contains("cgroup"),
        "{text}"
    );
}

#[test]
fn a_directory_that_is_no_cgroup_is_a_typed_error() {
    let r = start(SpawnBackend::Vfork, Duration::from_secs(1));
    let exec = r.arc();
    let err = bounded(SPAWN_LIMIT, "spawn", move || {
        exec.spawn(Command::new("true").cgroup("/tmp"))
    })
    .expect_err("/tmp is no cgroup");
    let text = err.to_string();
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::Unsupported,
        "{text}"
    );
    assert!(text.contains("/tmp"), "{text}");
}

#[test]
fn cgroup_scope_without_a_cgroup_is_refused() {
    let r = start(SpawnBackend::Vfork, Duration::from_secs(1));
    let exec = r.arc();
    let err = bounded(SPAWN_LIMIT, "spawn", move || {
        exec.spawn(Command::new("true").kill_scope(KillScope::Cgroup))
    })
    .expect_err("no cgroup to kill");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidInput
    );
}

/// A cgroup once emptied through `cgroup.kill`: where the kernel has the CLONE_INTO_CGROUP
/// kill-sequence bug, the next child cloned into it would die before its first instruction; the
/// spawn says so with a typed error naming the cgroup instead of handing back a dead child.
#[test]
fn a_child_killed_as_it_enters_its_cgroup_is_a_typed_error() {
    for backend in [SpawnBackend::Fork, SpawnBackend::Vfork] {
        let Some(cg) = TempCgroup::new(&format!("killed-{}", backend.name())) else {
            return;
        };
        std::fs::write(cg.0.join("cgroup.kill"), "1").expect("cgroup.kill");
        let r = start(backend, Duration::from_secs(1));
        let exec = r.arc();
        let dir = cg.0.clone();
        let result = bounded(SPAWN_LIMIT, "spawn", move || {
            exec.spawn(Command::new("sleep").arg("5").cgroup(dir))
        });
        match result {
            Ok(h) => {
                eprintln!(
                    "{}: this kernel clones into a killed cgroup fine",
                    backend.name()
                );
                assert!(cg.procs().contains(&h.pid()));
                assert_eq!(h.poll(), None);
            }
            Err(e) => {
                let text = e.to_string();
                eprintln!("{}: {text}", backend.name());
                assert_eq!(e.raw_os_error(), Some(libc::ECANCELED), "{text}");
                assert!(text.contains("cgroup"), "{text}");
                assert!(
                    text.contains("cgroup_per_child"),
                    "names the way out: {text}"
                );
            }
        }
        assert_no_zombie(&[]);
    }
}

/// One cgroup per child: made under the parent the command names, the child starts in it, and
/// after the reap it is emptied (a background process the child left dies) and removed.
#[test]
fn a_cgroup_per_child_goes_with_the_child() {
    for backend in [SpawnBackend::Fork, SpawnBackend::Vfork] {
        let Some(parent) = TempCgroup::new(&format!("parent-{}", backend.name())) else {
            return;
        };
        let r = start(backend, Duration::from_secs(1));
        let dir = parent.0.clone();
        let h = spawn_cmd(&r.arc(), move || {
            let mut c = Command::new("sh");
            c.args(["-c", "sleep 100 & echo $!"])
                .stdout(napix_executor::Stdio::piped())
                .cgroup_per_child(dir);
            c
        });
        // Listed before the output is read: its end comes only once the background sleep is
        // killed, i.e. once the cgroup is being removed.
        let made = made_under(&parent);
        assert_eq!(made.len(), 1, "one cgroup for the child: {made:?}");
        let out = read_all(h.take_stdout().expect("piped"), Duration::from_secs(10));
        let background: u32 = String::from_utf8_lossy(&out).trim().parse().expect("a pid");
        assert!(wait_for(&h, Duration::from_secs(10)).success());
        assert!(
            wait_until(Duration::from_secs(2), || !made[0].exists()
                && !alive(background)),
            "the child's cgroup {} or its leftover {background} stayed",
            made[0].display()
        );
    }
}

/// The cgroup directories under `parent` (one per child made there).
fn made_under(parent: &TempCgroup) -> Vec<PathBuf> {
    std::fs::read_dir(&parent.0)
        .expect("parent")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// A command whose exec fails in the child (a file without the execute bit, found by path so
/// that only the exec can tell), in a cgroup made for it under `parent`.
fn failing_in_the_child(parent: &std::path::Path) -> Command {
    let mut c = Command::new("/etc/passwd");
    c.cgroup_per_child(parent);
    c
}

/// A per-child cgroup goes whenever no child comes, whichever way the request ended: a spawn
/// failing in the child (`spawn` and `spawn_async`), a `spawn_async` future dropped before the
/// loop served it, and a `spawn` that gave up (request timeout) on a loop nobody ran yet.
#[test]
fn a_cgroup_per_child_goes_when_no_child_comes() {
    let _serial = serial();
    for backend in [SpawnBackend::Fork, SpawnBackend::Vfork] {
        let Some(parent) = TempCgroup::new(&format!("nochild-{}", backend.name())) else {
            return;
        };
        let r = start(backend, Duration::from_secs(1));
        let exec = r.arc();
        let dir = parent.0.clone();
        let err = bounded(SPAWN_LIMIT, "spawn", move || {
            exec.spawn(&failing_in_the_child(&dir))
        })
        .expect_err("/etc/passwd is not executable");
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err:?}");
        assert!(
            wait_until(Duration::from_secs(2), || made_under(&parent).is_empty()),
            "spawn left {:?}",
            made_under(&parent)
        );
        let exec = r.arc();
        let dir = parent.0.clone();
        let err = bounded(SPAWN_LIMIT, "spawn_async", move || {
            pollster::block_on(exec.spawn_async(&failing_in_the_child(&dir)))
        })
        .expect_err("/etc/passwd is not executable");
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err:?}");
        assert!(
            wait_until(Duration::from_secs(2), || made_under(&parent).is_empty()),
            "spawn_async left {:?}",
            made_under(&parent)
        );
        drop(r);

        // No loop yet: a dropped future and a timed-out spawn leave queued requests, but what
        // they held goes at once, before any loop runs (issue 20: withdrawn requests kept their
        // cgroups until a loop popped them).
        let idle = Arc::new(
            Executor::builder()
                .backend(backend)
                .request_timeout(Duration::from_millis(100))
                .build()
                .expect("build"),
        );
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30").cgroup_per_child(&parent.0);
        let fut = idle.spawn_async(&sleeper);
        assert_eq!(made_under(&parent).len(), 1, "made on the caller's thread");
        drop(fut);
        assert!(
            wait_until(Duration::from_secs(2), || made_under(&parent).is_empty()),
            "a dropped spawn future kept {:?}",
            made_under(&parent)
        );
        let e = idle.spawn(&sleeper).expect_err("nobody runs the loop");
        assert!(
            matches!(e, napix_executor::SpawnError::NotServed { .. }),
            "{e:?}"
        );
        assert!(
            wait_until(Duration::from_secs(2), || made_under(&parent).is_empty()),
            "a timed-out spawn kept {:?}",
            made_under(&parent)
        );
        let r = Running::spawn(idle);
        assert!(
            wait_until(Duration::from_secs(5), || made_under(&parent).is_empty()),
            "withdrawn requests left {:?}",
            made_under(&parent)
        );
        assert!(
            r.exec().running().is_empty(),
            "a withdrawn request was spawned"
        );
    }
}

/// A thread that refuses a queued request (here the `stop()` caller) does not wait for its
/// per-child cgroup to empty: it tries once and hands a busy one to the loops' retries, which
/// remove it once it can go.
///
/// Regression test: the refusing thread retried for 100 ms (then logged and left the cgroup).
#[test]
fn a_busy_cgroup_of_a_refused_request_does_not_hold_the_refusing_thread() {
    let _serial = serial();
    let Some(parent) = TempCgroup::new("refused-busy") else {
        return;
    };
    // No loop: the request stays queued, its cgroup made on this thread.
    let idle = Executor::builder()
        .backend(SpawnBackend::Vfork)
        .build()
        .expect("build");
    let mut sleeper = Command::new("sleep");
    sleeper.arg("30").cgroup_per_child(&parent.0);
    let fut = idle.spawn_async(&sleeper);
    let made = made_under(&parent);
    assert_eq!(made.len(), 1, "made on the caller's thread");
    // A cgroup below it keeps its removal failing with EBUSY, however often it is tried.
    let below = made[0].join("busy");
    std::fs::create_dir(&below).expect("a cgroup below the made one");

    let t = std::time::Instant::now();
    idle.stop();
    let took = t.elapsed();
    let got = pollster::block_on(fut);
    assert!(
        matches!(got, Err(napix_executor::SpawnError::Stopped)),
        "{got:?}"
    );
    assert!(
        took < Duration::from_millis(50),
        "stop() waited {took:?} for a busy cgroup"
    );
    assert!(made[0].exists(), "removed although busy");

    // Once it can go, a loop's retries remove it (here the last one, as a loop ends).
    std::fs::remove_dir(&below).expect("remove the cgroup below");
    drop(start(SpawnBackend::Vfork, Duration::from_secs(1)));
    assert!(
        wait_until(Duration::from_secs(5), || made_under(&parent).is_empty()),
        "left {:?}",
        made_under(&parent)
    );
}
