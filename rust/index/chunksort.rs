//! Suffix array and LCP of a set of short strings over a small alphabet (u8 text) by
//! radix sorting packed token chunks, in place of libsais plus an LCP pass.
//!
//! Each suffix is keyed by its first `t` tokens, packed most significant first (code 0
//! past the string's end, so a shorter suffix sorts first), with its text position in
//! the low bits. One radix sort (`crate::radix`, MSD buckets then LSD within each)
//! orders all suffixes by (first `t` tokens, position); then, bucket by bucket while it
//! is in cache, only runs that share all `t` tokens and go on are re-keyed with the
//! next `t` tokens and sorted again. The LCP falls out of the same comparisons (the
//! first differing token of adjacent keys), so there is no pass over random text
//! positions. Suffixes equal up to their separators are ordered by position, and the
//! result does not depend on the thread count.
//!
//! The cost is one radix sort plus one re-sort per further chunk of shared prefix, so
//! this path is taken only while a string spans few chunks; longer strings go to
//! libsais, whose time is linear whatever the repeats.

use rayon::prelude::*;

use super::LcpBuf;
use crate::error::CoreResult;
use crate::radix::{self, RowKeys};

/// Most chunks a string may span (the worst case, all strings equal, re-sorts this
/// many times).
const MAX_LEVELS: usize = 8;
/// Fewest tokens per chunk worth a radix sort.
const MIN_TOKENS: u32 = 4;

/// Packing of one training set: `b` bits per code, `t` codes per chunk, `pb` position
/// bits, strings of `d` tokens.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    b: u32,
    t: u32,
    pb: u32,
    d: usize,
}

impl Plan {
    /// The packing for `n` text positions, strings of `d`, codes `0..=sigma`; `None`
    /// when chunks would be too short or strings too long for this path.
    pub(super) fn new(n: usize, d: usize, sigma: u32) -> Option<Plan> {
        if sigma == 0 || sigma > 255 || n > i32::MAX as usize || d == 0 {
            return None;
        }
        let b = u32::BITS - sigma.leading_zeros();
        let pb = usize::BITS - (n.max(2) - 1).leading_zeros();
        let t = (64 - pb) / b;
        if t < MIN_TOKENS || d.div_ceil(t as usize) > MAX_LEVELS {
            return None;
        }
        Some(Plan { b, t, pb, d })
    }

    fn pos_mask(&self) -> u64 {
        (1u64 << self.pb) - 1
    }

    /// Tokens of suffix `p` from depth `h` on, at most `t` of them (fewer at the
    /// string's end), packed first token highest.
    #[inline]
    fn chunk(&self, text: &[u8], p: usize, h: usize) -> u64 {
        let rem = self.d - p % (self.d + 1);
        let take = rem.saturating_sub(h).min(self.t as usize);
        let top = (self.t - 1) * self.b;
        text[p + h..p + h + take]
            .iter()
            .enumerate()
            .fold(0u64, |k, (j, &c)| {
                k | (c as u64) << (top - j as u32 * self.b)
            })
    }

    /// Tokens the packed chunks `a != b` share before they differ.
    #[inline]
    fn shared(&self, a: u64, b: u64) -> usize {
        let high = 63 - (a ^ b).leading_zeros();
        (self.t - 1 - high / self.b) as usize
    }

    /// `(chunk at depth h) << pb | p`: sorting these orders by chunk, then position.
    #[inline]
    fn keyed(&self, text: &[u8], p: usize, h: usize) -> u64 {
        self.chunk(text, p, h) << self.pb | p as u64
    }
}

/// First chunks of every suffix, row by row in position order, rolled along the row
/// (one shift per position).
struct FirstChunks<'a> {
    plan: Plan,
    text: &'a [u8],
}

impl RowKeys for FirstChunks<'_> {
    fn per_row(&self) -> usize {
        self.plan.d + 1
    }

    fn row(&self, r: usize, mut emit: impl FnMut(u64)) {
        let Plan { b, t, pb, d } = self.plan;
        let (t, start) = (t as usize, r * (d + 1));
        let row = &self.text[start..start + d];
        let mask = (1u64 << (t as u32 * b)) - 1;
        let mut chunk = self.plan.chunk(self.text, start, 0);
        for o in 0..d {
            emit(chunk << pb | (start + o) as u64);
            let next = row.get(o + t).map_or(0, |&c| c as u64);
            chunk = (chunk << b) & mask | next;
        }
        emit((start + d) as u64); // the separator's suffix: empty
    }
}

/// Above this many suffixes a run is re-sorted by a radix sort, below by comparisons.
const RADIX_RUN: usize = 256;

