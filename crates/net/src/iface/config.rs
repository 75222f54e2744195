//! An interface's configuration: its IPv4 address and prefix (CIDR, RFC 4632), default gateway,
//! MTU, and the limits of its ARP cache, reassembly buffer and queues.

use core::fmt;

use crate::wire::Ipv4Address;

/// An IPv4 address with its prefix length, `10.0.0.2/24` (CIDR notation, RFC 4632 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The interface's own address.
    pub address: Ipv4Address,
    /// How many leading bits name the subnet, 0 to 32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; `None` if `prefix_len` exceeds 32.
    pub const fn new(address: Ipv4Address, prefix_len: u8) -> Option<Ipv4Cidr> {
        if prefix_len > 32 {
            None
        } else {
            Some(Ipv4Cidr { address, prefix_len })
        }
    }

    /// The address with the netmask a DHCP server gives (option 1), or `None` if the mask is
    /// not a run of ones followed by zeros.
    pub fn from_netmask(address: Ipv4Address, netmask: Ipv4Address) -> Option<Ipv4Cidr> {
        let mask = u32::from_be_bytes(netmask.0);
        let prefix_len = mask.leading_ones();
        if mask.checked_shl(prefix_len).unwrap_or(0) != 0 {
            return None;
        }
        Ipv4Cidr::new(address, prefix_len as u8)
    }

    /// Parses `a.b.c.d/n`.
    pub fn parse(text: &str) -> Option<Ipv4Cidr> {
        let (address, prefix) = text.split_once('/')?;
        let address: core::net::Ipv4Addr = address.parse().ok()?;
        Ipv4Cidr::new(address.into(), prefix.parse().ok()?)
    }

    /// The netmask as a 32-bit number.
    fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.prefix_len)).unwrap_or(0)
    }

    /// The netmask, `255.255.255.0` for a /24.
    pub fn netmask(&self) -> Ipv4Address {
        Ipv4Address(self.mask().to_be_bytes())
    }

    /// The subnet's first address (host bits zero).
    pub fn network(&self) -> Ipv4Address {
        Ipv4Address((u32::from_be_bytes(self.address.0) & self.mask()).to_be_bytes())
    }

    /// The subnet's directed broadcast address (host bits one, RFC 919), or `None` for a /31 or
    /// /32, which have none (RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Address> {
        if self.prefix_len >= 31 {
            return None;
        }
        Some(Ipv4Address((u32::from_be_bytes(self.address.0) | !self.mask()).to_be_bytes()))
    }

    /// Whether `addr` lies in this subnet (so it is reached directly, without the gateway).
    pub fn contains(&self, addr: Ipv4Address) -> bool {
        let mask = self.mask();
        u32::from_be_bytes(addr.0) & mask == u32::from_be_bytes(self.address.0) & mask
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Limits of the ARP cache and of address resolution (RFC 826; timings after RFC 1122
/// §2.3.2.1, which asks for a timeout on cache entries and a bounded rate of requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// How long a learned entry stays valid.
    pub entry_timeout_ns: u64,
    /// The interval between requests for an address that has not answered.
    pub retry_interval_ns: u64,
    /// Requests sent after the first before the queued packets are dropped.
    pub max_retries: u8,
    /// Packets held per destination while it resolves (RFC 1122 §2.3.2.2: "SHOULD save at least
    /// one"); more are dropped and counted.
    pub queue_per_destination: usize,
    /// Destinations that may resolve at once.
    pub max_pending: usize,
    /// Entries kept; when full, the one expiring soonest is evicted.
    pub max_entries: usize,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            entry_timeout_ns: 60_000_000_000,
            retry_interval_ns: 1_000_000_000,
            max_retries: 3,
            queue_per_destination: 8,
            max_pending: 64,
            max_entries: 1024,
        }
    }
}

