//! [`CStringArray`]: C strings in one buffer and the NULL-terminated pointer array `execve`
//! takes, built once on the caller's thread; and [`for_each_environ`], the parent's environment
//! read as C strings.

/// NUL-terminated strings packed in one buffer plus a NULL-terminated array of pointers to them
/// (an `envp`): two allocations, however many strings.
///
/// The pointers point into the buffer's heap memory, which never moves or changes once built
/// (moving the array moves only the `Vec` headers), so they stay valid wherever the array goes.
pub(crate) struct CStringArray {
    buf: Vec<u8>,
    ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers only point into `buf`, which the array owns and never mutates after
// building; they are read, never written through, so sharing or sending the array is as safe as
// for the `Vec<u8>` itself.
unsafe impl Send for CStringArray {}
// SAFETY: as above: nothing is mutated through a shared reference.
unsafe impl Sync for CStringArray {}

/// Collects the strings of a [`CStringArray`].
#[derive(Default)]
pub(crate) struct CStringArrayBuilder {
    buf: Vec<u8>,
    /// Where each string starts in `buf`: the pointers are made from these at `build`, without
    /// scanning the bytes for NULs.
    starts: Vec<usize>,
}

impl CStringArrayBuilder {
    /// A builder with room for `count` strings of `bytes` bytes in all (NULs included), so that
    /// building a typical environment reallocates nothing.
    pub(crate) fn with_capacity(count: usize, bytes: usize) -> CStringArrayBuilder {
        CStringArrayBuilder {
            buf: Vec::with_capacity(bytes),
            starts: Vec::with_capacity(count),
        }
    }

    /// Appends one string made of `parts` (none of which may hold a NUL; the caller checked).
    pub(crate) fn push(&mut self, parts: &[&[u8]]) {
        self.starts.push(self.buf.len());
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.buf.push(0);
    }

    /// The strings pushed so far and their bytes (NULs included).
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.starts.len(), self.buf.len())
    }

    pub(crate) fn build(self) -> CStringArray {
        CStringArray::from_parts(self.buf, &self.starts)
    }
}

impl CStringArray {
    /// `buf` holds NUL-terminated strings back to back, starting at `starts`.
    fn from_parts(buf: Vec<u8>, starts: &[usize]) -> CStringArray {
        let base = buf.as_ptr();
        let mut ptrs = Vec::with_capacity(starts.len() + 1);
        ptrs.extend(
            starts
                .iter()
                .map(|&start| base.wrapping_add(start).cast::<libc::c_char>()),
        );
        ptrs.push(std::ptr::null());
        CStringArray { buf, ptrs }
    }

    /// The NULL-terminated pointer array, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }

    /// The strings, in order, without their NULs.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.buf
            .split(|&b| b == 0)
            .take(self.ptrs.len().saturating_sub(1))
    }
}

impl Clone for CStringArray {
    fn clone(&self) -> CStringArray {
        let base = self.buf.as_ptr();
        let starts: Vec<usize> = self.ptrs[..self.ptrs.len().saturating_sub(1)]
            .iter()
            .map(|&p| (p as usize).wrapping_sub(base as usize))
            .collect();
        CStringArray::from_parts(self.buf.clone(), &starts)
    }
}

impl std::fmt::Debug for CStringArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Calls `f` with each `KEY=VALUE` entry of the process environment (without its NUL).
///
/// Reads libc's `environ` directly: one pass, no copy, where `std::env::vars_os` makes two
/// allocations per variable. Like every spawn that inherits the environment (see
/// [`environ`](super::environ)), it relies on no thread changing the environment meanwhile,
/// which `std::env::set_var` (`unsafe` in Rust 2024) already requires.
pub(crate) fn for_each_environ(mut f: impl FnMut(&[u8])) {
    let mut p = super::environ::environ();
    if p.is_null() {
        return;
    }
    loop {
        // SAFETY: `environ` is a NULL-terminated array of pointers to C strings (see above).
        let entry = unsafe { *p };
        if entry.is_null() {
            break;
        }
        // SAFETY: each entry is a valid NUL-terminated string while the environment is unchanged.
        f(unsafe { std::ffi::CStr::from_ptr(entry) }.to_bytes());
        // SAFETY: the array goes on until its NULL, which was not reached yet.
        p = unsafe { p.add(1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_the_strings_through_moves_and_clones() {
        let mut b = CStringArrayBuilder::default();
        b.push(&[b"A", b"=", b"1"]);
        b.push(&[b"B=2"]);
        b.push(&[b"", b"", b""]);
        let moved = Box::new(b.build());
        let copy = (*moved).clone();
        for a in [&*moved, &copy] {
            let ptrs = a.as_ptr();
            // SAFETY: the array holds three valid pointers and a NULL, alive with `a`.
            unsafe {
                assert_eq!(std::ffi::CStr::from_ptr(*ptrs), c"A=1");
                assert_eq!(std::ffi::CStr::from_ptr(*ptrs.add(1)), c"B=2");
                assert_eq!(std::ffi::CStr::from_ptr(*ptrs.add(2)), c"");
                assert!((*ptrs.add(3)).is_null());
            }
            assert_eq!(a.iter().collect::<Vec<_>>(), [&b"A=1"[..], b"B=2", b""]);
        }
        assert_eq!(CStringArrayBuilder::default().build().iter().count(), 0);
    }

    #[test]
    fn environ_matches_std() {
        let mut ours = Vec::new();
        for_each_environ(|e| ours.push(e.to_vec()));
        let std: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(k, v)| [k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat())
            .collect();
        assert_eq!(ours, std);
    }
}
