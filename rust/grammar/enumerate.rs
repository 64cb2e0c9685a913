//! The mixed-radix numbering of strings (rank, unrank): rank = root, then the rule choice of
//! every internal node, level by level, left to right (root most significant):
//! `rank = ((root * m + j_0) * m + j_1) * m + ...`.

use std::sync::{Arc, Mutex};

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};
use rayon::prelude::*;

use super::draw::{Sampled, CHUNK};

/// Per-row derivation output: symbols and rule indices of the internal nodes in
/// level order (`K = (d-1)/(s-1)` entries each).
type TreeRow<'a> = Option<(&'a mut [i64], &'a mut [i64])>;
use super::{Grammar, SampleToken};
use crate::error::{CoreError, CoreResult};
use crate::token::Token;

/// String ranks: `u64` when `num_strings` fits, arbitrary precision otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranks {
    Small(Vec<u64>),
    Big(Vec<BigUint>),
}

impl Ranks {
    pub fn len(&self) -> usize {
        match self {
            Ranks::Small(v) => v.len(),
            Ranks::Big(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The last few big-rank conversion tables, keyed by `(m, k)`, with or without
/// reciprocals: building them (powers of `m`, Newton reciprocals) costs as much as a
/// few conversions, and a grammar is usually asked many times.
type RadixCache = Vec<(u32, usize, Arc<Radix>)>;
static RADIX_CACHE: Mutex<RadixCache> = Mutex::new(Vec::new());
const RADIX_CACHE_LEN: usize = 2;
/// Tables larger than this (bits; 32 MiB) are rebuilt on each call rather than kept.
const RADIX_CACHE_MAX_BITS: u64 = 1 << 28;

impl Grammar {
    /// The conversion tables for this grammar's `k` rule digits (`divide`: with the
    /// reciprocals decoding needs), from the cache when there.
    fn radix(&self, divide: bool) -> Arc<Radix> {
        let (m, k) = (self.m, self.internal_nodes());
        let hit = |c: &RadixCache| {
            c.iter()
                .find(|(cm, ck, r)| *cm == m && *ck == k && (r.divides() || !divide))
                .map(|(_, _, r)| r.clone())
        };
        if let Some(r) = hit(&RADIX_CACHE.lock().unwrap_or_else(|e| e.into_inner())) {
            return r;
        }
        let mk = (!m.is_power_of_two()).then(|| &self.num_strings / self.n);
        let r = Arc::new(Radix::build(m, k, divide, mk));
        if r.heap_bits() > RADIX_CACHE_MAX_BITS {
            return r;
        }
        let mut cache = RADIX_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(cm, ck, _)| (*cm, *ck) != (m, k));
        if cache.len() == RADIX_CACHE_LEN {
            cache.remove(0);
        }
        cache.push((m, k, r.clone()));
        r
    }

    /// Digits of `rank`: `digits[0]` the root, `digits[1 + t]` the rule of node `t`.
    fn digits_small(&self, mut rank: u64, digits: &mut [u32]) {
        let m = self.m as u64;
        if m.is_power_of_two() {
            let (sh, mask) = (m.trailing_zeros(), m - 1);
            for dgt in digits[1..].iter_mut().rev() {
                *dgt = (rank & mask) as u32;
                rank = rank.checked_shr(sh).unwrap_or(0);
            }
        } else {
            for dgt in digits[1..].iter_mut().rev() {
                *dgt = (rank % m) as u32;
                rank /= m;
            }
        }
        digits[0] = rank as u32;
    }

    /// Expands a derivation given by its digits into tokens (and the tree).
    fn expand_digits<T: SampleToken>(
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

    /// Checks every rank is `< num_strings`.
    fn check_ranks(&self, ranks: &Ranks) -> CoreResult<()> {
        let bad = match ranks {
            Ranks::Small(v) => v.iter().position(|&i| BigUint::from(i) >= self.num_strings),
            Ranks::Big(v) => v.iter().position(|i| i >= &self.num_strings),
        };
        match bad {
            None => Ok(()),
            Some(r) => Err(CoreError::value(
                "i",
                format!(
                    "rank at position {r} is not in [0, num_strings = {})",
                    describe(&self.num_strings)
                ),
            )),
        }
    }

    /// The strings with the given ranks (and their derivations).
    pub fn unrank<T: SampleToken>(&self, ranks: &Ranks, want_tree: bool) -> CoreResult<Sampled<T>> {
        self.check_ranks(ranks)?;
        let num = ranks.len();
        let (d, k) = (self.d, self.internal_nodes());
        let mut tokens: Vec<T> = crate::memory::zeroed("i", T::default(), num * d)?;
        let mut tree = if want_tree {
            Some((
                crate::memory::zeroed("i", 0, num * k)?,
                crate::memory::zeroed("i", 0, num * k)?,
            ))
        } else {
            None
        };
        let radix = match ranks {
            Ranks::Big(_) => Some(self.radix(true)),
            Ranks::Small(_) => None,
        };
        let work = |c: usize, rows: &mut [T], mut t: TreeRow<'_>| {
            let mut digits = vec![0u32; k + 1];
            let (mut cur, mut next) = (Vec::with_capacity(d), Vec::with_capacity(d));
            for (r, row) in rows.chunks_mut(d).enumerate() {
                match ranks {
                    Ranks::Small(v) => self.digits_small(v[c * CHUNK + r], &mut digits),
                    Ranks::Big(v) => {
                        let radix = radix.as_ref().expect("built for big ranks");
                        digits[0] = radix.decode(&v[c * CHUNK + r], &mut digits[1..]) as u32;
                    }
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

    /// Rank of every string; an error names the first string that does not parse.
    pub fn rank<T: Token>(&self, tokens: &[T]) -> CoreResult<Ranks> {
        let parsed = self.parse(tokens, true)?;
        let k = self.internal_nodes();
        let num = parsed.log_prob.len();
        if let Some(r) = parsed.root.iter().position(|&x| x < 0) {
            return Err(CoreError::value(
                "x",
                format!("string {r} does not parse: it has no rank"),
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
            Ok(Ranks::Small(out))
        } else {
            let radix = self.radix(false);
            let out = (0..num)
                .into_par_iter()
                .map(|r| radix.encode(parsed.root[r] as u64, &rules[r * k..(r + 1) * k]))
                .collect();
            Ok(Ranks::Big(out))
        }
    }
}

/// Conversions between a big number of `N` words and its base-`m` digits (most
/// significant first): linear for `m` a power of two, `O(M(N) log N)` otherwise (`M`
/// num-bigint's Toom-3 product, about `N**1.47`). The digit-at-a-time loops (`x % m`, `x /= m`; Horner's
/// `acc * m + j`) cost `O(size)` per digit, so they are quadratic in `d` (17.8 s for
/// one rank at `d = 2**21`). Here a power of two `m` is pure bit packing; any other
/// `m` splits the digits in halves at precomputed powers `m**(c * 2**i)` (`c` digits
/// per `u64`), recursively: products use num-bigint's Karatsuba/Toom-3
/// multiplication, quotients a Barrett division by the power with a Newton-iterated
/// reciprocal (num-bigint's own division is schoolbook, which would keep the split
/// quadratic). Pieces of at most `BASE_WORDS` words use the `u64` chunk loops.
pub(crate) struct Radix {
    m: u64,
    /// Bits per digit when `m` is a power of two (`m = 1`: 0 bits, every digit 0).
    pow2: Option<u32>,
    /// Digits per chunk: the largest `c` with `m**c < 2**64`.
    c: usize,
    /// `m**c`.
    mc: u64,
    /// `pows[i] = m**(c * 2**i)`, up to the largest needed for `k` digits.
    pows: Vec<Power>,
    /// Digits below the top one.
    k: usize,
    /// `m**k` (only when `m` is not a power of two).
    mk: BigUint,
}

/// A power of `m` with its Barrett reciprocal `floor(4**bits / p)` (when dividing).
struct Power {
    p: BigUint,
    bits: u64,
    recip: Option<BigUint>,
}

/// Pieces of at most this many 64-bit words are converted chunk by chunk.
const BASE_WORDS: usize = 16;
/// Pieces of more than this many words split their two halves across threads.
const PAR_WORDS: usize = 1 << 11;
/// Reciprocals of numbers of at most this many bits come from one long division.
const RECIP_DIRECT_BITS: u64 = 1 << 12;

/// Digit types the conversions read (`u32` digits, the parser's `i64` rule indices).
pub(crate) trait Digit: Copy + Sync {
    fn get(self) -> u64;
}
impl Digit for u32 {
    #[inline(always)]
    fn get(self) -> u64 {
        self as u64
    }
}
impl Digit for i64 {
    #[inline(always)]
    fn get(self) -> u64 {
        self as u64
    }
}

/// A Barrett reciprocal of `p > 0`: `r` with `R - 2 <= r <= R`, `R = floor(4**k / p)`,
/// `k = bits(p)`. One Newton step `r <- 2r - p r**2 / 4**k` from the reciprocal of
/// `p`'s top `h = k/2 + 8` bits (rounded down, so never above `R`: Newton's step
/// undershoots 1/p by `p (1/p - r)**2`, here below one unit).
fn reciprocal(p: &BigUint) -> BigUint {
    let k = p.bits();
    if k <= RECIP_DIRECT_BITS {
        return (BigUint::one() << (2 * k)) / p;
    }
    let h = k / 2 + 8;
    let shift = k - h;
    let rh = reciprocal(&(p >> shift));
    // With r0 = rh << shift: p r0**2 / 4**k = p rh**2 / 4**h, taken rounded up.
    let sq = p * (&rh * &rh);
    let t = (&sq >> (2 * h)) + u32::from(sq.trailing_zeros().unwrap_or(0) < 2 * h);
    let two_r0 = rh << (shift + 1);
    if t <= two_r0 {
        two_r0 - t
    } else {
        // Not reached (the estimate is within a few units); exact as a fallback.
        (BigUint::one() << (2 * k)) / p
    }
}

impl Radix {
    /// Conversions of `k`-digit numbers; `divide`: also precompute the reciprocals
    /// that [`Radix::to_digits`] needs.
    #[cfg(test)]
    pub(crate) fn new(m: u32, k: usize, divide: bool) -> Radix {
        Radix::build(m, k, divide, None)
    }

    /// [`Radix::new`] given `m**k` when known (`num_strings / n`).
    fn build(m: u32, k: usize, divide: bool, mk: Option<BigUint>) -> Radix {
        let m = m as u64;
        let pow2 = m.is_power_of_two().then(|| m.trailing_zeros());
        let (mut c, mut mc) = (1usize, m);
        if m >= 2 {
            while let Some(next) = mc.checked_mul(m) {
                mc = next;
                c += 1;
            }
        }
        let mut pows: Vec<Power> = Vec::new();
        if pow2.is_none() {
            // Powers m**(c * 2**i) with c * 2**i < k (the split points), each squared
            // from the last; the two largest squarings run alongside the reciprocals.
            let mut p = BigUint::from(mc);
            let mut digits = c;
            while digits < k {
                let bits = p.bits();
                let next = if digits * 2 < k { Some(&p * &p) } else { None };
                pows.push(Power {
                    p,
                    bits,
                    recip: None,
                });
                match next {
                    Some(q) => p = q,
                    None => break,
                }
                digits *= 2;
            }
            if divide {
                let recips: Vec<Option<BigUint>> =
                    pows.par_iter().map(|pw| Some(reciprocal(&pw.p))).collect();
                for (pw, r) in pows.iter_mut().zip(recips) {
                    pw.recip = r;
                }
            }
        }
        let mut radix = Radix {
            m,
            pow2,
            c,
            mc,
            pows,
            k,
            mk: BigUint::one(),
        };
        if pow2.is_none() {
            radix.mk = mk.unwrap_or_else(|| radix.pow_m(k));
        }
        radix
    }

    /// Splits `x < top_bound * m**k` into its top part `x / m**k` (returned) and its
    /// `k` base-`m` digits below (written to `out`, most significant first).
    pub(crate) fn decode(&self, x: &BigUint, out: &mut [u32]) -> u64 {
        assert_eq!(out.len(), self.k);
        match self.pow2 {
            Some(b) => {
                self.to_digits(x, out);
                (x >> (self.k as u64 * b as u64))
                    .to_u64()
                    .unwrap_or(u64::MAX)
            }
            None if x < &self.mk => {
                self.to_digits(x, out);
                0
            }
            None => {
                // The top part is small, so this long division is linear.
                let top = x / &self.mk;
                let rest = x - &top * &self.mk;
                self.to_digits(&rest, out);
                top.to_u64().unwrap_or(u64::MAX)
            }
        }
    }

    /// The inverse of [`Radix::decode`]: `top * m**k + digits` read in base `m`.
    pub(crate) fn encode<D: Digit>(&self, top: u64, digits: &[D]) -> BigUint {
        assert_eq!(digits.len(), self.k);
        match self.pow2 {
            Some(_) => self.combine(top, digits),
            None => self.combine(0, digits) + &self.mk * top,
        }
    }

    /// The size of the stored numbers, in bits.
    fn heap_bits(&self) -> u64 {
        let pows: u64 = self
            .pows
            .iter()
            .map(|pw| pw.bits + pw.recip.as_ref().map_or(0, |r| r.bits()))
            .sum();
        pows + self.mk.bits()
    }

    /// True when the reciprocals for [`Radix::decode`] are there.
    fn divides(&self) -> bool {
        self.pow2.is_some() || self.pows.iter().all(|pw| pw.recip.is_some())
    }

    /// The largest split `(i, h = c * 2**i)` with `h < len`.
    fn split(&self, len: usize) -> (usize, usize) {
        let mut i = 0;
        while i + 1 < self.pows.len() && self.c << (i + 1) < len {
            i += 1;
        }
        (i, self.c << i)
    }

    /// Writes the `out.len()` low base-`m` digits of `x` to `out` (most significant
    /// first). Requires `x < m**out.len()` unless `m` is a power of two (higher bits
    /// are then ignored).
    pub(crate) fn to_digits(&self, x: &BigUint, out: &mut [u32]) {
        match self.pow2 {
            Some(0) => out.fill(0),
            Some(b) => {
                let words = x.to_u32_digits();
                for (t, o) in out.iter_mut().rev().enumerate() {
                    *o = get_bits(&words, t as u64 * b as u64, b);
                }
            }
            None => self.to_digits_rec(x, out),
        }
    }

    fn to_digits_rec(&self, x: &BigUint, out: &mut [u32]) {
        let len = out.len();
        if len <= self.c * BASE_WORDS || self.pows.is_empty() {
            return self.to_digits_chunked(x, out);
        }
        let (i, h) = self.split(len);
        let pw = &self.pows[i];
        let (hi, lo) = match &pw.recip {
            Some(r) => barrett(x, pw, r),
            None => (x / &pw.p, x % &pw.p),
        };
        let (a, b) = out.split_at_mut(len - h);
        if len > self.c * PAR_WORDS {
            rayon::join(|| self.to_digits_rec(&hi, a), || self.to_digits_rec(&lo, b));
        } else {
            self.to_digits_rec(&hi, a);
            self.to_digits_rec(&lo, b);
        }
    }

    /// `c` digits per division of the `u64` words by `m**c`.
    fn to_digits_chunked(&self, x: &BigUint, out: &mut [u32]) {
        let mut words = x.to_u64_digits();
        let mut t = out.len();
        while t > 0 {
            let take = self.c.min(t);
            let div = if take == self.c {
                self.mc
            } else {
                self.m.pow(take as u32)
            };
            let mut r = div_words(&mut words, div);
            for _ in 0..take {
                t -= 1;
                out[t] = (r % self.m) as u32;
                r /= self.m;
            }
        }
    }

    /// The number whose base-`m` digits are `digits` (most significant first) with
    /// `top` above them: `top * m**len + sum_t digits[t] * m**(len-1-t)`.
    pub(crate) fn combine<D: Digit>(&self, top: u64, digits: &[D]) -> BigUint {
        let len = digits.len();
        match self.pow2 {
            Some(0) => BigUint::from(top),
            Some(b) => {
                let bits = len as u64 * b as u64 + 64;
                let mut words = vec![0u32; bits.div_ceil(32) as usize];
                for (t, &dg) in digits.iter().rev().enumerate() {
                    put_bits(&mut words, t as u64 * b as u64, dg.get());
                }
                put_bits(&mut words, len as u64 * b as u64, top);
                BigUint::new(words)
            }
            None => {
                let low = self.combine_rec(digits);
                if top == 0 {
                    low
                } else {
                    // m**len from the powers: len is a sum of split sizes and a rest.
                    self.pow_m(len) * top + low
                }
            }
        }
    }

    fn combine_rec<D: Digit>(&self, digits: &[D]) -> BigUint {
        let len = digits.len();
        if len <= self.c * BASE_WORDS || self.pows.is_empty() {
            return self.combine_chunked(digits);
        }
        let (i, h) = self.split(len);
        let (a, b) = digits.split_at(len - h);
        let (hi, lo) = if len > self.c * PAR_WORDS {
            rayon::join(|| self.combine_rec(a), || self.combine_rec(b))
        } else {
            (self.combine_rec(a), self.combine_rec(b))
        };
        hi * &self.pows[i].p + lo
    }

    /// Horner's rule on chunks of `c` digits (one `u64` multiply-add per chunk).
    fn combine_chunked<D: Digit>(&self, digits: &[D]) -> BigUint {
        let mut acc = BigUint::zero();
        for chunk in digits.chunks(self.c) {
            let block = chunk.iter().fold(0u64, |b, &dg| b * self.m + dg.get());
            let scale = if chunk.len() == self.c {
                self.mc
            } else {
                self.m.pow(chunk.len() as u32)
            };
            acc *= scale;
            acc += block;
        }
        acc
    }

    /// `m**len`, as a product of the precomputed powers and a small rest.
    fn pow_m(&self, mut len: usize) -> BigUint {
        let mut out = BigUint::one();
        for (i, pw) in self.pows.iter().enumerate().rev() {
            while len >= self.c << i {
                out *= &pw.p;
                len -= self.c << i;
            }
        }
        out * BigUint::from(self.m).pow(len as u32)
    }
}

/// `(x / p, x % p)` by Barrett's reduction for `x < 4**bits(p)`: with `recip` at most
/// 2 below `floor(4**k / p)`, the quotient estimate `((x >> (k-1)) * recip) >> (k+1)`
/// is never above the quotient and at most 4 below.
fn barrett(x: &BigUint, pw: &Power, recip: &BigUint) -> (BigUint, BigUint) {
    let mut q = barrett_estimate(x, pw, recip);
    let qp = &q * &pw.p;
    if qp > *x {
        return (x / &pw.p, x % &pw.p); // not reached; exact as a fallback
    }
    let mut r = x - qp;
    let mut steps = 0;
    while r >= pw.p {
        if steps == 8 {
            return (x / &pw.p, x % &pw.p); // not reached; exact as a fallback
        }
        r -= &pw.p;
        q += 1u32;
        steps += 1;
    }
    (q, r)
}

fn barrett_estimate(x: &BigUint, pw: &Power, recip: &BigUint) -> BigUint {
    let k = pw.bits;
    debug_assert!(x.bits() <= 2 * k);
    ((x >> (k - 1)) * recip) >> (k + 1)
}

/// Divides little-endian `words` in place by `div`, dropping leading zero words;
/// returns the remainder.
fn div_words(words: &mut Vec<u64>, div: u64) -> u64 {
    let mut rem = 0u128;
    for w in words.iter_mut().rev() {
        let cur = (rem << 64) | *w as u128;
        *w = (cur / div as u128) as u64;
        rem = cur % div as u128;
    }
    while words.last() == Some(&0) {
        words.pop();
    }
    rem as u64
}

/// The `b` bits (`b <= 32`) of little-endian `words` from bit `off` (zeros beyond).
#[inline]
fn get_bits(words: &[u32], off: u64, b: u32) -> u32 {
    let (w, sh) = ((off / 32) as usize, (off % 32) as u32);
    let lo = words.get(w).copied().unwrap_or(0) as u64;
    let hi = words.get(w + 1).copied().unwrap_or(0) as u64;
    (((hi << 32 | lo) >> sh) & ((1u64 << b) - 1)) as u32
}

/// ORs `value` into little-endian `words` at bit `off` (the words must reach that far).
#[inline]
fn put_bits(words: &mut [u32], off: u64, value: u64) {
    let (w, sh) = ((off / 32) as usize, (off % 32) as u32);
    let v = (value as u128) << sh;
    for (j, word) in words[w..].iter_mut().take(3).enumerate() {
        *word |= (v >> (32 * j)) as u32;
    }
}

/// A number for a message: in full when short, else its size (a `d = 2**22` grammar
/// has a 1.26-million-digit `num_strings`).
pub(crate) fn describe(x: &BigUint) -> String {
    let bits = x.bits();
    if bits <= 128 {
        x.to_string()
    } else {
        let digits = ((bits - 1) as f64 * std::f64::consts::LOG10_2) as u64 + 1;
        format!("a {bits}-bit number (about {digits} decimal digits)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rank_round_trip_small_and_big() {
        let g = Grammar::random(6, 6, 4, 2, 4, 0, None, None).unwrap();
        let x = g.sample::<u8>(3000, 1, false).unwrap().tokens;
        let ranks = g.rank(&x).unwrap();
        assert!(matches!(ranks, Ranks::Small(_)));
        assert_eq!(g.unrank::<u8>(&ranks, false).unwrap().tokens, x);

        let big = Grammar::random(7, 3, 5, 2, 6, 0, None, None).unwrap();
        assert!(big.num_strings_u64.is_none());
        let x = big.sample::<u8>(50, 2, false).unwrap().tokens;
        let ranks = big.rank(&x).unwrap();
        assert!(matches!(ranks, Ranks::Big(_)));
        assert_eq!(big.unrank::<u8>(&ranks, false).unwrap().tokens, x);
    }

    #[test]
    fn first_and_last_rank() {
        let g = Grammar::random(3, 2, 2, 2, 2, 5, None, None).unwrap();
        let last = g.num_strings_u64.unwrap() - 1;
        let out = g.unrank::<u8>(&Ranks::Small(vec![0, last]), true).unwrap();
        let (syms, rules) = out.tree.unwrap();
        assert_eq!(&syms[..3], &[0, g.rules[0][0] as i64, g.rules[0][1] as i64]);
        assert_eq!(&rules[..3], &[0, 0, 0]);
        assert_eq!(syms[3], 1);
        assert_eq!(&rules[3..], &[1, 1, 1]);
        assert!(g
            .unrank::<u8>(&Ranks::Small(vec![last + 1]), false)
            .is_err());
    }
    /// The straightforward quadratic conversions the fast ones must agree with.
    fn naive_decode(m: u32, k: usize, x: &BigUint) -> (BigUint, Vec<u32>) {
        let mut x = x.clone();
        let mut out = vec![0u32; k];
        for o in out.iter_mut().rev() {
            *o = (&x % m).to_u32().unwrap();
            x /= m;
        }
        (x, out)
    }

    fn naive_encode(m: u32, top: u64, digits: &[u32]) -> BigUint {
        digits
            .iter()
            .fold(BigUint::from(top), |acc, &j| acc * m + j)
    }

    fn random_digits(rng: &mut ChaCha8Rng, m: u32, k: usize) -> Vec<u32> {
        (0..k).map(|_| rng.random_range(0..m)).collect()
    }

    fn random_below(rng: &mut ChaCha8Rng, bound: &BigUint) -> BigUint {
        let words = bound.bits().div_ceil(32) as usize + 1;
        BigUint::new((0..words).map(|_| rng.next_u32()).collect()) % bound
    }

    const MS: [u32; 16] = [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        10,
        16,
        255,
        256,
        1000,
        65537,
        (1 << 31) - 1,
        1 << 31,
    ];

    #[test]
    fn radix_matches_naive_conversions() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &m in &MS {
            for k in [
                0usize, 1, 2, 5, 19, 20, 21, 39, 40, 41, 63, 64, 65, 300, 700, 1500, 4000,
            ] {
                let radix = Radix::new(m, k, true);
                let mut digits_cases = vec![vec![0; k], vec![m - 1; k]];
                for _ in 0..3 {
                    digits_cases.push(random_digits(&mut rng, m, k));
                }
                for digits in digits_cases {
                    let top = rng.random_range(0..1u64 << 31);
                    let x = naive_encode(m, top, &digits);
                    assert_eq!(radix.encode(top, &digits), x, "m={m} k={k}");
                    let wide: Vec<i64> = digits.iter().map(|&j| j as i64).collect();
                    assert_eq!(radix.encode(top, &wide), x, "m={m} k={k}");
                    let mut out = vec![u32::MAX; k];
                    assert_eq!(radix.decode(&x, &mut out), top, "m={m} k={k}");
                    assert_eq!(out, digits, "m={m} k={k}");
                }
                // Random numbers below n * m**k, decoded as the naive loop does.
                let bound = BigUint::from(5u32) * BigUint::from(m).pow(k as u32);
                for _ in 0..3 {
                    let x = random_below(&mut rng, &bound);
                    let (top, want) = naive_decode(m, k, &x);
                    let mut out = vec![0u32; k];
                    assert_eq!(BigUint::from(radix.decode(&x, &mut out)), top);
                    assert_eq!(out, want, "m={m} k={k}");
                    assert_eq!(radix.encode(top.to_u64().unwrap(), &out), x);
                }
            }
        }
    }

    #[test]
    fn radix_large_round_trips_and_reciprocals() {
        // Sizes where the split uses Barrett divisions by Newton reciprocals.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (m, k) in [
            (3u32, 40_000usize),
            (6, 25_000),
            (1000, 9_000),
            (2, 100_000),
            (8, 30_000),
        ] {
            let radix = Radix::new(m, k, true);
            let digits = random_digits(&mut rng, m, k);
            let x = radix.encode(2, &digits);
            let mut out = vec![0u32; k];
            assert_eq!(radix.decode(&x, &mut out), 2);
            assert_eq!(out, digits, "m={m} k={k}");
            let mut tail = digits[k - 500..].to_vec();
            let low = BigUint::from(m).pow(500);
            assert_eq!(&x % &low, naive_encode(m, 0, &tail), "m={m} k={k}");
            radix.to_digits(&(&x % &low), &mut tail);
            assert_eq!(tail, digits[k - 500..]);
        }
        for bits in [4096u64, 4097, 5000, 20_000, 65_537, 200_000] {
            for _ in 0..3 {
                let top = BigUint::one() << (bits - 1);
                let p = top.clone() + random_below(&mut rng, &top);
                assert_eq!(p.bits(), bits);
                assert_eq!(
                    reciprocal(&p),
                    (BigUint::one() << (2 * bits)) / &p,
                    "{bits} bits"
                );
            }
        }
    }

    #[test]
    fn barrett_estimate_is_at_most_4_short() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (m, k) in [(3u32, 3000usize), (7, 20_000), (1000, 4000)] {
            let radix = Radix::new(m, k, true);
            for pw in &radix.pows {
                let recip = pw.recip.as_ref().unwrap();
                let sq = &pw.p * &pw.p;
                let mut xs = vec![BigUint::zero(), &sq - 1u32, pw.p.clone(), &pw.p - 1u32];
                xs.extend((0..4).map(|_| random_below(&mut rng, &sq)));
                for x in xs {
                    let q = &x / &pw.p;
                    let est = barrett_estimate(&x, pw, recip);
                    assert!(est <= q && q <= &est + 4u32, "m={m} bits={}", pw.bits);
                    assert_eq!(barrett(&x, pw, recip), (q, &x % &pw.p));
                }
            }
        }
    }

    #[test]
    fn big_rank_round_trip_non_power_of_two_m() {
        let g = Grammar::random(3, 2, 3, 2, 13, 4, None, None).unwrap();
        let k = g.internal_nodes();
        let x = g.sample::<u8>(6, 3, false).unwrap().tokens;
        let ranks = g.rank(&x).unwrap();
        let Ranks::Big(v) = &ranks else {
            panic!("expected big ranks")
        };
        let p = g.parse(&x, true).unwrap();
        let rules: Vec<u32> = p.rules.unwrap().iter().map(|&j| j as u32).collect();
        for (r, i) in v.iter().enumerate() {
            let want = naive_encode(3, p.root[r] as u64, &rules[r * k..(r + 1) * k]);
            assert_eq!(i, &want);
        }
        assert_eq!(g.unrank::<u8>(&ranks, false).unwrap().tokens, x);
        // The last rank: root n-1 and rule m-1 everywhere.
        let last = Ranks::Big(vec![&g.num_strings - 1u32]);
        let (syms, rs) = g.unrank::<u8>(&last, true).unwrap().tree.unwrap();
        assert_eq!(syms[0], 1);
        assert!(rs.iter().all(|&j| j == 2));
        assert_eq!(
            g.rank(&g.unrank::<u8>(&last, false).unwrap().tokens)
                .unwrap(),
            last
        );
        let err = g
            .unrank::<u8>(&Ranks::Big(vec![g.num_strings.clone()]), false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("-bit number"), "{err}");
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// `cargo test --release --no-default-features radix_timing -- --ignored --nocapture`:
    /// the cost of each part for one `d = 2**22` rank with `m = 3`.
    #[test]
    #[ignore]
    fn radix_timing() {
        let k = (1usize << 22) - 1;
        let t = Instant::now();
        let radix = Radix::new(3, k, true);
        eprintln!("powers, m**k, reciprocals {:?}", t.elapsed());
        let digits = vec![2u32; k];
        let t = Instant::now();
        let x = radix.encode(0, &digits);
        eprintln!("encode {:?}", t.elapsed());
        let mut out = vec![0u32; k];
        let t = Instant::now();
        radix.decode(&x, &mut out);
        eprintln!("decode {:?}", t.elapsed());
        assert_eq!(out, digits);
    }
}
