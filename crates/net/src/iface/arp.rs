//! The ARP cache (RFC 826), with the host requirements of RFC 1122 §2.3.2: entries time out,
//! requests for an address that does not answer are repeated a bounded number of times at a
//! bounded rate, and packets wait (a bounded number per destination) while their next hop
//! resolves, then are dropped and counted if it never does.
//!
//! The cache is sans-IO: it says which requests to send and hands back the packets that can now
//! go; the [`Interface`](super::Interface) builds the frames.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use cairn_rt::iobuf::{IoBuf, IoBufChain};

use super::config::ArpConfig;
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    Ipv4Address,
};

/// A resolved neighbour.
#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: EthernetAddress,
    expires_ns: u64,
}

/// A neighbour being resolved, with the packets (`P`) waiting for it.
#[derive(Debug)]
struct Pending<P> {
    queue: VecDeque<P>,
    /// Requests sent so far.
    requests: u8,
    next_request_ns: u64,
}

/// What [`ArpCache::enqueue`] did with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Held; send a request for the address now (the first packet to it).
    SendRequest,
    /// Held behind a request already sent.
    Waiting,
    /// Dropped: the destination's queue is full or too many destinations are pending.
    Dropped,
}

/// What the cache asks for when its timers run ([`ArpCache::poll`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ArpTimers {
    /// Addresses to ask for again.
    pub retry: Vec<Ipv4Address>,
    /// Resolutions given up.
    pub failures: u64,
    /// Packets dropped with them.
    pub dropped: u64,
}

/// The ARP cache: resolved entries with their expiry, and resolutions in progress with the
/// packets (`P`, an IPv4 datagram and whatever the sender keeps with it) waiting on them.
#[derive(Debug)]
pub struct ArpCache<P = IoBufChain> {
    config: ArpConfig,
    entries: BTreeMap<Ipv4Address, Entry>,
    pending: BTreeMap<Ipv4Address, Pending<P>>,
}

impl<P> ArpCache<P> {
    /// An empty cache.
    pub fn new(config: ArpConfig) -> Self {
        ArpCache { config, entries: BTreeMap::new(), pending: BTreeMap::new() }
    }

    /// The hardware address of `ip`, if known and not expired.
    pub fn lookup(&self, now_ns: u64, ip: Ipv4Address) -> Option<EthernetAddress> {
        self.entries.get(&ip).filter(|e| e.expires_ns > now_ns).map(|e| e.mac)
    }

    /// Whether `ip` has an entry (expired or not): RFC 826's merge step only updates entries
    /// that exist unless the packet was addressed to us.
    pub fn contains(&self, ip: Ipv4Address) -> bool {
        self.entries.contains_key(&ip) || self.pending.contains_key(&ip)
    }

    /// Records that `ip` is at `mac` (RFC 826, "merge" and "add the triplet") and returns the
    /// packets that were waiting for it, oldest first.
    pub fn insert(&mut self, now_ns: u64, ip: Ipv4Address, mac: EthernetAddress) -> VecDeque<P> {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.config.max_entries {
            let soonest = self.entries.iter().min_by_key(|(_, e)| e.expires_ns).map(|(ip, _)| *ip);
            if let Some(victim) = soonest {
                self.entries.remove(&victim);
            }
        }
        let expires_ns = now_ns.saturating_add(self.config.entry_timeout_ns);
        self.entries.insert(ip, Entry { mac, expires_ns });
        self.pending.remove(&ip).map(|p| p.queue).unwrap_or_default()
    }

    /// Holds `packet` (an IPv4 datagram, headers included) until `ip` resolves.
    pub fn enqueue(&mut self, now_ns: u64, ip: Ipv4Address, packet: P) -> Enqueued {
        if let Some(pending) = self.pending.get_mut(&ip) {
            if pending.queue.len() >= self.config.queue_per_destination {
                return Enqueued::Dropped;
            }
            pending.queue.push_back(packet);
            return Enqueued::Waiting;
        }
        if self.pending.len() >= self.config.max_pending || self.config.queue_per_destination == 0 {
            return Enqueued::Dropped;
        }
        let mut queue = VecDeque::new();
        queue.push_back(packet);
        let next_request_ns = now_ns.saturating_add(self.config.retry_interval_ns);
        self.pending.insert(ip, Pending { queue, requests: 1, next_request_ns });
        Enqueued::SendRequest
    }

    /// Runs the retry timers: which addresses to ask for again, and which to give up on (their
    /// packets dropped). Also forgets expired entries.
    pub fn poll(&mut self, now_ns: u64) -> ArpTimers {
        let mut timers = ArpTimers::default();
        let max_requests = self.config.max_retries.saturating_add(1);
        let interval = self.config.retry_interval_ns;
        self.pending.retain(|ip, pending| {
            if pending.next_request_ns > now_ns {
                return true;
            }
            if pending.requests >= max_requests {
                timers.failures += 1;
                timers.dropped += pending.queue.len() as u64;
                return false;
            }
            pending.requests += 1;
            pending.next_request_ns = now_ns.saturating_add(interval);
            timers.retry.push(*ip);
            true
        });
        self.entries.retain(|_, e| e.expires_ns > now_ns);
        timers
    }

