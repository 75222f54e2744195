//! The boundary between the stack and a network device: [`Device`].
//!
//! A device moves Ethernet frames. Received frames arrive as [`IoBuf`]s the device filled (an
//! AF_XDP UMEM frame, a TAP read buffer, a ring slot), so the stack parses them in place;
//! transmitted frames leave as [`IoBufChain`]s, so headers built by the stack precede an
//! application's payload without a copy (EbbRT, papers/001 section 3.4). The trait is polled,
//! not callback-driven: the runtime's event loop polls the device while it is busy and asks it
//! for a way to sleep when it is idle, which is the adaptive polling that the user-level
//! sandboxing paper and EbbRT both rely on.

use cairn_rt::iobuf::{IoBuf, IoBufChain};

use crate::wire::EthernetAddress;

/// What a device can do, read once when the stack attaches to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCapabilities {
    /// The device's hardware address.
    pub mac: EthernetAddress,
    /// Largest IP packet (Ethernet payload) the device carries, normally 1500.
    pub mtu: usize,
    /// The device fills in IPv4/TCP/UDP checksums on transmit, so the stack leaves them out.
    pub tx_checksum_offload: bool,
    /// The device has verified checksums of received frames, so the stack skips checking.
    pub rx_checksum_offload: bool,
    /// The device finishes the TCP checksum of every TCP/IPv4 frame, while the IPv4 header
    /// checksum stays the stack's: the stack leaves the sum of the pseudo-header in the
    /// checksum field and the device adds the segment to it (Linux's `CHECKSUM_PARTIAL`,
    /// virtio-net's `VIRTIO_NET_HDR_F_NEEDS_CSUM`, virtio spec 1.2 §5.1.6.2). Implied by
    /// [`DeviceCapabilities::tx_checksum_offload`].
    pub tx_tcp_checksum_offload: bool,
    /// TCP segmentation offload: the largest TCP/IPv4 packet (IP header included, at most
    /// 65535) that the device accepts through [`Device::transmit_segmented`] and cuts into
    /// segments that fit the MTU itself; 0 when it cuts none. Needs
    /// [`DeviceCapabilities::tx_tcp_checksum_offload`].
    pub tso_max_len: usize,
}

impl DeviceCapabilities {
    /// A device with hardware address `mac` and `mtu` that offloads nothing.
    pub fn plain(mac: EthernetAddress, mtu: usize) -> Self {
        DeviceCapabilities {
            mac,
            mtu,
            tx_checksum_offload: false,
            rx_checksum_offload: false,
            tx_tcp_checksum_offload: false,
            tso_max_len: 0,
        }
    }

    /// Whether the stack leaves TCP checksums for the device to finish.
    pub fn offloads_tcp_checksum(&self) -> bool {
        self.tx_checksum_offload || self.tx_tcp_checksum_offload
    }

    /// The largest TCP/IPv4 packet the stack may hand over for segmentation, 0 for none.
    pub fn tcp_segmentation_max(&self) -> usize {
        if self.offloads_tcp_checksum() && self.tso_max_len > self.mtu {
            self.tso_max_len.min(usize::from(u16::MAX))
        } else {
            0
        }
    }
}

/// Why a frame could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// No transmit slot is free right now; the frame was not taken. Try after polling.
    Full,
    /// The frame is larger than the device's MTU plus the Ethernet header.
    TooLarge,
    /// The device failed, with the OS errno where there is one.
    Io(i32),
}

/// Per-device counters, readable at run time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Frames received and handed to the stack.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Received frames dropped by the device (no buffer, ring full, bad length).
    pub rx_dropped: u64,
    /// Frames the device could not send.
    pub tx_dropped: u64,
}

/// A network device: a source and sink of Ethernet frames.
pub trait Device {
    /// What the device can do.
    fn capabilities(&self) -> DeviceCapabilities;

    /// The next received frame, if one is waiting. Never blocks.
    fn receive(&mut self) -> Option<IoBuf>;

    /// Whether the frame [`Device::receive`] returned last comes with its TCP or UDP checksum
    /// vouched for, so the stack need not sum it: the device verified it, or the frame never
    /// left the host and carries only a pseudo-header sum to be finished (virtio-net's
    /// `VIRTIO_NET_HDR_F_DATA_VALID` and `VIRTIO_NET_HDR_F_NEEDS_CSUM`, virtio spec 1.2
    /// §5.1.6.4). The IPv4 header checksum is checked all the same. The default, `false`,
    /// vouches for nothing.
    fn receive_checksum_verified(&self) -> bool {
        false
    }

    /// Queues one frame for transmission. Never blocks; a full device answers
    /// [`DeviceError::Full`] and keeps nothing.
    fn transmit(&mut self, frame: IoBufChain) -> Result<(), DeviceError>;

    /// Queues one TCP/IPv4 frame longer than the MTU for the device to cut into segments of
    /// `segment_size` payload octets each, every one with a copy of the headers, sequence
    /// numbers advanced, PSH and FIN only on the last, and checksums finished (TCP
    /// segmentation offload; virtio spec 1.2 §5.1.6.2). Its TCP checksum field holds the
    /// pseudo-header sum over the whole packet's TCP length. Called only when
    /// [`DeviceCapabilities::tso_max_len`] says the device does this; the default refuses.
    fn transmit_segmented(
        &mut self,
        frame: IoBufChain,
        segment_size: u16,
    ) -> Result<(), DeviceError> {
        let _ = (frame, segment_size);
        Err(DeviceError::TooLarge)
    }

    /// Whether the next [`Device::transmit`] is certain not to answer [`DeviceError::Full`].
    /// A caller that must keep a frame when the device is full can then hand it over without
    /// keeping a copy. The default, `false`, promises nothing.
    fn ready_to_transmit(&mut self) -> bool {
        false
    }

    /// Pushes queued transmissions to the hardware (a doorbell, a `sendto` kick); called once
    /// per event-loop turn so many frames share one kick.
    fn flush(&mut self) {}

    /// The device's counters.
    fn counters(&self) -> DeviceCounters;
}
