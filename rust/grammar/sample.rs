//! Sampling strings (and optionally their derivations) from a grammar.
//!
//! Determinism: strings are drawn in fixed chunks of `CHUNK` rows; chunk `c` uses
//! the ChaCha8 stream `c` of the key derived from the seed, so the output does not
//! depend on how rayon schedules the chunks.

use std::collections::{HashMap, HashSet};

use num_bigint::BigUint;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::enumerate::Index;
use super::rules::LevelSampler;
use super::{Grammar, Token};
use crate::error::{CoreError, CoreResult};

/// Rows per RNG stream.
pub(crate) const CHUNK: usize = 1024;
/// Stream of the index draws of unique sampling (chunks use streams 0, 1, ...).
const UNIQUE_STREAM: u64 = u64::MAX - 1;

/// A bit reservoir over a ChaCha8 stream: uniform power-of-two choices take only
/// the bits they need.
pub(crate) struct Bits {
    rng: ChaCha8Rng,
    buf: u64,
    left: u32,
}

impl Bits {
    pub(crate) fn new(seed: u64, stream: u64) -> Bits {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Bits {
            rng,
            buf: 0,
            left: 0,
        }
    }

    #[inline(always)]
    fn take(&mut self, b: u32) -> u32 {
        if b == 0 {
            return 0;
        }
        if self.left < b {
            self.buf = self.rng.next_u64();
            self.left = 64;
        }
        let r = (self.buf & ((1u64 << b) - 1)) as u32;
        self.buf >>= b;
        self.left -= b;
        r
    }

    #[inline(always)]
    fn draw(&mut self, sampler: &LevelSampler, sym: usize, k: usize) -> u32 {
        match sampler {
            LevelSampler::Bits { bits } => self.take(*bits),
            LevelSampler::Alias { threshold, alias } => {
                let r = self.rng.next_u64();
                let col = (((r >> 32) * k as u64) >> 32) as usize;
                let idx = sym * k + col;
                if (r & 0xFFFF_FFFF) < threshold[idx] {
                    col as u32
                } else {
                    alias[idx]
                }
            }
        }
    }
}

/// Per-row derivation output: symbols and rule indices of the internal nodes in
/// level order (`K = (d-1)/(s-1)` entries each).
pub(crate) type TreeRow<'a> = Option<(&'a mut [i64], &'a mut [i64])>;

impl Grammar {
    /// Draws one string into `row`, using `scratch` (at least `d/s` entries).
    #[inline]
    fn sample_row<T: Token>(
        &self,
        bits: &mut Bits,
        row: &mut [T],
        scratch: &mut [u32],
        mut tree: TreeRow<'_>,
    ) {
        let (m, s) = (self.m as usize, self.s as usize);
        scratch[0] = bits.draw(&self.root_sampler, 0, self.n as usize);
        let mut width = 1usize;
        let nl = self.levels as usize;
        for l in 0..nl {
            let rules = &self.rules[l];
            let sampler = &self.samplers[l];
            let off = self.level_offset(l);
            if l + 1 == nl {
                for i in 0..width {
                    let a = scratch[i] as usize;
                    let j = bits.draw(sampler, a, m) as usize;
                    let id = a * m + j;
                    let children = &rules[id * s..(id + 1) * s];
                    for (o, &c) in row[i * s..(i + 1) * s].iter_mut().zip(children) {
                        *o = T::from_u32(c);
                    }
                    if let Some((syms, rs)) = tree.as_mut() {
                        syms[off + i] = a as i64;
                        rs[off + i] = j as i64;
                    }
                }
            } else {
                // In place, right to left: node i's children land at i*s.. >= i.
                for i in (0..width).rev() {
                    let a = scratch[i] as usize;
                    let j = bits.draw(sampler, a, m) as usize;
                    let id = a * m + j;
                    if let Some((syms, rs)) = tree.as_mut() {
                        syms[off + i] = a as i64;
                        rs[off + i] = j as i64;
                    }
                    scratch[i * s..(i + 1) * s].copy_from_slice(&rules[id * s..(id + 1) * s]);
                }
            }
            width *= s;
        }
    }

