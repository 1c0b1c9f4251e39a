//! Every bad `Command` option gives a typed `SpawnError` naming the option and the stage,
//! mapped to the matching `io::ErrorKind`, and the executor keeps serving; on every backend
//! and both child-watch modes.
//!
//! A uid change without the right needs an unprivileged parent: the test runs this test binary
//! again as user 65534 (through `Command::uid`), and that copy checks the child's `setuid` and
//! `setrlimit` failures from there.

mod common;

use std::io::ErrorKind;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{run_command, start};
use napix_executor::{
    Command, CommandOption, Resource, SpawnBackend, SpawnError, SpawnStage, Stdio,
};

const GRACE: Duration = Duration::from_millis(200);

/// Set in the environment of the copy of this binary that runs as user 65534.
const HELPER_ENV: &str = "NAPIX_UNPRIVILEGED_HELPER";

fn invalid(program: &str, option: CommandOption, reason: &'static str) -> SpawnError {
    SpawnError::InvalidOption {
        program: program.into(),
        option,
        reason,
    }
}

/// Asserts `err` is `expected`, keeps its kind through `io::Error`, and names the option.
fn check(err: SpawnError, expected: SpawnError, kind: ErrorKind, names: &str) {
    assert_eq!(err, expected);
    assert_eq!(std::io::Error::from(err.clone()).kind(), kind, "{err}");
    assert!(err.to_string().contains(names), "{err} should name {names}");
}

fn still_serving(r: &common::Running) {
    let mut cmd = Command::new("echo");
    cmd.arg("served").stdout(Stdio::piped());
    let (out, _) = run_command(&r.arc(), cmd).expect("the executor keeps serving");
    assert_eq!(out, "served\n");
}

fn env_keys_and_values(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    for (key, value, reason) in [
        ("", "v", "the key is empty"),
        ("K=V", "v", "the key contains '='"),
        ("K\0", "v", "the key contains a NUL byte"),
        ("K", "a\0b", "the value contains a NUL byte"),
    ] {
        let mut cmd = Command::new("/bin/true");
        cmd.env(key, value);
        let err = run_command(&r.arc(), cmd).expect_err("bad env");
        let expected = invalid("/bin/true", CommandOption::Env(key.into()), reason);
        check(err, expected, ErrorKind::InvalidInput, reason);
    }
    let mut cmd = Command::new("/bin/true");
    cmd.env_remove("A=B");
    let err = run_command(&r.arc(), cmd).expect_err("bad key to remove");
    assert!(matches!(
        err,
        SpawnError::InvalidOption {
            option: CommandOption::Env(_),
            ..
        }
    ));
    still_serving(&r);
}

fn extra_fd_numbers(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let null = || std::fs::File::open("/dev/null").expect("open");
    let mut cmd = Command::new("/bin/true");
    cmd.fd(2, null());
    let err = run_command(&r.arc(), cmd).expect_err("below 3");
    let reason = "extra descriptors start at 3 (0-2 are stdin, stdout, stderr)";
    check(
        err,
        invalid("/bin/true", CommandOption::Fd(2), reason),
        ErrorKind::InvalidInput,
        "fd 2",
    );
    let mut cmd = Command::new("/bin/true");
    cmd.fd(4, null()).fd(3, null()).fd(4, null());
    let err = run_command(&r.arc(), cmd).expect_err("twice");
    let reason = "the number is given twice";
    check(
        err,
        invalid("/bin/true", CommandOption::Fd(4), reason),
        ErrorKind::InvalidInput,
        "fd 4",
    );
    let mut cmd = Command::new("/bin/true");
    cmd.fd(-1, null());
    assert!(run_command(&r.arc(), cmd).is_err(), "negative");
    still_serving(&r);
}

/// An `OwnedFd` whose number was closed behind its back (forgotten afterwards: dropping it
/// would close a number someone else may own by then).
fn closed_fd() -> OwnedFd {
    let raw = std::fs::File::open("/dev/null")
        .expect("open")
        .into_raw_fd();
    // SAFETY: closes the descriptor we just took out of its File; nothing else owns it.
    unsafe { libc::close(raw) };
    // Move it well above anything this process uses, so no other test's descriptor takes it.
    let high = 900 + raw % 50;
    // SAFETY: wraps a number that is not open (deliberately invalid for the test); the caller
    // forgets it instead of dropping it.
    unsafe { OwnedFd::from_raw_fd(high) }
}

