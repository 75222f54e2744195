//! # cairn-hosted: the Linux platform of cairn
//!
//! Runs cairn's portable core (`cairn-rt`) in a Linux process, as EbbRT's hosted runtime does:
//!
//! - one thread per core, pinned to a CPU of the process's affinity set ([`affinity`]);
//! - every core's I/O through its own io_uring ([`reactor`]): the event loop's "device
//!   completions" are the ring's completion queue, and blocking is `io_uring_enter` with a
//!   timeout;
//! - an eventfd per core as the doorbell that other cores ring ([`platform`]);
//! - TCP and UDP on the kernel's sockets that take and give IOBufs ([`net`]), with multishot
//!   accept and multishot receive into a per-core provided-buffer ring ([`bufring`]), so
//!   appliances run before cairn's own network stack exists. Listeners bind one socket per core
//!   with `SO_REUSEPORT`, so a connection accepted on a core stays on it;
//! - cairn's general-purpose allocator over `mmap`ed memory, installable as the global
//!   allocator ([`pages`]).
//!
//! [`start`] builds the runtime and its core threads.
#![warn(missing_docs)]

pub mod affinity;
pub mod bufring;
pub mod net;
pub mod netdev;
pub mod netstack;
pub mod pages;
pub mod platform;
pub mod reactor;
mod start;

pub use platform::HostedPlatform;
pub use start::{start, RuntimeHandle};
