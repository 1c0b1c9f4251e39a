//! Target `request`: arbitrary bytes -> a command vector plus options -> request validation and
//! `PATH` search (`direct::Prepared::new`, the code `create_process` runs on the caller's thread).
//!
//! Invariants checked on every input:
//! - no panic, whatever the bytes (empty, NUL, huge, non-UTF-8, relative and absolute paths,
//!   directories, non-executables);
//! - the verdict matches an independent oracle: `EmptyCommand` for `[]`, `NulByte` with the index
//!   of the first element holding a NUL, `NotFound` for an empty program, accepted for a program
//!   with a slash, and for a bare name the outcome of a `PATH` walk (executable regular file ->
//!   accepted, something there but not executable -> `PermissionDenied`, else `NotFound`);
//! - every rejection is a typed `SpawnError` with a non-empty `Display` that names the program,
//!   whose `io::Error` conversion keeps the kind and the error itself;
//! - an `Executor` rejects the same input with the same error (option bit 3);
//! - when the program is known harmless (`true`, `false`, `echo`, by name or by path) or cannot be
//!   executed at all (missing, a directory, a file without the execute bit, ...), it is really
//!   spawned (option bit 2): harmless ones exit with their known code (`echo` output compared
//!   byte for byte with GNU echo's rules: `-n`/`-e`/`-E`, empty, whitespace, non-UTF-8 words) or
//!   fail with `ArgumentListTooLong` exactly when an argument exceeds the kernel's
//!   limit; non-executables always give an `Err`, never a process, and leave no descriptor
//!   behind.
//!
//! Input layout: `options, argc % 9, then argc arguments`; an argument is a kind byte `k` and
//! - `k % 4 == 0`: a length-prefixed literal ([`Bytes::blob`]);
//! - `k % 4 == 1`: [`DICT`]`[next byte]`;
//! - `k % 4 == 2`: a fill byte, a page count `n` and a u16 `m`: `n * 4096 + m % 4096` copies of it
//!   (up to about 1 MiB, to cross the 128 KiB single-argument limit);
//! - `k % 4 == 3`: a [`DICT`] entry followed by a literal (e.g. `/bin/` + fuzz bytes).
//!
//! Options: bits 0-1 backend (`SpawnBackend::ALL[b % 3]`), bit 2 spawn when safe, bit 3 go
//! through an `Executor` (else `direct`), bit 4 `discard_output` on the executor route; bit 5
//! switches to command mode: the rest of the input is a `Command`'s options ([`super::command`]);
//! bits 5 and 7 together to PATH mode: a `Command` whose `PATH` varies ([`super::path_search`]).

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use napix_executor::direct::Prepared;
use napix_executor::{Executor, SpawnBackend, SpawnError};

use super::input::{Bytes, push_blob};

/// Interesting arguments and programs.
pub const DICT: &[&[u8]] = &[
    b"",
    b"/",
    b"/tmp",
    b"/etc/passwd",
    b"/dev/null",
    b"/bin/sh",
    b"sh",
    b"true",
    b"false",
    b"echo",
    b"/bin/true",
    b"/usr/bin/echo",
    b"/nonexistent/program",
    b"no-such-program-napix",
    b"/etc/passwd/x",
    b"./",
    b"..",
    b".",
    b"bin/sh",
    b"\xff\xfe\x80",
    b"a\0b",
    b"/proc/self/exe",
    b"-c",
    b"//bin//false",
    b"/bin/",
    b"%s%n",
    b"tmp",
    b"-n",
    b"hello",
    b"/bin/../bin/true",
    b"/dev/null/x",
    b"/root",
];

/// The largest argument the kernel takes (`MAX_ARG_STRLEN`, 32 pages), terminating NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// What one input decodes to.
#[derive(Debug, Clone)]
pub struct Request {
    pub options: u8,
    pub args: Vec<Vec<u8>>,
}

impl Request {
    pub fn backend(&self) -> SpawnBackend {
        super::backend(SpawnBackend::ALL[usize::from(self.options & 3) % 3])
    }
    pub fn spawn_when_safe(&self) -> bool {
        self.options & 4 != 0
    }
    pub fn via_executor(&self) -> bool {
        self.options & 8 != 0
    }
    pub fn discard_output(&self) -> bool {
        self.options & 16 != 0
    }
}

