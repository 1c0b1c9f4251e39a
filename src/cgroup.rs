//! cgroup v2 for one child: finding the hierarchy, checking a directory a command names, killing
//! everything in it (`cgroup.kill`), and the per-child cgroups the executor makes and removes.
//!
//! Never assumes `/sys/fs/cgroup`: hosts that keep cgroup v1 mount v2 elsewhere (for example
//! `/sys/fs/cgroup/unified`), so the mount is read from `/proc/self/mountinfo`. Whatever is
//! missing (no cgroup2 mount, a directory outside it, no write access, no `cgroup.kill` before
//! Linux 5.14) is an `Unsupported` or `PermissionDenied` error that says which.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`: what `statfs` says of a cgroup v2 directory.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Where the cgroup v2 hierarchy is mounted, read from `/proc/self/mountinfo`.
///
/// # Errors
/// `Unsupported` when no cgroup2 file system is mounted (a cgroup-v1-only host); the error of
/// reading `/proc/self/mountinfo` otherwise.
///
/// ```no_run
/// let root = napix_executor::cgroup2_mount()?;
/// println!("cgroup v2 at {}", root.display());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn cgroup2_mount() -> io::Result<PathBuf> {
    let text = std::fs::read("/proc/self/mountinfo")?;
    mount_point_in(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "cgroup v2: no cgroup2 file system in /proc/self/mountinfo",
        )
    })
}

/// The first cgroup2 mount point in the text of a `mountinfo` file.
fn mount_point_in(mountinfo: &[u8]) -> Option<PathBuf> {
    for line in mountinfo.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        // id parent major:minor root mount-point options [optional...] - fstype source super
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if fields.get(dash + 1) == Some(&&b"cgroup2"[..]) && fields.len() > 4 {
            return Some(PathBuf::from(OsString::from_vec(unescape(fields[4]))));
        }
    }
    None
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A cgroup v2 directory a child goes into, checked on the caller's thread.
#[derive(Debug)]
pub(crate) struct CgroupDir {
    pub(crate) path: PathBuf,
    /// `O_PATH | O_DIRECTORY`: what `clone3(CLONE_INTO_CGROUP)` takes.
    pub(crate) dir: OwnedFd,
}

impl CgroupDir {
    /// Checks that `path` is a cgroup v2 directory this process may put a child into. The
    /// error is an errno: `EOPNOTSUPP` for a directory outside every cgroup v2 hierarchy, else
    /// what `open` or `access` said (`ENOENT`, `EACCES`, `EROFS`...).
    pub(crate) fn open(path: &Path) -> Result<CgroupDir, i32> {
        use rustix::fs::{Mode, OFlags};
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| e.raw_os_error())?;
        let dir =
            crate::sys::above_stdio(dir).map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))?;
        let magic = rustix::fs::fstatfs(&dir)
            .map_err(|e| e.raw_os_error())?
            .f_type as i64;
        if magic != CGROUP2_SUPER_MAGIC {
            return Err(libc::EOPNOTSUPP);
        }
        rustix::fs::access(path.join("cgroup.procs"), rustix::fs::Access::WRITE_OK)
            .map_err(|e| e.raw_os_error())?;
        Ok(CgroupDir {
            path: path.to_path_buf(),
            dir,
        })
    }

    /// Makes a new cgroup under the cgroup v2 directory `parent` and opens it.
    pub(crate) fn create(parent: &Path) -> Result<CgroupDir, i32> {
        // Checked first, so a parent outside cgroup v2 says EOPNOTSUPP, not what mkdir says.
        CgroupDir::open(parent)?;
        let path = parent.join(child_cgroup_name());
        std::fs::create_dir(&path).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        CgroupDir::open(&path).inspect_err(|_| {
            let _ = std::fs::remove_dir(&path);
        })
    }

    /// Whether `cgroup.kill` is there (Linux 5.14), for the cgroup kill scope: `ENOSYS` (kind
    /// `Unsupported`, like the `EOPNOTSUPP` of a directory outside cgroup v2, but told apart in
    /// the error's message) when it is missing.
    pub(crate) fn check_kill(&self) -> Result<(), i32> {
        match rustix::fs::access(self.path.join("cgroup.kill"), rustix::fs::Access::WRITE_OK) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::NOENT) => Err(libc::ENOSYS),
            Err(e) => Err(e.raw_os_error()),
        }
    }
}

