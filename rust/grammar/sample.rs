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

use super::enumerate::Index;
use super::rules::{level_sampler, LevelSampler};
use super::{Grammar, Token};
use crate::error::{CoreError, CoreResult};

/// A fast multiplicative hasher for the de-duplication sets (keys are random
/// indices or whole strings, not adversarial).
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
fn row_hash<T: Token>(row: &[T]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for &x in row {
        h = (h.rotate_left(23) ^ x.to_u32() as u64).wrapping_mul(FAST_K);
    }
    h ^ (h >> 29)
}

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
            LevelSampler::Uniform { bits, k } => loop {
                let x = self.take(*bits);
                if x < *k {
                    return x;
                }
            },
            LevelSampler::Alias { table } => {
                let r = self.rng.next_u64();
                let col = (((r >> 32) * k as u64) >> 32) as usize;
                let e = table[sym * k + col];
                if (r as u32) < e.threshold {
                    col as u32
                } else {
                    e.alias
                }
            }
        }
    }
}

/// Largest merged table (bytes of tokens, about half an L2 cache) and outcome
/// count per symbol.
const BOTTOM_MAX_BYTES: usize = 1 << 20;
const BOTTOM_MAX_OUTCOMES: usize = 1 << 16;

/// Merged-table tokens in the output dtype of the grammar (smallest holding `v`),
/// so a block is copied, not converted.
#[derive(Debug, Clone)]
pub enum BlockTokens {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

fn token_bytes(v: u32) -> usize {
    if v <= 1 << 8 {
        1
    } else if v <= 1 << 16 {
        2
    } else {
        4
    }
}

/// Copies a block, with constant lengths for the common widths so the copy is a
/// few moves rather than a `memcpy` call.
#[inline(always)]
fn copy_block<T: Copy>(dst: &mut [T], src: &[T]) {
    match dst.len() {
        2 => dst[..2].copy_from_slice(&src[..2]),
        4 => dst[..4].copy_from_slice(&src[..4]),
        8 => dst[..8].copy_from_slice(&src[..8]),
        9 => dst[..9].copy_from_slice(&src[..9]),
        16 => dst[..16].copy_from_slice(&src[..16]),
        w => dst.copy_from_slice(&src[..w]),
    }
}

/// The bottom `levels` levels of the tree merged: every level-`(L-levels)` symbol
/// has `outcomes = m**K_B` possible subtrees (`K_B` internal nodes), each a block of
/// `width = s**levels` tokens, drawn in one step from their exact product
/// distribution. This replaces `K_B` rule draws and copies by one draw and one copy.
#[derive(Debug, Clone)]
pub(crate) struct BottomTable {
    pub(crate) levels: usize,
    width: usize,
    outcomes: usize,
    tokens: BlockTokens,
    sampler: LevelSampler,
    /// The levels above merged too (root prior included), when small enough.
    top: Option<TopTable>,
}

/// The root and the levels `0..top` merged: `outcomes = n * m**K_top` possible top
/// derivations, each giving the `width = s**top` symbols of level `top`, drawn in
/// one step from their exact distribution.
#[derive(Debug, Clone)]
struct TopTable {
    width: usize,
    outcomes: usize,
    symbols: Vec<u32>,
    sampler: LevelSampler,
}

fn is_uniform_rows(p: &[f64], k: usize) -> bool {
    p.chunks(k).all(|row| row.iter().all(|&x| x == row[0]))
}

/// One fixed derivation of a subtree, the scratch shared by `TopTable::build` and
/// `BottomTable::build` when they enumerate every outcome.
struct Derivation {
    /// Rule choice of each node in node order (level by level, left to right).
    digits: Vec<usize>,
    /// The symbols of the last level expanded.
    cur: Vec<u32>,
    next: Vec<u32>,
}

impl Derivation {
    fn new(nodes: usize, width: usize) -> Derivation {
        Derivation {
            digits: vec![0; nodes],
            cur: Vec::with_capacity(width),
            next: Vec::with_capacity(width),
        }
    }

