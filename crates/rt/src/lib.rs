//! # cairn-rt: the portable core of the cairn library OS
//!
//! This crate is everything cairn's runtime needs that does not depend on an operating system.
//! It is `#![no_std]` with `alloc`, so the same code runs hosted in a Linux process
//! (`cairn-hosted`) and, later, on cairn's own native kernel. What needs an OS sits behind
//! [`platform::Platform`].
//!
//! The pieces follow the EbbRT paper (Schatzberg et al., OSDI 2016; `shared/papers/002_*`):
//!
//! - [`ebb`]: Elastic Building Blocks. An [`ebb::EbbRef`] resolves to the calling core's
//!   representative through a per-core translation table; a miss calls the Ebb's fault handler.
//! - [`percore`]: the per-core block that the translation table and the event manager hang from,
//!   found through one thread-pointer-relative load.
//! - [`event`]: one non-preemptive, run-to-completion [`event::EventManager`] per core with
//!   `spawn_local`, `spawn_on`, idle handlers, timers and adaptive polling.
//! - [`iobuf`]: zero-copy buffers with headroom, chains and a copy counter.
//! - [`mem`]: a buddy page allocator, per-core slab caches and a general-purpose allocator.
//! - [`sync`]: the lock-free queue that carries work between cores.
//! - [`slab`]: the generational slab behind per-core tables of tasks, timers and I/O.
//!
//! cairn writes these itself rather than taking a crate because they are the point of the
//! system: the Ebb fast path, the event loop and the buffer discipline decide its performance.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(test, loom))]
extern crate std;

pub mod ebb;
pub mod event;
pub mod iobuf;
pub mod mem;
pub mod percore;
pub mod platform;
pub mod slab;
pub mod sync;

pub use ebb::{EbbId, EbbRef};
pub use percore::CoreId;
pub use platform::Platform;
