//! The DHCP client state machine (RFC 2131 §4.4, figure 5): INIT → SELECTING (DISCOVER sent)
//! → REQUESTING (REQUEST for the first offer) → BOUND (ACK: the address, prefix and router are
//! applied to the interface) → RENEWING at T1 (REQUEST unicast to the server) → REBINDING at T2
//! (REQUEST broadcast) → INIT when the lease runs out (the address is removed). A NAK sends the
//! client back to INIT.
//!
//! Retransmissions follow RFC 2131 §4.1: 4 s, then doubling up to 64 s, each randomized by up
//! to ±1 s; in RENEWING and REBINDING, half the time left until T2 (or the lease's end), at
//! least 60 s (§4.4.5). The client does not probe the offered address with ARP before using it
//! (§4.4.1 says SHOULD); it sends no DECLINE, and it ignores option overloading.

use alloc::vec::Vec;

use cairn_rt::iobuf::{IoBuf, IoBufChain};

use super::packet::{DhcpRepr, MessageType};
use crate::iface::udp::UdpHandle;
use crate::iface::{Interface, IpTransport, Ipv4Cidr, UdpError};
use crate::wire::Ipv4Address;

/// The client's port (RFC 2131 §4.1).
pub const CLIENT_PORT: u16 = 68;
/// The server's port.
pub const SERVER_PORT: u16 = 67;

const SECOND: u64 = 1_000_000_000;

/// Tunables of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpConfig {
    /// Seeds the transaction IDs and the retransmission jitter.
    pub seed: u64,
    /// The first retransmission interval (RFC 2131 §4.1: 4 s).
    pub initial_retry_ns: u64,
    /// The longest retransmission interval (64 s).
    pub max_retry_ns: u64,
    /// REQUESTs sent for one offer before starting over with a DISCOVER.
    pub max_requests: u32,
    /// The shortest retransmission interval while renewing or rebinding (60 s).
    pub min_renew_retry_ns: u64,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            seed: 0x2131,
            initial_retry_ns: 4 * SECOND,
            max_retry_ns: 64 * SECOND,
            max_requests: 4,
            min_renew_retry_ns: 60 * SECOND,
        }
    }
}

/// Where the client is in RFC 2131's figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpState {
    /// Nothing sent yet (or starting over).
    Init,
    /// DISCOVER sent, waiting for an offer.
    Selecting,
    /// REQUEST sent for an offer, waiting for the ACK.
    Requesting,
    /// Holding a lease.
    Bound,
    /// Past T1: asking the server that granted the lease to extend it.
    Renewing,
    /// Past T2: asking any server to extend it.
    Rebinding,
}

/// A granted lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address and subnet.
    pub address: Ipv4Cidr,
    /// The default gateway, if the server named one.
    pub router: Option<Ipv4Address>,
    /// DNS servers, at most 3.
    pub dns_servers: Vec<Ipv4Address>,
    /// The server that granted it.
    pub server: Ipv4Address,
    /// When it was granted (the time of the REQUEST that got the ACK).
    pub granted_ns: u64,
    /// When renewing starts (T1), `None` for an infinite lease.
    pub renew_ns: Option<u64>,
    /// When rebinding starts (T2).
    pub rebind_ns: Option<u64>,
    /// When the lease ends.
    pub expires_ns: Option<u64>,
}

/// What the client did to the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpEvent {
    /// A lease was granted or extended and applied.
    Configured(Lease),
    /// The lease ended or was refused; the address was removed.
    Deconfigured,
}

/// What the client sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhcpCounters {
    /// DISCOVERs sent.
    pub discovers_tx: u64,
    /// REQUESTs sent.
    pub requests_tx: u64,
    /// OFFERs taken.
    pub offers_rx: u64,
    /// ACKs taken.
    pub acks_rx: u64,
    /// NAKs taken.
    pub naks_rx: u64,
    /// Messages that did not parse.
    pub malformed_rx: u64,
    /// Well-formed messages not for this client or this state (another xid or MAC, a
    /// client's message, an offer without a server identifier).
    pub ignored_rx: u64,
    /// Leases that ran out.
    pub expired: u64,
    /// Sends that failed (no socket, no route).
    pub send_errors: u64,
}

