//! The loop has a budget per pass (issue 19): with 2,000 async spawns queued, a 50 ms deadline
//! on a running child fires within 20 ms of its time. The requests go through the queue (an
//! executor built with `SpawnSite::ExecutorThread`, so every request is queued for the spawner
//! thread), and the loop serves a bounded batch of messages per pass before it looks at its
//! timer and its children.
//!
//! Regression test: one pass served every queued message (spawning each) before timers and
//! reaps; the deadline fired 839 ms late.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use common::{Running, assert_no_children};
use napix_executor::{Command, Executor, SpawnBackend, SpawnSite, Stdio};

const TIMEOUT: Duration = Duration::from_millis(50);
const QUEUED: usize = 2_000;

#[test]
fn a_flood_of_queued_spawns_does_not_delay_a_deadline() {
    for backend in SpawnBackend::ALL {
        let exec = Executor::builder()
            .backend(backend)
            .spawn_site(SpawnSite::ExecutorThread)
            .timeline(true)
            .kill_grace(Duration::from_millis(200))
            .build()
            .expect("build");
        let mut r = Running::spawn(Arc::new(exec));
        let ex = r.arc();
        let warm = ex.create_process(&["/bin/true"], true).expect("warm");
        assert!(warm.wait().success());

        let mut sleeper = Command::new("sleep");
        sleeper.arg("30").timeout(TIMEOUT);
        // Waited for on a thread of its own, so that queueing the flood below does not delay
        // the measurement.
        let h = ex.spawn(&sleeper).expect("sleep");
        // Lateness as the loop saw it: from the spawn (where the timeout counts from) to the
        // loop's wake-up that observed the killed child's exit, so that the waiting thread's own
        // wake-up on a busy machine is not counted.
        let waiter = std::thread::spawn(move || {
            let status = h.wait();
            let t = h.timeline().expect("built with timeline(true)");
            let observed = t
                .exit_observed
                .zip(t.spawn_started)
                .map(|(exit, spawned)| exit.saturating_duration_since(spawned))
                .expect("spawned and exit observed");
            (status, h.timed_out(), observed.saturating_sub(TIMEOUT))
        });
        let mut quick = Command::new("/bin/true");
        quick.stdout(Stdio::null()).stderr(Stdio::null());
        let futures: Vec<_> = (0..QUEUED).map(|_| ex.spawn_async(&quick)).collect();
        let (status, timed_out, late) = waiter.join().expect("waiter");
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{}", backend.name());
        assert!(timed_out);
        let spawned = pollster::block_on(async {
            let mut n = 0;
            for f in futures {
                if let Ok(child) = f.await {
                    child.wait_async().await;
                    n += 1;
                }
            }
            n
        });
        eprintln!(
            "{}: deadline late by {late:?} behind {QUEUED} queued spawns ({spawned} spawned)",
            backend.name()
        );
        assert_eq!(spawned, QUEUED, "{}", backend.name());
        assert!(
            late < Duration::from_millis(20),
            "{}: a 50 ms deadline fired {late:?} late behind {QUEUED} queued spawns",
            backend.name()
        );
        r.stop_and_join(Duration::from_secs(20));
        assert_no_children(Duration::from_secs(5));
    }
}
