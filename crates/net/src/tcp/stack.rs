//! [`TcpStack`]: one core's TCP, the demultiplexer in front of its connections and listeners,
//! the entry points the interface layer calls, and the application's API.

use alloc::collections::{BTreeMap, VecDeque};

use cairn_rt::iobuf::{IoBufChain, SharedIoBuf};

use super::conn::{Conn, Ctx, Owner};
use super::control::{reset_reply, ChallengeLimiter, ControlQueue};
use super::counters::TcpCounters;
use super::hash::flow_hash;
use super::output::serialize;
use super::types::{CloseReason, ConnId, ConnInfo, ListenerId, TcpError, TcpEvent, TcpState};
use super::TcpConfig;
use crate::wire::{Checksum, ChecksumCapabilities, Ipv4Address, TcpFlags, TcpPacket, TcpRepr};

/// `(local address, local port, remote address, remote port)`.
type FourTuple = (Ipv4Address, u16, Ipv4Address, u16);

/// A listening port (RFC 9293 §3.10.1 passive OPEN) and its queues.
struct Listener {
    addr: Ipv4Address,
    port: u16,
    /// The most connections waiting in SYN-RECEIVED and in the accept queue together.
    backlog: usize,
    /// Connections in SYN-RECEIVED.
    syn_queue: usize,
    /// Connections established and not yet accepted.
    accept_queue: VecDeque<ConnId>,
}

/// One core's TCP (RFC 9293), sans I/O: segments come in through [`TcpStack::input`], go out
/// through [`TcpStack::dispatch`], and time is whatever the caller says it is.
///
/// The interface layer drives it:
/// - [`TcpStack::input`] for each received segment whose checksum it verified;
/// - [`TcpStack::on_timer`] when [`TcpStack::next_deadline`] passes;
/// - [`TcpStack::dispatch`] after either, and after application calls, to collect the segments
///   to send.
///
/// The application uses handles ([`ConnId`], [`ListenerId`]) and learns of progress from
/// [`TcpStack::poll_event`]. Received data is handed over as the buffers it arrived in
/// ([`TcpStack::recv`]); the application paces the peer by reading, since the advertised window
/// is what the receive buffer has left (EbbRT, OSDI 2016 §3.4). Sent data is kept by reference
/// and cut into MSS-sized segments without copying; data beyond the peer's window waits in the
/// queue until it opens.
pub struct TcpStack {
    cfg: TcpConfig,
    conns: BTreeMap<ConnId, Conn>,
    by_tuple: BTreeMap<FourTuple, ConnId>,
    listeners: BTreeMap<ListenerId, Listener>,
    listen_ports: BTreeMap<(Ipv4Address, u16), ListenerId>,
    next_id: u64,
    next_port: u16,
    events: VecDeque<TcpEvent>,
    control: ControlQueue,
    challenge: ChallengeLimiter,
    dirty: VecDeque<ConnId>,
    counters: TcpCounters,
    now: u64,
}

/// Builds the context for one call into a connection from the stack's disjoint fields.
macro_rules! ctx {
    ($self:ident, $now:expr) => {
        Ctx {
            cfg: &$self.cfg,
            now: $now,
            counters: &mut $self.counters,
            events: &mut $self.events,
            control: &mut $self.control,
            challenge: &mut $self.challenge,
        }
    };
}

/// The application's connection `$id`, borrowing only the connection table.
macro_rules! app_conn {
    ($self:ident, $id:expr) => {
        match $self.conns.get_mut(&$id) {
            Some(c) if c.owner == Owner::App => c,
            _ => return Err(TcpError::UnknownHandle),
        }
    };
}

impl TcpStack {
    /// A stack with no connections.
    pub fn new(config: TcpConfig) -> Self {
        let control = ControlQueue::new(config.control_queue_limit);
        let next_port = config.ephemeral_port_min;
        TcpStack {
            cfg: config,
            conns: BTreeMap::new(),
            by_tuple: BTreeMap::new(),
            listeners: BTreeMap::new(),
            listen_ports: BTreeMap::new(),
            next_id: 1,
            next_port,
            events: VecDeque::new(),
            control,
            challenge: ChallengeLimiter::default(),
            dirty: VecDeque::new(),
            counters: TcpCounters::default(),
            now: 0,
        }
    }

