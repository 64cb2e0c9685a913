//! k-gram counts from LCP intervals: in suffix-array order, the suffixes that start
//! with the same k-gram are consecutive, and consecutive included suffixes share a
//! k-gram exactly when the minimum LCP between them is at least k.

use rayon::prelude::*;

use super::codes::{Code, SaIdx};
use super::{LcpBuf, SaBuf, TextBuf, TrainingIndex};

/// Distinct k-grams (row-major tokens, lexicographic order of codes) and their counts.
pub struct KgramCounts {
    pub kgrams: Vec<u32>,
    pub counts: Vec<i64>,
}

fn scan<T: Code, S: SaIdx>(
    alphabet: &super::Alphabet,
    text: &[T],
    sa: &[S],
    lcp: impl Fn(usize) -> usize,
    d: usize,
    k: usize,
) -> KgramCounts {
    let mut kgrams = Vec::new();
    let mut counts: Vec<i64> = Vec::new();
    let mut run_min = usize::MAX;
    let mut have = false;
    for (i, s) in sa.iter().enumerate() {
        let s = s.idx();
        run_min = run_min.min(lcp(i));
        if d - s % (d + 1) < k {
            continue;
        }
        if have && run_min >= k {
            if let Some(c) = counts.last_mut() {
                *c += 1;
            }
        } else {
            kgrams.extend(text[s..s + k].iter().map(|c| alphabet.decode(c.get())));
            counts.push(1);
            have = true;
        }
        run_min = usize::MAX;
    }
    KgramCounts { kgrams, counts }
}

impl TrainingIndex {
    /// Counts of every distinct k-gram for each `k` in `ks` (each `1 <= k <= d`),
    /// never crossing a string boundary. Parallel over `k`.
    pub fn kgram_counts(&self, ks: &[usize]) -> Vec<KgramCounts> {
        let d = self.length;
        ks.par_iter()
            .map(|&k| {
                macro_rules! go {
                    ($t:expr, $s:expr) => {
                        match &self.lcp {
                            LcpBuf::U8(l) => scan(&self.alphabet, $t, $s, |i| l[i] as usize, d, k),
                            LcpBuf::U16(l) => scan(&self.alphabet, $t, $s, |i| l[i] as usize, d, k),
                            LcpBuf::U32(l) => scan(&self.alphabet, $t, $s, |i| l[i] as usize, d, k),
                        }
                    };
                }
                match (&self.text, &self.sa) {
                    (TextBuf::U8(t), SaBuf::I32(s)) => go!(t, s),
                    (TextBuf::U8(t), SaBuf::I64(s)) => go!(t, s),
                    (TextBuf::U16(t), SaBuf::I32(s)) => go!(t, s),
                    (TextBuf::U16(t), SaBuf::I64(s)) => go!(t, s),
                    (TextBuf::I32(t), SaBuf::I32(s)) => go!(t, s),
                    (TextBuf::I32(t), SaBuf::I64(s)) => go!(t, s),
                }
            })
            .collect()
    }
}
