//! The child's environment: the command's changes checked and merged with the parent's
//! environment into an `envp`, and the `PATH` the program is searched in.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{CommandOption, SpawnError};
use crate::sys::{CStringArray, CStringArrayBuilder};

/// What the child's environment is: `envp` (`None`: the parent's own, read at spawn time, as an
/// option-less spawn always did) and the `PATH` to search the program in.
pub(crate) struct ChildEnv {
    pub(crate) envp: Option<CStringArray>,
    /// The child's `PATH` when the command changes the environment (`None`: it has none, so the
    /// default search path applies); the parent's otherwise.
    pub(crate) search_path: Option<OsString>,
}

/// The parent's PATH, if `program` is a name to search for: PATH is read (a copy, under std's
/// environment lock) only then, not for every spawn of a path.
pub(crate) fn parents_path_for(program: &OsStr) -> Option<OsString> {
    match program.as_bytes().contains(&b'/') {
        true => None,
        false => std::env::var_os("PATH"),
    }
}

/// Checks every key and value of `changes` and builds the child's environment.
pub(crate) fn prepare(
    program: &OsStr,
    changes: &BTreeMap<OsString, Option<OsString>>,
    clear: bool,
) -> Result<ChildEnv, SpawnError> {
    for (key, value) in changes {
        check_key(program, key)?;
        if value.as_ref().is_some_and(|v| v.as_bytes().contains(&0)) {
            return Err(invalid(program, key, "the value contains a NUL byte"));
        }
    }
    if changes.is_empty() && !clear {
        return Ok(ChildEnv {
            envp: None,
            search_path: parents_path_for(program),
        });
    }
    // Sized from the last environment built, so that the buffers grow at most once.
    let mut envp = CStringArrayBuilder::with_capacity(
        LAST_COUNT.load(Ordering::Relaxed) + changes.len(),
        LAST_BYTES.load(Ordering::Relaxed) + changes_bytes(changes),
    );
    let mut parent_path = None;
    if !clear {
        // Most inherited variables are not among the changes: a key whose length no change
        // has skips the map lookup.
        let lengths = KeyLengths::of(changes);
        crate::sys::for_each_environ(|entry| {
            let key = entry.split(|&b| b == b'=').next().unwrap_or(entry);
            if key == b"PATH" {
                let value = entry.get(key.len() + 1..).unwrap_or_default();
                parent_path = Some(OsStr::from_bytes(value).to_os_string());
            }
            if !lengths.may_hold(key) || !changes.contains_key(OsStr::from_bytes(key)) {
                envp.push(&[entry]);
            }
        });
    }
    for (key, value) in changes {
        if let Some(value) = value {
            envp.push(&[key.as_bytes(), b"=", value.as_bytes()]);
        }
    }
    let (count, bytes) = envp.size();
    LAST_COUNT.store(count, Ordering::Relaxed);
    LAST_BYTES.store(bytes, Ordering::Relaxed);
    let search_path = match changes.get(OsStr::new("PATH")) {
        Some(set_or_removed) => set_or_removed.clone(),
        None => parent_path,
    };
    Ok(ChildEnv {
        envp: Some(envp.build()),
        search_path,
    })
}

/// Strings and bytes of the last environment built: the next one is likely the same size.
static LAST_COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Bytes the set variables add (`KEY=VALUE` and a NUL each).
fn changes_bytes(changes: &BTreeMap<OsString, Option<OsString>>) -> usize {
    changes
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| k.len() + v.len() + 2))
        .sum()
}

/// The lengths of a set of keys, as bits (lengths of 63 and more share the last bit).
struct KeyLengths(u64);

impl KeyLengths {
    fn of(changes: &BTreeMap<OsString, Option<OsString>>) -> KeyLengths {
        KeyLengths(changes.keys().fold(0, |bits, k| bits | Self::bit(k.len())))
    }

    fn bit(len: usize) -> u64 {
        1 << len.min(63)
    }

    /// False when no key of the set has `key`'s length.
    fn may_hold(&self, key: &[u8]) -> bool {
        self.0 & Self::bit(key.len()) != 0
    }
}

