//! The same random command through `std::process::Command` and through the executor on every
//! backend, both child-watch modes and both spawn sites: the same status, stdout and stderr
//! bytes (the child reports its argv, arg0 included, working directory, umask, stdin and
//! environment), and for a failure the same `io::ErrorKind` and errno (issue 21).
//!
//! A case is a byte string decoded by [`decode`] (`fuzz_logic/input.rs`'s reader: any bytes are
//! a case), drawn by a seeded proptest runner: the seed is printed, `NAPIX_FUZZ_SEED` replays
//! one, `NAPIX_FUZZ_CASES` sets the count (tests/common/seeded.rs). The deliberate differences
//! from std, written down in the crate docs, are normalized in one place: [`expected`].

mod common;
#[allow(dead_code)]
#[path = "fuzz_logic/input.rs"]
mod input;

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::Running;
use common::files::{TempDir, write_script};
use common::seeded::{random_cases, seeded_runner};
use input::Bytes;
use napix_executor::{
    ChildWatch, Command, CommandOption, Executor, SpawnBackend, SpawnError, SpawnSite, Stdio,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

const LIMIT: Duration = Duration::from_secs(20);

/// Where the child's report puts its environment (after everything else on stdout).
const ENV_MARK: &[u8] = b"\n==environ==\n";

/// The child's report, then its end (`exit N` or `kill -N $$`). Only builtins and absolute
/// paths: the case may set any `PATH`.
fn report(end: &str) -> String {
    format!(
        "/bin/cat /proc/$$/cmdline; printf '\\n'; pwd -P; umask; /bin/cat; echo err >&2; \
         printf '\\n==environ==\\n'; /bin/cat /proc/$$/environ; {end}"
    )
}

/// The programs a case runs. `napix-diff-prog` is a script in the fixture directory and in its
/// `bin/` (reached through `PATH` or `./`).
const PROGRAMS: &[&str] = &[
    "sh",
    "/bin/sh",
    "true",
    "false",
    "napix-diff-prog",
    "./napix-diff-prog",
    "bin/napix-diff-prog",
    "napix-diff-none",
    "/etc/passwd",
    "/tmp",
    "",
    "/nonexistent/napix",
];

/// `PATH` values a case may set (`@` is the fixture directory).
const PATHS: &[&str] = &[
    "",
    ".",
    "bin",
    "bin/",
    "/bin",
    "/usr/bin:/bin",
    "/nonexistent:/bin",
    "@/bin",
    "@/bin/",
    "nowhere",
    ":bin",
    "/etc/passwd:/bin",
];

/// Working directories (`@` the fixture directory).
const CWDS: &[&str] = &[
    "/",
    "@",
    "@/bin",
    "/tmp",
    "/nonexistent/napix",
    "/etc/passwd",
    "a\0b",
    ".",
];

/// Variable names (empty and `=` are refused here, not by std: see [`expected`]).
const KEYS: &[&str] = &[
    "NAPIX_A", "NAPIX_B", "PATH", "HOME", "LANG", "", "A=B", "K\0",
];

#[derive(Debug, Clone)]
struct Spec {
    program: &'static str,
    arg0: Option<Vec<u8>>,
    args: Vec<Vec<u8>>,
    env_clear: bool,
    /// Set (`Some`) or removed, in order.
    env: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    cwd: Option<&'static str>,
    /// `None`: the default (`/dev/null` here; std is told so explicitly).
    stdin: Option<Vec<u8>>,
    umask: Option<u32>,
    /// The report's end.
    end: String,
}

/// A byte string of one of a few sizes: short random bytes (non-UTF-8, sometimes a NUL), or
/// long fills around `MAX_ARG_STRLEN` (131,072).
fn blob(b: &mut Bytes<'_>) -> Vec<u8> {
    match b.u8() % 16 {
        0 => vec![b'x'; 60_000],
        1 => vec![b'y'; 131_071],
        2 => vec![b'z'; 131_072 + usize::from(b.u8())],
        _ => {
            let len = usize::from(b.u8() % 24);
            let allow_nul = b.u8().is_multiple_of(8);
            (0..len)
                .map(|_| match b.u8() {
                    0 if !allow_nul => 1,
                    byte => byte,
                })
                .collect()
        }
    }
}

fn fixture_path(spelled: &str) -> Vec<u8> {
    match spelled.strip_prefix('@') {
        Some(rest) => {
            let mut v = fixture().as_os_str().as_bytes().to_vec();
            v.extend_from_slice(rest.as_bytes());
            v
        }
        None => spelled.as_bytes().to_vec(),
    }
}

fn decode(data: &[u8]) -> Spec {
    let mut b = Bytes::new(data);
    // Half the cases run a reporting shell: most of what is compared needs a child that ran.
    let pick = b.u8();
    let program = if pick.is_multiple_of(2) {
        PROGRAMS[usize::from(pick / 2) % 2]
    } else {
        PROGRAMS[usize::from(pick / 2) % PROGRAMS.len()]
    };
    let flags = b.u8();
    let arg0 = (flags & 1 != 0).then(|| blob(&mut b));
    let mut args = Vec::new();
    // Sometimes enough arguments to pass ARG_MAX (a quarter of the 8 MiB stack) together.
    if flags & 2 != 0 && b.u8().is_multiple_of(4) {
        args.extend((0..20).map(|_| vec![b'w'; 120_000]));
    }
    for _ in 0..b.u8() % 5 {
        args.push(blob(&mut b));
    }
    let env_clear = flags & 4 != 0 && b.u8().is_multiple_of(3);
    let mut env = Vec::new();
    for _ in 0..b.u8() % 4 {
        let key = KEYS[usize::from(b.u8()) % KEYS.len()];
        let value = match b.u8() % 5 {
            0 => None,
            1 => Some(fixture_path(PATHS[usize::from(b.u8()) % PATHS.len()])),
            _ => Some(blob(&mut b)),
        };
        // Keys drawn rarely among the odd ones: most cases should get past the environment.
        if (key.is_empty() || key.contains(['=', '\0'])) && !b.u8().is_multiple_of(4) {
            continue;
        }
        env.push((key.as_bytes().to_vec(), value));
    }
    let cwd = match b.u8() % 16 {
        n if usize::from(n) < CWDS.len() => Some(CWDS[usize::from(n)]),
        _ => None,
    };
    let stdin = match b.u8() % 4 {
        0 => Some(blob(&mut b)),
        1 => Some(vec![b's'; 4096 + usize::from(b.u16() % 8192)]),
        _ => None,
    };
    let umask = (flags & 8 != 0).then(|| u32::from(b.u16()) & 0o777);
    let end = match b.u8() % 6 {
        0 => "kill -TERM $$".to_string(),
        1 => "kill -KILL $$".to_string(),
        n => format!("exit {}", (u32::from(n) * 61) % 256),
    };
    Spec {
        program,
        arg0,
        args,
        env_clear,
        env,
        cwd,
        stdin,
        umask,
        end,
    }
}

/// The fixture: `napix-diff-prog` in the directory and in its `bin/`, scripts that report.
fn fixture() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = TempDir::new("diff-std");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir bin");
        write_script(&dir.path().join("napix-diff-prog"), &report("exit 5"));
        write_script(&dir.path().join("bin/napix-diff-prog"), &report("exit 6"));
        dir
    })
    .path()
}

