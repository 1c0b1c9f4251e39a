//! The process environment as execve's `envp`.

/// The process environment as the `envp` argument of execve.
///
/// The pointer is read at spawn time, on the spawning thread, as `posix_spawnp`/std do. Changing the
/// environment while other threads run is `unsafe` in Rust 2024 (`std::env::set_var`) for exactly
/// this reason, so a caller that follows that contract cannot race us.
pub(crate) fn environ() -> *const *const libc::c_char {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is the libc global; reading the pointer value is a plain load.
    unsafe { environ }
}
