//! cairn-net: cairn's own TCP/IP stack (Ethernet, ARP, IPv4, ICMP, UDP, TCP).
//!
//! cairn writes its own stack rather than adopting one because the stack's fast path is the
//! point of a library OS: a frame arrives in an [`IoBuf`](cairn_rt::iobuf::IoBuf) the device
//! filled, is parsed in place, and reaches the application without a copy, a lock or a system
//! call. That only holds if every layer is written against cairn's buffers and event loops.
//!
//! This first part is [`wire`]: zero-copy views over byte buffers for each protocol's header,
//! with length checks before any field is read and checksums computed and verified in software
//! unless the device offloads them.

#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod device;
pub mod dhcp;
pub mod iface;
pub mod loopback;
pub mod segment;
pub mod tcp;
pub mod wire;
