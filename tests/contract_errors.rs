//! Spawn errors: each case is an `Err` from create_process (never a child that
//! exits 127), names the program, keeps its io::ErrorKind, and leaves the
//! executor serving; on every backend.

#[macro_use]
mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use napix_executor::{Executor, SpawnBackend, SpawnError};

const LONG: Duration = Duration::from_secs(10);

/// Files the tests exec. Written and closed once, before any test of this
/// binary starts an executor (every test calls `fixtures()` first), so that no
/// forked child can still hold a write descriptor to them (ETXTBSY).
struct Fixtures {
    no_exec_bit: PathBuf,
    garbage: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        // One directory per test process under cargo's scratch directory;
        // those of processes that are gone are removed.
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contract-errors");
        if let Ok(entries) = fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let pid = name.to_str().and_then(|n| n.parse::<u32>().ok());
                if pid.is_some_and(|pid| !PathBuf::from(format!("/proc/{pid}")).exists()) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(our_pid().to_string());
        fs::create_dir_all(&dir).unwrap();
        let no_exec_bit = dir.join("no-exec-bit");
        fs::write(&no_exec_bit, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&no_exec_bit, fs::Permissions::from_mode(0o644)).unwrap();
        let garbage = dir.join("garbage");
        {
            let mut f = fs::File::create(&garbage).unwrap();
            f.write_all(b"\x00\x01\x02\x03 this is not an executable format\n")
                .unwrap();
            f.sync_all().unwrap();
        }
        fs::set_permissions(&garbage, fs::Permissions::from_mode(0o755)).unwrap();
        Fixtures {
            no_exec_bit,
            garbage,
        }
    })
}

/// Creates the fixtures, then starts an executor.
fn start_exec(b: SpawnBackend) -> Running {
    fixtures();
    start(b, Duration::from_millis(300))
}

/// The executor still spawns after an error.
fn still_serves(exec: &Arc<Executor>) {
    let h = spawn_ok(exec, &["/bin/true"], true);
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
    let h = spawn_ok(exec, &["/bin/echo", "ok"], false);
    let out = read_all(h.take_stdout().unwrap(), LONG);
    assert_eq!(out, b"ok\n");
    assert_eq!(code(wait_for(&h, LONG)), Some(0));
}

/// Spawns `command` expecting an error; describes any process it got.
fn expect_err<S: AsRef<OsStr>>(exec: &Arc<Executor>, command: &[S], discard: bool) -> SpawnError {
    match spawn(exec, command, discard) {
        Err(e) => e,
        Ok(h) => {
            let s = h.wait_timeout(LONG);
            panic!(
                "create_process succeeded (pid {}, status {s:?}); an error was expected",
                h.pid()
            )
        }
    }
}

fn assert_names(e: &SpawnError, program: &OsStr) {
    let shown = e.to_string();
    let program = program.to_string_lossy();
    assert!(
        shown.contains(&*program),
        "Display {shown:?} does not name the program {program:?}"
    );
}

fn kind(e: SpawnError) -> ErrorKind {
    io::Error::from(e).kind()
}

per_backend!(
    empty_command,
    nul_byte_in_program,
    nul_byte_in_argument,
    not_found_relative,
    not_found_absolute,
    not_found_relative_with_slash,
    directory_is_permission_denied,
    file_without_exec_bit_is_permission_denied,
    exec_format_error,
    one_huge_argument_is_e2big,
    too_many_arguments_is_e2big,
    error_is_std_error_and_keeps_source,
    many_errors_in_a_row_then_spawn,
);

fn empty_command(b: SpawnBackend) {
    let r = start_exec(b);
    let none: [&str; 0] = [];
    let e = expect_err(&r.arc(), &none, true);
    assert!(matches!(e, SpawnError::EmptyCommand), "{e:?}");
    assert_eq!(kind(e), ErrorKind::InvalidInput);
    still_serves(&r.arc());
}

fn nul_byte_in_program(b: SpawnBackend) {
    let r = start_exec(b);
    let e = expect_err(&r.arc(), &["/bin/tr\0ue"], true);
    assert!(matches!(e, SpawnError::NulByte { .. }), "{e:?}");
    assert_eq!(kind(e), ErrorKind::InvalidInput);
    still_serves(&r.arc());
}

fn nul_byte_in_argument(b: SpawnBackend) {
    let r = start_exec(b);
    let e = expect_err(&r.arc(), &["/bin/echo", "ok", "a\0b"], false);
    assert!(matches!(e, SpawnError::NulByte { .. }), "{e:?}");
    assert_names(&e, OsStr::new("/bin/echo"));
    assert_eq!(kind(e), ErrorKind::InvalidInput);
    still_serves(&r.arc());
}

fn not_found_relative(b: SpawnBackend) {
    let r = start_exec(b);
    let prog = "napix-no-such-program-0b7f";
    let e = expect_err(&r.arc(), &[prog, "arg"], true);
    assert!(matches!(e, SpawnError::NotFound { .. }), "{e:?}");
    assert_names(&e, OsStr::new(prog));
    assert_eq!(kind(e), ErrorKind::NotFound);
    still_serves(&r.arc());
}

