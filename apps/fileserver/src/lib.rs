//! cairn-fileserver: 9P file servers and transports on cairn's hosted runtime.
//!
//! PROSE (papers/003) gives a library-OS partition its files, devices and network through 9P
//! from a controller. This crate is the controller's side on a Linux host: [`export`] serves a
//! host directory (as diod and npfs do), [`synthetic`] serves a Plan 9 style tree of devices,
//! runtime statistics and a gateway to the host's network, and [`transport`] carries 9P over
//! TCP, Unix sockets and shared-memory rings.
#![warn(missing_docs)]

pub mod export;
pub mod router;
pub mod synthetic;
pub mod transport;
