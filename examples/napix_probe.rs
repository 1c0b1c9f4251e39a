//! `napix_probe`: a tiny program that reports what it inherited, for the tests and fuzz targets
//! that look at the child (`tests/fuzz_logic/probe.rs` reads its report).
//!
//! It prints, on stdout, one line per item:
//! - `argv:<hex>` for each argument, `argv[0]` included, byte for byte;
//! - `fd:<n>:<target>` for each open descriptor (the one it lists them with left out);
//! - `SigBlk:<hex>`, `SigIgn:<hex>`, `SigCgt:<hex>` from `/proc/self/status`.
//!
//! It defines the C `main` itself (`#![no_main]`): Rust's own start-up code would set SIGPIPE to
//! SIG_IGN and reopen closed standard descriptors, hiding exactly what it is meant to see.
#![no_main]

use std::ffi::CStr;
use std::io::Write;

/// The C entry point: `argc`/`argv` as the kernel passed them.
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    let mut out = Vec::new();
    for i in 0..usize::try_from(argc).unwrap_or(0) {
        // SAFETY: the kernel passes `argc` valid NUL-terminated strings in `argv`.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes();
        out.extend_from_slice(b"argv:");
        for b in arg {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        out.push(b'\n');
    }
    // Before listing the descriptors: reading the file takes one for a moment.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let listing = format!("/proc/{}/fd", std::process::id());
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let target = std::fs::read_link(entry.path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if target == listing {
                continue;
            }
            out.extend_from_slice(format!("fd:{}:{target}\n", name.to_string_lossy()).as_bytes());
        }
    }
    for line in status.lines() {
        if ["SigBlk:", "SigIgn:", "SigCgt:"]
            .iter()
            .any(|k| line.starts_with(k))
        {
            out.extend_from_slice(line.replace(['\t', ' '], "").as_bytes());
            out.push(b'\n');
        }
    }
    match std::io::stdout().write_all(&out) {
        Ok(()) => 0,
        Err(_) => 3,
    }
}
