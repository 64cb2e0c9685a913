//! Exact reference denoisers: the posterior `p(x_i = a | evidence)` at every position
//! and the log marginal probability of the evidence, under three priors over strings:
//!
//! - the grammar (`grammar.rs`: inside/outside message passing on the tree);
//! - the training set, uniform or weighted (`empirical.rs`: bitsets per position and
//!   token for masked evidence, one pass over the set for uniform noise);
//! - their mixture `(1 - lam) p_grammar + lam p_train` (`mixture`): the posterior of a
//!   mixture weighs each component's posterior by its share of the evidence.
//!
//! Evidence is per position: masked noise observes a token exactly or not at all;
//! uniform (D3PM) noise keeps each token with probability `alpha_bar` and otherwise
//! shows a uniform one, so an observed `o` has likelihood
//! `alpha_bar [a = o] + (1 - alpha_bar) / v` under `x_i = a`.
//!
//! A string whose evidence has probability 0 under the prior (log marginal `-inf`) gets
//! uniform marginals: there is no posterior to report (also for a mixture whose component
//! that allows the evidence has weight 0).

mod empirical;
mod grammar;

pub use empirical::Empirical;

use crate::error::{CoreError, CoreResult};

/// What the noisy strings show, row by row (`rows * d` tokens).
#[derive(Clone, Copy, Debug)]
pub enum Evidence<'a> {
    /// A token equal to `mask_id` is unobserved; every other one is observed exactly.
    Masked { tokens: &'a [i64], mask_id: i64 },
    /// Every token is observed through uniform noise with keep probability
    /// `alpha_bar[row]`.
    Uniform {
        tokens: &'a [i64],
        alpha_bar: &'a [f64],
    },
}

impl Evidence<'_> {
    fn tokens(&self) -> &[i64] {
        match self {
            Evidence::Masked { tokens, .. } | Evidence::Uniform { tokens, .. } => tokens,
        }
    }

    /// Checks tokens against `v` (and the mask id), the keep probabilities against
    /// `[0, 1]`, and the shape against `d`; returns the number of rows.
    pub fn check(&self, d: usize, v: u32) -> CoreResult<usize> {
        let tokens = self.tokens();
        if d == 0 || tokens.len() % d != 0 {
            return Err(CoreError::value(
                "x",
                format!("{} tokens do not make rows of d = {d}", tokens.len()),
            ));
        }
        let rows = tokens.len() / d;
        let v = v as i64;
        match self {
            Evidence::Masked { mask_id, .. } => {
                // one branch-free (vectorised) pass; the search only on failure
                let m = *mask_id;
                let bad = tokens
                    .iter()
                    .fold(false, |b, &t| b | (((t as u64) >= v as u64) & (t != m)));
                if !bad {
                    return Ok(rows);
                }
                if let Some(&t) = tokens.iter().find(|&&t| (t < 0 || t >= v) && t != *mask_id) {
                    return Err(CoreError::value(
                        "x",
                        format!("token {t} is neither in [0, v={v}) nor the mask id {mask_id}"),
                    ));
                }
            }
            Evidence::Uniform { alpha_bar, .. } => {
                let bad = tokens
                    .iter()
                    .fold(false, |b, &t| b | ((t as u64) >= v as u64));
                if bad {
                    if let Some(&t) = tokens.iter().find(|&&t| t < 0 || t >= v) {
                        return Err(CoreError::value(
                            "x",
                            format!("token {t} is not in [0, v={v})"),
                        ));
                    }
                }
                if alpha_bar.len() != rows {
                    return Err(CoreError::value(
                        "alpha_bar",
                        format!("{} values for {rows} strings", alpha_bar.len()),
                    ));
                }
                if let Some(a) = alpha_bar.iter().find(|a| !(0.0..=1.0).contains(*a)) {
                    return Err(CoreError::value(
                        "alpha_bar",
                        format!("{a} is not a probability in [0, 1]"),
                    ));
                }
            }
        }
        Ok(rows)
    }

    /// Likelihood of each token value at position `i` of `row`, written into `out` (`v`).
    #[inline]
    fn leaf(&self, row: usize, i: usize, d: usize, out: &mut [f64]) {
        let t = self.tokens()[row * d + i];
        match self {
            Evidence::Masked { mask_id, .. } => {
                if t == *mask_id {
                    out.fill(1.0);
                } else {
                    out.fill(0.0);
                    out[t as usize] = 1.0;
                }
            }
            Evidence::Uniform { alpha_bar, .. } => {
                let a = alpha_bar[row];
                out.fill((1.0 - a) / out.len() as f64);
                out[t as usize] += a;
            }
        }
    }
}

/// Marginals `(rows, d, v)` and the log marginal probability of each row's evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Posterior {
    pub marginals: Vec<f64>,
    pub log_evidence: Vec<f64>,
}

/// Normalises `p` to sum 1, or makes it uniform when it sums to 0 (no posterior).
fn normalise(p: &mut [f64]) {
    let z: f64 = p.iter().sum();
    if z > 0.0 && z.is_finite() {
        p.iter_mut().for_each(|x| *x /= z);
    } else {
        p.fill(1.0 / p.len() as f64);
    }
}

/// `log(exp(a) + exp(b))` without overflow; `-inf` when both are.
fn log_add(a: f64, b: f64) -> f64 {
    let hi = a.max(b);
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + ((a - hi).exp() + (b - hi).exp()).ln()
}

/// Checks a mixture weight.
pub fn check_lam(lam: f64) -> CoreResult<()> {
    if !(0.0..=1.0).contains(&lam) {
        return Err(CoreError::value(
            "lam",
            format!("{lam} is not a mixture weight in [0, 1]"),
        ));
    }
    Ok(())
}

/// The posterior of the prior `(1 - lam) p_a + lam p_b` from the posteriors of `a` and
/// `b` under the same evidence (`v` tokens): component posteriors weighed by their
/// shares `(1 - lam) Z_a : lam Z_b` of the evidence's probability (not a fixed mixture).
pub fn mixture(a: &Posterior, b: &Posterior, lam: f64, v: usize) -> CoreResult<Posterior> {
    check_lam(lam)?;
    let rows = a.log_evidence.len();
    if b.log_evidence.len() != rows || a.marginals.len() != b.marginals.len() {
        return Err(CoreError::value(
            "posteriors",
            "the two components describe different strings",
        ));
    }
    let per = a.marginals.len().checked_div(rows).unwrap_or(0);
    let mut out = Posterior {
        marginals: vec![0.0; a.marginals.len()],
        log_evidence: vec![0.0; rows],
    };
    for r in 0..rows {
        let la = (1.0 - lam).ln() + a.log_evidence[r];
        let lb = lam.ln() + b.log_evidence[r];
        let lz = log_add(la, lb);
        out.log_evidence[r] = lz;
        let span = r * per..(r + 1) * per;
        let dst = &mut out.marginals[span.clone()];
        if lz == f64::NEG_INFINITY {
            // impossible under the mixture (a component may allow it at weight 0)
            dst.fill(1.0 / v.max(1) as f64);
            continue;
        }
        let wa = (la - lz).exp();
        for ((o, &x), &y) in dst
            .iter_mut()
            .zip(&a.marginals[span.clone()])
            .zip(&b.marginals[span])
        {
            *o = wa * x + (1.0 - wa) * y;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
