//! A DHCP client (RFC 2131, options of RFC 2132) that configures an
//! [`Interface`](crate::iface::Interface): its address and prefix, and its default gateway.
//!
//! [`packet`] parses and emits the message, checking every length in the untrusted bytes;
//! [`client`] is the state machine, sans-IO over the interface's UDP sockets.

pub mod client;
pub mod packet;

pub use client::{DhcpClient, DhcpConfig, DhcpCounters, DhcpEvent, DhcpState, Lease};
pub use packet::{DhcpRepr, MessageType};
