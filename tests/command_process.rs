//! `Command`'s extra descriptors, umask, resource limits and credentials, checked from inside
//! real children (a shell reporting what it sees) and through /proc, on every backend and both
//! child-watch modes. glibc's `posix_spawn` has no step for the umask, rlimits or credentials:
//! there each gives `UnsupportedOption` naming the backend and the option.

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use common::{fd_target, read_all, run_command, spawn_command, start, wait_for};
use napix_executor::{Command, CommandOption, Resource, SpawnBackend, SpawnError, Stdio};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(10);

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).stdout(Stdio::piped());
    cmd
}

fn has_process_steps(backend: SpawnBackend) -> bool {
    backend != SpawnBackend::PosixSpawn
}

/// Runs `cmd`; on a backend without process steps asserts the typed refusal naming `option`
/// and returns `None`.
fn run_or_unsupported(
    backend: SpawnBackend,
    r: &common::Running,
    cmd: Command,
    option: CommandOption,
) -> Option<String> {
    let result = run_command(&r.arc(), cmd);
    if has_process_steps(backend) {
        let (out, status) = result.expect("spawn");
        assert!(status.success(), "{out}");
        Some(out)
    } else {
        let err = result.expect_err("posix_spawn cannot");
        assert_eq!(
            err,
            SpawnError::UnsupportedOption {
                program: "sh".into(),
                backend: "posix_spawn",
                option,
            }
        );
        assert_eq!(
            std::io::Error::from(err.clone()).kind(),
            std::io::ErrorKind::Unsupported
        );
        assert!(err.to_string().contains("posix_spawn"), "{err}");
        None
    }
}

fn extra_fds_at_chosen_numbers_and_nothing_else(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let (read3, write3) = std::io::pipe().expect("pipe");
    let (read7, write7) = std::io::pipe().expect("pipe");
    let mut cmd = sh("echo three >&3; echo seven >&7; ls /proc/self/fd | sort -n | tr '\\n' ' '");
    cmd.fd(7, OwnedFd::from(write7))
        .fd(3, OwnedFd::from(write3));
    let h = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    // The command (our only copy of the write ends) is dropped: EOF once the child exits.
    let out = read_all(h.take_stdout().expect("piped"), LIMIT);
    assert!(wait_for(&h, LIMIT).success());
    // ls itself opens one descriptor to list the directory: 0 1 2 3 7 plus that one.
    let listed = String::from_utf8_lossy(&out).into_owned();
    let fds: Vec<u32> = listed
        .split_whitespace()
        .map(|n| n.parse().expect("fd number"))
        .collect();
    let ours: Vec<u32> = fds.iter().copied().filter(|&fd| fd != 4).collect();
    assert_eq!(ours, [0, 1, 2, 3, 7], "{listed}");
    assert!(
        fds.len() <= 6,
        "one more at most (ls's own, the lowest free: 4): {listed}"
    );
    assert_eq!(read_all(read3, LIMIT), b"three\n");
    assert_eq!(read_all(read7, LIMIT), b"seven\n");
}

fn extra_fd_seen_from_outside(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let file = std::fs::File::open("/etc/passwd").expect("open");
    let mut cmd = Command::new("sleep");
    cmd.arg("5").fd(5, file);
    let h = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    let pid = h.pid();
    let only = common::wait_until(LIMIT, || common::fds_of(pid) == Some(vec![0, 1, 2, 5]));
    assert!(only, "fds: {:?}", common::fds_of(pid));
    assert_eq!(fd_target(pid, 5).as_deref(), Some("/etc/passwd"));
    h.kill();
}

fn extra_fd_whose_number_holds_executor_fds(backend: SpawnBackend) {
    // Low numbers (3, 4, ...) hold the executor's own descriptors (/dev/null, epoll, pipes):
    // passing extras there must not clobber stdio sources or the exec-error pipe.
    let r = start(backend, GRACE);
    let mut cmd = sh("cat <&3; cat <&4; cat <&5");
    for (n, text) in [(3, "a\n"), (4, "b\n"), (5, "c\n")] {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        std::io::Write::write_all(&mut writer, text.as_bytes()).expect("write");
        drop(writer);
        cmd.fd(n, OwnedFd::from(reader));
    }
    cmd.stdin(Stdio::from_bytes("unused"))
        .stderr(Stdio::merge_stdout());
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    assert_eq!(out, "a\nb\nc\n");
    // And an exec failure is still reported as such with extras present.
    let mut cmd = Command::new("/nonexistent/napix-prog");
    cmd.fd(3, std::fs::File::open("/dev/null").expect("open"));
    let err = run_command(&r.arc(), cmd).expect_err("no such program");
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");
}

