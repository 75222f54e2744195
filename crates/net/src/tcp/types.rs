//! The handles, states, events and errors of the application-facing API.

use core::fmt;

/// A connection of one [`TcpStack`](super::TcpStack): a handle the application keeps until it
/// calls `close` or `abort`. Never reused within a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A listening port of one [`TcpStack`](super::TcpStack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(pub u64);

/// The connection states of RFC 9293 §3.3.2 (LISTEN belongs to listeners, not connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// Waiting for a matching SYN-ACK after sending a SYN.
    SynSent,
    /// Waiting for the ACK of our SYN after receiving (and answering) a SYN.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; we may still send until the application closes.
    CloseWait,
    /// Both sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// The peer closed first and so did we; waiting for the ACK of our FIN.
    LastAck,
    /// Both FINs acknowledged; waiting 2·MSL for stray segments (RFC 9293 §3.4.2).
    TimeWait,
    /// No connection any more.
    Closed,
}

impl TcpState {
    /// Whether the three-way handshake has completed (RFC 9293 §3.3.2's synchronized states).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, TcpState::SynSent | TcpState::SynReceived | TcpState::Closed)
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both sides closed with FINs.
    Normal,
    /// The peer reset the connection.
    Reset,
    /// The peer refused the connection (RST in answer to our SYN).
    Refused,
    /// Retransmissions or probes went unanswered too long (RFC 9293 §3.8.3's R2).
    TimedOut,
    /// The application aborted it (a RST was sent).
    Aborted,
}

/// What happened, for the layer above to wake the right tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpEvent {
    /// A connection completed the handshake on a listener and waits in its accept queue.
    Accepted {
        /// The listener.
        listener: ListenerId,
        /// The new connection (also returned by `accept`).
        conn: ConnId,
    },
    /// An active open completed.
    Connected(ConnId),
    /// In-order data is waiting for `recv` (raised once until `recv` is called again).
    Readable(ConnId),
    /// The send queue drained below its limit after `send` refused data.
    Writable(ConnId),
    /// The peer sent FIN: no more data will arrive after what `recv` still returns.
    PeerClosed(ConnId),
    /// The connection ended.
    Closed(ConnId, CloseReason),
}

/// Why an application call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpError {
    /// No such connection or listener (it was closed and released).
    UnknownHandle,
    /// The call does not fit the connection's state (sending after shutdown, connecting to
    /// port 0).
    InvalidState,
    /// The send queue is at its limit; wait for `Writable`.
    WouldBlock,
    /// The address and port are already in use.
    AddressInUse,
    /// No ephemeral port is free (for this core).
    NoPortAvailable,
    /// The connection has ended, for the given reason.
    Closed(CloseReason),
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpError::UnknownHandle => f.write_str("unknown connection or listener"),
            TcpError::InvalidState => f.write_str("operation not valid in this state"),
            TcpError::WouldBlock => f.write_str("send queue full"),
            TcpError::AddressInUse => f.write_str("address in use"),
            TcpError::NoPortAvailable => f.write_str("no ephemeral port available"),
            TcpError::Closed(reason) => write!(f, "connection closed ({reason:?})"),
        }
    }
}

impl core::error::Error for TcpError {}

/// A snapshot of one connection's variables (RFC 9293 §3.3.1's TCB, RFC 6298's timer, RFC 5681's
/// windows), for diagnostics and tests. Sequence numbers are as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The state.
    pub state: TcpState,
    /// Initial send sequence number.
    pub iss: u32,
    /// Oldest unacknowledged sequence number.
    pub snd_una: u32,
    /// Next sequence number to send.
    pub snd_nxt: u32,
    /// One past the highest sequence number sent.
    pub snd_max: u32,
    /// The peer's window, scaled, in bytes.
    pub snd_wnd: u64,
    /// Next sequence number expected.
    pub rcv_nxt: u32,
    /// The window last advertised, in bytes.
    pub rcv_wnd: u64,
    /// Shift applied to the peer's window fields (RFC 7323 §2).
    pub snd_wscale: u8,
    /// Shift applied to our window fields.
    pub rcv_wscale: u8,
    /// Payload bytes per segment sent (the effective MSS).
    pub mss: usize,
    /// Whether the Timestamps option is in use.
    pub timestamps: bool,
    /// Whether the peer offered SACK-Permitted (RFC 2018); SACK is in use if we offered it too.
    pub peer_sack_permitted: bool,
    /// Congestion window in bytes.
    pub cwnd: u64,
    /// Slow start threshold in bytes.
    pub ssthresh: u64,
    /// Smoothed RTT in nanoseconds, once measured.
    pub srtt_ns: Option<u64>,
    /// RTT variation (RFC 6298 RTTVAR) in nanoseconds.
    pub rttvar_ns: u64,
    /// Current retransmission timeout in nanoseconds.
    pub rto_ns: u64,
    /// Whether NewReno fast recovery is in progress.
    pub in_fast_recovery: bool,
    /// Bytes queued to send and not yet acknowledged.
    pub send_queue: usize,
    /// Bytes received in order and not yet read.
    pub recv_queue: usize,
    /// Out-of-order segments held.
    pub ooo_segments: usize,
    /// Whether Nagle's algorithm is off.
    pub nodelay: bool,
}
