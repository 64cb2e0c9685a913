//! Radix sort of packed 64-bit keys, built straight into their most-significant-digit
//! buckets: no unsorted key array, no full-size scratch array and no separate
//! key-building pass. Shared by the k-gram counts (`counting`) and the suffix-array
//! chunk sort (`index::chunksort`).

use rayon::prelude::*;

use crate::error::CoreResult;

/// Keys generated row by row (the windows of one string), the same on every call.
pub(crate) trait RowKeys: Sync {
    /// Keys per row.
    fn per_row(&self) -> usize;
    /// Call `emit` on each key of row `r`, in a fixed order.
    fn row(&self, r: usize, emit: impl FnMut(u64));
}

/// Width of the most significant digit (2048 buckets: a bucket of the 6.4M keys of
/// 200,000 strings of 32 tokens then fits in the L2 cache for its LSD sort).
pub(crate) const TOP: u32 = 11;
/// Keys per task of the histogram and scatter passes (at least; see MAX_TASKS).
const TASK_KEYS: usize = 1 << 18;
/// At most this many tasks: each has a histogram and a slice per bucket (for 6.4e8 keys,
/// 2048 buckets: 8 MiB of slices rather than 80).
const MAX_TASKS: usize = 256;
/// Below this many keys, one bucket (a plain LSD sort).
const MIN_BUCKETED: usize = 1 << 15;

