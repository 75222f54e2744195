//! cairn's own TCP/IP stack (`cairn-net`) running on a cairn-hosted core over a TAP or AF_XDP
//! device, with async sockets on top.
//!
//! A [`NetStack`] owns one [`Interface`] with cairn's TCP and one device, on the core that
//! created it. A driver task ([`driver`]) polls the device and the interface while traffic
//! flows and sleeps when it stops, on the device's descriptor ([`readable`]), the interface's
//! next timer deadline, or a kick from a socket call, whichever comes first. How long it keeps
//! polling after the last frame is the runtime's adaptive policy
//! ([`AdaptivePoller`](cairn_rt::event::polling::AdaptivePoller), after the EbbRT paper's Event
//! Manager section): at a high event rate it spins for a short budget before blocking, at a low
//! rate it blocks at once, so an idle stack never burns its core.
//!
//! Sockets follow EbbRT's network API (OSDI 2016 §3.4): a stream's [`NetTcpStream::recv`]
//! returns the buffers as they arrived (views of the received frames, no copy), and
//! [`NetTcpStream::send`] queues a chain by reference, waiting only while the connection's send
//! queue is over [`NetConfig::send_buffer`], so the application is paced by the peer's window.
//! Tasks are woken from the stack's events ([`TcpStack::poll_event`]).
//!
//! [`readable`]: crate::netdev::readable

mod device;
mod driver;
mod steer;
mod tcp;
mod udp;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Poll, Waker};

use cairn_net::device::{Device, DeviceCounters};
use cairn_net::dhcp::{DhcpClient, DhcpConfig, DhcpEvent};
use cairn_net::iface::{
    IcmpEvent, Interface, InterfaceConfig, InterfaceCounters, Ipv4Cidr, SendError,
};
use cairn_net::tcp::{ConnId, ListenerId, TcpConfig, TcpCounters, TcpError, TcpEvent, TcpStack};
use cairn_net::wire::Ipv4Address;
use cairn_rt::event::polling::PollingConfig;
use cairn_rt::event::{sleep_ns, spawn_local, EventManager};
use cairn_rt::iobuf::{IoBuf, IoBufChain};

pub use device::{DeviceSpec, OpenDevice};
pub use steer::{Shard, ShardGroup, SteeringCounters};
pub use tcp::{NetListener, NetTcpStream};
pub use udp::NetUdpSocket;

/// How the interface gets its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// A fixed address and subnet, with an optional default gateway.
    Static {
        /// Address and prefix.
        cidr: Ipv4Cidr,
        /// Default gateway.
        gateway: Option<Ipv4Address>,
    },
    /// A lease from a DHCP server (RFC 2131), through `cairn-net`'s client.
    Dhcp,
}

/// Settings of a [`NetStack`].
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// How the address is set.
    pub addressing: Addressing,
    /// TCP settings (MTU and checksum offload are taken from the device).
    pub tcp: TcpConfig,
    /// Bytes a stream may have queued and unacknowledged before [`NetTcpStream::send`] waits.
    pub send_buffer: usize,
    /// The driver's adaptive polling thresholds.
    pub polling: PollingConfig,
    /// Connections a listener holds before accept (SYN-RECEIVED and established together).
    pub listen_backlog: usize,
    /// This stack's place in a group of per-core stacks sharing a multi-queue device
    /// ([`ShardGroup`]); `None` for a stack that owns its device alone. A group needs
    /// [`Addressing::Static`]: every core has the same address.
    pub shard: Option<Shard>,
}

impl NetConfig {
    /// Defaults for `addressing`: a TCP stack with a random ISN secret, 4 MiB send buffers (as
    /// Linux's largest `tcp_wmem`, so one stream keeps a fast link busy), a
    /// backlog of 1024, and a 50 µs idle spin before the driver blocks.
    pub fn new(addressing: Addressing) -> NetConfig {
        let tcp = TcpConfig { isn_secret: random_secret(), ..TcpConfig::default() };
        let polling = PollingConfig { idle_spin_ns: 50_000, ..PollingConfig::default() };
        NetConfig {
            addressing,
            tcp,
            send_buffer: 4 << 20,
            polling,
            listen_backlog: 1024,
            shard: None,
        }
    }
}

