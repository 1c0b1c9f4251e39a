//! Target `request`, command mode (option bit 5): arbitrary bytes -> a `Command` with any mix of
//! environment changes, working directory, stdin, merged stderr, extra descriptors, umask and
//! rlimits -> `Executor::spawn` of a shell that reports what it got.
//!
//! Invariants: the outcome is exactly the one an independent oracle predicts, in the order the
//! library documents (env, cwd, extra fd numbers, stdio kinds, umask, rlimits, then the backend's
//! unsupported options): either that typed error, or a child that sees exactly what was asked
//! (its initial environment from `/proc/PID/environ`, its cwd, umask, `RLIMIT_NOFILE`, its open
//! descriptors, its stdin bytes); never a panic or a hang; afterwards no descriptor of ours more
//! than before and no child of ours left.
//!
//! Layout after the option byte: an env op count (% 5) and per op a kind (set, remove, clear),
//! a key and a value from [`KEYS`]/[`VALUES`]; a cwd index into [`DIRS`] (0: none); a stdin kind
//! (none, null, bytes = a blob, merge = invalid) and a stderr kind (none, merged); an extra fd
//! count (% 3) and per fd a target byte (% 8); a umask byte (0: none; else `b * 5`, may exceed
//! 0o777); an rlimit byte (0: none; else soft = b % 16 * 64, hard = b / 16 * 64).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use napix_executor::{
    Command, CommandOption, Resource, SpawnBackend, SpawnError, SpawnStage, Stdio,
};

use super::input::Bytes;

pub const KEYS: &[&[u8]] = &[
    b"NAPIX_F1",
    b"NAPIX_F2",
    b"PATH",
    b"HOME",
    b"",
    b"A=B",
    b"K\0",
];
pub const VALUES: &[&[u8]] = &[b"v", b"", b"two words", b"x=y", b"a\0b", b"/nonexistent"];
pub const DIRS: &[&str] = &[
    "",
    "/",
    "/tmp",
    "/nonexistent/napix",
    "/etc/passwd",
    "/proc",
];

#[derive(Debug, Clone)]
enum EnvOp {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Clear,
}

#[derive(Debug, Clone)]
pub struct Spec {
    backend: SpawnBackend,
    env: Vec<EnvOp>,
    cwd: &'static str,
    stdin: u8,
    stdin_bytes: Vec<u8>,
    merge: bool,
    fds: Vec<i32>,
    umask: Option<u32>,
    rlimit: Option<(u64, u64)>,
}

pub fn decode(options: u8, b: &mut Bytes<'_>) -> Spec {
    let backend = super::backend(SpawnBackend::ALL[usize::from(options & 3) % 3]);
    let mut env = Vec::new();
    for _ in 0..b.u8() % 5 {
        let kind = b.u8() % 3;
        let key = KEYS[usize::from(b.u8()) % KEYS.len()].to_vec();
        let value = VALUES[usize::from(b.u8()) % VALUES.len()].to_vec();
        env.push(match kind {
            0 => EnvOp::Set(key, value),
            1 => EnvOp::Remove(key),
            _ => EnvOp::Clear,
        });
    }
    let cwd = DIRS[usize::from(b.u8()) % DIRS.len()];
    let stdin = b.u8() % 4;
    let stdin_bytes = if stdin == 2 {
        b.blob().to_vec()
    } else {
        Vec::new()
    };
    let merge = b.u8() % 2 == 1;
    let fds = (0..b.u8() % 3).map(|_| i32::from(b.u8() % 8)).collect();
    let umask = match b.u8() {
        0 => None,
        m => Some(u32::from(m) * 5),
    };
    let rlimit = match b.u8() {
        0 => None,
        r => Some((u64::from(r % 16) * 64, u64::from(r / 16) * 64)),
    };
    Spec {
        backend,
        env,
        cwd,
        stdin,
        stdin_bytes,
        merge,
        fds,
        umask,
        rlimit,
    }
}

// Absolute paths: the command may set PATH to anything.
const SCRIPT: &str = "/bin/tr '\\0' '\\n' < /proc/$$/environ; echo @@; /bin/readlink /proc/$$/cwd; \
    echo @@; /bin/grep Umask /proc/$$/status; echo @@; /bin/grep 'Max open files' /proc/$$/limits; \
    echo @@; /bin/ls /proc/$$/fd; echo @@; /bin/cat";

