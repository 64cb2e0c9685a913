//! Sampling strings (and optionally their derivations) from a grammar.
//!
//! Determinism: strings are drawn in fixed chunks of `CHUNK` rows; chunk `c` uses
//! the ChaCha8 stream `c` of the key derived from the seed, so the output does not
//! depend on how rayon schedules the chunks.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use num_bigint::BigUint;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::blocks::{copy_block, BottomTable};
use super::draw::{Bits, Sampled, CHUNK};
use super::enumerate::Ranks;
use super::{Grammar, SampleToken};
use crate::error::{CoreError, CoreResult};

/// A fast multiplicative hasher for the de-duplication sets (keys are random
/// ranks or whole strings, not adversarial).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const FAST_K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(FAST_K);
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

/// Empty slot of the row set.
const NONE_ROW: u32 = u32::MAX;

#[inline]
fn row_hash<T: SampleToken>(row: &[T]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for &x in row {
        h = (h.rotate_left(23) ^ x.to_i64() as u64).wrapping_mul(FAST_K);
    }
    h ^ (h >> 29)
}

/// Stream of the rank draws of unique sampling (chunks use streams 0, 1, ...).
const UNIQUE_STREAM: u64 = u64::MAX - 1;

impl Grammar {
    /// Draws one string into `row` rule by rule, using `scratch` (`d/s` entries).
    #[inline]
    fn sample_row<T: SampleToken>(&self, bits: &mut Bits, row: &mut [T], scratch: &mut [u32]) {
        let (m, s) = (self.m as usize, self.s as usize);
        scratch[0] = bits.draw(&self.root_sampler, 0, self.n as usize);
        let mut width = 1usize;
        let nl = self.levels as usize;
        for l in 0..nl {
            let rules = &self.rules[l];
            let sampler = &self.samplers[l];
            if l + 1 == nl {
                for i in 0..width {
                    let a = scratch[i] as usize;
                    let id = a * m + bits.draw(sampler, a, m) as usize;
                    for (o, &c) in row[i * s..(i + 1) * s]
                        .iter_mut()
                        .zip(&rules[id * s..(id + 1) * s])
                    {
                        *o = T::from_u32(c);
                    }
                }
            } else {
                // In place, right to left: node i's children land at i*s.. >= i.
                for i in (0..width).rev() {
                    let a = scratch[i] as usize;
                    let id = a * m + bits.draw(sampler, a, m) as usize;
                    scratch[i * s..(i + 1) * s].copy_from_slice(&rules[id * s..(id + 1) * s]);
                }
            }
            width *= s;
        }
    }

    /// Draws one string using the bottom-subtree table (no derivation output).
    #[inline]
    fn sample_row_fast<T: SampleToken>(
        &self,
        bt: &BottomTable,
        block_tokens: &[T],
        bits: &mut Bits,
        row: &mut [T],
        scratch: &mut [u32],
    ) {
        let (m, s) = (self.m as usize, self.s as usize);
        let top = self.levels as usize - bt.levels;
        if let Some(tt) = &bt.top {
            let o = bits.draw(&tt.sampler, 0, tt.outcomes) as usize;
            scratch[..tt.width].copy_from_slice(&tt.symbols[o * tt.width..(o + 1) * tt.width]);
        } else {
            self.expand_top(bits, scratch, top, m, s);
        }
        let (w, k) = (bt.width, bt.outcomes);
        for (i, out) in row.chunks_exact_mut(w).enumerate() {
            let a = scratch[i] as usize;
            let o = bits.draw(&bt.sampler, a, k) as usize;
            let start = (a * k + o) * w;
            copy_block(out, &block_tokens[start..start + w]);
        }
    }

    /// Expands the root through levels `0..top` rule by rule into `scratch`.
    #[inline]
    fn expand_top(&self, bits: &mut Bits, scratch: &mut [u32], top: usize, m: usize, s: usize) {
        scratch[0] = bits.draw(&self.root_sampler, 0, self.n as usize);
        let mut width = 1usize;
        for l in 0..top {
            let rules = &self.rules[l];
            let sampler = &self.samplers[l];
            for i in (0..width).rev() {
                let a = scratch[i] as usize;
                let id = a * m + bits.draw(sampler, a, m) as usize;
                scratch[i * s..(i + 1) * s].copy_from_slice(&rules[id * s..(id + 1) * s]);
            }
            width *= s;
        }
    }

    /// Fills `out` (`rows * d`) with independent strings; chunk `c` of `CHUNK` rows
    /// uses stream `first_chunk + c`.
    pub(crate) fn sample_into<T: SampleToken>(&self, out: &mut [T], seed: u64, first_chunk: u64) {
        let d = self.d;
        let scratch_len = (d / self.s as usize).max(1);
        out.par_chunks_mut(CHUNK * d)
            .enumerate()
            .for_each(|(c, rows)| {
                let mut bits = Bits::new(seed, first_chunk + c as u64);
                let mut scratch = vec![0u32; scratch_len];
                let fast = self
                    .bottom
                    .as_ref()
                    .and_then(|bt| T::block_tokens(&bt.tokens).map(|tk| (bt, tk)));
                match fast {
                    Some((bt, tk)) => rows
                        .chunks_mut(d)
                        .for_each(|row| self.sample_row_fast(bt, tk, &mut bits, row, &mut scratch)),
                    None => rows
                        .chunks_mut(d)
                        .for_each(|row| self.sample_row(&mut bits, row, &mut scratch)),
                }
            });
    }