/// 16 random bytes from the kernel (getrandom(2)), for the ISN function of RFC 6528.
fn random_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    // SAFETY: getrandom writes at most `secret.len()` bytes into the valid buffer.
    let n = unsafe { libc::getrandom(secret.as_mut_ptr().cast(), secret.len(), 0) };
    if n != secret.len() as isize {
        // Fall back to the clock: an ISN secret needs to be unpredictable, not perfect.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        secret = (t ^ u128::from(std::process::id()) << 64).to_le_bytes();
    }
    secret
}

/// The current core's monotonic clock.
fn now_ns() -> u64 {
    EventManager::current().runtime().platform().now_ns()
}

/// ICMP events kept for [`NetStack::ping`] callers; older ones are dropped.
const ICMP_EVENTS_KEPT: usize = 64;

/// The stack's state on its core, shared by the driver and the sockets.
pub(crate) struct Inner {
    pub(crate) iface: Interface<TcpStack>,
    device: Box<dyn Device + Send>,
    fd: RawFd,
    dhcp: Option<DhcpClient>,
    /// The hand-off of frames between the cores of a group; `None` for a lone stack.
    steering: Option<steer::Steering>,
    pub(crate) send_buffer: usize,
    listen_backlog: usize,
    polling: PollingConfig,
    /// Tasks waiting for data, a FIN, the end or the establishment of a connection.
    readers: HashMap<ConnId, Waker>,
    /// Tasks waiting for a connection's send queue to fall below a threshold.
    writers: Vec<(ConnId, usize, Waker)>,
    acceptors: HashMap<ListenerId, Waker>,
    udp_waiters: Vec<Waker>,
    icmp_waiters: Vec<Waker>,
    icmp_events: VecDeque<IcmpEvent>,
    config_waiters: Vec<Waker>,
    /// The driver, while it sleeps.
    driver: Option<Waker>,
    kicked: bool,
    stopped: bool,
}

impl Inner {
    /// Wakes the driver so that it dispatches what a socket call queued.
    pub(crate) fn kick(&mut self) {
        self.kicked = true;
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }

    /// One round of work at `now`: the device and interface, DHCP, then the stack's events
    /// turned into wake-ups. Returns whether anything happened.
    fn poll_once(&mut self, now: u64) -> bool {
        self.kicked = false;
        let mut work = match &mut self.steering {
            Some(steering) => {
                let work = self.iface.poll(now, &mut steering.view(&mut *self.device));
                // Frames for other cores go now; frames from them may still wait.
                steering.flush() | work | steering.has_inbox()
            }
            None => self.iface.poll(now, &mut *self.device),
        };
        if let Some(dhcp) = &mut self.dhcp {
            if let Some(event) = dhcp.poll(now, &mut self.iface) {
                work = true;
                if let DhcpEvent::Configured(_) = event {
                    self.config_waiters.drain(..).for_each(Waker::wake);
                }
                // The DHCP message it queued goes out now.
                self.iface.poll(now, &mut *self.device);
            }
        }
        while let Some(event) = self.iface.tcp().poll_event() {
            work = true;
            match event {
                TcpEvent::Accepted { listener, .. } => {
                    if let Some(waker) = self.acceptors.remove(&listener) {
                        waker.wake();
                    }
                }
                TcpEvent::Connected(conn)
                | TcpEvent::Readable(conn)
                | TcpEvent::PeerClosed(conn)
                | TcpEvent::Closed(conn, _)
                | TcpEvent::Writable(conn) => {
                    if let Some(waker) = self.readers.remove(&conn) {
                        waker.wake();
                    }
                }
            }
        }
        while let Some(event) = self.iface.recv_icmp() {
            work = true;
            if self.icmp_events.len() == ICMP_EVENTS_KEPT {
                self.icmp_events.pop_front();
            }
            self.icmp_events.push_back(event);
        }
        if work {
            self.icmp_waiters.drain(..).for_each(Waker::wake);
            self.udp_waiters.drain(..).for_each(Waker::wake);
            if !self.writers.is_empty() {
                let tcp = self.iface.tcp();
                self.writers.retain(|(conn, threshold, waker)| {
                    let blocked = tcp.close_reason(*conn).is_none()
                        && tcp.state(*conn).is_some()
                        && tcp.send_queue_len(*conn) >= *threshold;
                    if !blocked {
                        waker.wake_by_ref();
                    }
                    blocked
                });
            }
        }
        work
    }

