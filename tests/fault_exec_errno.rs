//! The kernel's errno survives an exec failure: a program path through a regular file
//! (`/etc/passwd/child`) fails with ENOTDIR, as Rust std (errno 20, `ErrorKind::NotADirectory`)
//! and CPython (`NotADirectoryError`) report it, on every backend and in both child-watch modes;
//! the other path errors keep theirs (ENOENT, EACCES, ELOOP, ENAMETOOLONG).
//!
//! Regression test: ENOTDIR was reported as NotFound/ENOENT.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{spawn, start_with_watch};
use napix_executor::{ChildWatch, SpawnBackend, SpawnError};

const GRACE: Duration = Duration::from_millis(100);

#[test]
fn exec_failures_keep_the_kernels_errno() {
    let dir = std::env::temp_dir().join(format!("napix-exec-errno-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let looped = dir.join("loop");
    let _ = std::fs::remove_file(&looped);
    std::os::unix::fs::symlink(&looped, &looped).expect("a symlink to itself");
    let too_long = format!("/{}", "a".repeat(300));
    let paths: Vec<(String, i32)> = vec![
        ("/etc/passwd/child".into(), libc::ENOTDIR),
        ("/proc/self/root/etc/passwd/x".into(), libc::ENOTDIR),
        ("/nonexistent/child".into(), libc::ENOENT),
        ("/etc/passwd".into(), libc::EACCES),
        (looped.to_str().expect("utf-8 temp dir").into(), libc::ELOOP),
        (too_long, libc::ENAMETOOLONG),
    ];
    // What std says for the same paths is the reference.
    let cases: Vec<(String, i32, ErrorKind)> = paths
        .into_iter()
        .map(|(path, errno)| {
            let std_err = std::process::Command::new(&path)
                .spawn()
                .expect_err("std spawn");
            assert_eq!(std_err.raw_os_error(), Some(errno), "std on {path}");
            (path, errno, std_err.kind())
        })
        .collect();
    assert_eq!(cases[0].2, ErrorKind::NotADirectory);
    for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
        for backend in SpawnBackend::ALL {
            let what = format!("{} {watch:?}", backend.name());
            let r = start_with_watch(backend, watch, GRACE);
            for (path, errno, kind) in &cases {
                let e = match spawn(&r.arc(), &[path], true) {
                    Err(e) => e,
                    Ok(h) => panic!("{what}: {path} gave a process (pid {})", h.pid()),
                };
                assert_eq!(
                    e.raw_os_error(),
                    Some(*errno),
                    "{what}: {path}: {e:?} ({e})"
                );
                assert_eq!(e.kind(), *kind, "{what}: {path}: {e:?}");
                let io = std::io::Error::from(e.clone());
                assert_eq!(io.kind(), *kind, "{what}: {path}: as io::Error");
                assert_eq!(e.program().and_then(|p| p.to_str()), Some(path.as_str()));
                if *errno == libc::ENOTDIR {
                    assert!(
                        matches!(
                            e,
                            SpawnError::System {
                                errno: libc::ENOTDIR,
                                ..
                            }
                        ),
                        "{what}: {e:?}"
                    );
                    assert!(e.to_string().contains(path.as_str()), "{what}: {e}");
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
