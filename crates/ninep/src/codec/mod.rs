//! The 9P2000 and 9P2000.L wire codec.
//!
//! Every message is framed as `size[4] type[1] tag[2] body`, little-endian, where `size` counts
//! the whole message including itself (intro(5)). Strings are `len[2]` followed by that many
//! bytes of UTF-8. The 9P2000.L messages and their layouts are those of diod's `protocol.md` and
//! the Linux v9fs client.
//!
//! # Contract
//!
//! * **Decoding borrows.** [`decode_tmessage`] and [`decode_rmessage`] take exactly one message
//!   (find its end in a stream with [`frame_len`]) and return values whose strings are `&str`
//!   and whose bulk payloads (`Twrite`, `Rread`, `Rreaddir`) are `&[u8]` slices of the receive
//!   buffer. Nothing is copied and nothing is allocated. A server that received the message in an
//!   `IoBuf` maps such a slice back to a sub-range of that buffer by its offset
//!   (`data.as_ptr() - buf.as_ptr()`) and hands the payload on without a copy.
//! * **Bad input never panics.** A truncated message, a size field that disagrees with the bytes
//!   present or exceeds `msize`, an unknown type, a count that runs past the end, a walk of more
//!   than [`MAXWELEM`] names, a string that is not UTF-8: each is a [`DecodeError`]. The header
//!   is still readable with [`peek_header`], so a server can answer with the right tag.
//! * **Encoding appends.** `encode_*` append one message to a `Vec<u8>` (which may already hold
//!   headroom or earlier messages) and fill in the size field; a message larger than `msize` is
//!   an [`EncodeError`] and leaves the vector as it was. [`encode_rread_header`] writes an
//!   `Rread` without its payload, so the payload can follow as its own chained buffer.
//!
//! ```
//! use cairn_9p::codec::{decode_tmessage, encode_tmessage, Dialect, Tmessage};
//!
//! let mut wire = Vec::new();
//! let msg = Tmessage::Clunk { fid: 7 };
//! encode_tmessage(1, &msg, Dialect::P2000L, 8192, &mut wire).unwrap();
//! assert_eq!(wire, [11, 0, 0, 0, 120, 1, 0, 7, 0, 0, 0]);
//! assert_eq!(decode_tmessage(&wire, Dialect::P2000L, 8192), Ok((1, msg)));
//! ```

mod decode;
mod encode;
mod message;
mod types;

#[cfg(test)]
mod tests;

use core::fmt;

pub use decode::{decode_rmessage, decode_tmessage, DirentIter, StatIter};
pub use encode::{
    encode_dirent, encode_rmessage, encode_rread_header, encode_rreaddir_header, encode_stat,
    encode_tmessage, encode_twrite_header,
};
pub use message::{Rmessage, Tmessage};
pub use types::*;

/// The smallest `msize` a server agrees to: below it no useful message fits (lib9p's rule).
pub const MIN_MSIZE: u32 = 256;

/// Which protocol a connection speaks, as its `Tversion` settled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Plain 9P2000 (Plan 9): `Topen`, `Tcreate`, `Tstat`, `Twstat`, `Rerror` with a string.
    P2000,
    /// 9P2000.L (Linux v9fs): Linux-shaped calls, numeric users, `Rlerror` with an errno.
    P2000L,
}

impl Dialect {
    /// The version string that names this dialect in `Tversion` and `Rversion`.
    pub fn version_str(self) -> &'static str {
        match self {
            Dialect::P2000 => VERSION_9P2000,
            Dialect::P2000L => VERSION_9P2000_L,
        }
    }

    /// The dialect a server speaks to a client that offered `version`, if any (version(5)).
    ///
    /// `9P2000.L` is 9P2000.L. Otherwise the suffix from the first period is stripped and any
    /// `9Pnnnn` with `nnnn >= 2000` is answered with 9P2000, the highest plain version there is;
    /// so `9P2000.u` gets `9P2000`. Anything else is not understood.
    pub fn from_version(version: &str) -> Option<Dialect> {
        if version == VERSION_9P2000_L {
            return Some(Dialect::P2000L);
        }
        let base = version.split('.').next().unwrap_or("");
        let digits = base.strip_prefix("9P")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // A long run of digits is a version far beyond 2000; it still gets 9P2000.
        let at_least_2000 = digits.len() > 4 || digits.parse::<u32>().ok()? >= 2000;
        at_least_2000.then_some(Dialect::P2000)
    }

    /// The error reply of this dialect: `Rerror` with `ename` for 9P2000, `Rlerror` with
    /// `errno` for 9P2000.L.
    pub fn error_reply(self, ename: &str, errno: u32) -> Rmessage<'_> {
        match self {
            Dialect::P2000 => Rmessage::Error { ename },
            Dialect::P2000L => Rmessage::Lerror { ecode: errno },
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version_str())
    }
}

