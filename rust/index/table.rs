//! Whole-string table: an open-addressing hash table from a training string to the
//! smallest index holding it and its multiplicity. Exact-copy lookups then cost one
//! probe and one comparison instead of a suffix-array search.

use rayon::prelude::*;

use super::codes::{Alphabet, Code, Token};

#[derive(Debug)]
pub struct StringTable {
    mask: usize,
    /// `(fingerprint << 32) | (index + 1)`; 0 = empty.
    slots: Vec<u64>,
    counts: Vec<u32>,
}

#[inline(always)]
fn hash_tokens(it: impl Iterator<Item = i64>) -> u64 {
    // Hashes token values (not codes), so queries of any dtype hash without encoding.
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for t in it {
        h = (h.rotate_left(23) ^ t as u64).wrapping_mul(0x0000_0100_0000_01B3);
    }
    // splitmix64 finalizer
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

impl StringTable {
    pub fn build<T: Code>(text: &[T], num_strings: usize, d: usize, alphabet: &Alphabet) -> Self {
        let size = (2 * num_strings).next_power_of_two().max(16);
        let mask = size - 1;
        let hashes: Vec<u64> = text
            .par_chunks(d + 1)
            .map(|row| hash_tokens(row[..d].iter().map(|c| alphabet.decode(c.get()) as i64)))
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

    /// (smallest index, multiplicity) of the training string equal to `q`, if any.
    #[inline]
    pub fn find<T: Code, Q: Token>(
        &self,
        text: &[T],
        d: usize,
        alphabet: &Alphabet,
        q: &[Q],
    ) -> Option<(usize, u32)> {
        let h = hash_tokens(q.iter().map(|t| t.to_i64()));
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
                if row
                    .iter()
                    .zip(q)
                    .all(|(a, b)| a.get() == alphabet.encode(b.to_i64()))
                {
                    return Some((j, self.counts[k]));
                }
            }
            k = (k + 1) & self.mask;
        }
    }
}
