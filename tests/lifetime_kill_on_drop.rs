//! `Command::kill_on_drop`: the last owner of a child's handle going away (a dropped
//! `ExecHandle`, a dropped `spawn_async` future whose child was spawned, the last `Arc` clone of
//! a shared handle) starts the kill escalation of that child, in its kill scope and with its
//! grace; the child is still reaped. Without it a dropped handle's child runs on. Every backend
//! in both child-watch modes; the spawn future under tokio (an aborted task, a timeout) and
//! under a hand-driven poll (pollster's way: no runtime).
//!
//! Every test holds `serial()`: they look at this process's children.

mod common;

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{Command, ExecHandle, Executor, KillScope, SpawnBackend};

fn started(backend: SpawnBackend, grace: Duration) -> Executor {
    builder(backend)
        .kill_grace(grace)
        .start()
        .expect("ExecutorBuilder::start")
}

fn sleeper(kill_on_drop: bool) -> Command {
    let mut c = Command::new("sleep");
    c.arg("30").kill_on_drop(kill_on_drop);
    c
}

fn spawn_bounded(ex: &Executor, cmd: Command) -> ExecHandle {
    let ex = ex.clone();
    bounded(SPAWN_LIMIT, "spawn", move || ex.spawn(&cmd)).expect("spawn")
}

/// True once `pid` is neither running nor a zombie child of ours (killed and reaped).
fn gone_within(pid: u32, limit: Duration) -> bool {
    wait_until(limit, || !is_child(pid))
}

/// The handle's drop sends SIGTERM (the status an exit future that outlived the handle sees),
/// and the child is reaped; without `kill_on_drop` the child runs on.
fn dropped_handle_kills_its_child(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_secs(5));
    let h = spawn_bounded(&ex, sleeper(true));
    let pid = h.pid();
    let exit = h.wait_async();
    let t = Instant::now();
    drop(h);
    let status = bounded(Duration::from_secs(10), "exit after the drop", move || {
        pollster::block_on(exit)
    });
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    // SIGTERM, not the SIGKILL of the 5 s grace.
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(gone_within(pid, Duration::from_secs(5)), "pid {pid} left");
    assert!(ex.running().is_empty());

    // The default: a dropped handle's child runs on, and is reaped when it exits.
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "sleep 1"]);
    let h = spawn_bounded(&ex, cmd);
    let pid = h.pid();
    drop(h);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        is_live_child(pid),
        "a dropped handle's child was killed without kill_on_drop"
    );
    assert!(gone_within(pid, Duration::from_secs(10)), "pid {pid} left");

    // A child that already exited is not touched (nothing to kill, status kept).
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exit 3"]).kill_on_drop(true);
    let h = spawn_bounded(&ex, cmd);
    let exit = h.wait_async();
    assert_eq!(wait_for(&h, Duration::from_secs(10)).code(), Some(3));
    drop(h);
    assert_eq!(pollster::block_on(exit).code(), Some(3));
}

/// The escalation is the command's: its grace (SIGTERM ignored, SIGKILL after it) and its
/// scope (the whole process group).
fn drop_kill_respects_grace_and_scope(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_secs(30));
    let mut cmd = Command::new(STUBBORN[0]);
    cmd.args(&STUBBORN[1..])
        .kill_on_drop(true)
        .kill_grace(Duration::from_millis(1500));
    let h = spawn_bounded(&ex, cmd);
    let pid = h.pid();
    assert!(
        wait_until(Duration::from_secs(5), || ignores(pid, libc::SIGTERM)),
        "pid {pid} never got to ignore SIGTERM"
    );
    let exit = h.wait_async();
    let t = Instant::now();
    drop(h);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        is_live_child(pid),
        "a child ignoring SIGTERM died before its grace ({:?} after the drop)",
        t.elapsed()
    );
    let status = bounded(
        Duration::from_secs(15),
        "SIGKILL after the grace",
        move || pollster::block_on(exit),
    );
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "SIGKILL {took:?} after the drop, with a 1.5 s grace (executor's: 30 s)"
    );

    // Group scope: the shell's background sleep goes with it.
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "sleep 30 & sleep 30; wait"])
        .kill_scope(KillScope::Group)
        .kill_on_drop(true);
    let h = spawn_bounded(&ex, cmd);
    let leader = h.pid();
    let in_group = move || {
        proc_stats()
            .into_iter()
            .filter(|&(pid, state, _, pgrp, _)| pgrp == leader && pid != leader && state != 'Z')
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || in_group() == 2),
        "the shell's two sleeps never showed up"
    );
    drop(h);
    assert!(
        wait_until(Duration::from_secs(10), || in_group() == 0),
        "left in the group: {}",
        in_group()
    );
    assert!(gone_within(leader, Duration::from_secs(5)));
}

