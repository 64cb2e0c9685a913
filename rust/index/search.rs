//! Queries on the suffix array: a bucket table on the first `q` symbols narrows every
//! search to a small range, binary search does the rest.

use rayon::prelude::*;

use super::codes::{Code, SaIdx, NO_CODE};
use super::{check_shape, with_text, with_text_sa, SaBuf, TextBuf, TrainingIndex};
use crate::error::{CoreError, CoreResult};
use crate::token::Token;

/// `start[c]..start[c+1]` is the suffix-array range of suffixes whose first `q` symbols
/// (symbols after a separator read as 0) have radix-`(sigma+1)` code `c`.
#[derive(Debug)]
pub struct Buckets {
    pub(super) q: usize,
    pub(super) radix: u64,
    pub(super) start: Vec<u64>,
}

#[inline(always)]
pub(super) fn window_code<T: Code>(text: &[T], p: usize, q: usize, radix: u64) -> u64 {
    let mut code = 0u64;
    let mut ended = false;
    for j in 0..q {
        let c = if ended {
            0
        } else {
            let c = text[p + j].get();
            ended = c == 0;
            c
        };
        code = code * radix + c as u64;
    }
    code
}

impl Buckets {
    /// From the suffix array and LCP: a new bucket can only start where `lcp[i] < q`, so
    /// only those suffixes' codes are computed (sequential scan, few random reads).
    pub fn build<T: Code, S: SaIdx>(
        text: &[T],
        sa: &[S],
        lcp: impl Fn(usize) -> usize + Sync,
        sigma: u32,
        d: usize,
    ) -> Self {
        let n = text.len();
        let radix = sigma as u64 + 1;
        // About 2 suffixes per bucket or more, and a table of at most 32 MiB.
        let limit = ((n / 2) as u64).clamp(256, 1 << 22);
        let (mut q, mut size) = (0usize, 1u64);
        while q < d && size.saturating_mul(radix) <= limit {
            size *= radix;
            q += 1;
        }
        let size = size as usize;
        // Per block of the suffix array, in parallel: the suffixes that may start a
        // bucket, gathered without a branch per suffix (one on `lcp < q` would often be
        // mispredicted), then their codes, the random text reads fetched a few ahead.
        const BLOCK: usize = 1 << 14;
        let firsts: Vec<Vec<(usize, usize)>> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map_init(
                || vec![0usize; BLOCK],
                |found, b| {
                    let lo = b * BLOCK;
                    let mut m = 0;
                    for i in lo..(lo + BLOCK).min(n) {
                        found[m] = i;
                        m += usize::from(i == 0 || lcp(i) < q);
                    }
                    let found = &found[..m];
                    (0..m)
                        .map(|j| {
                            if let Some(&ahead) = found.get(j + 8) {
                                crate::memory::prefetch(text, sa[ahead].idx());
                            }
                            let i = found[j];
                            (window_code(text, sa[i].idx(), q, radix) as usize, i)
                        })
                        .collect()
                },
            )
            .collect();
        let mut start = vec![0u64; size + 1];
        // start[c] = first suffix-array index whose code is >= c
        let mut next = 0usize; // codes below `next` have their start set
        for (c, i) in firsts.into_iter().flatten() {
            while next <= c {
                start[next] = i as u64;
                next += 1;
            }
        }
        while next <= size {
            start[next] = n as u64;
            next += 1;
        }
        Buckets { q, radix, start }
    }

    pub fn total(&self) -> usize {
        *self.start.last().unwrap_or(&0) as usize
    }

    pub fn memory_bytes(&self) -> usize {
        8 * self.start.len()
    }

    /// For a pattern without `NO_CODE`: the suffix-array range that holds every suffix
    /// starting with `p[..known]`, and `known`.
    #[inline]
    fn range_for(&self, p: &[u32]) -> (usize, usize, usize) {
        let q = self.q;
        if p.len() >= q {
            let c = p[..q].iter().fold(0u64, |a, &x| a * self.radix + x as u64) as usize;
            (self.start[c] as usize, self.start[c + 1] as usize, q)
        } else {
            let mut lo = 0u64;
            let mut hi = 0u64;
            for j in 0..q {
                let x = if j < p.len() { p[j] as u64 } else { 0 };
                let y = if j < p.len() {
                    p[j] as u64
                } else {
                    self.radix - 1
                };
                lo = lo * self.radix + x;
                hi = hi * self.radix + y;
            }
            (
                self.start[lo as usize] as usize,
                self.start[hi as usize + 1] as usize,
                p.len(),
            )
        }
    }
}