fn closed_descriptors(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = Command::new("/bin/true");
    cmd.fd(3, closed_fd());
    let cmd = std::sync::Arc::new(cmd);
    let err = common::spawn_command(&r.arc(), &cmd).expect_err("closed extra");
    // The command holds the invalid OwnedFd: forget it rather than close a stranger's fd.
    std::mem::forget(cmd);
    let expected = SpawnError::OptionFailed {
        program: "/bin/true".into(),
        option: CommandOption::Fd(3),
        stage: SpawnStage::Prepare,
        errno: libc::EBADF,
    };
    let kind = std::io::Error::from_raw_os_error(libc::EBADF).kind();
    check(err, expected, kind, "fd 3");
    let mut cmd = Command::new("/bin/true");
    cmd.stdout(closed_fd());
    let cmd = std::sync::Arc::new(cmd);
    let err = common::spawn_command(&r.arc(), &cmd).expect_err("closed stdout");
    std::mem::forget(cmd);
    assert!(
        matches!(
            err,
            SpawnError::OptionFailed {
                option: CommandOption::Stdout,
                stage: SpawnStage::Prepare,
                errno: libc::EBADF,
                ..
            }
        ),
        "{err:?}"
    );
    still_serving(&r);
}

fn stdio_kinds(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = Command::new("/bin/true");
    cmd.stdout(Stdio::from_bytes("x"));
    let err = run_command(&r.arc(), cmd).expect_err("bytes as stdout");
    let reason = "Stdio::from_bytes is for stdin only";
    check(
        err,
        invalid("/bin/true", CommandOption::Stdout, reason),
        ErrorKind::InvalidInput,
        "stdout",
    );
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(Stdio::merge_stdout());
    let err = run_command(&r.arc(), cmd).expect_err("merge as stdin");
    let reason = "Stdio::merge_stdout is for stderr only";
    check(
        err,
        invalid("/bin/true", CommandOption::Stdin, reason),
        ErrorKind::InvalidInput,
        "stdin",
    );
}

fn rlimit_soft_above_hard_and_umask_bits(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = Command::new("/bin/true");
    cmd.rlimit(Resource::Nofile, 20, 10);
    let err = run_command(&r.arc(), cmd).expect_err("soft > hard");
    let reason = "the soft limit exceeds the hard limit";
    let expected = invalid("/bin/true", CommandOption::Rlimit(Resource::Nofile), reason);
    check(err, expected, ErrorKind::InvalidInput, "RLIMIT_NOFILE");
    let mut cmd = Command::new("/bin/true");
    cmd.umask(0o1777);
    let err = run_command(&r.arc(), cmd).expect_err("umask bits");
    check(
        err,
        invalid("/bin/true", CommandOption::Umask, "bits beyond 0o777"),
        ErrorKind::InvalidInput,
        "umask",
    );
    still_serving(&r);
}

