//! Small text helpers for replies: decimal formatting without allocation, the number parsing
//! memcached does with `strtoull`/`strtol` (re-exported from [`crate::cnum`]), and the
//! base64 encoding of binary keys echoed by meta commands (RFC 4648, with padding, as
//! memcached's `base64.c`).

use alloc::vec::Vec;

/// The decimal digits of `n`: the buffer's first `len` bytes.
#[inline]
pub fn u64_digits(mut n: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = buf.len() - i;
    buf.copy_within(i.., 0);
    (buf, len)
}

/// Appends the decimal form of `n`.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let (buf, len) = u64_digits(n);
    out.extend_from_slice(&buf[..len]);
}

/// Appends the decimal form of `n`, with a sign when negative.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

pub(crate) use crate::cnum::{
    c_strtol as parse_strtol, c_strtoul as parse_strtoul, c_strtoull as parse_strtoull,
};

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the base64 encoding of `bytes` (standard alphabet, padded).
pub fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            out.push(BASE64[(n >> shift) as usize & 63]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                BASE64[(n >> 18) as usize & 63],
                BASE64[(n >> 12) as usize & 63],
            ]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            for shift in [18, 12, 6] {
                out.push(BASE64[(n >> shift) as usize & 63]);
            }
            out.push(b'=');
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn fmt(n: u64) -> Vec<u8> {
        let mut v = vec![];
        push_u64(&mut v, n);
        v
    }

    #[test]
    fn formats_decimals() {
        assert_eq!(fmt(0), b"0");
        assert_eq!(fmt(109), b"109");
        assert_eq!(fmt(u64::MAX), b"18446744073709551615");
        let mut v = vec![];
        push_i64(&mut v, -29);
        assert_eq!(v, b"-29");
    }

    #[test]
    fn strtoull_like_memcached() {
        // Values memcached 1.6.18 accepted or refused for incr (value + "\r\n").
        assert_eq!(parse_strtoull(b"10\r\n"), Some(10));
        assert_eq!(parse_strtoull(b"9 \r\n"), Some(9));
        assert_eq!(parse_strtoull(b" 12\r\n"), Some(12));
        assert_eq!(parse_strtoull(b"+12\r\n"), Some(12));
        assert_eq!(parse_strtoull(b"-0\r\n"), Some(0));
        assert_eq!(parse_strtoull(b"-5\r\n"), None);
        assert_eq!(parse_strtoull(b"12a\r\n"), None);
        assert_eq!(parse_strtoull(b"\r\n"), None);
        assert_eq!(parse_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_strtoull(b"18446744073709551616"), None);
        assert_eq!(parse_strtoull(b"-18446744073709551615"), Some(1));
    }

    #[test]
    fn strtoul_and_strtol_keep_the_low_32_bits() {
        assert_eq!(parse_strtoul(b"4294967296"), Some(0));
        assert_eq!(parse_strtoul(b"-1"), None);
        assert_eq!(parse_strtol(b"-1"), Some(-1));
        assert_eq!(parse_strtol(b"2147483647"), Some(i32::MAX));
        // memcached 1.6.18 took `mg foo T2147483648 t` (and `touch foo 2147483648`): strtol on
        // a 64-bit long, then the low 32 bits.
        assert_eq!(parse_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(parse_strtol(b""), None);
        assert_eq!(parse_strtol(b"x"), None);
        // A NUL ends the digits as it ends a C string (a stored value read in place).
        assert_eq!(parse_strtoull(b"12\0x"), Some(12));
    }

    #[test]
    fn base64_round_numbers() {
        let mut v = vec![];
        push_base64(&mut v, b"m1");
        assert_eq!(v, b"bTE=");
        v.clear();
        push_base64(&mut v, b"foobar");
        assert_eq!(v, b"Zm9vYmFy");
        v.clear();
        push_base64(&mut v, b"f");
        assert_eq!(v, b"Zg==");
    }
}