/// Extras on every number from 3 to 24 and on 150, so that some land on the executor's own
/// descriptors and (Vfork) on or above its slots: each number holds its own pipe in the child,
/// spawned twice from one command, and no executor descriptor keeps a write end (each reader
/// sees EOF).
fn extra_fds_on_every_low_number(backend: SpawnBackend) {
    use std::os::unix::fs::MetadataExt;
    let r = start(backend, GRACE);
    let numbers = (3..=24).chain([150]);
    let mut readers = Vec::new();
    let mut cmd = sh("for n in $(seq 3 24) 150; do echo \"$n $(readlink /proc/self/fd/$n)\"; done");
    let mut expected = String::new();
    // Given in reverse, so the order given is not the order installed.
    for n in numbers.rev() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let ino = std::fs::File::from(OwnedFd::from(writer.try_clone().expect("dup")))
            .metadata()
            .expect("fstat")
            .ino();
        cmd.fd(n, OwnedFd::from(writer));
        readers.push((n, reader));
        expected = format!("{n} pipe:[{ino}]\n{expected}");
    }
    let cmd = Arc::new(cmd);
    for round in 0..2 {
        let h = spawn_command(&r.arc(), &cmd).expect("spawn");
        let out = read_all(h.take_stdout().expect("piped"), LIMIT);
        assert!(wait_for(&h, LIMIT).success());
        assert_eq!(String::from_utf8_lossy(&out), expected, "round {round}");
    }
    drop(cmd);
    for (n, reader) in readers {
        assert_eq!(read_all(reader, LIMIT), b"", "fd {n}: EOF, no writer left");
    }
}

fn umask_is_the_childs(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = sh("umask");
    cmd.umask(0o027);
    if let Some(out) = run_or_unsupported(backend, &r, cmd, CommandOption::Umask) {
        assert_eq!(out.trim(), "0027");
    }
}

fn rlimits_are_the_childs(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = sh("ulimit -Sn; ulimit -Hn; ulimit -Sc; grep 'Max core' /proc/self/limits");
    cmd.rlimit(Resource::Nofile, 100, 200)
        .rlimit(Resource::Core, 0, 4096);
    let option = CommandOption::Rlimit(Resource::Nofile);
    if let Some(out) = run_or_unsupported(backend, &r, cmd, option) {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..3], ["100", "200", "0"], "{out}");
        let core: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(&core[4..6], ["0", "4096"], "{out}");
    }
}

fn credentials_are_the_childs(backend: SpawnBackend) {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests run as root (they change the child's user)"
    );
    let r = start(backend, GRACE);
    let mut cmd = sh("id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    cmd.groups(&[65534, 4, 7]).gid(65534).uid(65534);
    if let Some(out) = run_or_unsupported(backend, &r, cmd, CommandOption::Uid) {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..3], ["65534", "65534", "65534 4 7"], "{out}");
        assert!(lines.contains(&"Uid:\t65534\t65534\t65534\t65534"), "{out}");
        assert!(lines.contains(&"Groups:\t4 7 65534 "), "{out}");
    }
    // uid alone, from root: supplementary groups dropped, as std does.
    let mut cmd = sh("id -u; id -G");
    cmd.uid(65534);
    if let Some(out) = run_or_unsupported(backend, &r, cmd, CommandOption::Uid) {
        assert_eq!(out, "65534\n0\n", "no supplementary group left");
    }
}

fn stdin_bytes_with_every_option(backend: SpawnBackend) {
    if !has_process_steps(backend) {
        return;
    }
    let r = start(backend, GRACE);
    let dir = std::env::temp_dir();
    let mut cmd = sh("cat; pwd; umask; ulimit -n; id -u; echo \"$K\"; cat <&4");
    cmd.stdin(Stdio::from_bytes("in\n"))
        .stderr(Stdio::merge_stdout())
        .current_dir(&dir)
        .umask(0o077)
        .rlimit(Resource::Nofile, 64, 64)
        .uid(65534)
        .gid(65534)
        .env("K", "v")
        .fd(
            4,
            std::fs::File::open("/etc/hostname")
                .or_else(|_| std::fs::File::open("/dev/null"))
                .expect("open"),
        );
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let want_dir = dir.canonicalize().expect("canonical");
    assert_eq!(lines[0], "in");
    assert_eq!(std::path::Path::new(lines[1]), want_dir);
    assert_eq!(&lines[2..6], ["0077", "64", "65534", "v"], "{out}");
    let mut host = String::new();
    if let Ok(mut f) = std::fs::File::open("/etc/hostname") {
        f.read_to_string(&mut host).expect("read");
    }
    assert_eq!(lines[6..].join("\n").trim(), host.trim());
}

per_backend!(
    extra_fds_at_chosen_numbers_and_nothing_else,
    extra_fd_seen_from_outside,
    extra_fd_whose_number_holds_executor_fds,
    extra_fds_on_every_low_number,
    umask_is_the_childs,
    rlimits_are_the_childs,
    credentials_are_the_childs,
    stdin_bytes_with_every_option,
);
