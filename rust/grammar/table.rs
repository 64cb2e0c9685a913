//! Reverse lookup of one level's rules: children tuple -> rule id (`sym * m + j`).
//!
//! Small tuple spaces (`v**s <= DENSE_LIMIT`) use a dense array indexed by the
//! tuple's base-`v` code (one load per node); larger ones an open-addressing table
//! whose probes compare against the rule table itself, so any `v` and `s` work.

use super::NONE;

const DENSE_LIMIT: u128 = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) enum TupleTable {
    Dense { v: u32, slots: Vec<u32> },
    Hashed { mask: usize, slots: Vec<u32> },
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
            let size = (2 * count).max(16).next_power_of_two();
            let mask = size - 1;
            let mut slots = vec![NONE; size];
            for r in 0..count {
                let mut i = hash_tuple(&children[r * s..(r + 1) * s]) as usize & mask;
                while slots[i] != NONE {
                    i = (i + 1) & mask;
                }
                slots[i] = r as u32;
            }
            TupleTable::Hashed { mask, slots }
        }
    }

    /// Rule id whose children equal `tuple`, or `NONE`. Every entry of `tuple`
    /// must be `< v`.
    #[inline(always)]
    pub(crate) fn get(&self, tuple: &[u32], children: &[u32]) -> u32 {
        match self {
            TupleTable::Dense { v, slots } => slots[dense_code(tuple, *v)],
            TupleTable::Hashed { mask, slots } => {
                let s = tuple.len();
                let mut i = hash_tuple(tuple) as usize & mask;
                loop {
                    let r = slots[i];
                    if r == NONE {
                        return NONE;
                    }
                    let ru = r as usize;
                    if &children[ru * s..(ru + 1) * s] == tuple {
                        return r;
                    }
                    i = (i + 1) & mask;
                }
            }
        }
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
        // v=5, s=2: 3 rules.
        let children = vec![0, 1, 4, 4, 2, 0];
        let dense = TupleTable::build(&children, 2, 5);
        assert!(matches!(dense, TupleTable::Dense { .. }));
        let size = 16;
        let mut slots = vec![NONE; size];
        for r in 0..3 {
            let mut i = hash_tuple(&children[r * 2..r * 2 + 2]) as usize & (size - 1);
            while slots[i] != NONE {
                i = (i + 1) & (size - 1);
            }
            slots[i] = r as u32;
        }
        let hashed = TupleTable::Hashed {
            mask: size - 1,
            slots,
        };
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
    }
}
