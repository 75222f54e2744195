//! The settings of a [`TcpStack`](super::TcpStack), fixed when it is created.

/// Settings of one core's TCP stack. [`TcpConfig::default`] gives values suited to a LAN and
/// a secret of zeros: set [`TcpConfig::isn_secret`] from a random source in real use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// The interface MTU; the MSS this stack advertises is `mtu - 40` (RFC 9293 §3.7.1: the IP
    /// and TCP headers without options).
    pub mtu: usize,
    /// The secret key of the ISN function (RFC 6528 §3) and of the timestamp offsets.
    pub isn_secret: [u8; 16],
    /// The device finishes TCP checksums on transmit, so [`TcpStack::dispatch`] only leaves
    /// the pseudo-header's sum in the field for it to add the segment to (Linux's
    /// `CHECKSUM_PARTIAL`, virtio spec 1.2 §5.1.6.2).
    ///
    /// [`TcpStack::dispatch`]: super::TcpStack::dispatch
    pub checksum_offload: bool,
    /// TCP segmentation offload: the most payload octets one segment handed to the device may
    /// carry for it to cut into MSS-sized segments (0, or less than an MSS: none). Needs
    /// [`TcpConfig::checksum_offload`]. Such a segment goes out when the windows would have
    /// let all its MSS-sized pieces go at once, so the wire sees what it would have without.
    pub tso_max_payload: usize,
    /// Bytes of received data a connection holds for the application; the advertised window
    /// is what is left of it (RFC 9293 §3.8.6.2).
    pub recv_buffer: usize,
    /// When set, [`TcpStack::send`] refuses more data while this many bytes are queued and not
    /// yet acknowledged, and a `Writable` event follows once the queue drains below it. Unset,
    /// the queue grows without bound.
    ///
    /// [`TcpStack::send`]: super::TcpStack::send
    pub send_queue_limit: Option<usize>,
    /// Offer the Window Scale option (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer the Timestamps option (RFC 7323 §3), for RTT measurement and PAWS.
    pub timestamps: bool,
    /// Offer SACK-Permitted (RFC 2018): report out-of-order data in SACK blocks, and recover
    /// from losses by the peer's blocks (RFC 6675) when it offers the option too.
    pub sack: bool,
    /// New connections start with Nagle's algorithm off (RFC 896; issue 5: "Nagle off by
    /// default"); [`TcpStack::set_nodelay`] switches it per connection.
    ///
    /// [`TcpStack::set_nodelay`]: super::TcpStack::set_nodelay
    pub nodelay: bool,
    /// RTO before the first RTT sample (RFC 6298 §2.1: one second).
    pub rto_initial_ns: u64,
    /// The lower bound on RTO (RFC 6298 §2.4 says one second; 200 ms is common practice).
    pub rto_min_ns: u64,
    /// The upper bound on RTO (RFC 6298 §2.5 allows 60 s).
    pub rto_max_ns: u64,
    /// Retransmissions (or unanswered zero-window probes) of a synchronized connection before
    /// it is given up and reset with [`CloseReason::TimedOut`] (RFC 9293 §3.8.3's R2).
    ///
    /// [`CloseReason::TimedOut`]: super::CloseReason::TimedOut
    pub max_retries: u32,
    /// Retransmissions of a SYN or SYN-ACK before the attempt is given up.
    pub syn_retries: u32,
    /// How long a connection stays in TIME-WAIT: 2·MSL (RFC 9293 §3.4.2).
    pub time_wait_ns: u64,
    /// The longest an ACK is delayed (RFC 9293 §3.8.6.3: under 0.5 s; 40 ms like Linux);
    /// 0 acknowledges every segment at once.
    pub delayed_ack_ns: u64,
    /// Out-of-order segments a connection keeps for reassembly; more are dropped and counted.
    pub ooo_max_segments: usize,
    /// Bytes of headroom in front of each emitted TCP header, for the interface to prepend the
    /// IPv4 and Ethernet headers in place.
    pub header_headroom: usize,
    /// The first local port [`TcpStack::connect`] picks when given port 0 (RFC 6335 §6).
    ///
    /// [`TcpStack::connect`]: super::TcpStack::connect
    pub ephemeral_port_min: u16,
    /// The last such port.
    pub ephemeral_port_max: u16,
    /// This stack's core, and the number of cores the interface spreads flows over with
    /// [`flow_hash`](super::flow_hash): an ephemeral port is only chosen if the connection's
    /// replies hash to this core.
    pub core_index: u32,
    /// See [`TcpConfig::core_index`]; 1 (or 0) means no steering.
    pub core_count: u32,
    /// Challenge ACKs sent per second at most, over the whole stack (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// RSTs (and other connection-less replies) waiting for [`TcpStack::dispatch`] at most;
    /// more are dropped and counted.
    ///
    /// [`TcpStack::dispatch`]: super::TcpStack::dispatch
    pub control_queue_limit: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mtu: 1500,
            isn_secret: [0; 16],
            checksum_offload: false,
            tso_max_payload: 0,
            recv_buffer: 256 * 1024,
            send_queue_limit: None,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nodelay: true,
            rto_initial_ns: 1_000_000_000,
            rto_min_ns: 200_000_000,
            rto_max_ns: 60_000_000_000,
            max_retries: 12,
            syn_retries: 6,
            time_wait_ns: 60_000_000_000,
            delayed_ack_ns: 40_000_000,
            ooo_max_segments: 256,
            header_headroom: 64,
            ephemeral_port_min: 49152,
            ephemeral_port_max: 65535,
            core_index: 0,
            core_count: 1,
            challenge_ack_limit: 1000,
            control_queue_limit: 256,
        }
    }
}

impl TcpConfig {
    /// The MSS this stack advertises: the MTU less 40 bytes of IPv4 and TCP headers, at least
    /// 88 (RFC 9293 §3.7.1, and the floor Linux uses against tiny segments).
    pub fn advertised_mss(&self) -> u16 {
        self.mtu.saturating_sub(40).clamp(88, 65535) as u16
    }

    /// The Window Scale shift this stack offers: the smallest that lets the advertised window
    /// cover [`TcpConfig::recv_buffer`] (RFC 7323 §2.3, at most 14).
    pub fn window_shift(&self) -> u8 {
        let mut shift = 0u8;
        while shift < crate::wire::tcp::MAX_WINDOW_SCALE && (self.recv_buffer >> shift) > 65535 {
            shift += 1;
        }
        shift
    }
}
