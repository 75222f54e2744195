//! A TAP device: Ethernet frames to and from the Linux stack through `/dev/net/tun`.
//!
//! The tap interface is the Linux side's NIC: what cairn writes to the descriptor, Linux
//! receives on the interface, and what Linux sends out of the interface, cairn reads. So cairn
//! is a separate host on a point-to-point Ethernet link, and it needs its own hardware address
//! ([`TapConfig::mac`], a random locally administered one by default), not the interface's.
//!
//! Opening is `open("/dev/net/tun")` and `ioctl(TUNSETIFF)` with `IFF_TAP | IFF_NO_PI`
//! (Documentation/networking/tuntap.rst): that attaches to an existing tap interface of that
//! name, or creates one, which then lives as long as the descriptor. The descriptor is
//! non-blocking, and it is readable exactly when a frame waits, so an event loop waits on
//! [`Tap::raw_fd`].
//!
//! With [`TapConfig::offloads`] (the default) the descriptor is opened with `IFF_VNET_HDR`, so
//! each frame either way is preceded by a virtio-net header (virtio spec 1.2 §5.1.6). cairn
//! uses it to hand the kernel the TCP checksum to finish (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) and
//! TCP segments of up to 64 KiB to cut (`VIRTIO_NET_HDR_GSO_TCPV4`), as a guest does to its
//! virtio NIC: the Linux side then receives one 64 KiB packet where it would have received
//! forty-five, just as it does from its own TCP over a veth. The other way, `TUNSETOFFLOAD`
//! with `TUN_F_CSUM | TUN_F_TSO4` lets the kernel do the same: its TCP hands cairn segments
//! of up to 64 KiB, and packets that never left the host come with only the pseudo-header
//! summed (`NEEDS_CSUM`) or marked verified (`DATA_VALID`), which
//! [`Device::receive_checksum_verified`] tells the stack so it does not sum them again. Each
//! pooled buffer then holds 64 KiB, so at most [`MAX_LARGE_BUFFERS`] are made.
//!
//! Receive is one `read(2)` per frame into a buffer from a pool of fixed-size buffers, lent to
//! the stack as an [`IoBuf`] that returns to the pool when dropped (no allocation per frame;
//! if the stack holds every pooled buffer, a frame is read into a fresh heap buffer and
//! [`TapCounters::pool_empty`] counts it). Transmit is one `writev(2)` of the chain's
//! segments, so headers and payload leave without being gathered first.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use cairn_net::device::{Device, DeviceCapabilities, DeviceCounters, DeviceError};
use cairn_net::segment::{TcpFrameLayout, TCP_CHECKSUM_OFFSET};
use cairn_net::wire::ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;
use cairn_net::wire::EthernetAddress;
use cairn_rt::iobuf::{IoBuf, IoBufChain};

use super::frames::FrameArena;
use super::iface::{self, IfReq};

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `IFF_TAP`: Ethernet frames, not IP packets.
const IFF_TAP: i16 = 0x0002;
/// `IFF_NO_PI`: no 4-byte packet-information header in front of each frame.
const IFF_NO_PI: i16 = 0x1000;
/// `IFF_MULTI_QUEUE`: each descriptor attached under this name is one queue of the interface.
const IFF_MULTI_QUEUE: i16 = 0x0100;
/// `IFF_VNET_HDR`: a `struct virtio_net_hdr` in front of each frame, both ways.
const IFF_VNET_HDR: i16 = 0x4000;
/// Size of `struct virtio_net_hdr`, the tun default (`TUNSETVNETHDRSZ` not used).
const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: finish the checksum at `csum_start + csum_offset`.
const VNET_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: cut into TCP/IPv4 segments of `gso_size` payload octets.
const VNET_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
const VNET_GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
const VNET_F_DATA_VALID: u8 = 2;
/// The largest IPv4 packet the kernel is handed to cut up (Total Length's limit).
const TSO_MAX_LEN: usize = 65535;
/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `TUN_F_CSUM`: cairn takes frames whose checksum the kernel left to finish.
const TUN_F_CSUM: libc::c_ulong = 0x01;
/// `TUN_F_TSO4`: cairn takes TCP/IPv4 segments longer than the MTU.
const TUN_F_TSO4: libc::c_ulong = 0x02;
/// Pooled receive buffers made at most when each holds a 64 KiB segment.
pub const MAX_LARGE_BUFFERS: u32 = 128;
/// Ethernet header plus one 802.1Q tag: what a frame may carry beyond the MTU.
const LINK_OVERHEAD: usize = 14 + 4;
/// Segments written straight from the chain; a longer chain is gathered into one buffer.
const MAX_IOVECS: usize = 32;
/// Frames one `receive` call skips (oversized ones) before giving up for this turn.
const MAX_SKIPPED: usize = 64;

