//! Fault: a child that dumps core.
//!
//! The child raises its own RLIMIT_CORE (`ulimit -c unlimited`; this process's soft limit is
//! often 0), moves to a scratch directory and kills itself with SIGSEGV or SIGABRT. Expected on
//! every backend and both child-watch modes: the status says signal 11 / 6 and
//! `core_dumped()`, exactly when the kernel wrote a dump. With `core_pattern` a plain file name
//! (here: `core`) the dump lands in the scratch directory, so the test also checks the file; with
//! a piped pattern (`|/usr/lib/systemd/...`, apport) the bit depends on the helper and is only
//! printed. With `ulimit -c 0` there is no dump and the bit must be clear.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use common::{RUN_WATCHDOG, spawn_ok, start_with_watch, wait_for};
use napix_executor::{ChildWatch, SpawnBackend};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(20);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("napix-core-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn files(&self) -> Vec<String> {
        fs::read_dir(&self.0)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn core_limit_can_be_raised() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
    lim.rlim_max == libc::RLIM_INFINITY
}

fn check(backend: SpawnBackend, watch: ChildWatch, pattern: &str) {
    let what = format!("{} {watch:?}", backend.name());
    let mut r = start_with_watch(backend, watch, GRACE);
    let plain_pattern = !pattern.starts_with('|') && !pattern.contains('/');
    let can_dump = core_limit_can_be_raised();

    for (sig, name) in [(libc::SIGSEGV, "SEGV"), (libc::SIGABRT, "ABRT")] {
        let scratch = Scratch::new(&format!("{}-{watch:?}-{name}", backend.name()));
        let script = format!(
            "cd '{}' && ulimit -c unlimited && kill -{name} $$",
            scratch.0.display()
        );
        let h = spawn_ok(&r.arc(), &["sh", "-c", &script], true);
        let status = wait_for(&h, LIMIT);
        let files = scratch.files();
        eprintln!(
            "{what} {name}: {status:?} signal={:?} core_dumped={} files={files:?}",
            status.signal(),
            status.core_dumped()
        );
        if !can_dump {
            // `ulimit -c unlimited` fails, the shell exits 2 without killing itself.
            assert_eq!(status.code(), Some(2), "{what}: {status:?}");
            continue;
        }
        assert_eq!(status.signal(), Some(sig), "{what}: {status:?}");
        assert!(!h.status_lost());
        if plain_pattern {
            let dumped = !files.is_empty();
            assert!(dumped, "{what}: no core file with core_pattern {pattern:?}");
            assert!(
                status.core_dumped(),
                "{what}: a core file was written but core_dumped() is false"
            );
        }
    }

    // No dump allowed: the bit is clear.
    let scratch = Scratch::new(&format!("{}-{watch:?}-nodump", backend.name()));
    let script = format!(
        "cd '{}' && ulimit -c 0 && kill -SEGV $$",
        scratch.0.display()
    );
    let h = spawn_ok(&r.arc(), &["sh", "-c", &script], true);
    let status = wait_for(&h, LIMIT);
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{what}: {status:?}");
    assert!(
        !status.core_dumped(),
        "{what}: core_dumped() without a dump"
    );
    assert!(scratch.files().is_empty());
    r.stop_and_join(GRACE + RUN_WATCHDOG);
}

#[test]
fn core_dump_is_reported() {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap_or_default()
        .trim()
        .to_string();
    eprintln!(
        "core_pattern = {pattern:?}, RLIMIT_CORE hard unlimited: {}",
        core_limit_can_be_raised()
    );
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            check(backend, watch, &pattern);
        }
    }
}
