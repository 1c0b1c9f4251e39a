//! The command made ready to spawn: validated, `PATH` resolved, converted to C strings, every
//! option turned into what the child needs.
//!
//! All of this runs on the caller's thread, before the request reaches the executor thread, so the
//! executor thread spends its time spawning, and the spawn backends never allocate after a fork.
//! The child's environment is in [`env`], its descriptors in [`fds`].

mod env;
mod fds;
mod lifetime;

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

pub(crate) use self::fds::StdioPlan;
use crate::cgroup::MadeCgroup;
use crate::command::Command;
use crate::error::{CommandOption, SpawnError, SpawnStage};
use crate::lifetime::Lifetime;
use crate::sys::CStringArray;
use crate::sys::spawn::{ChildSetup, Program, SpawnFailure};

/// The search path when the environment has no `PATH` (what glibc's `execvp` uses).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The most supplementary groups the kernel takes (`NGROUPS_MAX`).
const MAX_GROUPS: usize = 65536;

/// A validated command: the resolved program path, the argument vector and environment as C
/// strings, the child's stdio plans and its setup steps.
///
/// Not `Clone`: it may own the cgroup made for its child ([`MadeCgroup`]).
#[derive(Debug)]
pub(crate) struct PreparedCommand {
    /// The program as the caller gave it (for error messages).
    pub(crate) program: OsString,
    /// The file to execute: `program` itself if it has a slash, else the first match in `PATH`.
    pub(crate) path: CString,
    /// `argv[0..]`, with `argv[0]` the program as given (or the command's `arg0`).
    pub(crate) argv: Vec<CString>,
    /// The child's environment; `None` for the parent's, read at spawn time.
    pub(crate) envp: Option<CStringArray>,
    /// stdin, stdout, stderr.
    pub(crate) stdio: [StdioPlan; 3],
    /// What the child does between clone and execve besides stdio.
    pub(crate) setup: ChildSetup,
    /// The pipe or memfd holding `Stdio::from_bytes` stdin (also in `stdio[0]`): the table
    /// entry keeps it until the child is reaped.
    pub(crate) stdin_bytes: Option<Arc<OwnedFd>>,
    /// What the executor keeps for the child: deadline, kill grace, kill scope, cgroup.
    pub(crate) lifetime: Lifetime,
    /// The cgroup made for this child (`cgroup_per_child`): removed when the request ends
    /// without a tracked child, adopted by the child's state otherwise.
    pub(crate) made_cgroup: Option<MadeCgroup>,
}

impl<'a> From<&'a PreparedCommand> for Program<'a> {
    /// What the spawn backends read of it.
    fn from(command: &'a PreparedCommand) -> Program<'a> {
        Program {
            path: &command.path,
            argv: &command.argv,
            envp: command.envp.as_ref(),
            setup: &command.setup,
        }
    }
}

impl PreparedCommand {
    /// Validates `command` (`command[0]` the program) and resolves its program; stdio all
    /// `/dev/null`, no other option.
    ///
    /// Errors: [`SpawnError::EmptyCommand`], [`SpawnError::NulByte`], and for a program without a
    /// slash that no `PATH` directory holds as an executable file, [`SpawnError::NotFound`] (or
    /// [`SpawnError::PermissionDenied`] when a match exists but cannot be executed).
    pub(crate) fn new<S: AsRef<OsStr>>(command: &[S]) -> Result<PreparedCommand, SpawnError> {
        let Some(first) = command.first() else {
            return Err(SpawnError::EmptyCommand);
        };
        let program = first.as_ref().to_os_string();
        let argv = c_strings(&program, command.iter().map(|a| a.as_ref()))?;
        let path = resolve(&program, env::parents_path_for(&program).as_deref(), None)?;
        Ok(PreparedCommand {
            program,
            path,
            argv,
            envp: None,
            stdio: [StdioPlan::Null, StdioPlan::Null, StdioPlan::Null],
            setup: ChildSetup::default(),
            stdin_bytes: None,
            lifetime: Lifetime::default(),
            made_cgroup: None,
        })
    }