impl Spec {
    fn sh_like(&self) -> bool {
        matches!(self.program, "sh" | "/bin/sh")
    }

    /// The whole argument list after `argv[0]`.
    fn all_args(&self) -> Vec<OsString> {
        let mut v = Vec::new();
        if self.sh_like() {
            v.push(OsString::from("-c"));
            v.push(OsString::from(report(&self.end)));
        }
        v.extend(self.args.iter().map(|a| OsString::from_vec(a.clone())));
        v
    }

    fn cwd(&self) -> Option<PathBuf> {
        self.cwd
            .map(|c| PathBuf::from(OsString::from_vec(fixture_path(c))))
    }

    fn env_changed(&self) -> bool {
        self.env_clear || !self.env.is_empty()
    }

    /// A key this crate refuses and std takes: empty, with `=`, or a NUL in a removed key
    /// (std refuses a NUL only in a key it sets).
    fn has_refused_key(&self) -> bool {
        self.env.iter().any(|(k, v)| {
            k.is_empty()
                || (k.contains(&b'=') && !k.contains(&0))
                || (v.is_none() && k.contains(&0))
        })
    }

    /// A `PATH` search in which glibc's `execvp` tries no entry: every one is `PATH_MAX` bytes
    /// or longer.
    fn no_path_entry_tried(&self) -> bool {
        if self.program.is_empty() || self.program.contains('/') {
            return false;
        }
        let mut path = if self.env_clear {
            None
        } else {
            std::env::var_os("PATH").map(OsString::into_vec)
        };
        for (k, v) in &self.env {
            if k == b"PATH" {
                path = v.clone();
            }
        }
        path.is_some_and(|p| p.split(|&b| b == b':').all(|e| e.len() >= 4096))
    }

    fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.program);
        if let Some(arg0) = &self.arg0 {
            cmd.arg0(OsStr::from_bytes(arg0));
        }
        cmd.args(self.all_args());
        if self.env_clear {
            cmd.env_clear();
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v)),
                None => cmd.env_remove(OsStr::from_bytes(k)),
            };
        }
        if let Some(dir) = self.cwd() {
            cmd.current_dir(dir);
        }
        // std's default stdin is inherited, ours /dev/null: std is told explicitly.
        cmd.stdin(if self.stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
        cmd.stdout(std::process::Stdio::piped());
        cmd.stderr(std::process::Stdio::piped());
        if let Some(mask) = self.umask {
            // SAFETY: umask is async-signal-safe and touches nothing but the child's mask.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        cmd
    }

    fn our_command(&self) -> Command {
        let mut cmd = Command::new(self.program);
        if let Some(arg0) = &self.arg0 {
            cmd.arg0(OsStr::from_bytes(arg0));
        }
        cmd.args(self.all_args());
        if self.env_clear {
            cmd.env_clear();
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v)),
                None => cmd.env_remove(OsStr::from_bytes(k)),
            };
        }
        if let Some(dir) = self.cwd() {
            cmd.current_dir(dir);
        }
        if let Some(bytes) = &self.stdin {
            cmd.stdin(Stdio::from_bytes(bytes.clone()));
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(mask) = self.umask {
            cmd.umask(mask);
        }
        cmd
    }
}

/// What a spawn gave: the raw wait status, stdout, stderr; or the error's kind and errno.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ran {
        status: i32,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    Failed(io::ErrorKind, Option<i32>),
}