fn build(spec: &Spec) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", SCRIPT]).stdout(Stdio::piped());
    for op in &spec.env {
        match op {
            EnvOp::Set(k, v) => cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v)),
            EnvOp::Remove(k) => cmd.env_remove(OsStr::from_bytes(k)),
            EnvOp::Clear => cmd.env_clear(),
        };
    }
    if !spec.cwd.is_empty() {
        cmd.current_dir(spec.cwd);
    }
    match spec.stdin {
        1 => cmd.stdin(Stdio::null()),
        2 => cmd.stdin(Stdio::from_bytes(spec.stdin_bytes.clone())),
        3 => cmd.stdin(Stdio::merge_stdout()),
        _ => &mut cmd,
    };
    if spec.merge {
        cmd.stderr(Stdio::merge_stdout());
    }
    for &n in &spec.fds {
        cmd.fd(n, std::fs::File::open("/dev/null").expect("open /dev/null"));
    }
    if let Some(m) = spec.umask {
        cmd.umask(m);
    }
    if let Some((soft, hard)) = spec.rlimit {
        cmd.rlimit(Resource::Nofile, soft, hard);
    }
    cmd
}

/// The child's environment as the oracle sees it, or the first bad key/value.
fn expected_env(spec: &Spec) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, CommandOption> {
    let mut changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    let mut clear = false;
    for op in &spec.env {
        match op {
            EnvOp::Set(k, v) => {
                changes.insert(k.clone(), Some(v.clone()));
            }
            EnvOp::Remove(k) => {
                changes.insert(k.clone(), None);
            }
            EnvOp::Clear => {
                changes.clear();
                clear = true;
            }
        }
    }
    for (k, v) in &changes {
        let bad_key = k.is_empty() || k.contains(&b'=') || k.contains(&0);
        if bad_key || v.as_ref().is_some_and(|v| v.contains(&0)) {
            return Err(CommandOption::Env(OsStr::from_bytes(k).to_os_string()));
        }
    }
    let mut env: BTreeMap<Vec<u8>, Vec<u8>> = if clear {
        BTreeMap::new()
    } else {
        std::env::vars_os()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    for (k, v) in changes {
        match v {
            Some(v) => env.insert(k, v),
            None => env.remove(&k),
        };
    }
    Ok(env)
}

/// The error the oracle expects, checked in the library's documented order.
fn expected_error(spec: &Spec) -> Option<(CommandOption, Option<SpawnStage>)> {
    if let Err(option) = expected_env(spec) {
        return Some((option, None));
    }
    if !spec.cwd.is_empty() && !std::path::Path::new(spec.cwd).is_dir() {
        return Some((CommandOption::CurrentDir, Some(SpawnStage::Prepare)));
    }
    if let Some(&low) = spec.fds.iter().find(|&&n| n < 3) {
        return Some((CommandOption::Fd(low), None));
    }
    let mut sorted = spec.fds.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Some((CommandOption::Fd(w[0]), None));
    }
    if spec.stdin == 3 {
        return Some((CommandOption::Stdin, None));
    }
    if spec.umask.is_some_and(|m| m > 0o777) {
        return Some((CommandOption::Umask, None));
    }
    if let Some((soft, hard)) = spec.rlimit
        && soft > hard
    {
        return Some((CommandOption::Rlimit(Resource::Nofile), None));
    }
    None
}

/// Whether the child's limit (64 per step) leaves the shell enough descriptors to report.
fn too_few_files(spec: &Spec) -> bool {
    spec.rlimit.is_some_and(|(soft, _)| soft < 64)
}

