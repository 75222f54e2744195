//! The key hash: a small multiply-fold hash in the style of wyhash (Wang Yi, 2019).
//!
//! Keys are at most 250 bytes (`protocol.txt`, "Keys"), so the hash is dominated by its fixed
//! cost: the key is read 8 bytes at a time, each word folded into the state with one 64x64->128
//! multiply, and the result finalised with one more. It is not keyed and makes no claim against
//! adversarial keys (neither does memcached's murmur3); what it must do is spread keys over the
//! index's buckets and over shards, which the tests check.

/// Multiplies `a` by `b` as 128-bit numbers and folds the two halves together.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Reads up to 8 bytes (little-endian, zero-padded).
#[inline(always)]
fn read_tail(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// Hashes a key to 64 well-mixed bits.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    let mut state = P0 ^ (key.len() as u64).wrapping_mul(P1);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        state = fold_mul(state ^ u64::from_le_bytes(word), P1);
    }
    state = fold_mul(state ^ read_tail(chunks.remainder()) ^ P2, P3);
    fold_mul(state, P0 ^ P2)
}

/// The shard (of `count`) that owns a key: a multiply-shift of the key's hash, so the choice
/// uses all of the hash's bits and stays independent of the bucket bits the index takes from
/// the low end.
#[inline]
pub fn shard_of(key: &[u8], count: usize) -> usize {
    let mixed = hash_key(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    ((mixed * count as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    #[test]
    fn different_keys_hash_differently() {
        let mut seen = alloc::collections::BTreeSet::new();
        for i in 0..20_000u32 {
            assert!(seen.insert(hash_key(format!("key:{i}").as_bytes())));
        }
        assert_ne!(hash_key(b""), hash_key(b"\0"));
        assert_ne!(hash_key(b"abcdefgh"), hash_key(b"abcdefgh\0"));
    }

    #[test]
    fn low_bits_spread_over_buckets() {
        let buckets = 256usize;
        let mut counts = vec![0u32; buckets];
        let n = 256 * 200;
        for i in 0..n {
            counts[(hash_key(format!("user:{i}").as_bytes()) as usize) & (buckets - 1)] += 1;
        }
        // Expected 200 per bucket; a decent hash stays well within +-35%.
        assert!(counts.iter().all(|&c| (130..=270).contains(&c)), "{counts:?}");
    }

    #[test]
    fn shards_are_balanced() {
        for count in [1usize, 2, 3, 4, 7, 16] {
            let mut counts = vec![0u32; count];
            let n = 10_000 * count;
            for i in 0..n {
                let shard = shard_of(format!("k{i}").as_bytes(), count);
                assert!(shard < count);
                counts[shard] += 1;
            }
            assert!(counts.iter().all(|&c| (9_000..=11_000).contains(&c)), "{counts:?}");
        }
    }
}
