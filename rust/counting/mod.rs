//! Exact substring frequencies in a set of equal-length token strings: every distinct
//! k-gram (never crossing a string boundary) and the aligned blocks of a hierarchy
//! level, with their counts.
//!
//! Fast path: when a window fits in 64 bits (token code `t+1` in `bits` bits), windows
//! become packed integer keys, built straight into their most-significant-digit radix
//! buckets and sorted bucket by bucket (`crate::radix`); equal keys are then counted. For all k
//! at once (`spectrum`), keys of the longest window (zero-padded at string ends) are
//! sorted once: the order is then also the order of every shorter prefix, so one
//! parallel pass over the sorted keys writes the groups of every k. Otherwise windows
//! are sorted by comparison (single k) or the suffix index's LCP intervals are scanned
//! (all k).

mod spectrum;

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::index::{check_shape, token_range, TrainingIndex};
use crate::radix;
use crate::token::Token;

/// Distinct windows (row-major tokens, sorted by position then tokens), their counts,
/// and their block position when counted per position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts<X> {
    pub positions: Vec<i64>,
    pub windows: Vec<X>,
    pub counts: Vec<i64>,
}

impl<X> Default for Counts<X> {
    fn default() -> Self {
        Counts {
            positions: Vec::new(),
            windows: Vec::new(),
            counts: Vec::new(),
        }
    }
}

fn bits_for(max_value: u64) -> u32 {
    64 - max_value.leading_zeros()
}

/// Largest token (inputs are validated to be in `[0, 2**32)`).
fn max_token<X: Token>(param: &str, x: &[X]) -> CoreResult<u64> {
    let (lo, hi) = token_range(x);
    if lo < 0 || hi > u32::MAX as i64 {
        let bad = if lo < 0 { lo } else { hi };
        return Err(CoreError::value(
            param,
            format!("token {bad} is outside [0, 2**32)"),
        ));
    }
    Ok(hi.max(0) as u64)
}

/// Count the windows of width `w` at `offsets` (within each row) of `rows` rows of `d`.
/// `positional`: keyed by (index into `offsets`, tokens); else by tokens alone.
/// `param` names the argument that sized the request in a refusal. The sort's scratch
/// is checked against the memory the process can get before it is allocated, and the
/// output once the number of distinct windows is known.
#[allow(clippy::too_many_arguments)]
fn count_windows<X: Token>(
    param: &str,
    x: &[X],
    rows: usize,
    d: usize,
    w: usize,
    offsets: &[usize],
    positional: bool,
    max_tok: u64,
) -> CoreResult<Counts<X>> {
    let bits = bits_for(max_tok + 1);
    let pos_bits = if positional {
        bits_for(offsets.len().saturating_sub(1) as u64)
    } else {
        0
    };
    let total = rows * offsets.len();
    let what = format!("counting {total} windows of {w} tokens");
    let mut out = Counts::default();
    let mut reserve = |groups: usize| -> CoreResult<()> {
        let per = (w * std::mem::size_of::<X>() + 8 + if positional { 8 } else { 0 }) as u128;
        crate::memory::ensure_available(param, &what, groups as u128 * per)?;
        crate::memory::reserve(param, &mut out.windows, groups * w)?;
        crate::memory::reserve(param, &mut out.counts, groups)?;
        if positional {
            crate::memory::reserve(param, &mut out.positions, groups)?;
        }
        Ok(())
    };
    if (w as u64) * (bits as u64) + pos_bits as u64 <= 64 {
        let wb = w as u32 * bits;
        let src = WindowKeys {
            x,
            d,
            w,
            bits,
            offsets,
            positional: pos_bits > 0,
        };
        crate::memory::ensure_available(param, &what, 8 * total as u128)?;
        let (keys, _, _) =
            radix::sort_keys(param, rows, &src, wb + pos_bits, 0, radix::TOP, |_| ())?;
        let groups = 1 + keys.windows(2).filter(|p| p[0] != p[1]).count();
        reserve(if keys.is_empty() { 0 } else { groups })?;
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let mut i = 0;
        while i < keys.len() {
            let key = keys[i];
            let mut j = i + 1;
            while j < keys.len() && keys[j] == key {
                j += 1;
            }
            if positional {
                out.positions.push(key.checked_shr(wb).unwrap_or(0) as i64);
            }
            for m in (0..w).rev() {
                out.windows.push(X::from_i64(
                    (((key >> (m as u32 * bits)) & mask) - 1) as i64,
                ));
            }
            out.counts.push((j - i) as i64);
            i = j;
        }
        Ok(out)
    } else {
        // (offset index, flat start)
        crate::memory::ensure_available(
            param,
            &what,
            (total * std::mem::size_of::<(u32, usize)>()) as u128,
        )?;
        let mut items: Vec<(u32, usize)> = Vec::new();
        crate::memory::reserve(param, &mut items, total)?;
        items.extend((0..total).map(|i| {
            (
                (i % offsets.len()) as u32,
                (i / offsets.len()) * d + offsets[i % offsets.len()],
            )
        }));
        let key = |a: &(u32, usize)| (if positional { a.0 } else { 0 }, a.1);
        let cmp = |a: &(u32, usize), b: &(u32, usize)| {
            let (pa, sa) = key(a);
            let (pb, sb) = key(b);
            pa.cmp(&pb).then_with(|| {
                x[sa..sa + w]
                    .iter()
                    .map(|t| t.to_i64())
                    .cmp(x[sb..sb + w].iter().map(|t| t.to_i64()))
            })
        };
        items.par_sort_unstable_by(cmp);
        let groups = 1 + items
            .windows(2)
            .filter(|p| !cmp(&p[0], &p[1]).is_eq())
            .count();
        reserve(if items.is_empty() { 0 } else { groups })?;
        let mut i = 0;
        while i < items.len() {
            let mut j = i + 1;
            while j < items.len() && cmp(&items[i], &items[j]).is_eq() {
                j += 1;
            }
            let (p, s) = key(&items[i]);
            if positional {
                out.positions.push(p as i64);
            }
            out.windows.extend_from_slice(&x[s..s + w]);
            out.counts.push((j - i) as i64);
            i = j;
        }
        Ok(out)
    }
}

