//! Every k-gram count `k = 1..=max_k` from the sorted, zero-padded keys of the
//! longest windows (one pass over the keys writes the groups of every k).

use rayon::prelude::*;

use super::Counts;
use crate::error::CoreResult;
use crate::token::Token;

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
    /// (lcp with `prev`, avail) of `key`; `prev = !key` gives lcp 0.
    #[inline(always)]
    fn at(&self, prev: u64, key: u64) -> (usize, usize) {
        (
            self.lcp_of_lz[(prev ^ key).leading_zeros() as usize] as usize,
            self.avail_of_tz[key.trailing_zeros() as usize] as usize,
        )
    }
}

/// Per-k state of a chunk's emission pass.
const INHERITED: usize = usize::MAX; // the group open before the chunk is still open
const CLOSED: usize = usize::MAX - 1; // no group of this k is open

/// The key before chunk `lo`, or one that shares no token with `keys[0]`.
fn before(keys: &[u64], lo: usize) -> u64 {
    match lo.checked_sub(1) {
        Some(p) => keys[p],
        None => !keys[0],
    }
}

/// Every k-gram count `k = 1..=max_k` from the sorted zero-padded keys of the windows
/// of `max_k` tokens of `bits` bits. Key `i` opens a new k-gram group iff
/// `lcp[i] < k <= avail[i]` (a shorter window between two equal k-grams would have to
/// sort between them) and closes every open group of `k > lcp[i]`. The keys are split
/// into chunks (any split gives the same result): the openings of each chunk per k are
/// counted first (`opens_within`, run on each radix bucket right after its sort, and
/// `merge_chunks`), so `counts` writes every chunk's groups straight into the final
/// arrays in parallel; groups running over a chunk boundary get their counts in a short
/// sequential fix-up.
pub(super) struct Spectrum {
    shape: KeyShape,
    bits: u32,
    max_k: usize,
}

impl Spectrum {
    pub(super) fn new(bits: u32, max_k: usize) -> Self {
        Spectrum {
            shape: KeyShape::new(bits, max_k),
            bits,
            max_k,
        }
    }

    /// Groups opened per k (index k of the result, `0..=max_k`) by `run[1..]`, each key
    /// compared with the one before it in `run`.
    pub(super) fn opens_within(&self, run: &[u64]) -> Vec<usize> {
        let mut diff = vec![0isize; self.max_k + 2];
        for w in run.windows(2) {
            let (l, a) = self.shape.at(w[0], w[1]);
            if l < a {
                diff[l + 1] += 1;
                diff[a + 1] -= 1;
            }
        }
        let mut acc = 0isize;
        (0..=self.max_k)
            .map(|k| {
                acc += diff[k];
                acc as usize
            })
            .collect()
    }

    /// Chunks of at least `min` keys (the last may be smaller) made of whole runs
    /// `bounds` (`0 = bounds[0] < ... < bounds[last] = keys.len()`) whose `opens_within`
    /// are `opens`, with the openings of each chunk (those by each run's first key added).
    pub(super) fn merge_chunks(
        &self,
        keys: &[u64],
        bounds: &[usize],
        opens: Vec<Vec<usize>>,
        min: usize,
    ) -> (Vec<usize>, Vec<Vec<usize>>) {
        let mut out_bounds = vec![0usize];
        let mut out_opens: Vec<Vec<usize>> = Vec::new();
        let mut acc = vec![0usize; self.max_k + 1];
        for (w, o) in bounds.windows(2).zip(opens) {
            let (l, a) = self.shape.at(before(keys, w[0]), keys[w[0]]);
            for (k, (x, y)) in acc.iter_mut().zip(&o).enumerate() {
                *x += y + usize::from(l < k && k <= a);
            }
            if w[1] - out_bounds[out_bounds.len() - 1] >= min || w[1] == keys.len() {
                out_bounds.push(w[1]);
                out_opens.push(std::mem::replace(&mut acc, vec![0usize; self.max_k + 1]));
            }
        }
        (out_bounds, out_opens)
    }

