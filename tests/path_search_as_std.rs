//! The `PATH` search and the order of errors, checked against `std::process::Command` on every
//! backend and child-watch mode (issue 21): a relative `PATH` entry is searched from the
//! command's working directory, a bad working directory (or a NUL anywhere) is reported before
//! the search, and the file handed to `execve` is spelled as glibc's `execvp` spells it, so a
//! script sees the same `$0`.

mod common;

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::Duration;

use common::files::{TempDir, write_script};
use common::{run_command, start};
use napix_executor::{Command, SpawnBackend, Stdio};

const GRACE: Duration = Duration::from_millis(200);

/// What a command gives under std: its stdout, or the error's kind and errno.
fn std_result(
    program: &str,
    path: Option<&OsStr>,
    cwd: &Path,
) -> Result<String, (io::ErrorKind, Option<i32>)> {
    let mut cmd = std::process::Command::new(program);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.current_dir(cwd).stdin(std::process::Stdio::null());
    match cmd.output() {
        Ok(out) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(e) => Err((e.kind(), e.raw_os_error())),
    }
}

fn ours_result(
    r: &common::Running,
    program: &str,
    path: Option<&OsStr>,
    cwd: &Path,
) -> Result<String, (io::ErrorKind, Option<i32>)> {
    let mut cmd = Command::new(program);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.current_dir(cwd).stdout(Stdio::piped());
    match run_command(&r.arc(), cmd) {
        Ok((out, _)) => Ok(out),
        Err(e) => {
            let errno = e.raw_os_error();
            Err((io::Error::from(e).kind(), errno))
        }
    }
}

/// Relative entries from the child's directory, and `$0` as execvp spells it.
fn relative_entries_and_arg0(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let dir = TempDir::new("path-std");
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir bin");
    write_script(&dir.path().join("bin/napix-prog"), "echo \"$0\"");
    write_script(&dir.path().join("napix-prog"), "echo \"here:$0\"");
    for path in [
        "bin",
        "bin/",
        "bin//",
        "",
        ":",
        ".",
        "./",
        "./bin",
        "nowhere:bin",
        "/nonexistent:bin/",
    ] {
        let path = OsStr::new(path);
        let want = std_result("napix-prog", Some(path), dir.path());
        assert!(
            want.is_ok(),
            "std itself failed for PATH={path:?}: {want:?}"
        );
        let got = ours_result(&r, "napix-prog", Some(path), dir.path());
        assert_eq!(got, want, "PATH={path:?} with current_dir");
    }
    // An absolute entry ending in '/': execvp doubles the slash.
    let abs = dir.path().join("bin/").into_os_string();
    let mut abs_slash = abs.clone();
    abs_slash.push("/");
    for path in [abs, abs_slash] {
        let want = std_result("napix-prog", Some(&path), Path::new("/"));
        let got = ours_result(&r, "napix-prog", Some(&path), Path::new("/"));
        assert_eq!(got, want, "PATH={path:?}");
    }
}

/// The working directory's error wins over the program's.
fn directory_errors_before_the_search(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    for (cwd, program) in [
        ("/etc/passwd", "napix-no-such-program"),
        ("/nonexistent/napix", "napix-no-such-program"),
        ("a\0b", "napix-no-such-program"),
        ("/etc/passwd", "sh"),
    ] {
        let want = std_result(program, None, Path::new(cwd));
        assert!(want.is_err(), "std ran {program} in {cwd:?}");
        let got = ours_result(&r, program, None, Path::new(cwd));
        assert_eq!(got, want, "{program} in {cwd:?}");
    }
    // A NUL in the environment also wins over the search.
    let mut cmd = Command::new("napix-no-such-program");
    cmd.env("NAPIX_X", "a\0b");
    let e = run_command(&r.arc(), cmd).expect_err("NUL in a value");
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
}

per_backend!(
    relative_entries_and_arg0,
    directory_errors_before_the_search
);
