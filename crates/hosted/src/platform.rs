//! [`HostedPlatform`]: cairn-rt's [`Platform`] on Linux.
//!
//! Device completions are the calling core's io_uring completions; blocking is a wait on that
//! ring with a timeout; the doorbell is an eventfd per core whose read is always posted on the
//! core's ring, so a write from any thread ends the core's wait.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use cairn_rt::platform::Platform;
use cairn_rt::CoreId;

use crate::reactor::Reactor;

/// The Linux platform: a monotonic clock, and per core an eventfd doorbell and an io_uring.
pub struct HostedPlatform {
    cores: usize,
    origin: Instant,
    doorbells: Vec<OwnedFd>,
}

impl HostedPlatform {
    /// A platform for `cores` cores. It lives for the rest of the program.
    pub fn new(cores: usize) -> io::Result<&'static HostedPlatform> {
        let doorbells = (0..cores).map(|_| eventfd()).collect::<io::Result<Vec<_>>>()?;
        Ok(Box::leak(Box::new(HostedPlatform { cores, origin: Instant::now(), doorbells })))
    }

    /// A second handle to `core`'s doorbell, for its reactor to read.
    pub(crate) fn doorbell_for(&self, core: CoreId) -> io::Result<OwnedFd> {
        self.doorbells[core].try_clone()
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory arguments; a non-negative result is a new fd we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Platform for HostedPlatform {
    fn core_count(&self) -> usize {
        self.cores
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn poll_devices(&self) -> usize {
        match Reactor::try_current() {
            Some(r) => {
                r.collect();
                r.dispatch()
            }
            None => 0,
        }
    }

    fn flush_submissions(&self) {
        if let Some(r) = Reactor::try_current() {
            r.flush();
        }
    }

    fn block(&self, deadline_ns: Option<u64>) {
        let Some(r) = Reactor::try_current() else { return };
        let timeout = deadline_ns.map(|d| d.saturating_sub(self.now_ns()).max(1));
        r.wait(timeout);
    }

    fn wake(&self, core: CoreId) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd this platform owns. A full
        // counter (EAGAIN) already means "wake up", so the result needs no handling.
        unsafe {
            libc::write(
                self.doorbells[core].as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            );
        }
    }
}