fn not_found_absolute(b: SpawnBackend) {
    let r = start_exec(b);
    for prog in ["/nonexistent-napix/dir/prog", "/bin/napix-no-such-program"] {
        let e = expect_err(&r.arc(), &[prog], false);
        assert!(matches!(e, SpawnError::NotFound { .. }), "{prog}: {e:?}");
        assert_names(&e, OsStr::new(prog));
        assert_eq!(kind(e), ErrorKind::NotFound);
    }
    still_serves(&r.arc());
}

fn not_found_relative_with_slash(b: SpawnBackend) {
    let r = start_exec(b);
    let prog = "./napix-no-such-dir/prog";
    let e = expect_err(&r.arc(), &[prog], true);
    assert!(matches!(e, SpawnError::NotFound { .. }), "{e:?}");
    assert_names(&e, OsStr::new(prog));
    assert_eq!(kind(e), ErrorKind::NotFound);
    still_serves(&r.arc());
}

fn directory_is_permission_denied(b: SpawnBackend) {
    let r = start_exec(b);
    let e = expect_err(&r.arc(), &["/tmp"], true);
    assert!(matches!(e, SpawnError::PermissionDenied { .. }), "{e:?}");
    assert_names(&e, OsStr::new("/tmp"));
    assert_eq!(kind(e), ErrorKind::PermissionDenied);
    still_serves(&r.arc());
}

fn file_without_exec_bit_is_permission_denied(b: SpawnBackend) {
    let r = start_exec(b);
    let prog = fixtures().no_exec_bit.as_os_str();
    let e = expect_err(&r.arc(), &[prog], false);
    assert!(matches!(e, SpawnError::PermissionDenied { .. }), "{e:?}");
    assert_names(&e, prog);
    assert_eq!(kind(e), ErrorKind::PermissionDenied);
    still_serves(&r.arc());
}

fn exec_format_error(b: SpawnBackend) {
    let r = start_exec(b);
    let prog = fixtures().garbage.as_os_str();
    let e = expect_err(&r.arc(), &[prog], true);
    assert!(matches!(e, SpawnError::ExecFormat { .. }), "{e:?}");
    assert_names(&e, prog);
    let io = io::Error::from(e);
    assert!(
        io.to_string().contains(&*prog.to_string_lossy()),
        "io::Error {io} does not name the program"
    );
    still_serves(&r.arc());
}

fn one_huge_argument_is_e2big(b: SpawnBackend) {
    let r = start_exec(b);
    let huge = "x".repeat(4 << 20);
    let e = expect_err(&r.arc(), &["/bin/echo", huge.as_str()], true);
    assert!(matches!(e, SpawnError::ArgumentListTooLong { .. }), "{e:?}");
    assert_names(&e, OsStr::new("/bin/echo"));
    assert_eq!(kind(e), ErrorKind::ArgumentListTooLong);
    still_serves(&r.arc());
}

fn too_many_arguments_is_e2big(b: SpawnBackend) {
    let r = start_exec(b);
    // 400,000 arguments of 20 bytes: 8 MB of strings plus 3 MB of pointers,
    // more than the kernel takes whatever the stack limit.
    let mut command = vec![OsString::from("/bin/true")];
    command.extend((0..400_000).map(|i| OsString::from(format!("{i:020}"))));
    let e = expect_err(&r.arc(), &command, true);
    assert!(matches!(e, SpawnError::ArgumentListTooLong { .. }), "{e:?}");
    assert_names(&e, OsStr::new("/bin/true"));
    assert_eq!(kind(e), ErrorKind::ArgumentListTooLong);
    still_serves(&r.arc());
}

fn error_is_std_error_and_keeps_source(b: SpawnBackend) {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let r = start_exec(b);
    let e = expect_err(&r.arc(), &["napix-no-such-program-1c2d"], true);
    is_error(&e);
    let shown = e.to_string();
    let io = io::Error::from(e);
    assert_eq!(io.kind(), ErrorKind::NotFound);
    assert!(
        io.to_string().contains("napix-no-such-program-1c2d"),
        "io::Error {io} lost the program (SpawnError said {shown:?})"
    );
    still_serves(&r.arc());
}

fn many_errors_in_a_row_then_spawn(b: SpawnBackend) {
    let r = start_exec(b);
    let exec = r.arc();
    let f = fixtures();
    let bad: Vec<Vec<OsString>> = vec![
        vec![],
        vec!["napix-no-such-program-2e3f".into()],
        vec!["/tmp".into()],
        vec![f.no_exec_bit.clone().into()],
        vec![f.garbage.clone().into()],
        vec![OsStr::from_bytes(b"/bin/tr\0ue").to_owned()],
    ];
    for _ in 0..5 {
        for cmd in &bad {
            expect_err(&exec, cmd, true);
            expect_err(&exec, cmd, false);
        }
    }
    // Nothing was left behind: no child, no zombie.
    assert!(r.exec().running().is_empty(), "{:?}", r.exec().running());
    still_serves(&exec);
}
