//! Target `request`, PATH mode (option bits 5 and 7): a `Command` whose environment's `PATH`
//! varies (removed, cleared with the rest, empty, or a list of entries) and a program name looked
//! up in it. The outcome is checked against an oracle of `execvp`'s rules that knows every entry
//! by construction, not by asking the file system:
//!
//! - each entry gives what `execve` of `<entry>/<name>` would ([`Candidate`]): a program (one of
//!   three, told apart by their exit codes), or an errno; an empty entry is the working directory;
//! - the first program found runs; `EACCES` (a file without the execute bit, a directory) is
//!   remembered and the search goes on; `ENOENT` and `ENOTDIR` go on too; any other errno
//!   (`ELOOP`, `ENAMETOOLONG`) ends the search with that error at once; an entry of `PATH_MAX`
//!   bytes or more is skipped untried (glibc);
//! - at the end, `EACCES` if any entry said so, else the last entry's errno;
//! - without `PATH` (removed, or the environment cleared) the search path is `/bin:/usr/bin`.
//!
//! Then the spawn must have run the right file (its exit code), or failed with the typed error
//! for that errno (`NotFound`, `PermissionDenied`, else `System` at the exec stage) whose
//! `io::Error` keeps errno and kind; no descriptor or child is left. Relative entries are
//! searched from the child's working directory: ours, or `/` when the command sets it (the
//! relative entries mean the same from both: `relative:@true` climbs with `..` to `/` first, and
//! neither directory holds any of [`NAMES`]).
//!
//! The entries live in a fixture directory (`$TMPDIR/napix-path-fuzz-<uid>`) made of
//! directories, symbolic links to `/bin/true`, `/bin/false` and `/bin/sh` and one empty file, so
//! nothing is written that is then executed. Layout after the option byte: a name byte (%
//! [`NAMES`]), a PATH kind byte (% 6: removed, cleared, empty, else entries), an entry count
//! (% 9) and one byte per entry (% [`ENTRIES`]), a working-directory byte (% 2: none, `/`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use napix_executor::{Command, SpawnBackend, SpawnError, SpawnStage};

use super::input::Bytes;

/// The name every fixture directory may hold, as something different in each.
const PROG: &str = "napix-path-prog";

/// Program names looked up: the fixture's, one only `/bin` and `/usr/bin` hold, one nobody
/// holds, and one longer than a file name may be (`NAME_MAX`).
pub const NAMES: &[&str] = &[PROG, "true", "napix-path-none", LONG_NAME];
const LONG_NAME: &str = "napix-path-long-name-napix-path-long-name-napix-path-long-name-\
    napix-path-long-name-napix-path-long-name-napix-path-long-name-napix-path-long-name-\
    napix-path-long-name-napix-path-long-name-napix-path-long-name-napix-path-long-name-\
    napix-path-long-name-napix-path-long-name-napix-path-long-name-napix-path-long-name";

/// The arguments every program gets: `sh` exits 3 with them, `true` 0, `false` 1.
const ARGS: [&str; 2] = ["-c", "exit 3"];

/// What `execve` of one candidate path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// Runs, exiting with this code.
    Runs(i32),
    Fails(i32),
}

/// What a PATH entry is, as the oracle knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A fixture directory whose [`PROG`] does this (others are absent).
    Holds(Candidate),
    /// A directory without any of our names (the fixture's empty one, a relative one, `.`).
    Empty,
    /// `/bin` or `/usr/bin`: `true` runs, the others are absent.
    System,
    /// No such directory.
    Missing,
    /// A regular file: `ENOTDIR`.
    File,
    /// A symbolic link to itself: `ELOOP`.
    Loop,
    /// Holds a component longer than `NAME_MAX`: `ENAMETOOLONG`.
    LongComponent,
    /// The entry itself has `PATH_MAX` bytes or more: glibc's `execvp` skips it untried.
    TooLong,
}