/// How to open a [`Tap`].
#[derive(Clone, Copy, Debug)]
pub struct TapConfig {
    /// cairn's hardware address on the link; `None` picks a random locally administered one.
    pub mac: Option<EthernetAddress>,
    /// Bring the interface up after opening it (as `ip link set NAME up` would).
    pub bring_up: bool,
    /// Receive buffers in the pool.
    pub buffers: u32,
    /// Open the descriptor as one queue of a multi-queue interface (`IFF_MULTI_QUEUE`, see
    /// [`Tap::open_queues`]). An interface is created multi-queue or not, and a descriptor
    /// attaches only with the same choice.
    pub multi_queue: bool,
    /// Exchange virtio-net headers with the kernel (`IFF_VNET_HDR`), so that it finishes TCP
    /// checksums and cuts TCP segments of up to 64 KiB that cairn sends (see the module
    /// documentation).
    pub offloads: bool,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig { mac: None, bring_up: true, buffers: 512, multi_queue: false, offloads: true }
    }
}

/// What a [`Tap`] counts beyond the [`DeviceCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapCounters {
    /// Frames read into a heap buffer because every pooled buffer was lent out.
    pub pool_empty: u64,
    /// Received frames longer than the MTU allows, dropped.
    pub rx_oversized: u64,
    /// `read(2)` failures other than "nothing waiting".
    pub read_errors: u64,
    /// `writev(2)` failures other than "try again".
    pub write_errors: u64,
    /// Transmitted chains with more than 32 segments, gathered into one buffer first.
    pub tx_gathered: u64,
    /// TCP segments longer than the MTU handed to the kernel to cut (`VIRTIO_NET_HDR_GSO_TCPV4`).
    pub tx_segmented: u64,
    /// Received TCP segments longer than the MTU (`VIRTIO_NET_HDR_GSO_TCPV4`).
    pub rx_large: u64,
    /// Received frames of a segmentation kind cairn did not ask for; dropped.
    pub rx_unexpected_gso: u64,
}

/// A TAP device (see the module documentation).
pub struct Tap {
    fd: OwnedFd,
    name: String,
    capabilities: DeviceCapabilities,
    /// Largest frame accepted either way: MTU plus the Ethernet header and a VLAN tag.
    max_frame: usize,
    /// Octets of virtio-net header before each frame: 0, or [`VNET_HDR_LEN`] with offloads.
    vnet_hdr: usize,
    /// Largest frame accepted from the kernel: `max_frame`, or a 64 KiB segment with offloads.
    max_rx_frame: usize,
    /// The virtio-net header of the last frame received vouched for its checksum.
    last_checksum_verified: bool,
    arena: Arc<FrameArena>,
    /// Pool buffers not lent out.
    free: Vec<u32>,
    counters: DeviceCounters,
    tap_counters: TapCounters,
}

impl Tap {
    /// Opens tap interface `name` with the default [`TapConfig`]: attaches to it if it exists;
    /// otherwise creates it when `create` is set (it then disappears when the `Tap` drops) and
    /// fails with `NotFound` when not.
    pub fn open(name: &str, create: bool) -> io::Result<Tap> {
        Tap::open_with(name, create, TapConfig::default())
    }

