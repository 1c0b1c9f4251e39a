//! AddressSanitizer and the Vfork backend's child stack (built only with `cfg(napix_asan)`, set
//! by `build.rs` under `-Zsanitizer=address`, cargo fuzz's default).
//!
//! The Vfork child runs instrumented code on our reused private stack and never returns: it
//! execs or exits. The redzones its frames poisoned in the shadow memory (shared: `CLONE_VM`)
//! are never unpoisoned, so the next child, whose frames sit at the same addresses with another
//! layout, trips a false "stack-buffer-overflow". The parent, which resumes only once the child
//! exec'd or exited (`CLONE_VFORK`), unpoisons the whole stack after every clone. Nothing is
//! called from the child. (ASan may still warn once that it ignores the child's
//! `__asan_handle_no_return`, the stack being unknown to it: harmless, as the warning says.)
#![allow(unsafe_code)]

unsafe extern "C" {
    fn __asan_unpoison_memory_region(addr: *const libc::c_void, size: usize);
}

/// Forgets what the last child poisoned on the `len` bytes at `base`: call in the parent after
/// the clone returned (no child runs there then).
pub(super) fn child_stack_done(base: *const libc::c_void, len: usize) {
    // SAFETY: only ASan's shadow of our own mapping changes; no child runs on it any more.
    unsafe { __asan_unpoison_memory_region(base, len) };
}
