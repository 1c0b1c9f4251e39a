//! The probe child (`examples/napix_probe.rs`): where it is, what it reports, and what a child
//! of the executor must have inherited.
//!
//! Found through `NAPIX_PROBE` (a path), else beside this test binary (`target/<profile>/examples/`,
//! built by `cargo test`). Without it the checks that need it are skipped, with a note once.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The probe's path, if it was built.
pub fn path() -> Option<&'static PathBuf> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        let found = std::env::var_os("NAPIX_PROBE")
            .map(PathBuf::from)
            .or_else(|| {
                // target/<profile>/deps/<test binary> -> target/<profile>/examples/napix_probe
                let exe = std::env::current_exe().ok()?;
                Some(exe.parent()?.parent()?.join("examples/napix_probe"))
            });
        let found = found.filter(|p| p.is_file());
        if found.is_none() {
            eprintln!(
                "napix_probe not built (cargo build --example napix_probe, or NAPIX_PROBE=path): \
                 checks of what children inherit are skipped"
            );
        }
        found
    })
    .as_ref()
}

/// Arguments that must reach the child byte for byte: non-UTF-8, empty, whitespace, option-like.
pub const ARGS: &[&[u8]] = &[
    b"",
    b" ",
    b"\t\n",
    b"-n",
    b"\xff\xfe\x80",
    b"a b",
    b"--",
    b"%s",
];

/// The arguments `arg` selects (a subset of [`ARGS`] by its bits, in order, repeated once if the
/// top bit is set).
pub fn args(arg: u8) -> Vec<OsString> {
    let mut v: Vec<OsString> = ARGS
        .iter()
        .enumerate()
        .filter(|(i, _)| arg & (1 << i) != 0)
        .map(|(_, a)| OsString::from_vec(a.to_vec()))
        .collect();
    if arg & 0x80 != 0 {
        v.extend(v.clone());
    }
    v
}

/// What the probe reported.
#[derive(Debug, Default)]
pub struct Report {
    pub argv: Vec<Vec<u8>>,
    /// (fd, link target), sorted by fd.
    pub fds: Vec<(i32, String)>,
    pub blocked: u64,
    pub ignored: u64,
    pub caught: u64,
}

pub fn parse(out: &[u8]) -> Report {
    let text = String::from_utf8(out.to_vec()).expect("the probe prints ASCII");
    let mut r = Report::default();
    let hex = |s: &str| u64::from_str_radix(s, 16).expect("hex signal set");
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("argv:") {
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex byte"))
                .collect();
            r.argv.push(bytes);
        } else if let Some(rest) = line.strip_prefix("fd:") {
            let (n, target) = rest.split_once(':').expect("fd:<n>:<target>");
            r.fds
                .push((n.parse().expect("fd number"), target.to_string()));
        } else if let Some(h) = line.strip_prefix("SigBlk:") {
            r.blocked = hex(h);
        } else if let Some(h) = line.strip_prefix("SigIgn:") {
            r.ignored = hex(h);
        } else if let Some(h) = line.strip_prefix("SigCgt:") {
            r.caught = hex(h);
        }
    }
    r.fds.sort();
    r
}

/// The inode of a pipe end, as `/proc/*/fd` names it (`pipe:[inode]`).
pub fn pipe_name(fd: &impl AsRawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .expect("read the link of a pipe end")
        .to_string_lossy()
        .into_owned()
}

/// Checks what a child of the executor must have inherited: `argv` exactly, fds 0-2 only (stdin
/// `/dev/null`, stdout and stderr the pipes named `stdout`/`stderr` or `/dev/null`: no pidfd, no
/// other child's pipe end, no executor descriptor), an empty signal mask, no ignored or caught
/// signal (a Rust parent ignores SIGPIPE; the child must not).
pub fn check(
    r: &Report,
    argv: &[OsString],
    stdout: Option<&str>,
    stderr: Option<&str>,
    what: &str,
) {
    let want: Vec<Vec<u8>> = argv.iter().map(|a| a.clone().into_vec()).collect();
    assert_eq!(r.argv, want, "{what}: argv did not arrive byte for byte");
    let fds: Vec<i32> = r.fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        fds,
        [0, 1, 2],
        "{what}: the child has other descriptors: {:?}",
        r.fds
    );
    assert_eq!(r.fds[0].1, "/dev/null", "{what}: stdin");
    assert_eq!(
        r.fds[1].1,
        stdout.unwrap_or("/dev/null"),
        "{what}: stdout is not its own pipe"
    );
    assert_eq!(
        r.fds[2].1,
        stderr.unwrap_or("/dev/null"),
        "{what}: stderr is not its own pipe"
    );
    assert_eq!(
        r.blocked, 0,
        "{what}: signals blocked in the child: {:#x}",
        r.blocked
    );
    assert_eq!(
        r.ignored, 0,
        "{what}: signals ignored in the child: {:#x}",
        r.ignored
    );
    assert_eq!(
        r.caught, 0,
        "{what}: handlers in the child: {:#x}",
        r.caught
    );
}
