//! The fuzz targets on the stable toolchain: the checked-in corpus (`fuzz/corpus/{request,ops}`)
//! replayed through the same logic the fuzzer runs (`tests/fuzz_logic`), plus a proptest-driven
//! random run of each target.
//!
//! `NAPIX_FUZZ_CASES` sets the number of random cases (default: 400 requests, 24 op sequences).
//! The random runs are reproducible: each starts from a fixed seed (`DEFAULT_SEED` in
//! `tests/common/seeded.rs`), printed
//! with the test's output; `NAPIX_FUZZ_SEED=<u64, decimal or 0x-hex>` picks another one, and
//! `NAPIX_FUZZ_SEED=random` a fresh one (printed, so a failure can be replayed with it).
//! `NAPIX_WRITE_SEEDS=1` (re)writes the built-in seeds into `fuzz/corpus/`.
//! `NAPIX_FUZZ_FILE=request:PATH` (or `ops:PATH`) replays one input, e.g. a crash artifact of
//! the fuzzer, on the stable toolchain: `cargo test --test fuzz_replay replay_one_file`.

mod common;
mod fuzz_logic;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::seeded::{random_cases, seeded_runner};
use napix_executor::{ChildWatch, Executor};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The ops target counts this process's descriptors and children: no two tests of this file may
/// overlap (a lock of their own; `fuzz_logic::exclusive` is taken inside the targets).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of the target's corpus, sorted by name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs `f` on `bytes`, naming the corpus file if it panics.
fn replay(path: &Path, bytes: &[u8], f: impl FnOnce(&[u8])) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(bytes)));
    if let Err(panic) = r {
        eprintln!("corpus file {} failed", path.display());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn seeds_are_checked_in() {
    let _g = serial();
    let write = std::env::var_os("NAPIX_WRITE_SEEDS").is_some_and(|v| v == "1");
    for (target, seeds) in [
        ("request", fuzz_logic::seeds::request()),
        ("ops", fuzz_logic::seeds::ops()),
    ] {
        let dir = corpus_dir(target);
        if write {
            fs::create_dir_all(&dir).unwrap();
        }
        for (name, bytes) in seeds {
            let path = dir.join(format!("seed-{name}"));
            if write {
                fs::write(&path, &bytes).unwrap();
            }
            let on_disk = fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run with NAPIX_WRITE_SEEDS=1 to write it)",
                    path.display()
                )
            });
            assert_eq!(
                on_disk,
                bytes,
                "{} differs from seeds.rs (NAPIX_WRITE_SEEDS=1 rewrites it)",
                path.display()
            );
        }
    }
}

#[test]
fn request_corpus_replays() {
    let _g = serial();
    let files = corpus("request");
    assert!(files.len() >= 10, "the request corpus is missing");
    let mut spawned = 0;
    for (path, bytes) in &files {
        replay(path, bytes, |b| {
            spawned += usize::from(fuzz_logic::request::run(b).spawned);
        });
    }
    eprintln!("request corpus: {} inputs, {spawned} spawned", files.len());
}

#[test]
fn ops_corpus_replays() {
    let _g = serial();
    let files = corpus("ops");
    assert!(files.len() >= 8, "the ops corpus is missing");
    let t = Instant::now();
    let mut spawned = 0;
    for (path, bytes) in &files {
        replay(path, bytes, |b| spawned += fuzz_logic::ops::run(b).spawned);
    }
    eprintln!(
        "ops corpus: {} inputs, {spawned} processes, {:?}",
        files.len(),
        t.elapsed()
    );
}

