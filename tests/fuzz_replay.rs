//! The fuzz targets on the stable toolchain: the checked-in corpus (`fuzz/corpus/{request,ops}`)
//! replayed through the same logic the fuzzer runs (`tests/fuzz_logic`), plus a proptest-driven
//! random run of each target.
//!
//! `NAPIX_FUZZ_CASES` sets the number of random cases (default: 400 requests, 24 op sequences).
//! `NAPIX_WRITE_SEEDS=1` (re)writes the built-in seeds into `fuzz/corpus/`.
//! `NAPIX_FUZZ_FILE=request:PATH` (or `ops:PATH`) replays one input, e.g. a crash artifact of
//! the fuzzer, on the stable toolchain: `cargo test --test fuzz_replay replay_one_file`.

mod fuzz_logic;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

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

fn random_cases(default: u32) -> u32 {
    std::env::var("NAPIX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    let mut runner = TestRunner::new(Config {
        cases: random_cases(400),
        failure_persistence: None,
        ..Config::default()
    });
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
    let mut runner = TestRunner::new(Config {
        cases: random_cases(24),
        failure_persistence: None,
        // A failing sequence is already short; shrinking it spawns a lot of processes.
        max_shrink_iters: 32,
        ..Config::default()
    });
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