pub fn decode(data: &[u8]) -> Request {
    let mut b = Bytes::new(data);
    let options = b.u8();
    let argc = b.u8() % 9;
    let mut args = Vec::with_capacity(usize::from(argc));
    for _ in 0..argc {
        let kind = b.u8();
        let arg = match kind % 4 {
            0 => b.blob().to_vec(),
            1 => DICT[usize::from(b.u8()) % DICT.len()].to_vec(),
            2 => {
                let fill = b.u8();
                let pages = usize::from(b.u8());
                let extra = usize::from(b.u16() % 4096);
                vec![fill; pages * 4096 + extra]
            }
            _ => {
                let mut v = DICT[usize::from(b.u8()) % DICT.len()].to_vec();
                v.extend_from_slice(b.blob());
                v
            }
        };
        args.push(arg);
    }
    Request { options, args }
}

/// One argument for [`encode`].
pub enum Arg<'a> {
    Lit(&'a [u8]),
    Dict(&'a [u8]),
    Fill { byte: u8, len: usize },
    DictThen(&'a [u8], &'a [u8]),
}

/// The bytes that [`decode`] turns into `options` and `args` (for the seed corpus).
pub fn encode(options: u8, args: &[Arg<'_>]) -> Vec<u8> {
    let dict = |entry: &[u8]| {
        DICT.iter()
            .position(|d| *d == entry)
            .unwrap_or_else(|| panic!("{:?} is not in DICT", OsStr::from_bytes(entry)))
            as u8
    };
    let mut out = vec![options, args.len() as u8];
    for arg in args {
        match arg {
            Arg::Lit(b) => {
                out.push(0);
                push_blob(&mut out, b);
            }
            Arg::Dict(d) => out.extend_from_slice(&[1, dict(d)]),
            Arg::Fill { byte, len } => {
                out.extend_from_slice(&[2, *byte, (len / 4096) as u8]);
                out.extend_from_slice(&((len % 4096) as u16).to_le_bytes());
            }
            Arg::DictThen(d, tail) => {
                out.extend_from_slice(&[3, dict(d)]);
                push_blob(&mut out, tail);
            }
        }
    }
    out
}

/// What the oracle expects `Prepared::new` to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Empty,
    Nul(usize),
    NotFound,
    Denied,
    Accepted,
}

/// What one input did (for statistics).
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub accepted: bool,
    pub spawned: bool,
    pub spawn_failed: bool,
}

pub fn run(data: &[u8]) -> Outcome {
    if let Some(&options) = data.first()
        && options & 0xa0 == 0xa0
    {
        return super::path_search::run(options, &mut Bytes::new(&data[1..]));
    }
    if let Some(&options) = data.first()
        && options & 32 != 0
    {
        return super::command::run(options, &mut Bytes::new(&data[1..]));
    }
    let req = decode(data);
    let args: Vec<OsString> = req
        .args
        .iter()
        .map(|a| OsString::from_vec(a.clone()))
        .collect();
    let result = Prepared::new(&args);
    let verdict = oracle(&args);
    let mut outcome = Outcome::default();
    match &result {
        Ok(prepared) => {
            assert_eq!(
                verdict,
                Verdict::Accepted,
                "accepted {:?} but expected {verdict:?}",
                short(&args)
            );
            assert!(!format!("{prepared:?}").is_empty());
            outcome.accepted = true;
        }
        Err(e) => {
            check_error(e, &args);
            let matches = matches!(
                (verdict, e),
                (Verdict::Empty, SpawnError::EmptyCommand)
                    | (Verdict::NotFound, SpawnError::NotFound { .. })
                    // The PATH search keeps the telling errno, as execvp (a name too long, an
                    // entry that is a file or a symlink loop).
                    | (
                        Verdict::NotFound,
                        SpawnError::System {
                            errno: libc::ENAMETOOLONG | libc::ENOTDIR | libc::ELOOP,
                            ..
                        }
                    )
                    | (Verdict::Denied, SpawnError::PermissionDenied { .. })
            ) || matches!((verdict, e), (Verdict::Nul(i), SpawnError::NulByte { index, .. }) if i == *index);
            assert!(
                matches,
                "{:?}: got {e:?}, oracle expected {verdict:?}",
                short(&args)
            );
            if req.via_executor() {
                // create_process validates on the caller's thread the same way: same error, and
                // nothing reaches the executor thread.
                let ex = executor(req.backend());
                let got = ex.create_process(&args, req.discard_output());
                match got {
                    Err(got) => assert_eq!(&got, e, "executor and Prepared::new disagree"),
                    Ok(h) => panic!(
                        "create_process accepted {:?} (pid {}) that Prepared::new rejected",
                        short(&args),
                        h.pid()
                    ),
                }
            }
        }
    }
    if let Ok(prepared) = result
        && req.spawn_when_safe()
    {
        match spawnable(&args) {
            Spawnable::No => {}
            Spawnable::Harmless { code } => {
                outcome.spawned = true;
                let _guard = super::exclusive();
                spawn_harmless(&req, &args, prepared, code, &mut outcome);
            }
            Spawnable::CannotExec => {
                outcome.spawned = true;
                outcome.spawn_failed = true;
                let _guard = super::exclusive();
                spawn_must_fail(&req, &args, prepared);
            }
        }
    }
    outcome
}

