//! The command made ready to spawn: validated, `PATH` resolved, converted to C strings.
//!
//! All of this runs on the caller's thread, before the request reaches the executor thread, so the
//! executor thread spends its time spawning, and the spawn backends never allocate after a fork.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::SpawnError;

/// The search path when the environment has no `PATH` (what glibc's `execvp` uses).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// A validated command: the resolved program path and the argument vector as C strings.
#[derive(Debug, Clone)]
pub(crate) struct PreparedCommand {
    /// The program as the caller gave it (for error messages).
    pub(crate) program: OsString,
    /// The file to execute: `program` itself if it has a slash, else the first match in `PATH`.
    pub(crate) path: CString,
    /// `argv[0..]`, with `argv[0]` the program as given.
    pub(crate) argv: Vec<CString>,
}

impl PreparedCommand {
    /// Validates `command` and resolves its program.
    ///
    /// Errors: [`SpawnError::EmptyCommand`], [`SpawnError::NulByte`], and for a program without a
    /// slash that no `PATH` directory holds as an executable file, [`SpawnError::NotFound`] (or
    /// [`SpawnError::PermissionDenied`] when a match exists but cannot be executed).
    pub(crate) fn new<S: AsRef<OsStr>>(command: &[S]) -> Result<PreparedCommand, SpawnError> {
        let Some(first) = command.first() else {
            return Err(SpawnError::EmptyCommand);
        };
        let program = first.as_ref().to_os_string();
        let mut argv = Vec::with_capacity(command.len());
        for (index, arg) in command.iter().enumerate() {
            match CString::new(arg.as_ref().as_bytes()) {
                Ok(c) => argv.push(c),
                Err(_) => return Err(SpawnError::NulByte { program, index }),
            }
        }
        let path = if program.as_bytes().contains(&b'/') {
            argv[0].clone()
        } else if program.is_empty() {
            return Err(SpawnError::NotFound { program });
        } else {
            let found = search_path(&program, std::env::var_os("PATH").as_deref())?;
            // A PATH entry with a NUL cannot come from the environment (C strings), but an
            // OsString from var_os could in theory; treat it as not found rather than panic.
            CString::new(found.into_os_string().into_vec()).map_err(|_| SpawnError::NotFound {
                program: program.clone(),
            })?
        };
        Ok(PreparedCommand {
            program,
            path,
            argv,
        })
    }
}

/// Looks `program` up in `path_var` the way `execvp` does: the first directory holding an
/// executable regular file wins; a match that is not executable is remembered so that the error
/// says "permission denied" rather than "not found".
fn search_path(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, SpawnError> {
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut saw_denied = false;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        // An empty entry means the current directory (POSIX).
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok() {
                    return Ok(candidate);
                }
                saw_denied = true;
            }
            Ok(_) => saw_denied = true, // a directory of that name: execvp says EACCES too
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => saw_denied = true,
            Err(_) => {}
        }
    }
    let program = program.to_os_string();
    if saw_denied {
        Err(SpawnError::PermissionDenied { program })
    } else {
        Err(SpawnError::NotFound { program })
    }
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
        let found = search_path(OsStr::new("sh"), Some(OsStr::new("/nonexistent::/bin")))
            .expect("test setup");
        assert_eq!(found, Path::new("/bin/sh"));
        let err =
            search_path(OsStr::new("no-such-program-x"), Some(OsStr::new("/bin"))).unwrap_err();
        assert!(matches!(err, SpawnError::NotFound { .. }));
        // "/" holds a directory named "tmp": found but not executable as a program.
        let err = search_path(OsStr::new("tmp"), Some(OsStr::new("/"))).unwrap_err();
        assert!(matches!(err, SpawnError::PermissionDenied { .. }));
    }

    #[test]
    fn slash_means_no_search() {
        let p = PreparedCommand::new(&["./relative/thing"]).expect("test setup");
        assert_eq!(p.path.as_bytes(), b"./relative/thing");
    }
}
