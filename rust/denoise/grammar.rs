//! The grammar's exact posterior by inside/outside message passing on the tree.
//!
//! Inside (upward): `I_l[j](a)` = probability of the evidence under node `j` of level
//! `l` given that it holds `a` = `sum_r p(a, r) prod_c I_{l+1}[s j + c](child_c(a, r))`,
//! with the leaves' evidence likelihoods at level `L`. Outside (downward):
//! `O_{l+1}[s j + c](b) = sum_{a, r: child_c(a, r) = b} O_l[j](a) p(a, r)
//! prod_{c' != c} I_{l+1}[s j + c'](child_{c'}(a, r))`, from the root prior. The leaf
//! posterior is `I_L O_L`, normalised; the evidence's probability is
//! `sum_a prior(a) I_0(a)`. Every node's vector is rescaled to a maximum of 1 (inside:
//! the log scale is carried up), so deep trees do not underflow; float64 throughout.

use rayon::prelude::*;

use super::{normalise, Evidence, Posterior};
use crate::error::CoreResult;
use crate::grammar::Grammar;

/// Per-row scratch: inside and outside vectors of every node, level by level.
struct Scratch {
    inside: Vec<f64>,
    outside: Vec<f64>,
    log_scale: Vec<f64>,
}

/// Rows per parallel task (fixed, so the work split does not depend on the threads).
const ROWS_PER_TASK: usize = 64;

impl Grammar {
    /// Offsets of each level's block in the per-node vectors (`levels + 2` entries):
    /// level `l` has `s**l` nodes of `symbols(l)` entries (the leaves: `v`).
    fn node_layout(&self) -> (Vec<usize>, Vec<usize>) {
        let (s, big_l) = (self.s as usize, self.levels as usize);
        let mut vec_off = vec![0usize];
        let mut node_off = vec![0usize];
        for l in 0..=big_l {
            let nodes = s.pow(l as u32);
            let syms = if l < big_l {
                self.symbols_at(l)
            } else {
                self.v as usize
            };
            vec_off.push(vec_off[l] + nodes * syms);
            node_off.push(node_off[l] + nodes);
        }
        (vec_off, node_off)
    }

    /// The exact posterior marginals `(rows, d, v)` and the log probability of each row's
    /// evidence under the grammar (rules, rule probabilities, root prior).
    pub fn posterior(&self, ev: &Evidence) -> CoreResult<Posterior> {
        let (d, v) = (self.d, self.v as usize);
        let rows = ev.check(d, self.v)?;
        let mut marginals = crate::memory::zeroed("x", 0.0f64, rows * d * v)?;
        let mut log_evidence = vec![0.0f64; rows];
        let (vec_off, node_off) = self.node_layout();
        marginals
            .par_chunks_mut(ROWS_PER_TASK * d * v)
            .zip(log_evidence.par_chunks_mut(ROWS_PER_TASK))
            .enumerate()
            .for_each(|(task, (marg, logz))| {
                let mut sc = Scratch {
                    inside: vec![0.0; *vec_off.last().unwrap_or(&0)],
                    outside: vec![0.0; *vec_off.last().unwrap_or(&0)],
                    log_scale: vec![0.0; *node_off.last().unwrap_or(&0)],
                };
                for (k, (m, z)) in marg.chunks_mut(d * v).zip(logz.iter_mut()).enumerate() {
                    let row = task * ROWS_PER_TASK + k;
                    *z = self.posterior_row(ev, row, &vec_off, &node_off, &mut sc, m);
                }
            });
        Ok(Posterior {
            marginals,
            log_evidence,
        })
    }

