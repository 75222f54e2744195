//! The interface layer: everything between a [`Device`](crate::device::Device) and the
//! transports, sans-IO. An [`Interface`] takes Ethernet frames from its device and answers ARP
//! (RFC 826), checks, reassembles and dispatches IPv4 (RFC 791, RFC 1122), answers ICMP echo and
//! reports unreachable ports (RFC 792), delivers UDP (RFC 768) to bound sockets and TCP to the
//! transport plugged in through [`IpTransport`]; on the way out it routes (subnet or default
//! gateway), fragments, resolves next hops and queues frames for the device.
//!
//! Data stays in the buffers it arrived in: a UDP socket receives a view of the received frame,
//! an echo reply sends the request's data buffer back, and headers are written into the
//! headroom in front of an application's payload when that buffer allows it. Only reassembly
//! copies (once, into one contiguous buffer).
//!
//! Every drop is counted in [`InterfaceCounters`]; [`steering`] says which core owns a frame.

pub mod arp;
pub mod config;
pub mod counters;
pub mod icmp;
pub mod interface;
pub mod ipv4;
pub mod steering;
pub mod transport;
pub mod udp;

pub use config::{ArpConfig, InterfaceConfig, Ipv4Cidr, ReassemblyConfig};
pub use counters::InterfaceCounters;
pub use icmp::IcmpEvent;
pub use interface::{Interface, SendError};
pub use steering::{flow_core, steer, FlowTarget};
pub use transport::{IpTransport, NoTransport};
pub use udp::{UdpDatagram, UdpError, UdpHandle};