fn check_k(k: usize, d: usize, param: &str) -> CoreResult<()> {
    if k < 1 || k > d {
        return Err(CoreError::value(param, format!("{k} is not in [1, d={d}]")));
    }
    Ok(())
}

fn check_set<X: Token>(x: &[X], rows: usize, d: usize) -> CoreResult<u64> {
    check_shape("x", x.len(), rows, d)?;
    if rows == 0 || d == 0 {
        return Err(CoreError::value(
            "x",
            "empty set: need at least one string of at least one token",
        ));
    }
    max_token("x", x)
}

/// Every distinct k-gram of the set (never crossing a string boundary) with its count.
pub fn kgram_counts<X: Token>(x: &[X], rows: usize, d: usize, k: usize) -> CoreResult<Counts<X>> {
    let max_tok = check_set(x, rows, d)?;
    check_k(k, d, "k")?;
    let offsets: Vec<usize> = (0..=d - k).collect();
    count_windows("k", x, rows, d, k, &offsets, false, max_tok)
}

/// k-gram counts for every k in `1..=max_k` (the frequency spectrum).
pub fn kgram_counts_all<X: Token>(
    x: &[X],
    rows: usize,
    d: usize,
    max_k: usize,
) -> CoreResult<Vec<Counts<X>>> {
    let max_tok = check_set(x, rows, d)?;
    check_k(max_k, d, "max_k")?;
    let bits = bits_for(max_tok + 1);
    if (max_k as u64) * (bits as u64) > 64 {
        let idx = TrainingIndex::build(x, rows, d)?;
        let ks: Vec<usize> = (1..=max_k).collect();
        return Ok(idx
            .kgram_counts(&ks)?
            .into_iter()
            .map(|c| Counts {
                positions: Vec::new(),
                windows: c
                    .kgrams
                    .into_iter()
                    .map(|t| X::from_i64(t as i64))
                    .collect(),
                counts: c.counts,
            })
            .collect());
    }
    let kb = max_k as u32 * bits;
    let src = PaddedKeys { x, d, max_k, bits };
    let spectrum = spectrum::Spectrum::new(bits, max_k);
    // the openings of each bucket are counted right after its sort, while it is in cache
    crate::memory::ensure_available(
        "max_k",
        &format!("sorting {} windows", rows * d),
        8 * (rows * d) as u128,
    )?;
    let (keys, bounds, opens) = radix::sort_keys("max_k", rows, &src, kb, 0, radix::TOP, |b| {
        spectrum.opens_within(b)
    })?;
    let (bounds, opens) = spectrum.merge_chunks(&keys, &bounds, opens, MIN_CHUNK);
    spectrum.counts(keys, &bounds, opens)
}