    fn posterior_row(
        &self,
        ev: &Evidence,
        row: usize,
        vec_off: &[usize],
        node_off: &[usize],
        sc: &mut Scratch,
        out: &mut [f64],
    ) -> f64 {
        let (s, m, big_l, d, v) = (
            self.s as usize,
            self.m as usize,
            self.levels as usize,
            self.d,
            self.v as usize,
        );
        // leaves
        for i in 0..d {
            let at = vec_off[big_l] + i * v;
            ev.leaf(row, i, d, &mut sc.inside[at..at + v]);
            sc.log_scale[node_off[big_l] + i] = rescale(&mut sc.inside[at..at + v]);
        }
        // inside, bottom-up
        for l in (0..big_l).rev() {
            let syms = self.symbols_at(l);
            let csyms = if l + 1 < big_l {
                self.symbols_at(l + 1)
            } else {
                v
            };
            let (rules, probs) = (&self.rules[l], &self.rule_probs[l]);
            let (lo, hi) = sc.inside.split_at_mut(vec_off[l + 1]);
            let parent_block = &mut lo[vec_off[l]..];
            let child_block = &hi[..vec_off[l + 2] - vec_off[l + 1]];
            for j in 0..s.pow(l as u32) {
                let mut carried = 0.0;
                for c in 0..s {
                    carried += sc.log_scale[node_off[l + 1] + s * j + c];
                }
                let dst = &mut parent_block[j * syms..(j + 1) * syms];
                for (a, slot) in dst.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for r in 0..m {
                        let id = a * m + r;
                        let p = probs[id];
                        if p == 0.0 {
                            continue;
                        }
                        let mut prod = p;
                        for c in 0..s {
                            let b = rules[id * s + c] as usize;
                            prod *= child_block[(s * j + c) * csyms + b];
                        }
                        acc += prod;
                    }
                    *slot = acc;
                }
                sc.log_scale[node_off[l] + j] = carried + rescale(dst);
            }
        }
        let root = &sc.inside[..self.symbols_at(0)];
        let z: f64 = root.iter().zip(&self.root_prior).map(|(i, p)| i * p).sum();
        let log_z = if z > 0.0 {
            z.ln() + sc.log_scale[0]
        } else {
            f64::NEG_INFINITY
        };
        // outside, top-down
        sc.outside[..self.symbols_at(0)].copy_from_slice(&self.root_prior);
        for l in 0..big_l {
            let syms = self.symbols_at(l);
            let csyms = if l + 1 < big_l {
                self.symbols_at(l + 1)
            } else {
                v
            };
            let (rules, probs) = (&self.rules[l], &self.rule_probs[l]);
            let child_block = &sc.inside[vec_off[l + 1]..vec_off[l + 2]];
            let (lo, hi) = sc.outside.split_at_mut(vec_off[l + 1]);
            let parent_out = &lo[vec_off[l]..];
            let child_out = &mut hi[..vec_off[l + 2] - vec_off[l + 1]];
            child_out.fill(0.0);
            for j in 0..s.pow(l as u32) {
                for a in 0..syms {
                    let o = parent_out[j * syms + a];
                    if o == 0.0 {
                        continue;
                    }
                    for r in 0..m {
                        let id = a * m + r;
                        let p = probs[id];
                        if p == 0.0 {
                            continue;
                        }
                        let kids = &rules[id * s..(id + 1) * s];
                        for c in 0..s {
                            let mut prod = o * p;
                            for (c2, &b2) in kids.iter().enumerate() {
                                if c2 != c {
                                    prod *= child_block[(s * j + c2) * csyms + b2 as usize];
                                }
                            }
                            child_out[(s * j + c) * csyms + kids[c] as usize] += prod;
                        }
                    }
                }
            }
            for node in child_out.chunks_mut(csyms) {
                rescale(node);
            }
        }
        // leaf posteriors
        let leaves_in = &sc.inside[vec_off[big_l]..vec_off[big_l + 1]];
        let leaves_out = &sc.outside[vec_off[big_l]..vec_off[big_l + 1]];
        for ((o, i), x) in out.iter_mut().zip(leaves_in).zip(leaves_out) {
            *o = i * x;
        }
        if log_z == f64::NEG_INFINITY {
            out.fill(1.0 / v as f64);
        } else {
            out.chunks_mut(v).for_each(normalise);
        }
        log_z
    }
}

/// Divides `p` by its maximum and returns the log of that maximum (`-inf`, and `p`
/// left at zero, when all entries are zero).
fn rescale(p: &mut [f64]) -> f64 {
    let hi = p.iter().cloned().fold(0.0f64, f64::max);
    if hi > 0.0 {
        p.iter_mut().for_each(|x| *x /= hi);
        hi.ln()
    } else {
        f64::NEG_INFINITY
    }
}
