//! An AF_XDP device: Ethernet frames shared with the kernel through rings and a frame area
//! (UMEM), so a received frame reaches the stack as an IOBuf over the memory the kernel put it
//! in, with no copy (Documentation/networking/af_xdp.rst; the user-level sandboxing paper's
//! "packets placed straight into the service's memory").
//!
//! # Which system calls, and why no libxdp or libbpf
//!
//! The whole interface is small enough to use raw, so this module does, with no C library:
//!
//! | step | call |
//! |---|---|
//! | the socket | `socket(AF_XDP, SOCK_RAW)` |
//! | register the frame area | `setsockopt(SOL_XDP, XDP_UMEM_REG)` |
//! | size the rings | `setsockopt(XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING)` |
//! | find and map them | `getsockopt(XDP_MMAP_OFFSETS)`, `mmap` at the four page offsets (`ring.rs`) |
//! | bind to interface and queue | `bind(sockaddr_xdp)`: `XDP_COPY`, `XDP_ZEROCOPY` or neither (the kernel tries zero copy and falls back), `XDP_USE_NEED_WAKEUP` |
//! | learn the mode | `getsockopt(XDP_OPTIONS)` |
//! | steer frames to it | `bpf(BPF_MAP_CREATE)` an XSKMAP, `bpf(BPF_PROG_LOAD)` a hand-assembled five-instruction program, `bpf(BPF_MAP_UPDATE_ELEM)` (`bpf.rs`) |
//! | attach the program | `bpf(BPF_LINK_CREATE, BPF_XDP)`, or `RTM_SETLINK IFLA_XDP` where links are missing (`netlink.rs`) |
//! | detach a stale one | `RTM_SETLINK IFLA_XDP_FD = -1` in both modes, at start |
//! | kick | `sendto(MSG_DONTWAIT)` for TX, `recvfrom(MSG_DONTWAIT)` for the fill ring, when the ring's need-wakeup flag says so |
//! | drop counters | `getsockopt(XDP_STATISTICS)` |
//!
//! libxdp and libbpf would add a C dependency, a compiler (clang) for the program, and, in the
//! libxdp 1.3.1 that Debian ships, the trap of ring structures that must be zeroed by hand
//! before use. The rings here are built whole from the kernel's offsets, and the program is six
//! eight-byte instructions.
//!
//! # Frames
//!
//! The UMEM is `frames` frames of `frame_size` bytes ([`XdpConfig`]). A frame is always in
//! exactly one place: the device's free list, the kernel (fill ring to RX ring), lent to the
//! stack as an [`IoBuf`] (a received frame, until its last buffer drops and its release hook
//! returns it), or being sent (TX ring to completion ring). Received frames are lent in place;
//! [`Device::transmit`] copies a chain into a free frame, unless the chain is a single buffer
//! that already lies in this UMEM (a received frame the stack turned around, say), which is
//! sent as it is and kept alive until its completion.
//!
//! # Traps on veth, handled here
//!
//! - veth has copy mode only ([`XdpBind::Auto`] falls back to it).
//! - An XDP program attached over netlink stays after its process crashes: the device detaches
//!   both modes' programs when it opens, and attaches with a BPF link, which dies with it.
//! - There is no bpffs inside `ip netns exec`: nothing is pinned, the map and program live
//!   as long as the device's descriptors.
//! - The *peer* veth must have TX checksum offload off (`ethtool -K PEER tx off`), or Linux
//!   sends TCP and UDP frames with partial checksums that arrive here unfinished; that is the
//!   peer's setting, which the device cannot change.

mod bpf;
mod netlink;
mod ring;
mod sys;

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use cairn_net::device::{Device, DeviceCapabilities, DeviceCounters, DeviceError};
use cairn_rt::iobuf::{IoBuf, IoBufChain, SharedIoBuf};

use super::frames::FrameArena;
use super::iface;
use bpf::RedirectProgram;
use netlink::RouteSocket;
use ring::{Ring, Role};
use sys::{SockaddrXdp, XdpDesc, XdpMmapOffsets, XdpStatisticsRaw, XdpUmemReg};

