//! `ExecutorBuilder::timeline`: each child's instants, recorded on the caller and executor
//! threads, are in order, bracketed by the caller's own clock, and their hops match what the
//! child did; on every backend and both child-watch modes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{SpawnBackend, Timeline};

/// A running executor that records timelines, in the test's backend and child-watch mode.
fn start_recording(backend: SpawnBackend) -> Running {
    let exec = builder(backend)
        .timeline(true)
        .kill_grace(Duration::from_millis(200))
        .build()
        .expect("build");
    Running::spawn(Arc::new(exec))
}

/// Every instant the timeline has, in the order a request goes (`replied` aside: a child may
/// exit before its caller holds the handle).
fn in_order(t: &Timeline) -> Vec<Instant> {
    [
        t.queued,
        t.spawn_started,
        t.spawned,
        t.exit_observed,
        t.reaped,
        t.wait_returned,
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn assert_ordered(t: &Timeline) {
    let instants = in_order(t);
    assert!(
        instants.windows(2).all(|w| w[0] <= w[1]),
        "instants out of order: {t:#?}"
    );
    if let (Some(spawned), Some(replied)) = (t.spawned, t.replied) {
        assert!(spawned <= replied, "replied before spawned: {t:#?}");
    }
}

fn a_child_that_sleeps_has_every_instant_in_order_and_a_child_run_as_long_as_its_sleep(
    backend: SpawnBackend,
) {
    let r = start_recording(backend);
    let before = Instant::now();
    let h = spawn_ok(&r.arc(), &["/bin/sh", "-c", "sleep 0.2"], true);
    let status = wait_for(&h, Duration::from_secs(30));
    let after = Instant::now();
    assert!(status.success());
    let t = h.timeline().expect("recorded");
    eprintln!("{backend:?} {:?}: {t:#?}", watch());
    assert_ordered(&t);
    // Every moment was recorded, between the caller's own two readings of the clock.
    let all = in_order(&t);
    assert_eq!(all.len(), 6, "a moment is missing: {t:#?}");
    assert!(t.replied.is_some(), "the caller's reply: {t:#?}");
    assert!(
        before <= all[0] && all[5] <= after,
        "outside the caller's span"
    );
    // The exec came after spawn_started and the sleep after the exec. `spawned` is when the
    // executor thread learnt of the exec, which may be a little after the child began (a
    // forked child runs beside it): only the two hops together surely hold the whole sleep.
    let run = t.child_run().expect("child run") + t.clone_exec().expect("clone+exec");
    assert!(
        run >= Duration::from_millis(200),
        "the child slept 200 ms, clone+exec and child run say {run:?}"
    );
    // The executor's own hops are small next to the child's sleep (generous: a loaded machine).
    for (name, hop) in [
        ("hand-off in", t.hand_off_in()),
        ("clone+exec", t.clone_exec()),
        ("exit to reap", t.exit_to_reap()),
        ("hand-off out", t.hand_off_out()),
    ] {
        let hop = hop.expect(name);
        assert!(hop < Duration::from_secs(5), "{name} took {hop:?}");
    }
    assert!(t.clone_exec().expect("spawn") > Duration::ZERO);
    assert!(t.total().expect("total") <= after - before);
}

fn a_running_child_has_no_exit_instants_until_it_is_killed_and_reaped(backend: SpawnBackend) {
    let r = start_recording(backend);
    let h = Arc::new(spawn_ok(&r.arc(), &["sleep", "30"], true));
    let running = h.timeline().expect("recorded");
    assert!(running.spawned.is_some() && running.replied.is_some());
    assert_eq!(
        (running.exit_observed, running.reaped, running.wait_returned),
        (None, None, None),
        "a running child: {running:#?}"
    );
    assert_eq!(running.child_run(), None);
    let killed_at = Instant::now();
    kill_bounded(&h, Duration::from_secs(10));
    let t = h.timeline().expect("recorded");
    assert_ordered(&t);
    let observed = t.exit_observed.expect("exit observed");
    assert!(observed >= killed_at, "observed before the kill: {t:#?}");
    assert!(t.reaped.is_some() && t.wait_returned.is_some(), "{t:#?}");
    assert_eq!(
        h.timeline().map(|t| t.wait_returned),
        Some(t.wait_returned),
        "read again: the first wait's instant stays"
    );
}

fn async_spawn_and_wait_record_the_reply_and_the_wait(backend: SpawnBackend) {
    let r = start_recording(backend);
    let exec = r.arc();
    let t = bounded(
        Duration::from_secs(30),
        "spawn_async + wait_async",
        move || {
            pollster::block_on(async {
                let h = exec
                    .spawn_async(&napix_executor::Command::new("/bin/true"))
                    .await
                    .expect("spawn_async");
                assert!(h.wait_async().await.success());
                h.timeline().expect("recorded")
            })
        },
    );
    assert_ordered(&t);
    assert_eq!(in_order(&t).len(), 6, "a moment is missing: {t:#?}");
    assert!(t.replied.is_some(), "{t:#?}");
}

fn without_the_switch_no_child_has_a_timeline(backend: SpawnBackend) {
    let r = start(backend, Duration::from_millis(200));
    let h = spawn_ok(&r.arc(), &["/bin/true"], true);
    wait_for(&h, Duration::from_secs(30));
    assert_eq!(h.timeline(), None);
    let off = builder(backend).timeline(false).build().expect("build");
    let r = Running::spawn(Arc::new(off));
    let h = spawn_ok(&r.arc(), &["/bin/true"], true);
    wait_for(&h, Duration::from_secs(30));
    assert_eq!(h.timeline(), None);
}

per_backend!(
    a_child_that_sleeps_has_every_instant_in_order_and_a_child_run_as_long_as_its_sleep,
    a_running_child_has_no_exit_instants_until_it_is_killed_and_reaped,
    async_spawn_and_wait_record_the_reply_and_the_wait,
    without_the_switch_no_child_has_a_timeline,
);