/// The entries an input picks from: (how it is spelled, relative to the fixture root when it
/// starts with `@`; what it is).
const ENTRIES: &[(&str, Entry)] = &[
    ("@true", Entry::Holds(Candidate::Runs(0))),
    ("@false", Entry::Holds(Candidate::Runs(1))),
    ("@sh", Entry::Holds(Candidate::Runs(3))),
    ("@noexec", Entry::Holds(Candidate::Fails(libc::EACCES))),
    ("@dir", Entry::Holds(Candidate::Fails(libc::EACCES))),
    (
        "@via-link-noexec",
        Entry::Holds(Candidate::Fails(libc::EACCES)),
    ),
    ("@dangling", Entry::Holds(Candidate::Fails(libc::ENOENT))),
    ("@loop", Entry::Holds(Candidate::Fails(libc::ELOOP))),
    ("@empty", Entry::Empty),
    ("@file", Entry::File),
    ("@loopdir", Entry::Loop),
    ("/nonexistent/napix", Entry::Missing),
    ("", Entry::Empty),
    (".", Entry::Empty),
    ("napix-path-no-such-dir", Entry::Missing),
    // The fixture's `true` directory reached from our working directory.
    ("relative:@true", Entry::Holds(Candidate::Runs(0))),
    ("/bin", Entry::System),
    ("/usr/bin", Entry::System),
    // The fixture's `sh` directory behind 1,500 "./": long, under PATH_MAX.
    ("long:@sh", Entry::Holds(Candidate::Runs(3))),
    ("too-long:@true", Entry::TooLong),
    ("long-component", Entry::LongComponent),
];

/// What `execve(<entry>/<name>)` does.
fn candidate(entry: Entry, name: &str) -> Candidate {
    let long = name.len() > 255;
    match entry {
        Entry::Missing => Candidate::Fails(libc::ENOENT),
        Entry::File => Candidate::Fails(libc::ENOTDIR),
        Entry::Loop => Candidate::Fails(libc::ELOOP),
        Entry::LongComponent => Candidate::Fails(libc::ENAMETOOLONG),
        // Not tried: as a missing entry except that it leaves the last errno alone (`oracle`).
        Entry::TooLong => Candidate::Fails(libc::ENOENT),
        // Looked up in a directory that exists: a name that long is refused first.
        _ if long => Candidate::Fails(libc::ENAMETOOLONG),
        Entry::Holds(c) if name == PROG => c,
        Entry::System if name == "true" => Candidate::Runs(0),
        Entry::Holds(_) | Entry::Empty | Entry::System => Candidate::Fails(libc::ENOENT),
    }
}

/// `execvp`'s answer for `name` over `entries`.
fn oracle(name: &str, entries: &[Entry]) -> Candidate {
    let mut denied = false;
    let mut last = libc::ENOENT;
    for &entry in entries {
        if entry == Entry::TooLong {
            continue;
        }
        match candidate(entry, name) {
            Candidate::Runs(code) => return Candidate::Runs(code),
            Candidate::Fails(libc::EACCES) => denied = true,
            Candidate::Fails(errno @ (libc::ENOENT | libc::ENOTDIR)) => last = errno,
            Candidate::Fails(errno) => return Candidate::Fails(errno),
        }
    }
    Candidate::Fails(if denied { libc::EACCES } else { last })
}

/// The default search path's entries (`/bin:/usr/bin`).
const DEFAULT: [Entry; 2] = [Entry::System, Entry::System];

#[derive(Debug, Clone)]
pub struct Spec {
    backend: SpawnBackend,
    name: &'static str,
    /// 0: removed, 1: the environment cleared, 2: empty, else these entries.
    kind: u8,
    entries: Vec<usize>,
    cwd_root: bool,
}

pub fn decode(options: u8, b: &mut Bytes<'_>) -> Spec {
    let backend = super::backend(SpawnBackend::ALL[usize::from(options & 3) % 3]);
    let name = NAMES[usize::from(b.u8()) % NAMES.len()];
    let kind = b.u8() % 6;
    let entries = (0..b.u8() % 9)
        .map(|_| usize::from(b.u8()) % ENTRIES.len())
        .collect();
    let cwd_root = b.u8() % 2 == 1;
    Spec {
        backend,
        name,
        kind: kind.min(3),
        entries,
        cwd_root,
    }
}

