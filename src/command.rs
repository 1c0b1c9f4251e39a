//! [`Command`]: the whole configuration of a child process, as the caller writes it down.
//!
//! Plain data with std's names and shapes: building a command makes no system call and cannot
//! fail. Everything is checked and turned into what the child needs when the command is spawned
//! (`request.rs`, on the caller's thread), so one command can be spawned many times.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::resource::Resource;
use crate::stdio::Stdio;

/// A process to spawn, built like [`std::process::Command`], started with
/// [`Executor::spawn`](crate::Executor::spawn).
///
/// The builder methods take and return `&mut Command`, so a command is built once and spawned
/// many times; nothing is checked until it is spawned, where every bad option gives a typed
/// [`SpawnError`](crate::SpawnError) naming it.
///
/// ```
/// use napix_executor::{Command, Executor, Stdio};
/// # let ex = std::sync::Arc::new(Executor::new()?);
/// # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "echo \"$GREETING from $(pwd)\"; cat"])
///     .env("GREETING", "hello")
///     .current_dir("/tmp")
///     .stdin(Stdio::from_bytes("and bye\n"))
///     .stdout(Stdio::piped());
/// let child = ex.spawn(&cmd)?;
/// let mut out = String::new();
/// std::io::Read::read_to_string(&mut child.take_stdout().expect("piped"), &mut out)?;
/// assert_eq!(out, "hello from /tmp\nand bye\n");
/// assert!(child.wait().success());
/// # ex.stop(); runner.join().expect("run thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Options against `std::process::Command`
///
/// See the table in the [crate docs](crate#command-options-against-stdprocesscommand).
#[derive(Debug)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) arg0: Option<OsString>,
    pub(crate) args: Vec<OsString>,
    /// Set (`Some`) or removed (`None`) variables, on top of the parent's environment unless
    /// `env_clear` was called.
    pub(crate) env: BTreeMap<OsString, Option<OsString>>,
    pub(crate) env_clear: bool,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    /// Extra descriptors: the number in the child, and the descriptor that becomes it.
    pub(crate) fds: Vec<(i32, Arc<OwnedFd>)>,
    pub(crate) umask: Option<u32>,
    pub(crate) rlimits: Vec<(Resource, u64, u64)>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) groups: Option<Vec<u32>>,
    /// Process group, session, kill scope, parent-death signal, deadline, grace, cgroup
    /// (`command_lifetime.rs`).
    pub(crate) lifetime: crate::lifetime::LifetimeOptions,
}