/// `XDP_FLAGS_SKB_MODE`: the generic, driver-independent hook.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: the driver's native hook.
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_PACKET_HEADROOM`: where the kernel puts a received frame's first byte in its chunk.
const XDP_PACKET_HEADROOM: usize = 256;
/// Ethernet header plus one 802.1Q tag: what a frame may carry beyond the MTU.
const LINK_OVERHEAD: usize = 14 + 4;
/// Descriptors one copy-mode `sendto` sends at most (the kernel's `TX_BATCH_SIZE`).
const KERNEL_TX_BATCH: u32 = 32;
/// Binds retried while the kernel still releases the queue from a socket closed just before.
const BIND_RETRIES: u32 = 100;

/// Where the XDP program hooks into the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    /// The generic hook after the driver built a socket buffer (works on every interface).
    Skb,
    /// The driver's native hook (veth has one; needed for zero copy).
    Driver,
    /// The native hook where the driver allows it, the generic one otherwise.
    Auto,
}

/// How the socket's frames reach the UMEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpBind {
    /// The kernel copies frames between its buffers and the UMEM (`XDP_COPY`; veth).
    Copy,
    /// The NIC's DMA goes straight to and from the UMEM (`XDP_ZEROCOPY`).
    ZeroCopy,
    /// Zero copy where the driver supports it, copy otherwise.
    Auto,
}

/// How to open an [`XdpDevice`].
#[derive(Clone, Copy, Debug)]
pub struct XdpConfig {
    /// Frames in the UMEM.
    pub frames: u32,
    /// Bytes per frame: a power of two from 2048 to the page size.
    pub frame_size: u32,
    /// Entries in each of the four rings (a power of two).
    pub ring_size: u32,
    /// Where to hook the program.
    pub attach: XdpAttach,
    /// Copy or zero-copy mode.
    pub bind: XdpBind,
    /// Bind with `XDP_USE_NEED_WAKEUP`, so the kernel asks for kicks only when it needs them.
    pub need_wakeup: bool,
    /// Attach with a BPF link, which the kernel detaches when the process dies; `false`
    /// attaches over netlink, detached by `Drop` (or, after a crash, by the next open).
    pub use_link: bool,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig {
            frames: 4096,
            frame_size: 4096,
            ring_size: 2048,
            attach: XdpAttach::Auto,
            bind: XdpBind::Auto,
            need_wakeup: true,
            use_link: true,
        }
    }
}

/// The kernel's drop counters for the socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpStatistics {
    /// Frames dropped for other reasons (no fill-ring frame, too long for a frame).
    pub rx_dropped: u64,
    /// Invalid descriptors the kernel found on the RX ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors the kernel found on the TX ring.
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty when kicked.
    pub tx_ring_empty_descs: u64,
}

/// What an [`XdpDevice`] counts itself, beyond the [`DeviceCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCounters {
    /// Refills that found the fill ring below its target and no free frame to add (the stack
    /// holds many received frames).
    pub fill_starved: u64,
    /// RX descriptors naming memory outside the UMEM, dropped.
    pub rx_invalid: u64,
    /// Frames sent straight from the UMEM frame they were already in.
    pub tx_zero_copy: u64,
    /// Frames copied into a free UMEM frame to be sent.
    pub tx_copied: u64,
    /// `transmit` calls answered [`DeviceError::Full`].
    pub tx_full: u64,
    /// `sendto` kicks of the TX ring.
    pub tx_kicks: u64,
    /// `recvfrom` kicks of the fill ring.
    pub rx_kicks: u64,
}

/// How the program is attached, and so how to detach it.
enum Attachment {
    /// A BPF link: closing it detaches the program.
    Link { _link: OwnedFd },
    /// A netlink attachment in mode `flags`, detached explicitly on drop.
    Netlink { route: RouteSocket, ifindex: u32, flags: u32 },
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Attachment::Netlink { route, ifindex, flags } = self {
            // Best effort: the interface may already be gone with its namespace.
            let _ = route.set_xdp(*ifindex, -1, *flags);
        }
    }
}

/// The XDP program on an interface and its attachment, shared by the sockets of the queues it
/// redirects to; the last of them to close detaches it.
struct ProgramLink {
    // Detached first, then the program and its map are released.
    attachment: Attachment,
    _program: RedirectProgram,
    mode: XdpAttach,
}

