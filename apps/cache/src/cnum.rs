//! Numbers read as memcached reads them: C's `strtoull`/`strtol` on a 64-bit machine behind
//! memcached's `safe_strtoull`/`safe_strtoul`/`safe_strtol` (`util.c`). The parser reads
//! request tokens with these, the executor the digits stored in items (`incr`/`decr`) and meta
//! tokens; one implementation keeps the two in step.

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The decimal number at the start of `token` as C's `strto*` functions read it: leading
/// white space, an optional sign, at least one digit. memcached's `safe_*` wrappers then
/// insist that the digits end the token or are followed by white space. Returns whether it
/// was negative and its magnitude, `None` for a magnitude beyond `u64` (`ERANGE`).
fn c_decimal(token: &[u8]) -> Option<(bool, Option<u64>)> {
    let mut i = token.iter().take_while(|&&b| is_c_space(b)).count();
    let negative = match token.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = token[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let magnitude = token[i..i + digits]
        .iter()
        .try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')));
    // A NUL ends a C string: it follows a stored value's digits where memcached reads an item
    // in place (`incr` on `12\0x` sees 12). Protocol tokens never hold one (a line ends there).
    match token.get(i + digits) {
        None | Some(0) => Some((negative, magnitude)),
        Some(&b) if is_c_space(b) => Some((negative, magnitude)),
        Some(_) => None,
    }
}

/// memcached's `safe_strtoull`: a 64-bit unsigned number. A negative number is taken modulo
/// 2^64 (as `strtoull` does) unless the result is 2^63 or more.
pub(crate) fn c_strtoull(token: &[u8]) -> Option<u64> {
    let (negative, magnitude) = c_decimal(token)?;
    let value = if negative { magnitude?.wrapping_neg() } else { magnitude? };
    if value > i64::MAX as u64 && token.contains(&b'-') {
        return None;
    }
    Some(value)
}

/// memcached's `safe_strtoul` into a `uint32_t`: [`c_strtoull`]'s rules, then the low 32
/// bits.
pub(crate) fn c_strtoul(token: &[u8]) -> Option<u32> {
    // Keeping the low 32 bits is what memcached does.
    c_strtoull(token).map(|v| v as u32)
}

/// memcached's `safe_strtol` into an `int32_t`: `strtol` on a 64-bit `long` (out of range
/// fails), then the low 32 bits.
pub(crate) fn c_strtol(token: &[u8]) -> Option<i32> {
    let (negative, magnitude) = c_decimal(token)?;
    let magnitude = magnitude?;
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    // Keeping the low 32 bits is what memcached does.
    Some(value as i32)
}
