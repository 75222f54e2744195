//! cairn-9p: the 9P2000 and 9P2000.L file protocol for cairn.
//!
//! In PROSE (Van Hensbergen and Goss, "PROSE I/O", papers/003) a library-OS partition owns
//! no drivers of its own: the controller partition lends it disks, the network, the console
//! and other services as file trees spoken over 9P, and synthetic file servers gateway system
//! services the same way. cairn's native partitions use 9P in the same role. The paper's own
//! lesson, that its v9fs/npfs path copied the data eight times on the way to a synthetic file
//! server, is why this crate is built around not copying payloads.
//!
//! This first part is the codec ([`codec`]): framing, version and `msize` negotiation, every
//! message of both dialects as a typed value, a decoder that borrows from the receive buffer
//! (strings and read/write payloads are slices of it) and an encoder that writes the wire form,
//! including a header-only form for `Rread` so a payload can be chained behind it without a
//! copy. Bad input never panics: every malformed message is a typed
//! [`DecodeError`](codec::DecodeError).
//!
//! The codec is written here rather than taken from a crate because a borrowed, allocation-free
//! decode that maps straight onto cairn's `IoBuf` is the point of it.
#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod client;
pub mod codec;
pub mod errno;
pub mod server;
pub mod transport;
