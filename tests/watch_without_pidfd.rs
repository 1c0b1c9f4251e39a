//! Issue 6: on a kernel without pidfds, `ChildWatch::Auto` must pick the SIGCHLD path and the
//! executor must still spawn, wait, kill and stop.
//!
//! A kernel without pidfd_open is simulated with a seccomp filter that answers ENOSYS to it. The
//! filter is process-wide and permanent, so the test re-executes this test binary and runs the
//! body in that child process.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use napix_executor::{ChildWatch, Executor, SpawnBackend};

const CHILD_ENV: &str = "NAPIX_TEST_NO_PIDFD_CHILD";

/// Makes `pidfd_open` fail with ENOSYS for this thread and the threads it starts from now on.
fn deny_pidfd_open() {
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
        insn(jeq_k, 0, 1, libc::SYS_pidfd_open as u32),
        insn(ret_k, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
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

fn body() {
    deny_pidfd_open();
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
    in_own_process("auto_picks_the_signal_path_when_pidfd_open_is_enosys", body);
}