    /// Checks every option of `cmd` and prepares it; a stream `cmd` leaves unset gets the plan
    /// in `defaults`.
    ///
    /// Checked in this order, the first problem is the error: program and arguments (NUL bytes),
    /// environment ([`env`]), the working directory, the program's `PATH` search, extra
    /// descriptor numbers, stdio kinds and descriptors, extra descriptors' sources, umask,
    /// rlimits, groups.
    pub(crate) fn from_command(
        cmd: &Command,
        defaults: [StdioPlan; 3],
    ) -> Result<PreparedCommand, SpawnError> {
        let program = cmd.program.clone();
        let argv0 = cmd.arg0.as_deref().unwrap_or(&program);
        let argv = c_strings(
            &program,
            std::iter::once(argv0).chain(cmd.args.iter().map(OsString::as_os_str)),
        )?;
        let env = env::prepare(&program, &cmd.env, cmd.env_clear)?;
        let mut setup = ChildSetup::default();
        // As std's child: the directory first (it chdirs, then searches), so its error wins.
        if let Some(dir) = &cmd.cwd {
            setup.cwd = Some(check_dir(&program, dir)?);
        }
        let path = resolve(&program, env.search_path.as_deref(), setup.cwd.as_deref())?;
        setup.fds = fds::extra_fds(&program, &cmd.fds)?;
        let floor = setup.fd_floor();
        let given = [cmd.stdin.as_ref(), cmd.stdout.as_ref(), cmd.stderr.as_ref()];
        let stdio = fds::stdio_plans(&program, given, defaults, floor)?;
        fds::lift_extra_fds(&program, &mut setup.fds, floor)?;
        if let Some(mask) = cmd.umask {
            if mask & !0o777 != 0 {
                return Err(invalid(&program, CommandOption::Umask, "bits beyond 0o777"));
            }
            setup.umask = Some(mask);
        }
        for &(resource, soft, hard) in &cmd.rlimits {
            if soft > hard {
                return Err(invalid(
                    &program,
                    CommandOption::Rlimit(resource),
                    "the soft limit exceeds the hard limit",
                ));
            }
            let limit = libc::rlimit64 {
                rlim_cur: soft,
                rlim_max: hard,
            };
            setup.rlimits.push((resource, limit));
        }
        if let Some(groups) = &cmd.groups {
            if groups.len() > MAX_GROUPS {
                return Err(invalid(
                    &program,
                    CommandOption::Groups,
                    "more supplementary groups than the kernel takes (65536)",
                ));
            }
            setup.groups = Some(groups.clone());
        } else if cmd.uid.is_some() && rustix::process::geteuid().is_root() {
            // As std: root dropping to another user should not keep root's groups.
            setup.groups = Some(Vec::new());
        }
        setup.gid = cmd.gid;
        setup.uid = cmd.uid;
        let lifetime = lifetime::prepare(&program, &cmd.lifetime)?;
        setup.lifetime = lifetime.steps;
        setup.cgroup = lifetime.cgroup;
        let stdin_bytes = match (&cmd.stdin, &stdio[0]) {
            (Some(crate::stdio::Stdio(crate::stdio::StdioKind::Bytes(_))), StdioPlan::Fd(fd)) => {
                Some(fd.clone())
            }
            _ => None,
        };
        Ok(PreparedCommand {
            program,
            path,
            argv,
            envp: env.envp,
            stdio,
            setup,
            stdin_bytes,
            lifetime: lifetime.lifetime,
            made_cgroup: lifetime.made_cgroup,
        })
    }

    /// The error for a spawn that failed: for a step in the child (its stage, on item `index`
    /// of that step) the option's, for the exec and spawn stages the program's.
    pub(crate) fn child_error(&self, failure: SpawnFailure) -> SpawnError {
        if failure.unsupported.is_some() {
            return failure.into_error(&self.program);
        }
        let SpawnFailure {
            stage,
            errno,
            index,
            ..
        } = failure;
        let option = match stage {
            SpawnStage::Stdio => match index {
                0 => CommandOption::Stdin,
                1 => CommandOption::Stdout,
                _ => CommandOption::Stderr,
            },
            SpawnStage::Fd => match self.setup.fds.get(index) {
                Some(fd) => CommandOption::Fd(fd.target),
                None => return SpawnError::from_errno(&self.program, stage, errno),
            },
            SpawnStage::Setrlimit => match self.setup.rlimits.get(index) {
                Some((resource, _)) => CommandOption::Rlimit(*resource),
                None => return SpawnError::from_errno(&self.program, stage, errno),
            },
            SpawnStage::Chdir => CommandOption::CurrentDir,
            SpawnStage::Setgroups => CommandOption::Groups,
            SpawnStage::Setgid => CommandOption::Gid,
            SpawnStage::Setuid => CommandOption::Uid,
            SpawnStage::Setsid => CommandOption::Setsid,
            SpawnStage::Setpgid => CommandOption::ProcessGroup,
            SpawnStage::ParentDeathSignal => CommandOption::ParentDeathSignal,
            SpawnStage::Cgroup => match &self.setup.cgroup {
                Some(place) => CommandOption::Cgroup(place.path.clone()),
                None => return SpawnError::from_errno(&self.program, stage, errno),
            },
            _ => return SpawnError::from_errno(&self.program, stage, errno),
        };
        SpawnError::OptionFailed {
            program: self.program.clone(),
            option,
            stage,
            errno,
        }
    }
}

fn invalid(program: &OsStr, option: CommandOption, reason: &'static str) -> SpawnError {
    SpawnError::InvalidOption {
        program: program.to_os_string(),
        option,
        reason,
    }
}