/// Keys per chunk of the spectrum's emission pass (at least; chunks are whole buckets).
const MIN_CHUNK: usize = 1 << 12;

/// Packed keys of the windows of width `w` at `offsets` of each row: code `t+1` in
/// `bits` bits per token, first token most significant; with `positional`, the index
/// of the offset above the tokens.
struct WindowKeys<'a, X> {
    x: &'a [X],
    d: usize,
    w: usize,
    bits: u32,
    offsets: &'a [usize],
    positional: bool,
}

impl<X: Token> radix::RowKeys for WindowKeys<'_, X> {
    fn per_row(&self) -> usize {
        self.offsets.len()
    }
    #[inline(always)]
    fn row(&self, r: usize, mut emit: impl FnMut(u64)) {
        let row = &self.x[r * self.d..(r + 1) * self.d];
        let wb = self.w as u32 * self.bits;
        for (oi, &o) in self.offsets.iter().enumerate() {
            // positional implies wb < 64
            let mut key = if self.positional {
                (oi as u64) << wb
            } else {
                0
            };
            let mut sh = wb;
            for t in &row[o..o + self.w] {
                sh -= self.bits;
                key |= (t.to_i64() as u64 + 1) << sh;
            }
            emit(key);
        }
    }
}

/// One key per (row, offset): the window of length `min(max_k, d - offset)`, code `t+1`
/// in `bits` bits per token, zero padded, rolled along the row (shift in the next
/// token) rather than rebuilt.
struct PaddedKeys<'a, X> {
    x: &'a [X],
    d: usize,
    max_k: usize,
    bits: u32,
}

impl<X: Token> radix::RowKeys for PaddedKeys<'_, X> {
    fn per_row(&self) -> usize {
        self.d
    }
    #[inline(always)]
    fn row(&self, r: usize, mut emit: impl FnMut(u64)) {
        let (bits, max_k) = (self.bits, self.max_k);
        let kb = max_k as u32 * bits;
        let full = if kb == 64 { u64::MAX } else { (1u64 << kb) - 1 };
        let row = &self.x[r * self.d..(r + 1) * self.d];
        let mut key = 0u64;
        let lead = (max_k - 1).min(self.d);
        for t in &row[..lead] {
            key = (key << bits) | (t.to_i64() as u64 + 1);
        }
        for t in &row[lead..] {
            key = (key.checked_shl(bits).unwrap_or(0) | (t.to_i64() as u64 + 1)) & full;
            emit(key);
        }
        for _ in 0..lead {
            key = key.checked_shl(bits).unwrap_or(0) & full;
            emit(key);
        }
    }
}