fn check_key(program: &OsStr, key: &OsStr) -> Result<(), SpawnError> {
    let bytes = key.as_bytes();
    let reason = if bytes.is_empty() {
        "the key is empty"
    } else if bytes.contains(&b'=') {
        "the key contains '='"
    } else if bytes.contains(&0) {
        "the key contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(invalid(program, key, reason))
}

fn invalid(program: &OsStr, key: &OsStr, reason: &'static str) -> SpawnError {
    SpawnError::InvalidOption {
        program: program.to_os_string(),
        option: CommandOption::Env(key.to_os_string()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<OsString, Option<OsString>> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), v.map(OsString::from)))
            .collect()
    }

    fn strings(env: &ChildEnv) -> Vec<String> {
        env.envp
            .as_ref()
            .expect("an envp")
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    #[test]
    fn no_change_keeps_the_parents_environment() {
        let env = prepare(OsStr::new("p"), &BTreeMap::new(), false).expect("valid");
        assert!(env.envp.is_none());
        assert_eq!(env.search_path, std::env::var_os("PATH"));
        // A path is not searched: PATH is not even read.
        let env = prepare(OsStr::new("/bin/p"), &BTreeMap::new(), false).expect("valid");
        assert_eq!(env.search_path, None);
    }

    #[test]
    fn clear_then_set_gives_exactly_the_set_ones_and_their_path() {
        let c = changes(&[("B", Some("2")), ("A", Some("1")), ("PATH", Some("/x"))]);
        let env = prepare(OsStr::new("p"), &c, true).expect("valid");
        assert_eq!(strings(&env), ["A=1", "B=2", "PATH=/x"]);
        assert_eq!(env.search_path.as_deref(), Some(OsStr::new("/x")));
        let env = prepare(OsStr::new("p"), &BTreeMap::new(), true).expect("valid");
        assert!(strings(&env).is_empty());
        assert_eq!(env.search_path, None, "a cleared PATH means the default");
    }

    #[test]
    fn removal_and_override_of_inherited_variables() {
        // The test process has PATH; remove it and override HOME-like names.
        let c = changes(&[("PATH", None), ("NAPIX_ENV_TEST", Some("v"))]);
        let env = prepare(OsStr::new("p"), &c, false).expect("valid");
        let s = strings(&env);
        assert!(!s.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(s.iter().filter(|e| *e == "NAPIX_ENV_TEST=v").count(), 1);
        assert_eq!(env.search_path, None);
    }

    #[test]
    fn the_length_filter_never_hides_a_change() {
        // Same length as a changed key but another name: kept. Keys of 63 bytes and more share
        // one length bit: each is still looked up.
        let long = "L".repeat(70);
        let longer = "M".repeat(80);
        let c = changes(&[("NAPIX_LEN_A", None), (long.as_str(), Some("x"))]);
        let key = |k: &str| KeyLengths::of(&c).may_hold(k.as_bytes());
        assert!(key("NAPIX_LEN_B"), "same length");
        assert!(key(&longer), "long keys share a bit");
        assert!(!key("SHORT"));
        let env = prepare(OsStr::new("p"), &c, true).expect("valid");
        assert_eq!(strings(&env), [format!("{long}=x")]);
    }

    #[test]
    fn sizes_of_the_last_environment_do_not_limit_the_next() {
        // A larger environment than the hint still comes out whole.
        let many: Vec<(String, String)> = (0..200)
            .map(|i| (format!("NAPIX_MANY_{i}"), "v".repeat(i)))
            .collect();
        let c: BTreeMap<OsString, Option<OsString>> = many
            .iter()
            .map(|(k, v)| (OsString::from(k), Some(OsString::from(v))))
            .collect();
        let env = prepare(OsStr::new("p"), &c, true).expect("valid");
        let s = strings(&env);
        assert_eq!(s.len(), 200);
        assert!(s.iter().all(|e| e.starts_with("NAPIX_MANY_")));
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (key, value, reason) in [
            ("", Some("v"), "the key is empty"),
            ("A=B", Some("v"), "the key contains '='"),
            ("A\0B", None, "the key contains a NUL byte"),
            ("OK", Some("a\0b"), "the value contains a NUL byte"),
        ] {
            let c = changes(&[(key, value)]);
            let err = prepare(OsStr::new("prog"), &c, false)
                .err()
                .expect("rejected");
            assert_eq!(
                err,
                SpawnError::InvalidOption {
                    program: "prog".into(),
                    option: CommandOption::Env(key.into()),
                    reason,
                }
            );
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
    }
}
