//! Waiting for a device's descriptor from a cairn core: one io_uring poll.
//!
//! The stack's core polls a device ([`Device::receive`](cairn_net::device::Device::receive))
//! while frames keep coming; when a poll finds nothing, it waits for the descriptor instead of
//! spinning. That wait is an `IORING_OP_POLL_ADD` on the core's ring, so it joins every other
//! I/O the core waits for in one `io_uring_enter`, and the core sleeps until a frame, a timer
//! or another core's doorbell wakes it (the adaptive polling of EbbRT and the user-level
//! sandboxing paper: poll while busy, block when idle).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types};

use crate::reactor::Op;

/// Resolves when `fd` is readable (a TAP frame waits, an AF_XDP receive ring is not empty).
/// Must run on a cairn-hosted core.
pub async fn readable(fd: RawFd) -> io::Result<()> {
    let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32).build();
    // SAFETY: a poll points to no memory; the descriptor is the caller's, and if it closes
    // while the poll is armed the kernel completes the poll with an error.
    let (completion, ()) = unsafe { Op::start(entry, ()) }.await;
    completion.into_result().map(drop)
}
