//! The mixed-radix enumeration of strings: index = root, then the rule choice of
//! every internal node, level by level, left to right (root most significant):
//! `index = ((root * m + j_0) * m + j_1) * m + ...`.

use num_bigint::BigUint;
use num_traits::ToPrimitive;
use rayon::prelude::*;

use super::sample::{Sampled, CHUNK};

/// Per-row derivation output: symbols and rule indices of the internal nodes in
/// level order (`K = (d-1)/(s-1)` entries each).
type TreeRow<'a> = Option<(&'a mut [i64], &'a mut [i64])>;
use super::{Grammar, Token};
use crate::error::{CoreError, CoreResult};

/// String indices: `u64` when `num_strings` fits, arbitrary precision otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    Small(Vec<u64>),
    Big(Vec<BigUint>),
}

impl Index {
    pub fn len(&self) -> usize {
        match self {
            Index::Small(v) => v.len(),
            Index::Big(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Grammar {
    /// Digits of `idx`: `digits[0]` the root, `digits[1 + t]` the rule of node `t`.
    fn digits_small(&self, mut idx: u64, digits: &mut [u32]) {
        let m = self.m as u64;
        if m.is_power_of_two() {
            let (sh, mask) = (m.trailing_zeros(), m - 1);
            for dgt in digits[1..].iter_mut().rev() {
                *dgt = (idx & mask) as u32;
                idx = idx.checked_shr(sh).unwrap_or(0);
            }
        } else {
            for dgt in digits[1..].iter_mut().rev() {
                *dgt = (idx % m) as u32;
                idx /= m;
            }
        }
        digits[0] = idx as u32;
    }

    fn digits_big(&self, idx: &BigUint, digits: &mut [u32]) {
        // Peel off as many base-m digits as fit in a u64 per big division.
        let m = self.m as u64;
        let mut per = 1u32;
        let mut mk = m;
        while let Some(next) = mk.checked_mul(m) {
            mk = next;
            per += 1;
        }
        let mkb = BigUint::from(mk);
        let mut x = idx.clone();
        let mut t = digits.len();
        while t > 1 {
            let take = (per as usize).min(t - 1);
            let (q, mut r) = if take == per as usize {
                let r = (&x % &mkb).to_u64().unwrap_or(0);
                (&x / &mkb, r)
            } else {
                let small = m.pow(take as u32);
                let b = BigUint::from(small);
                ((&x / &b), (&x % &b).to_u64().unwrap_or(0))
            };
            for _ in 0..take {
                t -= 1;
                digits[t] = (r % m) as u32;
                r /= m;
            }
            x = q;
        }
        digits[0] = x.to_u32().unwrap_or(0);
    }

    /// Expands a derivation given by its digits into tokens (and the tree).
    fn expand_digits<T: Token>(
        &self,
        digits: &[u32],
        row: &mut [T],
        cur: &mut Vec<u32>,
        next: &mut Vec<u32>,
        mut tree: TreeRow<'_>,
    ) {
        let (m, s) = (self.m as usize, self.s as usize);
        cur.clear();
        cur.push(digits[0]);
        let nl = self.levels as usize;
        for l in 0..nl {
            let off = self.level_offset(l);
            let rules = &self.rules[l];
            next.clear();
            for (i, &a) in cur.iter().enumerate() {
                let j = digits[1 + off + i] as usize;
                let id = a as usize * m + j;
                if let Some((syms, rs)) = tree.as_mut() {
                    syms[off + i] = a as i64;
                    rs[off + i] = j as i64;
                }
                next.extend_from_slice(&rules[id * s..(id + 1) * s]);
            }
            std::mem::swap(cur, next);
        }
        for (o, &c) in row.iter_mut().zip(cur.iter()) {
            *o = T::from_u32(c);
        }
    }

    /// Checks every index is `< num_strings`.
    fn check_index(&self, index: &Index) -> CoreResult<()> {
        let bad = match index {
            Index::Small(v) => v.iter().position(|&i| BigUint::from(i) >= self.num_strings),
            Index::Big(v) => v.iter().position(|i| i >= &self.num_strings),
        };
        match bad {
            None => Ok(()),
            Some(r) => Err(CoreError::value(
                "i",
                format!(
                    "index at position {r} is not in [0, num_strings = {})",
                    self.num_strings
                ),
            )),
        }
    }

    /// The strings with the given indices (and their derivations).
    #[allow(clippy::wrong_self_convention)]
    pub fn from_index<T: Token>(&self, index: &Index, want_tree: bool) -> CoreResult<Sampled<T>> {
        self.check_index(index)?;
        let num = index.len();
        let (d, k) = (self.d, self.internal_nodes());
        let mut tokens: Vec<T> = super::zeroed("i", num * d)?;
        let mut tree = if want_tree {
            Some((super::zeroed("i", num * k)?, super::zeroed("i", num * k)?))
        } else {
            None
        };
        let work = |c: usize, rows: &mut [T], mut t: TreeRow<'_>| {
            let mut digits = vec![0u32; k + 1];
            let (mut cur, mut next) = (Vec::with_capacity(d), Vec::with_capacity(d));
            for (r, row) in rows.chunks_mut(d).enumerate() {
                match index {
                    Index::Small(v) => self.digits_small(v[c * CHUNK + r], &mut digits),
                    Index::Big(v) => self.digits_big(&v[c * CHUNK + r], &mut digits),
                }
                let tr = t
                    .as_mut()
                    .map(|(a, b)| (&mut a[r * k..(r + 1) * k], &mut b[r * k..(r + 1) * k]));
                self.expand_digits(&digits, row, &mut cur, &mut next, tr);
            }
        };
        match tree.as_mut() {
            None => tokens
                .par_chunks_mut(CHUNK * d)
                .enumerate()
                .for_each(|(c, rows)| work(c, rows, None)),
            Some((syms, rs)) => tokens
                .par_chunks_mut(CHUNK * d)
                .zip(syms.par_chunks_mut(CHUNK * k))
                .zip(rs.par_chunks_mut(CHUNK * k))
                .enumerate()
                .for_each(|(c, ((rows, a), b))| work(c, rows, Some((a, b)))),
        }
        Ok(Sampled { tokens, tree })
    }

    /// Index of every string; an error names the first string that does not parse.
    pub fn index<T: Token>(&self, tokens: &[T]) -> CoreResult<Index> {
        let parsed = self.parse(tokens, true)?;
        let k = self.internal_nodes();
        let num = parsed.log_prob.len();
        if let Some(r) = parsed.root.iter().position(|&x| x < 0) {
            return Err(CoreError::value(
                "x",
                format!("string {r} does not parse: it has no index"),
            ));
        }
        let rules = parsed.rules.unwrap_or_default();
        let m = self.m as u64;
        if self.num_strings_u64.is_some() {
            let out = (0..num)
                .into_par_iter()
                .map(|r| {
                    rules[r * k..(r + 1) * k]
                        .iter()
                        .fold(parsed.root[r] as u64, |acc, &j| acc * m + j as u64)
                })
                .collect();
            Ok(Index::Small(out))
        } else {
            let out = (0..num)
                .into_par_iter()
                .map(|r| {
                    // Accumulate base-m digits in u64 blocks, then fold them into the big int.
                    let mut acc = BigUint::from(parsed.root[r] as u64);
                    let mut block = 0u64;
                    let mut scale = 1u64;
                    for &j in &rules[r * k..(r + 1) * k] {
                        if scale.checked_mul(m).is_none() {
                            acc = acc * scale + block;
                            block = 0;
                            scale = 1;
                        }
                        block = block * m + j as u64;
                        scale *= m;
                    }
                    acc * scale + block
                })
                .collect();
            Ok(Index::Big(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_small_and_big() {
        let g = Grammar::random(6, 6, 4, 2, 4, 0, None, None).unwrap();
        let x = g.sample::<u8>(3000, 1, false).unwrap().tokens;
        let idx = g.index(&x).unwrap();
        assert!(matches!(idx, Index::Small(_)));
        assert_eq!(g.from_index::<u8>(&idx, false).unwrap().tokens, x);

        let big = Grammar::random(7, 3, 5, 2, 6, 0, None, None).unwrap();
        assert!(big.num_strings_u64.is_none());
        let x = big.sample::<u8>(50, 2, false).unwrap().tokens;
        let idx = big.index(&x).unwrap();
        assert!(matches!(idx, Index::Big(_)));
        assert_eq!(big.from_index::<u8>(&idx, false).unwrap().tokens, x);
    }

    #[test]
    fn first_and_last_index() {
        let g = Grammar::random(3, 2, 2, 2, 2, 5, None, None).unwrap();
        let last = g.num_strings_u64.unwrap() - 1;
        let out = g
            .from_index::<u8>(&Index::Small(vec![0, last]), true)
            .unwrap();
        let (syms, rules) = out.tree.unwrap();
        assert_eq!(&syms[..3], &[0, g.rules[0][0] as i64, g.rules[0][1] as i64]);
        assert_eq!(&rules[..3], &[0, 0, 0]);
        assert_eq!(syms[3], 1);
        assert_eq!(&rules[3..], &[1, 1, 1]);
        assert!(g
            .from_index::<u8>(&Index::Small(vec![last + 1]), false)
            .is_err());
    }
}