    /// The counts of every k, from the keys split at `bounds` with each chunk's openings.
    /// The counts of `max_k` are written over the keys already read (each chunk into
    /// its own range, then moved together), so the largest count array needs no fresh
    /// memory (the kernel's clearing of fresh pages is a good part of the time).
    pub(super) fn counts<X: Token>(
        &self,
        mut keys: Vec<u64>,
        bounds: &[usize],
        opens: Vec<Vec<usize>>,
    ) -> CoreResult<Vec<Counts<X>>> {
        let (bits, max_k, shape) = (self.bits, self.max_k, &self.shape);
        let n = keys.len();
        if n == 0 {
            return Ok((0..max_k).map(|_| Counts::default()).collect());
        }
        let chunks: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        let prevs: Vec<u64> = chunks.iter().map(|&(lo, _)| before(&keys, lo)).collect();
        let groups: Vec<usize> = (0..=max_k)
            .map(|k| opens.iter().map(|o| o[k]).sum())
            .collect();
        let out_bytes: u128 = (1..=max_k)
            .map(|k| groups[k] as u128 * (k * std::mem::size_of::<X>() + 8) as u128)
            .sum();
        crate::memory::ensure_available("max_k", "the k-gram counts", out_bytes)?;
        let mut windows: Vec<Vec<X>> = Vec::with_capacity(max_k);
        let mut counts: Vec<Vec<i64>> = Vec::with_capacity(max_k - 1);
        for (k, &g) in groups.iter().enumerate().skip(1) {
            windows.push(crate::memory::zeroed("max_k", X::from_i64(0), g * k)?);
            if k < max_k {
                counts.push(crate::memory::zeroed("max_k", 0i64, g)?);
            }
        }
        // split the outputs and the keys into per-chunk parts
        let ends: Vec<Ends> = {
            let mut parts: Vec<Part<X>> = Vec::with_capacity(chunks.len());
            let mut rest: &mut [u64] = &mut keys;
            for (&(lo, hi), &prev) in chunks.iter().zip(&prevs) {
                let (here, tail) = std::mem::take(&mut rest).split_at_mut(hi - lo);
                rest = tail;
                parts.push(Part {
                    lo,
                    prev,
                    keys: here,
                    windows: Vec::with_capacity(max_k),
                    counts: Vec::with_capacity(max_k - 1),
                });
            }
            for (k, w) in (1..=max_k).zip(windows.iter_mut()) {
                let mut w: &mut [X] = w;
                for (part, o) in parts.iter_mut().zip(&opens) {
                    let (wa, wb) = std::mem::take(&mut w).split_at_mut(o[k] * k);
                    part.windows.push(wa);
                    w = wb;
                }
            }
            for (k, cnt) in (1..max_k).zip(counts.iter_mut()) {
                let mut cnt: &mut [i64] = cnt;
                for (part, o) in parts.iter_mut().zip(&opens) {
                    let (ca, cb) = std::mem::take(&mut cnt).split_at_mut(o[k]);
                    part.counts.push(ca);
                    cnt = cb;
                }
            }
            let fast = max_k <= 8 && bits <= 8;
            parts
                .into_par_iter()
                .map(|part| {
                    if fast {
                        emit_chunk::<X, 8>(part, shape, bits, max_k)
                    } else {
                        emit_chunk::<X, 64>(part, shape, bits, max_k)
                    }
                })
                .collect()
        };
        for k in 1..=max_k {
            // where group `g` of chunk `c` keeps its count
            let mut base = 0; // groups of k before chunk c
            let mut slot: Vec<usize> = Vec::new(); // per chunk: index of its first group
            for (o, &(lo, _)) in opens.iter().zip(&chunks) {
                slot.push(if k < max_k { base } else { lo });
                base += o[k];
            }
            let mut put = |c: usize, g: usize, count: usize| {
                if k < max_k {
                    counts[k - 1][slot[c] + g] = count as i64;
                } else {
                    keys[slot[c] + g] = count as u64;
                }
            };
            let mut pending: Option<(usize, usize, usize)> = None; // (chunk, group, start key)
            for (c, e) in ends.iter().enumerate() {
                if let (Some(end), Some((pc, g, start))) = (e.first_close[k], pending) {
                    put(pc, g, end - start);
                }
                if !e.inherited[k] {
                    pending = e.open[k].map(|(g, start)| (c, g, start));
                }
            }
            if let Some((pc, g, start)) = pending {
                put(pc, g, n - start);
            }
        }
        // the counts of max_k: each chunk's at the start of its range, moved together
        let mut at = 0;
        for (o, &(lo, _)) in opens.iter().zip(&chunks) {
            keys.copy_within(lo..lo + o[max_k], at);
            at += o[max_k];
        }
        keys.truncate(at);
        let last: Vec<i64> = bytemuck::allocation::try_cast_vec(keys)
            .unwrap_or_else(|(_, k)| k.into_iter().map(|c| c as i64).collect());
        counts.push(last);
        Ok(windows
            .into_iter()
            .zip(counts)
            .map(|(windows, counts)| Counts {
                positions: Vec::new(),
                windows,
                counts,
            })
            .collect())
    }
}

