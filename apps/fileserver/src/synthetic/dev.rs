//! The contents of `dev/zero`, `dev/random` and `dev/time` (Plan 9's cons(3)).
//!
//! `dev/null` needs no code of its own: reads are empty and writes are counted as taken, with
//! no copy and no allocation, since it is what `cairn bench 9p` writes to.

use std::time::{SystemTime, UNIX_EPOCH};

use cairn_9p::errno::{Errno, EIO};
use cairn_rt::iobuf::IoBuf;

/// `count` zero bytes (heap buffers start zeroed, so nothing is written).
pub(crate) fn zeros(count: u32) -> IoBuf {
    let mut buf = IoBuf::with_capacity(count as usize);
    buf.claim_tailroom(count as usize).expect("the buffer has count bytes of room");
    buf
}

/// `count` bytes from the kernel's random source (`getrandom(2)`, which blocks only before the
/// pool is first initialized, early at boot).
pub(crate) fn random(count: u32) -> Result<IoBuf, Errno> {
    let mut buf = zeros(count);
    let bytes = buf.as_mut_slice();
    let mut filled = 0;
    // Bounded: each round fills at least one byte or fails (EINTR retries are bounded too).
    let mut interrupted = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`, which we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
            continue;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) && interrupted < 100 {
            interrupted += 1;
            continue;
        }
        return Err(err.raw_os_error().map_or(EIO, |e| e as Errno));
    }
    Ok(buf)
}

/// The text of `dev/time`, as Plan 9's `readtime` writes it: seconds since the epoch,
/// nanoseconds since the epoch, clock ticks, and ticks per second, right-aligned in fields of
/// 11, 21, 21 and 21 characters, each followed by a space (78 bytes). Here a tick is a
/// nanosecond of the runtime's monotonic clock (`monotonic_ns`), so the frequency is 10^9.
pub(crate) fn time_text(monotonic_ns: u64) -> String {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let nsec = since_epoch.as_nanos().min(u64::MAX as u128) as u64;
    format!(
        "{:>11} {:>21} {:>21} {:>21} ",
        since_epoch.as_secs(),
        nsec,
        monotonic_ns,
        1_000_000_000u64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_zero_and_as_long_as_asked() {
        let z = zeros(4096);
        assert_eq!(z.len(), 4096);
        assert!(z.iter().all(|&b| b == 0));
        assert!(zeros(0).is_empty());
    }

    #[test]
    fn random_fills_the_count_and_differs() {
        let a = random(64).unwrap();
        let b = random(64).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a.as_slice(), b.as_slice(), "two 64-byte draws are equal");
    }

    #[test]
    fn time_text_has_plan9_fields() {
        let t = time_text(12345);
        assert_eq!(t.len(), 12 + 22 * 3);
        let fields: Vec<u64> = t.split_whitespace().map(|f| f.parse().unwrap()).collect();
        assert_eq!(fields.len(), 4);
        assert!(fields[0] > 1_600_000_000, "seconds since the epoch");
        assert_eq!(fields[1] / 1_000_000_000, fields[0]);
        assert_eq!(fields[2], 12345);
        assert_eq!(fields[3], 1_000_000_000);
    }
}