    /// When a retry timer next fires. Entry expiry is checked lazily and sets no deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.values().map(|p| p.next_request_ns).min()
    }

    /// Resolved entries (address, hardware address), for status displays.
    pub fn entries(
        &self,
        now_ns: u64,
    ) -> impl Iterator<Item = (Ipv4Address, EthernetAddress)> + '_ {
        self.entries.iter().filter(move |(_, e)| e.expires_ns > now_ns).map(|(ip, e)| (*ip, e.mac))
    }
}

/// A whole ARP frame: `repr` sent from `src` to `dst` (broadcast for requests).
pub fn frame(src: EthernetAddress, dst: EthernetAddress, repr: &ArpRepr) -> IoBufChain {
    let eth = EthernetRepr { src_addr: src, dst_addr: dst, ethertype: EtherType::Arp };
    let len = eth.buffer_len() + repr.buffer_len();
    let mut buf = IoBuf::with_capacity(len);
    if buf.claim_tailroom(len).is_err() {
        unreachable!("a new buffer has the tailroom it was made with");
    }
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    IoBufChain::from(buf.freeze())
}

/// A request from `mac`/`ip` asking who has `target` (RFC 826, "packet generation"); with
/// `target == ip` it is a gratuitous announcement (RFC 5227 §3).
pub fn request(mac: EthernetAddress, ip: Ipv4Address, target: Ipv4Address) -> ArpRepr {
    ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_rt::iobuf::SharedIoBuf;

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    fn packet(tag: u8) -> IoBufChain {
        IoBufChain::from(SharedIoBuf::copy_from_slice(&[tag]))
    }

    #[test]
    fn entries_expire() {
        let mut cache: ArpCache =
            ArpCache::new(ArpConfig { entry_timeout_ns: 100, ..Default::default() });
        assert!(cache.insert(0, A, MAC).is_empty());
        assert_eq!(cache.lookup(99, A), Some(MAC));
        assert_eq!(cache.lookup(100, A), None);
        assert_eq!(cache.entries(50).count(), 1);
        cache.poll(100);
        assert!(!cache.contains(A));
    }

    #[test]
    fn queued_packets_come_back_in_order() {
        let mut cache: ArpCache =
            ArpCache::new(ArpConfig { queue_per_destination: 2, ..Default::default() });
        assert_eq!(cache.enqueue(0, A, packet(1)), Enqueued::SendRequest);
        assert_eq!(cache.enqueue(0, A, packet(2)), Enqueued::Waiting);
        assert_eq!(cache.enqueue(0, A, packet(3)), Enqueued::Dropped);
        assert!(cache.contains(A));
        let released: Vec<_> = cache.insert(5, A, MAC).into_iter().map(|p| p.to_vec()).collect();
        assert_eq!(released, [[1], [2]]);
        assert_eq!(cache.next_deadline(), None);
    }

    #[test]
    fn retries_then_gives_up() {
        let config = ArpConfig { retry_interval_ns: 10, max_retries: 2, ..Default::default() };
        let mut cache = ArpCache::new(config);
        cache.enqueue(0, A, packet(1));
        cache.enqueue(0, A, packet(2));
        assert_eq!(cache.next_deadline(), Some(10));
        assert_eq!(cache.poll(5), ArpTimers::default());
        assert_eq!(cache.poll(10).retry, [A]);
        assert_eq!(cache.poll(20).retry, [A]);
        let last = cache.poll(30);
        assert_eq!((last.retry.len(), last.failures, last.dropped), (0, 1, 2));
        assert!(!cache.contains(A));
    }

    #[test]
    fn pending_destinations_are_bounded() {
        let mut cache: ArpCache = ArpCache::new(ArpConfig { max_pending: 1, ..Default::default() });
        assert_eq!(cache.enqueue(0, A, packet(1)), Enqueued::SendRequest);
        assert_eq!(cache.enqueue(0, B, packet(2)), Enqueued::Dropped);
    }

    #[test]
    fn full_cache_evicts_the_soonest_to_expire() {
        let mut cache: ArpCache = ArpCache::new(ArpConfig { max_entries: 2, ..Default::default() });
        cache.insert(0, A, MAC);
        cache.insert(1, B, MAC);
        cache.insert(2, Ipv4Address::new(10, 0, 0, 3), MAC);
        assert_eq!(cache.lookup(3, A), None);
        assert_eq!(cache.lookup(3, B), Some(MAC));
    }

    #[test]
    fn request_frames_parse_back() {
        let repr = request(MAC, A, B);
        let chain = frame(MAC, EthernetAddress::BROADCAST, &repr);
        let bytes = chain.to_vec();
        let eth = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Arp);
        assert!(eth.dst_addr().is_broadcast());
        let parsed = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(parsed, repr);
    }
}