/// SIGKILLs every process in the cgroup at `path` and its descendants, at once and race-free
/// (the kernel walks the cgroup; no pid is involved).
pub(crate) fn kill(path: &Path) -> io::Result<()> {
    File::options()
        .write(true)
        .open(path.join("cgroup.kill"))?
        .write_all(b"1")
}

/// Whether any process is left in the cgroup at `path` (or in one below it).
pub(crate) fn populated(path: &Path) -> bool {
    std::fs::read_to_string(path.join("cgroup.events"))
        .map(|t| t.lines().any(|l| l.trim() == "populated 1"))
        .unwrap_or(false)
}

/// Removes an empty cgroup the executor made (`EBUSY` while a process is still in it).
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    std::fs::remove_dir(path)
}

/// A name for the next cgroup this process makes for a child: `napix-<our pid>-<n>`.
pub(crate) fn child_cgroup_name() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "napix-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The cgroups the executor made for children that are reaped now: each is emptied
/// (`cgroup.kill`) and removed; one that still holds a dying process (`EBUSY`) is retried on the
/// loop's timer. The busy cgroups of requests dropped on other threads ([`MadeCgroup`]'s drop)
/// join them at the next retry of any loop of this process.
#[derive(Debug, Default)]
pub(crate) struct Leftovers(Vec<PathBuf>);

impl Leftovers {
    /// Empties and removes `path`, or keeps it for a retry.
    pub(crate) fn remove(&mut self, path: PathBuf) {
        if !try_remove(&path) {
            self.0.push(path);
        }
    }

    /// Retries every kept cgroup, and those handed over by other threads.
    pub(crate) fn retry(&mut self) {
        self.retry_with(&HANDED_OVER, try_remove);
    }

    fn retry_with(&mut self, handed: &HandedOver, try_remove: impl Fn(&Path) -> bool) {
        handed.take_into(&mut self.0);
        self.0.retain(|p| !try_remove(p));
    }

    /// True when no cgroup waits for a retry (here or handed over): the loop then needs no
    /// retry timer.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty() && HANDED_OVER.is_empty()
    }
}

/// Busy cgroups of requests dropped off the loop's thread (refused at `stop()`, withdrawn, a
/// failed spawn on a calling thread): such a thread tries once and hands what is still busy
/// here instead of waiting for its last process to go; a loop takes them into its
/// [`Leftovers`]. One list for the process: [`MadeCgroup`] does not know its executor, and any
/// loop can remove any cgroup this process made.
struct HandedOver {
    paths: Mutex<Vec<PathBuf>>,
    /// `paths.len()`, read without the lock by every re-arm of the loop's timer.
    count: AtomicUsize,
}

static HANDED_OVER: HandedOver = HandedOver::new();

impl HandedOver {
    const fn new() -> HandedOver {
        HandedOver {
            paths: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
        }
    }

    fn hand_over(&self, path: PathBuf) {
        let mut paths = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        paths.push(path);
        self.count.store(paths.len(), Ordering::Release);
    }

    fn take_into(&self, into: &mut Vec<PathBuf>) {
        if self.is_empty() {
            return;
        }
        let mut paths = self.paths.lock().unwrap_or_else(PoisonError::into_inner);
        into.append(&mut paths);
        self.count.store(0, Ordering::Release);
    }

    fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }
}

/// A cgroup the executor made for one child ([`Command::cgroup_per_child`]), owned by the
/// spawn request until the child is tracked.
///
/// Every way a request can end without a tracked child drops it, and the drop empties and
/// removes the cgroup: an error found on the caller's thread, a request refused because the
/// executor stopped, withdrawn by a caller that gave up (a request timeout, a dropped
/// `spawn_async` future), or a spawn that failed. So the sync and the async paths share this
/// one cleanup. On the executor thread the loop takes it out of the request first and hands it
/// to its [`Leftovers`] ([`Self::remove_later`]), so that a cgroup still busy does not block the
/// loop; once the child is tracked its state owns the cgroup ([`Self::adopt`]) and the loop
/// removes it after the reap. Dropped on any other thread it is tried once: one still busy is
/// handed to the loops' retries, so the dropping thread (a `stop()` caller, a pusher refused
/// by a closed queue) never waits for it. With no loop running again it stays (logged at the
/// loop's last retry, or not at all if none comes).
///
/// [`Command::cgroup_per_child`]: crate::Command::cgroup_per_child
#[derive(Debug)]
pub(crate) struct MadeCgroup(Option<PathBuf>);

