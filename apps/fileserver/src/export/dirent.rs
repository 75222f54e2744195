//! Parsing the `struct linux_dirent64` records getdents64(2) writes.
//!
//! Layout (getdents(2)): `d_ino: u64`, `d_off: i64` (the cookie of the *next* entry, which
//! lseek(2) on the directory accepts to resume there), `d_reclen: u16`, `d_type: u8`, then the
//! NUL-terminated name, padded to `d_reclen`.

/// One record, borrowed from the getdents64 buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawDirent<'a> {
    /// Inode number.
    pub ino: u64,
    /// The cookie that resumes the listing after this entry.
    pub next: u64,
    /// Linux `d_type`.
    pub kind: u8,
    /// The name, without its NUL.
    pub name: &'a [u8],
}

/// Offset of `d_name` in a record.
const NAME_OFFSET: usize = 19;

/// An iterator over the records in `buf[..len]`; it stops at the first malformed record.
pub(crate) struct Dirents<'a> {
    rest: &'a [u8],
}

impl<'a> Dirents<'a> {
    /// The records of a buffer getdents64 filled.
    pub fn new(filled: &'a [u8]) -> Self {
        Dirents { rest: filled }
    }
}

impl<'a> Iterator for Dirents<'a> {
    type Item = RawDirent<'a>;

    fn next(&mut self) -> Option<RawDirent<'a>> {
        let rest = self.rest;
        if rest.len() < NAME_OFFSET {
            return None;
        }
        let ino = u64::from_ne_bytes(rest[0..8].try_into().ok()?);
        let next = u64::from_ne_bytes(rest[8..16].try_into().ok()?);
        let reclen = usize::from(u16::from_ne_bytes(rest[16..18].try_into().ok()?));
        let kind = rest[18];
        if reclen < NAME_OFFSET || reclen > rest.len() {
            self.rest = &[];
            return None;
        }
        let field = &rest[NAME_OFFSET..reclen];
        let name = &field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())];
        self.rest = &rest[reclen..];
        Some(RawDirent { ino, next, kind, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ino: u64, next: u64, kind: u8, name: &str) -> Vec<u8> {
        let reclen = (NAME_OFFSET + name.len() + 1).next_multiple_of(8);
        let mut rec = Vec::new();
        rec.extend_from_slice(&ino.to_ne_bytes());
        rec.extend_from_slice(&next.to_ne_bytes());
        rec.extend_from_slice(&(reclen as u16).to_ne_bytes());
        rec.push(kind);
        rec.extend_from_slice(name.as_bytes());
        rec.resize(reclen, 0);
        rec
    }

    #[test]
    fn parses_records_and_stops_at_garbage() {
        let mut buf = record(5, 10, 4, ".");
        buf.extend(record(77, 20, 8, "a-long-file-name"));
        buf.extend_from_slice(&[1, 2, 3]);
        let got: Vec<_> = Dirents::new(&buf).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], RawDirent { ino: 77, next: 20, kind: 8, name: b"a-long-file-name" });
        let mut bad = record(1, 2, 8, "x");
        bad[16] = 200;
        assert_eq!(Dirents::new(&bad).count(), 0);
    }
}