/// Stable LSD radix sort of `keys` in place by bits `low..bits` (the values are below
/// `2**bits`; bits under `low` keep their input order); `scratch` has at least the same
/// length. Digits of at most 11 bits, as few as cover the range; one read of the keys
/// builds every digit's histogram, then one scatter pass per digit (skipped when all
/// keys share the digit).
pub(crate) fn lsd(
    keys: &mut [u64],
    scratch: &mut Vec<u64>,
    low: u32,
    bits: u32,
    hist: &mut Vec<usize>,
) {
    let n = keys.len();
    if bits <= low || n < 2 {
        return;
    }
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    let scratch = &mut scratch[..n];
    let digits = (bits - low).div_ceil(11);
    let width = (bits - low).div_ceil(digits);
    let radix = 1usize << width;
    let dmask = (radix - 1) as u64;
    hist.clear();
    hist.resize(radix * digits as usize, 0);
    for &k in keys.iter() {
        for (dg, h) in hist.chunks_exact_mut(radix).enumerate() {
            h[((k >> (low + dg as u32 * width)) & dmask) as usize] += 1;
        }
    }
    let mut in_keys = true;
    for (dg, h) in hist.chunks_exact_mut(radix).enumerate() {
        if h.contains(&n) {
            continue; // every key has the same digit here
        }
        let shift = low + dg as u32 * width;
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

/// Every key of `src` (values below `2**kb`), sorted by bits `low..kb` (stable: keys
/// equal there stay in the order `src` emits them, rows first), with the bounds of the
/// most-significant-digit buckets (`bounds[0] = 0`, last = number of keys; empty
/// buckets left out). Each bucket is sorted on its own, so any split at these bounds is
/// a split between distinct keys. `per_bucket` runs on each sorted bucket while it is
/// still in cache (and may reorder it within; the bounds stay); its results come back
/// in bucket order.
///
/// Pass 1 counts each task's keys per bucket (tasks = fixed runs of rows); pass 2
/// recomputes the keys and writes each straight to its place: task `t`'s keys of
/// bucket `b` go to a slice of their own (bucket-major, task-minor), so the scatter is
/// parallel without shared writes. Pass 3 sorts the buckets, in parallel. The result
/// does not depend on the thread count.
pub(crate) fn sort_keys<R: RowKeys, T: Send>(
    param: &str,
    rows: usize,
    src: &R,
    kb: u32,
    low: u32,
    top: u32,
    per_bucket: impl Fn(&mut [u64]) -> T + Sync,
) -> CoreResult<(Vec<u64>, Vec<usize>, Vec<T>)> {
    let per_row = src.per_row();
    let n = rows * per_row;
    let top = if n < MIN_BUCKETED { 0 } else { top.min(kb) };
    let shift = kb - top;
    let nb = 1usize << top;
    let bucket = |k: u64| k.checked_shr(shift).unwrap_or(0) as usize;
    let rows_per_task = (TASK_KEYS / per_row.max(1))
        .max(rows.div_ceil(MAX_TASKS))
        .max(1);
    let tasks = rows.div_ceil(rows_per_task);
    let task_rows = |t: usize| t * rows_per_task..((t + 1) * rows_per_task).min(rows);
    let hists: Vec<Vec<usize>> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let mut h = vec![0usize; nb];
            for r in task_rows(t) {
                src.row(r, |k| h[bucket(k)] += 1);
            }
            h
        })
        .collect();
    let mut keys: Vec<u64> = crate::memory::zeroed(param, 0, n)?;
    let mut bounds = vec![0usize];
    {
        let mut parts: Vec<Vec<&mut [u64]>> = (0..tasks).map(|_| Vec::with_capacity(nb)).collect();
        let mut rest: &mut [u64] = &mut keys;
        let mut at = 0;
        for b in 0..nb {
            for (part, h) in parts.iter_mut().zip(&hists) {
                let (here, tail) = std::mem::take(&mut rest).split_at_mut(h[b]);
                part.push(here);
                rest = tail;
                at += h[b];
            }
            if at > *bounds.last().unwrap_or(&0) {
                bounds.push(at);
            }
        }
        parts.into_par_iter().enumerate().for_each(|(t, mut part)| {
            let mut cursor = vec![0usize; nb];
            for r in task_rows(t) {
                src.row(r, |k| {
                    let b = bucket(k);
                    part[b][cursor[b]] = k;
                    cursor[b] += 1;
                });
            }
        });
    }
    let mut buckets: Vec<&mut [u64]> = Vec::with_capacity(bounds.len());
    let mut rest: &mut [u64] = &mut keys;
    for w in bounds.windows(2) {
        let (here, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
        buckets.push(here);
        rest = tail;
    }
    let results = buckets
        .into_par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(scratch, hist), b| {
                lsd(b, scratch, low.min(shift), shift, hist);
                per_bucket(b)
            },
        )
        .collect();
    Ok((keys, bounds, results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_is_stable_below_low() {
        // bits 20..50: 32 values, in the MSD digit and the LSD range; low 20 bits: the
        // emission index, which must stay ascending among equal high bits
        let n = 200_000u64;
        let v: Vec<u64> = (0..n)
            .map(|i| {
                let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                ((h >> 61) << 47) | (((h >> 40) & 3) << 20) | i
            })
            .collect();
        let (got, _, _) = sort_keys("x", 1000, &Plain(&v, 200), 50, 20, TOP, |_| ()).unwrap();
        let mut want = v.clone();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    struct Plain<'a>(&'a [u64], usize);
    impl RowKeys for Plain<'_> {
        fn per_row(&self) -> usize {
            self.1
        }
        fn row(&self, r: usize, mut emit: impl FnMut(u64)) {
            self.0[r * self.1..(r + 1) * self.1]
                .iter()
                .for_each(|&k| emit(k));
        }
    }

    #[test]
    fn sort_keys_sorts_with_bucket_bounds() {
        for (n, bits) in [
            (5000usize, 64u32),
            (100_000, 12),
            (100_000, 29),
            (100_000, 40),
            (300_000, 64),
        ] {
            // digits shared by every key (& !0xF0) and many equal keys
            let v: Vec<u64> = (0..n as u64)
                .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) & !0xF0)
                .collect();
            for per_row in [1, 7, 1000] {
                let rows = n / per_row;
                let (got, bounds, lens) =
                    sort_keys("x", rows, &Plain(&v, per_row), bits, 0, TOP, |b| b.len()).unwrap();
                let mut want = v[..rows * per_row].to_vec();
                want.sort_unstable();
                assert_eq!(got, want, "n={n} bits={bits} per_row={per_row}");
                assert_eq!(bounds[0], 0);
                assert!(bounds.windows(2).zip(&lens).all(|(w, &l)| w[1] - w[0] == l));
                assert_eq!(*bounds.last().unwrap(), got.len());
                for b in &bounds[1..bounds.len() - 1] {
                    assert!(
                        got[b - 1] >> (bits - TOP.min(bits)) < got[*b] >> (bits - TOP.min(bits))
                    );
                }
            }
        }
    }
}
