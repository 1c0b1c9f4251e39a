//! Scratch directories and executable scripts for tests.

use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir (canonical path), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `napix-<tag>-<pid>-<thread>`: unique per test thread.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "napix-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir.canonicalize().expect("canonical temp dir"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable `#!/bin/sh` script with `body` at `path`.
///
/// Written by a `sh` child, not by this process: a file this process held open for writing
/// could be inherited by another test's forked child that has not exec'd yet, and exec'ing the
/// script would then fail with ETXTBSY.
pub fn write_script(path: &Path, body: &str) {
    let status = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "printf '#!/bin/sh\\n%s\\n' \"$1\" > \"$2\" && chmod 755 \"$2\"",
        ])
        .arg("sh")
        .arg(body)
        .arg(path)
        .status()
        .expect("run sh to write a script");
    assert!(status.success(), "writing {}", path.display());
}