/// A DHCP client driving one [`Interface`].
#[derive(Debug)]
pub struct DhcpClient {
    config: DhcpConfig,
    state: DhcpState,
    socket: Option<UdpHandle>,
    xid: u32,
    rng: u64,
    /// When the current exchange started (for `secs`) and when its REQUEST went out.
    started_ns: u64,
    request_sent_ns: u64,
    retry_at_ns: u64,
    attempts: u32,
    /// The offer being requested: (server, address).
    offer: Option<(Ipv4Address, Ipv4Address)>,
    lease: Option<Lease>,
    counters: DhcpCounters,
}

impl DhcpClient {
    /// A client in INIT; its first [`DhcpClient::poll`] binds port 68 and sends a DISCOVER.
    pub fn new(config: DhcpConfig) -> Self {
        DhcpClient {
            config,
            state: DhcpState::Init,
            socket: None,
            xid: 0,
            rng: config.seed | 1,
            started_ns: 0,
            request_sent_ns: 0,
            retry_at_ns: 0,
            attempts: 0,
            offer: None,
            lease: None,
            counters: DhcpCounters::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> DhcpState {
        self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The counters.
    pub fn counters(&self) -> &DhcpCounters {
        &self.counters
    }

    /// When [`DhcpClient::poll`] next has a timer to run.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            DhcpState::Init => Some(self.retry_at_ns),
            DhcpState::Bound => self.lease.as_ref().and_then(|l| l.renew_ns),
            _ => Some(self.retry_at_ns),
        }
    }

    /// Takes the replies waiting on port 68, runs the timers, and applies a granted or lost
    /// lease to `iface`. Returns what changed, if anything. Call it after the interface's own
    /// poll, at least by [`DhcpClient::next_deadline`].
    pub fn poll<T: IpTransport>(
        &mut self,
        now_ns: u64,
        iface: &mut Interface<T>,
    ) -> Option<DhcpEvent> {
        let socket = match self.socket {
            Some(socket) => socket,
            None => match iface.udp_bind(CLIENT_PORT) {
                Ok(socket) => *self.socket.insert(socket),
                Err(_) => {
                    self.counters.send_errors += 1;
                    return None;
                }
            },
        };
        let mut event = None;
        while let Ok(Some(datagram)) = iface.udp_recv(socket) {
            if datagram.src_port != SERVER_PORT {
                self.counters.ignored_rx += 1;
                continue;
            }
            match DhcpRepr::parse(&datagram.data) {
                Ok(reply) => {
                    if let Some(e) = self.receive(now_ns, iface, &reply) {
                        event = Some(e);
                    }
                }
                Err(_) => self.counters.malformed_rx += 1,
            }
        }
        if let Some(e) = self.run_timers(now_ns, iface) {
            event = Some(e);
        }
        event
    }

    /// The next pseudo-random number (xorshift64).
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The retransmission interval after `attempts` sends: 4 s doubling to 64 s, ±1 s.
    fn backoff(&mut self) -> u64 {
        let shift = self.attempts.saturating_sub(1).min(16);
        let base =
            self.config.initial_retry_ns.saturating_mul(1 << shift).min(self.config.max_retry_ns);
        let jitter = self.random() % (2 * SECOND + 1);
        (base + jitter).saturating_sub(SECOND).max(1)
    }

    fn receive<T: IpTransport>(
        &mut self,
        now_ns: u64,
        iface: &mut Interface<T>,
        reply: &DhcpRepr,
    ) -> Option<DhcpEvent> {
        if reply.xid != self.xid || reply.client_hw != iface.mac() {
            self.counters.ignored_rx += 1;
            return None;
        }
        match (self.state, reply.message_type) {
            (DhcpState::Selecting, MessageType::Offer) => {
                let Some(server) = reply.server_id else {
                    self.counters.ignored_rx += 1;
                    return None;
                };
                if !reply.yiaddr.is_unicast() || reply.yiaddr.is_unspecified() {
                    self.counters.ignored_rx += 1;
                    return None;
                }
                self.counters.offers_rx += 1;
                self.offer = Some((server, reply.yiaddr));
                self.state = DhcpState::Requesting;
                self.attempts = 0;
                self.send_request(now_ns, iface);
                None
            }
            (
                DhcpState::Requesting | DhcpState::Renewing | DhcpState::Rebinding,
                MessageType::Ack,
            ) => {
                let server = match self.state {
                    DhcpState::Requesting => self.offer.map(|(s, _)| s),
                    _ => self.lease.as_ref().map(|l| l.server),
                };
                if self.state != DhcpState::Rebinding
                    && reply.server_id.is_some()
                    && reply.server_id != server
                {
                    self.counters.ignored_rx += 1;
                    return None;
                }
                self.counters.acks_rx += 1;
                let lease = self.lease_from(reply, server);
                self.apply(iface, &lease);
                self.lease = Some(lease.clone());
                self.state = DhcpState::Bound;
                Some(DhcpEvent::Configured(lease))
            }
            (
                DhcpState::Requesting | DhcpState::Renewing | DhcpState::Rebinding,
                MessageType::Nak,
            ) => {
                self.counters.naks_rx += 1;
                let had_lease = self.lease.is_some();
                self.restart(iface);
                // Wait before starting over, so a server that refuses every time is not asked
                // in a tight loop.
                self.retry_at_ns = now_ns + self.config.initial_retry_ns;
                had_lease.then_some(DhcpEvent::Deconfigured)
            }
            _ => {
                self.counters.ignored_rx += 1;
                None
            }
        }
    }

    /// The lease an ACK grants, timed from when its REQUEST was sent (RFC 2131 §4.4.1), with
    /// T1 and T2 defaulting to 0.5 and 0.875 of the lease (§4.4.5).
    fn lease_from(&self, ack: &DhcpRepr, server: Option<Ipv4Address>) -> Lease {
        let prefix = ack
            .subnet_mask
            .and_then(|mask| Ipv4Cidr::from_netmask(ack.yiaddr, mask))
            .unwrap_or_else(|| classful(ack.yiaddr));
        let start = self.request_sent_ns;
        let ns = |secs: u32| u64::from(secs) * SECOND;
        let (renew_ns, rebind_ns, expires_ns) = match ack.lease_time {
            None | Some(u32::MAX) => (None, None, None),
            Some(lease) => {
                let lease = ns(lease);
                let t2 = ack.rebinding_time.map_or(lease / 8 * 7, ns).min(lease);
                let t1 = ack.renewal_time.map_or(lease / 2, ns).min(t2);
                (Some(start + t1), Some(start + t2), Some(start + lease))
            }
        };
        Lease {
            address: prefix,
            router: ack.router,
            dns_servers: ack.dns_servers.clone(),
            server: ack.server_id.or(server).unwrap_or(Ipv4Address::UNSPECIFIED),
            granted_ns: start,
            renew_ns,
            rebind_ns,
            expires_ns,
        }
    }

    /// Puts the lease's address, prefix and router on the interface.
    fn apply<T: IpTransport>(&self, iface: &mut Interface<T>, lease: &Lease) {
        iface.set_ipv4(Some(lease.address));
        iface.set_gateway(lease.router);
    }

    /// Drops any lease (removing the address) and starts over in INIT, at once unless the
    /// caller sets a later `retry_at_ns`.
    fn restart<T: IpTransport>(&mut self, iface: &mut Interface<T>) {
        self.retry_at_ns = 0;
        if self.lease.take().is_some() {
            iface.set_ipv4(None);
            iface.set_gateway(None);
        }
        self.offer = None;
        self.state = DhcpState::Init;
    }

    fn run_timers<T: IpTransport>(
        &mut self,
        now_ns: u64,
        iface: &mut Interface<T>,
    ) -> Option<DhcpEvent> {
        match self.state {
            DhcpState::Init if now_ns >= self.retry_at_ns => {
                self.xid = self.random() as u32;
                self.started_ns = now_ns;
                self.attempts = 0;
                self.state = DhcpState::Selecting;
                self.send_discover(now_ns, iface);
                None
            }
            DhcpState::Selecting if now_ns >= self.retry_at_ns => {
                self.send_discover(now_ns, iface);
                None
            }
            DhcpState::Requesting if now_ns >= self.retry_at_ns => {
                if self.attempts >= self.config.max_requests {
                    self.restart(iface);
                    return self.run_timers(now_ns, iface);
                }
                self.send_request(now_ns, iface);
                None
            }
            DhcpState::Bound | DhcpState::Renewing | DhcpState::Rebinding => {
                let lease = self.lease.as_ref()?;
                let (renew, rebind, expires) =
                    (lease.renew_ns?, lease.rebind_ns?, lease.expires_ns?);
                if now_ns >= expires {
                    self.counters.expired += 1;
                    self.restart(iface);
                    return Some(DhcpEvent::Deconfigured);
                }
                let next_state = if now_ns >= rebind {
                    DhcpState::Rebinding
                } else if now_ns >= renew {
                    DhcpState::Renewing
                } else {
                    return None;
                };
                if next_state != self.state {
                    self.state = next_state;
                    self.xid = self.random() as u32;
                    self.started_ns = now_ns;
                    self.attempts = 0;
                } else if now_ns < self.retry_at_ns {
                    return None;
                }
                self.send_request(now_ns, iface);
                // Half the time left to the next stage, at least 60 s, never past it.
                let until = if next_state == DhcpState::Renewing { rebind } else { expires };
                let half = (until - now_ns) / 2;
                self.retry_at_ns =
                    now_ns + half.max(self.config.min_renew_retry_ns).min(until - now_ns);
                None
            }
            _ => None,
        }
    }

    fn send_discover<T: IpTransport>(&mut self, now_ns: u64, iface: &mut Interface<T>) {
        let mut message = DhcpRepr::client(MessageType::Discover, self.xid, iface.mac());
        message.broadcast = true;
        self.attempts += 1;
        self.retry_at_ns = now_ns + self.backoff();
        self.send(now_ns, iface, &mut message, Ipv4Address::BROADCAST);
        self.counters.discovers_tx += 1;
    }

    /// A REQUEST for the offer (REQUESTING: broadcast, naming server and address) or for the
    /// lease held (RENEWING: unicast to its server; REBINDING: broadcast; both with `ciaddr`),
    /// as RFC 2131 §4.3.2's table says.
    fn send_request<T: IpTransport>(&mut self, now_ns: u64, iface: &mut Interface<T>) {
        let mut message = DhcpRepr::client(MessageType::Request, self.xid, iface.mac());
        let mut dst = Ipv4Address::BROADCAST;
        match self.state {
            DhcpState::Requesting => {
                let Some((server, address)) = self.offer else { return };
                message.server_id = Some(server);
                message.requested_ip = Some(address);
                message.broadcast = true;
                self.attempts += 1;
                self.retry_at_ns = now_ns + self.backoff();
            }
            DhcpState::Renewing | DhcpState::Rebinding => {
                let Some(lease) = &self.lease else { return };
                message.ciaddr = lease.address.address;
                if self.state == DhcpState::Renewing {
                    dst = lease.server;
                }
            }
            _ => return,
        }
        self.request_sent_ns = now_ns;
        self.send(now_ns, iface, &mut message, dst);
        self.counters.requests_tx += 1;
    }

    fn send<T: IpTransport>(
        &mut self,
        now_ns: u64,
        iface: &mut Interface<T>,
        message: &mut DhcpRepr,
        dst: Ipv4Address,
    ) {
        let Some(socket) = self.socket else { return };
        message.secs =
            u16::try_from((now_ns - self.started_ns.min(now_ns)) / SECOND).unwrap_or(u16::MAX);
        let len = message.buffer_len();
        // Room in front for the UDP, IPv4 and Ethernet headers.
        let mut buf = IoBuf::with_headroom(crate::iface::ipv4::HEADROOM + 8, len);
        if buf.claim_tailroom(len).is_err() {
            unreachable!("a new buffer has the tailroom it was made with");
        }
        message.emit(&mut buf[..]);
        let sent: Result<(), UdpError> =
            iface.udp_send_to(socket, dst, SERVER_PORT, IoBufChain::from(buf.freeze()));
        if sent.is_err() {
            self.counters.send_errors += 1;
        }
    }
}

/// The prefix an address's class implies (RFC 791 §3.2; used only when a server names no
/// subnet mask).
fn classful(address: Ipv4Address) -> Ipv4Cidr {
    let prefix_len = match address.0[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    };
    Ipv4Cidr { address, prefix_len }
}
