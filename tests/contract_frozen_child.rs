//! No caller waits behind another caller's child (issue 19). A child spawned into a frozen
//! cgroup (`cgroup.freeze` = 1) stops before its exec, as one does whose program sits on a hung
//! NFS or FUSE mount; its spawning thread is suspended in the clone until the cgroup thaws.
//! Meanwhile, from other threads: 100 spawn+wait of /bin/true finish within 2 s, a 200 ms
//! `Command::timeout` on another child fires within 50 ms of its time (median of three), a kill
//! escalates to SIGKILL, and `stop()` returns at once while `run()` returns once the frozen
//! child is thawed and reaped, leaving no child behind.
//!
//! Regression test: the executor thread itself spawned and stayed suspended in that clone, so
//! no other spawn, reap, kill or deadline made progress until the thaw.
//!
//! Backends that can start a child in a cgroup (Fork, Vfork), in both watch modes; skipped with
//! a message where cgroup v2 is not writable. One test, run case after case: it times things.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::cgroup::TempCgroup;
use common::{Running, STUBBORN, assert_no_children, join_all, wait_until};
use napix_executor::{ChildWatch, Command, Executor, SpawnBackend, SpawnError};

const GRACE: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(200);

/// A fresh cgroup v2 directory, frozen; thawed (then killed and removed) on drop.
struct FrozenCgroup(TempCgroup);

impl FrozenCgroup {
    fn new(name: &str) -> Option<FrozenCgroup> {
        let cgroup = TempCgroup::new(&format!("frozen-{name}"))?;
        if std::fs::write(cgroup.0.join("cgroup.freeze"), "1").is_err() {
            eprintln!("skipped: no cgroup.freeze (Linux 5.2+)");
            return None;
        }
        Some(FrozenCgroup(cgroup))
    }

    fn procs(&self) -> Vec<u32> {
        self.0.procs()
    }

    fn thaw(&self) {
        std::fs::write(self.0.0.join("cgroup.freeze"), "0").expect("thaw");
    }
}

impl Drop for FrozenCgroup {
    fn drop(&mut self) {
        // Thawed first: a frozen member dies of cgroup.kill only once thawed.
        let _ = std::fs::write(self.0.0.join("cgroup.freeze"), "0");
    }
}

#[test]
fn a_child_frozen_before_its_exec_holds_up_nobody_else() {
    let mut skipped = false;
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in [SpawnBackend::Vfork, SpawnBackend::Fork] {
            let name = format!("{}-{watch:?}", backend.name());
            let Some(cgroup) = FrozenCgroup::new(&name) else {
                skipped = true;
                break;
            };
            one_case(&name, backend, watch, &cgroup);
        }
        if skipped {
            break;
        }
    }
}

fn one_case(name: &str, backend: SpawnBackend, watch: ChildWatch, cgroup: &FrozenCgroup) {
    let exec = Executor::builder()
        .backend(backend)
        .child_watch(watch)
        .kill_grace(GRACE)
        .build()
        .expect("build");
    let r = Running::spawn(Arc::new(exec));
    let ex = r.arc();
    // Served once the loop runs, so the frozen spawn below is not the first.
    let warm = ex.create_process(&["/bin/true"], true).expect("warm");
    assert!(warm.wait().success());

    let frozen = {
        let ex = ex.clone();
        let dir = cgroup.0.0.clone();
        thread::spawn(move || {
            let mut cmd = Command::new("/bin/true");
            cmd.cgroup(dir);
            ex.spawn(&cmd).map(|h| h.wait())
        })
    };
    assert!(
        wait_until(Duration::from_secs(5), || !cgroup.procs().is_empty()),
        "{name}: the child never entered the frozen cgroup"
    );

    // 100 spawn+wait of /bin/true from four other threads.
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let ex = ex.clone();
            thread::spawn(move || {
                for _ in 0..25 {
                    let h = ex.create_process(&["/bin/true"], true).expect("true");
                    assert!(h.wait().success());
                }
            })
        })
        .collect();
    join_all(workers, Duration::from_secs(20));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{name}: 100 spawn+wait beside a frozen child took {took:?}"
    );

    // A deadline fires on time: three children with a 200 ms timeout, median lateness.
    let mut late: Vec<Duration> = (0..3)
        .map(|_| {
            let ex = ex.clone();
            thread::spawn(move || {
                let mut cmd = Command::new("sleep");
                cmd.arg("30").timeout(TIMEOUT);
                let at = Instant::now();
                let h = ex.spawn(&cmd).expect("sleep");
                let status = h.wait();
                assert_eq!(status.signal(), Some(libc::SIGTERM));
                assert!(h.timed_out());
                at.elapsed().saturating_sub(TIMEOUT)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("timeout thread"))
        .collect();
    late.sort();
    eprintln!("{name}: 100 spawns in {took:?}; deadline late by {late:?}");
    assert!(
        late[1] < Duration::from_millis(50),
        "{name}: a 200 ms deadline fired late by {late:?} beside a frozen child"
    );

    // A kill escalates to SIGKILL after the grace.
    let stubborn = common::spawn_ok(&ex, &STUBBORN, true);
    // Let the shell install its trap.
    thread::sleep(Duration::from_millis(100));
    let at = Instant::now();
    assert_eq!(stubborn.kill().signal(), Some(libc::SIGKILL), "{name}");
    assert!(at.elapsed() < GRACE + Duration::from_secs(2), "{name}");

    // stop() returns at once; run() waits for the frozen child, which is killed and reaped once
    // it thaws.
    let at = Instant::now();
    ex.stop();
    assert!(at.elapsed() < Duration::from_millis(100), "{name}: stop()");
    thread::sleep(Duration::from_millis(300));
    assert!(
        !r.finished(),
        "{name}: run() returned while a spawn was still under way"
    );
    cgroup.thaw();
    let mut r = r;
    r.join(GRACE + Duration::from_secs(10));
    let frozen = frozen.join().expect("frozen spawner");
    match frozen {
        // Spawned after the stop: refused, its child killed and reaped.
        Err(SpawnError::Stopped) => {}
        // Or it exec'd and ran (or was killed by stop()'s escalation).
        Ok(status) => assert!(
            status.success() || status.signal().is_some(),
            "{name}: {status:?}"
        ),
        Err(e) => panic!("{name}: {e:?}"),
    }
    assert!(ex.running().is_empty());
    assert_no_children(Duration::from_secs(5));
}
