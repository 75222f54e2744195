//! IOBuf: zero-copy buffers, chains of them, and a counter of the bytes copied anyway.
//!
//! This follows the IOBuf of the EbbRT paper (Schatzberg et al., OSDI 2016, "Network Stack"):
//! an IOBuf manages the ownership of a region of memory and a view of part of it. The network
//! stack hands buffers to the application and takes them back without copying, and prepends
//! headers into the headroom in front of the view. cairn's users of this module are the TCP/IP
//! stack (headers in headroom, segments split off a receive chain), the 9P codec (payloads
//! borrowed from the request chain), AF_XDP and shared-memory ring devices (their frames lent
//! as buffers and returned when the last buffer over them drops) and the cache (one value sent
//! to many clients by reference count).
//!
//! # The pieces
//!
//! - [`IoBuf`]: a *unique* buffer. It owns its range of the storage outright, so it can be
//!   written: into the view, into the tailroom behind it, into the headroom in front of it.
//! - [`SharedIoBuf`]: a *shared* buffer, immutable and cheap to clone (an atomic reference
//!   count: buffers cross cores). [`IoBuf::freeze`] is free; [`SharedIoBuf::try_into_unique`]
//!   is free when the buffer is the only one over its storage and [`SharedIoBuf::into_unique`]
//!   copies otherwise.
//! - [`IoBufChain`]: a sequence of buffers of one kind read as a single byte stream, split and
//!   advanced across segment boundaries without copying, with a gather view
//!   ([`IoBufChain::slices`], [`IoBufChain::gather`]) for vectored I/O.
//! - [`ChainCursor`]: reads bytes and big/little-endian integers across segment boundaries.
//! - [`bytes_copied`], [`CopyMeter`], [`set_copy_observer`]: the copy counter.
//!
//! # Storage
//!
//! Every buffer is a view `[head, head + len)` into a *region* `[0, capacity)`; the bytes
//! before the view are its headroom and the bytes after it its tailroom. The region lives in
//! one of three kinds of storage ([`StorageKind`]):
//!
//! - **heap**: one allocation holds the reference count and the bytes together
//!   ([`IoBuf::with_headroom`]); its bytes start zeroed, so every byte a view can reach is
//!   initialized;
//! - **unowned**: `'static` bytes ([`SharedIoBuf::from_static`]), no allocation at all;
//! - **external**: memory lent by someone else with a release hook that gets it back when the
//!   last buffer over it drops ([`IoBuf::from_external`], [`IoBuf::from_vec`]).
//!
//! # Splitting and the aliasing rule
//!
//! Splitting a buffer ([`IoBuf::split_to`], [`IoBuf::split_off`]) gives two buffers over the
//! same storage without copying: the reference count goes up by one and the *region* is cut at
//! the split point, so the front half keeps the headroom and has no tailroom, the back half
//! keeps the tailroom and has no headroom. That cut is what keeps unique halves sound: the
//! region of a unique buffer is disjoint from the region of every other live buffer, so no
//! buffer can ever read bytes that a unique buffer may write. Two halves cut from one buffer
//! join back with [`IoBuf::try_join`] (again without copying) when they still meet at the cut.
//!
//! # What counts as a copy
//!
//! A process-wide counter ([`bytes_copied`]) adds up every payload byte that code in this module
//! copies with `memcpy`; copies made by the caller through a `&mut [u8]` it was handed are its
//! own business. Exactly these operations count, by the number of bytes they copy:
//!
//! | operation | bytes counted |
//! |---|---|
//! | [`IoBuf::copy_from_slice`], [`SharedIoBuf::copy_from_slice`] | the slice |
//! | [`IoBuf::extend_from_slice`], [`IoBuf::try_extend_from_slice`], [`IoBuf::prepend_slice`] | the slice |
//! | [`IoBuf::reserve`] (and `extend_from_slice`) when the storage must be reallocated | the view moved |
//! | [`SharedIoBuf::into_unique`] when the buffer is not the only one over its storage | the view |
//! | [`IoBuf::to_vec`], [`SharedIoBuf::to_vec`], [`IoBufChain::to_vec`] | the view / chain |
//! | [`IoBufChain::to_contiguous`]; [`IoBufChain::make_contiguous`] and [`IoBufChain::into_contiguous`] with two or more segments | the chain |
//! | [`IoBufChain::copy_to_slice`], [`ChainCursor::copy_to_slice`] | the destination |
//!
//! Nothing else counts: creating, cloning, freezing, converting a sole shared buffer to unique,
//! advancing, retreating, trimming, splitting, joining, every chain operation not in the table,
//! and the cursor's fixed-size field reads ([`ChainCursor::read_u32_be`] and friends,
//! [`ChainCursor::read_array`]), which decode a header field into a value (at most the few
//! bytes straddling a segment boundary are assembled on the stack).
//!
//! The counter is global and relaxed, so a test that wants to prove a path copies nothing while
//! other tests run in parallel threads attributes copies to its own thread with
//! [`set_copy_observer`] (this module's tests do it with a thread-local counter).
//!
//! cairn writes this itself rather than taking a crate because the buffer discipline is the
//! point of the system: it decides whether the network path copies.

mod buf;
mod chain;
mod counter;
mod cursor;
mod error;
mod segment;
mod shared;
mod storage;

#[cfg(test)]
mod proptests;

pub use buf::IoBuf;
pub use chain::{IoBufChain, Slices, SlicesMut};
pub use counter::{bytes_copied, set_copy_observer, CopyMeter};
pub use cursor::ChainCursor;
pub use error::{NotEnoughRoom, UnexpectedEnd};
pub use segment::Segment;
pub use shared::SharedIoBuf;
pub use storage::StorageKind;