    /// Fills `out` (`rows * d`) with independent strings; chunk `c` of `CHUNK` rows
    /// uses stream `first_chunk + c`. `tree`, when given, gets `rows * K` symbols
    /// and rule indices.
    pub(crate) fn sample_into<T: Token>(
        &self,
        out: &mut [T],
        seed: u64,
        first_chunk: u64,
        tree: Option<(&mut [i64], &mut [i64])>,
    ) {
        let d = self.d;
        let k = self.internal_nodes();
        let scratch_len = (d / self.s as usize).max(1);
        let work = |c: usize, rows: &mut [T], mut t: TreeRow<'_>| {
            let mut bits = Bits::new(seed, first_chunk + c as u64);
            let mut scratch = vec![0u32; scratch_len];
            for (r, row) in rows.chunks_mut(d).enumerate() {
                let tr = t
                    .as_mut()
                    .map(|(a, b)| (&mut a[r * k..(r + 1) * k], &mut b[r * k..(r + 1) * k]));
                self.sample_row(&mut bits, row, &mut scratch, tr);
            }
        };
        match tree {
            None => out
                .par_chunks_mut(CHUNK * d)
                .enumerate()
                .for_each(|(c, rows)| work(c, rows, None)),
            Some((syms, rs)) => out
                .par_chunks_mut(CHUNK * d)
                .zip(syms.par_chunks_mut(CHUNK * k))
                .zip(rs.par_chunks_mut(CHUNK * k))
                .enumerate()
                .for_each(|(c, ((rows, a), b))| work(c, rows, Some((a, b)))),
        }
    }

    /// `num` strings with replacement (and their derivations if `want_tree`).
    pub fn sample<T: Token>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        let total = self.check_num(num, want_tree)?;
        let mut out = vec![T::from_u32(0); total];
        let mut tree = want_tree.then(|| {
            (
                vec![0i64; num * self.internal_nodes()],
                vec![0i64; num * self.internal_nodes()],
            )
        });
        self.sample_into(
            &mut out,
            seed,
            0,
            tree.as_mut()
                .map(|(a, b)| (a.as_mut_slice(), b.as_mut_slice())),
        );
        Ok(Sampled { tokens: out, tree })
    }

    fn check_num(&self, num: usize, want_tree: bool) -> CoreResult<usize> {
        let k = if want_tree {
            2 * 8 * self.internal_nodes()
        } else {
            0
        };
        let per_row = self.d * 4 + k;
        if (num as u128) * per_row as u128 > 1u128 << 40 {
            return Err(CoreError::value(
                "num",
                format!(
                    "num = {num} strings of d = {} tokens are too large to allocate",
                    self.d
                ),
            ));
        }
        Ok(num * self.d)
    }

    /// `num` distinct strings. Uniform grammars: exact sampling without replacement
    /// (uniform random indices, decoded). Otherwise: draws with replacement and drops
    /// repeats, which tilts the set toward rarer strings relative to the grammar.
    pub fn sample_unique<T: Token>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        self.check_num(num, want_tree)?;
        if BigUint::from(num) > self.num_strings {
            return Err(CoreError::value(
                "num",
                format!(
                    "unique=True needs num <= num_strings, got num = {num} > {}",
                    self.num_strings
                ),
            ));
        }
        if self.uniform {
            let index = self.distinct_indices(num, seed);
            return self.from_index(&index, want_tree);
        }
        let support = self.support_size();
        if num as f64 > support {
            return Err(CoreError::value(
                "num",
                format!("unique=True needs num <= the {support} strings of positive probability, got {num}"),
            ));
        }
        self.sample_unique_rejection(num, seed, want_tree)
    }

    fn sample_unique_rejection<T: Token>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        let (d, k) = (self.d, self.internal_nodes());
        let mut tokens: Vec<T> = Vec::with_capacity(num * d);
        let mut tree =
            want_tree.then(|| (Vec::with_capacity(num * k), Vec::with_capacity(num * k)));
        let mut seen: HashSet<Box<[T]>> = HashSet::with_capacity(num);
        let mut next_chunk = 0u64;
        let mut drawn = 0usize;
        let budget = num.saturating_mul(1000).saturating_add(1 << 22);
        while seen.len() < num {
            if drawn > budget {
                return Err(CoreError::value(
                    "num",
                    format!("drew {drawn} strings without finding {num} distinct ones: the rule probabilities concentrate on too few strings"),
                ));
            }
            let want = num - seen.len();
            let chunks = (want + want / 4).div_ceil(CHUNK).max(1);
            let rows = chunks * CHUNK;
            let mut batch = vec![T::from_u32(0); rows * d];
            let mut bt = want_tree.then(|| (vec![0i64; rows * k], vec![0i64; rows * k]));
            self.sample_into(
                &mut batch,
                seed,
                next_chunk,
                bt.as_mut()
                    .map(|(a, b)| (a.as_mut_slice(), b.as_mut_slice())),
            );
            next_chunk += chunks as u64;
            drawn += rows;
            for (r, row) in batch.chunks(d).enumerate() {
                if seen.len() == num {
                    break;
                }
                if seen.insert(row.into()) {
                    tokens.extend_from_slice(row);
                    if let (Some((ts, tr)), Some((bs, br))) = (tree.as_mut(), bt.as_ref()) {
                        ts.extend_from_slice(&bs[r * k..(r + 1) * k]);
                        tr.extend_from_slice(&br[r * k..(r + 1) * k]);
                    }
                }
            }
        }
        Ok(Sampled { tokens, tree })
    }

    /// `num` distinct indices drawn uniformly without replacement from
    /// `[0, num_strings)`, in random order. Requires `num <= num_strings`.
    pub(crate) fn distinct_indices(&self, num: usize, seed: u64) -> Index {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(UNIQUE_STREAM);
        if let Some(p) = self.num_strings_u64 {
            // Sparse Fisher-Yates: position i of a virtual permutation of [0, p).
            let mut moved: HashMap<u64, u64> = HashMap::with_capacity(num);
            let mut out = Vec::with_capacity(num);
            for i in 0..num as u64 {
                let j = rng.random_range(i..p);
                let vi = *moved.get(&i).unwrap_or(&i);
                let vj = *moved.get(&j).unwrap_or(&j);
                out.push(vj);
                moved.insert(j, vi);
            }
            Index::Small(out)
        } else {
            let p = &self.num_strings;
            let nbits = p.bits();
            let words = nbits.div_ceil(32) as usize;
            let top_mask = if nbits % 32 == 0 {
                u32::MAX
            } else {
                (1u32 << (nbits % 32)) - 1
            };
            let mut seen: HashSet<BigUint> = HashSet::with_capacity(num);
            let mut out = Vec::with_capacity(num);
            while out.len() < num {
                let mut digits: Vec<u32> = (0..words).map(|_| rng.next_u32()).collect();
                if let Some(last) = digits.last_mut() {
                    *last &= top_mask;
                }
                let x = BigUint::new(digits);
                if &x < p && seen.insert(x.clone()) {
                    out.push(x);
                }
            }
            Index::Big(out)
        }
    }
}

/// Sampled strings (`num * d`) and optionally their derivations (`num * K` symbols
/// and rule indices, level order).
pub struct Sampled<T> {
    pub tokens: Vec<T>,
    pub tree: Option<(Vec<i64>, Vec<i64>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_output_any_thread_count() {
        let g = Grammar::random(6, 6, 4, 2, 4, 3, None, None).unwrap();
        let a = g.sample::<u8>(5000, 9, false).unwrap().tokens;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| g.sample::<u8>(5000, 9, false).unwrap().tokens);
        assert_eq!(a, b);
        let c = g.sample::<u8>(5000, 10, false).unwrap().tokens;
        assert_ne!(a, c);
    }

    #[test]
    fn unique_samples_are_distinct() {
        let g = Grammar::random(3, 2, 2, 2, 2, 1, None, None).unwrap();
        let total = g.num_strings_u64.unwrap() as usize; // 2 * 2**3 = 16
        let x = g.sample_unique::<u8>(total, 0, false).unwrap().tokens;
        let set: HashSet<&[u8]> = x.chunks(4).collect();
        assert_eq!(set.len(), total);
        assert!(g.sample_unique::<u8>(total + 1, 0, false).is_err());
    }
}