/// An AF_XDP socket on one queue of one interface, with its own UMEM, and the XDP program
/// that redirects the queue's frames to it (see the module documentation).
pub struct XdpDevice {
    // Fields drop in this order: the program is detached first (if this is its last
    // socket), the socket closed last but for the UMEM, which lives on while the stack holds
    // frames.
    link: Arc<ProgramLink>,
    rx: Ring<XdpDesc>,
    tx: Ring<XdpDesc>,
    fill: Ring<u64>,
    completion: Ring<u64>,
    /// Sent frames that were already in the UMEM, kept alive until their completion.
    tx_hold: Vec<Option<SharedIoBuf>>,
    socket: OwnedFd,
    arena: Arc<FrameArena>,
    /// Frames nobody uses.
    free: Vec<u32>,
    /// Frames to keep with the kernel for receiving.
    fill_target: u32,
    /// Frames with the kernel for receiving (fill ring, or received but not yet read).
    in_fill: u32,
    /// Copied frames on the TX or completion ring.
    tx_in_flight: u32,
    max_frame: usize,
    ifname: String,
    queue: u32,
    zero_copy: bool,
    need_wakeup: bool,
    capabilities: DeviceCapabilities,
    counters: DeviceCounters,
    xdp_counters: XdpCounters,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl XdpDevice {
    /// Opens an AF_XDP socket on queue `queue` of interface `ifname` (in the calling thread's
    /// network namespace) with the default [`XdpConfig`].
    pub fn open(ifname: &str, queue: u32) -> io::Result<XdpDevice> {
        XdpDevice::open_with(ifname, queue, XdpConfig::default())
    }

    /// Opens an AF_XDP socket on queue `queue` of interface `ifname` with `config`: detaches
    /// any XDP program left on the interface, registers the UMEM, maps the rings, binds, and
    /// attaches a program that redirects the queue's frames to the socket.
    pub fn open_with(ifname: &str, queue: u32, config: XdpConfig) -> io::Result<XdpDevice> {
        let mut devices = XdpDevice::open_queues(ifname, queue, 1, config)?;
        Ok(devices.pop().expect("one queue opened"))
    }

    /// Opens AF_XDP sockets on the `count` queues `first .. first + count` of `ifname`, one
    /// per core of a multi-core stack, each with its own UMEM and rings, and one XDP program
    /// that redirects each queue's frames to that queue's socket (the kernel lets a socket
    /// take only frames of the queue it is bound to). A veth has as many queues as it was
    /// created with (`ip link add ... numrxqueues N`); which one a frame arrives on is the
    /// sending side's choice.
    pub fn open_queues(
        ifname: &str,
        first: u32,
        count: u32,
        config: XdpConfig,
    ) -> io::Result<Vec<XdpDevice>> {
        // SAFETY: sysconf(3) with a constant name reads no memory of ours.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
        if !config.frame_size.is_power_of_two() || !(2048..=page).contains(&config.frame_size) {
            return Err(invalid(format!(
                "frame size {} not a power of two in 2048..={page}",
                config.frame_size
            )));
        }
        if !config.ring_size.is_power_of_two() || config.frames < 2 {
            return Err(invalid(format!(
                "ring size {} must be a power of two, frames {} at least 2",
                config.ring_size, config.frames
            )));
        }
        let count = count.max(1);
        let end = first.checked_add(count).ok_or_else(|| invalid("queue out of range".into()))?;
        let ifindex = iface::index(ifname)?;
        let if_mtu = iface::mtu(ifname)?;
        let mac = iface::mac(ifname)?;
        let mut route = RouteSocket::open()?;
        detach_stale(&mut route, ifindex, ifname)?;

        let mut bound = Vec::with_capacity(count as usize);
        for queue in first..end {
            bound.push((queue, bind_retrying(ifindex, ifname, queue, &config)?));
        }
        let program = RedirectProgram::load(end)?;
        for (queue, parts) in &bound {
            program.insert(*queue, parts.socket.as_raw_fd())?;
        }
        let (attachment, mode) =
            attach(&program, route, ifindex, config.attach, config.use_link)
                .map_err(|e| io::Error::new(e.kind(), format!("attach XDP to {ifname}: {e}")))?;
        let link = Arc::new(ProgramLink { attachment, _program: program, mode });

        let mtu = if_mtu.min(config.frame_size as usize - XDP_PACKET_HEADROOM - LINK_OVERHEAD);
        let frames = config.frames as usize;
        Ok(bound
            .into_iter()
            .map(|(queue, parts)| {
                let SocketParts {
                    socket,
                    arena,
                    rx,
                    tx,
                    fill,
                    completion,
                    free,
                    fill_target,
                    zero_copy,
                } = parts;
                XdpDevice {
                    link: link.clone(),
                    rx,
                    tx,
                    fill,
                    completion,
                    tx_hold: (0..frames).map(|_| None).collect(),
                    socket,
                    arena,
                    free,
                    fill_target,
                    in_fill: fill_target,
                    tx_in_flight: 0,
                    max_frame: mtu + LINK_OVERHEAD,
                    ifname: ifname.to_owned(),
                    queue,
                    zero_copy,
                    need_wakeup: config.need_wakeup,
                    capabilities: DeviceCapabilities::plain(mac, mtu),
                    counters: DeviceCounters::default(),
                    xdp_counters: XdpCounters::default(),
                }
            })
            .collect())
    }

    /// The descriptor to wait on: readable when the RX ring holds a frame (poll `POLLIN`, or
    /// an io_uring poll; see [`super::readable`]).
    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The queue the socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the socket runs in zero-copy mode (the driver's DMA uses the UMEM).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The hook the program was attached to: [`XdpAttach::Driver`] or [`XdpAttach::Skb`].
    pub fn attach_mode(&self) -> XdpAttach {
        self.link.mode
    }

    /// Whether the program is attached by a BPF link (detached by the kernel if this process
    /// dies) rather than over netlink (detached by `Drop`).
    pub fn attached_by_link(&self) -> bool {
        matches!(self.link.attachment, Attachment::Link { .. })
    }

    /// The UMEM's address range: a received frame's bytes lie inside it.
    pub fn umem(&self) -> Range<usize> {
        let base = self.arena.base() as usize;
        base..base + self.arena.len()
    }

    /// Received frames the stack still holds (their buffers not all dropped yet), as of the
    /// last `receive`, `flush` or this call.
    pub fn lent_frames(&mut self) -> u32 {
        self.arena.take_returned(&mut self.free);
        self.arena.count() - self.free.len() as u32 - self.in_fill - self.tx_in_flight
    }

    /// The device's own counters.
    pub fn xdp_counters(&self) -> XdpCounters {
        self.xdp_counters
    }

    /// The kernel's drop counters for the socket.
    pub fn statistics(&self) -> io::Result<XdpStatistics> {
        let raw: XdpStatisticsRaw = sys::get_option(&self.socket, sys::XDP_STATISTICS)?;
        Ok(XdpStatistics {
            rx_dropped: raw.rx_dropped,
            rx_invalid_descs: raw.rx_invalid_descs,
            tx_invalid_descs: raw.tx_invalid_descs,
            rx_ring_full: raw.rx_ring_full,
            rx_fill_ring_empty_descs: raw.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: raw.tx_ring_empty_descs,
        })
    }

    /// The id of the XDP program attached to interface `ifname` (in the calling thread's
    /// namespace), if any.
    pub fn attached_program(ifname: &str) -> io::Result<Option<u32>> {
        RouteSocket::open()?.xdp_program_id(iface::index(ifname)?)
    }

    /// Detaches any XDP program attached over netlink to interface `ifname`, in either mode
    /// (what a crashed run leaves behind). Fails if a live BPF link holds the interface.
    pub fn detach(ifname: &str) -> io::Result<()> {
        detach_stale(&mut RouteSocket::open()?, iface::index(ifname)?, ifname)
    }

    /// Gives the kernel free frames until it holds `fill_target` for receiving.
    fn refill(&mut self) {
        self.arena.take_returned(&mut self.free);
        if self.in_fill >= self.fill_target {
            return;
        }
        let wanted = self.fill_target - self.in_fill;
        let n = wanted.min(self.fill.free(wanted)).min(self.free.len() as u32);
        if n == 0 {
            self.xdp_counters.fill_starved += u64::from(self.free.is_empty());
            return;
        }
        let frame_size = self.arena.frame_size() as u64;
        for _ in 0..n {
            let index = self.free.pop().expect("counted above");
            self.fill.push(u64::from(index) * frame_size);
        }
        self.fill.publish();
        self.in_fill += n;
    }

    /// Takes back the frames the kernel has finished sending.
    fn reclaim(&mut self) {
        let n = self.completion.available();
        let frame_size = self.arena.frame_size() as u64;
        for i in 0..n {
            let index = (self.completion.read(i) / frame_size) as usize;
            match self.tx_hold.get_mut(index) {
                Some(held @ Some(_)) => drop(held.take()),
                Some(None) => {
                    self.free.push(index as u32);
                    self.tx_in_flight -= 1;
                }
                None => self.counters.tx_dropped += 1,
            }
        }
        if n > 0 {
            self.completion.release(n);
        }
        self.arena.take_returned(&mut self.free);
    }

    /// Kicks the kernel to send what the TX ring holds: copy mode sends at most 32 frames
    /// per `sendto`, so this kicks until the ring is drained or the kernel stops making
    /// progress.
    fn kick_tx(&mut self) {
        let max_kicks = self.tx.size() / KERNEL_TX_BATCH + 2;
        for _ in 0..max_kicks {
            let before = self.tx.outstanding();
            if before == 0 || (self.need_wakeup && !self.tx.needs_wakeup()) {
                return;
            }
            self.reclaim();
            self.xdp_counters.tx_kicks += 1;
            // SAFETY: a zero-length send with no buffer or address only wakes the socket's TX
            // processing; the kernel reads nothing from user memory.
            let r = unsafe {
                libc::sendto(
                    self.socket.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error().raw_os_error();
                let retry = matches!(e, Some(libc::EAGAIN | libc::EBUSY | libc::EINTR));
                if !retry || self.tx.outstanding() >= before {
                    return;
                }
            }
        }
    }
}

/// A bound AF_XDP socket with its UMEM and mapped rings, the fill ring primed.
struct SocketParts {
    socket: OwnedFd,
    arena: Arc<FrameArena>,
    rx: Ring<XdpDesc>,
    tx: Ring<XdpDesc>,
    fill: Ring<u64>,
    completion: Ring<u64>,
    free: Vec<u32>,
    fill_target: u32,
    zero_copy: bool,
}

impl SocketParts {
    /// Creates the socket, registers a UMEM, maps the rings, primes the fill ring and binds to
    /// `queue` of `ifindex`. A bind error keeps its OS error code.
    fn bind(ifindex: u32, queue: u32, config: &XdpConfig) -> io::Result<SocketParts> {
        let socket = sys::xdp_socket()?;
        let arena = FrameArena::new(config.frames, config.frame_size as usize)?;
        let reg = XdpUmemReg {
            addr: arena.base() as u64,
            len: arena.len() as u64,
            chunk_size: config.frame_size,
            ..XdpUmemReg::default()
        };
        sys::set_option(&socket, sys::XDP_UMEM_REG, &reg)?;
        for option in [
            sys::XDP_UMEM_FILL_RING,
            sys::XDP_UMEM_COMPLETION_RING,
            sys::XDP_RX_RING,
            sys::XDP_TX_RING,
        ] {
            sys::set_option(&socket, option, &config.ring_size)?;
        }
        let offsets: XdpMmapOffsets = sys::get_option(&socket, sys::XDP_MMAP_OFFSETS)?;
        let size = config.ring_size;
        let rx = Ring::map(&socket, &offsets.rx, size, sys::XDP_PGOFF_RX_RING, Role::Consumer)?;
        let tx = Ring::map(&socket, &offsets.tx, size, sys::XDP_PGOFF_TX_RING, Role::Producer)?;
        let mut fill =
            Ring::map(&socket, &offsets.fr, size, sys::XDP_UMEM_PGOFF_FILL_RING, Role::Producer)?;
        let completion = Ring::map(
            &socket,
            &offsets.cr,
            size,
            sys::XDP_UMEM_PGOFF_COMPLETION_RING,
            Role::Consumer,
        )?;

        // Half the frames (at most a ring's worth) wait in the fill ring; the rest are free
        // for transmission and for refilling as received frames are held by the stack.
        let fill_target = (config.frames / 2).min(size).max(1);
        let mut free: Vec<u32> = (0..config.frames).rev().collect();
        for _ in 0..fill_target {
            let index = free.pop().expect("frames >= 2");
            fill.push(u64::from(index) * u64::from(config.frame_size));
        }
        fill.publish();

        let mut flags = match config.bind {
            XdpBind::Copy => sys::XDP_COPY,
            XdpBind::ZeroCopy => sys::XDP_ZEROCOPY,
            XdpBind::Auto => 0,
        };
        if config.need_wakeup {
            flags |= sys::XDP_USE_NEED_WAKEUP;
        }
        let address = SockaddrXdp {
            family: sys::AF_XDP as u16,
            flags,
            ifindex,
            queue_id: queue,
            shared_umem_fd: 0,
        };
        sys::bind(&socket, &address)?;
        let options: u32 = sys::get_option(&socket, sys::XDP_OPTIONS)?;
        let zero_copy = options & sys::XDP_OPTIONS_ZEROCOPY != 0;
        Ok(SocketParts { socket, arena, rx, tx, fill, completion, free, fill_target, zero_copy })
    }
}

/// Detaches netlink-attached XDP programs of both modes from `ifindex` and checks none is left.
fn detach_stale(route: &mut RouteSocket, ifindex: u32, ifname: &str) -> io::Result<()> {
    for mode in [XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE] {
        match route.set_xdp(ifindex, -1, mode) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("a live BPF link holds the XDP hook of {ifname}"),
                ))
            }
            // A mode the driver lacks has nothing to detach.
            Err(_) => {}
        }
    }
    match route.xdp_program_id(ifindex)? {
        None => Ok(()),
        Some(id) => Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!("XDP program {id} stays attached to {ifname}"),
        )),
    }
}

