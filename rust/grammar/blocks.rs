//! Merged lookup tables derived from the rules at construction: whole bottom
//! subtrees (and the top levels) drawn in one step when sampling, and blocks of
//! `s*s` tokens parsed in one load. Built from a `RuleView` of the validated rules,
//! so this module does not depend on `Grammar`.

use super::draw::{level_sampler, LevelSampler};
use super::table::TupleTable;
use super::{symbols_at, NONE};

/// The validated rules a merged table is built from, borrowed from the grammar.
pub(crate) struct RuleView<'a> {
    pub(crate) v: u32,
    pub(crate) n: u32,
    pub(crate) m: u32,
    pub(crate) s: u32,
    pub(crate) levels: u32,
    pub(crate) rules: &'a [Vec<u32>],
    pub(crate) rule_probs: &'a [Vec<f64>],
    pub(crate) log_rule_probs: &'a [Vec<f64>],
    pub(crate) root_prior: &'a [f64],
    pub(crate) tables: &'a [TupleTable],
}

impl RuleView<'_> {
    fn symbols_at(&self, level: usize) -> usize {
        symbols_at(level, self.n, self.v)
    }
}

/// Largest merged table (bytes of tokens, about half an L2 cache) and outcome
/// count per symbol.
const BOTTOM_MAX_BYTES: usize = 1 << 20;
const BOTTOM_MAX_OUTCOMES: usize = 1 << 16;

/// Merged-table tokens in the output dtype of the grammar (smallest holding `v`),
/// so a block is copied, not converted.
#[derive(Debug, Clone)]
pub enum BlockTokens {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

fn token_bytes(v: u32) -> usize {
    if v <= 1 << 8 {
        1
    } else if v <= 1 << 16 {
        2
    } else {
        4
    }
}

/// Copies a block, with constant lengths for the common widths so the copy is a
/// few moves rather than a `memcpy` call.
#[inline(always)]
pub(crate) fn copy_block<T: Copy>(dst: &mut [T], src: &[T]) {
    match dst.len() {
        2 => dst[..2].copy_from_slice(&src[..2]),
        4 => dst[..4].copy_from_slice(&src[..4]),
        8 => dst[..8].copy_from_slice(&src[..8]),
        9 => dst[..9].copy_from_slice(&src[..9]),
        16 => dst[..16].copy_from_slice(&src[..16]),
        w => dst.copy_from_slice(&src[..w]),
    }
}

/// The bottom `levels` levels of the tree merged: every level-`(L-levels)` symbol
/// has `outcomes = m**K_B` possible subtrees (`K_B` internal nodes), each a block of
/// `width = s**levels` tokens, drawn in one step from their exact product
/// distribution. This replaces `K_B` rule draws and copies by one draw and one copy.
#[derive(Debug, Clone)]
pub(crate) struct BottomTable {
    pub(crate) levels: usize,
    pub(crate) width: usize,
    pub(crate) outcomes: usize,
    pub(crate) tokens: BlockTokens,
    pub(crate) sampler: LevelSampler,
    /// The levels above merged too (root prior included), when small enough.
    pub(crate) top: Option<TopTable>,
}

/// The root and the levels `0..top` merged: `outcomes = n * m**K_top` possible top
/// derivations, each giving the `width = s**top` symbols of level `top`, drawn in
/// one step from their exact distribution.
#[derive(Debug, Clone)]
pub(crate) struct TopTable {
    pub(crate) width: usize,
    pub(crate) outcomes: usize,
    pub(crate) symbols: Vec<u32>,
    pub(crate) sampler: LevelSampler,
}

fn is_uniform_rows(p: &[f64], k: usize) -> bool {
    p.chunks(k).all(|row| row.iter().all(|&x| x == row[0]))
}

/// One fixed derivation of a subtree, the scratch shared by `TopTable::build` and
/// `BottomTable::build` when they enumerate every outcome.
struct Derivation {
    /// Rule choice of each node in node order (level by level, left to right).
    digits: Vec<usize>,
    /// The symbols of the last level expanded.
    cur: Vec<u32>,
    next: Vec<u32>,
}

impl Derivation {
    fn new(nodes: usize, width: usize) -> Derivation {
        Derivation {
            digits: vec![0; nodes],
            cur: Vec::with_capacity(width),
            next: Vec::with_capacity(width),
        }
    }

