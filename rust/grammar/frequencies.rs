//! Exact expected frequencies under the grammar: symbol marginals per node,
//! aligned-block probabilities, and k-gram probabilities at any offset by an
//! inside/outside pass over the nodes the window overlaps (never by sampling).

use rayon::prelude::*;

use super::{Grammar, NONE};
use crate::error::{CoreError, CoreResult};
use crate::token::Token;

/// Largest marginal table returned (`s**level * symbols`).
const MAX_MARGINAL_ENTRIES: u128 = 1 << 28;

/// Inside probabilities of one node: the probability that its subtree generates
/// the window's tokens it covers, for each symbol the node may hold.
enum Inside {
    /// Fully covered node: only `sym` can generate the covered tokens, with `p`.
    One { sym: u32, p: f64 },
    /// Partly covered node: one value per symbol.
    Dense(Vec<f64>),
}

impl Inside {
    #[inline]
    fn get(&self, b: u32) -> f64 {
        match self {
            Inside::One { sym, p } => {
                if *sym == b {
                    *p
                } else {
                    0.0
                }
            }
            Inside::Dense(v) => v[b as usize],
        }
    }
}

impl Grammar {
    fn symbols_at_any(&self, level: usize) -> usize {
        if level == self.levels as usize {
            self.v as usize
        } else {
            self.symbols_at(level)
        }
    }

    fn check_level(&self, level: i64) -> CoreResult<usize> {
        if level < 0 || level > self.levels as i64 {
            return Err(CoreError::value(
                "level",
                format!("level = {level} must be in [0, L={}]", self.levels),
            ));
        }
        Ok(level as usize)
    }

    /// `(s**level, symbols)` probabilities of each symbol at each level-`level` node.
    pub fn symbol_marginals(&self, level: i64) -> CoreResult<Vec<f64>> {
        let level = self.check_level(level)?;
        let (m, s) = (self.m as usize, self.s as usize);
        let entries = (s as u128).pow(level as u32) * self.symbols_at_any(level) as u128;
        if entries > MAX_MARGINAL_ENTRIES {
            return Err(CoreError::value(
                "level",
                format!("the marginals of level {level} hold {entries} entries (more than {MAX_MARGINAL_ENTRIES})"),
            ));
        }
        let mut cur = self.root_prior.clone();
        let mut width = 1usize;
        for l in 0..level {
            let syms = self.symbols_at(l);
            let below = self.symbols_at_any(l + 1);
            let mut next = vec![0.0f64; width * s * below];
            next.par_chunks_mut(s * below)
                .zip(cur.par_chunks(syms))
                .for_each(|(out, pa)| {
                    for (a, &p) in pa.iter().enumerate() {
                        if p == 0.0 {
                            continue;
                        }
                        for j in 0..m {
                            let id = a * m + j;
                            let pj = p * self.rule_probs[l][id];
                            for (c, &b) in self.rules[l][id * s..(id + 1) * s].iter().enumerate() {
                                out[c * below + b as usize] += pj;
                            }
                        }
                    }
                });
            cur = next;
            width *= s;
        }
        Ok(cur)
    }

    /// Probability that the aligned level-`level` block at `positions[i]` equals
    /// block `i` (`blocks`: `N * s**(L-level)` tokens); `positions = None` gives the
    /// mean over all positions of the level.
    pub fn block_probs<T: Token>(
        &self,
        blocks: &[T],
        level: i64,
        positions: Option<&[i64]>,
    ) -> CoreResult<Vec<f64>> {
        let level = self.check_level(level)?;
        let s = self.s as usize;
        let width = s.pow((self.levels as usize - level) as u32);
        if blocks.len() % width != 0 {
            return Err(CoreError::value(
                "blocks",
                format!("has {} tokens, not a multiple of the level-{level} block width s**(L-level) = {width}", blocks.len()),
            ));
        }
        let num = blocks.len() / width;
        let npos = s.pow(level as u32);
        if let Some(p) = positions {
            if p.len() != num {
                return Err(CoreError::value(
                    "positions",
                    format!("has {} entries for {num} blocks", p.len()),
                ));
            }
            if let Some(&bad) = p.iter().find(|&&x| x < 0 || x as usize >= npos) {
                return Err(CoreError::value(
                    "positions",
                    format!("position {bad} is not in [0, s**level = {npos})"),
                ));
            }
        }
        let marg = self.symbol_marginals(level as i64)?;
        let syms = self.symbols_at_any(level);
        let pooled: Vec<f64> = if positions.is_none() {
            let mut acc = vec![0.0; syms];
            for row in marg.chunks(syms) {
                for (a, x) in acc.iter_mut().zip(row) {
                    *a += x;
                }
            }
            acc.iter().map(|x| x / npos as f64).collect()
        } else {
            Vec::new()
        };
        let scratch_len = (width / s).max(1);
        blocks
            .par_chunks(width)
            .enumerate()
            .map_init(
                || vec![0u32; scratch_len],
                |scratch, (i, block)| {
                    Ok(match self.block_symbol(block, level, scratch)? {
                        None => 0.0,
                        Some((a, lp)) => {
                            let pa = match positions {
                                Some(p) => marg[p[i] as usize * syms + a as usize],
                                None => pooled[a as usize],
                            };
                            pa * lp.exp()
                        }
                    })
                },
            )
            .collect()
    }

