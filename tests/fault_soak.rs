//! Soak: 8 threads spawn, wait, kill, terminate, signal and drop handles at random against three
//! executors at once (one per backend; pidfd and SIGCHLD watching) for a bounded time
//! (`NAPIX_SOAK_SECS`, default 8 s), then stop them with children still running.
//!
//! Expected: every call returns (bounded); every handle that was kept got a status, the expected
//! one for what was done to it; a monitor sampling /proc every second never sees the same zombie
//! twice; at the end no child of ours is left, and this process has exactly the descriptors and
//! the thread count it had at the start.
//!
//! It counts the whole process's descriptors, threads and children, so it is the only test of
//! this file.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    RUN_WATCHDOG, Running, assert_no_children, describe_fds, our_fds, start_with_watch,
    thread_count, wait_until, zombie_children,
};
use napix_executor::{ChildWatch, ExecHandle, Executor, SpawnBackend, SpawnError};

const GRACE: Duration = Duration::from_millis(50);
const LIMIT: Duration = Duration::from_secs(20);
const THREADS: usize = 8;

#[derive(Default)]
struct Stats {
    spawned: AtomicUsize,
    waited: AtomicUsize,
    killed: AtomicUsize,
    dropped: AtomicUsize,
    refused: AtomicUsize,
}

/// xorshift64: a repeatable stream per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn status(h: &ExecHandle, what: &str) -> std::process::ExitStatus {
    h.wait_timeout(LIMIT)
        .unwrap_or_else(|| panic!("{what}: pid {} got no status within {LIMIT:?}", h.pid()))
}