/// The arguments, cut short for messages (a 1 MiB argument would drown the report).
fn short(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if s.len() > 80 {
                // `str::floor_char_boundary` would do, but it is newer than the crate's rust-version.
                let cut = (0..=80).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                format!("{}...({} bytes)", &s[..cut], a.len())
            } else {
                s.into_owned()
            }
        })
        .collect()
}

fn oracle(args: &[OsString]) -> Verdict {
    let Some(program) = args.first() else {
        return Verdict::Empty;
    };
    if let Some(i) = args.iter().position(|a| a.as_bytes().contains(&0)) {
        return Verdict::Nul(i);
    }
    let name = program.as_bytes();
    if name.is_empty() {
        return Verdict::NotFound;
    }
    if name.contains(&b'/') {
        return Verdict::Accepted;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    let mut denied = false;
    for dir in path.as_bytes().split(|&c| c == b':') {
        let mut candidate = if dir.is_empty() {
            b"./".to_vec()
        } else {
            let mut d = dir.to_vec();
            d.push(b'/');
            d
        };
        candidate.extend_from_slice(name);
        let candidate = PathBuf::from(OsString::from_vec(candidate));
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() && executable(&candidate) => return Verdict::Accepted,
            Ok(_) => denied = true,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        Verdict::Denied
    } else {
        Verdict::NotFound
    }
}

/// `access(path, X_OK) == 0`.
fn executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// Invariants of every rejection: a `Display` naming the program, an `io::Error` that keeps the
/// kind and the error itself, errno and kind as the variant says.
pub fn check_error(e: &SpawnError, args: &[OsString]) {
    let msg = e.to_string();
    assert!(!msg.is_empty(), "empty Display for {e:?}");
    assert!(!format!("{e:?}").is_empty());
    let io_err = io::Error::from(e.clone());
    assert_eq!(io_err.kind(), e.kind(), "io::Error kind of {e:?}");
    let inner = io_err
        .get_ref()
        .and_then(|i| i.downcast_ref::<SpawnError>())
        .expect("io::Error keeps the SpawnError");
    assert_eq!(inner, e);
    if let Some(program) = e.program() {
        assert_eq!(Some(program), args.first(), "{e:?} names another program");
        // As given when it prints plainly; escaped as `Debug` does when it holds control
        // characters or bytes that are not UTF-8 (never raw in a message); named when empty.
        let shown = match program.to_str() {
            Some("") => "empty program name".to_owned(),
            Some(plain) if !plain.chars().any(char::is_control) => plain.to_owned(),
            _ => format!("{program:?}"),
        };
        assert!(msg.contains(&shown), "{msg:?} does not name the program");
        assert!(
            !msg.contains('\0') && !msg.contains('\x1b'),
            "{msg:?} carries a raw NUL or escape"
        );
    }
    match e {
        SpawnError::EmptyCommand => {
            assert!(args.is_empty());
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(e.program(), None);
        }
        SpawnError::NulByte { index, .. } => {
            assert!(args[*index].as_bytes().contains(&0));
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        SpawnError::NotFound { .. } => {
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        }
        SpawnError::PermissionDenied { .. } => {
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        }
        // The kernel's errno is kept, and its kind (ENOTDIR: NotADirectory, as std says).
        SpawnError::System { errno, .. } => {
            assert_eq!(e.raw_os_error(), Some(*errno));
            assert_eq!(e.kind(), io::Error::from_raw_os_error(*errno).kind());
        }
        _ => {}
    }
}

enum Spawnable {
    /// Do not run it (an executable we know nothing about).
    No,
    /// `true`, `false` or `echo`: exits with `code`.
    Harmless { code: i32 },
    /// Not executable at all: any spawn must fail.
    CannotExec,
}

fn spawnable(args: &[OsString]) -> Spawnable {
    const HARMLESS: [(&str, i32); 3] = [("true", 0), ("false", 1), ("echo", 0)];
    let program = args[0].as_bytes();
    if !program.contains(&b'/') {
        return HARMLESS
            .iter()
            .find(|(name, _)| name.as_bytes() == program)
            .map_or(Spawnable::No, |&(_, code)| Spawnable::Harmless { code });
    }
    let Ok(real) = std::fs::canonicalize(OsStr::from_bytes(program)) else {
        // A path that does not resolve (missing component, ENOTDIR, ELOOP, too long) cannot be
        // executed either.
        return Spawnable::CannotExec;
    };
    for (name, code) in HARMLESS {
        if std::fs::canonicalize(Path::new("/bin").join(name)).is_ok_and(|p| p == real) {
            return Spawnable::Harmless { code };
        }
    }
    match std::fs::metadata(&real) {
        Ok(m) if m.is_file() && executable(&real) => Spawnable::No,
        _ => Spawnable::CannotExec,
    }
}

/// The executor of each backend for the executor route, started once and kept.
pub fn executor(backend: SpawnBackend) -> Arc<Executor> {
    static EXECUTORS: OnceLock<Vec<Arc<Executor>>> = OnceLock::new();
    let all = EXECUTORS.get_or_init(|| {
        SpawnBackend::ALL
            .iter()
            .map(|&b| {
                let ex = Arc::new(
                    Executor::builder()
                        .backend(b)
                        .kill_grace(Duration::from_millis(100))
                        .build()
                        .expect("build executor"),
                );
                let for_loop = Arc::clone(&ex);
                std::thread::Builder::new()
                    .name(format!("fuzz-request-{}", b.name()))
                    .spawn(move || for_loop.run())
                    .expect("spawn run() thread");
                // One spawn first: the Vfork backend keeps three descriptors for the life of the
                // executor once it spawned, which a descriptor count must not blame on a later
                // request.
                let warm = ex
                    .create_process(&["true"], true)
                    .expect("the first spawn of an executor");
                warm.wait_timeout(WAIT_LIMIT).expect("true exits");
                ex
            })
            .collect()
    });
    let i = SpawnBackend::ALL
        .iter()
        .position(|&b| b == backend)
        .unwrap();
    Arc::clone(&all[i])
}

/// Spawns through `direct` on a thread of its own: `direct` keeps a `/dev/null` descriptor per
/// thread, and joining the thread closes it, so the process's fd count is unchanged afterwards.
fn spawn_direct(
    prepared: Prepared,
    backend: SpawnBackend,
) -> Result<io::Result<ExitStatus>, SpawnError> {
    std::thread::spawn(move || prepared.spawn(backend).map(|child| child.wait()))
        .join()
        .expect("direct spawn thread panicked")
}

const WAIT_LIMIT: Duration = Duration::from_secs(20);

fn spawn_harmless(
    req: &Request,
    args: &[OsString],
    prepared: Prepared,
    code: i32,
    outcome: &mut Outcome,
) {
    let longest = args.iter().map(|a| a.len() + 1).max().unwrap_or(0);
    let total: usize = args.iter().map(|a| a.len() + 1 + 8).sum();
    let must_e2big = longest > MAX_ARG_STRLEN;
    let may_e2big = must_e2big || total > 1 << 20;
    let result: Result<ExitStatus, SpawnError> = if req.via_executor() {
        let ex = executor(req.backend());
        ex.create_process(args, req.discard_output()).map(|h| {
            if let Some(mut out) = h.take_stdout() {
                let mut got = Vec::new();
                out.read_to_end(&mut got).expect("read stdout");
                if let Some(want) = echo_output(args) {
                    assert_eq!(got, want, "echo output for {:?}", short(args));
                }
            } else {
                assert!(
                    req.discard_output(),
                    "no stdout pipe without discard_output"
                );
            }
            let status = h
                .wait_timeout(WAIT_LIMIT)
                .unwrap_or_else(|| panic!("{:?} did not exit", short(args)));
            assert!(
                !ex.running().iter().any(|p| p.pid == h.pid()),
                "pid {} still in running() after its status",
                h.pid()
            );
            status
        })
    } else {
        spawn_direct(prepared, req.backend())
            .map(|waited| waited.expect("DirectChild::wait of a harmless child"))
    };
    match result {
        Ok(status) => {
            assert!(
                !must_e2big,
                "{:?}: an argument of {longest} bytes exceeds MAX_ARG_STRLEN, yet it ran",
                short(args)
            );
            assert_eq!(status.code(), Some(code), "{:?}: {status:?}", short(args));
        }
        Err(SpawnError::ArgumentListTooLong { ref program }) if may_e2big => {
            assert_eq!(program, &args[0]);
            outcome.spawn_failed = true;
        }
        Err(e) => panic!(
            "{:?} via {:?}: {e:?} ({e})",
            short(args),
            req.backend().name()
        ),
    }
}

/// What GNU `echo` (coreutils, as `/usr/bin/echo`) prints for `args[1..]`, byte for byte:
/// leading arguments made only of `-` and the letters `n`, `e`, `E` are options (`-n`: no
/// newline; `-e`: escapes, then `None` if a word holds a backslash); a lone `--help` or
/// `--version` is `None`; every other word (empty, whitespace, non-UTF-8, `-`, `--`) is printed
/// as it is, words joined by one space.
fn echo_output(args: &[OsString]) -> Option<Vec<u8>> {
    if !args[0].as_bytes().ends_with(b"echo") || std::env::var_os("POSIXLY_CORRECT").is_some() {
        return None;
    }
    let mut words = &args[1..];
    if words.len() == 1 && matches!(words[0].as_bytes(), b"--help" | b"--version") {
        return None;
    }
    let (mut newline, mut escapes) = (true, false);
    while let Some(first) = words.first() {
        let w = first.as_bytes();
        let is_option = w.len() >= 2 && w[0] == b'-' && w[1..].iter().all(|c| b"neE".contains(c));
        if !is_option {
            break;
        }
        for c in &w[1..] {
            match c {
                b'n' => newline = false,
                b'e' => escapes = true,
                _ => escapes = false,
            }
        }
        words = &words[1..];
    }
    if escapes && words.iter().any(|w| w.as_bytes().contains(&b'\\')) {
        return None;
    }
    let mut out = words
        .iter()
        .map(|w| w.as_bytes())
        .collect::<Vec<_>>()
        .join(&b' ');
    if newline {
        out.push(b'\n');
    }
    Some(out)
}

fn spawn_must_fail(req: &Request, args: &[OsString], prepared: Prepared) {
    // Built before the count: the executors' own descriptors are not the spawn's.
    let ex = req.via_executor().then(|| executor(req.backend()));
    let fds_before = super::procfs::fd_targets();
    let result = if let Some(ex) = ex {
        ex.create_process(args, req.discard_output()).map(|h| {
            let status = h.wait_timeout(WAIT_LIMIT);
            (h.pid(), status)
        })
    } else {
        spawn_direct(prepared, req.backend()).map(|waited| (0, waited.ok()))
    };
    // New descriptors only, by number and target: one the executor thread closes meanwhile
    // (the pidfd of an earlier case's child, released just after its status) is not this
    // spawn's, and a number reused by a leak has another target.
    let leaked = super::procfs::new_fds(&fds_before, std::time::Duration::from_secs(2));
    assert!(
        leaked.is_empty(),
        "{:?}: a failed spawn left descriptors: {leaked:?} (before: {fds_before:?})",
        short(args),
    );
    match result {
        Err(e) => check_error(&e, args),
        Ok((pid, status)) => panic!(
            "{:?} is not executable, yet {} gave a process (pid {pid}, status {:?}, signal {:?})",
            short(args),
            req.backend().name(),
            status,
            status.and_then(|s| s.signal())
        ),
    }
}
