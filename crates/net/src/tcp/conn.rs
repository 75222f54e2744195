//! One connection's transmission control block (RFC 9293 §3.3.1) and its state machine: segment
//! arrival (§3.10.7), the retransmission, persist, delayed-ACK and TIME-WAIT timers (§3.8,
//! RFC 6298), and what to send next (§3.8.6, RFC 5681, RFC 896).
//!
//! Sequence variables are positions (see [`super::seq`]): on the send side the SYN is at 0,
//! data octet `i` (from 0) at `1 + i` and the FIN right after the last octet queued; on the
//! receive side likewise from the peer's SYN.
//!
//! The connection never emits bytes itself: [`Conn::input`], [`Conn::on_timer`] and the
//! application calls change its state and set flags (an ACK is due, the first segment must be
//! resent, a probe is due), and [`Conn::poll_output`] turns them into segments when the stack
//! dispatches.

use alloc::collections::VecDeque;

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::congestion::{AckAction, NewReno};
use super::control::{ChallengeLimiter, ControlQueue};
use super::counters::TcpCounters;
use super::hash;
use super::recv_buf::RecvBuffer;
use super::rtt::RttEstimator;
use super::sack::Scoreboard;
use super::send_buf::SendBuffer;
use super::seq::{unwrap, wrap};
use super::types::{CloseReason, ConnId, ConnInfo, ListenerId, TcpEvent, TcpState};
use super::TcpConfig;
use crate::wire::{Ipv4Address, SackBlocks, TcpFlags, TcpRepr, TcpTimestamps};

/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1).
const DEFAULT_MSS: usize = 536;
/// The smallest peer MSS honoured; smaller values are raised to it.
const MIN_MSS: usize = 64;
/// Bytes the Timestamps option adds to every segment (10, padded to 12).
const TIMESTAMP_OPTION_LEN: usize = 12;
/// The longest backoff shift of the persist timer.
const MAX_PERSIST_BACKOFF: u32 = 16;

/// Where one call into a connection gets the stack-wide things it needs.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a TcpConfig,
    pub(crate) now: u64,
    pub(crate) counters: &'a mut TcpCounters,
    pub(crate) events: &'a mut VecDeque<TcpEvent>,
    pub(crate) control: &'a mut ControlQueue,
    pub(crate) challenge: &'a mut ChallengeLimiter,
}

/// Who a connection answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Opened passively and not yet taken by `accept`.
    Listener(ListenerId),
    /// The application holds its handle.
    App,
    /// The application closed or aborted it; it lives on only to finish the protocol.
    Released,
}

/// A segment ready to serialize: the header as a repr and the payload as slices of the send
/// queue.
pub(crate) struct OutSegment {
    pub(crate) repr: TcpRepr,
    pub(crate) payload: IoBufChain,
    /// For a segment longer than the MSS (TCP segmentation offload), the MSS the device cuts
    /// it into; 0 for a segment that goes out as it is.
    pub(crate) segment_size: u16,
}

/// What is needed to tell whether a fast recovery was spurious (RFC 3522 §3.2).
#[derive(Debug, Clone, Copy)]
enum UndoProbe {
    /// Recovery began; its first retransmission has not gone out yet.
    Armed,
    /// The first retransmission `[start, end)` went out carrying `tsval`.
    Sent { start: i64, end: i64, tsval: u32 },
}

/// The state of the Timestamps option on a connection (RFC 7323 §4.3).
#[derive(Debug, Clone, Copy)]
struct TsState {
    /// TS.Recent: the TSval to echo.
    recent: u32,
}

/// One connection.
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    pub(crate) state: TcpState,
    pub(crate) local: (Ipv4Address, u16),
    pub(crate) remote: (Ipv4Address, u16),
    pub(crate) owner: Owner,
    /// Opened by a SYN to a listener.
    pub(crate) passive: bool,
    /// Counted in its listener's SYN queue (SYN-RECEIVED, passive).
    pub(crate) in_syn_queue: bool,
    pub(crate) close_reason: Option<CloseReason>,
    /// Waiting in the stack's dispatch list.
    pub(crate) dirty: bool,
    pub(crate) nodelay: bool,
    pub(crate) readable_pending: bool,
    writable_blocked: bool,

    // Send sequence space (RFC 9293 §3.3.1), as positions.
    iss: u32,
    snd_una: i64,
    snd_nxt: i64,
    /// One past the highest position ever sent (snd_nxt goes back on a timeout).
    snd_max: i64,
    snd_wnd: u64,
    max_snd_wnd: u64,
    /// Receive-side position of the segment that last updated the window.
    snd_wl1: i64,
    /// Send-side position acknowledged by that segment.
    snd_wl2: i64,
    snd_wscale: u8,
    send_buf: SendBuffer,
    pub(crate) fin_queued: bool,

    // Receive sequence space.
    irs: u32,
    rcv_nxt: i64,
    /// The right edge of the window last advertised.
    rcv_adv: i64,
    rcv_wscale: u8,
    recv: RecvBuffer,
    pub(crate) fin_received: bool,
    /// The largest segment received so far, for the every-second-segment ACK rule.
    rcv_mss_est: usize,
    /// RCV.NXT as last acknowledged (RFC 7323's Last.ACK.sent).
    last_ack_sent: i64,

    // Options.
    offer_ws: bool,
    offer_ts: bool,
    ts: Option<TsState>,
    ts_offset: u32,
    /// Payload bytes per segment we send.
    mss: usize,
    peer_sack_permitted: bool,
    /// Both ends offered SACK-Permitted: blocks are sent and heeded (RFC 2018 §2).
    sack_ok: bool,
    /// What the peer SACKed (RFC 6675 §3).
    scoreboard: Scoreboard,
    /// RFC 6675 HighRxt: the end of the highest retransmission in this recovery.
    high_rxt: i64,
    /// A duplicate segment received, reported first in the next ACK (D-SACK, RFC 2883 §4).
    dsack: Option<(i64, i64)>,
    /// Set while a fast recovery may still be found spurious.
    undo: Option<UndoProbe>,

    // Timing.
    rtt: RttEstimator,
    /// Without timestamps, the one segment being timed: its end position and send time.
    rtt_probe: Option<(i64, u64)>,
    retries: u32,
    rto_at: Option<u64>,
    persist_at: Option<u64>,
    persist_backoff: u32,
    delack_at: Option<u64>,
    /// TIME-WAIT expiry, or the FIN-WAIT-2 timeout of a released connection.
    linger_at: Option<u64>,
    cc: NewReno,

    // What the next dispatch must send.
    ack_now: bool,
    retransmit_first: bool,
    probe_now: bool,
    /// Sender silly-window avoidance held data back with nothing in flight; the persist timer
    /// is then the override timer of RFC 9293 §3.8.6.2.1.
    sws_hold: bool,
}

/// The timestamp clock: milliseconds (RFC 7323 §5.4 asks for 1 ms to 1 s per tick).
fn ts_clock(now_ns: u64) -> u32 {
    (now_ns / 1_000_000) as u32
}