/// Counts of the aligned blocks of `level` (width `s**(L-level)` for `d = s**L`), per
/// block position (`positional`) or pooled over positions.
pub fn block_counts<X: Token>(
    x: &[X],
    rows: usize,
    d: usize,
    s: usize,
    level: usize,
    positional: bool,
) -> CoreResult<Counts<X>> {
    let max_tok = check_set(x, rows, d)?;
    if s < 2 {
        return Err(CoreError::value("s", format!("{s} must be at least 2")));
    }
    let mut depth = 0usize;
    let mut width = 1usize;
    while width < d {
        width = width.saturating_mul(s);
        depth += 1;
    }
    if width != d {
        return Err(CoreError::value(
            "s",
            format!("string length {d} is not a power of s={s}"),
        ));
    }
    if level > depth {
        return Err(CoreError::value(
            "level",
            format!("{level} is not in [0, L={depth}]"),
        ));
    }
    let w = s.pow((depth - level) as u32);
    let offsets: Vec<usize> = (0..d / w).map(|j| j * w).collect();
    count_windows("x", x, rows, d, w, &offsets, positional, max_tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn brute(x: &[u32], d: usize, k: usize) -> BTreeMap<Vec<u32>, i64> {
        let mut m = BTreeMap::new();
        for row in x.chunks(d) {
            for w in row.windows(k) {
                *m.entry(w.to_vec()).or_insert(0) += 1;
            }
        }
        m
    }

    fn as_map(c: &Counts<u32>, k: usize) -> BTreeMap<Vec<u32>, i64> {
        c.windows
            .chunks(k)
            .map(|w| w.to_vec())
            .zip(c.counts.iter().copied())
            .collect()
    }

    #[test]
    fn kgrams_match_brute_force_on_both_paths() {
        let d = 7;
        let x: Vec<u32> = (0..40u32)
            .flat_map(|i| (0..d as u32).map(move |j| (i * 7 + j * j) % 5))
            .collect();
        let big: Vec<u32> = x.iter().map(|&t| t * 100_000_000).collect(); // forces the SA path
        for k in 1..=d {
            let c = kgram_counts(&x, 40, d, k).unwrap();
            assert_eq!(as_map(&c, k), brute(&x, d, k));
        }
        for data in [&x, &big] {
            let all = kgram_counts_all(data, 40, d, d).unwrap();
            for (k, c) in (1..=d).zip(&all) {
                assert_eq!(as_map(c, k), brute(data, d, k), "k={k}");
                let keys: Vec<_> = c.windows.chunks(k).collect();
                assert!(keys.windows(2).all(|p| p[0] < p[1]), "sorted, k={k}");
            }
        }
    }

    #[test]
    fn spectrum_of_a_large_set_matches_brute_force() {
        // > 2**15 keys: the bucketed sort and many emission chunks
        let (rows, d, max_k) = (3000, 16, 6);
        for v in [3u32, 16, 200, 500] {
            let x: Vec<u32> = (0..rows * d)
                .map(|i| (((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % v as u64) as u32)
                .collect();
            let all = kgram_counts_all(&x, rows, d, max_k).unwrap();
            for (k, c) in (1..=max_k).zip(&all) {
                assert_eq!(as_map(c, k), brute(&x, d, k), "v={v} k={k}");
                let keys: Vec<_> = c.windows.chunks(k).collect();
                assert!(keys.windows(2).all(|p| p[0] < p[1]), "sorted, k={k}");
            }
            let one = kgram_counts(&x, rows, d, 5).unwrap();
            assert_eq!(as_map(&one, 5), brute(&x, d, 5), "v={v}");
        }
    }

    #[test]
    fn spectrum_same_for_every_chunk_size() {
        // many equal windows (alphabet 3) so groups run over many tiny chunks
        let (rows, d, max_k) = (50, 9, 6);
        let x: Vec<u32> = (0..rows * d)
            .map(|i| ((i * 2654435761) >> 7) as u32 % 3)
            .collect();
        let reference = kgram_counts_all(&x, rows, d, max_k).unwrap();
        for (k, c) in (1..=max_k).zip(&reference) {
            assert_eq!(as_map(c, k), brute(&x, d, k), "k={k}");
        }
        let bits = bits_for(3);
        let kb = max_k as u32 * bits;
        let mut keys: Vec<u64> = (0..rows * d)
            .map(|p| {
                let (r, o) = (p / d, p % d);
                let mut key = 0u64;
                let mut sh = kb;
                for t in &x[r * d + o..r * d + (o + max_k).min(d)] {
                    sh -= bits;
                    key |= (*t as u64 + 1) << sh;
                }
                key
            })
            .collect();
        keys.sort_unstable();
        for chunk in [1, 2, 3, 5, 64, 10_000] {
            let bounds: Vec<usize> = (0..keys.len()).step_by(chunk).chain([keys.len()]).collect();
            let spectrum = spectrum::Spectrum::new(bits, max_k);
            let opens = bounds
                .windows(2)
                .map(|w| spectrum.opens_within(&keys[w[0]..w[1]]))
                .collect();
            let (bounds, opens) = spectrum.merge_chunks(&keys, &bounds, opens, 1);
            let got: Vec<Counts<u32>> = spectrum.counts(keys.clone(), &bounds, opens).unwrap();
            assert_eq!(got, reference, "chunk={chunk}");
        }
    }

    #[test]
    fn blocks_positional_and_pooled() {
        let x: Vec<u32> = vec![0, 1, 0, 1, 1, 1, 0, 1];
        let c = block_counts(&x, 2, 4, 2, 1, true).unwrap();
        assert_eq!(c.positions, vec![0, 0, 1]);
        assert_eq!(c.windows, vec![0, 1, 1, 1, 0, 1]);
        assert_eq!(c.counts, vec![1, 1, 2]);
        let c = block_counts(&x, 2, 4, 2, 1, false).unwrap();
        assert_eq!(c.windows, vec![0, 1, 1, 1]);
        assert_eq!(c.counts, vec![3, 1]);
        assert!(block_counts(&x, 2, 4, 3, 1, true).is_err());
        assert!(block_counts(&x, 2, 4, 2, 3, true).is_err());
    }
}
