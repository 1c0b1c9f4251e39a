//! std's names with std's meaning: `ExecHandle::id` and `try_wait`, and `Executor::status`,
//! which inherits the three streams as `std::process::Command::status` does (where `spawn`
//! gives stdin `/dev/null`).
//!
//! The stream test runs in a copy of this test binary whose stdin is a pipe the parent writes
//! to and whose stdout the parent reads, so that what "inherited" means is checked, not assumed.

mod common;

use std::io::Write;
use std::time::Duration;

use napix_executor::{Command, Executor, Stdio};

/// Set in the copy of this binary that runs `Executor::status` on inherited streams.
const CHILD_ENV: &str = "NAPIX_STD_NAMES_CHILD";

#[test]
fn id_is_pid_and_try_wait_follows_the_reap() {
    let ex = Executor::start().expect("start");
    let child = ex.create_process(&["sleep", "30"], true).expect("spawn");
    assert_eq!(child.id(), child.pid());
    assert_eq!(child.try_wait().expect("try_wait"), None);
    child.start_kill().expect("start_kill");
    let status = common::wait_for(&child, Duration::from_secs(30));
    assert_eq!(child.try_wait().expect("try_wait"), Some(status));
    assert_eq!(child.try_wait().expect("try_wait"), child.return_code());
    assert_eq!(child.id(), child.pid(), "the number stays after the reap");
}

/// The copy's side: `status` on a command that reads a line from the inherited stdin and
/// writes to the inherited stdout and stderr; then the same command through `spawn`, whose
/// stdin is `/dev/null`.
#[test]
fn child_case() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let ex = Executor::start().expect("start");
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "read line; echo \"stdout got $line\"; echo \"stderr got $line\" >&2; [ \"$line\" = hello ]",
    ]);
    let status = ex.status(&cmd).expect("status");
    println!("STATUS {:?}", status.code());
    let spawned = ex
        .spawn(cmd.stdout(Stdio::null()).stderr(Stdio::null()))
        .expect("spawn");
    println!(
        "SPAWN {:?}",
        common::wait_for(&spawned, Duration::from_secs(30)).code()
    );
}

#[test]
fn status_inherits_stdin_stdout_and_stderr_as_std() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let mut copy = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the copy");
    let mut stdin = copy.stdin.take().expect("piped");
    stdin.write_all(b"hello\n").expect("write");
    drop(stdin);
    let out = common::bounded(Duration::from_secs(60), "the copy", move || {
        copy.wait_with_output()
    })
    .expect("the copy's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stdout got hello"), "{stdout}");
    assert!(stderr.contains("stderr got hello"), "{stderr}");
    assert!(stdout.contains("STATUS Some(0)"), "{stdout}");
    // spawn's stdin is /dev/null: the read finds nothing (the line went to `status`'s child
    // anyway), and the test fails.
    assert!(stdout.contains("SPAWN Some(1)"), "{stdout}");
}
