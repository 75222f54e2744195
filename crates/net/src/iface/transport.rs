//! [`IpTransport`]: how the interface hands segments of a connection-oriented transport (TCP)
//! to its implementation and collects what it sends, without the interface knowing its state
//! machine. The shape is the TCP stack's entry points (`input`, `dispatch`, `on_timer`,
//! `next_deadline`), so the stack plugs in by implementing this trait.

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use crate::tcp::TcpStack;
use crate::wire::Ipv4Address;

/// A transport protocol above IPv4 driven by the [`Interface`](super::Interface): it receives
/// whole, checksum-verified segments and, when polled, emits segments for the interface to put
/// in IPv4 datagrams.
pub trait IpTransport {
    /// Whether a protocol is there at all; segments for a disabled one are answered with ICMP
    /// protocol unreachable (RFC 1122 §3.2.2.1) and counted.
    fn enabled(&self) -> bool {
        true
    }

    /// One received segment (transport header and data), from `src` to `dst`, checksum
    /// already verified (or offloaded).
    fn input(&mut self, now_ns: u64, src: Ipv4Address, dst: Ipv4Address, segment: SharedIoBuf);

    /// Hands every segment ready to send to `emit(src, dst, segment, segment_size)`, checksum
    /// filled (unless offloaded); `segment_size` is 0, or the MSS the device is to cut a
    /// segment longer than the MTU into (TCP segmentation offload).
    fn dispatch(
        &mut self,
        now_ns: u64,
        emit: &mut dyn FnMut(Ipv4Address, Ipv4Address, IoBufChain, u16),
    );

    /// Runs timers that are due at `now_ns`.
    fn on_timer(&mut self, now_ns: u64);

    /// When [`IpTransport::on_timer`] next needs to run.
    fn next_deadline(&self) -> Option<u64>;

    /// Whether [`IpTransport::dispatch`] has segments to emit now (the application queued
    /// data or closed a connection since the last poll).
    fn has_pending_output(&self) -> bool {
        false
    }
}

/// cairn's TCP ([`TcpStack`]) plugged into the interface: protocol 6 segments go to its
/// `input`, and its `dispatch` output leaves through the interface's IPv4 output.
impl IpTransport for TcpStack {
    fn input(&mut self, now_ns: u64, src: Ipv4Address, dst: Ipv4Address, segment: SharedIoBuf) {
        TcpStack::input(self, now_ns, src, dst, segment);
    }

    fn dispatch(
        &mut self,
        now_ns: u64,
        emit: &mut dyn FnMut(Ipv4Address, Ipv4Address, IoBufChain, u16),
    ) {
        TcpStack::dispatch(self, now_ns, emit);
    }

    fn on_timer(&mut self, now_ns: u64) {
        TcpStack::on_timer(self, now_ns);
    }

    fn next_deadline(&self) -> Option<u64> {
        TcpStack::next_deadline(self)
    }

    fn has_pending_output(&self) -> bool {
        TcpStack::has_pending_output(self)
    }
}

/// No transport: the interface answers TCP segments with protocol unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoTransport;

impl IpTransport for NoTransport {
    fn enabled(&self) -> bool {
        false
    }

    fn input(&mut self, _: u64, _: Ipv4Address, _: Ipv4Address, _: SharedIoBuf) {}

    fn dispatch(&mut self, _: u64, _: &mut dyn FnMut(Ipv4Address, Ipv4Address, IoBufChain, u16)) {}

    fn on_timer(&mut self, _: u64) {}

    fn next_deadline(&self) -> Option<u64> {
        None
    }
}