impl Conn {
    fn blank(
        cfg: &TcpConfig,
        id: ConnId,
        state: TcpState,
        local: (Ipv4Address, u16),
        remote: (Ipv4Address, u16),
        now: u64,
    ) -> Self {
        let iss =
            hash::initial_sequence(&cfg.isn_secret, local.0, local.1, remote.0, remote.1, now);
        let ts_offset =
            hash::timestamp_offset(&cfg.isn_secret, local.0, local.1, remote.0, remote.1);
        let mss = usize::from(cfg.advertised_mss());
        Conn {
            id,
            state,
            local,
            remote,
            owner: Owner::App,
            passive: false,
            in_syn_queue: false,
            close_reason: None,
            dirty: false,
            nodelay: cfg.nodelay,
            readable_pending: false,
            writable_blocked: false,
            iss,
            snd_una: 0,
            snd_nxt: 0,
            snd_max: 0,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            snd_wscale: 0,
            send_buf: SendBuffer::default(),
            fin_queued: false,
            irs: 0,
            rcv_nxt: 0,
            rcv_adv: 0,
            rcv_wscale: 0,
            recv: RecvBuffer::default(),
            fin_received: false,
            rcv_mss_est: DEFAULT_MSS.min(mss),
            last_ack_sent: 0,
            offer_ws: cfg.window_scaling,
            offer_ts: cfg.timestamps,
            ts: None,
            ts_offset,
            mss,
            peer_sack_permitted: false,
            sack_ok: false,
            scoreboard: Scoreboard::default(),
            high_rxt: 0,
            dsack: None,
            undo: None,
            rtt: RttEstimator::new(cfg.rto_initial_ns, cfg.rto_min_ns, cfg.rto_max_ns),
            rtt_probe: None,
            retries: 0,
            rto_at: None,
            persist_at: None,
            persist_backoff: 0,
            delack_at: None,
            linger_at: None,
            cc: NewReno::new(mss),
            ack_now: false,
            retransmit_first: false,
            probe_now: false,
            sws_hold: false,
        }
    }

    /// An active open (RFC 9293 §3.10.1): SYN-SENT, the SYN goes out at the next dispatch.
    pub(crate) fn new_active(
        cfg: &TcpConfig,
        id: ConnId,
        local: (Ipv4Address, u16),
        remote: (Ipv4Address, u16),
        now: u64,
    ) -> Self {
        Conn::blank(cfg, id, TcpState::SynSent, local, remote, now)
    }

    /// A passive open from a SYN to a listener (RFC 9293 §3.10.7.2): SYN-RECEIVED, the SYN-ACK
    /// goes out at the next dispatch. Data and FIN on the SYN are not kept (the peer sends them
    /// again once they go unacknowledged).
    pub(crate) fn new_passive(
        cfg: &TcpConfig,
        id: ConnId,
        listener: ListenerId,
        local: (Ipv4Address, u16),
        remote: (Ipv4Address, u16),
        syn: &TcpRepr,
        now: u64,
    ) -> Self {
        let mut conn = Conn::blank(cfg, id, TcpState::SynReceived, local, remote, now);
        conn.owner = Owner::Listener(listener);
        conn.passive = true;
        conn.in_syn_queue = true;
        conn.offer_ws = cfg.window_scaling && syn.window_scale.is_some();
        conn.offer_ts = cfg.timestamps && syn.timestamps.is_some();
        conn.accept_syn(cfg, syn);
        conn
    }