/// Buffers of the radix sort of long runs, reused within a bucket.
#[derive(Default)]
struct Scratch {
    keys: Vec<u64>,
    hist: Vec<usize>,
}

/// Sort the run `keys` (keyed at depth `h`, sorted) into suffix order, writing
/// `lcp[1..]`; `lcp[0]` (against the suffix before the run) is the caller's.
fn resolve<L: Copy>(
    plan: &Plan,
    text: &[u8],
    keys: &mut [u64],
    lcp: &mut [L],
    h: usize,
    conv: fn(usize) -> L,
    scratch: &mut Scratch,
) {
    let pmask = plan.pos_mask();
    let last_slot = (1u64 << plan.b) - 1;
    let t = plan.t as usize;
    let mut start = 0;
    while start < keys.len() {
        let chunk = keys[start] >> plan.pb;
        let end = start
            + keys[start..]
                .iter()
                .take_while(|&&k| k >> plan.pb == chunk)
                .count();
        if end < keys.len() {
            lcp[end] = conv(h + plan.shared(chunk, keys[end] >> plan.pb));
        }
        if end - start > 1 {
            if chunk & last_slot == 0 {
                // equal up to the string's end: identical suffixes, in position order
                let p = (keys[start] & pmask) as usize;
                let full = plan.d - p % (plan.d + 1);
                lcp[start + 1..end].fill(conv(full));
            } else {
                // all t tokens shared: order the run by the next chunk
                let run = &mut keys[start..end];
                for k in run.iter_mut() {
                    *k = plan.keyed(text, (*k & pmask) as usize, h + t);
                }
                if run.len() > RADIX_RUN {
                    // stable on the chunk bits: the run is in position order already
                    let bits = plan.t * plan.b + plan.pb;
                    radix::lsd(run, &mut scratch.keys, plan.pb, bits, &mut scratch.hist);
                } else {
                    run.sort_unstable();
                }
                resolve(plan, text, run, &mut lcp[start..end], h + t, conv, scratch);
            }
        }
        start = end;
    }
}

/// Common prefix of suffixes `a` and `b`, stopping at the separator.
fn lcp_direct(text: &[u8], a: usize, b: usize) -> usize {
    text[a..]
        .iter()
        .zip(&text[b..])
        .take_while(|(x, y)| x == y && **x != 0)
        .count()
}

fn sa_lcp_as<L: Copy + Send + Sync>(
    plan: Plan,
    text: &[u8],
    conv: fn(usize) -> L,
) -> CoreResult<(Vec<i32>, Vec<L>)> {
    let d = plan.d;
    let rows = text.len() / (d + 1);
    let src = FirstChunks { plan, text };
    let kb = plan.t * plan.b + plan.pb;
    let (keys, bounds, parts) =
        radix::sort_keys("train", rows, &src, kb, plan.pb, radix::TOP, |bucket| {
            let mut lcp = vec![conv(0); bucket.len()];
            resolve(
                &plan,
                text,
                bucket,
                &mut lcp,
                0,
                conv,
                &mut Scratch::default(),
            );
            lcp
        })?;
    let pmask = plan.pos_mask();
    let mut sa = crate::memory::zeroed("train", 0i32, keys.len())?;
    sa.par_iter_mut()
        .zip(&keys)
        .for_each(|(s, &k)| *s = (k & pmask) as i32);
    drop(keys);
    let mut lcp = Vec::new();
    crate::memory::reserve("train", &mut lcp, sa.len())?;
    for part in &parts {
        lcp.extend_from_slice(part);
    }
    drop(parts);
    // a bucket's first suffix against the previous bucket's last (they differ early)
    for &i in &bounds[1..bounds.len() - 1] {
        lcp[i] = conv(lcp_direct(text, sa[i - 1] as usize, sa[i] as usize));
    }
    if let Some(first) = lcp.first_mut() {
        *first = conv(0);
    }
    Ok((sa, lcp))
}

/// Suffix array and capped LCP of the u8 `text` (`N` strings of `d`, each followed by
/// the separator 0) under `plan`.
pub(super) fn sa_lcp(plan: Plan, text: &[u8]) -> CoreResult<(Vec<i32>, LcpBuf)> {
    if plan.d <= u8::MAX as usize {
        let (sa, lcp) = sa_lcp_as(plan, text, |l| l as u8)?;
        Ok((sa, LcpBuf::U8(lcp)))
    } else if plan.d <= u16::MAX as usize {
        let (sa, lcp) = sa_lcp_as(plan, text, |l| l as u16)?;
        Ok((sa, LcpBuf::U16(lcp)))
    } else {
        let (sa, lcp) = sa_lcp_as(plan, text, |l| l as u32)?;
        Ok((sa, LcpBuf::U32(lcp)))
    }
}