    /// Expands `root` down `levels`, the t-th node taking the rule named by the t-th
    /// base-`m` digit of `choice` (first node most significant); leaves the symbols
    /// in `self.cur` and returns `p0` times the rule probabilities, multiplied in
    /// node order.
    fn expand(
        &mut self,
        g: &Grammar,
        root: u32,
        p0: f64,
        levels: std::ops::Range<usize>,
        choice: usize,
    ) -> f64 {
        let (m, s) = (g.m as usize, g.s as usize);
        let mut x = choice;
        for dgt in self.digits.iter_mut().rev() {
            *dgt = x % m;
            x /= m;
        }
        self.cur.clear();
        self.cur.push(root);
        let mut p = p0;
        let mut t = 0;
        for l in levels {
            self.next.clear();
            for &sym in self.cur.iter() {
                let id = sym as usize * m + self.digits[t];
                t += 1;
                p *= g.rule_probs[l][id];
                self.next
                    .extend_from_slice(&g.rules[l][id * s..(id + 1) * s]);
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        p
    }
}

impl TopTable {
    fn build(g: &Grammar, top: usize) -> Option<TopTable> {
        let (n, m, s) = (g.n as usize, g.m as usize, g.s as usize);
        if top == 0 {
            return None;
        }
        let width = s.checked_pow(top as u32)?;
        let kt = (width - 1) / (s - 1);
        let per_root = m.checked_pow(kt as u32)?;
        let outcomes = n.checked_mul(per_root)?;
        if outcomes > BOTTOM_MAX_OUTCOMES || outcomes * width * 4 > BOTTOM_MAX_BYTES {
            return None;
        }
        let mut symbols = vec![0u32; outcomes * width];
        let mut probs = vec![0.0f64; outcomes];
        let mut tree = Derivation::new(kt, width);
        for o in 0..outcomes {
            let root = o / per_root;
            let p = tree.expand(g, root as u32, g.root_prior[root], 0..top, o % per_root);
            symbols[o * width..(o + 1) * width].copy_from_slice(&tree.cur);
            probs[o] = p;
        }
        let uniform = is_uniform_rows(&g.root_prior, n)
            && (0..top).all(|l| is_uniform_rows(&g.rule_probs[l], m));
        let sampler = if uniform {
            level_sampler(&vec![1.0; outcomes], outcomes)
        } else {
            level_sampler(&probs, outcomes)
        };
        Some(TopTable {
            width,
            outcomes,
            symbols,
            sampler,
        })
    }
}

impl BottomTable {
    pub(crate) fn build(g: &Grammar) -> Option<BottomTable> {
        let (m, s, nl) = (g.m as usize, g.s as usize, g.levels as usize);
        let mut best = None;
        for b in 2..=nl {
            let width = s.checked_pow(b as u32)?;
            let kb = (width - 1) / (s - 1);
            let outcomes = match m.checked_pow(kb as u32) {
                Some(o) if o <= BOTTOM_MAX_OUTCOMES => o,
                _ => break,
            };
            let top = nl - b;
            let entries = g.symbols_at(top) * outcomes * width;
            if entries * token_bytes(g.v) > BOTTOM_MAX_BYTES {
                break;
            }
            best = Some((b, width, kb, outcomes));
        }
        let (b, width, kb, outcomes) = best?;
        let top = nl - b;
        let syms = g.symbols_at(top);
        let mut tokens = vec![0u32; syms * outcomes * width];
        let mut probs = vec![0.0f64; syms * outcomes];
        let mut tree = Derivation::new(kb, width);
        for a in 0..syms {
            for o in 0..outcomes {
                let p = tree.expand(g, a as u32, 1.0, top..nl, o);
                let start = (a * outcomes + o) * width;
                tokens[start..start + width].copy_from_slice(&tree.cur);
                probs[a * outcomes + o] = p;
            }
        }
        let uniform = (top..nl).all(|l| is_uniform_rows(&g.rule_probs[l], m));
        // Uniform rules give uniform outcomes (Bits/Uniform); otherwise an alias table.
        let sampler = if uniform {
            level_sampler(&vec![1.0; outcomes], outcomes)
        } else {
            level_sampler(&probs, outcomes)
        };
        let tokens = match token_bytes(g.v) {
            1 => BlockTokens::U8(tokens.iter().map(|&x| x as u8).collect()),
            2 => BlockTokens::U16(tokens.iter().map(|&x| x as u16).collect()),
            _ => BlockTokens::U32(tokens),
        };
        Some(BottomTable {
            levels: b,
            width,
            outcomes,
            tokens,
            sampler,
            top: TopTable::build(g, top),
        })
    }
}

impl Grammar {
    /// Draws one string into `row` rule by rule, using `scratch` (`d/s` entries).
    #[inline]
    fn sample_row<T: Token>(&self, bits: &mut Bits, row: &mut [T], scratch: &mut [u32]) {
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
    fn sample_row_fast<T: Token>(
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
    pub(crate) fn sample_into<T: Token>(&self, out: &mut [T], seed: u64, first_chunk: u64) {
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
    fn trees<T: Token>(&self, tokens: &[T]) -> CoreResult<(Vec<i64>, Vec<i64>)> {
        let p = self.parse(tokens, true)?;
        Ok((p.symbols.unwrap_or_default(), p.rules.unwrap_or_default()))
    }

    /// `num` strings with replacement (and their derivations if `want_tree`).
    pub fn sample<T: Token>(
        &self,
        num: usize,
        seed: u64,
        want_tree: bool,
    ) -> CoreResult<Sampled<T>> {
        let total = self.check_num(num, want_tree)?;
        let mut tokens: Vec<T> = super::zeroed("num", total)?;
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
    /// (uniform random indices, decoded). Otherwise: draws with replacement and drops
    /// repeats, which tilts the set toward rarer strings relative to the grammar.
    pub fn sample_unique<T: Token>(
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
        let d = self.d;
        let mut tokens: Vec<T> = super::zeroed("num", num * d)?;
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
            let mut batch: Vec<T> = super::zeroed("num", rows * d)?;
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

    /// `num` distinct indices drawn uniformly without replacement from
    /// `[0, num_strings)`, in random order. Requires `num <= num_strings`.
    pub(crate) fn distinct_indices(&self, num: usize, seed: u64) -> Index {
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