/// The fixture root, made (idempotently: several test processes may share it) and checked once.
fn fixture() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = PathBuf::from(OsStr::from_bytes(fixture_root_bytes()));
        make_fixture(&root).unwrap_or_else(|e| panic!("fixture {}: {e}", root.display()));
        check_assumptions(&root);
        root
    })
}

fn current_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

fn make_fixture(root: &Path) -> io::Result<()> {
    let dir = |name: &str| -> io::Result<PathBuf> {
        let d = root.join(name);
        std::fs::create_dir_all(&d)?;
        Ok(d)
    };
    let link = |target: &Path, at: &Path| match symlink(target, at) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    };
    dir("")?;
    link(Path::new("/bin/true"), &dir("true")?.join(PROG))?;
    link(Path::new("/bin/false"), &dir("false")?.join(PROG))?;
    link(Path::new("/bin/sh"), &dir("sh")?.join(PROG))?;
    let noexec = dir("noexec")?.join(PROG);
    if !noexec.exists() {
        std::fs::write(&noexec, b"")?;
    }
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644))?;
    std::fs::create_dir_all(dir("dir")?.join(PROG))?;
    link(&noexec, &dir("via-link-noexec")?.join(PROG))?;
    link(
        Path::new("/nonexistent/napix"),
        &dir("dangling")?.join(PROG),
    )?;
    let looped = dir("loop")?.join(PROG);
    link(&looped, &looped)?;
    dir("empty")?;
    let file = root.join("file");
    if !file.exists() {
        std::fs::write(&file, b"")?;
    }
    let loopdir = root.join("loopdir");
    link(&loopdir, &loopdir)?;
    Ok(())
}

/// The oracle's picture of the world outside the fixture, checked rather than trusted.
fn check_assumptions(root: &Path) {
    for name in NAMES {
        for dir in ["/bin", "/usr/bin", ".", "/"] {
            let p = Path::new(dir).join(name);
            let runs_true = *name == "true" && dir.starts_with("/") && dir != "/";
            if runs_true {
                assert!(
                    std::fs::metadata(&p)
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0),
                    "the PATH oracle assumes {} is executable",
                    p.display()
                );
            } else if name.len() <= 255 {
                assert!(
                    std::fs::symlink_metadata(&p).is_err(),
                    "the PATH oracle assumes there is no {}",
                    p.display()
                );
            }
        }
    }
    let long = spell("long-component");
    assert_eq!(
        std::fs::metadata(Path::new(OsStr::from_bytes(&long)).join(PROG))
            .err()
            .and_then(|e| e.raw_os_error()),
        Some(libc::ENAMETOOLONG),
        "the PATH oracle assumes a component over NAME_MAX is refused"
    );
    assert!(root.join("true").join(PROG).exists());
}

/// The bytes of an entry as it goes into `PATH`.
fn spell(entry: &str) -> Vec<u8> {
    let root = fixture_root_bytes();
    if let Some(rest) = entry.strip_prefix("relative:@") {
        // From our working directory up to `/`, then down to the fixture.
        let here = std::env::current_dir()
            .and_then(|d| d.canonicalize())
            .expect("working directory");
        let mut v = b"../".repeat(here.components().count().saturating_sub(1));
        v.extend_from_slice(&root[1..]);
        v.push(b'/');
        v.extend_from_slice(rest.as_bytes());
        return v;
    }
    if let Some(rest) = entry.strip_prefix("long:@") {
        let mut v = b"/".to_vec();
        v.extend(b"./".repeat(1500));
        v.extend_from_slice(&root[1..]);
        v.push(b'/');
        v.extend_from_slice(rest.as_bytes());
        return v;
    }
    if let Some(rest) = entry.strip_prefix("too-long:@") {
        let mut v = b"/".to_vec();
        v.extend(b"./".repeat(2100));
        v.extend_from_slice(&root[1..]);
        v.push(b'/');
        v.extend_from_slice(rest.as_bytes());
        return v;
    }
    if entry == "long-component" {
        let mut v = b"/tmp/".to_vec();
        v.extend(b"c".repeat(300));
        return v;
    }
    if let Some(rest) = entry.strip_prefix('@') {
        let mut v = root.to_vec();
        v.push(b'/');
        v.extend_from_slice(rest.as_bytes());
        return v;
    }
    entry.as_bytes().to_vec()
}

