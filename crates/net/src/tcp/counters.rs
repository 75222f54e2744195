//! Counters of one core's TCP stack (issue 5: "counters for every drop and error, readable at
//! run time"): a plain struct of totals since the stack was created, read with
//! [`TcpStack::counters`](super::TcpStack::counters).

/// Totals since the stack was created. Every segment dropped has a counter saying why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// Segments handed to `input`.
    pub segments_in: u64,
    /// Segments emitted by `dispatch` (RSTs included).
    pub segments_out: u64,
    /// Payload bytes received in order (delivered to the receive queue).
    pub bytes_in: u64,
    /// Payload bytes emitted, retransmissions included.
    pub bytes_out: u64,
    /// Segments longer than the MSS handed to the device to cut up (TCP segmentation
    /// offload); each counts once in `segments_out`.
    pub segmentation_offloads: u64,
    /// Segments dropped because the header or an option was malformed.
    pub malformed: u64,
    /// Segments to a port with no connection or listener (answered with RST, RFC 9293
    /// §3.10.7.1, unless they carried RST).
    pub no_connection: u64,
    /// Segments dropped for a source or destination port of zero or a broadcast or multicast
    /// address (RFC 1122 §4.2.3.10).
    pub bad_address: u64,
    /// RST segments emitted.
    pub rst_sent: u64,
    /// RSTs that closed a connection (exact sequence match, RFC 5961 §3.2).
    pub rst_accepted: u64,
    /// RSTs ignored (out of window, or with an unacceptable ACK in SYN-SENT).
    pub rst_ignored: u64,
    /// RSTs in the window but not at RCV.NXT, answered with a challenge ACK (RFC 5961 §3.2).
    pub rst_challenged: u64,
    /// SYNs on a synchronized connection, answered with a challenge ACK (RFC 5961 §4.2).
    pub syn_challenged: u64,
    /// Challenge ACKs suppressed by the rate limit (RFC 5961 §7).
    pub challenge_acks_limited: u64,
    /// Segments failing the acceptability test (RFC 9293 §3.10.7.4), answered with an ACK.
    pub out_of_window: u64,
    /// Received data beyond the advertised window, trimmed off.
    pub beyond_window_bytes: u64,
    /// ACKs of data never sent (ACK > SND.NXT), answered with an ACK and dropped.
    pub ack_ahead: u64,
    /// ACKs older than the window's worth RFC 5961 §5.2 allows, dropped.
    pub ack_too_old: u64,
    /// Segments without ACK on a synchronized connection, dropped.
    pub no_ack: u64,
    /// Segments dropped by PAWS (RFC 7323 §5).
    pub paws_dropped: u64,
    /// Duplicate ACKs received (RFC 5681 §2).
    pub dup_acks: u64,
    /// Segments retransmitted, for any reason.
    pub retransmits: u64,
    /// Fast retransmits (RFC 5681 §3.2 on the third duplicate ACK).
    pub fast_retransmits: u64,
    /// Retransmissions for a partial ACK in NewReno fast recovery (RFC 6582 §3.2).
    pub partial_ack_retransmits: u64,
    /// Retransmissions chosen from the SACK scoreboard in recovery (RFC 6675 `NextSeg`).
    pub sack_retransmits: u64,
    /// Bytes the peer newly SACKed (RFC 2018).
    pub sacked_bytes: u64,
    /// Fast recoveries found spurious by timestamps and undone (RFC 3522, RFC 4015).
    pub spurious_recoveries: u64,
    /// Retransmission timer expirations (RFC 6298 §5).
    pub rto_expirations: u64,
    /// Connections given up after too many retransmissions or unanswered probes.
    pub timeouts: u64,
    /// Zero-window probes sent (RFC 9293 §3.8.6.1).
    pub window_probes: u64,
    /// Times a sender with data waiting found the peer's advertised window full (it was the
    /// smaller limit), after Linux's `tcpi_rwnd_limited`, counted in stalls, not time.
    pub rwnd_limited: u64,
    /// Times a sender with data waiting found its congestion window full (the smaller limit).
    pub cwnd_limited: u64,
    /// ACKs sent when the delayed-ACK timer fired.
    pub delayed_acks: u64,
    /// Out-of-order segments queued for reassembly.
    pub ooo_queued: u64,
    /// Out-of-order segments dropped because the queue was full.
    pub ooo_dropped: u64,
    /// SYNs dropped because the listener's backlog was full.
    pub backlog_drops: u64,
    /// Segments other than a SYN to a listener (answered with RST if they carried ACK).
    pub listen_drops: u64,
    /// Data that arrived after the application closed the connection (answered with RST,
    /// RFC 9293 §3.10.7.4 / RFC 2525 §2.17).
    pub data_after_close: u64,
    /// Control segments (RSTs) dropped because the control queue was full.
    pub control_queue_drops: u64,
    /// Connections opened actively (`connect`).
    pub active_opens: u64,
    /// Connections opened passively (a SYN to a listener).
    pub passive_opens: u64,
    /// Connections that reached ESTABLISHED.
    pub established: u64,
    /// Connections that ended by a RST received.
    pub resets_received: u64,
    /// Connections that ended in the normal way (FIN exchange, TIME-WAIT or LAST-ACK).
    pub closed_normally: u64,
    /// Connection attempts refused by the peer (RST in SYN-SENT).
    pub refused: u64,
    /// Connections the application aborted (RST sent).
    pub aborted: u64,
}