/// The arguments as C strings; [`SpawnError::NulByte`] names the first with a NUL (0 = the
/// program, or `arg0`).
fn c_strings<'a>(
    program: &OsStr,
    args: impl Iterator<Item = &'a OsStr>,
) -> Result<Vec<CString>, SpawnError> {
    let mut argv = Vec::with_capacity(args.size_hint().0);
    for (index, arg) in args.enumerate() {
        match CString::new(arg.as_bytes()) {
            Ok(c) => argv.push(c),
            Err(_) => {
                return Err(SpawnError::NulByte {
                    program: program.to_os_string(),
                    index,
                });
            }
        }
    }
    Ok(argv)
}

/// The file to execute: `program` itself when it has a slash, else its match in `path_var`,
/// relative entries searched from `cwd` (the child's directory) when it is set.
fn resolve(
    program: &OsStr,
    path_var: Option<&OsStr>,
    cwd: Option<&CStr>,
) -> Result<CString, SpawnError> {
    let nul = || SpawnError::NulByte {
        program: program.to_os_string(),
        index: 0,
    };
    if program.as_bytes().contains(&b'/') {
        return CString::new(program.as_bytes()).map_err(|_| nul());
    }
    if program.is_empty() {
        return Err(SpawnError::NotFound {
            program: program.to_os_string(),
        });
    }
    if program.as_bytes().contains(&0) {
        return Err(nul());
    }
    let found = search_path(program, path_var, cwd)?;
    // A PATH entry with a NUL cannot come from the environment (C strings), but an OsString
    // could in theory; treat it as not found rather than panic.
    CString::new(found).map_err(|_| SpawnError::NotFound {
        program: program.to_os_string(),
    })
}

/// Checks that `dir` is a directory now (the child's `chdir` may still fail, e.g. for a user
/// without the right to enter it) and returns it as a C string.
fn check_dir(program: &OsStr, dir: &Path) -> Result<CString, SpawnError> {
    let c_dir = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        invalid(
            program,
            CommandOption::CurrentDir,
            "the path contains a NUL byte",
        )
    })?;
    let failed = |errno: i32| SpawnError::OptionFailed {
        program: program.to_os_string(),
        option: CommandOption::CurrentDir,
        stage: SpawnStage::Prepare,
        errno,
    };
    match rustix::fs::stat(&c_dir) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::Directory =>
        {
            Ok(c_dir)
        }
        Ok(_) => Err(failed(libc::ENOTDIR)),
        Err(e) => Err(failed(e.raw_os_error())),
    }
}

/// Looks `program` up in `path_var` the way `execvp` does: the first directory holding an
/// executable regular file wins; a match that is not executable is remembered so that the error
/// says "permission denied" rather than "not found".
///
/// Returns the path spelled as glibc's `execvp` hands it to `execve` (`entry/name`, even when the
/// entry ends in `/`; `name` alone for an empty entry), so that a script sees the same `$0` as
/// under std. A relative entry is looked up from `cwd` when the command sets one: the child
/// changes directory before its `execve`, as std's child does before its `execvp`.
fn search_path(
    program: &OsStr,
    path_var: Option<&OsStr>,
    cwd: Option<&CStr>,
) -> Result<Vec<u8>, SpawnError> {
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut saw_denied = false;
    // As glibc's execvp: EACCES wins, else the errno of the last entry tried (ENOTDIR for an
    // entry that is a file); an unusual error (ELOOP, ENAMETOOLONG, ...) ends the search at
    // once. With no entry tried at all, ENOENT (glibc leaves errno as it was: std then reports
    // errno 0, or whatever an earlier call left).
    let mut last = libc::ENOENT;
    // The child's directory, opened once a relative entry needs it: looking up from a
    // descriptor is what the child's chdir + execve does, with no PATH_MAX limit on the join.
    let mut from_cwd: Option<OwnedFd> = None;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        if dir.len() >= libc::PATH_MAX as usize {
            // glibc's execvp skips an entry this long without trying it (nor touching errno).
            continue;
        }
        let mut candidate = Vec::with_capacity(dir.len() + 1 + program.len());
        if !dir.is_empty() {
            candidate.extend_from_slice(dir);
            candidate.push(b'/');
        }
        candidate.extend_from_slice(program.as_bytes());
        let relative_to_cwd = cwd.filter(|_| !candidate.starts_with(b"/"));
        if let (Some(cwd), None) = (relative_to_cwd, &from_cwd) {
            match open_dir(cwd) {
                Ok(fd) => from_cwd = Some(fd),
                Err(errno) => {
                    return Err(SpawnError::OptionFailed {
                        program: program.to_os_string(),
                        option: CommandOption::CurrentDir,
                        stage: SpawnStage::Prepare,
                        errno: errno.raw_os_error(),
                    });
                }
            }
        }
        let base = match (relative_to_cwd, &from_cwd) {
            (Some(_), Some(fd)) => fd.as_fd(),
            _ => rustix::fs::CWD,
        };
        let c_candidate = match CString::new(candidate) {
            Ok(c) => c,
            Err(_) => continue, // not reachable from a C environment; as no such file
        };
        match rustix::fs::statat(base, &c_candidate, rustix::fs::AtFlags::empty()) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::RegularFile =>
            {
                let exec = rustix::fs::Access::EXEC_OK;
                let flags = rustix::fs::AtFlags::empty();
                if rustix::fs::accessat(base, &c_candidate, exec, flags).is_ok() {
                    return Ok(c_candidate.into_bytes());
                }
                saw_denied = true;
            }
            Ok(_) => saw_denied = true, // a directory of that name: execvp says EACCES too
            Err(e) => match e.raw_os_error() {
                libc::EACCES => saw_denied = true,
                errno @ (libc::ENOENT
                | libc::ENOTDIR
                | libc::ESTALE
                | libc::ENODEV
                | libc::ETIMEDOUT) => last = errno,
                errno => {
                    let program = program.to_os_string();
                    return Err(SpawnError::from_errno(&program, SpawnStage::Exec, errno));
                }
            },
        }
    }
    let program = program.to_os_string();
    if saw_denied {
        Err(SpawnError::PermissionDenied { program })
    } else {
        Err(SpawnError::from_errno(&program, SpawnStage::Exec, last))
    }
}