fn run_std(spec: &Spec) -> Outcome {
    let mut child = match spec.std_command().spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.kind(), e.raw_os_error()),
    };
    let writer = child.stdin.take().map(|mut pipe| {
        let bytes = spec.stdin.clone().unwrap_or_default();
        // A child that does not read its stdin closes it: EPIPE is not a failure here.
        thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let out = child.wait_with_output().expect("std wait_with_output");
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    Outcome::Ran {
        status: out.status.into_raw(),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn run_ours(exec: &Arc<Executor>, spec: &Spec) -> Result<Outcome, SpawnError> {
    let cmd = Arc::new(spec.our_command());
    let handle = common::spawn_command(exec, &cmd)?;
    let stdout = handle.take_stdout().expect("piped stdout");
    let stderr = handle.take_stderr().expect("piped stderr");
    let err_reader = thread::spawn(move || common::read_all(stderr, LIMIT));
    let stdout = common::read_all(stdout, LIMIT);
    let stderr = err_reader.join().expect("stderr reader");
    let status = common::wait_for(&handle, LIMIT);
    Ok(Outcome::Ran {
        status: status.into_raw(),
        stdout,
        stderr,
    })
}

/// What the executor must answer, given std's answer: every deliberate difference (crate docs,
/// "Command options against std::process::Command") is here and nowhere else.
/// - stdin defaults to `/dev/null` (std inherits): handled when building std's command.
/// - An empty key, one with `=`, or a removed one with a NUL is refused (`InvalidInput`) before
///   anything else but NULs in the program and arguments; std passes `=value` / `A=B=value` on
///   and ignores the removal.
/// - A command that changes the environment gets the inherited variables in the parent's
///   order, then the set ones; std's are sorted by key: both sides sorted ([`normalize`]).
/// - `umask` on `PosixSpawn` is `UnsupportedOption` once the command is otherwise prepared.
/// - A `PATH` whose every entry has `PATH_MAX` bytes or more (glibc's `execvp` skips such
///   entries untried) gives `NotFound` here; std reports whatever errno glibc left (0, EAGAIN).
enum Expect {
    Same(Outcome),
    /// std's answer, or `UnsupportedOption` for the umask.
    SameOrUnsupportedUmask(Outcome),
}

fn expected(spec: &Spec, backend: SpawnBackend, std: &Outcome) -> Expect {
    let args_have_nul = std::iter::once(spec.program.as_bytes())
        .chain(spec.arg0.as_deref())
        .chain(spec.args.iter().map(Vec::as_slice))
        .any(|a| a.contains(&0));
    if spec.has_refused_key() && !args_have_nul {
        return Expect::Same(Outcome::Failed(io::ErrorKind::InvalidInput, None));
    }
    let std = match normalize(spec, std.clone()) {
        Outcome::Failed(..) if spec.no_path_entry_tried() => {
            Outcome::Failed(io::ErrorKind::NotFound, Some(libc::ENOENT))
        }
        other => other,
    };
    if spec.umask.is_some() && backend == SpawnBackend::PosixSpawn {
        return Expect::SameOrUnsupportedUmask(std);
    }
    Expect::Same(std)
}

/// The environment part of a report, sorted when the command changed the environment.
fn normalize(spec: &Spec, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Ran {
            status,
            mut stdout,
            stderr,
        } if spec.env_changed() => {
            if let Some(at) = find(&stdout, ENV_MARK) {
                let start = at + ENV_MARK.len();
                let mut entries: Vec<Vec<u8>> = stdout[start..]
                    .split(|&b| b == 0)
                    .map(<[u8]>::to_vec)
                    .collect();
                entries.sort();
                stdout.truncate(start);
                stdout.extend(entries.join(&0u8));
            }
            Outcome::Ran {
                status,
                stdout,
                stderr,
            }
        }
        other => other,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Short for a message: long byte strings are summarized.
fn brief(spec: &Spec) -> String {
    let short = |v: &[u8]| {
        if v.len() > 64 {
            format!("<{} bytes of {:?}>", v.len(), v[0] as char)
        } else {
            format!("{:?}", OsStr::from_bytes(v))
        }
    };
    format!(
        "program {:?}, arg0 {:?}, args [{}], env_clear {}, env [{}], cwd {:?}, stdin {:?}, umask {:?}, end {:?}",
        spec.program,
        spec.arg0.as_deref().map(short),
        spec.args
            .iter()
            .map(|a| short(a))
            .collect::<Vec<_>>()
            .join(", "),
        spec.env_clear,
        spec.env
            .iter()
            .map(|(k, v)| format!(
                "{}={}",
                short(k),
                v.as_deref().map_or("<removed>".into(), short)
            ))
            .collect::<Vec<_>>()
            .join(", "),
        spec.cwd,
        spec.stdin.as_deref().map(short),
        spec.umask,
        spec.end,
    )
}

fn brief_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ran {
            status,
            stdout,
            stderr,
        } => {
            let cut = |v: &[u8]| {
                let s = String::from_utf8_lossy(&v[..v.len().min(600)]).into_owned();
                if v.len() > 600 {
                    format!("{s}... ({} bytes)", v.len())
                } else {
                    s
                }
            };
            format!(
                "status {status:#x}, stdout {:?}, stderr {:?}",
                cut(stdout),
                cut(stderr)
            )
        }
        Outcome::Failed(kind, errno) => format!("failed: {kind:?}, errno {errno:?}"),
    }
}

/// Every configuration: backend x child-watch mode x spawn site, each with a running executor.
fn executors() -> Vec<(String, SpawnBackend, Running)> {
    let mut v = Vec::new();
    for backend in SpawnBackend::ALL {
        for watch in [ChildWatch::Pidfd, ChildWatch::Signal] {
            for site in [SpawnSite::ExecutorThread, SpawnSite::CallingThread] {
                let exec = Executor::builder()
                    .backend(backend)
                    .child_watch(watch)
                    .spawn_site(site)
                    .kill_grace(Duration::from_millis(200))
                    .build()
                    .expect("build an executor");
                let name = format!("{}/{watch:?}/{site:?}", backend.name());
                v.push((name, backend, Running::spawn(Arc::new(exec))));
            }
        }
    }
    v
}

/// What std answered over a run, to show that the cases reach past the early errors.
#[derive(Default, Debug)]
struct Tally {
    ran: usize,
    failed: std::collections::BTreeMap<String, usize>,
}

fn check_case(configs: &[(String, SpawnBackend, Running)], data: &[u8], tally: &Mutex<Tally>) {
    let spec = decode(data);
    let std = run_std(&spec);
    {
        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
        match &std {
            Outcome::Ran { .. } => t.ran += 1,
            Outcome::Failed(kind, errno) => {
                *t.failed.entry(format!("{kind:?}/{errno:?}")).or_default() += 1
            }
        }
    }
    for (name, backend, running) in configs {
        let want = expected(&spec, *backend, &std);
        let got = run_ours(&running.arc(), &spec);
        let ok = match (&want, &got) {
            (Expect::Same(w) | Expect::SameOrUnsupportedUmask(w), Ok(o)) => {
                normalize(&spec, o.clone()) == *w
            }
            (
                Expect::SameOrUnsupportedUmask(_),
                Err(SpawnError::UnsupportedOption {
                    option: CommandOption::Umask,
                    ..
                }),
            ) => true,
            (Expect::Same(w) | Expect::SameOrUnsupportedUmask(w), Err(e)) => {
                let e = e.clone();
                let errno = e.raw_os_error();
                let kind = io::Error::from(e).kind();
                *w == Outcome::Failed(kind, errno)
            }
        };
        if !ok {
            let want = match &want {
                Expect::Same(w) => brief_outcome(w),
                Expect::SameOrUnsupportedUmask(w) => {
                    format!("{} or UnsupportedOption(umask)", brief_outcome(w))
                }
            };
            let got = match &got {
                Ok(o) => brief_outcome(&normalize(&spec, o.clone())),
                Err(e) => format!("{e:?}"),
            };
            panic!(
                "{name}: differs from std\n  case: {}\n  input: {data:?}\n  std:  {want}\n  ours: {got}",
                brief(&spec)
            );
        }
    }
}

#[test]
fn same_answers_as_std() {
    fixture();
    let configs = executors();
    let mut runner = seeded_runner(
        "same_answers_as_std",
        Config {
            cases: random_cases(160),
            failure_persistence: None,
            max_shrink_iters: 64,
            ..Config::default()
        },
    );
    let t = Instant::now();
    let tally = Mutex::new(Tally::default());
    runner
        .run(&prop::collection::vec(any::<u8>(), 8..96), |data| {
            check_case(&configs, &data, &tally);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "same_answers_as_std: {} configurations, {:?}, std's answers: {:?}",
        configs.len(),
        t.elapsed(),
        tally.into_inner().unwrap_or_else(|e| e.into_inner())
    );
}