    /// Inside probabilities of node `i` at `level` for the window `[lo, lo+len)`
    /// holding `pattern`; the node must overlap the window.
    fn inside<T: Token>(
        &self,
        level: usize,
        i: usize,
        pattern: &[T],
        lo: usize,
        scratch: &mut [u32],
    ) -> CoreResult<Inside> {
        let (m, s) = (self.m as usize, self.s as usize);
        let width = s.pow((self.levels as usize - level) as u32);
        let (start, end) = (i * width, (i + 1) * width);
        let hi = lo + pattern.len();
        if lo <= start && end <= hi {
            return Ok(
                match self.block_symbol(&pattern[start - lo..end - lo], level, scratch)? {
                    Some((sym, lp)) => Inside::One { sym, p: lp.exp() },
                    None => Inside::One { sym: NONE, p: 0.0 },
                },
            );
        }
        let cw = width / s;
        let mut kids: Vec<Option<Inside>> = Vec::with_capacity(s);
        for c in 0..s {
            let (cs, ce) = (start + c * cw, start + (c + 1) * cw);
            kids.push(if ce <= lo || cs >= hi {
                None
            } else {
                Some(self.inside(level + 1, i * s + c, pattern, lo, scratch)?)
            });
        }
        let syms = self.symbols_at(level);
        let rules = &self.rules[level];
        let probs = &self.rule_probs[level];
        let mut out = vec![0.0f64; syms];
        for (a, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for j in 0..m {
                let id = a * m + j;
                let mut p = probs[id];
                for (kid, &b) in kids.iter().zip(&rules[id * s..(id + 1) * s]) {
                    if p == 0.0 {
                        break;
                    }
                    if let Some(q) = kid {
                        p *= q.get(b);
                    }
                }
                acc += p;
            }
            *o = acc;
        }
        Ok(Inside::Dense(out))
    }

    /// Probability that a string holds `pattern` at token offset `offset`.
    pub fn kgram_prob<T: Token>(&self, pattern: &[T], offset: usize) -> CoreResult<f64> {
        let k = pattern.len();
        if k < 1 || k > self.d {
            return Err(CoreError::value(
                "patterns",
                format!("a pattern of length {k} is not in [1, d={}]", self.d),
            ));
        }
        if offset + k > self.d {
            return Err(CoreError::value(
                "offsets",
                format!(
                    "offset {offset} + pattern length {k} exceeds d = {}",
                    self.d
                ),
            ));
        }
        let mut scratch = vec![0u32; (self.d / self.s as usize).max(1)];
        let root = self.inside(0, 0, pattern, offset, &mut scratch)?;
        Ok(self
            .root_prior
            .iter()
            .enumerate()
            .map(|(a, &p)| p * root.get(a as u32))
            .sum())
    }

    /// `kgram_prob` for many patterns; `offsets = None` averages over every offset
    /// `0..=d-k` (the expected frequency of the k-gram per position).
    pub fn kgram_probs<T: Token>(
        &self,
        patterns: &[&[T]],
        offsets: Option<&[i64]>,
    ) -> CoreResult<Vec<f64>> {
        if let Some(o) = offsets {
            if o.len() != patterns.len() {
                return Err(CoreError::value(
                    "offsets",
                    format!("has {} entries for {} patterns", o.len(), patterns.len()),
                ));
            }
            if let Some(&bad) = o.iter().find(|&&x| x < 0) {
                return Err(CoreError::value(
                    "offsets",
                    format!("offset {bad} is negative"),
                ));
            }
        }
        patterns
            .par_iter()
            .enumerate()
            .map(|(i, p)| match offsets {
                Some(o) => self.kgram_prob(p, o[i] as usize),
                None => {
                    let k = p.len();
                    if k < 1 || k > self.d {
                        return Err(CoreError::value(
                            "patterns",
                            format!("a pattern of length {k} is not in [1, d={}]", self.d),
                        ));
                    }
                    let n = self.d - k + 1;
                    let mut acc = 0.0;
                    for o in 0..n {
                        acc += self.kgram_prob(p, o)?;
                    }
                    Ok(acc / n as f64)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::Ranks;

    fn all_strings(g: &Grammar) -> (Vec<u8>, Vec<f64>) {
        let total = g.num_strings_u64.unwrap();
        let x = g
            .unrank::<u8>(&Ranks::Small((0..total).collect()), false)
            .unwrap()
            .tokens;
        let lp = g.parse(&x, false).unwrap().log_prob;
        (x, lp.iter().map(|l| l.exp()).collect())
    }

    #[test]
    fn kgram_probs_match_enumeration() {
        let probs = vec![vec![0.7, 0.3, 0.2, 0.8], vec![0.1, 0.9, 0.5, 0.5, 0.4, 0.6]];
        let g = Grammar::random(3, 2, 2, 2, 2, 1, Some(probs), Some(vec![0.25, 0.75])).unwrap();
        let (x, p) = all_strings(&g);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for k in 1..=4usize {
            for off in 0..=4 - k {
                for code in 0..3usize.pow(k as u32) {
                    let pat: Vec<u8> = (0..k)
                        .map(|t| (code / 3usize.pow(t as u32) % 3) as u8)
                        .collect();
                    let want: f64 = x
                        .chunks(4)
                        .zip(&p)
                        .filter(|(r, _)| r[off..off + k] == pat[..])
                        .map(|(_, q)| q)
                        .sum();
                    let got = g.kgram_prob(&pat, off).unwrap();
                    assert!(
                        (got - want).abs() < 1e-12,
                        "k={k} off={off} pat={pat:?}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn marginals_sum_to_one() {
        let g = Grammar::random(6, 6, 4, 2, 4, 0, None, None).unwrap();
        for level in 0..=4 {
            let mg = g.symbol_marginals(level).unwrap();
            let syms = g.symbols_at_any(level as usize);
            for row in mg.chunks(syms) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        assert!(g.symbol_marginals(5).is_err());
    }
}