#[test]
fn request_random() {
    let _g = serial();
    let mut runner = seeded_runner(
        "request_random",
        Config {
            cases: random_cases(400),
            failure_persistence: None,
            ..Config::default()
        },
    );
    // Mostly short inputs in the target's own format, some with arguments from the dictionary.
    let strategy = prop::collection::vec(any::<u8>(), 0..64);
    runner
        .run(&strategy, |bytes| {
            fuzz_logic::request::run(&bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn ops_random() {
    let _g = serial();
    let mut runner = seeded_runner(
        "ops_random",
        Config {
            cases: random_cases(24),
            failure_persistence: None,
            // A failing sequence is already short; shrinking it spawns a lot of processes.
            max_shrink_iters: 32,
            ..Config::default()
        },
    );
    let strategy = prop::collection::vec(any::<u8>(), 1..48);
    let t = Instant::now();
    runner
        .run(&strategy, |bytes| {
            fuzz_logic::ops::run(&bytes);
            Ok(())
        })
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(120),
        "random op sequences took {:?}",
        t.elapsed()
    );
}

/// Regression: in `ChildWatch::Signal` mode a signal after `stop()` once answered `Stopped`,
/// which the ops oracle called a failure; now it is sent (the child is ours until reaped).
/// Replays the smallest input that showed it (`fuzz/corpus/ops/seed-signal-after-stop-signal-mode`:
/// Signal mode, create `sleep 30`, `stop`, `send_signal(0)`) and the invalid-number variants,
/// then checks the documented answers directly on a child that outlives `stop()` by the kill
/// grace: `EINVAL` for a number that is no signal, always; `Ok` for a signal after `stop()`
/// while the child is unreaped.
#[test]
fn ops_signal_after_stop_in_signal_mode() {
    let _g = serial();
    let dir = corpus_dir("ops");
    for name in [
        "seed-signal-after-stop-signal-mode",
        "seed-invalid-signal-after-stop-signal-mode",
        "seed-invalid-signal-after-stop-pidfd-mode",
    ] {
        let path = dir.join(name);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        // Races (served or refused, refused before or after the reap) decide which answer
        // comes: replay several times so that `Stopped` is met whatever the scheduling.
        for _ in 0..8 {
            replay(&path, &bytes, |b| {
                fuzz_logic::ops::run(b);
            });
        }
    }

    let _x = fuzz_logic::exclusive();
    let ex = std::sync::Arc::new(
        Executor::builder()
            .child_watch(ChildWatch::Signal)
            .kill_grace(Duration::from_secs(1))
            .build()
            .expect("build a Signal-mode executor"),
    );
    assert_eq!(ex.child_watch(), ChildWatch::Signal);
    let looper = {
        let ex = std::sync::Arc::clone(&ex);
        std::thread::spawn(move || ex.run())
    };
    // Ignores SIGTERM, so it lives until SIGKILL at the end of the grace.
    let h = ex
        .create_process(&["sh", "-c", "trap '' TERM; exec sleep 30"], true)
        .expect("spawn a SIGTERM-ignoring sleeper");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read(format!("/proc/{}/cmdline", h.pid()))
        .ok()
        .as_deref()
        != Some(b"sleep\x0030\x00")
    {
        assert!(Instant::now() < deadline, "the sleeper never exec'd");
        std::thread::sleep(Duration::from_millis(2));
    }
    let einval = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{what}: {e}");
    };
    einval(h.send_signal(65), "signal 65 before stop()");
    h.send_signal(0).expect("probe before stop()");
    ex.stop();
    einval(h.send_signal(65), "signal 65 after stop()");
    einval(h.send_signal(-1), "signal -1 after stop()");
    // Served by the still-running loop or, once it takes no more messages, sent by the caller.
    for (sig, what) in [
        (0, "probe"),
        (libc::SIGWINCH, "SIGWINCH (ignored by default)"),
    ] {
        h.send_signal(sig)
            .unwrap_or_else(|e| panic!("{what} after stop(), child alive: {e:?}"));
    }
    assert!(
        h.poll().is_none(),
        "the SIGTERM-ignoring child died before its grace"
    );
    looper
        .join()
        .expect("run() thread")
        .expect("run() after stop()");
    let status = h.poll().expect("a status once run() returned");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    einval(h.send_signal(65), "signal 65 after the reap");
    let e = h.send_signal(0).expect_err("probe after the reap");
    assert_eq!(
        e.raw_os_error(),
        Some(libc::ESRCH),
        "probe after the reap: {e}"
    );
}

#[test]
fn replay_one_file() {
    let Ok(spec) = std::env::var("NAPIX_FUZZ_FILE") else {
        return;
    };
    let _g = serial();
    let (target, path) = spec
        .split_once(':')
        .expect("NAPIX_FUZZ_FILE=request:PATH or ops:PATH");
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    match target {
        "request" => eprintln!("{:?}", fuzz_logic::request::run(&bytes)),
        "ops" => {
            eprintln!("{:?}", fuzz_logic::ops::decode(&bytes));
            eprintln!("{:?}", fuzz_logic::ops::run(&bytes));
        }
        other => panic!("unknown target {other:?}"),
    }
}