/// A typed view for the queries.
pub(super) struct View<'a, T, S> {
    pub text: &'a [T],
    pub sa: &'a [S],
    pub b: &'a Buckets,
}

impl<T: Code, S: SaIdx> View<'_, T, S> {
    /// Suffix at `s` sorts before pattern `p` (compared from `from`; `p` a prefix of
    /// the suffix counts as not before).
    #[inline(always)]
    fn suffix_less(&self, s: usize, p: &[u32], from: usize) -> bool {
        for (j, &b) in p.iter().enumerate().skip(from) {
            let a = self.text[s + j].get();
            if a != b {
                return a < b;
            }
        }
        false
    }

    /// Suffix at `s` starts with `p` or sorts before it.
    #[inline(always)]
    fn suffix_le_prefix(&self, s: usize, p: &[u32], from: usize) -> bool {
        for (j, &b) in p.iter().enumerate().skip(from) {
            let a = self.text[s + j].get();
            if a != b {
                return a < b;
            }
        }
        true
    }

    /// Symbols the suffix at `s` shares with `p` (never past a separator: `p` holds no 0).
    #[inline(always)]
    fn lcp_with(&self, s: usize, p: &[u32]) -> usize {
        let mut j = 0;
        while j < p.len() && self.text[s + j].get() == p[j] {
            j += 1;
        }
        j
    }

    /// Suffix-array range of the suffixes that start with `p`.
    pub fn prefix_range(&self, p: &[u32]) -> (usize, usize) {
        if p.contains(&NO_CODE) {
            return (0, 0);
        }
        let (lo, hi, known) = self.b.range_for(p);
        if known == p.len() || lo == hi {
            return (lo, hi);
        }
        let slice = &self.sa[lo..hi];
        let a = slice.partition_point(|s| self.suffix_less(s.idx(), p, known));
        let b = a + slice[a..].partition_point(|s| self.suffix_le_prefix(s.idx(), p, known));
        (lo + a, lo + b)
    }

    /// Longest substring of `c` occurring in the text: (length, text position).
    pub fn longest_match(&self, c: &[u32]) -> (usize, usize) {
        let w = c.len();
        let n = self.sa.len();
        let (mut best, mut best_pos) = (0usize, usize::MAX);
        let mut i = 0;
        let mut end = 0; // first unknown token at or after i (w if none)
        while i < w && w - i > best {
            if end < i || i == 0 {
                end = c[i..]
                    .iter()
                    .position(|&x| x == NO_CODE)
                    .map_or(w, |k| i + k);
            }
            if end - i <= best {
                // Nothing from i up to the unknown token can beat `best`.
                i = end + 1;
                continue;
            }
            let p = &c[i..end];
            let (lo, hi, known) = self.b.range_for(p);
            // Matches from i are shorter than `known` when the bucket is empty.
            if lo == hi && known <= best + 1 {
                i += 1;
                continue;
            }
            let (m, pos) = if lo < hi && known == p.len() {
                (p.len(), self.sa[lo].idx())
            } else {
                let ip = if lo < hi {
                    lo + self.sa[lo..hi].partition_point(|s| self.suffix_less(s.idx(), p, known))
                } else {
                    lo
                };
                let mut m = (0usize, usize::MAX);
                for k in [ip.wrapping_sub(1), ip] {
                    if k < n {
                        let s = self.sa[k].idx();
                        let l = self.lcp_with(s, p);
                        if l > m.0 {
                            m = (l, s);
                        }
                    }
                }
                m
            };
            if m > best {
                best = m;
                best_pos = pos;
            }
            i += 1;
        }
        (best, best_pos)
    }
}