/// What a server settles in answer to a `Tversion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The dialect both sides speak, or `None` when the client's version was not understood
    /// (or its `msize` was below [`MIN_MSIZE`]); the connection then speaks nothing yet.
    pub dialect: Option<Dialect>,
    /// The message size both sides must keep to: the smaller of the two offers.
    pub msize: u32,
}

impl Negotiated {
    /// The version string of the `Rversion`: the dialect's, or `"unknown"`.
    pub fn version_str(&self) -> &'static str {
        self.dialect.map_or(VERSION_UNKNOWN, Dialect::version_str)
    }

    /// The `Rversion` to send (with tag [`NOTAG`]).
    pub fn reply(&self) -> Rmessage<'static> {
        Rmessage::Version { msize: self.msize, version: self.version_str() }
    }
}

/// Settles a `Tversion` offering `client_msize` and `client_version` against a server whose
/// largest message is `server_msize`.
pub fn negotiate_version(client_msize: u32, client_version: &str, server_msize: u32) -> Negotiated {
    let msize = client_msize.min(server_msize);
    let dialect = if msize < MIN_MSIZE { None } else { Dialect::from_version(client_version) };
    Negotiated { dialect, msize }
}

/// The fixed header of a message: `size[4] type[1] tag[2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The size field: bytes of the whole message.
    pub size: u32,
    /// The message type ([`mtype`]).
    pub ty: u8,
    /// The tag that pairs a reply with its request.
    pub tag: u16,
}

/// Reads the header at the start of `buf`, or `None` if fewer than [`HEADER_LEN`] bytes are
/// there. Nothing else is checked: this is how a server learns the tag of a message that fails
/// to decode.
pub fn peek_header(buf: &[u8]) -> Option<Header> {
    let h = buf.get(..HEADER_LEN)?;
    Some(Header {
        size: u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
        ty: h[4],
        tag: u16::from_le_bytes([h[5], h[6]]),
    })
}

/// The length of the message at the start of a byte stream: its size field, once the four
/// bytes of it have arrived; `None` means more bytes are needed to know.
///
/// A reader takes this many bytes (after checking the value against `msize`, and at least
/// [`HEADER_LEN`]) and hands them to a decoder.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let s = buf.get(..4)?;
    usize::try_from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok()
}