    /// Expands `root` down `levels`, the t-th node taking the rule named by the t-th
    /// base-`m` digit of `choice` (first node most significant); leaves the symbols
    /// in `self.cur` and returns `p0` times the rule probabilities, multiplied in
    /// node order.
    fn expand(
        &mut self,
        g: &RuleView<'_>,
        root: u32,
        p0: f64,
        levels: std::ops::Range<usize>,
        choice: usize,
    ) -> f64 {
        let (m, s) = (g.m as usize, g.s as usize);
        let mut x = choice;
        for dgt in self.digits.iter_mut().rev() {
            *dgt = x % m;
            x /= m;
        }
        self.cur.clear();
        self.cur.push(root);
        let mut p = p0;
        let mut t = 0;
        for l in levels {
            self.next.clear();
            for &sym in self.cur.iter() {
                let id = sym as usize * m + self.digits[t];
                t += 1;
                p *= g.rule_probs[l][id];
                self.next
                    .extend_from_slice(&g.rules[l][id * s..(id + 1) * s]);
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        p
    }
}

impl TopTable {
    fn build(g: &RuleView<'_>, top: usize) -> Option<TopTable> {
        let (n, m, s) = (g.n as usize, g.m as usize, g.s as usize);
        if top == 0 {
            return None;
        }
        let width = s.checked_pow(top as u32)?;
        let kt = (width - 1) / (s - 1);
        let per_root = m.checked_pow(kt as u32)?;
        let outcomes = n.checked_mul(per_root)?;
        if outcomes > BOTTOM_MAX_OUTCOMES || outcomes * width * 4 > BOTTOM_MAX_BYTES {
            return None;
        }
        let mut symbols = vec![0u32; outcomes * width];
        let mut probs = vec![0.0f64; outcomes];
        let mut tree = Derivation::new(kt, width);
        for o in 0..outcomes {
            let root = o / per_root;
            let p = tree.expand(g, root as u32, g.root_prior[root], 0..top, o % per_root);
            symbols[o * width..(o + 1) * width].copy_from_slice(&tree.cur);
            probs[o] = p;
        }
        let uniform = is_uniform_rows(g.root_prior, n)
            && (0..top).all(|l| is_uniform_rows(&g.rule_probs[l], m));
        let sampler = if uniform {
            level_sampler(&vec![1.0; outcomes], outcomes)
        } else {
            level_sampler(&probs, outcomes)
        };
        Some(TopTable {
            width,
            outcomes,
            symbols,
            sampler,
        })
    }
}

impl BottomTable {
    pub(crate) fn build(g: &RuleView<'_>) -> Option<BottomTable> {
        let (m, s, nl) = (g.m as usize, g.s as usize, g.levels as usize);
        let mut best = None;
        for b in 2..=nl {
            let width = s.checked_pow(b as u32)?;
            let kb = (width - 1) / (s - 1);
            let outcomes = match m.checked_pow(kb as u32) {
                Some(o) if o <= BOTTOM_MAX_OUTCOMES => o,
                _ => break,
            };
            let top = nl - b;
            let entries = g.symbols_at(top) * outcomes * width;
            if entries * token_bytes(g.v) > BOTTOM_MAX_BYTES {
                break;
            }
            best = Some((b, width, kb, outcomes));
        }
        let (b, width, kb, outcomes) = best?;
        let top = nl - b;
        let syms = g.symbols_at(top);
        let mut tokens = vec![0u32; syms * outcomes * width];
        let mut probs = vec![0.0f64; syms * outcomes];
        let mut tree = Derivation::new(kb, width);
        for a in 0..syms {
            for o in 0..outcomes {
                let p = tree.expand(g, a as u32, 1.0, top..nl, o);
                let start = (a * outcomes + o) * width;
                tokens[start..start + width].copy_from_slice(&tree.cur);
                probs[a * outcomes + o] = p;
            }
        }
        let uniform = (top..nl).all(|l| is_uniform_rows(&g.rule_probs[l], m));
        // Uniform rules give uniform outcomes (Bits/Uniform); otherwise an alias table.
        let sampler = if uniform {
            level_sampler(&vec![1.0; outcomes], outcomes)
        } else {
            level_sampler(&probs, outcomes)
        };
        let tokens = match token_bytes(g.v) {
            1 => BlockTokens::U8(tokens.iter().map(|&x| x as u8).collect()),
            2 => BlockTokens::U16(tokens.iter().map(|&x| x as u16).collect()),
            _ => BlockTokens::U32(tokens),
        };
        Some(BottomTable {
            levels: b,
            width,
            outcomes,
            tokens,
            sampler,
            top: TopTable::build(g, top),
        })
    }
}

/// Largest merged bottom-block table (`v**(s*s)` entries).
const BLOCK_TABLE_LIMIT: u128 = 1 << 16;

/// One entry of the merged bottom-block table: a block of `s*s` tokens parsed
/// through levels `L-1` and `L-2` in one load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockEntry {
    /// Level-`(L-2)` symbol, or `NONE`.
    pub(crate) sym: u32,
    /// Every level-`(L-1)` node of the block parses.
    pub(crate) kids_ok: bool,
    /// Log-probability of the block's `s + 1` rules (meaningful when `sym != NONE`).
    pub(crate) logp: f64,
}

/// Blocks of `s*s` tokens -> level-`(L-2)` symbol and subtree log-probability, for
/// small alphabets: halves the lookups of the upward pass. Log-probabilities are
/// summed block by block in both `parse` and `check`, so both give identical bits.
#[derive(Debug, Clone)]
pub(crate) struct BlockTable {
    pub(crate) entries: Vec<BlockEntry>,
}

impl BlockTable {
    pub(crate) fn build(g: &RuleView<'_>) -> Option<BlockTable> {
        let (v, s, nl) = (g.v as usize, g.s as usize, g.levels as usize);
        if nl < 2 {
            return None;
        }
        let size = (v as u128).checked_pow((s * s) as u32)?;
        if size > BLOCK_TABLE_LIMIT
            || g.tables
                .iter()
                .any(|t| !matches!(t, TupleTable::Dense { .. }))
        {
            return None;
        }
        let m = g.m as usize;
        let mut entries = Vec::with_capacity(size as usize);
        let mut block = vec![0u32; s * s];
        let mut kids = vec![0u32; s];
        for code in 0..size as usize {
            let mut x = code;
            for b in block.iter_mut().rev() {
                *b = (x % v) as u32;
                x /= v;
            }
            let mut kids_ok = true;
            let mut logp = 0.0f64;
            for (c, kid) in kids.iter_mut().enumerate() {
                let id = g.tables[nl - 1].get(&block[c * s..(c + 1) * s], &g.rules[nl - 1]);
                if id == NONE {
                    kids_ok = false;
                } else {
                    *kid = (id as usize / m) as u32;
                    logp += g.log_rule_probs[nl - 1][id as usize];
                }
            }
            let mut sym = NONE;
            if kids_ok {
                let id = g.tables[nl - 2].get(&kids, &g.rules[nl - 2]);
                if id != NONE {
                    sym = (id as usize / m) as u32;
                    logp += g.log_rule_probs[nl - 2][id as usize];
                }
            }
            entries.push(BlockEntry { sym, kids_ok, logp });
        }
        Some(BlockTable { entries })
    }
}