/// Binds a socket to `queue` of `ifindex`. A socket closed just before (this queue's previous
/// device) releases the queue in a kernel work item, so binding may briefly answer EBUSY: it is
/// retried a bounded number of times with a fresh socket.
fn bind_retrying(
    ifindex: u32,
    ifname: &str,
    queue: u32,
    config: &XdpConfig,
) -> io::Result<SocketParts> {
    let mut attempt = 0;
    loop {
        match SocketParts::bind(ifindex, queue, config) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < BIND_RETRIES => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => {
                return result.map_err(|e| {
                    io::Error::new(e.kind(), format!("bind AF_XDP to {ifname} queue {queue}: {e}"))
                })
            }
        }
    }
}

/// Attaches `program` to `ifindex` at the hook `mode` asks for: by BPF link when `use_link`,
/// or by netlink (also where the kernel lacks XDP links).
fn attach(
    program: &RedirectProgram,
    mut route: RouteSocket,
    ifindex: u32,
    mode: XdpAttach,
    use_link: bool,
) -> io::Result<(Attachment, XdpAttach)> {
    let hooks: &[(u32, XdpAttach)] = match mode {
        XdpAttach::Driver => &[(XDP_FLAGS_DRV_MODE, XdpAttach::Driver)],
        XdpAttach::Skb => &[(XDP_FLAGS_SKB_MODE, XdpAttach::Skb)],
        XdpAttach::Auto => {
            &[(XDP_FLAGS_DRV_MODE, XdpAttach::Driver), (XDP_FLAGS_SKB_MODE, XdpAttach::Skb)]
        }
    };
    let mut last = io::Error::new(io::ErrorKind::Unsupported, "no XDP hook tried");
    for &(flags, used) in hooks {
        if use_link {
            match program.link(ifindex, flags) {
                Ok(link) => return Ok((Attachment::Link { _link: link }, used)),
                Err(e) => last = e,
            }
        }
        match route.set_xdp(ifindex, program.program_fd(), flags) {
            Ok(()) => return Ok((Attachment::Netlink { route, ifindex, flags }, used)),
            Err(e) => last = io::Error::new(e.kind(), format!("link: {last}; netlink: {e}")),
        }
    }
    Err(last)
}

