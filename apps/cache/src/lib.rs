//! # cairn-cache: a memcached-compatible cache appliance
//!
//! memcached's text protocol and meta commands (`protocol.txt`), storage bounded by a memory
//! limit, and a per-core server, after the EbbRT paper's memcached (OSDI 2016, section 5).
//!
//! - [`protocol`]: requests parsed from the connection's bytes, borrowing keys and data.
//! - [`store`]: one core's items: hash table, memory accounting, eviction, expiry.
//! - [`engine`]: what each command does to a store, and the replies it writes.
//! - [`server`]: connections on the cairn runtime, the key space sharded over cores.
//!
//! The library names no platform: the `cairn` binary (or a test) wires the server to the
//! hosted runtime's sockets today and to cairn's own network stack later.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod cnum;
pub mod engine;
pub mod protocol;
pub mod server;
pub mod store;
