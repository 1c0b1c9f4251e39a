//! `Command`'s stdin, stdout and stderr (`Stdio`), checked from inside real children and
//! through /proc on every backend and both child-watch modes.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use common::{fd_target, our_pid, read_all, run_command, spawn_command, start, wait_for};
use napix_executor::{Command, SpawnBackend, Stdio};

const GRACE: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(10);

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

fn defaults_stdin_null_and_output_inherited(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let h = spawn_command(&r.arc(), &Arc::new(sh("exec sleep 5"))).expect("spawn");
    let pid = h.pid();
    assert!(common::wait_until(LIMIT, || common::comm(pid).as_deref() == Some("sleep")));
    assert_eq!(fd_target(pid, 0).as_deref(), Some("/dev/null"));
    for fd in [1, 2] {
        assert_eq!(
            fd_target(pid, fd),
            fd_target(our_pid(), fd),
            "fd {fd} inherited"
        );
    }
    // The dynamic loader holds libc open for a moment after the exec.
    let only_stdio = common::wait_until(LIMIT, || common::fds_of(pid) == Some(vec![0, 1, 2]));
    assert!(only_stdio, "fds of the child: {:?}", common::fds_of(pid));
    h.kill();
}

fn piped_stdin_is_written_by_the_parent(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let h = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    assert!(h.take_stderr().is_none(), "stderr was not piped");
    let mut stdin = h.take_stdin().expect("stdin piped");
    assert!(h.take_stdin().is_none(), "taken once");
    let out = h.take_stdout().expect("stdout piped");
    let reader = std::thread::spawn(move || read_all(out, LIMIT));
    stdin.write_all(b"through the pipe\n").expect("write");
    drop(stdin);
    assert_eq!(reader.join().expect("reader"), b"through the pipe\n");
    assert!(wait_for(&h, LIMIT).success());
}

fn stdin_bytes_of_any_size_need_no_writer(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    // Far beyond a pipe's 64 KiB: a pipe would deadlock without a writer thread.
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut cmd = sh("wc -c; cat /proc/self/fdinfo/0 >/dev/null");
    cmd.stdin(Stdio::from_bytes(bytes.clone()))
        .stdout(Stdio::piped());
    let (out, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    assert_eq!(out.trim(), "3000000");
    // And the content is exact.
    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::from_bytes(bytes.clone()))
        .stdout(Stdio::piped());
    let h = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    let got = read_all(h.take_stdout().expect("piped"), LIMIT);
    assert!(got == bytes, "cat gave back {} bytes", got.len());
    wait_for(&h, LIMIT);
    // Empty bytes: end of file at once.
    let mut cmd = Command::new("wc");
    cmd.arg("-c")
        .stdin(Stdio::from_bytes(Vec::new()))
        .stdout(Stdio::piped());
    let (out, _) = run_command(&r.arc(), cmd).expect("spawn");
    assert_eq!(out.trim(), "0");
}

fn output_to_a_file_and_stderr_merged(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let path = std::env::temp_dir().join(format!(
        "napix-stdio-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = std::fs::File::create(&path).expect("create");
    let mut cmd = sh("echo out1; echo err1 >&2; echo out2; echo err2 >&2");
    cmd.stdout(file).stderr(Stdio::merge_stdout());
    let (_, status) = run_command(&r.arc(), cmd).expect("spawn");
    assert!(status.success());
    let text = std::fs::read_to_string(&path).expect("read back");
    let _ = std::fs::remove_file(&path);
    assert_eq!(text, "out1\nerr1\nout2\nerr2\n", "in order, one file");
    // Merged into a pipe.
    let mut cmd = sh("echo a; echo b >&2; echo c");
    cmd.stdout(Stdio::piped()).stderr(Stdio::merge_stdout());
    let (out, _) = run_command(&r.arc(), cmd).expect("spawn");
    assert_eq!(out, "a\nb\nc\n");
    // Merged with an inherited stdout: fd 2 is our fd 1.
    let mut cmd = sh("exec sleep 5");
    cmd.stderr(Stdio::merge_stdout());
    let h = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    let pid = h.pid();
    assert!(common::wait_until(LIMIT, || common::comm(pid).as_deref() == Some("sleep")));
    assert_eq!(fd_target(pid, 2), fd_target(our_pid(), 1));
    h.kill();
}

fn separate_stderr_pipe_and_null(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut cmd = sh("echo to-out; echo to-err >&2");
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let h = spawn_command(&r.arc(), &Arc::new(cmd)).expect("spawn");
    assert!(h.take_stdout().is_none());
    let err = read_all(h.take_stderr().expect("piped"), LIMIT);
    assert_eq!(err, b"to-err\n");
    assert!(wait_for(&h, LIMIT).success());
}

fn chained_children_through_a_pipe(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut first = Command::new("echo");
    first.arg("chained").stdout(Stdio::piped());
    let a = spawn_command(&r.arc(), &Arc::new(first)).expect("spawn");
    let mut second = Command::new("tr");
    second
        .args(["a-z", "A-Z"])
        .stdin(a.take_stdout().expect("piped"))
        .stdout(Stdio::piped());
    let (out, _) = run_command(&r.arc(), second).expect("spawn");
    assert_eq!(out, "CHAINED\n");
    wait_for(&a, LIMIT);
}

fn stdin_from_a_file(backend: SpawnBackend) {
    let r = start(backend, GRACE);
    let mut file = std::fs::File::open("/etc/hostname")
        .or_else(|_| std::fs::File::open("/etc/passwd"))
        .expect("a readable file");
    let mut want = String::new();
    file.read_to_string(&mut want).expect("read");
    let file = std::fs::File::open(if std::path::Path::new("/etc/hostname").exists() {
        "/etc/hostname"
    } else {
        "/etc/passwd"
    })
    .expect("open");
    let mut cmd = Command::new("cat");
    cmd.stdin(file).stdout(Stdio::piped());
    let (out, _) = run_command(&r.arc(), cmd).expect("spawn");
    assert_eq!(out, want);
}

per_backend!(
    defaults_stdin_null_and_output_inherited,
    piped_stdin_is_written_by_the_parent,
    stdin_bytes_of_any_size_need_no_writer,
    output_to_a_file_and_stderr_merged,
    separate_stderr_pipe_and_null,
    chained_children_through_a_pipe,
    stdin_from_a_file,
);
