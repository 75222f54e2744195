//! Counters of one 9P connection: requests by type, errors, flushes and payload bytes.
//!
//! A session updates them as it goes, without atomics (a connection lives on one core), and
//! anyone on that core holding the same `Rc` reads them while it runs.

use core::cell::Cell;

/// The counters of one connection, shared with whoever passed them to
/// [`serve_with_stats`](super::serve_with_stats).
pub struct SessionStats {
    by_type: [Cell<u64>; 256],
    requests: Cell<u64>,
    errors: Cell<u64>,
    flushes: Cell<u64>,
    cancelled: Cell<u64>,
    bytes_read: Cell<u64>,
    bytes_written: Cell<u64>,
    in_flight_peak: Cell<u64>,
}

/// A copy of a connection's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Well-framed messages received, whatever became of them.
    pub requests: u64,
    /// Error replies sent (`Rerror` / `Rlerror`), the interrupted replies of flushes included.
    pub errors: u64,
    /// `Tflush` requests received.
    pub flushes: u64,
    /// Requests that a `Tflush` (or a `Tversion` or the end of the connection) cancelled
    /// while they waited.
    pub cancelled: u64,
    /// Payload bytes sent in `Rread` replies of files.
    pub bytes_read: u64,
    /// Payload bytes the file server accepted from `Twrite` requests.
    pub bytes_written: u64,
    /// The most requests that were waiting at once.
    pub in_flight_peak: u64,
}

impl Default for SessionStats {
    fn default() -> Self {
        SessionStats {
            by_type: [(); 256].map(|()| Cell::new(0)),
            requests: Cell::new(0),
            errors: Cell::new(0),
            flushes: Cell::new(0),
            cancelled: Cell::new(0),
            bytes_read: Cell::new(0),
            bytes_written: Cell::new(0),
            in_flight_peak: Cell::new(0),
        }
    }
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

impl SessionStats {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the counters now.
    pub fn snapshot(&self) -> SessionCounters {
        SessionCounters {
            requests: self.requests.get(),
            errors: self.errors.get(),
            flushes: self.flushes.get(),
            cancelled: self.cancelled.get(),
            bytes_read: self.bytes_read.get(),
            bytes_written: self.bytes_written.get(),
            in_flight_peak: self.in_flight_peak.get(),
        }
    }

    /// Messages received whose header said type `ty` ([`mtype`](crate::codec::mtype)).
    pub fn requests_of_type(&self, ty: u8) -> u64 {
        self.by_type[usize::from(ty)].get()
    }

    pub(crate) fn request(&self, ty: u8) {
        add(&self.requests, 1);
        add(&self.by_type[usize::from(ty)], 1);
    }

    pub(crate) fn error(&self) {
        add(&self.errors, 1);
    }

    pub(crate) fn flush(&self) {
        add(&self.flushes, 1);
    }

    pub(crate) fn cancelled(&self, n: u64) {
        add(&self.cancelled, n);
    }

    pub(crate) fn read(&self, bytes: usize) {
        add(&self.bytes_read, bytes as u64);
    }

    pub(crate) fn written(&self, bytes: u32) {
        add(&self.bytes_written, u64::from(bytes));
    }

    pub(crate) fn in_flight(&self, now: usize) {
        let now = now as u64;
        if now > self.in_flight_peak.get() {
            self.in_flight_peak.set(now);
        }
    }
}