    /// When the driver must run next without a frame arriving.
    fn next_deadline(&self) -> Option<u64> {
        let dhcp = self.dhcp.as_ref().and_then(DhcpClient::next_deadline);
        [self.iface.next_deadline(), dhcp].into_iter().flatten().min()
    }
}

/// A handle on a running stack; clones share it. Use it only on the core that started it.
#[derive(Clone)]
pub struct NetStack {
    inner: Rc<RefCell<Inner>>,
}

impl NetStack {
    /// Builds the stack over `device` on the calling cairn core and starts its driver task.
    /// With [`Addressing::Dhcp`] the address comes later; [`NetStack::configured`] waits for it.
    ///
    /// With [`NetConfig::shard`] it runs as that core's stack of the group: its TCP picks
    /// ephemeral ports whose flows hash to this core, only core 0 answers ARP and announces the
    /// address, and frames are exchanged with the other cores by the
    /// [`steer`](cairn_net::iface::steer) rules.
    ///
    /// # Panics
    ///
    /// If a shard's configuration asks for DHCP, or the shard is not the calling core's.
    pub fn start(device: OpenDevice, config: NetConfig) -> NetStack {
        let mut tcp = config.tcp;
        let (ipv4, gateway, dhcp) = match config.addressing {
            Addressing::Static { cidr, gateway } => (Some(cidr), gateway, None),
            Addressing::Dhcp if config.shard.is_some_and(|s| s.cores() > 1) => {
                panic!("a group of per-core stacks needs a static address")
            }
            Addressing::Dhcp => {
                let seed = u64::from_le_bytes(random_secret()[..8].try_into().expect("8 bytes"));
                (None, None, Some(DhcpClient::new(DhcpConfig { seed, ..DhcpConfig::default() })))
            }
        };
        let mut iface_config = InterfaceConfig { ipv4, gateway, ..InterfaceConfig::default() };
        if let Some(shard) = config.shard {
            assert_eq!(
                shard.index(),
                cairn_rt::event::current_core(),
                "a shard's stack runs on its own core"
            );
            tcp.core_index = shard.index() as u32;
            tcp.core_count = shard.cores() as u32;
            iface_config.answer_arp = shard.index() == 0;
            iface_config.gratuitous_arp = shard.index() == 0;
        }
        let iface = Interface::with_tcp(iface_config, &*device.device, tcp);
        let inner = Rc::new(RefCell::new(Inner {
            iface,
            device: device.device,
            fd: device.fd,
            dhcp,
            steering: config.shard.map(steer::Steering::new),
            send_buffer: config.send_buffer.max(1),
            listen_backlog: config.listen_backlog,
            polling: config.polling,
            readers: HashMap::new(),
            writers: Vec::new(),
            acceptors: HashMap::new(),
            udp_waiters: Vec::new(),
            icmp_waiters: Vec::new(),
            icmp_events: VecDeque::new(),
            config_waiters: Vec::new(),
            driver: None,
            kicked: false,
            stopped: false,
        }));
        if let Some(shard) = config.shard {
            steer::register(shard, &inner);
        }
        spawn_local(driver::drive(inner.clone()));
        NetStack { inner }
    }

