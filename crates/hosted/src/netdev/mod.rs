//! Network devices for cairn's own TCP/IP stack (`cairn-net`): [`tap::Tap`] and
//! [`xdp::XdpDevice`], both implementing [`cairn_net::device::Device`].
//!
//! - **TAP** moves frames through `/dev/net/tun` with one `read`/`writev` per frame: simple,
//!   works everywhere, a system call per frame.
//! - **AF_XDP** shares rings and a frame area (UMEM) with the kernel: frames arrive in UMEM
//!   frames lent to the stack as IOBufs without a copy, and one `sendto` kicks a whole batch of
//!   transmissions (copy mode on veth, zero copy where the driver supports it).
//!
//! # How an event loop drives a device
//!
//! A device never blocks and never calls back; the core that owns it polls it:
//!
//! 1. `while let Some(frame) = device.receive() { stack.input(frame) }`, bounded per turn;
//! 2. the stack's output goes to `device.transmit(chain)`, and `DeviceError::Full` leaves the
//!    chain with the stack to retry next turn;
//! 3. `device.flush()` once per turn publishes the queued transmissions (AF_XDP: one producer
//!    store and at most a few `sendto` kicks; it also reclaims completed frames);
//! 4. when a turn found no frame, the core waits on the device's `raw_fd()` (readable when a
//!    frame waits) together with its timers, with [`readable`] on a cairn-hosted core (an
//!    io_uring poll) or `poll(2)` elsewhere, then goes back to step 1.
//!
//! A device and the IOBufs it lends are `Send`; a device is used by one core at a time.
//! Frames the stack keeps (a TCP receive queue) stay lent until dropped, so a stack that holds
//! many frames long should copy them out (the device's pool is finite).

mod frames;
pub mod iface;
mod readiness;
pub mod tap;
pub mod xdp;

pub use readiness::readable;
pub use tap::{Tap, TapConfig, TapCounters};
pub use xdp::{XdpAttach, XdpBind, XdpConfig, XdpCounters, XdpDevice, XdpStatistics};
