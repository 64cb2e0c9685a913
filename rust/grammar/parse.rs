//! Bottom-up parsing: derivation, per-level validity and exact log-probability.
//!
//! Within a level every rule tuple is distinct, so each aligned block of children
//! has at most one parent: parsing is a deterministic upward pass of table lookups.

use rayon::prelude::*;

use super::blocks::BlockTable;
use super::table::TupleTable;
use super::{Grammar, NONE};
use crate::error::{CoreError, CoreResult};
use crate::token::Token;

/// `tok` as a symbol in `[0, v)`, or `Err(tok)` for any other value (negatives included).
#[inline(always)]
fn symbol<T: Token>(tok: T, v: u32) -> Result<u32, i64> {
    let t = tok.to_i64();
    if (t as u64) < v as u64 {
        Ok(t as u32)
    } else {
        Err(t)
    }
}

/// Rows per parallel work item.
const PARSE_CHUNK: usize = 512;

/// The result of parsing `N` strings.
#[derive(Debug, Clone)]
pub struct ParseBuffers {
    /// `N * K` symbols in level order (`-1` where undefined), when requested.
    pub symbols: Option<Vec<i64>>,
    /// `N * K` rule indices in level order (`-1` where undefined), when requested.
    pub rules: Option<Vec<i64>>,
    /// `N * L`: column `l` true iff every level-`l` node parses.
    pub valid_levels: Vec<bool>,
    /// Root symbol or `-1`.
    pub root: Vec<i64>,
    /// Exact log-probability, `-inf` where the string does not parse.
    pub log_prob: Vec<f64>,
}

struct RowOut<'a> {
    symbols: Option<&'a mut [i64]>,
    rules: Option<&'a mut [i64]>,
    valid_levels: &'a mut [bool],
}

impl Grammar {
    /// Parses one block of `s**(L - top)` tokens up to level `top`. Returns the
    /// level-`top` symbol (`NONE` if the block does not parse) and the log-probability
    /// of its subtree; `Err(token)` for a token `>= v`.
    #[inline]
    fn parse_block<T: Token>(
        &self,
        block: &[T],
        top: usize,
        scratch: &mut [u32],
        mut out: Option<RowOut<'_>>,
    ) -> Result<(u32, f64), i64> {
        let (m, s, v) = (self.m as usize, self.s as usize, self.v);
        let nl = self.levels as usize;
        let mut tuple = [0u32; 8];
        let mut big_tuple: Vec<u32> = Vec::new();
        if s > 8 {
            big_tuple.resize(s, 0);
        }
        let shift = m.is_power_of_two().then(|| m.trailing_zeros());
        let mut logp = 0.0f64;
        let mut width = block.len() / s;
        for l in (top..nl).rev() {
            let children = &self.rules[l];
            let table = &self.tables[l];
            let lp = &self.log_rule_probs[l];
            let mut all = true;
            let off = self.level_offset(l);
            for i in 0..width {
                let t: &mut [u32] = if s <= 8 {
                    &mut tuple[..s]
                } else {
                    &mut big_tuple[..]
                };
                let mut defined = true;
                if l + 1 == nl {
                    for (x, &tok) in t.iter_mut().zip(&block[i * s..(i + 1) * s]) {
                        let tok = symbol(tok, v)?;
                        *x = tok;
                    }
                } else {
                    t.copy_from_slice(&scratch[i * s..(i + 1) * s]);
                    defined = t.iter().all(|&c| c != NONE);
                }
                let id = if defined {
                    table.get(t, children)
                } else {
                    NONE
                };
                if id == NONE {
                    scratch[i] = NONE;
                    all = false;
                } else {
                    let idu = id as usize;
                    scratch[i] = match shift {
                        Some(sh) => (idu >> sh) as u32,
                        None => (idu / m) as u32,
                    };
                    logp += lp[idu];
                }
                if let Some(o) = out.as_mut() {
                    if let Some(sy) = o.symbols.as_mut() {
                        sy[off + i] = if id == NONE {
                            -1
                        } else {
                            (id as usize / m) as i64
                        };
                    }
                    if let Some(ru) = o.rules.as_mut() {
                        ru[off + i] = if id == NONE {
                            -1
                        } else {
                            (id as usize % m) as i64
                        };
                    }
                }
            }
            if let Some(o) = out.as_mut() {
                o.valid_levels[l] = all;
            }
            width /= s;
        }
        if top == nl {
            let tok = symbol(block[0], v)?;
            return Ok((tok, 0.0));
        }
        Ok((scratch[0], logp))
    }