    /// The interface's address and subnet, once it has one.
    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.inner.borrow().iface.config().ipv4
    }

    /// The default gateway, if any.
    pub fn gateway(&self) -> Option<Ipv4Address> {
        self.inner.borrow().iface.config().gateway
    }

    /// Waits until the interface has an address (at once with a static one; after the DHCP
    /// server's ACK otherwise).
    pub async fn configured(&self) -> Ipv4Cidr {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            match inner.iface.config().ipv4 {
                Some(cidr) => Poll::Ready(cidr),
                None => {
                    inner.config_waiters.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Listens for TCP connections on `port` of every local address.
    pub fn tcp_listen(&self, port: u16) -> Result<NetListener, TcpError> {
        let mut inner = self.inner.borrow_mut();
        let backlog = inner.listen_backlog;
        let id = inner.iface.tcp().listen(Ipv4Address::UNSPECIFIED, port, backlog)?;
        Ok(NetListener::new(self.inner.clone(), id, port))
    }

    /// Opens a TCP connection to `addr:port` from an ephemeral port; fails with
    /// `TcpError::Closed(Refused)` on a RST, `Closed(TimedOut)` when the SYNs go unanswered.
    pub async fn connect(&self, addr: Ipv4Address, port: u16) -> Result<NetTcpStream, TcpError> {
        let conn = {
            let mut inner = self.inner.borrow_mut();
            let local = inner.iface.ipv4_address().ok_or(TcpError::InvalidState)?;
            let conn = inner.iface.tcp().connect(now_ns(), local, 0, addr, port)?;
            inner.kick();
            conn
        };
        let stream = NetTcpStream::new(self.inner.clone(), conn);
        stream.established().await?;
        Ok(stream)
    }

    /// Binds a UDP socket to `port` (0: a free one).
    pub fn udp_bind(&self, port: u16) -> Result<NetUdpSocket, cairn_net::iface::UdpError> {
        let handle = self.inner.borrow_mut().iface.udp_bind(port)?;
        Ok(NetUdpSocket::new(self.inner.clone(), handle))
    }

    /// Sends one ICMP echo request (RFC 792) with `payload_len` bytes of data to `dst` and waits
    /// up to `timeout_ns` for the matching reply. Returns the round trip in nanoseconds, or
    /// `None` on timeout. Replies to other requests are left for their own callers.
    pub async fn ping(
        &self,
        dst: Ipv4Address,
        ident: u16,
        seq_no: u16,
        payload_len: usize,
        timeout_ns: u64,
    ) -> Result<Option<u64>, SendError> {
        let sent = now_ns();
        {
            let mut payload = IoBuf::with_headroom(64, payload_len);
            let bytes: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
            payload.extend_from_slice(&bytes);
            let mut inner = self.inner.borrow_mut();
            inner.iface.ping(sent, dst, ident, seq_no, IoBufChain::from(payload.freeze()))?;
            inner.kick();
        }
        let mut timeout = std::pin::pin!(sleep_ns(timeout_ns));
        let reply = poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            let found = inner.icmp_events.iter().position(|e| {
                matches!(e, IcmpEvent::EchoReply { from, ident: i, seq_no: s, .. }
                    if *from == dst && *i == ident && *s == seq_no)
            });
            if let Some(at) = found {
                let event = inner.icmp_events.remove(at).expect("found");
                let IcmpEvent::EchoReply { received_ns, .. } = event else { unreachable!() };
                return Poll::Ready(Some(received_ns.saturating_sub(sent)));
            }
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            inner.icmp_waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        Ok(reply)
    }

    /// The interface's counters.
    pub fn interface_counters(&self) -> InterfaceCounters {
        *self.inner.borrow().iface.counters()
    }

    /// The TCP stack's counters.
    pub fn tcp_counters(&self) -> TcpCounters {
        self.inner.borrow_mut().iface.tcp().counters()
    }

    /// The device's counters.
    pub fn device_counters(&self) -> DeviceCounters {
        self.inner.borrow().device.counters()
    }

    /// What this core's steering counted, for a stack in a [`ShardGroup`].
    pub fn steering_counters(&self) -> Option<SteeringCounters> {
        self.inner.borrow().steering.as_ref().map(|s| s.counters)
    }

    /// Stops the driver task (sockets stop making progress); the device closes when the last
    /// handle and socket are dropped.
    pub fn stop(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.stopped = true;
        inner.kick();
    }
}