/// Shared through `Arc` clones on several threads: only the last drop kills.
fn only_the_last_clone_kills(backend: SpawnBackend) {
    let _serial = serial();
    let ex = started(backend, Duration::from_secs(5));
    let h = Arc::new(spawn_bounded(&ex, sleeper(true)));
    let pid = h.pid();
    let exit = h.wait_async();
    let clones: Vec<_> = (0..3).map(|_| Arc::clone(&h)).collect();
    let threads: Vec<_> = clones
        .into_iter()
        .map(|c| std::thread::spawn(move || drop(c)))
        .collect();
    join_all(threads, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    assert!(is_live_child(pid), "a clone's drop killed the child");
    assert_eq!(h.poll(), None);
    drop(h);
    let status = bounded(
        Duration::from_secs(10),
        "exit after the last drop",
        move || pollster::block_on(exit),
    );
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(gone_within(pid, Duration::from_secs(5)));
}

/// An executor whose loop is not running yet: a spawn future made on it is surely pending at
/// its first poll. [`Running::spawn`] starts the loop.
fn idle(backend: SpawnBackend) -> Arc<Executor> {
    Arc::new(
        builder(backend)
            .kill_grace(Duration::from_secs(5))
            .build()
            .expect("build"),
    )
}

/// A spawn future dropped once its child was spawned (the answer waiting in it, never polled
/// again): the child is killed. Under pollster's `block_on`: the task polls the future once
/// (pending: the loop starts only then), waits for the spawn, and ends, dropping it.
fn dropped_spawn_future_kills_its_spawned_child(backend: SpawnBackend) {
    let _serial = serial();
    let ex = idle(backend);
    let in_task = Arc::clone(&ex);
    let (pid, running) = bounded(Duration::from_secs(20), "pollster task", move || {
        pollster::block_on(async move {
            let mut fut = std::pin::pin!(in_task.spawn_async(&sleeper(true)));
            // Polled once, so it is the kind of future a select! drops half-way.
            let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "answered without a loop");
            let running = Running::spawn(Arc::clone(&in_task));
            assert!(
                wait_until(Duration::from_secs(10), || in_task.running().len() == 1),
                "the loop never spawned the child"
            );
            (in_task.running()[0].pid, running)
        })
    });
    assert!(
        gone_within(pid, Duration::from_secs(10)),
        "the child of a dropped spawn future ran on"
    );
    assert!(ex.running().is_empty());

    // Without kill_on_drop it runs on, as a dropped handle's.
    let _running = running;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "sleep 1"]);
    let fut = ex.spawn_async(&cmd);
    assert!(wait_until(Duration::from_secs(10), || ex.running().len() == 1));
    let pid = ex.running()[0].pid;
    drop(fut);
    std::thread::sleep(Duration::from_millis(100));
    assert!(is_live_child(pid), "killed without kill_on_drop");
    assert!(gone_within(pid, Duration::from_secs(10)));
}

/// Under tokio: a task awaiting `spawn_async` aborted after the child was spawned, and a spawn
/// cut short by `tokio::time::timeout` at any point (before or after the spawn): no child
/// survives either way.
fn spawn_future_cancelled_under_tokio(backend: SpawnBackend) {
    let _serial = serial();
    for multi_thread in [false, true] {
        let ex = idle(backend);
        bounded(Duration::from_secs(30), "tokio cancel", move || {
            let rt = if multi_thread {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            }
            .expect("tokio runtime");
            rt.block_on(async {
                // A parked task: its spawn future holds the answer until the abort drops it.
                // A task that polls its spawn future once (pending: no loop runs yet) and then
                // waits for ever: the answer stays in the future until the abort drops it.
                let fut = ex.spawn_async(&sleeper(true));
                let (polled_tx, polled_rx) = std::sync::mpsc::channel();
                let task = tokio::spawn(async move {
                    let mut fut = std::pin::pin!(fut);
                    let mut polled = false;
                    std::future::poll_fn(move |cx| {
                        if !polled {
                            polled = true;
                            let _ = polled_tx.send(fut.as_mut().poll(cx).is_pending());
                        }
                        Poll::<()>::Pending
                    })
                    .await
                });
                let t = Instant::now();
                let pending = loop {
                    if let Ok(pending) = polled_rx.try_recv() {
                        break pending;
                    }
                    assert!(t.elapsed() < Duration::from_secs(10), "the task never ran");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                assert!(pending, "answered without a loop");
                let _running = Running::spawn(Arc::clone(&ex));
                let t = Instant::now();
                while ex.running().is_empty() {
                    assert!(t.elapsed() < Duration::from_secs(10), "never spawned");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let pid = ex.running()[0].pid;
                task.abort();
                assert!(task.await.expect_err("aborted").is_cancelled());
                let t = Instant::now();
                while is_child(pid) {
                    assert!(
                        t.elapsed() < Duration::from_secs(10),
                        "the aborted task's child ran on"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }

                // Timeouts landing anywhere in the hand-off.
                for i in 0..20u64 {
                    let limit = Duration::from_micros(i * 50);
                    let got = tokio::time::timeout(limit, ex.spawn_async(&sleeper(true))).await;
                    if let Ok(spawned) = got {
                        drop(spawned.expect("spawn"));
                    }
                }
                let t = Instant::now();
                while !ex.running().is_empty() {
                    assert!(
                        t.elapsed() < Duration::from_secs(10),
                        "children of cut-short spawns ran on: {:?}",
                        ex.running()
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        });
    }
    assert_no_children(Duration::from_secs(10));
}

per_backend!(
    dropped_handle_kills_its_child,
    drop_kill_respects_grace_and_scope,
    only_the_last_clone_kills,
    dropped_spawn_future_kills_its_spawned_child,
    spawn_future_cancelled_under_tokio,
);

/// A child the calling thread cloned itself (`SpawnSite::CallingThread`: Vfork, pidfd mode) is
/// the loop's to kill like any other: the handle's drop starts its escalation.
#[test]
fn calling_thread_spawn_site_kills_on_drop() {
    let _serial = serial();
    let ex = Executor::builder()
        .backend(SpawnBackend::Vfork)
        .spawn_site(napix_executor::SpawnSite::CallingThread)
        .kill_grace(Duration::from_secs(5))
        .start()
        .expect("start");
    let h = spawn_bounded(&ex, sleeper(true));
    let pid = h.pid();
    let exit = h.wait_async();
    drop(h);
    let status = bounded(Duration::from_secs(10), "exit after the drop", move || {
        pollster::block_on(exit)
    });
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(gone_within(pid, Duration::from_secs(5)), "pid {pid} left");
}
