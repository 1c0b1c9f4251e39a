//! The probe child (`examples/napix_probe.rs`): where it is, what it reports, and what a child
//! of the executor must have inherited.
//!
//! Found through `NAPIX_PROBE` (a path), else beside this binary (`target/<profile>/examples/`
//! for a test binary, which `cargo test` builds). When it is not there (`cargo test --test
//! fuzz_replay` alone builds no example; a fuzz target's binary has none beside it) it is built
//! at the first use with the cargo that built this code, `cargo build --example napix_probe`: for
//! a test binary into its own target directory and profile, for anything else into the
//! repository's default target directory. When that fails too, the first use panics: the checks
//! of what children inherit never pass by being skipped.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The probe's path; built first if need be (see the module's docs). Panics when it cannot be.
pub fn path() -> &'static Path {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PATH.get_or_init(find_or_build) {
        Ok(path) => path,
        Err(why) => panic!("napix_probe: {why}"),
    }
}

fn find_or_build() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("NAPIX_PROBE") {
        let given = PathBuf::from(given);
        return if given.is_file() {
            Ok(given)
        } else {
            Err(format!("NAPIX_PROBE={} is not a file", given.display()))
        };
    }
    let root = repository_root()?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "--example",
            "napix_probe",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"));
    // A test binary: target[/<triple>]/<profile>/deps/<name>. Build beside it, same profile.
    let probe = match test_binary_layout(&exe) {
        Some(layout) => {
            let probe = layout.profile_dir.join("examples/napix_probe");
            if probe.is_file() {
                return Ok(probe);
            }
            build.arg("--target-dir").arg(&layout.target_dir);
            build.args(["--profile", &layout.profile]);
            if let Some(triple) = &layout.triple {
                build.args(["--target", triple]);
            }
            probe
        }
        // A fuzz target or anything else: the repository's own target directory, dev profile.
        None => {
            let target_dir = root.join("target");
            let probe = target_dir.join("debug/examples/napix_probe");
            if probe.is_file() {
                return Ok(probe);
            }
            build.arg("--target-dir").arg(&target_dir);
            probe
        }
    };
    // An ordinary build: not with the flags of whatever built this code (cargo fuzz passes its
    // coverage instrumentation in RUSTFLAGS, which the probe's build cannot link).
    for flags in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTDOCFLAGS",
    ] {
        build.env_remove(flags);
    }
    eprintln!(
        "napix_probe not built at {}: building it ({build:?})",
        probe.display()
    );
    let status = build
        .status()
        .map_err(|e| format!("running {build:?}: {e}"))?;
    if !status.success() || !probe.is_file() {
        return Err(format!(
            "{build:?} ended with {status} and left no {}; build it yourself \
             (cargo build --example napix_probe) or set NAPIX_PROBE",
            probe.display()
        ));
    }
    Ok(probe)
}

/// The first directory up from the crate that compiled this code with `examples/napix_probe.rs`
/// (the root package itself, or the repository above `fuzz/`).
fn repository_root() -> Result<PathBuf, String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|dir| dir.join("examples/napix_probe.rs").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no examples/napix_probe.rs above {}", here.display()))
}

/// Where a test binary's cargo put it.
struct Layout {
    target_dir: PathBuf,
    /// `--target <triple>` when the build was for one (its own directory level).
    triple: Option<String>,
    profile_dir: PathBuf,
    /// The cargo profile: `dev` for the `debug` directory, else the directory's name.
    profile: String,
}

fn test_binary_layout(exe: &Path) -> Option<Layout> {
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    let profile_dir = deps.parent()?;
    let profile = match profile_dir.file_name()?.to_str()? {
        "debug" => "dev".to_string(),
        other => other.to_string(),
    };
    let above = profile_dir.parent()?;
    // Cargo marks the target directory itself with CACHEDIR.TAG; a `<triple>` level has none.
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").is_file() {
        (above.to_path_buf(), None)
    } else {
        (
            above.parent()?.to_path_buf(),
            Some(above.file_name()?.to_str()?.to_string()),
        )
    };
    Some(Layout {
        target_dir,
        triple,
        profile_dir: profile_dir.to_path_buf(),
        profile,
    })
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
