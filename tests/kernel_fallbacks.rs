//! Older kernels and seccomp sandboxes, simulated with a seccomp filter that makes one syscall
//! fail. The filter is permanent, so each test re-executes this test binary and runs its body in
//! that child process.
//!
//! - no `pidfd_open` (ENOSYS, Linux < 5.3; issue 6): `ChildWatch::Auto` must pick the SIGCHLD
//!   path and the executor must still spawn, wait, kill and stop;
//! - no `close_range` (EPERM, as Docker's default profile answers): every backend must still give
//!   the child fds 0, 1, 2 only (the Vfork backend then clones without CLONE_FILES).

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use napix_executor::{ChildWatch, Executor, SpawnBackend};

const CHILD_ENV: &str = "NAPIX_TEST_NO_PIDFD_CHILD";

/// Makes syscall `nr` fail with `errno` for this thread and the threads it starts from now on.
fn deny(nr: libc::c_long, errno: i32) {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let ld_w_abs = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq_k = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
    // struct seccomp_data { int nr; u32 arch; ... }: nr at offset 0, arch at offset 4.
    let mut program = [
        insn(ld_w_abs, 0, 0, 4),
        insn(jeq_k, 1, 0, AUDIT_ARCH_X86_64),
        insn(ret_k, 0, 0, SECCOMP_RET_ALLOW),
        insn(ld_w_abs, 0, 0, 0),
        insn(jeq_k, 0, 1, nr as u32),
        insn(ret_k, 0, 0, SECCOMP_RET_ERRNO | errno as u32),
        insn(ret_k, 0, 0, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments, then with a pointer to a valid filter program that
    // lives across the call (the kernel copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "install seccomp filter: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn no_pidfd_body() {
    deny(libc::SYS_pidfd_open, libc::ENOSYS);
    // SAFETY: pidfd_open with integer arguments; the filter must answer ENOSYS.
    let probe = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    assert_eq!(probe, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOSYS)
    );

    let err = Executor::builder()
        .child_watch(ChildWatch::Pidfd)
        .build()
        .expect_err("ChildWatch::Pidfd must fail without pidfds");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);

    for backend in SpawnBackend::ALL {
        let ex = Arc::new(
            Executor::builder()
                .backend(backend)
                .kill_grace(Duration::from_millis(300))
                .build()
                .expect("build with ChildWatch::Auto"),
        );
        assert_eq!(ex.child_watch(), ChildWatch::Signal, "{backend:?}");
        let runner = {
            let ex = ex.clone();
            std::thread::spawn(move || ex.run())
        };
        let h = ex
            .create_process(&["sh", "-c", "exit 5"], true)
            .expect("spawn");
        assert_eq!(
            h.wait_timeout(Duration::from_secs(10))
                .and_then(|s| s.code()),
            Some(5)
        );
        let h = ex
            .create_process(
                &["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"],
                true,
            )
            .expect("spawn stubborn");
        std::thread::sleep(Duration::from_millis(200)); // let sh install its trap
        let t = Instant::now();
        let s = h.kill();
        assert_eq!(s.signal(), Some(libc::SIGKILL), "{backend:?}: {s:?}");
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(
            h.send_signal(0).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
        let sleeper = ex
            .create_process(&["sleep", "30"], true)
            .expect("spawn sleeper");
        ex.stop();
        runner.join().expect("run thread").expect("run()");
        assert_eq!(
            sleeper.return_code().and_then(|s| s.signal()),
            Some(libc::SIGTERM)
        );
        assert!(ex.running().is_empty());
    }
}

/// Runs `name`'s body in a fresh copy of this test binary (process-wide state changes stay there).
fn in_own_process(name: &str, body: fn()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .spawn()
        .expect("re-exec the test binary");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} hung in its own process");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "{name} failed in its own process: {status:?}"
    );
}

#[test]
fn auto_picks_the_signal_path_when_pidfd_open_is_enosys() {
    in_own_process(
        "auto_picks_the_signal_path_when_pidfd_open_is_enosys",
        no_pidfd_body,
    );
}

fn no_close_range_body() {
    deny(libc::SYS_close_range, libc::EPERM);
    // An fd without CLOEXEC that the child must not inherit.
    // SAFETY: dup of stdin-or-whatever fd 2; the result is closed at the end.
    let leaked = unsafe { libc::dup(2) };
    assert!(leaked > 2);
    for backend in SpawnBackend::ALL {
        let ex = Arc::new(
            Executor::builder()
                .backend(backend)
                .kill_grace(Duration::from_millis(300))
                .build()
                .expect("build"),
        );
        let runner = {
            let ex = ex.clone();
            std::thread::spawn(move || ex.run())
        };
        for _ in 0..3 {
            let h = ex
                .create_process(&["ls", "/proc/self/fd"], false)
                .expect("spawn ls");
            let mut out = String::new();
            std::io::Read::read_to_string(&mut h.take_stdout().expect("stdout"), &mut out)
                .expect("read");
            assert_eq!(
                h.wait_timeout(Duration::from_secs(10))
                    .and_then(|s| s.code()),
                Some(0)
            );
            // ls lists 0, 1, 2 and the directory fd it opened itself (3).
            let fds: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(fds, ["0", "1", "2", "3"], "{backend:?}: child fds {fds:?}");
        }
        ex.stop();
        runner.join().expect("run thread").expect("run()");
    }
    // SAFETY: closes the fd dup'ed above.
    unsafe { libc::close(leaked) };
}

#[test]
fn only_std_fds_when_close_range_is_denied() {
    in_own_process(
        "only_std_fds_when_close_range_is_denied",
        no_close_range_body,
    );
}
