//! [`InterfaceCounters`]: one counter for every frame the interface takes in or sends, and for
//! every reason it drops one, readable at run time (the issue's "counters for every drop and
//! error").

use core::fmt;

/// Defines the counters struct and its `name value` listing from one table, so a new counter
/// cannot be left out of the listing.
macro_rules! counters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[doc = $doc:literal])+ $field:ident,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[doc = $doc])+ pub $field: u64,)*
        }

        impl $name {
            /// Every counter as `(name, value)`, in declaration order.
            pub fn entries(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($field), self.$field)),*].into_iter()
            }
        }
    };
}

counters! {
    /// Counters of an [`Interface`](super::Interface). Each drop counter names the check that
    /// failed; every received frame ends in exactly one of the delivered or dropped counters.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InterfaceCounters {
        /// Frames taken from the device.
        rx_frames,
        /// Frames shorter than an Ethernet header.
        rx_truncated,
        /// Frames addressed to another station's MAC (or a multicast group we have not joined).
        rx_not_for_us,
        /// Frames of an EtherType other than IPv4 and ARP.
        rx_unknown_ethertype,
        /// ARP packets that were short or not Ethernet/IPv4.
        arp_malformed,
        /// ARP requests received.
        arp_requests_rx,
        /// ARP replies received.
        arp_replies_rx,
        /// ARP requests sent (first tries, retries and gratuitous).
        arp_requests_tx,
        /// ARP replies sent.
        arp_replies_tx,
        /// Resolutions that got no answer after every retry.
        arp_failures,
        /// Packets dropped waiting for resolution: queue full, too many pending destinations, or
        /// resolution failed.
        arp_queue_drops,
        /// IPv4 datagrams whose lengths do not fit the frame, or whose version is not 4.
        ipv4_malformed,
        /// IPv4 headers with a wrong checksum.
        ipv4_bad_checksum,
        /// IPv4 datagrams received with TTL 0 (RFC 1122 §3.2.1.7 forbids sending them).
        ipv4_ttl_zero,
        /// IPv4 datagrams addressed to another host (this host does not forward).
        ipv4_not_for_us,
        /// IPv4 datagrams with a source that cannot be a host (broadcast, multicast).
        ipv4_bad_source,
        /// IPv4 datagrams of a protocol with no handler here.
        ipv4_unknown_protocol,
        /// Datagrams not sent: no address configured for a unicast source, or no route.
        ipv4_no_route,
        /// Datagrams sent in fragments.
        ipv4_fragmented_tx,
        /// Fragments received.
        frag_rx,
        /// Datagrams reassembled.
        frag_reassembled,
        /// Partial datagrams dropped when their time ran out.
        frag_timeouts,
        /// Fragments dropped because a limit was reached (datagrams, fragments, size).
        frag_overflows,
        /// Fragments that overlapped another or were misaligned; the datagram is dropped.
        frag_malformed,
        /// ICMP messages with a wrong checksum.
        icmp_bad_checksum,
        /// ICMP messages that were short or of a type this stack does not handle.
        icmp_malformed,
        /// Echo requests received for our address (each answered unless no route leads back).
        icmp_echo_requests,
        /// Echo requests to a broadcast address, ignored (RFC 1122 §3.2.2.6 allows it).
        icmp_broadcast_ignored,
        /// Echo replies and errors received and queued for the application.
        icmp_events,
        /// ICMP events dropped because the queue was full.
        icmp_events_dropped,
        /// ICMP destination-unreachable messages sent (ports with no socket).
        icmp_unreachable_tx,
        /// UDP datagrams whose length field does not fit.
        udp_malformed,
        /// UDP datagrams with a wrong checksum.
        udp_bad_checksum,
        /// UDP datagrams to a port with no socket.
        udp_no_socket,
        /// UDP datagrams dropped because the socket's queue was full.
        udp_queue_full,
        /// UDP datagrams delivered to a socket.
        udp_rx,
        /// UDP datagrams sent.
        udp_tx,
        /// TCP segments that were short.
        tcp_malformed,
        /// TCP segments with a wrong checksum.
        tcp_bad_checksum,
        /// TCP segments handed to the TCP stack.
        tcp_rx,
        /// TCP segments sent.
        tcp_tx,
        /// Frames handed to the device.
        tx_frames,
        /// Frames dropped because the transmit queue was full.
        tx_queue_full,
        /// Frames the device refused as too large or failed to send.
        tx_errors,
    }
}

impl fmt::Display for InterfaceCounters {
    /// One `name value` line per counter, like a Plan 9 `stats` file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.entries() {
            writeln!(f, "{name} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_names_every_counter() {
        let counters = InterfaceCounters { udp_rx: 3, tx_errors: 1, ..Default::default() };
        let text = alloc::format!("{counters}");
        assert!(text.contains("udp_rx 3\n"));
        assert!(text.contains("tx_errors 1\n"));
        assert_eq!(counters.entries().count(), text.lines().count());
        assert_eq!(counters.entries().map(|(_, v)| v).sum::<u64>(), 4);
    }
}