/// Limits of fragment reassembly (RFC 791 §3.2, RFC 1122 §3.3.2, RFC 815). Fragments beyond
/// them are dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Datagrams being reassembled at once; a fragment of a further one is dropped.
    pub max_datagrams: usize,
    /// Fragments held per datagram (each holds a received frame's buffer, so this bounds
    /// memory against floods of tiny fragments).
    pub max_fragments: usize,
    /// Largest reassembled payload in bytes (65515 is the most Total Length can express).
    pub max_size: usize,
    /// How long a datagram may take to complete before its fragments are dropped.
    pub timeout_ns: u64,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_datagrams: 16,
            max_fragments: 64,
            max_size: 65_515,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// Everything an [`Interface`](super::Interface) needs besides its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The address and subnet, or `None` until DHCP (or the user) supplies one; without one the
    /// interface sends from 0.0.0.0 and accepts only broadcasts and DHCP replies.
    pub ipv4: Option<Ipv4Cidr>,
    /// Where packets for addresses outside the subnet go.
    pub gateway: Option<Ipv4Address>,
    /// The IP MTU; `None` takes the device's. The smaller of the two is used.
    pub mtu: Option<usize>,
    /// Time to Live of sent datagrams (RFC 1122 §3.2.1.7; 64 after RFC 1700's recommendation).
    pub ttl: u8,
    /// Announce our address with a gratuitous ARP request when it is set (RFC 5227 §3).
    pub gratuitous_arp: bool,
    /// Answer ARP requests for our address (RFC 826). Off on all but one of the per-core
    /// interfaces that share a link and an address, so the link sees one reply, while every
    /// core still learns the asking station from the request.
    pub answer_arp: bool,
    /// ARP limits.
    pub arp: ArpConfig,
    /// Reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// Datagrams held per UDP socket before further ones are dropped and counted.
    pub udp_queue_len: usize,
    /// ICMP events (echo replies, errors) held before further ones are dropped and counted.
    pub icmp_queue_len: usize,
    /// Frames waiting for the device before further ones are dropped and counted.
    pub tx_queue_len: usize,
    /// Frames taken from the device per [`poll`](super::Interface::poll), so one busy device
    /// cannot starve the rest of the event loop.
    pub rx_budget: usize,
}

impl Default for InterfaceConfig {
    fn default() -> Self {
        InterfaceConfig {
            ipv4: None,
            gateway: None,
            mtu: None,
            ttl: 64,
            gratuitous_arp: true,
            answer_arp: true,
            arp: ArpConfig::default(),
            reassembly: ReassemblyConfig::default(),
            udp_queue_len: 256,
            icmp_queue_len: 64,
            tx_queue_len: 1024,
            rx_budget: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_arithmetic() {
        let cidr = Ipv4Cidr::parse("192.168.7.9/20").unwrap();
        assert_eq!(cidr.netmask(), Ipv4Address::new(255, 255, 240, 0));
        assert_eq!(cidr.network(), Ipv4Address::new(192, 168, 0, 0));
        assert_eq!(cidr.broadcast(), Some(Ipv4Address::new(192, 168, 15, 255)));
        assert!(cidr.contains(Ipv4Address::new(192, 168, 15, 1)));
        assert!(!cidr.contains(Ipv4Address::new(192, 168, 16, 1)));
        assert_eq!(alloc::format!("{cidr}"), "192.168.7.9/20");
    }

    #[test]
    fn cidr_edges() {
        let all = Ipv4Cidr::new(Ipv4Address::new(1, 2, 3, 4), 0).unwrap();
        assert!(all.contains(Ipv4Address::new(200, 0, 0, 1)));
        assert_eq!(all.netmask(), Ipv4Address::UNSPECIFIED);
        let host = Ipv4Cidr::new(Ipv4Address::new(1, 2, 3, 4), 32).unwrap();
        assert!(!host.contains(Ipv4Address::new(1, 2, 3, 5)));
        assert_eq!(host.broadcast(), None);
        assert_eq!(Ipv4Cidr::new(Ipv4Address::UNSPECIFIED, 33), None);
        assert_eq!(Ipv4Cidr::parse("1.2.3.4"), None);
        assert_eq!(Ipv4Cidr::parse("1.2.3/8"), None);
    }

    #[test]
    fn netmasks() {
        let a = Ipv4Address::new(10, 0, 0, 5);
        assert_eq!(
            Ipv4Cidr::from_netmask(a, Ipv4Address::new(255, 255, 255, 0)).unwrap().prefix_len,
            24
        );
        assert_eq!(
            Ipv4Cidr::from_netmask(a, Ipv4Address::new(255, 255, 255, 255)).unwrap().prefix_len,
            32
        );
        assert_eq!(Ipv4Cidr::from_netmask(a, Ipv4Address::UNSPECIFIED).unwrap().prefix_len, 0);
        assert_eq!(Ipv4Cidr::from_netmask(a, Ipv4Address::new(255, 0, 255, 0)), None);
    }
}
