//! An in-memory [`Device`] pair for tests: two ends joined by two queues, so what one end
//! transmits the other receives. The link can lose, reorder and delay frames, driven by a
//! seeded PRNG so a failing test replays exactly, and counts what it did.
//!
//! Time is the link's own: [`LoopbackDevice::set_now`] tells it the time (both ends share one
//! clock), and a delayed frame becomes receivable once that time reaches its delivery time.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use cairn_rt::iobuf::{IoBuf, IoBufChain};

use crate::device::{Device, DeviceCapabilities, DeviceCounters, DeviceError};
use crate::segment;
use crate::wire::EthernetAddress;

/// How the link between the two ends behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopbackConfig {
    /// The IP MTU both ends report.
    pub mtu: usize,
    /// Frames lost, per million sent.
    pub loss_per_million: u32,
    /// Frames overtaken by the frame sent after them, per million sent.
    pub reorder_per_million: u32,
    /// How long a frame takes to arrive.
    pub delay_ns: u64,
    /// Frames in flight per direction before transmit answers [`DeviceError::Full`].
    pub queue_len: usize,
    /// The PRNG seed (any value; 0 is replaced by a fixed nonzero one).
    pub seed: u64,
    /// Whether both ends report checksum offload (a link that cannot corrupt needs no
    /// checksums).
    pub checksum_offload: bool,
    /// Whether both ends offload TCP segmentation (and so TCP checksums): they take TCP
    /// frames of up to 65535 IP octets and cut and checksum them in software
    /// ([`crate::segment`]), as a NIC with TSO would, before the link sees them.
    pub segmentation_offload: bool,
}

impl Default for LoopbackConfig {
    fn default() -> Self {
        LoopbackConfig {
            mtu: 1500,
            loss_per_million: 0,
            reorder_per_million: 0,
            delay_ns: 0,
            queue_len: 4096,
            seed: 1,
            checksum_offload: false,
            segmentation_offload: false,
        }
    }
}

/// What the link did to frames, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Frames the link lost on purpose.
    pub lost: u64,
    /// Frames the link put behind their successor.
    pub reordered: u64,
}

/// The state both ends share.
#[derive(Debug)]
struct Link {
    config: LoopbackConfig,
    /// `queues[i]`: frames on their way to end `i`, with their delivery time.
    queues: [VecDeque<(u64, IoBuf)>; 2],
    counters: [DeviceCounters; 2],
    link_counters: [LinkCounters; 2],
    now_ns: u64,
    rng: u64,
}

impl Link {
    /// The next number of xorshift64* (Vigna, 2016).
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `per_million` / 1 000 000.
    fn chance(&mut self, per_million: u32) -> bool {
        per_million > 0 && self.next_random() % 1_000_000 < u64::from(per_million)
    }
}

/// One end of an in-memory link. Made in pairs by [`pair`].
#[derive(Debug)]
pub struct LoopbackDevice {
    link: Rc<RefCell<Link>>,
    /// This end's index: it receives from `queues[side]`.
    side: usize,
    mac: EthernetAddress,
}

/// Two connected ends with MACs `mac_a` and `mac_b`.
pub fn pair(
    config: LoopbackConfig,
    mac_a: EthernetAddress,
    mac_b: EthernetAddress,
) -> (LoopbackDevice, LoopbackDevice) {
    let link = Rc::new(RefCell::new(Link {
        config,
        queues: [VecDeque::new(), VecDeque::new()],
        counters: [DeviceCounters::default(); 2],
        link_counters: [LinkCounters::default(); 2],
        now_ns: 0,
        rng: if config.seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { config.seed },
    }));
    (
        LoopbackDevice { link: link.clone(), side: 0, mac: mac_a },
        LoopbackDevice { link, side: 1, mac: mac_b },
    )
}

impl LoopbackDevice {
    /// Tells the link the time (shared by both ends): delayed frames due by then arrive.
    pub fn set_now(&self, now_ns: u64) {
        let mut link = self.link.borrow_mut();
        link.now_ns = link.now_ns.max(now_ns);
    }