fn chdir_as_the_new_user_fails_in_the_child(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let dir = std::env::temp_dir().join(format!(
        "napix-private-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut cmd = Command::new("/bin/true");
    cmd.current_dir(&dir).uid(65534).gid(65534);
    let result = run_command(&r.arc(), cmd);
    let _ = std::fs::remove_dir(&dir);
    let err = result.expect_err("65534 may not enter a 0700 root directory");
    if backend == SpawnBackend::PosixSpawn {
        assert!(matches!(
            err,
            SpawnError::UnsupportedOption {
                option: CommandOption::Uid,
                ..
            }
        ));
        return;
    }
    let expected = SpawnError::OptionFailed {
        program: "/bin/true".into(),
        option: CommandOption::CurrentDir,
        stage: SpawnStage::Chdir,
        errno: libc::EACCES,
    };
    check(
        err,
        expected,
        ErrorKind::PermissionDenied,
        "chdir in the child",
    );
    still_serving(&r);
}

fn uid_change_without_the_right(backend: SpawnBackend) {
    if std::env::var_os(HELPER_ENV).is_some() {
        return unprivileged_side(backend);
    }
    let r = start(backend, GRACE);
    let name = std::thread::current()
        .name()
        .expect("libtest names the thread after the test")
        .to_owned();
    let exe = std::env::current_exe().expect("test binary");
    // A directory 65534 may look at (stat) but not enter (chdir): the helper's chdir case.
    let dir = private_dir();
    let mut cmd = Command::new(&exe);
    cmd.args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, "1")
        .env(PRIVATE_DIR_ENV, &dir.0)
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .stderr(Stdio::merge_stdout());
    let result = if backend == SpawnBackend::PosixSpawn {
        let mut as_nobody = Command::new("/bin/true");
        as_nobody.uid(65534);
        let err = run_command(&r.arc(), as_nobody).expect_err("no uid step");
        assert!(matches!(
            err,
            SpawnError::UnsupportedOption {
                option: CommandOption::Uid,
                ..
            }
        ));
        // posix_spawn cannot start the helper as 65534; a Fork executor does, and the helper
        // then checks posix_spawn from there.
        let launcher = start(SpawnBackend::Fork, GRACE);
        run_command(&launcher.arc(), cmd)
    } else {
        run_command(&r.arc(), cmd)
    };
    let (out, status) = result.expect("run the helper as 65534");
    assert!(status.success(), "helper failed:\n{out}");
    assert!(
        out.contains("unprivileged side checked"),
        "helper output:\n{out}"
    );
}

/// The environment variable that names [`private_dir`] to the helper.
const PRIVATE_DIR_ENV: &str = "NAPIX_PRIVATE_DIR";

/// A root-owned 0700 directory, removed on drop.
struct PrivateDir(std::path::PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn private_dir() -> PrivateDir {
    let dir = std::env::temp_dir().join(format!(
        "napix-private-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    PrivateDir(dir)
}

/// Runs as user 65534: a `setuid(0)` and a raised hard limit both fail in the child with EPERM,
/// and on every backend a working directory it may not enter fails at the child's `chdir`
/// (posix_spawn: mapped from glibc's single errno), not at the exec.
fn unprivileged_side(backend: SpawnBackend) {
    assert_eq!(
        rustix::process::getuid().as_raw(),
        65534,
        "helper runs unprivileged"
    );
    let r = start(backend, GRACE);
    let dir = std::env::var_os(PRIVATE_DIR_ENV).expect("the parent names the directory");
    let mut cmd = Command::new("/bin/true");
    cmd.current_dir(&dir);
    let err = run_command(&r.arc(), cmd).expect_err("65534 may not enter a 0700 root directory");
    let expected = SpawnError::OptionFailed {
        program: "/bin/true".into(),
        option: CommandOption::CurrentDir,
        stage: SpawnStage::Chdir,
        errno: libc::EACCES,
    };
    check(
        err,
        expected,
        ErrorKind::PermissionDenied,
        "chdir in the child",
    );
    // The same directory with a missing program: the chdir still fails first.
    let mut cmd = Command::new("/nonexistent/napix-program");
    cmd.current_dir(&dir);
    let err = run_command(&r.arc(), cmd).expect_err("chdir fails before the exec");
    assert!(
        matches!(
            err,
            SpawnError::OptionFailed {
                option: CommandOption::CurrentDir,
                stage: SpawnStage::Chdir,
                ..
            }
        ),
        "{err:?}"
    );
    // A missing program in an enterable directory is still the exec's.
    let mut cmd = Command::new("/nonexistent/napix-program");
    cmd.current_dir("/");
    let err = run_command(&r.arc(), cmd).expect_err("no such program");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert!(
        !matches!(err, SpawnError::OptionFailed { .. }),
        "the exec's, not an option's: {err:?}"
    );
    if backend == SpawnBackend::PosixSpawn {
        still_serving(&r);
        println!("unprivileged side checked");
        return;
    }
    let mut cmd = Command::new("/bin/true");
    cmd.uid(0);
    let err = run_command(&r.arc(), cmd).expect_err("setuid(0) as 65534");
    let expected = SpawnError::OptionFailed {
        program: "/bin/true".into(),
        option: CommandOption::Uid,
        stage: SpawnStage::Setuid,
        errno: libc::EPERM,
    };
    check(
        err,
        expected,
        ErrorKind::PermissionDenied,
        "setuid in the child",
    );
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX - 1);
    let mut cmd = Command::new("/bin/true");
    cmd.rlimit(Resource::Core, 0, 0)
        .rlimit(Resource::Nofile, hard + 1, hard + 1);
    let err = run_command(&r.arc(), cmd).expect_err("raise a hard limit as 65534");
    let expected = SpawnError::OptionFailed {
        program: "/bin/true".into(),
        option: CommandOption::Rlimit(Resource::Nofile),
        stage: SpawnStage::Setrlimit,
        errno: libc::EPERM,
    };
    check(err, expected, ErrorKind::PermissionDenied, "RLIMIT_NOFILE");
    let mut cmd = Command::new("/bin/true");
    cmd.groups(&[0]);
    let err = run_command(&r.arc(), cmd).expect_err("setgroups as 65534");
    assert!(
        matches!(
            err,
            SpawnError::OptionFailed {
                option: CommandOption::Groups,
                stage: SpawnStage::Setgroups,
                errno: libc::EPERM,
                ..
            }
        ),
        "{err:?}"
    );
    still_serving(&r);
    println!("unprivileged side checked");
}

per_backend!(
    env_keys_and_values,
    extra_fd_numbers,
    closed_descriptors,
    stdio_kinds,
    rlimit_soft_above_hard_and_umask_bits,
    chdir_as_the_new_user_fails_in_the_child,
    uid_change_without_the_right,
);
