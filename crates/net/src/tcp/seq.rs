//! Sequence numbers (RFC 9293 §3.4) held as 64-bit stream positions.
//!
//! The wire carries 32-bit sequence numbers that wrap; comparing them needs modular arithmetic
//! everywhere (RFC 9293 §3.4, "SEQ.LT" and friends), which is where TCP implementations grow
//! their subtlest bugs. This stack instead keeps every sequence variable of a connection as an
//! `i64` *position* counted from the initial sequence number of its direction (the SYN is at
//! position 0, the first data octet at position 1), so positions only grow and compare with
//! plain `<`. A wire number is turned into a position by [`unwrap`] relative to a nearby known
//! position: the 32-bit difference, read as signed, is within ±2^31 of it, which RFC 9293's
//! window rules guarantee for every segment that can be acceptable.

/// The position of wire sequence number `seq`, given that position `base_pos` has wire number
/// `base_seq`: `seq` is taken to lie within ±2^31 of `base_pos`.
pub(crate) fn unwrap(seq: u32, base_seq: u32, base_pos: i64) -> i64 {
    base_pos + i64::from(seq.wrapping_sub(base_seq) as i32)
}

/// The wire sequence number of position `pos` in a direction whose initial sequence number is
/// `isn` (reduction modulo 2^32 is the point of the cast).
pub(crate) fn wrap(isn: u32, pos: i64) -> u32 {
    isn.wrapping_add(pos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_the_wrap() {
        let isn = u32::MAX - 10;
        for pos in [0i64, 1, 10, 11, 12, 1 << 20, (1 << 32) + 5, (3 << 32) + 77] {
            let seq = wrap(isn, pos);
            // Relative to a nearby base on either side.
            let base = pos - 1000;
            assert_eq!(unwrap(seq, wrap(isn, base), base), pos);
            let base = pos + 1000;
            assert_eq!(unwrap(seq, wrap(isn, base), base), pos);
        }
    }

    #[test]
    fn old_numbers_come_out_below_the_base() {
        let isn = 7;
        assert_eq!(unwrap(wrap(isn, 100), wrap(isn, 5000), 5000), 100);
        assert_eq!(unwrap(wrap(isn, 0).wrapping_sub(5), wrap(isn, 0), 0), -5);
    }
}