pub fn run(options: u8, b: &mut Bytes<'_>) -> super::request::Outcome {
    let spec = decode(options, b);
    let mut outcome = super::request::Outcome::default();
    let ex = super::request::executor(spec.backend);
    let _guard = super::exclusive();
    let fds_before = super::procfs::fd_targets();
    {
        let cmd = build(&spec);
        let result = ex.spawn(&cmd);
        drop(cmd);
        let unsupported = spec.backend == SpawnBackend::PosixSpawn
            && (spec.umask.is_some() || spec.rlimit.is_some());
        match (expected_error(&spec), result) {
            (Some((option, stage)), Err(e)) => {
                outcome.spawn_failed = true;
                let ok = match (&e, stage) {
                    (SpawnError::InvalidOption { option: o, .. }, None) => *o == option,
                    (
                        SpawnError::OptionFailed {
                            option: o,
                            stage: s,
                            ..
                        },
                        Some(st),
                    ) => *o == option && *s == st,
                    _ => false,
                };
                assert!(ok, "{spec:?}: expected {option:?} at {stage:?}, got {e:?}");
                assert!(!e.to_string().is_empty());
            }
            (None, Err(e)) if unsupported => {
                assert!(
                    matches!(
                        e,
                        SpawnError::UnsupportedOption {
                            backend: "posix_spawn",
                            ..
                        }
                    ),
                    "{spec:?}: {e:?}"
                );
                outcome.spawn_failed = true;
            }
            (
                None,
                Err(SpawnError::OptionFailed {
                    stage: SpawnStage::Setrlimit,
                    ..
                }),
            ) => {
                // A hard limit above ours can only be raised with privilege: tests run as root.
                panic!("{spec:?}: setrlimit refused");
            }
            (expected, Err(e)) => panic!("{spec:?}: expected {expected:?}, got {e:?}"),
            (Some(expected), Ok(h)) => {
                let status = h.kill();
                panic!("{spec:?}: expected {expected:?}, but it spawned ({status:?})");
            }
            (None, Ok(h)) if unsupported => {
                h.kill();
                panic!("{spec:?}: posix_spawn applied an option it has no step for");
            }
            (None, Ok(h)) => {
                outcome.accepted = true;
                outcome.spawned = true;
                let mut out = Vec::new();
                let mut pipe = h.take_stdout().expect("stdout piped");
                let reader = std::thread::spawn(move || {
                    let _ = pipe.read_to_end(&mut out);
                    out
                });
                let status = h.wait_timeout(Duration::from_secs(20));
                let out = reader.join().expect("reader");
                assert!(status.is_some(), "{spec:?}: the shell did not exit");
                if !too_few_files(&spec) {
                    check_report(&spec, &out);
                }
            }
        }
    }
    super::procfs::assert_settled(&spec, &fds_before);
    outcome
}

fn check_report(spec: &Spec, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    let parts: Vec<&str> = text.split("@@\n").collect();
    assert!(parts.len() >= 6, "{spec:?}: report {text:?}");
    let want_env = expected_env(spec).expect("valid env");
    let got_env: BTreeMap<Vec<u8>, Vec<u8>> = out
        .split(|&b| b == b'\n')
        .take_while(|l| *l != b"@@")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let eq = l.iter().position(|&b| b == b'=').unwrap_or(l.len());
            (
                l[..eq].to_vec(),
                l.get(eq + 1..).unwrap_or_default().to_vec(),
            )
        })
        .collect();
    // Values holding a newline would split; none of ours do.
    assert_eq!(got_env, want_env, "{spec:?}: environment");
    let here = std::env::current_dir().expect("cwd");
    let want_dir = if spec.cwd.is_empty() {
        here
    } else {
        std::path::Path::new(spec.cwd).canonicalize().expect("dir")
    };
    assert_eq!(parts[1].trim(), want_dir.to_string_lossy(), "{spec:?}: cwd");
    if let Some(m) = spec.umask {
        assert_eq!(parts[2].trim(), format!("Umask:\t{m:04o}"), "{spec:?}");
    }
    if let Some((soft, hard)) = spec.rlimit {
        let cols: Vec<&str> = parts[3].split_whitespace().collect();
        let show = |n: u64| n.to_string();
        assert_eq!(&cols[3..5], [show(soft), show(hard)], "{spec:?}: limits");
    }
    let mut fds: Vec<i32> = parts[4]
        .split_whitespace()
        .map(|n| n.parse().expect("fd number"))
        .collect();
    fds.sort_unstable();
    let mut want: Vec<i32> = vec![0, 1, 2];
    want.extend(&spec.fds);
    want.sort_unstable();
    assert_eq!(fds, want, "{spec:?}: the child's descriptors");
    let want_stdin: &[u8] = if spec.stdin == 2 {
        &spec.stdin_bytes
    } else {
        b""
    };
    // After the fifth separator, in the raw bytes (the lossy text may differ in length).
    let mut rest = out;
    for _ in 0..5 {
        let at = rest
            .windows(3)
            .position(|w| w == b"@@\n")
            .expect("five separators");
        rest = &rest[at + 3..];
    }
    let got_stdin = rest;
    assert!(
        got_stdin == want_stdin,
        "{spec:?}: stdin gave {:?}",
        OsString::from(OsStr::from_bytes(got_stdin))
    );
}

pub fn encode_spec(backend: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![32 | backend];
    v.extend_from_slice(body);
    v
}
