//! Issue 6, signalfd path: `block_sigchld()` at the top of `main`, before any thread starts (a
//! plain `main`, `harness = false`, because libtest starts threads first). The loop then reads
//! SIGCHLD from a signalfd, every exit is reaped even when many coalesce into one signal, and
//! children still start with an empty signal mask.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{has_signalfd, run_cases, start_with_watch};
use napix_executor::{ChildWatch, SpawnBackend};

fn main() {
    napix_executor::block_sigchld().expect("block_sigchld");
    run_cases(
        SpawnBackend::ALL,
        |backend| format!("signalfd path, {backend:?}"),
        check,
    );
}

fn check(backend: SpawnBackend) -> String {
    let mut r = start_with_watch(backend, ChildWatch::Signal, Duration::from_millis(300));
    let ex = r.exec();
    let h = ex
        .create_process(&["cat", "/proc/self/status"], false)
        .expect("spawn cat");
    assert!(
        has_signalfd(),
        "{backend:?}: the loop should read SIGCHLD from a signalfd"
    );
    let mut status = String::new();
    h.take_stdout()
        .expect("stdout")
        .read_to_string(&mut status)
        .expect("read");
    let code = h.wait_timeout(Duration::from_secs(10)).map(|s| s.code());
    assert_eq!(code, Some(Some(0)), "{backend:?}: cat not reaped");
    let blocked = common::field_of(&status, "SigBlk").expect("SigBlk line");
    assert_eq!(
        blocked, "0000000000000000",
        "{backend:?}: the child inherited a blocked mask"
    );
    let handles: Vec<_> = (0..30)
        .map(|_| ex.create_process(&["/bin/true"], true).expect("spawn true"))
        .collect();
    for h in &handles {
        let code = h.wait_timeout(Duration::from_secs(10)).map(|s| s.code());
        assert_eq!(code, Some(Some(0)), "{backend:?}: /bin/true not reaped");
    }
    let stubborn = ex
        .create_process(&["sleep", "30"], true)
        .expect("spawn sleeper");
    r.stop_and_join(common::RUN_WATCHDOG);
    assert!(stubborn.return_code().is_some());
    "ok".into()
}
