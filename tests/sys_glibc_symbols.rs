//! The crate must not raise the glibc version a binary needs: every glibc symbol a binary that
//! links it refers to must exist in glibc before 2.34 as well.
//!
//! On a build machine with glibc 2.34 or later every Rust binary refers to some symbols at
//! version GLIBC_2.34 (`__libc_start_main`, the `pthread_*` and `dl*` functions that moved into
//! libc.so.6 then), but glibc still exports those at their old versions, so the same program built
//! against an older glibc links and runs there. A symbol that exists *only* at 2.34 or later
//! (`posix_spawn_file_actions_addclosefrom_np`, `close_range`, ...) would not: that is what this
//! test looks for, with `objdump -T`, in this test binary (the crate with every backend) and in
//! the `vfork_only` example when it has been built.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use napix_executor::SpawnBackend;

/// Spawns `true` through every backend: links the whole crate into this test binary (an unused
/// crate would not be linked, and the check below would see nothing of it) and shows each backend
/// works here.
fn spawn_true_on_every_backend() {
    for backend in SpawnBackend::ALL {
        let running = common::start(backend, Duration::from_secs(1));
        let handle = running
            .exec()
            .create_process(&["true"], true)
            .unwrap_or_else(|e| panic!("{}: spawn true: {e}", backend.name()));
        let status = common::wait_for(&handle, Duration::from_secs(10));
        assert!(status.success(), "{}: true gave {status}", backend.name());
    }
}

/// `(major, minor)` of a `GLIBC_x.y[.z]` version name.
fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let mut parts = name.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Dynamic symbols of `file` with their glibc version: `(name, version)` pairs, for the symbols
/// it defines (a library) or needs (`*UND*`, a program).
fn glibc_symbols(file: &Path) -> Vec<(String, (u32, u32), bool)> {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(file)
        .output()
        .expect("run objdump");
    assert!(
        out.status.success(),
        "objdump -T {}: {out:?}",
        file.display()
    );
    let mut symbols = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "<addr> <flags...> <section> <size> <version> <name>"; the version may be in parens.
        let [.., section, _size, version, name] = fields[..] else {
            continue;
        };
        let Some(version) = glibc_version(version.trim_matches(|c| c == '(' || c == ')')) else {
            continue;
        };
        symbols.push((name.to_string(), version, section == "*UND*"));
    }
    symbols
}

/// The glibc libraries this process has loaded (libc.so.6, libm.so.6, ...), from /proc/self/maps.
fn loaded_glibc_libraries() -> BTreeSet<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains(".so"))
        .map(PathBuf::from)
        .collect()
}

fn objdump_available() -> bool {
    Command::new("objdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The symbols `binary` needs at glibc 2.34 or later that no loaded glibc library exports at an
/// older version.
fn needs_new_glibc(binary: &Path, old_versions: &BTreeMap<String, (u32, u32)>) -> Vec<String> {
    glibc_symbols(binary)
        .into_iter()
        .filter(|(_, version, undefined)| *undefined && *version >= (2, 34))
        .filter(|(name, _, _)| old_versions.get(name).is_none_or(|v| *v >= (2, 34)))
        .map(|(name, version, _)| format!("{name}@GLIBC_{}.{}", version.0, version.1))
        .collect()
}

#[test]
fn binaries_need_no_glibc_symbol_newer_than_2_33() {
    spawn_true_on_every_backend();
    if !objdump_available() {
        println!("skipped: objdump not found (install binutils to run this check)");
        return;
    }
    let mut oldest: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let libraries = loaded_glibc_libraries();
    for lib in &libraries {
        for (name, version, undefined) in glibc_symbols(lib) {
            if !undefined {
                let v = oldest.entry(name).or_insert(version);
                *v = (*v).min(version);
            }
        }
    }
    let newest = oldest.values().max().copied();
    if newest.is_none_or(|v| v < (2, 34)) {
        println!(
            "skipped: the loaded glibc ({libraries:?}) is older than 2.34; nothing to compare"
        );
        return;
    }
    assert!(
        oldest.contains_key("__libc_start_main"),
        "libc.so.6 should be among the loaded libraries: {libraries:?}"
    );

    let me = std::env::current_exe().expect("path of this test binary");
    let mut binaries = vec![me.clone()];
    // target/<profile>/deps/<this test> -> target/<profile>/examples/vfork_only
    let target = me.parent().and_then(Path::parent).and_then(Path::parent);
    for profile in ["debug", "release"] {
        if let Some(example) = target.map(|t| t.join(profile).join("examples/vfork_only"))
            && example.exists()
        {
            binaries.push(example);
        }
    }
    for binary in &binaries {
        let new = needs_new_glibc(binary, &oldest);
        println!("{}: checked", binary.display());
        assert!(
            new.is_empty(),
            "{} needs glibc symbols that exist only in glibc 2.34 or later: {new:?}",
            binary.display()
        );
    }
}

#[test]
fn version_names_parse() {
    assert_eq!(glibc_version("GLIBC_2.2.5"), Some((2, 2)));
    assert_eq!(glibc_version("GLIBC_2.34"), Some((2, 34)));
    assert_eq!(glibc_version("GLIBC_PRIVATE"), None);
    assert_eq!(glibc_version("GCC_3.0"), None);
}
