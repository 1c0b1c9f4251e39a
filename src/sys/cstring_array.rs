//! [`CStringArray`]: C strings and the NULL-terminated pointer array `execve` takes, built once
//! on the caller's thread.

use std::ffi::CString;

/// Owned C strings plus a NULL-terminated array of pointers to them (an `envp`).
///
/// The pointers point into the strings' own heap buffers, which never move or change while the
/// array lives (moving the array moves only the `Vec` headers), so they stay valid wherever the
/// array goes.
pub(crate) struct CStringArray {
    items: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers only point into `items`, which the array owns and never mutates; they
// are read, never written through, so sharing or sending the array is as safe as for the
// `Vec<CString>` itself.
unsafe impl Send for CStringArray {}
// SAFETY: as above: nothing is mutated through a shared reference.
unsafe impl Sync for CStringArray {}

impl CStringArray {
    pub(crate) fn new(items: Vec<CString>) -> CStringArray {
        let mut ptrs = Vec::with_capacity(items.len() + 1);
        ptrs.extend(items.iter().map(|s| s.as_ptr()));
        ptrs.push(std::ptr::null());
        CStringArray { items, ptrs }
    }

    /// The NULL-terminated pointer array, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }

    /// The strings, in order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &std::ffi::CStr> {
        self.items.iter().map(CString::as_c_str)
    }
}

impl Clone for CStringArray {
    fn clone(&self) -> CStringArray {
        CStringArray::new(self.items.clone())
    }
}

impl std::fmt::Debug for CStringArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.items.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_the_strings_through_moves_and_clones() {
        let array = CStringArray::new(vec![c"A=1".to_owned(), c"B=2".to_owned()]);
        let moved = Box::new(array);
        let copy = (*moved).clone();
        for a in [&*moved, &copy] {
            let ptrs = a.as_ptr();
            // SAFETY: the array holds two valid pointers and a NULL, alive with `a`.
            unsafe {
                assert_eq!(std::ffi::CStr::from_ptr(*ptrs), c"A=1");
                assert_eq!(std::ffi::CStr::from_ptr(*ptrs.add(1)), c"B=2");
                assert!((*ptrs.add(2)).is_null());
            }
        }
        assert_eq!(copy.iter().count(), 2);
    }
}