impl Command {
    /// A command that runs `program`, looked up in `PATH` (the child's `PATH` when the command
    /// sets one, as std does) unless it contains a slash. Defaults: no arguments, the parent's
    /// environment and working directory, stdin `/dev/null` (std inherits it), stdout and stderr
    /// inherited.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            program: program.as_ref().to_os_string(),
            arg0: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            env_clear: false,
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            fds: Vec::new(),
            umask: None,
            rlimits: Vec::new(),
            uid: None,
            gid: None,
            groups: None,
            lifetime: Default::default(),
        }
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets `argv[0]` (by default the program as given), as
    /// [`CommandExt::arg0`](std::os::unix::process::CommandExt::arg0).
    pub fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.arg0 = Some(arg.as_ref().to_os_string());
        self
    }

    /// Sets an environment variable for the child. The key must be non-empty and hold no `=` or
    /// NUL, the value no NUL; otherwise the spawn fails with
    /// [`SpawnError::InvalidOption`](crate::SpawnError::InvalidOption).
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.env.insert(
            key.as_ref().to_os_string(),
            Some(val.as_ref().to_os_string()),
        );
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.env.insert(key.as_ref().to_os_string(), None);
        self
    }

    /// The child starts with an empty environment plus what [`env`](Self::env) sets after this.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env.clear();
        self.env_clear = true;
        self
    }

    /// The child's working directory. A relative program path (`./x`) and a relative `PATH`
    /// entry (`.`, an empty entry, `bin`) are then relative to it, as in std. A directory that
    /// does not exist is an error before spawning, and before the `PATH` search
    /// ([`SpawnError::OptionFailed`](crate::SpawnError::OptionFailed), `NotFound`; a file:
    /// `NotADirectory`).
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The child's stdin (default [`Stdio::null`]).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.stdin = Some(cfg.into());
        self
    }

    /// The child's stdout (default [`Stdio::inherit`]; `create_process` uses null or a pipe).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.stdout = Some(cfg.into());
        self
    }

    /// The child's stderr (default [`Stdio::inherit`]; [`Stdio::merge_stdout`] sends it where
    /// stdout goes).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.stderr = Some(cfg.into());
        self
    }

    /// Passes `fd` to the child as descriptor number `child_fd` (3 or more, each number once),
    /// like Go's `ExtraFiles` or Python's `pass_fds`. Every descriptor not passed this way or as
    /// stdio is still closed in the child. The command keeps `fd` open until it is dropped.
    pub fn fd(&mut self, child_fd: i32, fd: impl Into<OwnedFd>) -> &mut Command {
        self.fds.push((child_fd, Arc::new(fd.into())));
        self
    }

    /// The child's file mode creation mask (`umask(2)`), e.g. `0o077`.
    pub fn umask(&mut self, mask: u32) -> &mut Command {
        self.umask = Some(mask);
        self
    }

    /// Sets a resource limit in the child (`setrlimit(2)`): `soft` may not exceed `hard`;
    /// `u64::MAX` means unlimited. Raising a hard limit needs privilege.
    pub fn rlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> &mut Command {
        self.rlimits.retain(|(r, _, _)| *r != resource);
        self.rlimits.push((resource, soft, hard));
        self
    }

    /// The child's user id (`setuid(2)`, after `setgroups` and `setgid`), as
    /// [`CommandExt::uid`](std::os::unix::process::CommandExt::uid). As in std, when the parent
    /// is root and [`groups`](Self::groups) is not given, the child's supplementary groups are
    /// dropped.
    pub fn uid(&mut self, id: u32) -> &mut Command {
        self.uid = Some(id);
        self
    }

    /// The child's group id (`setgid(2)`).
    pub fn gid(&mut self, id: u32) -> &mut Command {
        self.gid = Some(id);
        self
    }

    /// The child's supplementary groups (`setgroups(2)`).
    pub fn groups(&mut self, groups: &[u32]) -> &mut Command {
        self.groups = Some(groups.to_vec());
        self
    }

    /// The program as given to [`new`](Self::new).
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments after the program (not `argv[0]`).
    pub fn get_args(&self) -> CommandArgs<'_> {
        CommandArgs {
            inner: self.args.iter(),
        }
    }

    /// The environment changes: `(key, Some(value))` set, `(key, None)` removed; sorted by key.
    /// Variables inherited from the parent are not listed.
    pub fn get_envs(&self) -> CommandEnvs<'_> {
        CommandEnvs {
            inner: self.env.iter(),
        }
    }

    /// The working directory set with [`current_dir`](Self::current_dir).
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
}

/// The arguments of a [`Command`], from [`Command::get_args`].
#[derive(Debug)]
pub struct CommandArgs<'a> {
    inner: std::slice::Iter<'a, OsString>,
}

impl<'a> Iterator for CommandArgs<'a> {
    type Item = &'a OsStr;
    fn next(&mut self) -> Option<&'a OsStr> {
        self.inner.next().map(OsString::as_os_str)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for CommandArgs<'_> {}

/// The environment changes of a [`Command`], from [`Command::get_envs`].
#[derive(Debug)]
pub struct CommandEnvs<'a> {
    inner: std::collections::btree_map::Iter<'a, OsString, Option<OsString>>,
}

impl<'a> Iterator for CommandEnvs<'a> {
    type Item = (&'a OsStr, Option<&'a OsStr>);
    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|(k, v)| (k.as_os_str(), v.as_deref()))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for CommandEnvs<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_show_what_was_built() {
        let mut cmd = Command::new("prog");
        cmd.arg("a")
            .args(["b", "c"])
            .env("K", "v")
            .env_remove("GONE")
            .current_dir("/tmp");
        assert_eq!(cmd.get_program(), "prog");
        assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["a", "b", "c"]);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(
            envs,
            [
                (OsStr::new("GONE"), None),
                (OsStr::new("K"), Some(OsStr::new("v")))
            ]
        );
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/tmp")));
        cmd.env_clear();
        assert_eq!(cmd.get_envs().count(), 0);
    }

    #[test]
    fn a_second_rlimit_for_one_resource_replaces_the_first() {
        let mut cmd = Command::new("prog");
        cmd.rlimit(Resource::Nofile, 10, 20)
            .rlimit(Resource::Core, 0, 0)
            .rlimit(Resource::Nofile, 30, 40);
        assert_eq!(
            cmd.rlimits,
            [(Resource::Core, 0, 0), (Resource::Nofile, 30, 40)]
        );
    }
}