/// Rows of queries encoded to codes; `f` gets each row's codes.
fn map_rows<Q: Token, R: Send>(
    idx: &TrainingIndex,
    q: &[Q],
    rows: usize,
    width: usize,
    f: impl Fn(&[u32]) -> R + Sync + Send,
) -> Vec<R> {
    (0..rows)
        .into_par_iter()
        .with_min_len(64)
        .map_init(
            || Vec::with_capacity(width),
            |buf: &mut Vec<u32>, r| {
                buf.clear();
                buf.extend(
                    q[r * width..(r + 1) * width]
                        .iter()
                        .map(|t| idx.alphabet.encode(t.to_i64())),
                );
                f(buf)
            },
        )
        .collect()
}

impl TrainingIndex {
    /// For each of `rows` query strings: the smallest index of an equal training
    /// string (-1 if none) and how many training strings equal it.
    pub fn lookup<Q: Token>(
        &self,
        q: &[Q],
        rows: usize,
        width: usize,
    ) -> CoreResult<(Vec<i64>, Vec<i64>)> {
        check_shape("samples", q.len(), rows, width)?;
        if width != self.length {
            return Ok((vec![-1; rows], vec![0; rows]));
        }
        let mut which = vec![-1i64; rows];
        let mut count = vec![0i64; rows];
        let d = self.length;
        with_text!(self, t => {
            which
                .par_chunks_mut(256)
                .zip(count.par_chunks_mut(256))
                .enumerate()
                .for_each(|(c, (w, k))| {
                    let rows = &q[c * 256 * d..(c * 256 + w.len()) * d];
                    self.strings.find_batch(t, d, &self.alphabet, rows, w, k);
                })
        });
        Ok((which, count))
    }

    /// For each query string: length of its longest substring occurring in a training
    /// string, that string's index and the offset there (-1, -1 for length 0).
    pub fn longest_match<Q: Token>(
        &self,
        q: &[Q],
        rows: usize,
        width: usize,
    ) -> CoreResult<(Vec<i64>, Vec<i64>, Vec<i64>)> {
        check_shape("samples", q.len(), rows, width)?;
        let d1 = self.length + 1;
        let out: Vec<(usize, usize)> = with_text_sa!(self, t, s => {
            let v = View { text: t.as_slice(), sa: s.as_slice(), b: &self.buckets };
            map_rows(self, q, rows, width, |c| v.longest_match(c))
        });
        let mut len = Vec::with_capacity(rows);
        let mut string = Vec::with_capacity(rows);
        let mut offset = Vec::with_capacity(rows);
        for (m, pos) in out {
            len.push(m as i64);
            if m == 0 {
                string.push(-1);
                offset.push(-1);
            } else {
                string.push((pos / d1) as i64);
                offset.push((pos % d1) as i64);
            }
        }
        Ok((len, string, offset))
    }

    /// Occurrences in the training strings of each pattern `flat[offsets[i]..offsets[i+1]]`.
    pub fn count<Q: Token>(&self, flat: &[Q], offsets: &[i64]) -> CoreResult<Vec<i64>> {
        if offsets.is_empty()
            || offsets[0] != 0
            || *offsets.last().unwrap_or(&0) as usize != flat.len()
        {
            return Err(CoreError::value(
                "patterns",
                "offsets must start at 0 and end at the number of tokens",
            ));
        }
        if offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err(CoreError::value(
                "patterns",
                "offsets must be non-decreasing",
            ));
        }
        let k = offsets.len() - 1;
        let out = with_text_sa!(self, t, s => {
            let v = View { text: t.as_slice(), sa: s.as_slice(), b: &self.buckets };
            (0..k)
                .into_par_iter()
                .with_min_len(64)
                .map_init(Vec::new, |buf: &mut Vec<u32>, i| {
                    let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                    buf.clear();
                    buf.extend(flat[a..b].iter().map(|t| self.alphabet.encode(t.to_i64())));
                    let (lo, hi) = v.prefix_range(buf);
                    (hi - lo) as i64
                })
                .collect::<Vec<i64>>()
        });
        Ok(out)
    }

    /// The bucket-table prefix length (for tests and diagnostics).
    pub fn bucket_prefix(&self) -> usize {
        self.buckets.q
    }
}
