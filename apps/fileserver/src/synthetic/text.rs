//! Small text files and error numbers: what every synthetic file shares.
//!
//! Plan 9's synthetic files answer a read at an offset from a string made for the occasion
//! (`readstr` in the Plan 9 kernel's `devcons.c` and `devip.c`); [`read_at`] does the same.

use std::io;

use cairn_9p::errno::{Errno, EIO};
use cairn_rt::iobuf::IoBuf;

/// At most `count` bytes of `text` from `offset`, as `readstr` does: empty past the end.
pub(crate) fn read_at(text: &[u8], offset: u64, count: u32) -> IoBuf {
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
    let end = start.saturating_add(count as usize).min(text.len());
    if start == end {
        return IoBuf::new();
    }
    IoBuf::copy_from_slice(&text[start..end])
}

/// The Linux errno of an I/O error (`EIO` when it carries none).
pub(crate) fn errno_of(e: &io::Error) -> Errno {
    match e.raw_os_error() {
        Some(n) if n > 0 => n as Errno,
        _ => EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_at_slices_like_readstr() {
        assert_eq!(read_at(b"hello", 0, 3).as_slice(), b"hel");
        assert_eq!(read_at(b"hello", 3, 10).as_slice(), b"lo");
        assert!(read_at(b"hello", 5, 10).is_empty());
        assert!(read_at(b"hello", u64::MAX, 10).is_empty());
        assert!(read_at(b"hello", 1, 0).is_empty());
    }

    #[test]
    fn errno_of_keeps_the_os_error() {
        assert_eq!(errno_of(&io::Error::from_raw_os_error(111)), 111);
        assert_eq!(errno_of(&io::Error::other("x")), EIO);
    }
}
