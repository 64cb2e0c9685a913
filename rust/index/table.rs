//! Whole-string table: an open-addressing hash table from a training string to the
//! smallest index holding it and its multiplicity. Exact-copy lookups then cost one
//! probe and one comparison instead of a suffix-array search.

use rayon::prelude::*;

use super::codes::{Alphabet, Code};
use crate::token::Token;

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
    // Four independent lanes (token i goes to lane i % 4) shorten the multiply chain.
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes = [K, K ^ 1, K ^ 2, K ^ 3];
    for (i, t) in it.enumerate() {
        let l = &mut lanes[i & 3];
        *l = (*l ^ t as u64)
            .wrapping_mul(0xFF51_AFD7_ED55_8CCD)
            .rotate_left(29);
    }
    let mut h =
        lanes[0] ^ lanes[1].rotate_left(16) ^ lanes[2].rotate_left(32) ^ lanes[3].rotate_left(48);
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

    /// (smallest index, multiplicity) of the training string equal to `q` (hash `h`).
    #[inline]
    fn find_hashed<T: Code, Q: Token>(
        &self,
        text: &[T],
        d: usize,
        alphabet: &Alphabet,
        q: &[Q],
        h: u64,
    ) -> Option<(usize, u32)> {
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
                let equal = match alphabet {
                    // code = token + 1: compare without a per-token alphabet dispatch
                    Alphabet::Shift { sigma } => row.iter().zip(q).all(|(a, b)| {
                        let t = b.to_i64();
                        (t as u64) < *sigma as u64 && a.get() as i64 == t + 1
                    }),
                    Alphabet::Dense { .. } => row
                        .iter()
                        .zip(q)
                        .all(|(a, b)| a.get() == alphabet.encode(b.to_i64())),
                };
                if equal {
                    return Some((j, self.counts[k]));
                }
            }
            k = (k + 1) & self.mask;
        }
    }

    /// [`StringTable::find`] for consecutive rows of `q`, written to `which`/`count`
    /// (left untouched for rows not found). Rows go in batches: hashes first, then the
    /// slot loads, then the candidate rows' first symbols, so the cache misses of a batch
    /// overlap instead of queueing behind each other.
    pub fn find_batch<T: Code, Q: Token>(
        &self,
        text: &[T],
        d: usize,
        alphabet: &Alphabet,
        q: &[Q],
        which: &mut [i64],
        count: &mut [i64],
    ) {
        const B: usize = 32;
        let rows = which.len();
        let mut hashes = [0u64; B];
        let mut first = [0u64; B];
        for start in (0..rows).step_by(B) {
            let m = B.min(rows - start);
            for r in 0..m {
                let row = &q[(start + r) * d..(start + r + 1) * d];
                hashes[r] = hash_tokens(row.iter().map(|t| t.to_i64()));
            }
            for r in 0..m {
                first[r] = self.slots[hashes[r] as usize & self.mask];
            }
            let mut touch = 0u32;
            for r in 0..m {
                let e = first[r];
                if e != 0 && e >> 32 == hashes[r] >> 32 {
                    let j = (e & 0xFFFF_FFFF) as usize - 1;
                    touch ^= text[j * (d + 1)].get();
                }
            }
            std::hint::black_box(touch);
            for r in 0..m {
                if first[r] == 0 {
                    continue;
                }
                let row = &q[(start + r) * d..(start + r + 1) * d];
                if let Some((i, k)) = self.find_hashed(text, d, alphabet, row, hashes[r]) {
                    which[start + r] = i as i64;
                    count[start + r] = k as i64;
                }
            }
        }
    }
}