    /// Opens tap interface `name` as [`Tap::open`] does, with `config`.
    pub fn open_with(name: &str, create: bool, config: TapConfig) -> io::Result<Tap> {
        let mut req = IfReq::new(name)?;
        if !create && iface::index(name).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no tap interface {name:?} to attach to"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let queue_flag = if config.multi_queue { IFF_MULTI_QUEUE } else { 0 };
        let vnet_flag = if config.offloads { IFF_VNET_HDR } else { 0 };
        let flags = IFF_TAP | IFF_NO_PI | queue_flag | vnet_flag;
        req.data[..2].copy_from_slice(&flags.to_ne_bytes());
        iface::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req)?;
        let name = req.name();
        if config.bring_up {
            iface::set_up(&name)?;
        }
        let mtu = iface::mtu(&name)?;
        let max_frame = mtu + LINK_OVERHEAD;
        let (vnet_hdr, max_rx_frame, buffers) = if config.offloads {
            let offloads = TUN_F_CSUM | TUN_F_TSO4;
            // SAFETY: TUNSETOFFLOAD takes its argument by value; no memory is passed.
            if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD, offloads) } < 0 {
                return Err(io::Error::last_os_error());
            }
            let max_rx = ETHERNET_HEADER_LEN + TSO_MAX_LEN + 4;
            (VNET_HDR_LEN, max_rx, config.buffers.min(MAX_LARGE_BUFFERS))
        } else {
            (0, max_frame, config.buffers)
        };
        // One spare byte shows a frame that did not fit (the read fills the whole buffer).
        let buffer_size = (vnet_hdr + max_rx_frame + 1).next_multiple_of(64);
        let arena = FrameArena::new(buffers.max(1), buffer_size)?;
        let free = (0..arena.count()).rev().collect();
        let mac = match config.mac {
            Some(mac) => mac,
            None => random_local_mac()?,
        };
        Ok(Tap {
            fd: file.into(),
            name,
            capabilities: DeviceCapabilities {
                tx_tcp_checksum_offload: config.offloads,
                tso_max_len: if config.offloads { TSO_MAX_LEN } else { 0 },
                ..DeviceCapabilities::plain(mac, mtu)
            },
            max_frame,
            vnet_hdr,
            max_rx_frame,
            last_checksum_verified: false,
            arena,
            free,
            counters: DeviceCounters::default(),
            tap_counters: TapCounters::default(),
        })
    }

    /// Opens `queues` queues of multi-queue tap interface `name`, one descriptor each, all with
    /// one hardware address (`config.mac`, or a random one), so that one stack per core can
    /// own a queue (Documentation/networking/tuntap.rst, "Multiqueue tuntap interface").
    ///
    /// The kernel picks the queue of each frame it hands over by the flow's hash, and
    /// remembers for each flow the queue that last wrote a frame of it, so the replies of a
    /// connection a core sends on come back to that core's queue. With `create`, a missing
    /// interface is created (multi-queue) and lives while any queue is open.
    pub fn open_queues(
        name: &str,
        create: bool,
        queues: usize,
        config: TapConfig,
    ) -> io::Result<Vec<Tap>> {
        let mut config = TapConfig { multi_queue: true, ..config };
        let mut taps = Vec::with_capacity(queues);
        for _ in 0..queues.max(1) {
            let tap = Tap::open_with(name, create, config)?;
            config.mac = Some(tap.capabilities.mac);
            taps.push(tap);
        }
        Ok(taps)
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor to wait on: readable when a frame waits (poll `POLLIN`, or an io_uring
    /// poll; see [`super::readable`]).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The TAP-specific counters.
    pub fn tap_counters(&self) -> TapCounters {
        self.tap_counters
    }

    /// Pool buffers currently lent to the stack (their buffers not all dropped yet).
    pub fn lent_buffers(&mut self) -> usize {
        self.arena.take_returned(&mut self.free);
        self.arena.count() as usize - self.free.len()
    }

    /// The next pooled buffer, taking back returned ones when none is free.
    fn take_buffer(&mut self) -> Option<u32> {
        if self.free.is_empty() {
            self.arena.take_returned(&mut self.free);
        }
        self.free.pop()
    }

    /// Reads one frame into `buf` (`cap` bytes): the length, `None` when nothing waits.
    fn read_into(&mut self, buf: *mut u8, cap: usize) -> Option<usize> {
        // SAFETY: `buf .. buf + cap` is writable memory owned by the caller for this call.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.cast(), cap) };
        if n < 0 {
            let e = io::Error::last_os_error().raw_os_error();
            if e != Some(libc::EAGAIN) && e != Some(libc::EINTR) {
                self.tap_counters.read_errors += 1;
                self.counters.rx_dropped += 1;
            }
            return None;
        }
        Some(n as usize)
    }
}

impl Device for Tap {
    fn capabilities(&self) -> DeviceCapabilities {
        self.capabilities
    }

    fn receive(&mut self) -> Option<IoBuf> {
        for _ in 0..MAX_SKIPPED {
            let frame = match self.take_buffer() {
                Some(index) => {
                    let cap = self.arena.frame_size();
                    let ptr = self.arena.frame_ptr(index);
                    let Some(n) = self.read_into(ptr, cap) else {
                        self.free.push(index);
                        return None;
                    };
                    // SAFETY: the read above wrote `n` bytes at `ptr`, in the buffer's `cap`.
                    let read = unsafe { std::slice::from_raw_parts(ptr, n) };
                    if !self.acceptable(read) {
                        self.free.push(index);
                        continue;
                    }
                    // SAFETY: the buffer was free (not lent, not read into by anyone else),
                    // and the read above has finished with it.
                    unsafe { self.arena.lend(index, self.vnet_hdr..n) }
                }
                None => {
                    let mut buf = IoBuf::with_capacity(self.vnet_hdr + self.max_rx_frame + 1);
                    let room = buf.tailroom_mut();
                    let n = self.read_into(room.as_mut_ptr(), room.len())?;
                    if !self.acceptable(&buf.tailroom_mut()[..n]) {
                        continue;
                    }
                    buf.claim_tailroom(n).expect("read within the tailroom");
                    buf.advance(self.vnet_hdr);
                    self.tap_counters.pool_empty += 1;
                    buf
                }
            };
            self.counters.rx_frames += 1;
            self.counters.rx_bytes += frame.len() as u64;
            return Some(frame);
        }
        None
    }

    fn receive_checksum_verified(&self) -> bool {
        self.last_checksum_verified
    }

    fn transmit(&mut self, frame: IoBufChain) -> Result<(), DeviceError> {
        if frame.len() > self.max_frame {
            self.counters.tx_dropped += 1;
            return Err(DeviceError::TooLarge);
        }
        self.write(frame, 0)
    }

    fn transmit_segmented(
        &mut self,
        frame: IoBufChain,
        segment_size: u16,
    ) -> Result<(), DeviceError> {
        if self.vnet_hdr == 0 || frame.len() > ETHERNET_HEADER_LEN + TSO_MAX_LEN {
            self.counters.tx_dropped += 1;
            return Err(DeviceError::TooLarge);
        }
        self.tap_counters.tx_segmented += 1;
        self.write(frame, segment_size)
    }

    fn counters(&self) -> DeviceCounters {
        self.counters
    }
}

impl Tap {
    /// Whether a frame just read (virtio-net header included) goes to the stack; counts it
    /// if not.
    fn acceptable(&mut self, read: &[u8]) -> bool {
        let n = read.len();
        if n <= self.vnet_hdr || n - self.vnet_hdr > self.max_rx_frame {
            self.count_oversized(n);
            return false;
        }
        if self.vnet_hdr == 0 {
            self.last_checksum_verified = false;
            return true;
        }
        let (flags, gso_type) = (read[0], read[1]);
        match gso_type {
            VNET_GSO_NONE if n - self.vnet_hdr > self.max_frame => {
                self.count_oversized(n);
                return false;
            }
            VNET_GSO_NONE => {}
            VNET_GSO_TCPV4 => self.tap_counters.rx_large += 1,
            _ => {
                self.tap_counters.rx_unexpected_gso += 1;
                self.counters.rx_dropped += 1;
                return false;
            }
        }
        self.last_checksum_verified = flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID) != 0;
        true
    }

    /// The virtio-net header for `frame`: the TCP checksum to finish for a TCP/IPv4 frame
    /// (the stack left the pseudo-header sum there, as `tx_tcp_checksum_offload` asks), and
    /// with `segment_size` the segmentation to do.
    fn vnet_header(frame: &IoBufChain, segment_size: u16) -> [u8; VNET_HDR_LEN] {
        let mut header = [0u8; VNET_HDR_LEN];
        let Some(layout) = TcpFrameLayout::of_chain(frame) else { return header };
        // The legacy header is in the host's byte order (tun without TUNSETVNETLE/BE).
        header[0] = VNET_F_NEEDS_CSUM;
        header[6..8].copy_from_slice(&(layout.tcp_start as u16).to_ne_bytes());
        header[8..10].copy_from_slice(&(TCP_CHECKSUM_OFFSET as u16).to_ne_bytes());
        if segment_size > 0 {
            header[1] = VNET_GSO_TCPV4;
            header[2..4].copy_from_slice(&(layout.len as u16).to_ne_bytes());
            header[4..6].copy_from_slice(&segment_size.to_ne_bytes());
        }
        header
    }

    /// Writes `frame`, behind its virtio-net header when offloads are on.
    fn write(&mut self, frame: IoBufChain, segment_size: u16) -> Result<(), DeviceError> {
        let len = frame.len();
        let header = if self.vnet_hdr > 0 {
            Tap::vnet_header(&frame, segment_size)
        } else {
            [0; VNET_HDR_LEN]
        };
        let gathered;
        let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_IOVECS];
        let mut count = 0;
        if self.vnet_hdr > 0 {
            iov[0] = libc::iovec { iov_base: header.as_ptr() as *mut _, iov_len: VNET_HDR_LEN };
            count = 1;
        }
        if count + frame.segment_count() <= MAX_IOVECS {
            for (slot, slice) in iov[count..].iter_mut().zip(frame.slices()) {
                *slot = libc::iovec { iov_base: slice.as_ptr() as *mut _, iov_len: slice.len() };
            }
            count += frame.segment_count();
        } else {
            self.tap_counters.tx_gathered += 1;
            gathered = frame.to_vec();
            iov[count] = libc::iovec { iov_base: gathered.as_ptr() as *mut _, iov_len: len };
            count += 1;
        }
        // SAFETY: the first `count` iovecs point at the header, the chain's segments (or
        // `gathered`), all alive and unchanged until `writev` returns; the kernel only reads
        // them.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), count as i32) };
        if n < 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            if e == libc::EAGAIN || e == libc::ENOBUFS || e == libc::EINTR {
                return Err(DeviceError::Full);
            }
            self.tap_counters.write_errors += 1;
            self.counters.tx_dropped += 1;
            return Err(DeviceError::Io(e));
        }
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += (n as usize).saturating_sub(self.vnet_hdr) as u64;
        Ok(())
    }

    fn count_oversized(&mut self, n: usize) {
        if n > 0 {
            self.tap_counters.rx_oversized += 1;
            self.counters.rx_dropped += 1;
        }
    }
}

/// A random unicast, locally administered hardware address (IEEE 802: bit 1 of the first
/// octet set, bit 0 clear).
pub(crate) fn random_local_mac() -> io::Result<EthernetAddress> {
    let mut bytes = [0u8; 6];
    // SAFETY: getrandom(2) writes at most `bytes.len()` bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(io::Error::last_os_error());
    }
    bytes[0] = (bytes[0] & 0xfc) | 0x02;
    Ok(EthernetAddress(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_macs_are_unicast_and_local() {
        for _ in 0..32 {
            let mac = random_local_mac().unwrap();
            assert!(mac.is_unicast() && mac.is_local(), "{mac:?}");
        }
    }

    #[test]
    fn attaching_to_a_missing_interface_is_not_found() {
        let e = Tap::open("cairn-nosuch0", false).err().expect("no such tap");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