impl Device for XdpDevice {
    fn capabilities(&self) -> DeviceCapabilities {
        self.capabilities
    }

    fn receive(&mut self) -> Option<IoBuf> {
        self.refill();
        if self.rx.available() == 0 {
            if self.need_wakeup && self.fill.needs_wakeup() {
                self.xdp_counters.rx_kicks += 1;
                // SAFETY: a zero-length, non-blocking receive with no buffer only wakes the
                // driver to take frames from the fill ring; nothing is written to user memory.
                unsafe {
                    libc::recvfrom(
                        self.socket.as_raw_fd(),
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
            }
            return None;
        }
        let desc = self.rx.read(0);
        self.rx.release(1);
        self.in_fill -= 1;
        let frame_size = self.arena.frame_size();
        let index = desc.addr / frame_size as u64;
        let offset = (desc.addr % frame_size as u64) as usize;
        let len = desc.len as usize;
        if index >= u64::from(self.arena.count()) || offset + len > frame_size || len == 0 {
            self.xdp_counters.rx_invalid += 1;
            self.counters.rx_dropped += 1;
            if index < u64::from(self.arena.count()) {
                self.free.push(index as u32);
            }
            return None;
        }
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += len as u64;
        // SAFETY: the kernel handed this frame back on the RX ring, so it no longer writes it,
        // and the device does not reuse it until the last buffer over it returns it.
        Some(unsafe { self.arena.lend(index as u32, offset..offset + len) })
    }

    fn transmit(&mut self, mut frame: IoBufChain) -> Result<(), DeviceError> {
        let len = frame.len();
        if len == 0 {
            self.counters.tx_dropped += 1;
            return Err(DeviceError::Io(libc::EINVAL));
        }
        if len > self.max_frame {
            self.counters.tx_dropped += 1;
            return Err(DeviceError::TooLarge);
        }
        if self.tx.free(1) == 0 {
            self.xdp_counters.tx_full += 1;
            return Err(DeviceError::Full);
        }
        let frame_size = self.arena.frame_size() as u64;
        if frame.segment_count() == 1 {
            let segment = frame.front().expect("one segment");
            if let Some((index, offset)) = self.arena.locate(segment.as_ptr(), segment.len()) {
                if self.tx_hold[index as usize].is_none() {
                    let segment = frame.pop_front().expect("one segment");
                    let addr = u64::from(index) * frame_size + offset as u64;
                    self.tx.push(XdpDesc { addr, len: len as u32, options: 0 });
                    self.tx_hold[index as usize] = Some(segment);
                    self.xdp_counters.tx_zero_copy += 1;
                    self.counters.tx_frames += 1;
                    self.counters.tx_bytes += len as u64;
                    return Ok(());
                }
            }
        }
        if self.free.is_empty() {
            self.reclaim();
        }
        let Some(index) = self.free.pop() else {
            self.xdp_counters.tx_full += 1;
            return Err(DeviceError::Full);
        };
        let destination = self.arena.frame_ptr(index);
        let mut at = 0;
        for slice in frame.slices() {
            // SAFETY: the frame is free (on no ring, lent to nobody), `at + slice.len() <= len
            // <= max_frame < frame_size`, so the copy stays inside it; the source is a live
            // buffer of the chain that cannot overlap a free frame.
            unsafe {
                std::ptr::copy_nonoverlapping(slice.as_ptr(), destination.add(at), slice.len())
            };
            at += slice.len();
        }
        self.tx.push(XdpDesc { addr: u64::from(index) * frame_size, len: len as u32, options: 0 });
        self.tx_in_flight += 1;
        self.xdp_counters.tx_copied += 1;
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += len as u64;
        Ok(())
    }

    /// A TX ring slot and a free frame to copy into (reclaiming sent ones if none is free):
    /// then `transmit` cannot answer [`DeviceError::Full`].
    fn ready_to_transmit(&mut self) -> bool {
        if self.tx.free(1) == 0 {
            return false;
        }
        if self.free.is_empty() {
            self.reclaim();
        }
        !self.free.is_empty()
    }

    fn flush(&mut self) {
        if self.tx.unpublished() > 0 {
            self.tx.publish();
        }
        self.kick_tx();
        self.reclaim();
    }

    /// The device's counts, with the kernel's drops added (one `getsockopt`): `rx_dropped`
    /// includes frames the kernel dropped for want of a fill-ring frame or RX-ring room,
    /// `tx_dropped` the TX descriptors it found invalid.
    fn counters(&self) -> DeviceCounters {
        let mut counters = self.counters;
        if let Ok(stats) = self.statistics() {
            counters.rx_dropped += stats.rx_dropped + stats.rx_ring_full + stats.rx_invalid_descs;
            counters.tx_dropped += stats.tx_invalid_descs;
        }
        counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_geometry_is_refused_before_the_kernel_is_asked() {
        for config in [
            XdpConfig { frame_size: 3000, ..XdpConfig::default() },
            XdpConfig { frame_size: 1024, ..XdpConfig::default() },
            XdpConfig { ring_size: 1000, ..XdpConfig::default() },
            XdpConfig { frames: 1, ..XdpConfig::default() },
        ] {
            let e = XdpDevice::open_with("cairn-nosuch0", 0, config).err().expect("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{config:?}: {e}");
        }
        let e = XdpDevice::open("cairn-nosuch0", 0).err().expect("no such interface");
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }
}
