//! One stack per core over a multi-queue device: each core's [`NetStack`](super::NetStack)
//! owns one device queue, and a frame the device delivered to the wrong core is handed to the
//! core that owns its flow (issue 5, "a connection lives on the core its flow hashes to").
//!
//! Which core owns a frame is [`cairn_net::iface::steer`]: the TCP stack's flow hash of the
//! 4-tuple for TCP and UDP, every core for ARP, core 0 for the rest. A device's own queue choice
//! (the kernel's hash for a TAP, the sender's queue for a veth) knows nothing of it, so each
//! core checks every frame it receives and passes the others on, in a batch per target core
//! per turn of its driver, as one message of the runtime's remote-event path (EbbRT, OSDI 2016
//! §3.3: cores talk by messages, never by locks). The owner takes them as if its own queue had
//! delivered them. This is receive flow steering done in software, as Linux's RPS does it when
//! a NIC cannot; with a TAP most of it goes away after a flow's first frame, because the kernel
//! sends a flow's frames to the queue that last wrote one of it.
//!
//! Transmission needs no hand-off: every core writes to its own queue.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_net::device::{Device, DeviceCapabilities, DeviceCounters, DeviceError};
use cairn_net::iface::{steer, FlowTarget};
use cairn_rt::event::EventManager;
use cairn_rt::iobuf::{IoBuf, IoBufChain};

use super::Inner;

/// Frames one `receive` call passes on to other cores before it returns empty-handed, so a
/// core whose queue carries only other cores' flows still gets back to its own work.
const MAX_PASSED_PER_CALL: usize = 64;

/// Which of a group of per-core stacks this one is: stack `index` of `cores`, running on
/// runtime core `index`. Made by [`ShardGroup::shard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    group: u64,
    index: usize,
    cores: usize,
}

impl Shard {
    /// This stack's core, which is also its runtime core.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many stacks share the device.
    pub fn cores(&self) -> usize {
        self.cores
    }
}

/// A group of per-core stacks over the queues of one device, one stack on each of the runtime
/// cores `0 .. cores`; [`ShardGroup::shard`] names each core's place in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardGroup {
    group: u64,
    cores: usize,
}

impl ShardGroup {
    /// A new group of `cores` stacks (at least one).
    pub fn new(cores: usize) -> ShardGroup {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ShardGroup { group: NEXT.fetch_add(1, Ordering::Relaxed), cores: cores.max(1) }
    }

    /// The place of the stack on runtime core `index` (`< cores`).
    ///
    /// # Panics
    ///
    /// If `index` is not below the group's number of cores.
    pub fn shard(&self, index: usize) -> Shard {
        assert!(index < self.cores, "core {index} is outside a group of {}", self.cores);
        Shard { group: self.group, index, cores: self.cores }
    }

    /// How many stacks the group has.
    pub fn cores(&self) -> usize {
        self.cores
    }
}

/// What a core's steering counted, readable at run time ([`NetStack::steering_counters`]).
///
/// [`NetStack::steering_counters`]: super::NetStack::steering_counters
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteeringCounters {
    /// Frames this core's queue delivered that belong to another core, passed on to it.
    pub passed_on: u64,
    /// Frames other cores passed to this one.
    pub taken_over: u64,
    /// Copies of frames for every core (ARP) sent to the other cores.
    pub copied_to_all: u64,
    /// Batches of frames sent to other cores (one remote event each).
    pub batches_sent: u64,
    /// Frames passed to this core after its stack had stopped, dropped.
    pub dropped_stopped: u64,
}

/// A core's steering state: its place, the frames other cores passed to it, and those it will
/// pass on at the end of this turn.
pub(crate) struct Steering {
    shard: Shard,
    inbox: VecDeque<PassedFrame>,
    outboxes: Vec<Vec<PassedFrame>>,
    /// What the device said of the last frame handed out ([`Device::receive_checksum_verified`]).
    last_checksum_verified: bool,
    pub(crate) counters: SteeringCounters,
}

/// A frame passed to its owner core, with whether the device vouched for its checksum.
type PassedFrame = (IoBuf, bool);

impl Steering {
    pub(crate) fn new(shard: Shard) -> Steering {
        Steering {
            shard,
            inbox: VecDeque::new(),
            outboxes: (0..shard.cores).map(|_| Vec::new()).collect(),
            last_checksum_verified: false,
            counters: SteeringCounters::default(),
        }
    }