fn fixture_root_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let root = std::env::temp_dir()
            .canonicalize()
            .expect("temporary directory")
            .join(format!("napix-path-fuzz-{}", current_uid()));
        root.into_os_string().into_vec()
    })
}

pub fn run(options: u8, b: &mut Bytes<'_>) -> super::request::Outcome {
    let spec = decode(options, b);
    fixture();
    let mut cmd = Command::new(spec.name);
    cmd.args(ARGS);
    let entries: Vec<Entry> = match spec.kind {
        0 => {
            cmd.env_remove("PATH");
            DEFAULT.to_vec()
        }
        1 => {
            cmd.env_clear();
            DEFAULT.to_vec()
        }
        2 => {
            cmd.env("PATH", "");
            vec![Entry::Empty]
        }
        _ => {
            let spelled: Vec<Vec<u8>> = spec.entries.iter().map(|&i| spell(ENTRIES[i].0)).collect();
            cmd.env("PATH", OsString::from_vec(spelled.join(&b':')));
            // No entry at all is one empty entry: the working directory.
            if spec.entries.is_empty() {
                vec![Entry::Empty]
            } else {
                spec.entries.iter().map(|&i| ENTRIES[i].1).collect()
            }
        }
    };
    if spec.cwd_root {
        cmd.current_dir("/");
    }
    let want = oracle(spec.name, &entries);
    let mut outcome = super::request::Outcome::default();
    let ex = super::request::executor(spec.backend);
    let _guard = super::exclusive();
    let fds_before = super::procfs::fd_targets();
    let result = ex.spawn(&cmd);
    drop(cmd);
    let what = format!("{spec:?} (PATH entries {entries:?})");
    match (want, result) {
        (Candidate::Runs(code), Ok(h)) => {
            outcome.accepted = true;
            outcome.spawned = true;
            let status = h.wait_timeout(Duration::from_secs(20));
            assert_eq!(
                status.map(|s| s.code()),
                Some(Some(code)),
                "{what}: the wrong file ran, or it did not end"
            );
        }
        (Candidate::Runs(code), Err(e)) => {
            panic!("{what}: expected the program exiting {code} to run, got {e:?}")
        }
        (Candidate::Fails(errno), Ok(h)) => {
            let status = h.kill();
            panic!("{what}: expected errno {errno}, but it spawned ({status:?})");
        }
        (Candidate::Fails(errno), Err(e)) => {
            outcome.spawn_failed = true;
            check_error(&what, spec.name, errno, &e);
        }
    }
    super::procfs::assert_settled(&what, &fds_before);
    outcome
}

/// `e` is the typed error for `errno` from the PATH search, keeping errno and kind.
fn check_error(what: &str, name: &str, errno: i32, e: &SpawnError) {
    let typed = match errno {
        libc::ENOENT => matches!(e, SpawnError::NotFound { .. }),
        libc::EACCES => matches!(e, SpawnError::PermissionDenied { .. }),
        _ => matches!(
            e,
            SpawnError::System { stage: SpawnStage::Exec, errno: got, .. } if *got == errno
        ),
    };
    assert!(typed, "{what}: expected errno {errno}, got {e:?}");
    assert_eq!(e.raw_os_error(), Some(errno), "{what}: {e:?}");
    assert_eq!(
        io::Error::from(e.clone()).kind(),
        io::Error::from_raw_os_error(errno).kind(),
        "{what}: {e:?}: kind"
    );
    super::request::check_error(e, &[OsString::from(name)]);
}

/// A PATH-mode input: option bits 5 and 7, `backend`, then `body`.
pub fn encode(backend: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xa0 | backend];
    v.extend_from_slice(body);
    v
}