    /// The derivations of valid strings, recovered by parsing (the grammar is
    /// unambiguous), so a string is the same whether or not its tree is asked for.
    fn trees<T: SampleToken>(&self, tokens: &[T]) -> CoreResult<(Vec<i64>, Vec<i64>)> {
        let p = self.parse(tokens, true)?;
        Ok((p.symbols.unwrap_or_default(), p.rules.unwrap_or_default()))
    }

    /// `num` strings with replacement (and their derivations if `want_tree`).
    pub fn sample<T: SampleToken>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        let total = self.check_num(num, want_tree)?;
        let mut tokens: Vec<T> = crate::memory::zeroed("num", T::default(), total)?;
        self.sample_into(&mut tokens, seed, 0);
        let tree = if want_tree {
            Some(self.trees(&tokens)?)
        } else {
            None
        };
        Ok(Sampled { tokens, tree })
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
    /// (uniform random ranks, decoded). Otherwise: draws with replacement and drops
    /// repeats, which tilts the set toward rarer strings relative to the grammar.
    pub fn sample_unique<T: SampleToken>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        self.check_num(num, want_tree)?;
        if num >= NONE_ROW as usize {
            return Err(CoreError::value(
                "num",
                format!("unique=True needs num < 2**32, got {num}"),
            ));
        }
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
            let ranks = self.distinct_ranks(num, seed);
            return self.unrank(&ranks, want_tree);
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

    fn sample_unique_rejection<T: SampleToken>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        let d = self.d;
        let mut tokens: Vec<T> = crate::memory::zeroed("num", T::default(), num * d)?;
        // Open addressing over accepted rows: (row hash, row index); contents are
        // compared only when hashes agree, and no row is copied until accepted.
        let size = (2 * num).max(16).next_power_of_two();
        let mask = size - 1;
        let mut slots: Vec<(u64, u32)> = vec![(0, NONE_ROW); size];
        let mut have = 0usize;
        let mut next_chunk = 0u64;
        let mut drawn = 0usize;
        let budget = num.saturating_mul(1000).saturating_add(1 << 22);
        while have < num {
            if drawn > budget {
                return Err(CoreError::value(
                    "num",
                    format!(
                        "drew {drawn} strings without finding {num} distinct ones: \
                         the rule probabilities concentrate on too few strings"
                    ),
                ));
            }
            let want = num - have;
            let chunks = (want + want / 4).div_ceil(CHUNK).max(1);
            let rows = chunks * CHUNK;
            let mut batch: Vec<T> = crate::memory::zeroed("num", T::default(), rows * d)?;
            self.sample_into(&mut batch, seed, next_chunk);
            next_chunk += chunks as u64;
            drawn += rows;
            let hashes: Vec<u64> = batch.par_chunks(d).map(row_hash).collect();
            for (row, &h) in batch.chunks(d).zip(&hashes) {
                if have == num {
                    break;
                }
                let mut i = h as usize & mask;
                loop {
                    let (sh, idx) = slots[i];
                    if idx == NONE_ROW {
                        slots[i] = (h, have as u32);
                        tokens[have * d..(have + 1) * d].copy_from_slice(row);
                        have += 1;
                        break;
                    }
                    let idx = idx as usize;
                    if sh == h && &tokens[idx * d..(idx + 1) * d] == row {
                        break;
                    }
                    i = (i + 1) & mask;
                }
            }
        }
        let tree = if want_tree {
            Some(self.trees(&tokens)?)
        } else {
            None
        };
        Ok(Sampled { tokens, tree })
    }

    /// `num` distinct ranks drawn uniformly without replacement from
    /// `[0, num_strings)`, in random order. Requires `num <= num_strings`.
    pub(crate) fn distinct_ranks(&self, num: usize, seed: u64) -> Ranks {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(UNIQUE_STREAM);
        if let Some(p) = self.num_strings_u64 {
            // Sparse Fisher-Yates: position i of a virtual permutation of [0, p).
            let mut moved: HashMap<u64, u64, FastBuild> =
                HashMap::with_capacity_and_hasher(num, FastBuild::default());
            let mut out = Vec::with_capacity(num);
            for i in 0..num as u64 {
                let j = rng.random_range(i..p);
                let vi = *moved.get(&i).unwrap_or(&i);
                let vj = *moved.get(&j).unwrap_or(&j);
                out.push(vj);
                moved.insert(j, vi);
            }
            Ranks::Small(out)
        } else {
            let p = &self.num_strings;
            let nbits = p.bits();
            let words = nbits.div_ceil(32) as usize;
            let top_mask = if nbits % 32 == 0 {
                u32::MAX
            } else {
                (1u32 << (nbits % 32)) - 1
            };
            let mut seen: HashSet<BigUint, FastBuild> =
                HashSet::with_capacity_and_hasher(num, FastBuild::default());
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
            Ranks::Big(out)
        }
    }
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
