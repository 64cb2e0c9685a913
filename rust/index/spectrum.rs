//! k-gram counts from LCP intervals: in suffix-array order, the suffixes that start
//! with the same k-gram are consecutive, and consecutive included suffixes share a
//! k-gram exactly when the minimum LCP between them is at least k.

use rayon::prelude::*;

use super::codes::{Code, SaIdx};
use super::{with_text_sa, LcpBuf, SaBuf, TextBuf, TrainingIndex};
use crate::error::CoreResult;

/// Distinct k-grams (row-major tokens, lexicographic order of codes) and their counts.
pub struct KgramCounts {
    pub kgrams: Vec<u32>,
    pub counts: Vec<i64>,
}

/// The k-grams of one k in suffix-array order: `emit(i, s)` for the first suffix `s`
/// (at `sa[i]`) of each distinct k-gram, `more()` for each further occurrence.
fn scan<S: SaIdx>(
    sa: &[S],
    lcp: impl Fn(usize) -> usize,
    d: usize,
    k: usize,
    mut emit: impl FnMut(usize),
    mut more: impl FnMut(),
) {
    let mut run_min = usize::MAX;
    let mut have = false;
    for (i, s) in sa.iter().enumerate() {
        let s = s.idx();
        run_min = run_min.min(lcp(i));
        if d - s % (d + 1) < k {
            continue;
        }
        if have && run_min >= k {
            more();
        } else {
            emit(s);
            have = true;
        }
        run_min = usize::MAX;
    }
}

fn kgrams_of<T: Code, S: SaIdx>(
    alphabet: &super::Alphabet,
    text: &[T],
    sa: &[S],
    lcp: impl Fn(usize) -> usize + Copy,
    d: usize,
    k: usize,
    groups: Option<usize>,
) -> CoreResult<KgramCounts> {
    let mut out = KgramCounts {
        kgrams: Vec::new(),
        counts: Vec::new(),
    };
    if let Some(groups) = groups {
        crate::memory::reserve("max_k", &mut out.kgrams, groups * k)?;
        crate::memory::reserve("max_k", &mut out.counts, groups)?;
    }
    let KgramCounts { kgrams, counts } = &mut out;
    let counts = std::cell::RefCell::new(counts);
    scan(
        sa,
        lcp,
        d,
        k,
        |s| {
            kgrams.extend(text[s..s + k].iter().map(|c| alphabet.decode(c.get())));
            counts.borrow_mut().push(1);
        },
        || {
            if let Some(c) = counts.borrow_mut().last_mut() {
                *c += 1;
            }
        },
    );
    Ok(out)
}

/// Distinct k-grams of one k, counted without storing them.
fn groups_of<S: SaIdx>(sa: &[S], lcp: impl Fn(usize) -> usize, d: usize, k: usize) -> usize {
    let mut groups = 0usize;
    scan(sa, lcp, d, k, |_| groups += 1, || ());
    groups
}

impl TrainingIndex {
    /// Counts of every distinct k-gram for each `k` in `ks` (each `1 <= k <= d`),
    /// never crossing a string boundary. Parallel over `k`. When the worst case (every
    /// k-gram distinct) does not fit in the memory the process can get, the distinct
    /// k-grams are counted first, and the request is refused if even those do not fit.
    pub fn kgram_counts(&self, ks: &[usize]) -> CoreResult<Vec<KgramCounts>> {
        let d = self.length;
        let n = self.num_strings as u128;
        let bytes = |k: usize, groups: u128| groups * (4 * k as u128 + 8);
        let what = format!(
            "the k-gram counts for k up to {}",
            ks.iter().max().unwrap_or(&0)
        );
        let worst: u128 = ks.iter().map(|&k| bytes(k, n * (d + 1 - k) as u128)).sum();
        let groups: Vec<Option<usize>> =
            if crate::memory::ensure_available("max_k", &what, worst).is_ok() {
                vec![None; ks.len()]
            } else {
                let exact: Vec<usize> = ks
                    .par_iter()
                    .map(|&k| {
                        with_text_sa!(self, _t, sa => match &self.lcp {
                            LcpBuf::U8(l) => groups_of(sa, |i| l[i] as usize, d, k),
                            LcpBuf::U16(l) => groups_of(sa, |i| l[i] as usize, d, k),
                            LcpBuf::U32(l) => groups_of(sa, |i| l[i] as usize, d, k),
                        })
                    })
                    .collect();
                let need = ks
                    .iter()
                    .zip(&exact)
                    .map(|(&k, &g)| bytes(k, g as u128))
                    .sum();
                crate::memory::ensure_available("max_k", &what, need)?;
                exact.into_iter().map(Some).collect()
            };
        ks.par_iter()
            .zip(groups)
            .map(|(&k, g)| {
                with_text_sa!(self, t, sa => match &self.lcp {
                    LcpBuf::U8(l) => kgrams_of(&self.alphabet, t, sa, |i| l[i] as usize, d, k, g),
                    LcpBuf::U16(l) => kgrams_of(&self.alphabet, t, sa, |i| l[i] as usize, d, k, g),
                    LcpBuf::U32(l) => kgrams_of(&self.alphabet, t, sa, |i| l[i] as usize, d, k, g),
                })
            })
            .collect()
    }
}