    /// Whether frames from other cores wait to be processed.
    pub(crate) fn has_inbox(&self) -> bool {
        !self.inbox.is_empty()
    }

    /// Sends each other core the frames this turn found for it, one remote event per core.
    /// Returns whether anything went.
    pub(crate) fn flush(&mut self) -> bool {
        let mut sent = false;
        for (core, outbox) in self.outboxes.iter_mut().enumerate() {
            if outbox.is_empty() {
                continue;
            }
            let frames = std::mem::take(outbox);
            let group = self.shard.group;
            EventManager::current().runtime().spawn_on(core, move || deliver(group, frames));
            self.counters.batches_sent += 1;
            sent = true;
        }
        sent
    }

    /// The device as this core's interface sees it: frames passed from other cores first,
    /// then the queue's own frames that this core owns.
    pub(crate) fn view<'a>(&'a mut self, device: &'a mut dyn Device) -> SteeredDevice<'a> {
        SteeredDevice { device, steering: self }
    }
}

/// A queue of a shared device, seen through the steering rules (see the module documentation).
pub(crate) struct SteeredDevice<'a> {
    device: &'a mut dyn Device,
    steering: &'a mut Steering,
}

impl Device for SteeredDevice<'_> {
    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }

    fn receive(&mut self) -> Option<IoBuf> {
        if let Some((frame, verified)) = self.steering.inbox.pop_front() {
            self.steering.last_checksum_verified = verified;
            return Some(frame);
        }
        let Shard { index: me, cores, .. } = self.steering.shard;
        for _ in 0..MAX_PASSED_PER_CALL {
            let frame = self.device.receive()?;
            let verified = self.device.receive_checksum_verified();
            self.steering.last_checksum_verified = verified;
            match steer(&frame, cores) {
                FlowTarget::Core(core) if core == me => return Some(frame),
                FlowTarget::Core(core) => {
                    self.steering.outboxes[core].push((frame, verified));
                    self.steering.counters.passed_on += 1;
                }
                FlowTarget::AllCores => {
                    for (core, outbox) in self.steering.outboxes.iter_mut().enumerate() {
                        if core != me {
                            outbox.push((IoBuf::copy_from_slice(&frame), verified));
                            self.steering.counters.copied_to_all += 1;
                        }
                    }
                    return Some(frame);
                }
            }
        }
        None
    }

    fn receive_checksum_verified(&self) -> bool {
        self.steering.last_checksum_verified
    }

    fn transmit(&mut self, frame: IoBufChain) -> Result<(), DeviceError> {
        self.device.transmit(frame)
    }

    fn transmit_segmented(
        &mut self,
        frame: IoBufChain,
        segment_size: u16,
    ) -> Result<(), DeviceError> {
        self.device.transmit_segmented(frame, segment_size)
    }

    fn ready_to_transmit(&mut self) -> bool {
        self.device.ready_to_transmit()
    }

    fn flush(&mut self) {
        self.device.flush()
    }

    fn counters(&self) -> DeviceCounters {
        self.device.counters()
    }
}

thread_local! {
    /// The stacks of this core that belong to a group, by group id.
    static MEMBERS: RefCell<Vec<(u64, Weak<RefCell<Inner>>)>> = const { RefCell::new(Vec::new()) };
}

/// Records `inner` as this core's stack of `shard`'s group, so frames passed to the core
/// reach it.
pub(crate) fn register(shard: Shard, inner: &Rc<RefCell<Inner>>) {
    MEMBERS.with(|members| {
        let mut members = members.borrow_mut();
        members.retain(|(group, stack)| *group != shard.group && stack.strong_count() > 0);
        members.push((shard.group, Rc::downgrade(inner)));
    });
}

/// Runs on the owning core: queues `frames` for its stack of `group` and wakes its driver.
fn deliver(group: u64, frames: Vec<PassedFrame>) {
    let stack = MEMBERS.with(|members| {
        members.borrow().iter().find(|(g, _)| *g == group).and_then(|(_, stack)| stack.upgrade())
    });
    let Some(stack) = stack else { return };
    let mut guard = stack.borrow_mut();
    let inner = &mut *guard;
    let Some(steering) = inner.steering.as_mut() else { return };
    if inner.stopped {
        steering.counters.dropped_stopped += frames.len() as u64;
        return;
    }
    steering.counters.taken_over += frames.len() as u64;
    steering.inbox.extend(frames);
    inner.kick();
}
