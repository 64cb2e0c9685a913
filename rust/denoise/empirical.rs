//! The exact posterior when the data distribution is the training set (uniform or
//! weighted over its strings): the memorizing denoiser.
//!
//! Masked evidence keeps the training strings that agree with every observed token:
//! one bitset over the strings per (position, token), ANDed over the observed
//! positions. The marginals then come from the survivors, either by visiting them or,
//! for uniform weights and many survivors, by popcounts of the survivors against each
//! (position, token) bitset, whichever reads less. Uniform noise gives every string a
//! likelihood `hi**agree * lo**(d - agree)` (agree = observed tokens it matches), one
//! pass over the set per row.

use rayon::prelude::*;

use super::{normalise, Evidence, Posterior};
use crate::error::{CoreError, CoreResult};
use crate::token::Token;

/// The training set as a prior over strings.
#[derive(Debug, Clone)]
pub struct Empirical {
    d: usize,
    v: usize,
    num: usize,
    words: usize,
    tokens: Vec<u32>,
    /// Normalised to sum 1.
    weights: Vec<f64>,
    uniform: bool,
    /// `bits[((i * v) + a) * words + w]`: strings with token `a` at position `i`.
    bits: Vec<u64>,
    /// Marginals with nothing observed (`d * v`).
    base: Vec<f64>,
}

/// Reused per task: the surviving strings (masked) or their log likelihoods (uniform).
#[derive(Default)]
struct Scratch {
    alive: Vec<u64>,
    loglik: Vec<f64>,
}

/// Rows per parallel task (fixed, so the work split does not depend on the threads).
const ROWS_PER_TASK: usize = 16;