fn one_round(ex: &Executor, rng: &mut Rng, stats: &Stats) {
    let spawn = |cmd: &[&str], discard: bool| -> ExecHandle {
        let h = ex
            .create_process(cmd, discard)
            .unwrap_or_else(|e| panic!("create_process({cmd:?}): {e:?}"));
        stats.spawned.fetch_add(1, Ordering::Relaxed);
        h
    };
    match rng.next() % 10 {
        0 => {
            let h = spawn(&["/bin/true"], true);
            assert_eq!(status(&h, "true").code(), Some(0));
            stats.waited.fetch_add(1, Ordering::Relaxed);
        }
        1 => {
            let h = spawn(&["echo", "soak"], false);
            let mut out = String::new();
            h.take_stdout().unwrap().read_to_string(&mut out).unwrap();
            assert_eq!(out, "soak\n");
            assert_eq!(status(&h, "echo").code(), Some(0));
            stats.waited.fetch_add(1, Ordering::Relaxed);
        }
        2 => {
            let h = spawn(&["sleep", "30"], rng.next().is_multiple_of(2));
            assert_eq!(h.kill().signal(), Some(libc::SIGTERM));
            stats.killed.fetch_add(1, Ordering::Relaxed);
        }
        3 => {
            // Ignores SIGTERM (if the trap was set in time): SIGKILL after the grace.
            let h = spawn(&["sh", "-c", "trap '' TERM; exec sleep 30"], true);
            thread::sleep(Duration::from_millis(5));
            let s = h.kill();
            assert!(
                [Some(libc::SIGKILL), Some(libc::SIGTERM)].contains(&s.signal()),
                "{s:?}"
            );
            stats.killed.fetch_add(1, Ordering::Relaxed);
        }
        4 => {
            drop(spawn(&["sleep", "0.05"], true));
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        5 => {
            // Pipes never taken, handle dropped while the child may still write.
            drop(spawn(
                &["sh", "-c", "echo a; echo b >&2; sleep 0.02"],
                false,
            ));
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        6 => {
            let h = spawn(&["sleep", "30"], true);
            h.terminate().expect("terminate");
            assert_eq!(status(&h, "terminated").signal(), Some(libc::SIGTERM));
            stats.killed.fetch_add(1, Ordering::Relaxed);
        }
        7 => {
            match ex.create_process(&["/nonexistent/soak"], rng.next().is_multiple_of(2)) {
                Err(SpawnError::NotFound { .. }) => {}
                other => panic!("missing program: {other:?}"),
            }
            stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        8 => {
            let h = spawn(&["sleep", "30"], false);
            h.send_signal(libc::SIGKILL).expect("send_signal");
            assert_eq!(status(&h, "SIGKILL").signal(), Some(libc::SIGKILL));
            assert_eq!(
                h.send_signal(0).unwrap_err().raw_os_error(),
                Some(libc::ESRCH)
            );
            stats.killed.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            let h = spawn(&["sh", "-c", "exit 7"], rng.next().is_multiple_of(2));
            assert_eq!(status(&h, "exit 7").code(), Some(7));
            stats.waited.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn soak_eight_threads_spawn_kill_drop() {
    let secs: u64 = std::env::var("NAPIX_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let fds_before = our_fds();
    let threads_before = thread_count();
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    {
        let mut runs: Vec<Running> = [
            (SpawnBackend::PosixSpawn, ChildWatch::Pidfd),
            (SpawnBackend::Fork, ChildWatch::Signal),
            (SpawnBackend::Vfork, ChildWatch::Pidfd),
        ]
        .into_iter()
        .map(|(backend, watch)| start_with_watch(backend, watch, GRACE))
        .collect();
        let executors: Vec<Arc<Executor>> = runs.iter().map(|r| r.arc()).collect();

        // Zombie monitor: a zombie child seen in two samples a second apart was not reaped.
        let done = Arc::new(AtomicBool::new(false));
        let monitor = {
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut last: Vec<u32> = Vec::new();
                let mut stale = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    let zombies = zombie_children();
                    stale.extend(zombies.iter().filter(|z| last.contains(z)).copied());
                    last = zombies;
                    for _ in 0..20 {
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                        thread::sleep(Duration::from_millis(50));
                    }
                }
                stale
            })
        };

        let deadline = started + Duration::from_secs(secs);
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let executors = executors.clone();
                let stats = Arc::clone(&stats);
                thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 0x1234_5678));
                    while Instant::now() < deadline {
                        let ex = &executors[(rng.next() % 3) as usize];
                        one_round(ex, &mut rng, &stats);
                    }
                    // Leave one running child per thread for stop() to end.
                    let ex = &executors[i % 3];
                    let h = ex
                        .create_process(&["sleep", "30"], i.is_multiple_of(2))
                        .expect("last");
                    stats.spawned.fetch_add(1, Ordering::Relaxed);
                    h
                })
            })
            .collect();
        let mut last_ones: Vec<ExecHandle> = Vec::new();
        for w in workers {
            let limit = deadline + LIMIT;
            while !w.is_finished() {
                assert!(Instant::now() < limit, "a soak worker hangs");
                thread::sleep(Duration::from_millis(10));
            }
            last_ones.push(w.join().expect("soak worker panicked"));
        }
        for r in &mut runs {
            r.stop_and_join(GRACE + RUN_WATCHDOG);
            assert!(r.exec().running().is_empty());
        }
        for h in &last_ones {
            assert_eq!(
                h.poll().and_then(|s| s.signal()),
                Some(libc::SIGTERM),
                "a child still running at stop() got no or a wrong status"
            );
        }
        done.store(true, Ordering::SeqCst);
        let stale = monitor.join().expect("monitor");
        assert!(
            stale.is_empty(),
            "zombies left unreaped for a second: {stale:?}"
        );
    }

    // Everything is dropped: no child, no descriptor, no thread left.
    assert_no_children(Duration::from_secs(5));
    wait_until(Duration::from_secs(5), || our_fds() == fds_before);
    let fds_after = our_fds();
    assert_eq!(
        fds_before,
        fds_after,
        "descriptors: before [{}] after [{}]",
        describe_fds(&fds_before),
        describe_fds(&fds_after)
    );
    wait_until(Duration::from_secs(5), || thread_count() == threads_before);
    assert_eq!(thread_count(), threads_before, "threads");
    eprintln!(
        "soak {secs} s ({:?}): {} spawned, {} waited, {} killed, {} dropped, {} refused",
        started.elapsed(),
        stats.spawned.load(Ordering::Relaxed),
        stats.waited.load(Ordering::Relaxed),
        stats.killed.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        stats.refused.load(Ordering::Relaxed)
    );
}