/// `dir` opened for lookups only (`O_PATH`).
fn open_dir(dir: &CStr) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_nul_are_rejected() {
        let empty: [&str; 0] = [];
        assert_eq!(
            PreparedCommand::new(&empty).unwrap_err(),
            SpawnError::EmptyCommand
        );
        let err = PreparedCommand::new(&["/bin/true", "a\0b"]).unwrap_err();
        assert!(matches!(err, SpawnError::NulByte { index: 1, .. }));
        let err = PreparedCommand::new(&["tr\0ue"]).unwrap_err();
        assert!(matches!(err, SpawnError::NulByte { index: 0, .. }));
    }

    #[test]
    fn path_search_finds_sh_and_reports_missing() {
        let found = search_path(
            OsStr::new("sh"),
            Some(OsStr::new("/nonexistent::/bin")),
            None,
        )
        .expect("test setup");
        assert_eq!(found, b"/bin/sh");
        let err = search_path(
            OsStr::new("no-such-program-x"),
            Some(OsStr::new("/bin")),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, SpawnError::NotFound { .. }));
        // "/" holds a directory named "tmp": found but not executable as a program.
        let err = search_path(OsStr::new("tmp"), Some(OsStr::new("/")), None).unwrap_err();
        assert!(matches!(err, SpawnError::PermissionDenied { .. }));
    }

    #[test]
    fn path_search_keeps_the_telling_errno() {
        let not_dir = |path: &str| {
            search_path(OsStr::new("x"), Some(OsStr::new(path)), None)
                .unwrap_err()
                .raw_os_error()
        };
        // An entry that is a file: ENOTDIR, as execvp (and std) say.
        assert_eq!(not_dir("/etc/passwd"), Some(libc::ENOTDIR));
        assert_eq!(not_dir("/nonexistent:/etc/passwd"), Some(libc::ENOTDIR));
        // The last entry's errno, as glibc keeps it.
        assert_eq!(not_dir("/etc/passwd:/nonexistent"), Some(libc::ENOENT));
        // EACCES over any other.
        let denied = search_path(OsStr::new("tmp"), Some(OsStr::new("/etc/passwd:/")), None);
        assert!(matches!(denied, Err(SpawnError::PermissionDenied { .. })));
        // An entry of PATH_MAX bytes or more is skipped, as glibc's execvp does.
        let long = "x".repeat(4096);
        let found = search_path(
            OsStr::new("sh"),
            Some(OsStr::new(&format!("{long}:/bin"))),
            None,
        );
        assert_eq!(found.ok().as_deref(), Some(&b"/bin/sh"[..]));
        assert_eq!(not_dir(&format!("/etc/passwd:{long}")), Some(libc::ENOTDIR));
        // One byte shorter it is tried, and the joined path is too long: that ends the search.
        let e = search_path(
            OsStr::new("sh"),
            Some(OsStr::new(&format!("{}:/bin", &long[1..]))),
            None,
        );
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::ENAMETOOLONG));
        let e = search_path(OsStr::new("x"), Some(OsStr::new("/etc/passwd")), None).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory);
    }

    #[test]
    fn slash_means_no_search() {
        let p = PreparedCommand::new(&["./relative/thing"]).expect("test setup");
        assert_eq!(p.path.as_bytes(), b"./relative/thing");
    }
}