impl Empirical {
    /// `train`: `rows * d` tokens in `[0, v)`; `weights`: one non-negative weight per
    /// string (not all zero), or `None` for uniform.
    pub fn new<X: Token>(
        train: &[X],
        rows: usize,
        d: usize,
        v: u32,
        weights: Option<&[f64]>,
    ) -> CoreResult<Self> {
        crate::index::check_shape("train", train.len(), rows, d)?;
        if rows == 0 || d == 0 {
            return Err(CoreError::value(
                "train",
                "empty set: need at least one string of at least one token",
            ));
        }
        if v == 0 {
            return Err(CoreError::value("v", "must be at least 1"));
        }
        if let Some(t) = train.iter().find(|t| !(0..v as i64).contains(&t.to_i64())) {
            return Err(CoreError::value(
                "train",
                format!("token {} is not in [0, v={v})", t.to_i64()),
            ));
        }
        let weights = match weights {
            None => vec![1.0 / rows as f64; rows],
            Some(w) => {
                if w.len() != rows {
                    return Err(CoreError::value(
                        "weights",
                        format!("{} weights for {rows} training strings", w.len()),
                    ));
                }
                if let Some(x) = w.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                    return Err(CoreError::value(
                        "weights",
                        format!("{x} is not a finite non-negative weight"),
                    ));
                }
                let total: f64 = w.iter().sum();
                if !(total > 0.0 && total.is_finite()) {
                    return Err(CoreError::value(
                        "weights",
                        format!("the weights sum to {total}: need a positive finite sum"),
                    ));
                }
                w.iter().map(|x| x / total).collect()
            }
        };
        let uniform = weights.iter().all(|&w| w == weights[0]);
        let v = v as usize;
        let words = rows.div_ceil(64);
        let bits_len = d
            .checked_mul(v)
            .and_then(|x| x.checked_mul(words))
            .ok_or_else(|| CoreError::value("train", "too many (position, token) bitsets"))?;
        let mut bits = crate::memory::zeroed("train", 0u64, bits_len)?;
        let tokens: Vec<u32> = train.iter().map(|t| t.to_i64() as u32).collect();
        let mut base = vec![0.0f64; d * v];
        for (p, row) in tokens.chunks(d).enumerate() {
            for (i, &a) in row.iter().enumerate() {
                bits[(i * v + a as usize) * words + p / 64] |= 1u64 << (p % 64);
                base[i * v + a as usize] += weights[p];
            }
        }
        base.chunks_mut(v).for_each(normalise);
        Ok(Empirical {
            d,
            v,
            num: rows,
            words,
            tokens,
            weights,
            uniform,
            bits,
            base,
        })
    }

    pub fn d(&self) -> usize {
        self.d
    }
    pub fn v(&self) -> usize {
        self.v
    }
    pub fn num_strings(&self) -> usize {
        self.num
    }

    fn set(&self, i: usize, a: usize) -> &[u64] {
        let at = (i * self.v + a) * self.words;
        &self.bits[at..at + self.words]
    }

    /// The exact posterior marginals `(rows, d, v)` and the log probability of each
    /// row's evidence under the training distribution.
    pub fn posterior(&self, ev: &Evidence) -> CoreResult<Posterior> {
        let (d, v) = (self.d, self.v);
        let rows = ev.check(d, v as u32)?;
        let mut marginals = crate::memory::zeroed("x", 0.0f64, rows * d * v)?;
        let mut log_evidence = vec![0.0f64; rows];
        marginals
            .par_chunks_mut(ROWS_PER_TASK * d * v)
            .zip(log_evidence.par_chunks_mut(ROWS_PER_TASK))
            .enumerate()
            .for_each(|(task, (marg, logz))| {
                let mut scratch = Scratch::default();
                for (k, (m, z)) in marg.chunks_mut(d * v).zip(logz.iter_mut()).enumerate() {
                    let row = task * ROWS_PER_TASK + k;
                    *z = match ev {
                        Evidence::Masked { tokens, mask_id } => self.masked_row(
                            &tokens[row * d..(row + 1) * d],
                            *mask_id,
                            &mut scratch.alive,
                            m,
                        ),
                        Evidence::Uniform { tokens, alpha_bar } => self.uniform_row(
                            &tokens[row * d..(row + 1) * d],
                            alpha_bar[row],
                            &mut scratch.loglik,
                            m,
                        ),
                    };
                }
            });
        Ok(Posterior {
            marginals,
            log_evidence,
        })
    }

    fn masked_row(&self, x: &[i64], mask_id: i64, alive: &mut Vec<u64>, out: &mut [f64]) -> f64 {
        let (d, v) = (self.d, self.v);
        let mut observed = (0..d).filter(|&i| x[i] != mask_id).peekable();
        let Some(&first) = observed.peek() else {
            out.copy_from_slice(&self.base);
            return 0.0;
        };
        alive.clear();
        alive.extend_from_slice(self.set(first, x[first] as usize));
        for i in observed.skip(1) {
            for (w, b) in alive.iter_mut().zip(self.set(i, x[i] as usize)) {
                *w &= b;
            }
        }
        let count: usize = alive.iter().map(|w| w.count_ones() as usize).sum();
        if count == 0 {
            out.fill(1.0 / v as f64);
            return f64::NEG_INFINITY;
        }
        out.fill(0.0);
        let total;
        if self.uniform && count > v * self.words {
            // popcounts against every (position, token) set read less than the survivors
            for i in 0..d {
                for a in 0..v {
                    let n: u32 = alive
                        .iter()
                        .zip(self.set(i, a))
                        .map(|(w, b)| (w & b).count_ones())
                        .sum();
                    out[i * v + a] = n as f64;
                }
            }
            total = count as f64 * self.weights[0];
        } else {
            let mut sum = 0.0;
            for (wi, &word) in alive.iter().enumerate() {
                let mut word = word;
                while word != 0 {
                    let p = wi * 64 + word.trailing_zeros() as usize;
                    word &= word - 1;
                    let w = self.weights[p];
                    sum += w;
                    for (i, &a) in self.tokens[p * d..(p + 1) * d].iter().enumerate() {
                        out[i * v + a as usize] += w;
                    }
                }
            }
            total = sum;
        }
        if total <= 0.0 {
            // survivors of weight zero only: the evidence has probability 0
            out.fill(1.0 / v as f64);
            return f64::NEG_INFINITY;
        }
        out.chunks_mut(v).for_each(normalise);
        total.ln()
    }

    fn uniform_row(&self, x: &[i64], alpha: f64, loglik: &mut Vec<f64>, out: &mut [f64]) -> f64 {
        let (d, v) = (self.d, self.v);
        let lo = (1.0 - alpha) / v as f64;
        let (ln_hi, ln_lo) = ((alpha + lo).ln(), lo.ln());
        loglik.clear();
        let mut best = f64::NEG_INFINITY;
        for (p, row) in self.tokens.chunks(d).enumerate() {
            let agree = row.iter().zip(x).filter(|(&a, &o)| a as i64 == o).count();
            let w = self.weights[p];
            let l = if w == 0.0 || (agree < d && lo == 0.0) {
                f64::NEG_INFINITY
            } else {
                // (no lo term when every token agrees: 0 * ln 0 would be NaN)
                let miss = if agree == d {
                    0.0
                } else {
                    (d - agree) as f64 * ln_lo
                };
                w.ln() + agree as f64 * ln_hi + miss
            };
            best = best.max(l);
            loglik.push(l);
        }
        if best == f64::NEG_INFINITY {
            out.fill(1.0 / v as f64);
            return best;
        }
        out.fill(0.0);
        let mut sum = 0.0;
        for (p, &l) in loglik.iter().enumerate() {
            let w = (l - best).exp();
            if w == 0.0 {
                continue;
            }
            sum += w;
            for (i, &a) in self.tokens[p * d..(p + 1) * d].iter().enumerate() {
                out[i * v + a as usize] += w;
            }
        }
        out.chunks_mut(v).for_each(normalise);
        best + sum.ln()
    }
}
