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

use std::mem::MaybeUninit;

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
const _: () = assert!(ROWS_PER_TASK % LANES == 0); // batches never straddle tasks

/// One rule of a binary (`s = 2`) level seen from one of its three symbols: its
/// probability and the other two symbols, in the order the sum needs them.
#[derive(Clone, Copy, Debug)]
struct Entry {
    p: f64,
    x: u32,
    y: u32,
}

/// Entries grouped by one symbol (compressed rows): group `k` is
/// `ent[start[k]..start[k + 1]]`, in rule-id order within a group.
struct Groups {
    start: Vec<usize>,
    ent: Vec<Entry>,
}

impl Groups {
    /// Groups `(key, entry)` pairs by key (`keys` groups), stably.
    fn new(keys: usize, items: &[(u32, Entry)]) -> Groups {
        let mut start = vec![0usize; keys + 1];
        for &(k, _) in items {
            start[k as usize + 1] += 1;
        }
        for k in 0..keys {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut ent = vec![Entry { p: 0.0, x: 0, y: 0 }; items.len()];
        for &(k, e) in items {
            ent[fill[k as usize]] = e;
            fill[k as usize] += 1;
        }
        Groups { start, ent }
    }

    /// Group `k`'s entries.
    #[inline(always)]
    fn group(&self, k: usize) -> &[Entry] {
        debug_assert!(k + 1 < self.start.len());
        // SAFETY: `k < keys` at every call (the loops run over the `keys` output slots),
        // and `start` is non-decreasing with `start[keys] == ent.len()` by construction.
        unsafe {
            let (lo, hi) = (
                *self.start.get_unchecked(k),
                *self.start.get_unchecked(k + 1),
            );
            self.ent.get_unchecked(lo..hi)
        }
    }
}

/// A binary level's rules of nonzero probability, grouped three ways: by parent
/// (`p, left, right`) for the inside pass; by left child (`p, parent, right`) and by
/// right child (`p, parent, left`) for the outside pass, so that every message entry
/// is a gathered sum into one accumulator (no scatter, no per-rule branch).
struct Binary {
    syms: usize,
    csyms: usize,
    by_parent: Groups,
    by_left: Groups,
    by_right: Groups,
}

impl Binary {
    fn new(rules: &[u32], probs: &[f64], syms: usize, csyms: usize, m: usize) -> Binary {
        let (mut up, mut left, mut right) = (Vec::new(), Vec::new(), Vec::new());
        for a in 0..syms {
            for r in 0..m {
                let id = a * m + r;
                let p = probs[id];
                if p == 0.0 {
                    continue;
                }
                let (b, c) = (rules[2 * id], rules[2 * id + 1]);
                // the inner loops index child vectors of `csyms` entries unchecked
                assert!((b as usize) < csyms && (c as usize) < csyms);
                up.push((a as u32, Entry { p, x: b, y: c }));
                left.push((
                    b,
                    Entry {
                        p,
                        x: a as u32,
                        y: c,
                    },
                ));
                right.push((
                    c,
                    Entry {
                        p,
                        x: a as u32,
                        y: b,
                    },
                ));
            }
        }
        Binary {
            syms,
            csyms,
            by_parent: Groups::new(syms, &up),
            by_left: Groups::new(csyms, &left),
            by_right: Groups::new(csyms, &right),
        }
    }
}

/// Strings computed side by side in the binary path, one per SIMD lane: every entry
/// of every message is a `[f64; LANES]` (the same rules for all, so no gathers across
/// lanes). Each lane's arithmetic is exactly that of a string computed alone.
const LANES: usize = 8;
type Lanes = [f64; LANES];

/// Per-task scratch of the binary path, reused across batches: inside and outside
/// vectors of every node (`node * symbols + symbol`), lane by lane.
struct Scratch2 {
    inside: Vec<Lanes>,
    outside: Vec<Lanes>,
}

/// `x[i]` without a bounds check.
#[inline(always)]
fn at(x: &[Lanes], i: u32) -> &Lanes {
    debug_assert!((i as usize) < x.len());
    // SAFETY: every index comes from a `Binary` entry, checked against the vector length
    // (`syms` or `csyms`) when the entry was built, and `x` has exactly that length.
    unsafe { x.get_unchecked(i as usize) }
}

/// Vectors are kept within `[2^-LAZY, 2^LAZY]` of 1 (by maximum) by exact power-of-two
/// scaling, done only when a maximum leaves that range: scaling by a power of two is
/// exact, so results are the same as rescaling every node to a power-of-two maximum.
const LAZY: u64 = 128;
const LAZY_LO: f64 = f64::from_bits((1023 - LAZY) << 52); // 2^-LAZY
const LAZY_HI: f64 = f64::from_bits((1023 + LAZY) << 52); // 2^LAZY

/// Rescales each lane of the vector `p` (one `Lanes` per symbol) whose maximum left
/// `[2^-LAZY, 2^LAZY]` (all-zero lanes are left alone): by a power of two, whose log2
/// is added to `exp2`, or, for a subnormal maximum, by a plain division whose log is
/// added to `extra`.
#[inline(always)]
fn rescale_lanes(p: &mut [Lanes], exp2: &mut [i64; LANES], extra: &mut Lanes) {
    let mut hi = [0.0f64; LANES];
    for x in p.iter() {
        for k in 0..LANES {
            hi[k] = if x[k] > hi[k] { x[k] } else { hi[k] };
        }
    }
    let mut ok = true;
    for h in hi {
        ok &= (LAZY_LO..=LAZY_HI).contains(&h) | (h == 0.0);
    }
    if ok {
        return;
    }
    for k in 0..LANES {
        let h = hi[k];
        if (LAZY_LO..=LAZY_HI).contains(&h) || h == 0.0 {
            continue;
        }
        let biased = ((h.to_bits() >> 52) & 0x7ff) as i64;
        if biased == 0 || biased == 0x7ff {
            // subnormal (or not finite): divide as the general path does
            p.iter_mut().for_each(|x| x[k] /= h);
            extra[k] += h.ln();
            continue;
        }
        let e = biased - 1023; // h in [2^e, 2^(e+1)), |e| <= 1022
        let scale = f64::from_bits(((1023 - e) as u64) << 52); // 2^-e, a normal number
        p.iter_mut().for_each(|x| x[k] *= scale);
        exp2[k] += e;
    }
}

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
        if self.s == 2 {
            self.posterior_binary(ev)
        } else {
            self.posterior_general(ev)
        }
    }

    /// The binary (`s = 2`) path: rules as grouped flat entries, `LANES` strings at a
    /// time, lazily rescaled vectors, per-task scratch reused across batches.
    pub(super) fn posterior_binary(&self, ev: &Evidence) -> CoreResult<Posterior> {
        assert_eq!(self.s, 2);
        let (d, v, m, big_l) = (
            self.d,
            self.v as usize,
            self.m as usize,
            self.levels as usize,
        );
        let rows = ev.check(d, self.v)?;
        // every element is written below: no zeroing pass (serial, ~10% of the time)
        let n = rows * d * v;
        let mut marginals: Vec<f64> = Vec::new();
        crate::memory::reserve("x", &mut marginals, n)?;
        let mut log_evidence = vec![0.0f64; rows];
        let (vec_off, _) = self.node_layout();
        let levels: Vec<Binary> = (0..big_l)
            .map(|l| {
                let csyms = if l + 1 < big_l {
                    self.symbols_at(l + 1)
                } else {
                    v
                };
                Binary::new(
                    &self.rules[l],
                    &self.rule_probs[l],
                    self.symbols_at(l),
                    csyms,
                    m,
                )
            })
            .collect();
        let total = *vec_off.last().unwrap_or(&0);
        let kernel = BatchKernel::pick();
        let spare = &mut marginals.spare_capacity_mut()[..n];
        crate::memory::advise_huge_pages(spare);
        spare
            .par_chunks_mut(ROWS_PER_TASK * d * v)
            .zip(log_evidence.par_chunks_mut(ROWS_PER_TASK))
            .enumerate()
            .for_each_init(
                || Scratch2 {
                    inside: vec![[0.0; LANES]; total],
                    outside: vec![[0.0; LANES]; total],
                },
                |sc, (task, (marg, logz))| {
                    for (k, (out, z)) in marg
                        .chunks_mut(LANES * d * v)
                        .zip(logz.chunks_mut(LANES))
                        .enumerate()
                    {
                        let row0 = task * ROWS_PER_TASK + k * LANES;
                        kernel.run(self, &levels, ev, row0, &vec_off, sc, out, z);
                    }
                },
            );
        // SAFETY: the capacity is at least `n` (reserved), and `binary_batch` wrote each
        // of the `n` elements: every position of every row, in each row's chunk.
        unsafe { marginals.set_len(n) };
        Ok(Posterior {
            marginals,
            log_evidence,
        })
    }

    /// Rows `row0..row0 + z.len()` (at most `LANES`): marginals into `out`, log evidence
    /// into `z`. Missing lanes of a short batch hold fully masked strings, not reported.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn binary_batch(
        &self,
        levels: &[Binary],
        ev: &Evidence,
        row0: usize,
        vec_off: &[usize],
        sc: &mut Scratch2,
        out: &mut [MaybeUninit<f64>],
        z_out: &mut [f64],
    ) {
        let (big_l, d, v) = (self.levels as usize, self.d, self.v as usize);
        let count = z_out.len();
        debug_assert!(count <= LANES && out.len() == count * d * v);
        let mut exp2 = [0i64; LANES]; // log2 of the factors divided out of inside vectors
        let mut extra = [0.0f64; LANES]; // and the logs of any plain divisors
                                         // leaves
        let leaves = &mut sc.inside[vec_off[big_l]..vec_off[big_l + 1]];
        match *ev {
            Evidence::Masked { tokens, mask_id } => {
                // one-hot or all ones: maximum 1, nothing to rescale
                for (i, leaf) in leaves.chunks_exact_mut(v).enumerate() {
                    let mut t = [mask_id; LANES];
                    for (k, tk) in t.iter_mut().enumerate().take(count) {
                        *tk = tokens[(row0 + k) * d + i];
                    }
                    for (a, x) in leaf.iter_mut().enumerate() {
                        for k in 0..LANES {
                            x[k] = if t[k] == mask_id || t[k] == a as i64 {
                                1.0
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            Evidence::Uniform { tokens, alpha_bar } => {
                for (i, leaf) in leaves.chunks_exact_mut(v).enumerate() {
                    for k in 0..LANES {
                        if k < count {
                            let (t, al) =
                                (tokens[(row0 + k) * d + i] as usize, alpha_bar[row0 + k]);
                            // as `Evidence::leaf`
                            let base = (1.0 - al) / v as f64;
                            for (a, x) in leaf.iter_mut().enumerate() {
                                x[k] = if a == t { base + al } else { base };
                            }
                        } else {
                            leaf.iter_mut().for_each(|x| x[k] = 1.0);
                        }
                    }
                    rescale_lanes(leaf, &mut exp2, &mut extra);
                }
            }
        }
        // inside, bottom-up
        for l in (0..big_l).rev() {
            let lv = &levels[l];
            let (syms, cs) = (lv.syms, lv.csyms);
            let (lo, hi) = sc.inside.split_at_mut(vec_off[l + 1]);
            let parents = &mut lo[vec_off[l]..];
            let children = &hi[..vec_off[l + 2] - vec_off[l + 1]];
            for (dst, kids) in parents
                .chunks_exact_mut(syms)
                .zip(children.chunks_exact(2 * cs))
            {
                let (lk, rk) = kids.split_at(cs);
                for (a, slot) in dst.iter_mut().enumerate() {
                    let mut acc = [0.0f64; LANES];
                    for e in lv.by_parent.group(a) {
                        let (x, y) = (at(lk, e.x), at(rk, e.y));
                        for k in 0..LANES {
                            acc[k] += e.p * x[k] * y[k];
                        }
                    }
                    *slot = acc;
                }
                rescale_lanes(dst, &mut exp2, &mut extra);
            }
        }
        let mut z = [0.0f64; LANES];
        for (i, p) in sc.inside[..self.symbols_at(0)].iter().zip(&self.root_prior) {
            for k in 0..LANES {
                z[k] += i[k] * p;
            }
        }
        let mut possible = [true; LANES];
        for k in 0..count {
            z_out[k] = if z[k] > 0.0 {
                z[k].ln() + extra[k] + exp2[k] as f64 * std::f64::consts::LN_2
            } else {
                possible[k] = false;
                f64::NEG_INFINITY
            };
        }
        // outside, top-down
        for (o, &p) in sc.outside[..self.symbols_at(0)]
            .iter_mut()
            .zip(&self.root_prior)
        {
            *o = [p; LANES];
        }
        for l in 0..big_l {
            let lv = &levels[l];
            let (syms, cs) = (lv.syms, lv.csyms);
            let children = &sc.inside[vec_off[l + 1]..vec_off[l + 2]];
            let (lo, hi) = sc.outside.split_at_mut(vec_off[l + 1]);
            let parents = &lo[vec_off[l]..];
            let child_out = &mut hi[..vec_off[l + 2] - vec_off[l + 1]];
            let last = l + 1 == big_l;
            for ((po, co), kids) in parents
                .chunks_exact(syms)
                .zip(child_out.chunks_exact_mut(2 * cs))
                .zip(children.chunks_exact(2 * cs))
            {
                let (lk, rk) = kids.split_at(cs);
                let (left_out, right_out) = co.split_at_mut(cs);
                for (b, slot) in left_out.iter_mut().enumerate() {
                    let mut acc = [0.0f64; LANES];
                    for e in lv.by_left.group(b) {
                        let (o, y) = (at(po, e.x), at(rk, e.y));
                        for k in 0..LANES {
                            acc[k] += o[k] * e.p * y[k];
                        }
                    }
                    *slot = acc;
                }
                for (c, slot) in right_out.iter_mut().enumerate() {
                    let mut acc = [0.0f64; LANES];
                    for e in lv.by_right.group(c) {
                        let (o, x) = (at(po, e.x), at(lk, e.y));
                        for k in 0..LANES {
                            acc[k] += o[k] * e.p * x[k];
                        }
                    }
                    *slot = acc;
                }
                if !last {
                    // outside scales cancel in the normalised leaf posteriors
                    let (mut e2, mut ex) = ([0i64; LANES], [0.0f64; LANES]);
                    rescale_lanes(left_out, &mut e2, &mut ex);
                    rescale_lanes(right_out, &mut e2, &mut ex);
                }
            }
        }
        // leaf posteriors: inside times outside, normalised per position
        let leaves_in = &sc.inside[vec_off[big_l]..vec_off[big_l + 1]];
        let leaves_out = &sc.outside[vec_off[big_l]..vec_off[big_l + 1]];
        for (i, (li, lo)) in leaves_in
            .chunks_exact(v)
            .zip(leaves_out.chunks_exact(v))
            .enumerate()
        {
            let mut tot = [0.0f64; LANES];
            for (x, y) in li.iter().zip(lo) {
                for k in 0..LANES {
                    tot[k] += x[k] * y[k];
                }
            }
            for (k, &t) in tot.iter().enumerate().take(count) {
                let dst = &mut out[(k * d + i) * v..(k * d + i + 1) * v];
                if possible[k] && t > 0.0 && t.is_finite() {
                    let inv = 1.0 / t;
                    for ((o, x), y) in dst.iter_mut().zip(li).zip(lo) {
                        o.write(x[k] * y[k] * inv);
                    }
                } else {
                    dst.iter_mut().for_each(|o| {
                        o.write(1.0 / v as f64);
                    });
                }
            }
        }
    }

    /// The general path (any `s`): rules read from the grammar's tables, every node
    /// rescaled to a maximum of 1 with its log scale carried up.
    pub(super) fn posterior_general(&self, ev: &Evidence) -> CoreResult<Posterior> {
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

/// The batch kernel, compiled twice: for the baseline target and with AVX (wider
/// vectors for the lane loops), the latter used where the CPU has it. Both do the
/// same operations in the same order (no fused multiply-add), so the same results.
#[derive(Clone, Copy)]
enum BatchKernel {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx,
}

impl BatchKernel {
    fn pick() -> BatchKernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            return BatchKernel::Avx;
        }
        BatchKernel::Baseline
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        self,
        g: &Grammar,
        levels: &[Binary],
        ev: &Evidence,
        row0: usize,
        vec_off: &[usize],
        sc: &mut Scratch2,
        out: &mut [MaybeUninit<f64>],
        z: &mut [f64],
    ) {
        match self {
            BatchKernel::Baseline => g.binary_batch(levels, ev, row0, vec_off, sc, out, z),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx` is only picked when the CPU reports AVX.
            BatchKernel::Avx => unsafe { batch_avx(g, levels, ev, row0, vec_off, sc, out, z) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[allow(clippy::too_many_arguments)]
unsafe fn batch_avx(
    g: &Grammar,
    levels: &[Binary],
    ev: &Evidence,
    row0: usize,
    vec_off: &[usize],
    sc: &mut Scratch2,
    out: &mut [MaybeUninit<f64>],
    z: &mut [f64],
) {
    g.binary_batch(levels, ev, row0, vec_off, sc, out, z)
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