/// A chunk of keys (its first at `lo`, `prev` the key before it) and its parts of the
/// outputs, per k (`counts` for `k < max_k`; those of `max_k` go over the chunk's keys).
struct Part<'a, X> {
    lo: usize,
    prev: u64,
    keys: &'a mut [u64],
    windows: Vec<&'a mut [X]>,
    counts: Vec<&'a mut [i64]>,
}

/// Per k: the first key of the chunk that closes the group inherited from before it,
/// the group left open at its end (index in the chunk's part, start key), and whether
/// the inherited group is still open at its end.
struct Ends {
    first_close: Vec<Option<usize>>,
    open: Vec<Option<(usize, usize)>>,
    inherited: Vec<bool>,
}

/// Writes a chunk's groups; `W` = tokens decoded per key (8: every window fits in 8
/// tokens of at most 8 bits, copied as a fixed-size block; 64: the general case).
fn emit_chunk<X: Token, const W: usize>(
    mut part: Part<X>,
    shape: &KeyShape,
    bits: u32,
    max_k: usize,
) -> Ends {
    let mask = (1u64 << bits) - 1;
    let kb = max_k as u32 * bits;
    let mut state = [INHERITED; 65];
    let mut cursor = [0usize; 65];
    let mut first_close = vec![None; max_k + 1];
    let mut tokens = [X::from_i64(0); W];
    let mut tokens8 = [X::from_i64(0); 8];
    let mut prev = part.prev;
    for j in 0..part.keys.len() {
        let (i, key) = (part.lo + j, part.keys[j]);
        let (l, a) = shape.at(prev, key);
        prev = key;
        if l < a {
            if W == 8 {
                // token m (code - 1) into byte m, from the top bits of the left-aligned
                // key (8 * bits <= 64), all in a register (eight byte stores read back
                // as one word would stall store forwarding); tokens past max_k decode
                // to garbage that is never kept
                let left = key << (64 - kb);
                let mut w = 0u64;
                for m in 0..8u32 {
                    w |= ((left >> (64 - bits * (m + 1))) & mask) << (8 * m);
                }
                tokens8 = X::from_bytes8(w.wrapping_sub(0x0101_0101_0101_0101));
            } else {
                for (m, t) in tokens[..max_k].iter_mut().rev().enumerate() {
                    *t = X::from_i64((((key >> (m as u32 * bits)) & mask) as i64) - 1);
                }
            }
        }
        // an exclusive range: RangeInclusive's iteration costs measurably more here
        for k in l + 1..max_k + 1 {
            match state[k] {
                INHERITED => first_close[k] = Some(i),
                CLOSED => {}
                // the group closed here started at or after the chunk's key
                // `cursor[k] - 1`, so for max_k that key is already read
                start if k < max_k => part.counts[k - 1][cursor[k] - 1] = (i - start) as i64,
                start => part.keys[cursor[k] - 1] = (i - start) as u64,
            }
            if k <= a {
                state[k] = i;
                let (at, out) = (cursor[k] * k, &mut *part.windows[k - 1]);
                if W == 8 {
                    match out.get_mut(at..at + W) {
                        // a fixed-size copy (no memcpy call); the tokens past this
                        // k-gram are overwritten by the next one
                        Some(dst) => dst.copy_from_slice(&tokens8),
                        None => copy_tail(&mut out[at..at + k], &tokens8[..k]),
                    }
                } else {
                    out[at..at + k].copy_from_slice(&tokens[..k]);
                }
                cursor[k] += 1;
            } else {
                state[k] = CLOSED;
            }
        }
    }
    Ends {
        first_close,
        open: (0..=max_k)
            .map(|k| match state[k] {
                INHERITED | CLOSED => None,
                start => Some((cursor[k] - 1, start)),
            })
            .collect(),
        inherited: state[..=max_k].iter().map(|&s| s == INHERITED).collect(),
    }
}

/// The last k-grams of a part, kept out of line so the fixed-size copy stays a plain
/// store.
#[cold]
#[inline(never)]
fn copy_tail<X: Copy>(dst: &mut [X], src: &[X]) {
    dst.copy_from_slice(src);
}
