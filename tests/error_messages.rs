//! Error messages say why: an empty program name is named as such, a NUL in a program name is
//! printed escaped, a directory outside cgroup v2 says so, and the cgroup errors whose errno
//! alone would puzzle (a child killed as it enters a once-killed cgroup, a kernel without
//! `cgroup.kill`) name the cause and the way out. The kinds stay std's.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{SPAWN_LIMIT, bounded, start};
use napix_executor::{Command, CommandOption, SpawnBackend, SpawnError, SpawnStage};

const GRACE: Duration = Duration::from_millis(200);

fn spawn_err(backend: SpawnBackend, cmd: Command) -> SpawnError {
    let r = start(backend, GRACE);
    let exec = r.arc();
    bounded(SPAWN_LIMIT, "spawn", move || exec.spawn(&cmd)).expect_err("the spawn fails")
}

#[test]
fn an_empty_program_says_empty_program_name() {
    for backend in [
        SpawnBackend::Vfork,
        SpawnBackend::PosixSpawn,
        SpawnBackend::Fork,
    ] {
        let err = spawn_err(backend, Command::new(""));
        let text = err.to_string();
        assert_eq!(text, "empty program name: there is no program to run");
        assert!(!text.starts_with(':'), "{text}");
        // std says NotFound for an empty program too.
        assert_eq!(std::io::Error::from(err).kind(), ErrorKind::NotFound);
    }
}

#[test]
fn a_nul_in_the_program_name_is_printed_escaped() {
    for program in ["ec\0ho", "/bin/ec\0ho"] {
        let err = spawn_err(SpawnBackend::Vfork, Command::new(program));
        assert!(
            matches!(err, SpawnError::NulByte { index: 0, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(!text.contains('\0'), "a raw NUL in {text:?}");
        assert!(text.contains(r#"\0ho""#), "escaped as Debug does: {text:?}");
        assert!(text.contains("contains a NUL byte"), "{text}");
        assert_eq!(std::io::Error::from(err).kind(), ErrorKind::InvalidInput);
    }
    // Other control characters are escaped too; a plain name is printed as given.
    let err = spawn_err(SpawnBackend::Vfork, Command::new("no-such\x1b[31mprogram"));
    let text = err.to_string();
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains(r"\u{1b}"), "{text:?}");
    let err = spawn_err(SpawnBackend::Vfork, Command::new("no-such-program-xyz"));
    assert_eq!(err.to_string(), "no-such-program-xyz: program not found");
}

#[test]
fn a_directory_that_is_not_a_cgroup_says_so() {
    let err = spawn_err(SpawnBackend::Vfork, {
        let mut cmd = Command::new("true");
        cmd.cgroup("/tmp");
        cmd
    });
    let text = err.to_string();
    assert!(text.contains("/tmp"), "{text}");
    assert!(text.contains("not a cgroup v2 directory"), "{text}");
    assert!(!text.contains("Operation not supported"), "{text}");
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::Unsupported);
    // The same for the parent of per-child cgroups.
    let err = spawn_err(SpawnBackend::Vfork, {
        let mut cmd = Command::new("true");
        cmd.cgroup_per_child("/tmp");
        cmd
    });
    assert!(
        err.to_string().contains("not a cgroup v2 directory"),
        "{err}"
    );
}

/// The kernel's answer for a child cloned into a cgroup once emptied through `cgroup.kill` is
/// ECANCELED (see tests/lifetime_cgroup.rs for the real case, where the host has a writable
/// cgroup v2 and such a kernel); the message names the cause and `cgroup_per_child`.
#[test]
fn a_child_killed_entering_its_cgroup_names_cgroup_per_child() {
    let err = SpawnError::OptionFailed {
        program: "sleep".into(),
        option: CommandOption::Cgroup("/sys/fs/cgroup/jobs".into()),
        stage: SpawnStage::Cgroup,
        errno: libc::ECANCELED,
    };
    let text = err.to_string();
    assert!(
        text.starts_with("sleep: cgroup /sys/fs/cgroup/jobs: "),
        "{text}"
    );
    assert!(text.contains("cgroup.kill"), "{text}");
    assert!(text.contains("cgroup_per_child"), "{text}");
    assert!(!text.contains("Operation canceled"), "{text}");
    assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
}

/// `KillScope::Cgroup` on a kernel without `cgroup.kill` (before 5.14) says what is missing.
#[test]
fn a_kernel_without_cgroup_kill_says_so() {
    let err = SpawnError::OptionFailed {
        program: "sleep".into(),
        option: CommandOption::Cgroup("/sys/fs/cgroup/jobs".into()),
        stage: SpawnStage::Prepare,
        errno: libc::ENOSYS,
    };
    let text = err.to_string();
    assert!(text.contains("no cgroup.kill (Linux 5.14+)"), "{text}");
    assert!(text.contains("KillScope::Cgroup"), "{text}");
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::Unsupported);
}

/// A request that timed out waiting for the loop names the fix, as the warning does.
#[test]
fn not_served_names_the_fix() {
    let ex = napix_executor::Executor::builder()
        .request_timeout(Duration::from_millis(300))
        .build()
        .expect("build");
    let err = ex
        .create_process(&["true"], true)
        .expect_err("nobody runs the loop");
    assert!(matches!(err, SpawnError::NotServed { .. }), "{err:?}");
    let text = err.to_string();
    for fix in ["Executor::start()", "Executor::run()", "run_with"] {
        assert!(text.contains(fix), "{text} should name {fix}");
    }
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::TimedOut);
}
