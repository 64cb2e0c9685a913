//! Exact substring frequencies in a set of equal-length token strings: every distinct
//! k-gram (never crossing a string boundary) and the aligned blocks of a hierarchy
//! level, with their counts.
//!
//! Fast path: when a window fits in 64 bits (token code `t+1` in `bits` bits), windows
//! become packed integer keys, one LSD radix sort orders them and equal keys are
//! counted. For all k at once, keys of the longest window (zero-padded at string ends)
//! are sorted once: the order is then also the order of every shorter prefix, so one
//! parallel pass over the sorted keys writes the groups of every k. Otherwise windows are sorted by comparison (single k) or the
//! suffix index's LCP intervals are scanned (all k).

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::index::{check_shape, token_range, Token, TrainingIndex};

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

/// `n` zeroed elements in fresh memory, which Linux is asked to back with transparent
/// huge pages: the big key and output arrays are written once, and 4 KiB page faults
/// cost as much as the counting itself.
fn zeroed<T: Copy + Send + Sync>(zero: T, n: usize) -> Vec<T> {
    let mut v = vec![zero; n];
    crate::memory::advise_huge_pages(&mut v);
    v
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

/// LSD radix sort of `keys` (values below `2**bits`) in place; `scratch` has the same
/// length. Digits of at most 11 bits, as few as cover `bits`; one read of the keys
/// builds every digit's histogram, then one scatter pass per digit (skipped when all
/// keys share the digit).
fn lsd(keys: &mut [u64], scratch: &mut [u64], bits: u32, hist: &mut Vec<usize>) {
    let n = keys.len();
    if bits == 0 || n < 2 {
        return;
    }
    let digits = bits.div_ceil(11);
    let width = bits.div_ceil(digits);
    let radix = 1usize << width;
    let dmask = (radix - 1) as u64;
    hist.clear();
    hist.resize(radix * digits as usize, 0);
    for &k in keys.iter() {
        for (dg, h) in hist.chunks_exact_mut(radix).enumerate() {
            h[((k >> (dg as u32 * width)) & dmask) as usize] += 1;
        }
    }
    let mut in_keys = true;
    for (dg, h) in hist.chunks_exact_mut(radix).enumerate() {
        if h.contains(&n) {
            continue; // every key has the same digit here
        }
        let shift = dg as u32 * width;
        let (src, dst): (&mut [u64], &mut [u64]) = if in_keys {
            (&mut *keys, &mut *scratch)
        } else {
            (&mut *scratch, &mut *keys)
        };
        let mut acc = 0;
        for c in h.iter_mut() {
            let here = *c;
            *c = acc;
            acc += here;
        }
        for &k in src.iter() {
            let b = ((k >> shift) & dmask) as usize;
            dst[h[b]] = k;
            h[b] += 1;
        }
        in_keys = !in_keys;
    }
    if !in_keys {
        keys.copy_from_slice(scratch);
    }
}

/// Radix sort of `keys` whose values are below `2**bits`: one MSD pass on the top
/// 11 bits, then an in-cache LSD sort of each bucket, buckets in parallel.
pub fn radix_sort(keys: &mut Vec<u64>, bits: u32) {
    const TOP: u32 = 11;
    let n = keys.len();
    let mut scratch = zeroed(0u64, n);
    if n < (1 << 15) || bits <= TOP {
        lsd(keys, &mut scratch, bits, &mut Vec::new());
        return;
    }
    let shift = bits - TOP;
    let mut hist = vec![0usize; 1 << TOP];
    for &k in keys.iter() {
        hist[(k >> shift) as usize] += 1;
    }
    let sizes = hist.clone();
    let mut acc = 0;
    for h in hist.iter_mut() {
        let c = *h;
        *h = acc;
        acc += c;
    }
    for &k in keys.iter() {
        let b = (k >> shift) as usize;
        scratch[hist[b]] = k;
        hist[b] += 1;
    }
    // scratch holds the buckets; sort each, using the matching part of `keys` as scratch
    let mut parts = Vec::with_capacity(sizes.len());
    let (mut a, mut b): (&mut [u64], &mut [u64]) = (&mut scratch[..], &mut keys[..]);
    for &size in &sizes {
        let (x, rest_a) = a.split_at_mut(size);
        let (y, rest_b) = b.split_at_mut(size);
        if size > 1 {
            parts.push((x, y));
        }
        a = rest_a;
        b = rest_b;
    }
    parts
        .into_par_iter()
        .for_each_init(Vec::new, |hist, (x, y)| lsd(x, y, shift, hist));
    std::mem::swap(keys, &mut scratch);
}

/// Count the windows of width `w` at `offsets` (within each row) of `rows` rows of `d`.
/// `positional`: keyed by (index into `offsets`, tokens); else by tokens alone.
fn count_windows<X: Token>(
    x: &[X],
    rows: usize,
    d: usize,
    w: usize,
    offsets: &[usize],
    positional: bool,
    max_tok: u64,
) -> Counts<X> {
    let bits = bits_for(max_tok + 1);
    let pos_bits = if positional {
        bits_for(offsets.len().saturating_sub(1) as u64)
    } else {
        0
    };
    let total = rows * offsets.len();
    if (w as u64) * (bits as u64) + pos_bits as u64 <= 64 {
        let wb = w as u32 * bits;
        let mut keys: Vec<u64> = vec![0; total];
        keys.par_chunks_mut(offsets.len().max(1))
            .enumerate()
            .for_each(|(r, out)| {
                let row = &x[r * d..(r + 1) * d];
                for (oi, (k, &o)) in out.iter_mut().zip(offsets).enumerate() {
                    // pos_bits > 0 implies wb < 64
                    let mut key = if pos_bits > 0 { (oi as u64) << wb } else { 0 };
                    let mut sh = wb;
                    for t in &row[o..o + w] {
                        sh -= bits;
                        key |= (t.to_i64() as u64 + 1) << sh;
                    }
                    *k = key;
                }
            });
        radix_sort(&mut keys, wb + pos_bits);
        let mut out = Counts::default();
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
        out
    } else {
        // (offset index, flat start)
        let mut items: Vec<(u32, usize)> = (0..total)
            .map(|i| {
                (
                    (i % offsets.len()) as u32,
                    (i / offsets.len()) * d + offsets[i % offsets.len()],
                )
            })
            .collect();
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
        let mut out = Counts::default();
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
        out
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
    Ok(count_windows(x, rows, d, k, &offsets, false, max_tok))
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
            .kgram_counts(&ks)
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
    // One key per (row, offset): the window of length min(max_k, d - offset), zero padded,
    // rolled along the row (shift in the next token) rather than rebuilt.
    let kb = max_k as u32 * bits;
    let full = if kb == 64 { u64::MAX } else { (1u64 << kb) - 1 };
    let mut keys: Vec<u64> = zeroed(0, rows * d);
    keys.par_chunks_mut(d).enumerate().for_each(|(r, out)| {
        let row = &x[r * d..(r + 1) * d];
        let mut key = 0u64;
        for t in &row[..(max_k - 1).min(d)] {
            key = (key << bits) | (t.to_i64() as u64 + 1);
        }
        for (o, k) in out.iter_mut().enumerate() {
            let next = row.get(o + max_k - 1).map_or(0, |t| t.to_i64() as u64 + 1);
            key = (key.checked_shl(bits).unwrap_or(0) | next) & full;
            *k = key;
        }
    });
    radix_sort(&mut keys, kb);
    Ok(spectrum_from_sorted(&keys, bits, max_k, CHUNK))
}

/// Tokens shared with the previous key (`lcp`) and window length (`avail`) of a sorted,
/// zero-padded key, by table lookups on its leading/trailing zero counts.
struct KeyShape {
    lcp_of_lz: [u8; 65],
    avail_of_tz: [u8; 65],
}

impl KeyShape {
    fn new(bits: u32, max_k: usize) -> Self {
        let unused = 64 - max_k as u32 * bits;
        let mut lcp_of_lz = [max_k as u8; 65];
        let mut avail_of_tz = [0u8; 65];
        for z in 0..64u32 {
            lcp_of_lz[z as usize] = (z.saturating_sub(unused) / bits) as u8;
            avail_of_tz[z as usize] = (max_k as u32).saturating_sub(z / bits) as u8;
        }
        KeyShape {
            lcp_of_lz,
            avail_of_tz,
        }
    }
    /// (lcp with `prev`, avail) of `key`; `prev = None` for the first key.
    #[inline(always)]
    fn at(&self, prev: Option<u64>, key: u64) -> (usize, usize) {
        let l = match prev {
            Some(p) => self.lcp_of_lz[(p ^ key).leading_zeros() as usize],
            None => 0,
        };
        (
            l as usize,
            self.avail_of_tz[key.trailing_zeros() as usize] as usize,
        )
    }
}

const CHUNK: usize = 1 << 16;
/// Per-k state of a chunk's emission pass.
const INHERITED: usize = usize::MAX; // the group open before the chunk is still open
const CLOSED: usize = usize::MAX - 1; // no group of this k is open

/// Every k-gram count `k = 1..=max_k` from the sorted zero-padded keys. Key `i` opens a
/// new k-gram group iff `lcp[i] < k <= avail[i]` (a shorter window between two equal
/// k-grams would have to sort between them) and closes every open group of `k > lcp[i]`.
/// Pass 1 counts the openings of each chunk per k (a difference array), so pass 2 writes
/// every chunk's groups straight into the final arrays in parallel; groups running over
/// a chunk boundary get their counts in a short sequential fix-up.
fn spectrum_from_sorted<X: Token>(
    keys: &[u64],
    bits: u32,
    max_k: usize,
    chunk: usize,
) -> Vec<Counts<X>> {
    let n = keys.len();
    let shape = KeyShape::new(bits, max_k);
    let mask = (1u64 << bits) - 1;
    let prev = |i: usize| if i == 0 { None } else { Some(keys[i - 1]) };
    let chunks = n.div_ceil(chunk);
    // opens[c][k]: groups of k opened in chunk c
    let opens: Vec<Vec<usize>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut diff = vec![0isize; max_k + 2];
            let lo = c * chunk;
            for (i, &key) in (lo..).zip(&keys[lo..(lo + chunk).min(n)]) {
                let (l, a) = shape.at(prev(i), key);
                if l < a {
                    diff[l + 1] += 1;
                    diff[a + 1] -= 1;
                }
            }
            let mut acc = 0isize;
            (0..=max_k)
                .map(|k| {
                    acc += diff[k];
                    acc as usize
                })
                .collect()
        })
        .collect();
    let mut windows: Vec<Vec<X>> = Vec::with_capacity(max_k);
    let mut counts: Vec<Vec<i64>> = Vec::with_capacity(max_k);
    for k in 1..=max_k {
        let g: usize = opens.iter().map(|o| o[k]).sum();
        windows.push(zeroed(X::from_i64(0), g * k));
        counts.push(zeroed(0i64, g));
    }
    // split the outputs into per-chunk parts
    type Part<'a, X> = (usize, Vec<&'a mut [X]>, Vec<&'a mut [i64]>);
    let mut parts: Vec<Part<X>> = (0..chunks).map(|c| (c, Vec::new(), Vec::new())).collect();
    for (k, (w, cnt)) in (1..=max_k).zip(windows.iter_mut().zip(counts.iter_mut())) {
        let (mut w, mut cnt): (&mut [X], &mut [i64]) = (w, cnt);
        for (part, o) in parts.iter_mut().zip(&opens) {
            let (wa, wb) = std::mem::take(&mut w).split_at_mut(o[k] * k);
            let (ca, cb) = std::mem::take(&mut cnt).split_at_mut(o[k]);
            part.1.push(wa);
            part.2.push(ca);
            w = wb;
            cnt = cb;
        }
    }
    // per chunk and k: first key that closes the inherited group, and the group left
    // open at the chunk's end as (index within the chunk's part, start key)
    type Ends = (Vec<Option<usize>>, Vec<Option<(usize, usize)>>, Vec<bool>);
    let ends: Vec<Ends> = parts
        .into_par_iter()
        .map(|(c, mut w, mut cnt)| {
            let mut state = [INHERITED; 65];
            let mut cursor = [0usize; 65];
            let mut first_close = vec![None; max_k + 1];
            let mut tokens = [X::from_i64(0); 64];
            let lo = c * chunk;
            for (i, &key) in (lo..).zip(&keys[lo..(lo + chunk).min(n)]) {
                let (l, a) = shape.at(prev(i), key);
                if l < a {
                    for (m, t) in tokens[..max_k].iter_mut().rev().enumerate() {
                        *t = X::from_i64((((key >> (m as u32 * bits)) & mask) as i64) - 1);
                    }
                }
                for k in l + 1..=max_k {
                    match state[k] {
                        INHERITED => first_close[k] = Some(i),
                        CLOSED => {}
                        start => cnt[k - 1][cursor[k] - 1] = (i - start) as i64,
                    }
                    if k <= a {
                        state[k] = i;
                        let (at, out) = (cursor[k] * k, &mut w[k - 1]);
                        if max_k <= 8 && at + 8 <= out.len() {
                            // a fixed-size copy (no memcpy call); the tokens past this
                            // k-gram are overwritten by the next one
                            out[at..at + 8].copy_from_slice(&tokens[..8]);
                        } else {
                            out[at..at + k].copy_from_slice(&tokens[..k]);
                        }
                        cursor[k] += 1;
                    } else {
                        state[k] = CLOSED;
                    }
                }
            }
            let open = (0..=max_k)
                .map(|k| match state[k] {
                    INHERITED | CLOSED => None,
                    start => Some((cursor[k] - 1, start)),
                })
                .collect();
            let inherited = state.iter().map(|&s| s == INHERITED).collect();
            (first_close, open, inherited)
        })
        .collect();
    for k in 1..=max_k {
        let mut base = 0; // groups of k before chunk c
        let mut pending: Option<(usize, usize)> = None; // (global group, start key)
        for (o, (first_close, open, inherited)) in opens.iter().zip(&ends) {
            if let (Some(end), Some((g, start))) = (first_close[k], pending) {
                counts[k - 1][g] = (end - start) as i64;
            }
            if !inherited[k] {
                pending = open[k].map(|(g, start)| (base + g, start));
            }
            base += o[k];
        }
        if let Some((g, start)) = pending {
            counts[k - 1][g] = (n - start) as i64;
        }
    }
    windows
        .into_iter()
        .zip(counts)
        .map(|(windows, counts)| Counts {
            positions: Vec::new(),
            windows,
            counts,
        })
        .collect()
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
    Ok(count_windows(x, rows, d, w, &offsets, positional, max_tok))
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
    fn radix_sort_sorts() {
        let mut v: Vec<u64> = (0..5000u64)
            .map(|i| ((i * 2654435761) % 1_000_003) ^ (i << 40))
            .collect();
        let mut w = v.clone();
        w.sort_unstable();
        radix_sort(&mut v, 64);
        assert_eq!(v, w);
        // the MSD + per-bucket LSD path, and digits shared by every key
        for bits in [12u32, 29, 40, 64] {
            let mut v: Vec<u64> = (0..100_000u64)
                .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) & !0xF0)
                .collect();
            let mut w = v.clone();
            w.sort_unstable();
            radix_sort(&mut v, bits);
            assert_eq!(v, w, "bits={bits}");
        }
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
            let got: Vec<Counts<u32>> = spectrum_from_sorted(&keys, bits, max_k, chunk);
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
