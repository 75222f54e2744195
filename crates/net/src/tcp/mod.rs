//! TCP after RFC 9293, sans I/O: one [`TcpStack`] per core, fed segments and the time by the
//! interface layer, emitting segments through a callback, with an event-driven application API
//! in the style of EbbRT (Schatzberg et al., OSDI 2016 §3.4): received data reaches the
//! application as the buffers it arrived in, the application paces the peer by how fast it
//! reads (the advertised window is what its receive buffer has left), and data sent beyond the
//! peer's window waits in the send queue, by reference, until the window opens.
//!
//! What it implements, and where each rule comes from:
//!
//! - the state machine of RFC 9293 §3.3.2 and §3.10 (simultaneous open and close, TIME-WAIT
//!   for 2·MSL, half-close), RST generation and acceptance (§3.5.2, §3.10.7) hardened after
//!   RFC 5961 (exact-match RSTs, challenge ACKs for in-window RSTs and SYNs, ACK range check,
//!   rate limit), the acceptability test (§3.10.7.4), listen backlogs, ISNs after RFC 6528;
//! - options: MSS (RFC 9293 §3.7.1, RFC 6691), Window Scale and Timestamps with RTTM and PAWS
//!   (RFC 7323; pure ACKs at RCV.NXT are exempt from PAWS, as in Linux), SACK-Permitted and
//!   SACK (RFC 2018) with D-SACK reports of duplicates (RFC 2883);
//! - retransmission after RFC 6298 (SRTT/RTTVAR, backoff, Karn's algorithm or timestamp
//!   samples, giving up after [`TcpConfig::max_retries`]), slow start and congestion avoidance
//!   (RFC 5681), NewReno fast retransmit and recovery (RFC 6582), or with SACK the
//!   scoreboard-driven recovery of RFC 6675 (`IsLost`, `SetPipe`, `NextSeg` rules 1-3), the
//!   initial window of RFC 6928; spurious recoveries detected by timestamps (Eifel, RFC 3522)
//!   and undone (RFC 4015), with the duplicate threshold raised to the reordering seen;
//! - delayed ACKs (RFC 9293 §3.8.6.3, RFC 5681 §4.2), out-of-order reassembly, window
//!   management with silly window avoidance on both sides (§3.8.6.2), zero-window probing with
//!   backoff (§3.8.6.1), Nagle (RFC 896; off by default, switchable per connection);
//! - per-core ownership: [`flow_hash`] steers a segment to the core that owns its flow.
//!
//! Not implemented: urgent data (the URG pointer is ignored and such data read inline, as RFC
//! 6093 recommends applications not rely on it), keep-alives, ECN, the idle restart of RFC
//! 5681 §4.1, PMTU discovery, RACK-TLP (RFC 8985), SACK's rescue retransmission (RFC 6675
//! rule 4).

mod config;
mod congestion;
mod conn;
mod control;
mod counters;
mod hash;
mod output;
mod recv_buf;
mod rtt;
mod sack;
mod send_buf;
mod seq;
mod stack;
mod types;

pub use config::TcpConfig;
pub use counters::TcpCounters;
pub use hash::flow_hash;
pub use stack::TcpStack;
pub use types::{CloseReason, ConnId, ConnInfo, ListenerId, TcpError, TcpEvent, TcpState};
