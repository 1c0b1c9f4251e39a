//! Many threads at once on one executor: spawning, waiting, racing stop();
//! on every backend.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{ExecHandle, SpawnBackend, SpawnError};

const LONG: Duration = Duration::from_secs(10);

per_backend!(
    eight_threads_fifty_spawns_each,
    live_children_have_distinct_pids,
    spawns_racing_stop_all_end,
    mixed_pipes_from_many_threads,
);

fn eight_threads_fifty_spawns_each(b: SpawnBackend) {
    const THREADS: usize = 8;
    const EACH: usize = 50;
    let r = start(b, Duration::from_millis(300));
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let exec = r.arc();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let handles: Vec<ExecHandle> = (0..EACH)
                    .map(|_| {
                        exec.create_process(&["/bin/true"], true)
                            .expect("spawn /bin/true")
                    })
                    .collect();
                handles
                    .iter()
                    .map(|h| h.wait_timeout(LONG).expect("/bin/true did not exit"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let statuses: Vec<_> = join_all(workers, Duration::from_secs(60))
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(statuses.len(), THREADS * EACH);
    for s in &statuses {
        assert_eq!(code(*s), Some(0), "{s:?}");
    }
    assert!(
        wait_until(Duration::from_secs(2), || r.exec().running().is_empty()),
        "running() not empty after all exited: {} left",
        r.exec().running().len()
    );
}

fn live_children_have_distinct_pids(b: SpawnBackend) {
    const THREADS: usize = 8;
    const EACH: usize = 6;
    let r = start(b, Duration::from_millis(300));
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let exec = r.arc();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let handles: Vec<ExecHandle> = (0..EACH)
                    .map(|_| exec.create_process(&["sleep", "30"], true).unwrap())
                    .collect();
                (thread::current().id(), handles)
            })
        })
        .collect();
    let results = join_all(workers, Duration::from_secs(30));
    let mut pids = HashSet::new();
    for (owner, handles) in &results {
        let mut mine: Vec<u32> = r.exec().children_of(*owner).iter().map(|i| i.pid).collect();
        mine.sort_unstable();
        let mut want: Vec<u32> = handles.iter().map(|h| h.pid()).collect();
        want.sort_unstable();
        assert_eq!(mine, want, "children_of(a spawning thread)");
        for h in handles {
            assert!(pids.insert(h.pid()), "pid {} handed out twice", h.pid());
            assert!(
                is_live_child(h.pid()),
                "pid {} is not a live child",
                h.pid()
            );
        }
    }
    assert_eq!(pids.len(), THREADS * EACH);
    let running: HashSet<u32> = r.exec().running().iter().map(|i| i.pid).collect();
    assert_eq!(running, pids, "running() vs the handles");
    for (_, handles) in &results {
        for h in handles {
            h.terminate().unwrap();
        }
    }
    for (_, handles) in &results {
        for h in handles {
            assert_eq!(signal(wait_for(h, LONG)), Some(libc::SIGTERM));
        }
    }
}

fn spawns_racing_stop_all_end(b: SpawnBackend) {
    // Threads keep spawning while stop() comes: every call ends, with a
    // process or with Stopped, and every process is reaped by run().
    const THREADS: usize = 4;
    let mut r = start(b, Duration::from_millis(300));
    // Workers that have a child already. stop() comes once every worker has one, not after a
    // fixed time: on a loaded machine 300 ms were sometimes not enough for a first spawn, and
    // stop() then raced with nothing.
    let started = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let exec = r.arc();
            let started = Arc::clone(&started);
            thread::spawn(move || {
                let mut got = Vec::new();
                let start = Instant::now();
                loop {
                    match exec.create_process(&["sleep", "30"], true) {
                        Ok(h) => {
                            if got.is_empty() {
                                started.fetch_add(1, Ordering::SeqCst);
                            }
                            got.push(h);
                        }
                        Err(SpawnError::Stopped) => return got,
                        Err(e) => panic!("unexpected error: {e:?}"),
                    }
                    assert!(start.elapsed() < Duration::from_secs(60), "never stopped");
                }
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || started.load(Ordering::SeqCst)
            == THREADS),
        "not every worker got a child within 30 s"
    );
    // A few more spawns under way when stop() comes.
    thread::sleep(Duration::from_millis(20));
    r.stop_and_join(Duration::from_secs(10));
    let handles: Vec<ExecHandle> = join_all(workers, Duration::from_secs(10))
        .into_iter()
        .flatten()
        .collect();
    assert!(!handles.is_empty(), "no spawn succeeded before stop()");
    for h in &handles {
        let s = h
            .return_code()
            .unwrap_or_else(|| panic!("pid {} has no status after run() returned", h.pid()));
        assert_eq!(signal(s), Some(libc::SIGTERM), "{s:?}");
    }
    let pids: Vec<u32> = handles.iter().map(|h| h.pid()).collect();
    assert_no_zombie(&pids);
}

fn mixed_pipes_from_many_threads(b: SpawnBackend) {
    // Each thread's child must get its own pipes: the output matches the
    // request, and every read reaches EOF (no write end leaked into another
    // child spawned at the same time).
    const THREADS: usize = 6;
    const EACH: usize = 15;
    let r = start(b, Duration::from_millis(300));
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let exec = r.arc();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    let msg = format!("t{t}-i{i}");
                    let script = format!("echo {msg}; echo {msg}-err >&2; sleep 0.01");
                    let h = exec
                        .create_process(&["/bin/sh", "-c", script.as_str()], false)
                        .unwrap();
                    let out = read_all(h.take_stdout().unwrap(), LONG);
                    let err = read_all(h.take_stderr().unwrap(), LONG);
                    assert_eq!(String::from_utf8(out).unwrap(), format!("{msg}\n"));
                    assert_eq!(String::from_utf8(err).unwrap(), format!("{msg}-err\n"));
                    assert_eq!(code(wait_for(&h, LONG)), Some(0));
                }
            })
        })
        .collect();
    join_all(workers, Duration::from_secs(60));
}