    /// Changes how the link behaves from now on (both directions).
    pub fn reconfigure(&self, config: LoopbackConfig) {
        self.link.borrow_mut().config = config;
    }

    /// What the link did to frames travelling towards this end.
    pub fn link_counters(&self) -> LinkCounters {
        self.link.borrow().link_counters[self.side]
    }

    /// Frames waiting for this end (delivered or still delayed).
    pub fn in_flight(&self) -> usize {
        self.link.borrow().queues[self.side].len()
    }

    /// When the next delayed frame for this end arrives.
    pub fn next_arrival(&self) -> Option<u64> {
        self.link.borrow().queues[self.side].iter().map(|(t, _)| *t).min()
    }

    /// Puts raw bytes on the wire towards this end, as if the other end had sent them (for
    /// tests that build frames by hand). Not subject to loss or reordering.
    pub fn inject(&self, frame: &[u8]) {
        let mut link = self.link.borrow_mut();
        let at = link.now_ns;
        link.queues[self.side].push_back((at, IoBuf::copy_from_slice(frame)));
    }
}

impl Device for LoopbackDevice {
    fn capabilities(&self) -> DeviceCapabilities {
        let link = self.link.borrow();
        DeviceCapabilities {
            mac: self.mac,
            mtu: link.config.mtu,
            tx_checksum_offload: link.config.checksum_offload,
            rx_checksum_offload: link.config.checksum_offload,
            tx_tcp_checksum_offload: link.config.segmentation_offload,
            tso_max_len: if link.config.segmentation_offload { usize::from(u16::MAX) } else { 0 },
        }
    }

    fn receive(&mut self) -> Option<IoBuf> {
        let mut link = self.link.borrow_mut();
        let now = link.now_ns;
        let queue = &mut link.queues[self.side];
        if queue.front().is_none_or(|(at, _)| *at > now) {
            return None;
        }
        let (_, frame) = queue.pop_front()?;
        let counters = &mut link.counters[self.side];
        counters.rx_frames += 1;
        counters.rx_bytes += frame.len() as u64;
        Some(frame)
    }

    fn transmit(&mut self, frame: IoBufChain) -> Result<(), DeviceError> {
        let offload = self.link.borrow().config.segmentation_offload;
        if offload && segment::TcpFrameLayout::of_chain(&frame).is_some() {
            // The TCP checksum is the device's to finish: one piece, cut as it is.
            return self.transmit_segmented(frame, u16::MAX);
        }
        let mut link = self.link.borrow_mut();
        let max = link.config.mtu + crate::wire::ethernet::HEADER_LEN;
        if frame.len() > max {
            link.counters[self.side].tx_dropped += 1;
            return Err(DeviceError::TooLarge);
        }
        if link.queues[1 - self.side].len() >= link.config.queue_len {
            return Err(DeviceError::Full);
        }
        link.carry(self.side, frame.to_contiguous());
        Ok(())
    }

    fn transmit_segmented(
        &mut self,
        frame: IoBufChain,
        segment_size: u16,
    ) -> Result<(), DeviceError> {
        let mut link = self.link.borrow_mut();
        if !link.config.segmentation_offload || frame.len() > usize::from(u16::MAX) + 14 {
            link.counters[self.side].tx_dropped += 1;
            return Err(DeviceError::TooLarge);
        }
        let mut pieces = Vec::new();
        let bytes = frame.to_vec();
        if segment::segment_tcp(&bytes, segment_size, |piece| pieces.push(piece)).is_err() {
            link.counters[self.side].tx_dropped += 1;
            return Err(DeviceError::Io(0));
        }
        if link.queues[1 - self.side].len() + pieces.len() > link.config.queue_len {
            return Err(DeviceError::Full);
        }
        for piece in pieces {
            link.carry(self.side, IoBuf::copy_from_slice(&piece));
        }
        Ok(())
    }

    fn counters(&self) -> DeviceCounters {
        self.link.borrow().counters[self.side]
    }
}

