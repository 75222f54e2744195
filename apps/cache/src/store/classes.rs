//! memcached's slab classes, kept for reporting: `cls=` in `me`, `stats items`, `stats slabs`.
//!
//! The store does not carve memory into slab pages (see the [`super`] module doc), but
//! memcached's users read per-class statistics, so every item is filed under the class
//! memcached 1.6 would have put it in: chunk sizes start at 96 bytes (a 48-byte item header
//! plus `-n 48`) and grow by the factor 1.25, 8-byte aligned, up to the 512 KiB chunk maximum
//! (`slabs.c`, `slabs_init`). An item's size is memcached's `ITEM_ntotal`: header, key, its
//! NUL, 4 bytes of client flags when they are non-zero, the data with its `\r\n`, and the
//! 8-byte cas (`items.c`, `item_make_header`).

/// memcached's `sizeof(item)` on 64-bit builds.
pub const MEMCACHED_ITEM_HEADER: usize = 48;
/// The slab page size: 1 MiB.
pub const SLAB_PAGE_SIZE: usize = 1024 * 1024;
/// The largest chunk: half a page.
pub const SLAB_CHUNK_MAX: usize = SLAB_PAGE_SIZE / 2;
/// The smallest chunk's data part (`-n`, `settings.chunk_size`).
pub const CHUNK_SIZE: usize = 48;
/// The growth factor (`-f`).
pub const GROWTH_FACTOR: f64 = 1.25;
/// Class ids run from 1 to at most this (memcached's `MAX_NUMBER_OF_SLAB_CLASSES - 1`).
pub const MAX_CLASSES: usize = 63;

/// memcached's `ITEM_ntotal` for an item with this key length, client flags and data length.
pub fn item_total(key_len: usize, client_flags: u32, data_len: usize) -> usize {
    let suffix = if client_flags == 0 { 0 } else { 4 };
    MEMCACHED_ITEM_HEADER + key_len + 1 + suffix + data_len + 2 + 8
}

/// The table of chunk sizes, index = class id (index 0 unused).
#[derive(Clone, Debug)]
pub struct SizeClasses {
    sizes: [u32; MAX_CLASSES + 1],
    largest: u8,
}

impl Default for SizeClasses {
    fn default() -> Self {
        SizeClasses::new()
    }
}

impl SizeClasses {
    /// memcached's default classes.
    pub fn new() -> SizeClasses {
        let mut sizes = [0u32; MAX_CLASSES + 1];
        let mut size = (MEMCACHED_ITEM_HEADER + CHUNK_SIZE) as u32;
        let mut id = 1usize;
        while id < MAX_CLASSES {
            if f64::from(size) >= SLAB_CHUNK_MAX as f64 / GROWTH_FACTOR {
                break;
            }
            // Align to 8 bytes (memcached's CHUNK_ALIGN_BYTES).
            size = (size + 7) & !7;
            sizes[id] = size;
            size = (f64::from(size) * GROWTH_FACTOR) as u32;
            id += 1;
        }
        sizes[id] = SLAB_CHUNK_MAX as u32;
        SizeClasses { sizes, largest: id as u8 }
    }

    /// The class of an item of `total` bytes (memcached's `slabs_clsid`, less its size limit:
    /// anything beyond the largest chunk is a chunked item in the largest class).
    pub fn class_of(&self, total: usize) -> u8 {
        let largest = usize::from(self.largest);
        // Classes are few and sorted: binary search the first size >= total.
        let sizes = &self.sizes[1..=largest];
        let index = sizes.partition_point(|&s| (s as usize) < total);
        (index + 1).min(largest) as u8
    }

    /// The chunk size of class `id`.
    pub fn chunk_size(&self, id: u8) -> usize {
        self.sizes[usize::from(id)] as usize
    }

    /// The largest class id.
    pub fn largest(&self) -> u8 {
        self.largest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_memcached_1_6_18_defaults() {
        // From `stats slabs` of memcached 1.6.18 (-m 64, defaults): class 1 is 96 bytes,
        // class 2 is 120, class 39 is the 524288-byte chunk maximum.
        let classes = SizeClasses::new();
        assert_eq!(classes.chunk_size(1), 96);
        assert_eq!(classes.chunk_size(2), 120);
        assert_eq!(classes.largest(), 39);
        assert_eq!(classes.chunk_size(39), 524_288);
        // `me a` on a 3-byte value with key "a": "cls=1 size=63".
        assert_eq!(item_total(1, 0, 3), 63);
        assert_eq!(classes.class_of(63), 1);
        assert_eq!(classes.class_of(96), 1);
        assert_eq!(classes.class_of(97), 2);
        assert_eq!(classes.class_of(1 << 20), 39);
    }
}