    /// The settings it was created with.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// The counters so far.
    pub fn counters(&self) -> TcpCounters {
        self.counters
    }

    /// The next event for the layer above, oldest first.
    pub fn poll_event(&mut self) -> Option<TcpEvent> {
        self.events.pop_front()
    }

    /// Connections alive in any state (TIME-WAIT included, released ones too).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push_back(id);
            }
        }
    }

    // ----- the interface layer's entry points -----

    /// Takes one received segment (TCP header and payload; the interface verified the checksum)
    /// that travelled from `src` to `dst`. Never panics, whatever the bytes: a malformed
    /// segment is dropped and counted.
    pub fn input(&mut self, now_ns: u64, src: Ipv4Address, dst: Ipv4Address, segment: SharedIoBuf) {
        self.now = self.now.max(now_ns);
        self.counters.segments_in += 1;
        let caps = ChecksumCapabilities { tcp: Checksum::OffloadRx, ..Default::default() };
        let parsed = TcpPacket::new_checked(&segment[..]).and_then(|packet| {
            Ok((TcpRepr::parse(&packet, src, dst, &caps)?, packet.header_len()))
        });
        let Ok((repr, header_len)) = parsed else {
            self.counters.malformed += 1;
            return;
        };
        let mut payload = segment;
        payload.advance(usize::from(header_len));
        if repr.src_port == 0 || repr.dst_port == 0 || !src.is_unicast() || !dst.is_unicast() {
            self.counters.bad_address += 1;
            return;
        }
        let key = (dst, repr.dst_port, src, repr.src_port);
        if let Some(&id) = self.by_tuple.get(&key) {
            let reopen = repr.flags.contains(TcpFlags::SYN)
                && !repr.flags.contains(TcpFlags::ACK)
                && !repr.flags.contains(TcpFlags::RST)
                && self.find_listener(dst, repr.dst_port).is_some()
                && self.conns.get(&id).is_some_and(|c| c.syn_may_reopen(&repr));
            if !reopen {
                self.conn_input(id, now_ns, &repr, payload);
                return;
            }
            // A new incarnation from TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191).
            if let Some(conn) = self.conns.get_mut(&id) {
                let mut ctx = ctx!(self, now_ns);
                conn.close_with(&mut ctx, CloseReason::Normal);
            }
            self.finalize(id);
        }
        if let Some(lid) = self.find_listener(dst, repr.dst_port) {
            self.listen_input(lid, now_ns, (dst, src), &repr);
            return;
        }
        // CLOSED (RFC 9293 §3.10.7.1).
        self.counters.no_connection += 1;
        self.reply_reset((dst, repr.dst_port), (src, repr.src_port), &repr);
    }

    fn reply_reset(
        &mut self,
        local: (Ipv4Address, u16),
        remote: (Ipv4Address, u16),
        seg: &TcpRepr,
    ) {
        if let Some((seq, ack)) = reset_reply(seg) {
            if self.control.push_rst(local, remote, seq, ack) {
                self.counters.rst_sent += 1;
            } else {
                self.counters.control_queue_drops += 1;
            }
        }
    }

    fn find_listener(&self, addr: Ipv4Address, port: u16) -> Option<ListenerId> {
        self.listen_ports
            .get(&(addr, port))
            .or_else(|| self.listen_ports.get(&(Ipv4Address::UNSPECIFIED, port)))
            .copied()
    }

    fn conn_input(&mut self, id: ConnId, now: u64, repr: &TcpRepr, payload: SharedIoBuf) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let before = conn.state;
        let mut ctx = ctx!(self, now);
        conn.input(&mut ctx, repr, payload);
        let (after, passive, owner) = (conn.state, conn.passive, conn.owner);
        if before == TcpState::SynReceived && passive && after != TcpState::SynReceived {
            if let (Owner::Listener(lid), true) = (owner, after != TcpState::Closed) {
                if let Some(l) = self.listeners.get_mut(&lid) {
                    l.syn_queue = l.syn_queue.saturating_sub(1);
                    l.accept_queue.push_back(id);
                    self.events.push_back(TcpEvent::Accepted { listener: lid, conn: id });
                }
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.in_syn_queue = false;
                }
            }
        }
        if after == TcpState::Closed {
            self.finalize(id);
        } else {
            self.mark_dirty(id);
        }
    }

    /// LISTEN (RFC 9293 §3.10.7.2), with the backlog: SYNs beyond it are dropped and counted.
    fn listen_input(
        &mut self,
        lid: ListenerId,
        now: u64,
        (local, remote): (Ipv4Address, Ipv4Address),
        seg: &TcpRepr,
    ) {
        let flags = seg.flags;
        if flags.contains(TcpFlags::RST) {
            self.counters.listen_drops += 1;
            return;
        }
        if flags.contains(TcpFlags::ACK) {
            self.counters.listen_drops += 1;
            self.reply_reset((local, seg.dst_port), (remote, seg.src_port), seg);
            return;
        }
        if !flags.contains(TcpFlags::SYN) {
            self.counters.listen_drops += 1;
            return;
        }
        let Some(listener) = self.listeners.get(&lid) else { return };
        if listener.syn_queue + listener.accept_queue.len() >= listener.backlog {
            self.counters.backlog_drops += 1;
            return;
        }
        let id = ConnId(self.fresh_id());
        let conn = Conn::new_passive(
            &self.cfg,
            id,
            lid,
            (local, seg.dst_port),
            (remote, seg.src_port),
            seg,
            now,
        );
        self.counters.passive_opens += 1;
        self.by_tuple.insert((local, seg.dst_port, remote, seg.src_port), id);
        self.conns.insert(id, conn);
        if let Some(l) = self.listeners.get_mut(&lid) {
            l.syn_queue += 1;
        }
        self.mark_dirty(id);
    }

    /// A connection reached CLOSED: it leaves the demultiplexer; if the application no longer
    /// holds it, it goes altogether.
    fn finalize(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(&id) else { return };
        if conn.state != TcpState::Closed {
            return;
        }
        let key = (conn.local.0, conn.local.1, conn.remote.0, conn.remote.1);
        if self.by_tuple.get(&key) == Some(&id) {
            self.by_tuple.remove(&key);
        }
        match conn.owner {
            Owner::App => {}
            Owner::Released => {
                self.conns.remove(&id);
            }
            Owner::Listener(lid) => {
                let in_syn_queue = conn.in_syn_queue;
                if let Some(l) = self.listeners.get_mut(&lid) {
                    if in_syn_queue {
                        l.syn_queue = l.syn_queue.saturating_sub(1);
                    } else {
                        l.accept_queue.retain(|&c| c != id);
                    }
                }
                self.conns.remove(&id);
            }
        }
    }

    /// Emits every segment due: queued RSTs first, then each connection with something to send
    /// (data the windows allow, retransmissions, probes, ACKs). `emit(src, dst, segment,
    /// segment_size)` gets the TCP header and payload; the checksum is filled unless
    /// [`TcpConfig::checksum_offload`], which leaves the pseudo-header sum. `segment_size` is
    /// 0, or for a segment longer than the MSS ([`TcpConfig::tso_max_payload`]) the MSS the
    /// device is to cut it into. The header buffer has [`TcpConfig::header_headroom`] bytes
    /// of headroom for the IPv4 and link headers.
    pub fn dispatch(
        &mut self,
        now_ns: u64,
        emit: &mut dyn FnMut(Ipv4Address, Ipv4Address, IoBufChain, u16),
    ) {
        self.now = self.now.max(now_ns);
        let (headroom, offload) = (self.cfg.header_headroom, self.cfg.checksum_offload);
        while let Some(seg) = self.control.pop() {
            self.counters.segments_out += 1;
            emit(
                seg.src,
                seg.dst,
                serialize(&seg.repr, IoBufChain::new(), seg.src, seg.dst, headroom, offload),
                0,
            );
        }
        let mut finished = alloc::vec::Vec::new();
        while let Some(id) = self.dirty.pop_front() {
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            conn.dirty = false;
            let mut ctx = ctx!(self, now_ns);
            let (src, dst) = (conn.local.0, conn.remote.0);
            while let Some(out) = conn.poll_output(&mut ctx) {
                let segment = serialize(&out.repr, out.payload, src, dst, headroom, offload);
                emit(src, dst, segment, out.segment_size);
            }
            conn.update_timers(&mut ctx);
            if conn.state == TcpState::Closed {
                finished.push(id);
            }
            // RSTs a connection queued while sending (none today) go out with the next call.
        }
        for id in finished {
            self.finalize(id);
        }
    }

    /// Runs every timer due at `now_ns` (retransmission, persist, delayed ACK, TIME-WAIT).
    /// Follow it with [`TcpStack::dispatch`].
    pub fn on_timer(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
        let due: alloc::vec::Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.next_deadline().is_some_and(|t| t <= now_ns))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            let mut ctx = ctx!(self, now_ns);
            conn.on_timer(&mut ctx);
            if conn.state == TcpState::Closed {
                self.finalize(id);
            } else {
                self.mark_dirty(id);
            }
        }
    }

    /// The earliest time [`TcpStack::on_timer`] has work, if any timer is running.
    pub fn next_deadline(&self) -> Option<u64> {
        self.conns.values().filter_map(Conn::next_deadline).min()
    }

    /// Whether [`TcpStack::dispatch`] may have segments to emit now: a connection was touched
    /// (by a segment, a timer or the application) or a RST is queued.
    pub fn has_pending_output(&self) -> bool {
        !self.dirty.is_empty() || !self.control.is_empty()
    }

    // ----- the application's API -----

    /// Opens `addr:port` for connections (RFC 9293 §3.10.1 passive OPEN); `addr` may be
    /// 0.0.0.0 for every local address. At most `backlog` connections wait in SYN-RECEIVED and
    /// the accept queue together; SYNs beyond that are dropped and counted
    /// ([`TcpCounters::backlog_drops`]), so the peer retries.
    pub fn listen(
        &mut self,
        addr: Ipv4Address,
        port: u16,
        backlog: usize,
    ) -> Result<ListenerId, TcpError> {
        if port == 0 {
            return Err(TcpError::InvalidState);
        }
        if self.listen_ports.contains_key(&(addr, port)) {
            return Err(TcpError::AddressInUse);
        }
        let id = ListenerId(self.fresh_id());
        self.listeners.insert(
            id,
            Listener {
                addr,
                port,
                backlog: backlog.max(1),
                syn_queue: 0,
                accept_queue: VecDeque::new(),
            },
        );
        self.listen_ports.insert((addr, port), id);
        Ok(id)
    }

    /// Stops listening; connections not yet accepted are reset.
    pub fn unlisten(&mut self, listener: ListenerId) -> Result<(), TcpError> {
        let l = self.listeners.remove(&listener).ok_or(TcpError::UnknownHandle)?;
        self.listen_ports.remove(&(l.addr, l.port));
        let pending: alloc::vec::Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.owner == Owner::Listener(listener))
            .map(|(&id, _)| id)
            .collect();
        for id in pending {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.owner = Owner::Released;
                let mut ctx = ctx!(self, self.now);
                conn.abort(&mut ctx);
            }
            self.finalize(id);
        }
        Ok(())
    }

    /// Takes the oldest established connection from the listener's accept queue. If data or the
    /// peer's FIN already arrived, `Readable` / `PeerClosed` events follow.
    pub fn accept(&mut self, listener: ListenerId) -> Option<ConnId> {
        let id = self.listeners.get_mut(&listener)?.accept_queue.pop_front()?;
        let conn = self.conns.get_mut(&id)?;
        conn.owner = Owner::App;
        if conn.has_data() {
            conn.readable_pending = true;
            self.events.push_back(TcpEvent::Readable(id));
        }
        if conn.fin_received {
            self.events.push_back(TcpEvent::PeerClosed(id));
        }
        Some(id)
    }

    /// Opens a connection (RFC 9293 §3.10.1 active OPEN) from `local_addr:local_port` (0 picks
    /// an ephemeral port whose flow hashes to this core, see [`flow_hash`]); the SYN goes out at
    /// the next [`TcpStack::dispatch`] and `Connected` (or `Closed`) follows.
    pub fn connect(
        &mut self,
        now_ns: u64,
        local_addr: Ipv4Address,
        local_port: u16,
        remote_addr: Ipv4Address,
        remote_port: u16,
    ) -> Result<ConnId, TcpError> {
        self.now = self.now.max(now_ns);
        if remote_port == 0 || !remote_addr.is_unicast() || !local_addr.is_unicast() {
            return Err(TcpError::InvalidState);
        }
        let port = if local_port == 0 {
            self.pick_port(local_addr, remote_addr, remote_port)?
        } else {
            if self.by_tuple.contains_key(&(local_addr, local_port, remote_addr, remote_port)) {
                return Err(TcpError::AddressInUse);
            }
            local_port
        };
        let id = ConnId(self.fresh_id());
        let conn =
            Conn::new_active(&self.cfg, id, (local_addr, port), (remote_addr, remote_port), now_ns);
        self.counters.active_opens += 1;
        self.by_tuple.insert((local_addr, port, remote_addr, remote_port), id);
        self.conns.insert(id, conn);
        self.mark_dirty(id);
        Ok(id)
    }

    /// An ephemeral port (RFC 6335 §6) free for this tuple, not listened on, and whose replies
    /// hash to this core.
    fn pick_port(
        &mut self,
        local: Ipv4Address,
        remote: Ipv4Address,
        remote_port: u16,
    ) -> Result<u16, TcpError> {
        let (min, max) = (
            self.cfg.ephemeral_port_min,
            self.cfg.ephemeral_port_max.max(self.cfg.ephemeral_port_min),
        );
        let span = u32::from(max - min) + 1;
        let cores = self.cfg.core_count.max(1);
        for _ in 0..span {
            let port = self.next_port.clamp(min, max);
            self.next_port = if port >= max { min } else { port + 1 };
            let steered = cores == 1
                || flow_hash(remote, remote_port, local, port) % cores == self.cfg.core_index;
            if steered
                && !self.by_tuple.contains_key(&(local, port, remote, remote_port))
                && self.find_listener(local, port).is_none()
            {
                return Ok(port);
            }
        }
        Err(TcpError::NoPortAvailable)
    }

    fn conn(&self, id: ConnId) -> Result<&Conn, TcpError> {
        match self.conns.get(&id) {
            Some(c) if c.owner == Owner::App => Ok(c),
            _ => Err(TcpError::UnknownHandle),
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Result<&mut Conn, TcpError> {
        match self.conns.get_mut(&id) {
            Some(c) if c.owner == Owner::App => Ok(c),
            _ => Err(TcpError::UnknownHandle),
        }
    }

    /// Queues data to send, by reference (a [`SharedIoBuf`] or an [`IoBufChain`]). Data beyond
    /// the peer's window waits until it opens. With [`TcpConfig::send_queue_limit`] set, fails
    /// with [`TcpError::WouldBlock`] while the queue is at the limit (a `Writable` event
    /// follows).
    pub fn send(&mut self, conn: ConnId, data: impl Into<IoBufChain>) -> Result<(), TcpError> {
        let c = app_conn!(self, conn);
        if let Some(reason) = c.close_reason {
            return Err(TcpError::Closed(reason));
        }
        if !c.can_send() {
            return Err(TcpError::InvalidState);
        }
        let cfg = &self.cfg;
        c.send(cfg, data.into()).map_err(|()| TcpError::WouldBlock)?;
        self.mark_dirty(conn);
        Ok(())
    }

    /// The next buffer of in-order data, as it arrived. Reading opens the receive window (a
    /// window update goes out when that matters).
    pub fn recv(&mut self, conn: ConnId) -> Option<SharedIoBuf> {
        let cfg = &self.cfg;
        let c = self.conns.get_mut(&conn).filter(|c| c.owner == Owner::App)?;
        let buf = c.recv(cfg);
        if buf.is_some() {
            self.mark_dirty(conn);
        }
        buf
    }

    /// Bytes received in order and not yet read.
    pub fn recv_queue_len(&self, conn: ConnId) -> usize {
        self.conn(conn).map_or(0, Conn::recv_queue_len)
    }

    /// Bytes queued to send and not yet acknowledged.
    pub fn send_queue_len(&self, conn: ConnId) -> usize {
        self.conn(conn).map_or(0, Conn::send_queue_len)
    }

    /// Half-close: a FIN follows the queued data; receiving goes on (RFC 9293 §3.10.4 CLOSE,
    /// §3.6).
    pub fn shutdown_write(&mut self, conn: ConnId) -> Result<(), TcpError> {
        let c = self.conn_mut(conn)?;
        if let Some(reason) = c.close_reason {
            return Err(TcpError::Closed(reason));
        }
        c.shutdown_write();
        self.mark_dirty(conn);
        Ok(())
    }

    /// Closes the connection and gives up the handle: a FIN follows the queued data and the
    /// stack finishes the close on its own. If received data was left unread, the connection
    /// is reset instead (RFC 2525 §2.17), as it is if data arrives later. Closing a connection
    /// still in SYN-SENT just deletes it (RFC 9293 §3.10.4).
    pub fn close(&mut self, conn: ConnId) -> Result<(), TcpError> {
        let now = self.now;
        let c = app_conn!(self, conn);
        c.release(now, &self.cfg);
        let mut ctx = ctx!(self, now);
        match c.state {
            TcpState::Closed => {}
            TcpState::SynSent => c.close_with(&mut ctx, CloseReason::Normal),
            _ if c.recv_queue_len() > 0 => c.abort(&mut ctx),
            _ => c.shutdown_write(),
        }
        if c.state == TcpState::Closed {
            self.finalize(conn);
        } else {
            self.mark_dirty(conn);
        }
        Ok(())
    }

    /// Resets the connection (RFC 9293 §3.10.4 ABORT) and gives up the handle.
    pub fn abort(&mut self, conn: ConnId) -> Result<(), TcpError> {
        let now = self.now;
        let c = app_conn!(self, conn);
        c.owner = Owner::Released;
        let mut ctx = ctx!(self, now);
        c.abort(&mut ctx);
        self.finalize(conn);
        Ok(())
    }

    /// The connection's state, or `None` for a handle the application gave up.
    pub fn state(&self, conn: ConnId) -> Option<TcpState> {
        self.conn(conn).ok().map(|c| c.state)
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self, conn: ConnId) -> Option<CloseReason> {
        self.conn(conn).ok().and_then(|c| c.close_reason)
    }

    /// Switches Nagle's algorithm off (`true`) or on (RFC 896, RFC 1122 §4.2.3.4).
    pub fn set_nodelay(&mut self, conn: ConnId, nodelay: bool) -> Result<(), TcpError> {
        self.conn_mut(conn)?.nodelay = nodelay;
        self.mark_dirty(conn);
        Ok(())
    }

    /// The local address and port.
    pub fn local_endpoint(&self, conn: ConnId) -> Option<(Ipv4Address, u16)> {
        self.conn(conn).ok().map(|c| c.local)
    }

    /// The peer's address and port.
    pub fn remote_endpoint(&self, conn: ConnId) -> Option<(Ipv4Address, u16)> {
        self.conn(conn).ok().map(|c| c.remote)
    }

    /// A snapshot of the connection's variables.
    pub fn conn_info(&self, conn: ConnId) -> Option<ConnInfo> {
        self.conn(conn).ok().map(Conn::info)
    }

    /// Checks every connection's sequence-variable invariants (SND.UNA ≤ SND.NXT ≤ SND.MAX,
    /// nothing sent beyond the queued data, ...) and the tables' consistency; for tests and
    /// fuzzing.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for conn in self.conns.values() {
            conn.check_invariants()?;
            let key = (conn.local.0, conn.local.1, conn.remote.0, conn.remote.1);
            let demuxed = self.by_tuple.get(&key) == Some(&conn.id);
            if (conn.state != TcpState::Closed) != demuxed {
                return Err("demultiplexer out of step with connection state");
            }
        }
        for l in self.listeners.values() {
            if l.syn_queue + l.accept_queue.len() > l.backlog {
                return Err("listener over its backlog");
            }
        }
        Ok(())
    }
}
