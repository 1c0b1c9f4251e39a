//! `Command`'s program, arguments, environment and working directory, checked from inside real
//! children on every backend and both child-watch modes.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use common::files::TempDir;
use common::{run_command, start};
use napix_executor::{Command, CommandOption, SpawnBackend, SpawnError, SpawnStage, Stdio};

const GRACE: Duration = Duration::from_millis(200);

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).stdout(Stdio::piped());
    cmd
}

fn args_and_arg0(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = sh("tr '\\0' ' ' < /proc/$$/cmdline");
    cmd.arg0("custom-zero").arg("one two").args(["three"]);
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    assert_eq!(
        out,
        "custom-zero -c tr '\\0' ' ' < /proc/$$/cmdline one two three "
    );
}

fn env_set_remove_and_inherit(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    // The parent's environment has PATH and HOME (or at least PATH); remove PATH-like HOME.
    let mut cmd = sh("env");
    cmd.env("NAPIX_A", "1")
        .envs([("NAPIX_B", "two words"), ("NAPIX_C", "x=y")])
        .env_remove("HOME")
        .env("NAPIX_GONE", "set first")
        .env_remove("NAPIX_GONE");
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    let lines: Vec<&str> = out.lines().collect();
    for want in ["NAPIX_A=1", "NAPIX_B=two words", "NAPIX_C=x=y"] {
        assert!(lines.contains(&want), "{want} missing from {lines:?}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("HOME=")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("NAPIX_GONE=")),
        "{lines:?}"
    );
    let path = std::env::var("PATH").expect("tests run with a PATH");
    assert!(
        lines.contains(&format!("PATH={path}").as_str()),
        "inherited PATH"
    );
}

fn env_clear_gives_exactly_what_is_set(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = Command::new("/usr/bin/env");
    cmd.env("DROPPED", "x")
        .env_clear()
        .env("ONLY", "this")
        .stdout(Stdio::piped());
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    assert_eq!(out, "ONLY=this\n");
}

fn path_search_uses_the_childs_path(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let dir = TempDir::new("cmd-path");
    let name = "napix-echo-only-here";
    std::os::unix::fs::symlink("/bin/echo", dir.0.join(name)).expect("symlink");
    let mut cmd = Command::new(name);
    cmd.arg("found").env("PATH", &dir.0).stdout(Stdio::piped());
    let (out, status) = run_command(&r.arc(), cmd).expect("found in the child's PATH");
    assert!(status.success());
    assert_eq!(out, "found\n");
    // Not in the parent's PATH.
    let mut cmd = Command::new(name);
    cmd.stdout(Stdio::piped());
    let err = run_command(&r.arc(), cmd).expect_err("not in our PATH");
    assert_eq!(
        err,
        SpawnError::NotFound {
            program: name.into()
        }
    );
    // env_clear without PATH: the default search path still finds sh.
    let mut cmd = sh("echo $#");
    cmd.env_clear();
    let (out, _) = run_command(&r.arc(), cmd).expect("default PATH");
    assert_eq!(out, "0\n");
}

fn current_dir_is_the_childs(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let dir = TempDir::new("cmd-cwd");
    let mut cmd = sh("pwd -P");
    cmd.current_dir(&dir.0);
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    assert_eq!(Path::new(out.trim_end()), dir.0);
    // A relative program path is relative to the child's directory, as in std.
    std::os::unix::fs::symlink("/bin/echo", dir.0.join("here-echo")).expect("symlink");
    let mut cmd = Command::new("./here-echo");
    cmd.arg("relative")
        .current_dir(&dir.0)
        .stdout(Stdio::piped());
    let (out, _) = run_command(&r.arc(), cmd).expect("relative to the cwd");
    assert_eq!(out, "relative\n");
    // A relative PATH entry is searched from the child's directory (it has none here).
    let mut cmd = Command::new("echo");
    cmd.arg("via-dot")
        .env("PATH", "relative-nowhere:/bin")
        .current_dir(&dir.0)
        .stdout(Stdio::piped());
    let (out, _) = run_command(&r.arc(), cmd).expect("found in /bin");
    assert_eq!(out, "via-dot\n");
}

fn missing_current_dir_fails_before_spawning(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = Command::new("/bin/true");
    cmd.current_dir("/nonexistent/napix-dir");
    let err = run_command(&r.arc(), cmd).expect_err("no such dir");
    assert_eq!(
        err,
        SpawnError::OptionFailed {
            program: "/bin/true".into(),
            option: CommandOption::CurrentDir,
            stage: SpawnStage::Prepare,
            errno: libc::ENOENT,
        }
    );
    assert_eq!(
        std::io::Error::from(err.clone()).kind(),
        std::io::ErrorKind::NotFound
    );
    assert!(err.to_string().contains("current_dir"), "{err}");
    let mut cmd = Command::new("/bin/true");
    cmd.current_dir("/etc/passwd");
    let err = run_command(&r.arc(), cmd).expect_err("not a dir");
    assert!(matches!(
        err,
        SpawnError::OptionFailed {
            errno: libc::ENOTDIR,
            stage: SpawnStage::Prepare,
            ..
        }
    ));
    // The executor keeps serving.
    let (out, _) = run_command(&r.arc(), sh("echo still")).expect("spawn");
    assert_eq!(out, "still\n");
}

fn one_command_spawned_many_times(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = sh("echo \"$N\"; cat");
    cmd.env("N", "n").stdin(Stdio::from_bytes("bytes\n"));
    let cmd = std::sync::Arc::new(cmd);
    for _ in 0..3 {
        let h = common::spawn_command(&r.arc(), &cmd).expect("spawn");
        let out = common::read_all(h.take_stdout().expect("piped"), Duration::from_secs(10));
        assert_eq!(OsStr::from_bytes(&out), "n\nbytes\n");
        assert!(common::wait_for(&h, Duration::from_secs(10)).success());
    }
}

per_backend!(
    args_and_arg0,
    env_set_remove_and_inherit,
    env_clear_gives_exactly_what_is_set,
    path_search_uses_the_childs_path,
    current_dir_is_the_childs,
    missing_current_dir_fails_before_spawning,
    one_command_spawned_many_times,
);
