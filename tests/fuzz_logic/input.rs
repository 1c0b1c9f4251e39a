//! A byte reader that never fails: past the end of the input it yields zeros, so any byte string
//! decodes to some request or operation sequence.

/// Reads bytes from the front of a fuzz input.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, pos: 0 }
    }

    /// True once every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = (self.pos + 1).min(self.data.len());
        b
    }

    /// A little-endian u16, zeros past the end.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let s = &self.data[self.pos..end];
        self.pos = end;
        s
    }

    /// A length-prefixed byte string: one length byte, or 255 followed by a u16 length.
    pub fn blob(&mut self) -> &'a [u8] {
        let len = match self.u8() {
            255 => usize::from(self.u16()),
            n => usize::from(n),
        };
        self.take(len)
    }
}

/// The encoding [`Bytes::blob`] reads (for the seed encoders).
pub fn push_blob(out: &mut Vec<u8>, blob: &[u8]) {
    let blob = &blob[..blob.len().min(usize::from(u16::MAX))];
    if blob.len() < 255 {
        out.push(blob.len() as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(blob);
}