impl MadeCgroup {
    pub(crate) fn new(path: PathBuf) -> MadeCgroup {
        MadeCgroup(Some(path))
    }

    /// The child is tracked and its state owns the cgroup: nothing to do here any more.
    pub(crate) fn adopt(mut self) {
        self.0 = None;
    }
}

impl Drop for MadeCgroup {
    fn drop(&mut self) {
        self.discard_with(&HANDED_OVER, try_remove);
    }
}

impl MadeCgroup {
    /// Empties and removes the cgroup of a child that never came, once; hands it over if busy.
    fn discard_with(&mut self, handed: &HandedOver, try_remove: impl Fn(&Path) -> bool) {
        if let Some(path) = self.0.take()
            && !try_remove(&path)
        {
            tracing::debug!(cgroup = %path.display(), "cgroup busy: left to the loop's retries");
            handed.hand_over(path);
        }
    }
}

/// True once `path` is gone (or cannot ever be removed: then it is logged and forgotten).
fn try_remove(path: &Path) -> bool {
    if populated(path) {
        let _ = kill(path);
    }
    match remove(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => false,
        Err(e) => {
            tracing::warn!(cgroup = %path.display(), error = %e, "could not remove a child's cgroup");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_busy_cgroup_dropped_off_the_loop_is_tried_once_and_handed_to_the_loop() {
        let handed = HandedOver::new();
        let tries = Cell::new(0);
        let busy = |_: &Path| {
            tries.set(tries.get() + 1);
            false
        };
        let mut made = MadeCgroup::new(PathBuf::from("/cg/napix-1-1"));
        let t = std::time::Instant::now();
        made.discard_with(&handed, busy);
        assert_eq!(
            tries.get(),
            1,
            "tried more than once on the dropping thread"
        );
        assert!(t.elapsed() < std::time::Duration::from_millis(50));
        assert!(!handed.is_empty());
        // Dropped now: nothing left to remove (it would touch the real file system otherwise).
        drop(made);

        // The loop's retries take it: kept while still busy, gone once removed.
        let mut leftovers = Leftovers::default();
        leftovers.retry_with(&handed, busy);
        assert!(handed.is_empty());
        assert_eq!(leftovers.0, [PathBuf::from("/cg/napix-1-1")]);
        leftovers.retry_with(&handed, |_| true);
        assert!(leftovers.0.is_empty());
    }

    #[test]
    fn an_empty_cgroup_dropped_off_the_loop_goes_at_once() {
        let handed = HandedOver::new();
        let mut made = MadeCgroup::new(PathBuf::from("/cg/napix-1-2"));
        made.discard_with(&handed, |_| true);
        assert!(handed.is_empty());
        drop(made);
    }

    const HOST: &[u8] = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn the_cgroup2_mount_is_found_beside_v1_and_escapes_are_undone() {
        assert_eq!(
            mount_point_in(HOST),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let spaced = b"41 31 0:38 / /mnt/my\\040cg rw shared:5 - cgroup2 none rw\n";
        assert_eq!(mount_point_in(spaced), Some(PathBuf::from("/mnt/my cg")));
        assert_eq!(mount_point_in(&HOST[..HOST.len() - 70]), None);
        assert_eq!(mount_point_in(b"garbage\n\n- cgroup2"), None);
    }

    #[test]
    fn a_directory_outside_cgroup2_is_unsupported_and_a_missing_one_not_found() {
        let err = CgroupDir::open(Path::new("/tmp")).expect_err("/tmp is no cgroup");
        assert_eq!(err, libc::EOPNOTSUPP);
        let err = CgroupDir::open(Path::new("/no/such/cgroup")).expect_err("missing");
        assert_eq!(err, libc::ENOENT);
        let err = CgroupDir::create(Path::new("/tmp")).expect_err("/tmp is no cgroup");
        assert_eq!(err, libc::EOPNOTSUPP);
    }
}
