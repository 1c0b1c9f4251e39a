//! Issue 6, signalfd path: `block_sigchld()` at the top of `main`, before any thread starts (a
//! plain `main`, `harness = false`, because libtest starts threads first). The loop then reads
//! SIGCHLD from a signalfd, every exit is reaped even when many coalesce into one signal, and
//! children still start with an empty signal mask.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use napix_executor::{ChildWatch, Executor, SpawnBackend};

fn main() {
    napix_executor::block_sigchld().expect("block_sigchld");
    for backend in SpawnBackend::ALL {
        let ex = Arc::new(
            Executor::builder()
                .backend(backend)
                .child_watch(ChildWatch::Signal)
                .kill_grace(Duration::from_millis(300))
                .build()
                .expect("build"),
        );
        let runner = {
            let ex = ex.clone();
            std::thread::spawn(move || ex.run())
        };
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
        let blocked = status
            .lines()
            .find(|l| l.starts_with("SigBlk:"))
            .expect("SigBlk line");
        assert_eq!(
            blocked.split_whitespace().nth(1),
            Some("0000000000000000"),
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
        ex.stop();
        runner.join().expect("run thread").expect("run()");
        assert!(stubborn.return_code().is_some());
        println!("signalfd path, {backend:?}: ok");
    }
}

/// Whether this process holds a signalfd (the loop's SIGCHLD source).
fn has_signalfd() -> bool {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|target| target.to_string_lossy().contains("signalfd"))
}
