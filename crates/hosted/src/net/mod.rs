//! TCP and UDP on the kernel's sockets, driven by the core's io_uring, taking and giving IOBufs.
//!
//! These let appliances run on cairn's event loops before cairn's own network stack exists, with
//! the same shape that stack offers (EbbRT, "Network Stack"): received data arrives as IOBufs
//! owned by the application, and sends take IOBufs (or chains) whose memory the kernel reads in
//! place through a gather list, so cairn copies nothing on either path. (The kernel's own copy
//! between socket buffers and user memory remains; removing it is the job of cairn-net.)
//!
//! A socket belongs to the core that made it: its operations run on that core's ring and its
//! futures are not `Send`. [`TcpListener::bind_per_core`] makes one listening socket per core on
//! the same address with `SO_REUSEPORT`; the kernel spreads connections over them by flow hash,
//! and each core accepts (with multishot accept) and serves its own.

mod addr;
pub mod echo;
mod socket;
mod stream;
mod tcp;
mod udp;
pub mod unix;

pub use socket::ListenSocket;
pub use tcp::{TcpListener, TcpStream};
pub use udp::{UdpSocket, MAX_DATAGRAM};

/// Bytes of headroom left in front of received data, so a protocol can prepend a header to a
/// received buffer without a copy.
pub const RECV_HEADROOM: usize = 64;

/// How much one receive asks for.
pub const RECV_CAPACITY: usize = 16 * 1024;
