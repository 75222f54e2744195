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

    /// Queues one frame for transmission. Never blocks; a full device answers
    /// [`DeviceError::Full`] and keeps nothing.
    fn transmit(&mut self, frame: IoBufChain) -> Result<(), DeviceError>;

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
