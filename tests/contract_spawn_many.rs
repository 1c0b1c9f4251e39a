//! `Executor::spawn_many`: a batch of commands in one hand-off, on every backend and watch
//! mode, with either spawn site. Results come back in order, each element with the typed error
//! `spawn` would give for that command alone while the others still spawn; a stopped executor
//! refuses every element.

#[macro_use]
mod common;

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::*;
use napix_executor::{Command, SpawnBackend, SpawnError, SpawnSite};

const LONG: Duration = Duration::from_secs(10);
const SITES: [SpawnSite; 2] = [SpawnSite::ExecutorThread, SpawnSite::CallingThread];

per_backend!(
    a_batch_keeps_its_order_and_each_error_is_its_own,
    a_batch_of_sleepers_is_tracked_and_killed,
    a_stopped_executor_refuses_every_element,
);

fn start_at(b: SpawnBackend, site: SpawnSite) -> Running {
    let exec = common::builder(b)
        .spawn_site(site)
        .kill_grace(Duration::from_millis(300))
        .build()
        .expect("build");
    Running::spawn(std::sync::Arc::new(exec))
}

fn exits_with(code: i32) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("exit {code}")]);
    cmd
}

fn a_batch_keeps_its_order_and_each_error_is_its_own(b: SpawnBackend) {
    for site in SITES {
        let r = start_at(b, site);
        let mut bad_dir = Command::new("true");
        bad_dir.current_dir("/nonexistent/dir");
        let batch = vec![
            exits_with(4),
            Command::new("/nonexistent/program"),
            bad_dir,
            // Found, but the exec fails in the child: EACCES.
            Command::new("/etc/passwd"),
            exits_with(5),
        ];
        let exec = r.arc();
        let results = bounded(LONG, "spawn_many", move || exec.spawn_many(&batch));
        assert_eq!(results.len(), 5, "{site:?}");
        let kind = |i: usize| match &results[i] {
            Ok(h) => panic!("{site:?}: element {i} spawned pid {}", h.pid()),
            Err(e) => std::io::Error::from(e.clone()).kind(),
        };
        assert_eq!(kind(1), ErrorKind::NotFound, "{site:?}");
        assert!(
            matches!(results[2], Err(SpawnError::OptionFailed { .. })),
            "{site:?}: {:?}",
            results[2]
        );
        assert_eq!(kind(3), ErrorKind::PermissionDenied, "{site:?}");
        for (i, want) in [(0, 4), (4, 5)] {
            let h = results[i].as_ref().expect("spawned");
            assert_eq!(code(wait_for(h, LONG)), Some(want), "{site:?}: element {i}");
        }
        assert!(bounded(LONG, "an empty batch", {
            let exec = r.arc();
            move || exec.spawn_many(&[]).is_empty()
        }));
    }
}

fn a_batch_of_sleepers_is_tracked_and_killed(b: SpawnBackend) {
    for site in SITES {
        let r = start_at(b, site);
        let batch: Vec<Command> = (0..20)
            .map(|_| {
                let mut sleep = Command::new("sleep");
                sleep.arg("30");
                sleep
            })
            .collect();
        let exec = r.arc();
        let handles: Vec<_> = bounded(LONG, "spawn_many", move || exec.spawn_many(&batch))
            .into_iter()
            .map(|h| h.expect("spawned"))
            .collect();
        let mut pids: Vec<u32> = handles.iter().map(|h| h.pid()).collect();
        let mut running: Vec<u32> = r.exec().running().iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        running.sort_unstable();
        assert_eq!(running, pids, "{site:?}: every child in the trace");
        for h in &handles {
            h.start_kill().expect("start_kill");
        }
        for h in &handles {
            assert_eq!(wait_for(h, LONG).signal(), Some(libc::SIGTERM), "{site:?}");
        }
        assert!(r.exec().running().is_empty(), "{site:?}");
        assert_no_zombie(&pids);
    }
}

fn a_stopped_executor_refuses_every_element(b: SpawnBackend) {
    for site in SITES {
        let mut r = start_at(b, site);
        r.stop_and_join(LONG);
        let results = r
            .exec()
            .spawn_many(&[exits_with(0), Command::new("/nonexistent")]);
        assert_eq!(results.len(), 2);
        for result in results {
            assert!(
                matches!(result, Err(SpawnError::Stopped)),
                "{site:?}: {result:?}"
            );
        }
    }
}