/// Why bytes did not decode as a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header, or than the size field says the message has.
    Truncated {
        /// Bytes the message needs (at least).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The size field is smaller than the header itself.
    SizeTooSmall {
        /// The size field.
        size: u32,
    },
    /// The size field exceeds the negotiated `msize`.
    TooLarge {
        /// The size field.
        size: u32,
        /// The negotiated maximum.
        msize: u32,
    },
    /// More bytes were given than the size field covers (the buffer must hold one message).
    TrailingBytes {
        /// The size field.
        size: u32,
        /// Bytes present.
        available: usize,
    },
    /// A type number that is no message, or not one of this direction (request or reply).
    UnknownType {
        /// The type number.
        ty: u8,
    },
    /// A message of the other dialect.
    WrongDialect {
        /// The type number.
        ty: u8,
        /// The dialect the connection speaks.
        dialect: Dialect,
    },
    /// A field, string or count runs past the end of the message.
    FieldOverrun {
        /// The message type.
        ty: u8,
    },
    /// Bytes are left over after the message's last field.
    ExtraBody {
        /// The message type.
        ty: u8,
        /// Bytes left over.
        extra: usize,
    },
    /// A string is not valid UTF-8.
    InvalidUtf8 {
        /// The message type.
        ty: u8,
    },
    /// A walk of more than [`MAXWELEM`] names or qids.
    TooManyWalkElements {
        /// The message type.
        ty: u8,
        /// The count the message gave.
        count: u16,
    },
    /// The size fields of a stat structure disagree with each other or with its contents.
    BadStatSize {
        /// The message type (0 for a stat decoded outside a message).
        ty: u8,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { needed, available } => {
                write!(f, "truncated 9P message: need {needed} bytes, have {available}")
            }
            DecodeError::SizeTooSmall { size } => {
                write!(f, "9P size field {size} is smaller than the header")
            }
            DecodeError::TooLarge { size, msize } => {
                write!(f, "9P message of {size} bytes exceeds msize {msize}")
            }
            DecodeError::TrailingBytes { size, available } => {
                write!(f, "9P size field {size} but {available} bytes given")
            }
            DecodeError::UnknownType { ty } => write!(f, "unknown 9P message type {ty}"),
            DecodeError::WrongDialect { ty, dialect } => {
                write!(f, "9P message type {ty} is not part of {dialect}")
            }
            DecodeError::FieldOverrun { ty } => {
                write!(f, "a field of 9P message type {ty} runs past its end")
            }
            DecodeError::ExtraBody { ty, extra } => {
                write!(f, "{extra} stray bytes after 9P message type {ty}")
            }
            DecodeError::InvalidUtf8 { ty } => {
                write!(f, "a string in 9P message type {ty} is not UTF-8")
            }
            DecodeError::TooManyWalkElements { ty, count } => {
                write!(f, "9P message type {ty} walks {count} elements (at most {MAXWELEM})")
            }
            DecodeError::BadStatSize { ty } => {
                write!(f, "inconsistent stat size fields in 9P message type {ty}")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The message would exceed `msize` (or the 4 GiB a size field can say).
    TooLarge {
        /// Bytes the message would take.
        size: usize,
        /// The negotiated maximum.
        msize: u32,
    },
    /// A string is longer than the 65535 bytes its length field can say.
    StringTooLong {
        /// The string's length.
        len: usize,
    },
    /// The message is not part of the dialect.
    WrongDialect {
        /// The type number.
        ty: u8,
        /// The dialect asked for.
        dialect: Dialect,
    },
    /// `n_uname` of a `Tauth` or `Tattach` is `Some` under 9P2000 (which has no such field) or
    /// `None` under 9P2000.L (which requires it; use [`NONUNAME`]).
    NumericUser {
        /// The dialect asked for.
        dialect: Dialect,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::TooLarge { size, msize } => {
                write!(f, "9P message of {size} bytes exceeds msize {msize}")
            }
            EncodeError::StringTooLong { len } => {
                write!(f, "string of {len} bytes is too long for 9P")
            }
            EncodeError::WrongDialect { ty, dialect } => {
                write!(f, "9P message type {ty} is not part of {dialect}")
            }
            EncodeError::NumericUser { dialect } => {
                write!(f, "n_uname presence does not match {dialect}")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// Which dialects a message type belongs to: `None` for a number that is no message.
fn type_dialects(ty: u8) -> Option<(bool, bool)> {
    use mtype::*;
    const BOTH: (bool, bool) = (true, true);
    const PLAIN: (bool, bool) = (true, false);
    const LINUX: (bool, bool) = (false, true);
    Some(match ty {
        TVERSION | RVERSION | TAUTH | RAUTH | TATTACH | RATTACH | TFLUSH | RFLUSH | TWALK
        | RWALK | TREAD | RREAD | TWRITE | RWRITE | TCLUNK | RCLUNK | TREMOVE | RREMOVE => BOTH,
        RERROR | TOPEN | ROPEN | TCREATE | RCREATE | TSTAT | RSTAT | TWSTAT | RWSTAT => PLAIN,
        RLERROR | TSTATFS | RSTATFS | TLOPEN | RLOPEN | TLCREATE | RLCREATE | TSYMLINK
        | RSYMLINK | TMKNOD | RMKNOD | TRENAME | RRENAME | TREADLINK | RREADLINK | TGETATTR
        | RGETATTR | TSETATTR | RSETATTR | TXATTRWALK | RXATTRWALK | TXATTRCREATE
        | RXATTRCREATE | TREADDIR | RREADDIR | TFSYNC | RFSYNC | TLOCK | RLOCK | TGETLOCK
        | RGETLOCK | TLINK | RLINK | TMKDIR | RMKDIR | TRENAMEAT | RRENAMEAT | TUNLINKAT
        | RUNLINKAT => LINUX,
        _ => return None,
    })
}

/// Whether message type `ty` is part of `dialect`; `None` if `ty` is no message at all.
pub fn type_in_dialect(ty: u8, dialect: Dialect) -> Option<bool> {
    let (plain, linux) = type_dialects(ty)?;
    Some(match dialect {
        Dialect::P2000 => plain,
        Dialect::P2000L => linux,
    })
}