    /// Takes the peer's SYN: IRS, RCV.NXT, its window and options (RFC 9293 §3.10.7.2-3).
    fn accept_syn(&mut self, cfg: &TcpConfig, syn: &TcpRepr) {
        self.irs = syn.seq_number;
        self.rcv_nxt = 1;
        self.last_ack_sent = 1;
        self.rcv_adv = 1 + cfg.recv_buffer.min(65535) as i64;
        // RFC 7323 §2.2: the window of a SYN is never scaled.
        self.snd_wnd = u64::from(syn.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = 0;
        self.snd_wl2 = 0;
        let peer_mss = syn.max_seg_size.map_or(DEFAULT_MSS, usize::from).max(MIN_MSS);
        // RFC 7323 §1.3: scaling applies only if both SYNs carried the option.
        match (self.offer_ws, syn.window_scale) {
            (true, Some(shift)) => {
                self.snd_wscale = shift.min(crate::wire::tcp::MAX_WINDOW_SCALE);
                self.rcv_wscale = cfg.window_shift();
            }
            _ => {
                self.offer_ws = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        match (self.offer_ts, syn.timestamps) {
            (true, Some(ts)) => self.ts = Some(TsState { recent: ts.tsval }),
            _ => {
                self.offer_ts = false;
                self.ts = None;
            }
        }
        self.peer_sack_permitted = syn.sack_permitted;
        // We offer SACK-Permitted in a SYN whenever configured, and in a SYN-ACK only if the
        // SYN carried it, so both offered it exactly when this holds (RFC 2018 §2).
        self.sack_ok = cfg.sack && syn.sack_permitted;
        // RFC 6691: the MSS counts data only, so options in every segment come off it.
        let opts = if self.ts.is_some() { TIMESTAMP_OPTION_LEN } else { 0 };
        self.mss = peer_mss.min(usize::from(cfg.advertised_mss())).saturating_sub(opts).max(1);
        self.rcv_mss_est = self.rcv_mss_est.min(self.mss);
        self.cc.set_mss(self.mss, self.sack_ok);
    }

    // ----- small helpers -----

    /// The position just past the last data octet queued (where the FIN goes).
    fn data_end(&self) -> i64 {
        1 + self.send_buf.end() as i64
    }

    /// Whether our FIN has been sent and acknowledged.
    fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una > self.data_end()
    }

    fn event(&self, ctx: &mut Ctx<'_>, event: TcpEvent) {
        if self.owner == Owner::App {
            ctx.events.push_back(event);
        }
    }

    fn notify_readable(&mut self, ctx: &mut Ctx<'_>) {
        if self.owner == Owner::App && !self.readable_pending {
            self.readable_pending = true;
            ctx.events.push_back(TcpEvent::Readable(self.id));
        }
    }

    /// A challenge ACK (RFC 5961 §3.2, §4.2, §5.2), within the stack's rate limit (§7).
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.challenge.allow(ctx.now, ctx.cfg.challenge_ack_limit) {
            self.ack_now = true;
        } else {
            ctx.counters.challenge_acks_limited += 1;
        }
    }

    fn queue_rst(&self, ctx: &mut Ctx<'_>, seq: u32, ack: Option<u32>) {
        if ctx.control.push_rst(self.local, self.remote, seq, ack) {
            ctx.counters.rst_sent += 1;
        } else {
            ctx.counters.control_queue_drops += 1;
        }
    }

    /// Enters CLOSED for `reason`: queues are dropped (kept for reading after a normal close),
    /// timers stop and the application is told.
    pub(crate) fn close_with(&mut self, ctx: &mut Ctx<'_>, reason: CloseReason) {
        if self.state == TcpState::Closed {
            return;
        }
        self.state = TcpState::Closed;
        self.close_reason = Some(reason);
        self.send_buf.clear();
        if reason != CloseReason::Normal {
            self.recv.clear();
        }
        self.rto_at = None;
        self.persist_at = None;
        self.delack_at = None;
        self.linger_at = None;
        self.ack_now = false;
        self.retransmit_first = false;
        self.probe_now = false;
        match reason {
            CloseReason::Normal => ctx.counters.closed_normally += 1,
            CloseReason::Reset => ctx.counters.resets_received += 1,
            CloseReason::Refused => ctx.counters.refused += 1,
            CloseReason::TimedOut => ctx.counters.timeouts += 1,
            CloseReason::Aborted => ctx.counters.aborted += 1,
        }
        self.event(ctx, TcpEvent::Closed(self.id, reason));
    }

    fn enter_time_wait(&mut self, ctx: &mut Ctx<'_>) {
        self.state = TcpState::TimeWait;
        self.linger_at = Some(ctx.now.saturating_add(ctx.cfg.time_wait_ns));
        self.rto_at = None;
        self.persist_at = None;
        self.send_buf.clear();
    }

    /// Reached ESTABLISHED from SYN-SENT or SYN-RECEIVED.
    fn established(&mut self, ctx: &mut Ctx<'_>) {
        ctx.counters.established += 1;
        self.state = if self.fin_queued { TcpState::FinWait1 } else { TcpState::Established };
        self.retries = 0;
        if !self.passive {
            self.event(ctx, TcpEvent::Connected(self.id));
        }
    }

    // ----- segment arrival (RFC 9293 §3.10.7) -----

    /// Processes one segment for this connection (RFC 9293 §3.10.7.3 for SYN-SENT, §3.10.7.4
    /// otherwise). `payload` is the data after the header, as a view of the received buffer.
    pub(crate) fn input(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr, payload: SharedIoBuf) {
        match self.state {
            TcpState::Closed => {}
            TcpState::SynSent => self.input_syn_sent(ctx, seg),
            _ => self.input_synchronized(ctx, seg, payload),
        }
    }

    /// RFC 9293 §3.10.7.3, with RFC 5961 §3.2's rule that a RST in SYN-SENT counts only if it
    /// acknowledges our SYN.
    fn input_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr) {
        let flags = seg.flags;
        let rst = flags.contains(TcpFlags::RST);
        let mut ack_pos = None;
        if flags.contains(TcpFlags::ACK) {
            let pos = unwrap(seg.ack_number, self.iss, 0);
            if pos <= 0 || pos > self.snd_max {
                // First: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST> unless it is a RST.
                if rst {
                    ctx.counters.rst_ignored += 1;
                } else {
                    ctx.counters.ack_ahead += 1;
                    self.queue_rst(ctx, seg.ack_number, None);
                }
                return;
            }
            ack_pos = Some(pos);
        }
        if rst {
            if ack_pos.is_some() {
                ctx.counters.rst_accepted += 1;
                self.close_with(ctx, CloseReason::Refused);
            } else {
                ctx.counters.rst_ignored += 1;
            }
            return;
        }
        if !flags.contains(TcpFlags::SYN) {
            ctx.counters.no_ack += 1;
            return;
        }
        self.accept_syn(ctx.cfg, seg);
        if let Some(pos) = ack_pos {
            self.snd_una = pos;
            self.snd_nxt = self.snd_nxt.max(pos);
            self.snd_wl2 = pos;
            self.take_rtt_sample(ctx, seg, pos);
            self.rto_at = None;
            self.ack_now = true;
            self.established(ctx);
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8): answer with SYN-ACK, same ISS.
            self.state = TcpState::SynReceived;
            self.snd_nxt = 0;
            self.rtt_probe = None;
        }
    }

    /// RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on.
    fn input_synchronized(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr, mut payload: SharedIoBuf) {
        let flags = seg.flags;
        let rst = flags.contains(TcpFlags::RST);
        let mut syn = flags.contains(TcpFlags::SYN);
        let fin = flags.contains(TcpFlags::FIN);
        let mut seq = unwrap(seg.seq_number, wrap(self.irs, self.rcv_nxt), self.rcv_nxt);

        if self.state == TcpState::SynReceived && syn && !rst && seq == 0 {
            if !flags.contains(TcpFlags::ACK) {
                // The peer's SYN again: our SYN-ACK was lost, so send it again now.
                self.snd_nxt = 0;
                return;
            }
            // Simultaneous open: the peer's SYN-ACK. Its SYN is already counted; take the ACK.
            syn = false;
            seq = 1;
        }

        let data_len = payload.len() as i64;
        let seg_len = data_len + i64::from(syn) + i64::from(fin);

        // RFC 7323 §5.3 (PAWS): a segment whose TSval is older than TS.Recent is a duplicate.
        // A pure ACK at RCV.NXT is exempt, as Linux exempts "disordered" ACKs: it carries no
        // data PAWS could protect, and on a reordering path dropping it (and answering it)
        // would throw away the peer's acknowledgments and SACK blocks.
        let pure_ack = data_len == 0 && !syn && !fin && seq == self.rcv_nxt;
        if let (Some(ts), Some(seg_ts)) = (self.ts, seg.timestamps) {
            if !rst && !pure_ack && (seg_ts.tsval.wrapping_sub(ts.recent) as i32) < 0 {
                ctx.counters.paws_dropped += 1;
                self.ack_now = true;
                return;
            }
        }

        // First: the acceptability test (RFC 9293 §3.10.7.4, the table of four cases).
        let wnd = (self.rcv_adv - self.rcv_nxt).max(0);
        let (nxt, edge) = (self.rcv_nxt, self.rcv_nxt + wnd);
        let in_window = |p: i64| nxt <= p && p < edge;
        let mut acceptable = match (seg_len, wnd) {
            (0, 0) => seq == nxt,
            (0, _) => in_window(seq),
            (_, 0) => false,
            (_, _) => in_window(seq) || in_window(seq + seg_len - 1),
        };
        // "Special allowance should be made to accept valid ACKs, URGs, and RSTs" when the
        // window is zero: a segment at exactly RCV.NXT is processed, its data trimmed away.
        // A lone FIN at RCV.NXT is accepted at the window's edge, as Linux does.
        if !acceptable && seq == nxt {
            acceptable = true;
        }
        if !acceptable {
            if rst {
                ctx.counters.rst_ignored += 1;
            } else {
                ctx.counters.out_of_window += 1;
                self.ack_now = true;
                if self.sack_ok && data_len > 0 && seq + data_len <= self.rcv_nxt {
                    // Data we already had: tell the sender with a D-SACK (RFC 2883 §4).
                    self.dsack = Some((seq, seq + data_len));
                }
                if self.state == TcpState::TimeWait && fin {
                    // A retransmitted FIN: acknowledge it and restart the 2·MSL wait.
                    self.linger_at = Some(ctx.now.saturating_add(ctx.cfg.time_wait_ns));
                }
            }
            return;
        }

        // Second: RST (RFC 5961 §3.2: only an exact match resets; in-window gets a challenge).
        if rst {
            if seq != self.rcv_nxt {
                ctx.counters.rst_challenged += 1;
                self.challenge_ack(ctx);
                return;
            }
            ctx.counters.rst_accepted += 1;
            let reason = match self.state {
                TcpState::SynReceived if !self.passive => CloseReason::Refused,
                TcpState::Closing | TcpState::LastAck | TcpState::TimeWait => CloseReason::Normal,
                _ => CloseReason::Reset,
            };
            self.close_with(ctx, reason);
            return;
        }

        // Fourth: SYN in a synchronized state gets a challenge ACK (RFC 5961 §4.2).
        if syn {
            ctx.counters.syn_challenged += 1;
            self.challenge_ack(ctx);
            return;
        }

        // Fifth: the ACK field.
        if !flags.contains(TcpFlags::ACK) {
            ctx.counters.no_ack += 1;
            return;
        }
        let ack_pos = unwrap(seg.ack_number, wrap(self.iss, self.snd_una), self.snd_una);
        if self.state == TcpState::SynReceived {
            if self.snd_una < ack_pos && ack_pos <= self.snd_max {
                self.snd_wnd = u64::from(seg.window_len) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seq;
                self.snd_wl2 = ack_pos;
                self.established(ctx);
            } else {
                ctx.counters.ack_ahead += 1;
                self.queue_rst(ctx, seg.ack_number, None);
                return;
            }
        }
        if !self.process_ack(ctx, seg, seq, ack_pos, data_len, fin) {
            return;
        }
        if self.state == TcpState::Closed {
            return;
        }

        // Timestamps (RFC 7323 §4.3): remember TSval if the segment covers Last.ACK.sent.
        if let (Some(ts), Some(seg_ts)) = (self.ts.as_mut(), seg.timestamps) {
            if (seg_ts.tsval.wrapping_sub(ts.recent) as i32) >= 0 && seq <= self.last_ack_sent {
                ts.recent = seg_ts.tsval;
            }
        }

        // Sixth: URG is not supported; the urgent pointer is ignored and the data read inline.
        // Seventh: segment text, in ESTABLISHED and FIN-WAIT-1/2 only.
        let takes_data =
            matches!(self.state, TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2);
        if data_len > 0 && takes_data && self.owner == Owner::Released {
            // The application closed and will not read: RFC 2525 §2.17, reset.
            ctx.counters.data_after_close += 1;
            self.queue_rst(ctx, wrap(self.iss, self.snd_max), None);
            self.close_with(ctx, CloseReason::Aborted);
            return;
        }
        if !takes_data {
            payload = SharedIoBuf::new();
        }
        let fin_pos = seq + data_len;
        self.process_text(ctx, seq, payload, fin.then_some(fin_pos));
    }

    /// The ACK field of a segment in a synchronized state (RFC 9293 §3.10.7.4 fifth, RFC 5961
    /// §5.2, RFC 5681 §2-3, RFC 6298 §5). Returns false if the segment is to be dropped.
    fn process_ack(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        seq: i64,
        ack_pos: i64,
        data_len: i64,
        fin: bool,
    ) -> bool {
        if ack_pos > self.snd_max {
            ctx.counters.ack_ahead += 1;
            self.ack_now = true;
            return false;
        }
        let oldest = self.snd_una - (self.max_snd_wnd as i64).max(1);
        if ack_pos < oldest {
            ctx.counters.ack_too_old += 1;
            self.challenge_ack(ctx);
            return false;
        }
        let new_wnd = u64::from(seg.window_len) << self.snd_wscale;
        let newly_sacked = self.take_sack_blocks(ctx, seg, ack_pos);
        if ack_pos > self.snd_una {
            self.new_ack(ctx, seg, ack_pos);
        } else if ack_pos == self.snd_una
            && self.snd_max > self.snd_una
            && if self.sack_ok {
                // RFC 6675 §2: with SACK, an ACK that SACKs new data is a duplicate.
                newly_sacked > 0
            } else {
                data_len == 0 && !fin && new_wnd == self.snd_wnd && self.snd_wnd > 0
            }
        {
            ctx.counters.dup_acks += 1;
            let flight = (self.snd_max - self.snd_una) as u64;
            if self.cc.on_duplicate_ack(self.snd_una, self.snd_max, flight)
                == AckAction::RetransmitFirst
            {
                self.start_fast_retransmit(ctx);
            }
        }
        if self.sack_ok {
            self.maybe_enter_sack_recovery(ctx);
        }
        // The send window (RFC 9293 §3.10.7.4: only from segments newer than the last update).
        if ack_pos >= self.snd_una
            && (self.snd_wl1 < seq || (self.snd_wl1 == seq && self.snd_wl2 <= ack_pos))
        {
            let old = self.snd_wnd;
            self.snd_wnd = new_wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(new_wnd);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack_pos;
            if old == 0 && new_wnd > 0 {
                // The window reopened: resume from SND.UNA (a probe octet may not have been
                // taken).
                self.snd_nxt = self.snd_una;
                self.persist_at = None;
            }
        }
        if self.snd_wnd == 0 {
            // The peer answers our probes: keep probing however long (RFC 1122 §4.2.2.17).
            self.retries = 0;
        }
        match self.state {
            TcpState::FinWait1 if self.fin_acked() => {
                self.state = TcpState::FinWait2;
                if self.owner == Owner::Released {
                    self.linger_at = Some(ctx.now.saturating_add(ctx.cfg.time_wait_ns));
                }
            }
            TcpState::Closing if self.fin_acked() => self.enter_time_wait(ctx),
            TcpState::LastAck if self.fin_acked() => {
                self.close_with(ctx, CloseReason::Normal);
                return false;
            }
            _ => {}
        }
        true
    }

    /// Records the segment's SACK blocks on the scoreboard (RFC 6675 §5 `Update()`); returns
    /// the bytes newly SACKed.
    fn take_sack_blocks(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr, ack_pos: i64) -> u64 {
        if !self.sack_ok || seg.sack_blocks.is_empty() {
            return 0;
        }
        let una = ack_pos.max(self.snd_una);
        let base = wrap(self.iss, self.snd_una);
        let mut newly = 0;
        for &(left, right) in seg.sack_blocks.as_slice() {
            let (start, end) =
                (unwrap(left, base, self.snd_una), unwrap(right, base, self.snd_una));
            newly += self.scoreboard.add(start, end, una, self.snd_max);
        }
        ctx.counters.sacked_bytes += newly;
        newly
    }

    /// The duplicate threshold in force: the adaptive one, but never more than half the
    /// segments in flight so that a real loss is still found without a timeout.
    fn dupthresh(&self) -> u32 {
        let flight_segments = ((self.snd_max - self.snd_una) as usize / self.mss.max(1)) as u32;
        self.cc.dupthresh().min((flight_segments / 2).max(super::congestion::DUPACK_THRESHOLD))
    }

    /// RFC 6675 §5: recovery starts when DupThresh duplicates arrived or the scoreboard says
    /// the first unacknowledged octet is lost, unless a recovery (or timeout) that ends at
    /// `recover` is still being repaired.
    fn maybe_enter_sack_recovery(&mut self, ctx: &mut Ctx<'_>) {
        if self.cc.in_recovery()
            || self.snd_una >= self.snd_max
            || self.snd_una < self.cc.recover()
            || self.scoreboard.is_empty()
        {
            return;
        }
        let dupthresh = self.dupthresh();
        if self.cc.dupacks() >= dupthresh
            || self.scoreboard.is_lost(self.snd_una, dupthresh, self.mss)
        {
            let flight = (self.snd_max - self.snd_una) as u64;
            self.cc.enter_recovery(flight, self.snd_max);
            self.high_rxt = self.snd_una;
            self.start_fast_retransmit(ctx);
        }
    }

    /// Fast retransmit (RFC 5681 §3.2 step 2, RFC 6675 §5 step 4.3): the first unacknowledged
    /// segment goes out at the next dispatch, and the recovery may later prove spurious.
    fn start_fast_retransmit(&mut self, ctx: &mut Ctx<'_>) {
        ctx.counters.fast_retransmits += 1;
        self.retransmit_first = true;
        self.rtt_probe = None;
        self.undo = self.ts.is_some().then_some(UndoProbe::Armed);
    }

    /// RFC 3522 §3.2: the ACK that covers the first retransmission of a recovery echoes a
    /// TSval older than that retransmission's, so the original arrived and the recovery was
    /// spurious; it is undone (RFC 4015) and the duplicate threshold raised to the reordering
    /// seen. Called before SND.UNA moves to `ack_pos`.
    fn check_spurious_recovery(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr, ack_pos: i64) {
        let Some(UndoProbe::Sent { start, end, tsval }) = self.undo else { return };
        if ack_pos < end {
            return;
        }
        self.undo = None;
        let Some(TcpTimestamps { tsecr, .. }) = seg.timestamps else { return };
        if tsecr == 0 || (tsecr.wrapping_sub(tsval) as i32) >= 0 {
            return;
        }
        let reach = self.scoreboard.highest().unwrap_or(ack_pos).max(ack_pos);
        let reordering = ((reach - start) as usize / self.mss.max(1)) as u32 + 1;
        self.cc.undo(ack_pos, reordering);
        ctx.counters.spurious_recoveries += 1;
    }

    /// An ACK that advances SND.UNA.
    fn new_ack(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr, ack_pos: i64) {
        self.check_spurious_recovery(ctx, seg, ack_pos);
        let acked = (ack_pos - self.snd_una) as u64;
        self.send_buf.ack_to((ack_pos - 1).max(0) as u64);
        self.snd_una = ack_pos;
        self.scoreboard.trim(ack_pos);
        self.high_rxt = self.high_rxt.max(ack_pos);
        if self.snd_nxt < ack_pos {
            self.snd_nxt = ack_pos;
        }
        self.retries = 0;
        self.take_rtt_sample(ctx, seg, ack_pos);
        let flight = (self.snd_max - self.snd_una) as u64;
        if self.cc.on_new_ack(acked, self.snd_una, flight) == AckAction::RetransmitFirst
            && self.snd_una < self.snd_max
        {
            ctx.counters.partial_ack_retransmits += 1;
            self.retransmit_first = true;
        }
        // RFC 6298 §5.3: restart the timer (update_timers arms it again if data is out).
        self.rto_at = None;
        if self.writable_blocked
            && ctx.cfg.send_queue_limit.is_none_or(|limit| self.send_buf.len() < limit)
        {
            self.writable_blocked = false;
            self.event(ctx, TcpEvent::Writable(self.id));
        }
    }

    /// An RTT sample from the echoed timestamp (RFC 7323 §4) or the timed segment (RFC 6298 §3,
    /// Karn's algorithm: `rtt_probe` is cleared whenever its segment is retransmitted).
    fn take_rtt_sample(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr, ack_pos: i64) {
        if self.ts.is_some() {
            if let Some(TcpTimestamps { tsecr, .. }) = seg.timestamps {
                let now_ts = ts_clock(ctx.now).wrapping_add(self.ts_offset);
                let elapsed = now_ts.wrapping_sub(tsecr);
                if tsecr != 0 && (elapsed as i32) >= 0 {
                    self.rtt.sample(u64::from(elapsed) * 1_000_000);
                    self.rtt_probe = None;
                    return;
                }
            }
        }
        if let Some((end, sent)) = self.rtt_probe {
            if ack_pos >= end {
                self.rtt.sample(ctx.now.saturating_sub(sent));
                self.rtt_probe = None;
            }
        }
    }

    /// The segment text and FIN (RFC 9293 §3.10.7.4 seventh and eighth). `fin` is the FIN's
    /// position if the segment carried one.
    fn process_text(
        &mut self,
        ctx: &mut Ctx<'_>,
        seq: i64,
        mut payload: SharedIoBuf,
        mut fin: Option<i64>,
    ) {
        let mut start = seq;
        if start < self.rcv_nxt && !payload.is_empty() {
            let skip = ((self.rcv_nxt - start) as usize).min(payload.len());
            payload.advance(skip);
            start += skip as i64;
        }
        let end = start + payload.len() as i64;
        if end > self.rcv_adv {
            // Beyond the window we advertised: trim it off, and the FIN behind it.
            let keep = (self.rcv_adv - start).max(0) as usize;
            ctx.counters.beyond_window_bytes += (payload.len() - keep.min(payload.len())) as u64;
            payload.truncate(keep);
            fin = None;
            self.ack_now = true;
        }
        if !payload.is_empty() {
            let len = payload.len();
            if start == self.rcv_nxt {
                self.rcv_nxt += len as i64;
                ctx.counters.bytes_in += len as u64;
                self.recv.push_ready(payload);
                if self.recv.ooo_segments() > 0 {
                    // It may fill a gap: RFC 5681 §4.2 wants an immediate ACK.
                    let moved = self.recv.drain_in_order(&mut self.rcv_nxt);
                    ctx.counters.bytes_in += moved as u64;
                    self.ack_now = true;
                }
                self.rcv_mss_est = self.rcv_mss_est.max(len);
                // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK at least every second full-sized
                // segment, otherwise within the delayed-ACK time.
                let unacked = self.rcv_nxt - self.last_ack_sent;
                if ctx.cfg.delayed_ack_ns == 0 || unacked >= 2 * self.rcv_mss_est as i64 {
                    self.ack_now = true;
                } else if self.delack_at.is_none() {
                    self.delack_at = Some(ctx.now.saturating_add(ctx.cfg.delayed_ack_ns));
                }
                self.notify_readable(ctx);
            } else {
                // Out of order: keep it and send a duplicate ACK at once (RFC 5681 §4.2).
                if self.recv.insert_out_of_order(start, payload, ctx.cfg.ooo_max_segments) {
                    ctx.counters.ooo_queued += 1;
                } else {
                    ctx.counters.ooo_dropped += 1;
                }
                self.ack_now = true;
            }
        }
        if let Some(pos) = fin {
            if pos > self.rcv_nxt {
                self.recv.ooo_fin = Some(pos);
            }
        }
        let fin_now = fin == Some(self.rcv_nxt) || self.recv.ooo_fin == Some(self.rcv_nxt);
        if fin_now && !self.fin_received {
            self.recv.ooo_fin = None;
            self.process_fin(ctx);
        }
    }

    /// The peer's FIN, in order (RFC 9293 §3.10.7.4 eighth).
    fn process_fin(&mut self, ctx: &mut Ctx<'_>) {
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now = true;
        self.event(ctx, TcpEvent::PeerClosed(self.id));
        match self.state {
            TcpState::SynReceived | TcpState::Established => self.state = TcpState::CloseWait,
            TcpState::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(ctx);
                } else {
                    self.state = TcpState::Closing;
                }
            }
            TcpState::FinWait2 => self.enter_time_wait(ctx),
            _ => {}
        }
    }

    // ----- timers (RFC 6298 §5, RFC 9293 §3.8.6.1, §3.8.6.3, §3.4.2) -----

    /// The earliest time this connection needs `on_timer`.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        [self.rto_at, self.persist_at, self.delack_at, self.linger_at].into_iter().flatten().min()
    }

    /// Runs the timers due at `ctx.now`; returns whether something is now to be sent or the
    /// state changed.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let now = ctx.now;
        let due = |t: Option<u64>| t.is_some_and(|t| t <= now);
        let mut changed = false;
        if due(self.linger_at) {
            // TIME-WAIT over (or a released connection waited too long in FIN-WAIT-2).
            self.linger_at = None;
            self.close_with(ctx, CloseReason::Normal);
            return true;
        }
        if due(self.rto_at) {
            self.rto_at = None;
            self.on_rto(ctx);
            changed = true;
            if self.state == TcpState::Closed {
                return true;
            }
        }
        if due(self.persist_at) {
            self.persist_at = None;
            self.retries += 1;
            if self.retries > ctx.cfg.max_retries {
                self.close_with(ctx, CloseReason::TimedOut);
                return true;
            }
            self.probe_now = true;
            self.persist_backoff = (self.persist_backoff + 1).min(MAX_PERSIST_BACKOFF);
            changed = true;
        }
        if due(self.delack_at) {
            self.delack_at = None;
            self.ack_now = true;
            ctx.counters.delayed_acks += 1;
            changed = true;
        }
        changed
    }

    /// The retransmission timer expired (RFC 6298 §5.4-5.6; RFC 5681 §3.1 for the windows).
    fn on_rto(&mut self, ctx: &mut Ctx<'_>) {
        self.retries += 1;
        let limit =
            if self.state.is_synchronized() { ctx.cfg.max_retries } else { ctx.cfg.syn_retries };
        if self.retries > limit {
            self.close_with(ctx, CloseReason::TimedOut);
            return;
        }
        ctx.counters.rto_expirations += 1;
        self.rtt.backoff();
        let flight = (self.snd_max - self.snd_una) as u64;
        self.cc.on_timeout(flight, self.snd_max, self.retries == 1);
        self.rtt_probe = None;
        self.retransmit_first = false;
        self.snd_nxt = self.snd_una;
        // RFC 2018 §8: the receiver may have reneged, so SACKed data is sent again too.
        self.scoreboard.clear();
        self.high_rxt = self.snd_una;
        self.undo = None;
    }

    /// Arms or stops the retransmission and persist timers to match what is outstanding (RFC
    /// 6298 §5.1-5.2; RFC 9293 §3.8.6.1). Called after every change.
    pub(crate) fn update_timers(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match self.state {
            TcpState::Closed | TcpState::TimeWait => {
                self.rto_at = None;
                self.persist_at = None;
                return;
            }
            TcpState::SynSent | TcpState::SynReceived => {
                if self.snd_max > self.snd_una && self.rto_at.is_none() {
                    self.rto_at = Some(now.saturating_add(self.rtt.rto()));
                }
                return;
            }
            _ => {}
        }
        let sending = matches!(
            self.state,
            TcpState::Established
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::Closing
                | TcpState::LastAck
        );
        let stalled = self.snd_wnd == 0 || (self.sws_hold && self.snd_max == self.snd_una);
        if sending && self.snd_una < self.data_end() && stalled {
            self.rto_at = None;
            if self.persist_at.is_none() {
                let interval = self
                    .rtt
                    .rto()
                    .saturating_mul(1u64 << self.persist_backoff)
                    .clamp(ctx.cfg.rto_min_ns, ctx.cfg.rto_max_ns);
                self.persist_at = Some(now.saturating_add(interval));
            }
        } else {
            self.persist_at = None;
            self.persist_backoff = 0;
            if self.snd_max > self.snd_una {
                if self.rto_at.is_none() {
                    self.rto_at = Some(now.saturating_add(self.rtt.rto()));
                }
            } else {
                self.rto_at = None;
            }
        }
    }

    // ----- output (RFC 9293 §3.8.6, RFC 5681, RFC 896) -----

    /// The next segment to send, if any.
    pub(crate) fn poll_output(&mut self, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        match self.state {
            TcpState::Closed => return None,
            TcpState::SynSent | TcpState::SynReceived => {
                if self.snd_nxt == 0 {
                    self.retransmit_first = false;
                    let mut flags = TcpFlags::SYN;
                    if self.state == TcpState::SynReceived {
                        flags |= TcpFlags::ACK;
                    }
                    return Some(self.segment(ctx, flags, 0, IoBufChain::new(), true));
                }
                if self.state == TcpState::SynSent {
                    self.ack_now = false;
                    return None;
                }
            }
            TcpState::TimeWait => {}
            _ => {
                if self.retransmit_first {
                    self.retransmit_first = false;
                    if let Some(seg) = self.retransmit(ctx, self.snd_una, self.mss) {
                        return Some(seg);
                    }
                }
                if self.probe_now {
                    self.probe_now = false;
                    self.snd_nxt = self.snd_una;
                    let len = if self.snd_wnd == 0 {
                        1
                    } else {
                        let usable = (self.snd_una + self.snd_wnd as i64 - self.snd_nxt).max(1);
                        (usable as usize).min(self.mss)
                    };
                    let zero_window = self.snd_wnd == 0;
                    if let Some(seg) = self.data_segment(ctx, self.snd_una, len, true) {
                        if zero_window {
                            ctx.counters.window_probes += 1;
                        }
                        return Some(seg);
                    }
                }
                let sack_recovery = self.sack_ok && self.cc.in_recovery();
                let seg = if sack_recovery {
                    self.sack_recovery_segment(ctx)
                } else {
                    self.regular_segment(ctx)
                };
                if let Some(seg) = seg {
                    return Some(seg);
                }
            }
        }
        if self.ack_now {
            let pos = self.snd_max;
            return Some(self.segment(ctx, TcpFlags::ACK, pos, IoBufChain::new(), false));
        }
        None
    }

    /// Resends up to `len` octets from `pos`, stopping at the next SACKed range, without moving
    /// SND.NXT (RFC 5681 §3.2); the first resend of a recovery is stamped for RFC 3522.
    fn retransmit(&mut self, ctx: &mut Ctx<'_>, pos: i64, len: usize) -> Option<OutSegment> {
        let hole_end = self.scoreboard.next_sacked(pos).unwrap_or(i64::MAX);
        let len = len.min((hole_end - pos).max(0) as usize).max(1);
        let seg = self.data_segment(ctx, pos, len, false)?;
        let end = pos + seg.payload.len() as i64;
        self.high_rxt = self.high_rxt.max(end);
        if let (Some(UndoProbe::Armed), Some(ts)) = (self.undo, seg.repr.timestamps) {
            self.undo = Some(UndoProbe::Sent { start: pos, end, tsval: ts.tsval });
        }
        Some(seg)
    }

    /// RFC 6675 §5 step (C): while cwnd − pipe ≥ 1 SMSS, `NextSeg` picks a lost hole above
    /// HighRxt (rule 1), else new data (rule 2), else any hole below the highest SACKed octet
    /// (rule 3); the rescue retransmission (rule 4) is not done.
    fn sack_recovery_segment(&mut self, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        let lost_limit = self.scoreboard.lost_limit(self.dupthresh(), self.mss);
        let pipe = self.scoreboard.pipe(self.snd_una, self.snd_max, self.high_rxt, lost_limit);
        if self.cc.cwnd() < pipe + self.mss as u64 {
            return None;
        }
        let from = self.high_rxt.max(self.snd_una);
        if let Some(limit) = lost_limit {
            if let Some((start, _)) = self.scoreboard.next_hole(from, limit.min(self.snd_max)) {
                ctx.counters.sack_retransmits += 1;
                return self.retransmit(ctx, start, self.mss);
            }
        }
        let data_end = self.data_end();
        if self.snd_nxt < data_end {
            let usable = self.snd_una + self.snd_wnd as i64 - self.snd_nxt;
            if usable > 0 {
                let len = (data_end - self.snd_nxt).min(usable).min(self.mss as i64) as usize;
                return self.data_segment(ctx, self.snd_nxt, len, true);
            }
        } else if self.fin_queued && self.snd_nxt == data_end {
            return self.data_segment(ctx, data_end, 0, true);
        }
        let highest = self.scoreboard.highest()?;
        let (start, _) = self.scoreboard.next_hole(from, highest)?;
        ctx.counters.sack_retransmits += 1;
        self.retransmit(ctx, start, self.mss)
    }

    /// New data (or data again after a timeout), then a lone FIN, as the windows, Nagle and
    /// silly window avoidance allow (RFC 9293 §3.8.6.2.1, RFC 896, RFC 5681 §3.1).
    fn regular_segment(&mut self, ctx: &mut Ctx<'_>) -> Option<OutSegment> {
        self.sws_hold = false;
        if !matches!(
            self.state,
            TcpState::Established
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::Closing
                | TcpState::LastAck
        ) {
            return None;
        }
        let data_end = self.data_end();
        if self.snd_nxt < data_end {
            let window = self.snd_wnd.min(self.cc.cwnd()) as i64;
            let usable = self.snd_una + window - self.snd_nxt;
            if usable <= 0 {
                if self.snd_wnd <= self.cc.cwnd() {
                    ctx.counters.rwnd_limited += 1;
                } else {
                    ctx.counters.cwnd_limited += 1;
                }
                return None;
            }
            let avail = data_end - self.snd_nxt;
            let mut len = avail.min(usable).min(self.max_payload(ctx.cfg) as i64) as usize;
            let retransmission = self.snd_nxt < self.snd_max;
            let idle = self.snd_max == self.snd_una;
            let push_ok = self.nodelay || idle;
            if len > self.mss && !(len as i64 == avail && push_ok) {
                // Offloaded segmentation sends whole MSS-sized pieces, and a short last piece
                // only where a segment of that size would have gone out by itself.
                len -= len % self.mss;
            }
            let send = retransmission
                || len >= self.mss
                || (len as i64 == avail && push_ok)
                || (self.max_snd_wnd > 0 && len as u64 >= self.max_snd_wnd / 2 && push_ok);
            if !send {
                self.sws_hold = idle;
                return None;
            }
            return self.data_segment(ctx, self.snd_nxt, len, true);
        }
        if self.fin_queued && self.snd_nxt == data_end {
            return self.data_segment(ctx, data_end, 0, true);
        }
        None
    }

    /// The most payload one segment carries: the MSS, or as many whole MSS-sized pieces as
    /// the device cuts one segment into when it offloads segmentation.
    fn max_payload(&self, cfg: &TcpConfig) -> usize {
        if cfg.checksum_offload && cfg.tso_max_payload > self.mss {
            cfg.tso_max_payload - cfg.tso_max_payload % self.mss
        } else {
            self.mss
        }
    }

    /// A segment of up to `len` data octets from position `pos`, with FIN if it reaches the end
    /// of the data after the application shut down. `advance` moves SND.NXT past it (not for
    /// fast retransmit, RFC 5681 §3.2).
    fn data_segment(
        &mut self,
        ctx: &mut Ctx<'_>,
        pos: i64,
        len: usize,
        advance: bool,
    ) -> Option<OutSegment> {
        let data_end = self.data_end();
        if pos < 1 {
            return None;
        }
        let len = if pos < data_end { len.min((data_end - pos) as usize) } else { 0 };
        let fin = self.fin_queued && pos + len as i64 == data_end;
        if len == 0 && !fin {
            return None;
        }
        let payload = self.send_buf.slice((pos - 1) as u64, len);
        let mut flags = TcpFlags::ACK;
        if len > 0 && pos + len as i64 == data_end {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let seg = self.segment(ctx, flags, pos, payload, advance);
        Some(seg)
    }

    /// Builds a segment at position `pos`, records it as sent, and clears the pending ACK.
    fn segment(
        &mut self,
        ctx: &mut Ctx<'_>,
        flags: TcpFlags,
        pos: i64,
        payload: IoBufChain,
        advance: bool,
    ) -> OutSegment {
        let cfg = ctx.cfg;
        let syn = flags.contains(TcpFlags::SYN);
        let seg_len =
            payload.len() as i64 + i64::from(syn) + i64::from(flags.contains(TcpFlags::FIN));
        if seg_len > 0 {
            let end = pos + seg_len;
            if pos < self.snd_max {
                ctx.counters.retransmits += 1;
                if self.rtt_probe.is_some_and(|(probe_end, _)| probe_end > pos) {
                    self.rtt_probe = None;
                }
            } else if self.rtt_probe.is_none() && self.ts.is_none() && self.retries == 0 {
                self.rtt_probe = Some((end, ctx.now));
            }
            if advance {
                self.snd_nxt = self.snd_nxt.max(end);
            }
            self.snd_max = self.snd_max.max(end);
            if self.rto_at.is_none() && self.persist_at.is_none() {
                self.rto_at = Some(ctx.now.saturating_add(self.rtt.rto()));
            }
        }
        let ack = flags.contains(TcpFlags::ACK);
        let tsval = ts_clock(ctx.now).wrapping_add(self.ts_offset);
        let timestamps = if syn {
            self.offer_ts.then(|| TcpTimestamps {
                tsval,
                tsecr: if ack { self.ts.map_or(0, |t| t.recent) } else { 0 },
            })
        } else {
            self.ts.map(|t| TcpTimestamps { tsval, tsecr: t.recent })
        };
        let window_len = self.window_field(cfg, syn);
        let sack_blocks = if ack && !syn { self.sack_blocks() } else { SackBlocks::new() };
        if ack {
            self.ack_now = false;
            self.delack_at = None;
            self.last_ack_sent = self.rcv_nxt;
        }
        ctx.counters.segments_out += 1;
        ctx.counters.bytes_out += payload.len() as u64;
        let repr = TcpRepr {
            src_port: self.local.1,
            dst_port: self.remote.1,
            flags,
            seq_number: wrap(self.iss, pos),
            ack_number: if ack { wrap(self.irs, self.rcv_nxt) } else { 0 },
            window_len,
            urgent_at: 0,
            max_seg_size: syn.then(|| cfg.advertised_mss()),
            window_scale: (syn && self.offer_ws).then(|| cfg.window_shift()),
            // Offered in our SYN when configured, in a SYN-ACK only if the SYN had it.
            sack_permitted: syn
                && cfg.sack
                && (self.state == TcpState::SynSent || self.peer_sack_permitted),
            sack_blocks,
            timestamps,
            payload_len: payload.len(),
        };
        let segment_size = if payload.len() > self.mss {
            ctx.counters.segmentation_offloads += 1;
            u16::try_from(self.mss).unwrap_or(u16::MAX)
        } else {
            0
        };
        OutSegment { repr, payload, segment_size }
    }

    /// The SACK blocks for an outgoing ACK (RFC 2018 §4): a pending D-SACK first (RFC 2883),
    /// then the out-of-order data held, the newest block first.
    fn sack_blocks(&mut self) -> SackBlocks {
        let mut blocks = SackBlocks::new();
        if !self.sack_ok {
            return blocks;
        }
        if let Some((start, end)) = self.dsack.take() {
            blocks.push(wrap(self.irs, start), wrap(self.irs, end));
        }
        if self.recv.ooo_segments() > 0 {
            let (ranges, n) = self.recv.sack_ranges();
            for &(start, end) in &ranges[..n] {
                blocks.push(wrap(self.irs, start), wrap(self.irs, end));
            }
        }
        blocks
    }

    /// The window field to send (RFC 9293 §3.8.6.2.2 receiver silly window avoidance; never
    /// shrinking the right edge, §3.8.6; scaled by RFC 7323 §2.3, unscaled in a SYN).
    fn window_field(&mut self, cfg: &TcpConfig, syn: bool) -> u16 {
        if syn {
            return cfg.recv_buffer.min(65535) as u16;
        }
        let free = cfg.recv_buffer.saturating_sub(self.recv.ready_bytes()) as i64;
        let current = (self.rcv_adv - self.rcv_nxt).max(0);
        let mut wnd = current;
        if free - current >= self.window_threshold(cfg) {
            wnd = free;
        }
        let shift = self.rcv_wscale;
        let mut field = (wnd >> shift).min(65535);
        if self.rcv_nxt + (field << shift) < self.rcv_adv && field < 65535 {
            field += 1;
        }
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + (field << shift));
        field as u16
    }

    /// How far the window must be able to open before we advertise it: min(buffer / 2, MSS)
    /// (RFC 9293 §3.8.6.2.2).
    fn window_threshold(&self, cfg: &TcpConfig) -> i64 {
        let opts = if self.ts.is_some() { TIMESTAMP_OPTION_LEN } else { 0 };
        let rcv_mss = usize::from(cfg.advertised_mss()).saturating_sub(opts);
        (cfg.recv_buffer / 2).min(rcv_mss).max(1) as i64
    }

    // ----- the application's side -----

    /// Queues data to send (RFC 9293 §3.10.2). The caller checked the state.
    pub(crate) fn send(&mut self, cfg: &TcpConfig, data: IoBufChain) -> Result<(), ()> {
        if cfg.send_queue_limit.is_some_and(|limit| self.send_buf.len() >= limit) {
            self.writable_blocked = true;
            return Err(());
        }
        self.send_buf.push(data);
        Ok(())
    }

    /// Whether `send` is valid in this state.
    pub(crate) fn can_send(&self) -> bool {
        !self.fin_queued
            && matches!(
                self.state,
                TcpState::SynSent
                    | TcpState::SynReceived
                    | TcpState::Established
                    | TcpState::CloseWait
            )
    }

    /// Takes the next in-order buffer; schedules a window update if reading opened the window
    /// enough to matter (RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3).
    pub(crate) fn recv(&mut self, cfg: &TcpConfig) -> Option<SharedIoBuf> {
        self.readable_pending = false;
        let buf = self.recv.pop()?;
        if self.state.is_synchronized() && !self.fin_received {
            let free = cfg.recv_buffer.saturating_sub(self.recv.ready_bytes()) as i64;
            let current = (self.rcv_adv - self.rcv_nxt).max(0);
            let threshold = self.window_threshold(cfg);
            if free - current >= threshold && current < (cfg.recv_buffer as i64 / 2).max(threshold)
            {
                self.ack_now = true;
            }
        }
        Some(buf)
    }

    /// Bytes received in order and not yet read.
    pub(crate) fn recv_queue_len(&self) -> usize {
        self.recv.ready_bytes()
    }

    /// Bytes queued and not yet acknowledged.
    pub(crate) fn send_queue_len(&self) -> usize {
        self.send_buf.len()
    }

    /// The application will send no more (RFC 9293 §3.10.4 CLOSE): queue the FIN after the data.
    pub(crate) fn shutdown_write(&mut self) {
        if self.fin_queued {
            return;
        }
        self.fin_queued = true;
        self.state = match self.state {
            TcpState::Established => TcpState::FinWait1,
            TcpState::CloseWait => TcpState::LastAck,
            other => other,
        };
    }

    /// The application gave up its handle. A connection already in FIN-WAIT-2 then waits for
    /// the peer's FIN at most one TIME-WAIT period, so a vanished peer cannot hold it forever.
    pub(crate) fn release(&mut self, now: u64, cfg: &TcpConfig) {
        self.owner = Owner::Released;
        if self.state == TcpState::FinWait2 && self.linger_at.is_none() {
            self.linger_at = Some(now.saturating_add(cfg.time_wait_ns));
        }
    }

    /// Whether RFC 9293 §3.10.4 ABORT sends a RST in this state.
    pub(crate) fn abort_sends_rst(&self) -> bool {
        matches!(
            self.state,
            TcpState::SynReceived
                | TcpState::Established
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::CloseWait
        )
    }

    /// ABORT (RFC 9293 §3.10.4): `<SEQ=SND.NXT><CTL=RST>` where the state calls for it, then
    /// CLOSED.
    pub(crate) fn abort(&mut self, ctx: &mut Ctx<'_>) {
        if self.abort_sends_rst() {
            self.queue_rst(ctx, wrap(self.iss, self.snd_max), None);
        }
        self.close_with(ctx, CloseReason::Aborted);
    }

    /// Whether a SYN for this tuple may reopen it from TIME-WAIT (RFC 9293 §3.10.7.4 and RFC
    /// 6191: the new SYN's sequence number is beyond what the old incarnation used).
    pub(crate) fn syn_may_reopen(&self, seg: &TcpRepr) -> bool {
        self.state == TcpState::TimeWait
            && unwrap(seg.seq_number, wrap(self.irs, self.rcv_nxt), self.rcv_nxt) > self.rcv_nxt
    }

    /// Whether there is anything to read or a FIN to report (for events after `accept`).
    pub(crate) fn has_data(&self) -> bool {
        self.recv.ready_bytes() > 0
    }

    /// The TCB snapshot for diagnostics.
    pub(crate) fn info(&self) -> ConnInfo {
        ConnInfo {
            state: self.state,
            iss: self.iss,
            snd_una: wrap(self.iss, self.snd_una),
            snd_nxt: wrap(self.iss, self.snd_nxt),
            snd_max: wrap(self.iss, self.snd_max),
            snd_wnd: self.snd_wnd,
            rcv_nxt: wrap(self.irs, self.rcv_nxt),
            rcv_wnd: (self.rcv_adv - self.rcv_nxt).max(0) as u64,
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            mss: self.mss,
            timestamps: self.ts.is_some(),
            peer_sack_permitted: self.peer_sack_permitted,
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            srtt_ns: self.rtt.srtt(),
            rttvar_ns: self.rtt.rttvar(),
            rto_ns: self.rtt.rto(),
            in_fast_recovery: self.cc.in_recovery(),
            send_queue: self.send_buf.len(),
            recv_queue: self.recv.ready_bytes(),
            ooo_segments: self.recv.ooo_segments(),
            nodelay: self.nodelay,
        }
    }

    /// Checks the relations between the sequence variables that must always hold.
    pub(crate) fn check_invariants(&self) -> Result<(), &'static str> {
        if !(0 <= self.snd_una && self.snd_una <= self.snd_nxt && self.snd_nxt <= self.snd_max) {
            return Err("SND.UNA <= SND.NXT <= SND.MAX violated");
        }
        let fin_end = self.data_end() + i64::from(self.fin_queued);
        if self.state != TcpState::Closed && self.snd_max > fin_end.max(1) {
            return Err("sent beyond the queued data and FIN");
        }
        if self.state.is_synchronized() && self.state != TcpState::Closed {
            if self.rcv_nxt < 1 {
                return Err("RCV.NXT before the peer's SYN");
            }
            if self.rcv_adv < self.rcv_nxt - 1 {
                return Err("advertised edge far behind RCV.NXT");
            }
            if self.snd_una < 1 {
                return Err("synchronized with the SYN unacknowledged");
            }
        }
        if self.recv.ready_bytes() > 0 && self.state == TcpState::SynSent {
            return Err("data before the handshake");
        }
        Ok(())
    }
}