    /// Dense tables of every level, when all levels have one (small `v**s`).
    fn dense_slots(&self) -> Option<Vec<&[u32]>> {
        self.tables
            .iter()
            .map(|t| match t {
                TupleTable::Dense { slots, .. } => Some(slots.as_slice()),
                TupleTable::Hashed { .. } => None,
            })
            .collect()
    }

    /// Base-`v` code of a block of tokens, or `Err(token)` for a token `>= v`.
    #[inline(always)]
    fn block_code<T: Token>(&self, block: &[T]) -> Result<usize, i64> {
        let v = self.v;
        let mut code = 0usize;
        for &tok in block {
            let tok = symbol(tok, v)?;
            code = code * v as usize + tok as usize;
        }
        Ok(code)
    }

    /// The upward pass without the derivation, using the merged bottom blocks.
    #[inline]
    fn check_row_blocks<T: Token>(
        &self,
        bt: &BlockTable,
        slots: &[&[u32]],
        row: &[T],
        scratch: &mut [u32],
        valid_levels: &mut [bool],
    ) -> Result<(u32, f64), i64> {
        let (m, s, v) = (self.m as usize, self.s as usize, self.v as usize);
        let nl = self.levels as usize;
        let shift = m.is_power_of_two().then(|| m.trailing_zeros());
        let mut logp = 0.0f64;
        let (mut kids_ok, mut all) = (true, true);
        for (b, block) in row.chunks_exact(s * s).enumerate() {
            let e = bt.entries[self.block_code(block)?];
            kids_ok &= e.kids_ok;
            if e.sym == NONE {
                all = false;
            } else {
                logp += e.logp;
            }
            scratch[b] = e.sym;
        }
        valid_levels[nl - 1] = kids_ok;
        valid_levels[nl - 2] = all;
        let mut width = row.len() / (s * s * s);
        for l in (0..nl - 2).rev() {
            let table = slots[l];
            let lp = &self.log_rule_probs[l];
            let mut all = true;
            for i in 0..width {
                let mut code = 0usize;
                let mut ok = true;
                for &x in &scratch[i * s..(i + 1) * s] {
                    ok &= x != NONE;
                    code = code.wrapping_mul(v).wrapping_add(x as usize);
                }
                let id = if ok { table[code] } else { NONE };
                if id == NONE {
                    scratch[i] = NONE;
                    all = false;
                } else {
                    scratch[i] = match shift {
                        Some(sh) => id >> sh,
                        None => (id as usize / m) as u32,
                    };
                    logp += lp[id as usize];
                }
            }
            valid_levels[l] = all;
            width /= s;
        }
        Ok((scratch[0], logp))
    }

