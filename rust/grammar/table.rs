//! Reverse lookup of one level's rules: children tuple -> rule id (`sym * m + j`).
//!
//! Small tuple spaces (`v**s <= DENSE_LIMIT`) use a dense array indexed by the
//! tuple's base-`v` code (one load per node); larger ones an open-addressing table
//! whose probes compare against the rule table itself, so any `v` and `s` work.

use super::NONE;

const DENSE_LIMIT: u128 = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) enum TupleTable {
    Dense {
        v: u32,
        slots: Vec<u32>,
    },
    /// `key` is the tuple packed exactly (`bits` per symbol) when it fits in 64
    /// bits (`exact`), else a hash verified against the rule table on a match.
    Hashed {
        mask: usize,
        slots: Vec<Slot>,
        bits: u32,
        exact: bool,
    },
}

/// One open-addressing slot: the key stored inline so a probe touches one line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    key: u64,
    id: u32,
}

#[inline(always)]
fn mix(key: u64) -> u64 {
    let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 31)
}

impl TupleTable {
    /// Builds the table for `children` (`count * s` entries, rule id `r` owns
    /// `children[r*s..(r+1)*s]`). Tuples must already be known to be distinct.
    pub(crate) fn build(children: &[u32], s: usize, v: u32) -> TupleTable {
        let count = children.len() / s;
        let space = (v as u128).checked_pow(s as u32).unwrap_or(u128::MAX);
        if space <= DENSE_LIMIT {
            let mut slots = vec![NONE; space as usize];
            for r in 0..count {
                let code = dense_code(&children[r * s..(r + 1) * s], v);
                slots[code] = r as u32;
            }
            TupleTable::Dense { v, slots }
        } else {
            let bits = 32 - (v - 1).leading_zeros();
            let exact = (bits as usize) * s <= 64;
            let size = (2 * count).max(16).next_power_of_two();
            let mask = size - 1;
            let mut slots = vec![Slot { key: 0, id: NONE }; size];
            for r in 0..count {
                let key = tuple_key(&children[r * s..(r + 1) * s], bits, exact);
                let mut i = mix(key) as usize & mask;
                while slots[i].id != NONE {
                    i = (i + 1) & mask;
                }
                slots[i] = Slot { key, id: r as u32 };
            }
            TupleTable::Hashed {
                mask,
                slots,
                bits,
                exact,
            }
        }
    }

    /// Rule id whose children equal `tuple`, or `NONE`. Every entry of `tuple`
    /// must be `< v`.
    #[inline(always)]
    pub(crate) fn get(&self, tuple: &[u32], children: &[u32]) -> u32 {
        match self {
            TupleTable::Dense { v, slots } => slots[dense_code(tuple, *v)],
            TupleTable::Hashed {
                mask,
                slots,
                bits,
                exact,
            } => {
                let s = tuple.len();
                let key = tuple_key(tuple, *bits, *exact);
                let mut i = mix(key) as usize & mask;
                loop {
                    let slot = slots[i];
                    if slot.id == NONE {
                        return NONE;
                    }
                    if slot.key == key {
                        let r = slot.id as usize;
                        if *exact || &children[r * s..(r + 1) * s] == tuple {
                            return slot.id;
                        }
                    }
                    i = (i + 1) & mask;
                }
            }
        }
    }
}

#[inline(always)]
fn hash_tuple(children: &[u32]) -> u64 {
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    for &c in children {
        h = (h ^ c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    h
}

#[inline(always)]
fn tuple_key(tuple: &[u32], bits: u32, exact: bool) -> u64 {
    if exact {
        tuple.iter().fold(0u64, |k, &c| (k << bits) | c as u64)
    } else {
        hash_tuple(tuple)
    }
}

#[inline(always)]
fn dense_code(tuple: &[u32], v: u32) -> usize {
    let mut code = 0usize;
    for &c in tuple {
        code = code * v as usize + c as usize;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_hashed_agree() {
        let children = vec![0, 1, 4, 4, 2, 0];
        let dense = TupleTable::build(&children, 2, 5);
        assert!(matches!(dense, TupleTable::Dense { .. }));
        // The same tuples in a large alphabet (hashed, exact keys) and with s = 8
        // over 2**20 symbols (hashed, verified keys).
        let hashed = TupleTable::build(&children, 2, 1 << 20);
        assert!(matches!(hashed, TupleTable::Hashed { exact: true, .. }));
        for a in 0..5 {
            for b in 0..5 {
                let t = [a, b];
                let want = (0..3)
                    .find(|&r| children[r * 2..r * 2 + 2] == t)
                    .map_or(NONE, |r| r as u32);
                assert_eq!(dense.get(&t, &children), want);
                assert_eq!(hashed.get(&t, &children), want);
            }
        }
        let wide: Vec<u32> = (0..64u32).map(|x| x * 7919 % (1 << 20)).collect();
        let table = TupleTable::build(&wide, 8, 1 << 20);
        assert!(matches!(table, TupleTable::Hashed { exact: false, .. }));
        for r in 0..8 {
            assert_eq!(table.get(&wide[r * 8..(r + 1) * 8], &wide), r as u32);
        }
        let mut other = wide[..8].to_vec();
        other[7] += 1;
        assert_eq!(table.get(&other, &wide), NONE);
    }
}
