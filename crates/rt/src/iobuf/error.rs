//! Errors of IOBuf operations whose success depends on data or layout known only at run time.
//!
//! Following cairn's rule that bad input never panics (DESIGN.md), the operations a peer's
//! bytes can make fail (reading past the end of a chain, prepending a header into too little
//! headroom) return these errors. Operations whose bounds are the caller's own arithmetic
//! (`advance`, `split_to`, ...) panic like slice indexing does, and say so in their docs.

use core::fmt;

/// A buffer had less headroom or tailroom than an operation needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotEnoughRoom {
    /// The bytes of room the operation needed.
    pub requested: usize,
    /// The bytes of room the buffer had.
    pub available: usize,
}

impl fmt::Display for NotEnoughRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needed {} bytes of room but the buffer has {}", self.requested, self.available)
    }
}

impl core::error::Error for NotEnoughRoom {}

/// A read needed more bytes than remained in the chain or cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnexpectedEnd {
    /// The bytes the read needed.
    pub requested: usize,
    /// The bytes that remained.
    pub remaining: usize,
}

impl fmt::Display for UnexpectedEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needed {} bytes but only {} remain", self.requested, self.remaining)
    }
}

impl core::error::Error for UnexpectedEnd {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn errors_say_what_was_needed_and_what_there_was() {
        let room = NotEnoughRoom { requested: 14, available: 8 };
        assert_eq!(room.to_string(), "needed 14 bytes of room but the buffer has 8");
        let end = UnexpectedEnd { requested: 4, remaining: 3 };
        assert_eq!(end.to_string(), "needed 4 bytes but only 3 remain");
    }
}