    /// The upward pass over one string with dense tables: a few loads per node.
    /// `TREE` selects whether the derivation is written.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn parse_row_dense<T: Token, const TREE: bool>(
        &self,
        slots: &[&[u32]],
        row: &[T],
        scratch: &mut [u32],
        kid_lp: &mut [f64],
        symbols: &mut [i64],
        rules: &mut [i64],
        valid_levels: &mut [bool],
    ) -> Result<(u32, f64), i64> {
        let (m, s, v) = (self.m as usize, self.s as usize, self.v);
        let shift = if m.is_power_of_two() {
            Some(m.trailing_zeros())
        } else {
            None
        };
        let split = |id: usize| match shift {
            Some(sh) => (id >> sh, id & (m - 1)),
            None => (id / m, id % m),
        };
        let nl = self.levels as usize;
        let merged = self.block_table.is_some();
        let mut logp = 0.0f64;
        let mut width = row.len() / s;
        for l in (0..nl).rev() {
            let table = slots[l];
            let lp = &self.log_rule_probs[l];
            let off = self.level_offset(l);
            let mut all = true;
            for i in 0..width {
                let mut code = 0usize;
                let mut ok = true;
                if l + 1 == nl {
                    for &tok in &row[i * s..(i + 1) * s] {
                        let tok = symbol(tok, v)?;
                        code = code * v as usize + tok as usize;
                    }
                } else {
                    for &x in &scratch[i * s..(i + 1) * s] {
                        ok &= x != NONE;
                        code = code.wrapping_mul(v as usize).wrapping_add(x as usize);
                    }
                }
                let id = if ok { table[code] } else { NONE };
                if id == NONE {
                    scratch[i] = NONE;
                    all = false;
                    if TREE {
                        symbols[off + i] = -1;
                        rules[off + i] = -1;
                    }
                } else {
                    let (a, j) = split(id as usize);
                    scratch[i] = a as u32;
                    if merged && l + 1 == nl {
                        kid_lp[i] = lp[id as usize];
                    } else if merged && l + 2 == nl {
                        // Summed block by block exactly as `BlockTable` entries are, so
                        // `parse` and `check` give identical bits.
                        let mut block = 0.0f64;
                        for &x in &kid_lp[i * s..(i + 1) * s] {
                            block += x;
                        }
                        logp += block + lp[id as usize];
                    } else {
                        logp += lp[id as usize];
                    }
                    if TREE {
                        symbols[off + i] = a as i64;
                        rules[off + i] = j as i64;
                    }
                }
            }
            valid_levels[l] = all;
            width /= s;
        }
        Ok((scratch[0], logp))
    }

    /// Parses `tokens` (`N * d`, row-major). With `want_tree`, also returns the
    /// symbols and rule indices of every internal node.
    pub fn parse<T: Token>(&self, tokens: &[T], want_tree: bool) -> CoreResult<ParseBuffers> {
        let d = self.d;
        if tokens.len() % d != 0 {
            return Err(CoreError::value(
                "x",
                format!("has {} tokens, not a multiple of d = {d}", tokens.len()),
            ));
        }
        let num = tokens.len() / d;
        let k = self.internal_nodes();
        let nl = self.levels as usize;
        // Every entry is written by the pass; zeroed allocations are cheap (calloc).
        let mut symbols = if want_tree {
            Some(crate::memory::zeroed("x", 0i64, num * k)?)
        } else {
            None
        };
        let mut rules = if want_tree {
            Some(crate::memory::zeroed("x", 0i64, num * k)?)
        } else {
            None
        };
        let mut valid_levels = crate::memory::zeroed("x", false, num * nl)?;
        let mut root = crate::memory::zeroed("x", 0i64, num)?;
        root.fill(-1);
        let mut log_prob = crate::memory::zeroed("x", 0.0f64, num)?;
        log_prob.fill(f64::NEG_INFINITY);
        let scratch_len = (d / self.s as usize).max(1);

        // Split every output into per-chunk pieces so chunks can run in parallel.
        let mut sym_chunks: Vec<Option<&mut [i64]>> = match symbols.as_mut() {
            Some(v) => v.chunks_mut(PARSE_CHUNK * k).map(Some).collect(),
            None => Vec::new(),
        };
        let mut rule_chunks: Vec<Option<&mut [i64]>> = match rules.as_mut() {
            Some(v) => v.chunks_mut(PARSE_CHUNK * k).map(Some).collect(),
            None => Vec::new(),
        };
        let nchunks = num.div_ceil(PARSE_CHUNK);
        sym_chunks.resize_with(nchunks, || None);
        rule_chunks.resize_with(nchunks, || None);
        let items: Vec<_> = tokens
            .chunks(PARSE_CHUNK * d)
            .zip(sym_chunks)
            .zip(rule_chunks)
            .zip(valid_levels.chunks_mut(PARSE_CHUNK * nl))
            .zip(root.chunks_mut(PARSE_CHUNK))
            .zip(log_prob.chunks_mut(PARSE_CHUNK))
            .enumerate()
            .collect();
        let dense = self.dense_slots();
        items.into_par_iter().try_for_each(
            |(c, (((((rows, mut sy), mut ru), vl), rt), lpo))| {
                let mut scratch = vec![0u32; scratch_len];
                let mut kid_lp = vec![0.0f64; scratch_len];
                for (r, row) in rows.chunks(d).enumerate() {
                    let vl = &mut vl[r * nl..(r + 1) * nl];
                    let sy = sy.as_mut().map(|x| &mut x[r * k..(r + 1) * k]);
                    let ru = ru.as_mut().map(|x| &mut x[r * k..(r + 1) * k]);
                    let res = match (dense.as_ref(), sy, ru) {
                        (Some(slots), Some(a), Some(b)) => self.parse_row_dense::<T, true>(
                            slots,
                            row,
                            &mut scratch,
                            &mut kid_lp,
                            a,
                            b,
                            vl,
                        ),
                        (Some(slots), _, _) => match &self.block_table {
                            Some(bt) => self.check_row_blocks(bt, slots, row, &mut scratch, vl),
                            None => self.parse_row_dense::<T, false>(
                                slots,
                                row,
                                &mut scratch,
                                &mut kid_lp,
                                &mut [],
                                &mut [],
                                vl,
                            ),
                        },
                        (None, symbols, rules) => {
                            let out = RowOut {
                                symbols,
                                rules,
                                valid_levels: vl,
                            };
                            self.parse_block(row, 0, &mut scratch, Some(out))
                        }
                    };
                    match res {
                        Ok((sym, lp)) => {
                            if sym != NONE {
                                rt[r] = sym as i64;
                                lpo[r] = lp + self.log_root_prior[sym as usize];
                            }
                        }
                        Err(tok) => {
                            let row_index = c * PARSE_CHUNK + r;
                            return Err(CoreError::value(
                                "x",
                                format!(
                                    "string {row_index} contains token {tok}, outside [0, v={})",
                                    self.v
                                ),
                            ));
                        }
                    }
                }
                Ok(())
            },
        )?;
        Ok(ParseBuffers {
            symbols,
            rules,
            valid_levels,
            root,
            log_prob,
        })
    }

    /// Parses one aligned block of width `s**(L - level)` to its level-`level`
    /// symbol and subtree log-probability (`None` if it does not parse).
    pub(crate) fn block_symbol<T: Token>(
        &self,
        block: &[T],
        level: usize,
        scratch: &mut [u32],
    ) -> CoreResult<Option<(u32, f64)>> {
        match self.parse_block(block, level, scratch, None) {
            Ok((sym, lp)) => Ok((sym != NONE).then_some((sym, lp))),
            Err(tok) => Err(CoreError::value(
                "blocks",
                format!("contains token {tok}, outside [0, v={})", self.v),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_inverts_sampling() {
        let g = Grammar::random(6, 6, 4, 2, 4, 0, None, None).unwrap();
        let out = g.sample::<u8>(2000, 4, true).unwrap();
        let p = g.parse(&out.tokens, true).unwrap();
        let (syms, rules) = out.tree.unwrap();
        assert_eq!(p.symbols.unwrap(), syms);
        assert_eq!(p.rules.unwrap(), rules);
        assert!(p.valid_levels.iter().all(|&x| x));
        let lp = (0.25f64).ln() * 15.0 + (1.0f64 / 6.0).ln();
        assert!(p.log_prob.iter().all(|&x| (x - lp).abs() < 1e-9));
    }

    #[test]
    fn corrupted_strings_fail_at_the_right_levels() {
        let g = Grammar::random(6, 6, 4, 2, 3, 0, None, None).unwrap();
        let mut x = g.sample::<u8>(1, 4, false).unwrap().tokens;
        // Replace the first pair by one that is not a level-2 rule.
        let t = &g.rules[2];
        let pair = (0..36u32)
            .map(|c| [c / 6, c % 6])
            .find(|p| !t.chunks(2).any(|r| r == p))
            .unwrap();
        x[0] = pair[0] as u8;
        x[1] = pair[1] as u8;
        let p = g.parse(&x, true).unwrap();
        assert_eq!(p.valid_levels, vec![false, false, false]);
        assert_eq!(p.root, vec![-1]);
        assert_eq!(p.log_prob, vec![f64::NEG_INFINITY]);
        let syms = p.symbols.unwrap();
        assert_eq!(syms[3], -1); // level-2 node 0
        assert!(syms[4] >= 0); // level-2 node 1 still parses
        let bad = vec![6u8; 8];
        assert!(g.parse(&bad, false).is_err());
    }
}