impl Link {
    /// Puts one frame from end `from` on the wire: counted, then lost, delayed or reordered
    /// as the configuration says.
    fn carry(&mut self, from: usize, bytes: IoBuf) {
        let link = self;
        let peer = 1 - from;
        let counters = &mut link.counters[from];
        counters.tx_frames += 1;
        counters.tx_bytes += bytes.len() as u64;
        let (loss, reorder) = (link.config.loss_per_million, link.config.reorder_per_million);
        if link.chance(loss) {
            link.link_counters[peer].lost += 1;
            return;
        }
        let deliver_at = link.now_ns.saturating_add(link.config.delay_ns);
        let overtake = link.chance(reorder);
        let queue = &mut link.queues[peer];
        queue.push_back((deliver_at, bytes));
        // Reordering: the frame just queued is swapped with the one before it, which is thus
        // overtaken (and keeps its own delivery time order intact enough for receive's check).
        if overtake && queue.len() >= 2 {
            let n = queue.len();
            queue.swap(n - 1, n - 2);
            let (a, b) = (queue[n - 2].0, queue[n - 1].0);
            queue[n - 2].0 = a.min(b);
            queue[n - 1].0 = a.max(b);
            link.link_counters[peer].reordered += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_rt::iobuf::SharedIoBuf;

    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn frame(tag: u8) -> IoBufChain {
        IoBufChain::from(SharedIoBuf::copy_from_slice(&[tag; 20]))
    }

    #[test]
    fn frames_cross_in_order_and_are_counted() {
        let (mut a, mut b) = pair(LoopbackConfig::default(), MAC_A, MAC_B);
        a.transmit(frame(1)).unwrap();
        a.transmit(frame(2)).unwrap();
        assert!(a.receive().is_none());
        assert_eq!(b.receive().unwrap()[0], 1);
        assert_eq!(b.receive().unwrap()[0], 2);
        assert!(b.receive().is_none());
        assert_eq!(a.counters().tx_frames, 2);
        assert_eq!(b.counters().rx_bytes, 40);
        assert_eq!(b.capabilities().mac, MAC_B);
    }

    #[test]
    fn full_and_too_large() {
        let config = LoopbackConfig { queue_len: 1, mtu: 10, ..Default::default() };
        let (mut a, _b) = pair(config, MAC_A, MAC_B);
        a.transmit(frame(1)).unwrap();
        assert_eq!(a.transmit(frame(2)), Err(DeviceError::Full));
        let big = IoBufChain::from(SharedIoBuf::copy_from_slice(&[0; 25]));
        assert_eq!(a.transmit(big), Err(DeviceError::TooLarge));
    }

    #[test]
    fn delay_holds_frames_until_due() {
        let config = LoopbackConfig { delay_ns: 100, ..Default::default() };
        let (mut a, mut b) = pair(config, MAC_A, MAC_B);
        a.transmit(frame(1)).unwrap();
        assert!(b.receive().is_none());
        assert_eq!(b.next_arrival(), Some(100));
        b.set_now(100);
        assert!(b.receive().is_some());
    }

    #[test]
    fn loss_and_reordering_replay_from_the_seed() {
        let config = LoopbackConfig {
            loss_per_million: 200_000,
            reorder_per_million: 200_000,
            seed: 42,
            ..Default::default()
        };
        let run = || {
            let (mut a, mut b) = pair(config, MAC_A, MAC_B);
            for tag in 0..200u8 {
                a.transmit(frame(tag)).unwrap();
            }
            let mut got = alloc::vec::Vec::new();
            while let Some(f) = b.receive() {
                got.push(f[0]);
            }
            (got, b.link_counters())
        };
        let (got, counters) = run();
        assert_eq!(run().0, got);
        assert_eq!(got.len() as u64 + counters.lost, 200);
        assert!(counters.lost > 10 && counters.reordered > 10, "{counters:?}");
        assert!(got.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn inject_bypasses_the_link() {
        let config = LoopbackConfig { loss_per_million: 1_000_000, ..Default::default() };
        let (_a, mut b) = pair(config, MAC_A, MAC_B);
        b.inject(b"hand-made");
        assert_eq!(&b.receive().unwrap()[..], b"hand-made");
    }
}
