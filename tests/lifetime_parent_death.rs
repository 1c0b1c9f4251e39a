//! Children die with the parent: a helper process (this test binary, re-executed) runs an
//! executor and a child spawned with `parent_death_signal(SIGKILL)`; the helper is SIGKILLed from
//! outside and the child must be gone soon after. Fork and Vfork in both child-watch modes;
//! PosixSpawn has no such step and says so with a typed error.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use napix_executor::{ChildWatch, Command, Executor, SpawnBackend};

const HELPER: &str = "NAPIX_PARENT_DEATH_HELPER";

/// Runs only inside the helper process: an executor whose loop runs on the main test thread's
/// helper thread, one child, its pid on stdout, then waits to be killed.
#[test]
fn helper_runs_an_executor_and_a_child() {
    let Ok(spec) = std::env::var(HELPER) else {
        return;
    };
    let (backend, watch) = spec.split_once(',').expect("backend,watch");
    let backend = SpawnBackend::ALL
        .into_iter()
        .find(|b| b.name() == backend)
        .expect("a backend name");
    let watch = if watch == "signal" {
        ChildWatch::Signal
    } else {
        ChildWatch::Pidfd
    };
    let exec = Arc::new(
        Executor::builder()
            .backend(backend)
            .child_watch(watch)
            .build()
            .expect("build"),
    );
    let runner = {
        let exec = exec.clone();
        std::thread::spawn(move || exec.run())
    };
    let child = exec
        .spawn(
            Command::new("sleep")
                .arg("100")
                .parent_death_signal(libc::SIGKILL),
        )
        .expect("spawn with a parent-death signal");
    println!("child {}", child.pid());
    std::thread::sleep(Duration::from_secs(60));
    exec.stop();
    let _ = runner.join();
}

fn alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

fn parent_death_kills_the_child(backend: SpawnBackend, watch: &str) {
    let mut helper = StdCommand::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "helper_runs_an_executor_and_a_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER, format!("{},{watch}", backend.name()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the helper");
    let stdout = helper.stdout.take().expect("stdout");
    let child: u32 = bounded(
        Duration::from_secs(20),
        "the helper's child pid",
        move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|l| {
                    // libtest prints "test <name> ... " on the same line first.
                    let at = l.rfind("child ")?;
                    l[at + 6..].trim().parse().ok()
                })
                .expect("the helper printed its child's pid")
        },
    );
    assert!(alive(child));
    helper.kill().expect("SIGKILL the helper");
    let t = Instant::now();
    helper.wait().expect("reap the helper");
    let gone = wait_until(Duration::from_secs(2), || !alive(child));
    let took = t.elapsed();
    eprintln!(
        "{} {watch}: child gone {took:?} after its parent's SIGKILL",
        backend.name()
    );
    assert!(gone, "the child outlived its parent");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn parent_death_kills_the_child_on_every_backend_that_can() {
    for backend in [SpawnBackend::Fork, SpawnBackend::Vfork] {
        for watch in ["pidfd", "signal"] {
            parent_death_kills_the_child(backend, watch);
        }
    }
}

#[test]
fn posix_spawn_has_no_parent_death_signal_and_says_so() {
    let r = start_with_watch(
        SpawnBackend::PosixSpawn,
        ChildWatch::Auto,
        Duration::from_secs(1),
    );
    let exec = r.arc();
    let err = bounded(SPAWN_LIMIT, "spawn", move || {
        exec.spawn(Command::new("true").parent_death_signal(libc::SIGKILL))
    })
    .expect_err("posix_spawn cannot set a parent-death signal");
    let text = err.to_string();
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::Unsupported
    );
    assert!(
        text.contains("posix_spawn") && text.contains("parent_death_signal"),
        "{text}"
    );
}

#[test]
fn a_bad_parent_death_signal_is_refused_before_spawning() {
    let r = start(SpawnBackend::Vfork, Duration::from_secs(1));
    let exec = r.arc();
    let err = bounded(SPAWN_LIMIT, "spawn", move || {
        exec.spawn(Command::new("true").parent_death_signal(0))
    })
    .expect_err("signal 0 is no signal");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidInput
    );
}
