//! A fresh cgroup v2 directory for one test, emptied (`cgroup.kill`) and removed on drop.

use std::path::PathBuf;
use std::time::Duration;

use super::wait_until;

/// A fresh cgroup under the cgroup v2 mount, removed on drop.
pub struct TempCgroup(pub PathBuf);

impl TempCgroup {
    pub fn new(name: &str) -> Option<TempCgroup> {
        let root = match napix_executor::cgroup2_mount() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("skipped: {e}");
                return None;
            }
        };
        let path = root.join(format!("napix-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir(&path);
        if let Err(e) = std::fs::create_dir(&path) {
            eprintln!(
                "skipped: cgroup v2 at {} is not writable: {e}",
                root.display()
            );
            return None;
        }
        if !path.join("cgroup.kill").exists() {
            eprintln!("skipped: no cgroup.kill (Linux 5.14+)");
            let _ = std::fs::remove_dir(&path);
            return None;
        }
        Some(TempCgroup(path))
    }

    pub fn procs(&self) -> Vec<u32> {
        std::fs::read_to_string(self.0.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        let _ = wait_until(Duration::from_secs(2), || self.procs().is_empty());
        let _ = std::fs::remove_dir(&self.0);
    }
}
