//! Whole-string table: an open-addressing hash table from a training string to the
//! smallest index holding it and its multiplicity. Exact-copy lookups then cost one
//! probe and one comparison instead of a suffix-array search.

use rayon::prelude::*;

use super::codes::Code;

#[derive(Debug)]
pub struct StringTable {
    mask: usize,
    /// `(fingerprint << 32) | (index + 1)`; 0 = empty.
    slots: Vec<u64>,
    counts: Vec<u32>,
}

#[inline(always)]
fn hash_codes(it: impl Iterator<Item = u32>) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for c in it {
        h = (h ^ c as u64)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }
    // splitmix64 finalizer
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

impl StringTable {
    pub fn build<T: Code>(text: &[T], num_strings: usize, d: usize) -> Self {
        let size = (2 * num_strings).next_power_of_two().max(16);
        let mask = size - 1;
        let hashes: Vec<u64> = text
            .par_chunks(d + 1)
            .map(|row| hash_codes(row[..d].iter().map(|c| c.get())))
            .collect();
        let mut slots = vec![0u64; size];
        let mut counts = vec![0u32; size];
        for (i, &h) in hashes.iter().enumerate() {
            let fp = h >> 32;
            let row = &text[i * (d + 1)..i * (d + 1) + d];
            let mut k = h as usize & mask;
            loop {
                let e = slots[k];
                if e == 0 {
                    slots[k] = (fp << 32) | (i as u64 + 1);
                    counts[k] = 1;
                    break;
                }
                if e >> 32 == fp {
                    let j = (e & 0xFFFF_FFFF) as usize - 1;
                    let other = &text[j * (d + 1)..j * (d + 1) + d];
                    if other.iter().zip(row).all(|(a, b)| a.get() == b.get()) {
                        counts[k] = counts[k].saturating_add(1);
                        break;
                    }
                }
                k = (k + 1) & mask;
            }
        }
        StringTable {
            mask,
            slots,
            counts,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        12 * self.slots.len()
    }

    /// (smallest index, multiplicity) of the training string equal to `c`, if any.
    #[inline]
    pub fn find<T: Code>(&self, text: &[T], d: usize, c: &[u32]) -> Option<(usize, u32)> {
        let h = hash_codes(c.iter().copied());
        let fp = h >> 32;
        let mut k = h as usize & self.mask;
        loop {
            let e = self.slots[k];
            if e == 0 {
                return None;
            }
            if e >> 32 == fp {
                let j = (e & 0xFFFF_FFFF) as usize - 1;
                let row = &text[j * (d + 1)..j * (d + 1) + d];
                if row.iter().zip(c).all(|(a, &b)| a.get() == b) {
                    return Some((j, self.counts[k]));
                }
            }
            k = (k + 1) & self.mask;
        }
    }
}
