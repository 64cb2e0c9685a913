//! Construction and validation of a grammar, and the tables derived from it.

use std::collections::HashSet;

use num_bigint::BigUint;
use num_traits::ToPrimitive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::blocks::{BlockTable, BottomTable, RuleView};
use super::draw::{level_sampler, LevelSampler};
use super::symbols_at;
use super::table::TupleTable;
use crate::error::{CoreError, CoreResult};

/// Largest vocabulary accepted (symbols are stored as `u32`, `u32::MAX` is a sentinel).
pub const MAX_V: u64 = 1 << 31;
/// Largest string length `d = s**L` accepted.
pub const MAX_D: u64 = 1 << 24;
/// Largest total number of rule-table entries (`sum_l symbols_l * m * s`), 1 GiB of `u32`.
pub const MAX_RULE_ENTRIES: u64 = 1 << 28;

/// Stream of the grammar-construction RNG, apart from the sampling streams.
const GRAMMAR_STREAM: u64 = u64::MAX;

/// A Random Hierarchy Model grammar with its derived lookup tables.
#[derive(Debug, Clone)]
pub struct Grammar {
    pub(crate) v: u32,
    pub(crate) n: u32,
    pub(crate) m: u32,
    pub(crate) s: u32,
    pub(crate) levels: u32,
    pub(crate) d: usize,
    /// `rules[l]`: `symbols(l) * m * s` children, rule id `a*m+j` at `[id*s..(id+1)*s]`.
    pub(crate) rules: Vec<Vec<u32>>,
    /// `rule_probs[l]`: `symbols(l) * m`, indexed by rule id.
    pub(crate) rule_probs: Vec<Vec<f64>>,
    pub(crate) root_prior: Vec<f64>,
    pub(crate) log_rule_probs: Vec<Vec<f64>>,
    pub(crate) log_root_prior: Vec<f64>,
    pub(crate) samplers: Vec<LevelSampler>,
    pub(crate) root_sampler: LevelSampler,
    pub(crate) tables: Vec<TupleTable>,
    /// True when every rule distribution and the root prior are uniform.
    pub(crate) uniform: bool,
    pub(crate) num_strings: BigUint,
    pub(crate) num_strings_u64: Option<u64>,
    /// Whole bottom subtrees drawn in one step (see `blocks::BottomTable`).
    pub(crate) bottom: Option<BottomTable>,
    /// The two bottom levels merged for parsing (see `blocks::BlockTable`).
    pub(crate) block_table: Option<BlockTable>,
}

/// `Err` naming `param` unless `lo <= value <= hi`.
fn check_in(param: &str, value: u64, lo: u64, hi: u64) -> CoreResult<()> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(CoreError::value(
            param,
            format!("{param} = {value} must be in [{lo}, {hi}]"),
        ))
    }
}

fn check_dims(v: u64, n: u64, m: u64, s: u64, levels: u64) -> CoreResult<usize> {
    check_in("v", v, 1, MAX_V)?;
    check_in("n", n, 1, MAX_V)?;
    check_in("m", m, 1, MAX_V)?;
    check_in("s", s, 2, MAX_D)?;
    check_in("L", levels, 1, 64)?;
    let d = (s as u128).checked_pow(levels as u32).unwrap_or(u128::MAX);
    if d > MAX_D as u128 {
        return Err(CoreError::value(
            "L",
            format!(
                "d = s**L = {s}**{levels} exceeds {MAX_D} tokens per string: too large to allocate"
            ),
        ));
    }
    let space = (v as u128).checked_pow(s as u32).unwrap_or(u128::MAX);
    if (n as u128) * (m as u128) > space {
        return Err(CoreError::value(
            "m",
            format!(
                "n*m = {} exceeds v**s = {v}**{s}: rules cannot be unique",
                n * m
            ),
        ));
    }
    if levels >= 2 && (v as u128) * (m as u128) > space {
        return Err(CoreError::value(
            "m",
            format!(
                "v*m = {} exceeds v**s = {v}**{s}: rules cannot be unique",
                v * m
            ),
        ));
    }
    let entries = (n as u128 + (levels as u128 - 1) * v as u128) * m as u128 * s as u128;
    if entries > MAX_RULE_ENTRIES as u128 {
        return Err(CoreError::value(
            "v",
            format!("the rule tables would hold {entries} entries (more than {MAX_RULE_ENTRIES}): too large to allocate"),
        ));
    }
    Ok(d as usize)
}

fn check_distribution(param: &str, p: &[f64], what: &str) -> CoreResult<()> {
    let mut sum = 0.0;
    for &x in p {
        if !x.is_finite() || x < 0.0 {
            return Err(CoreError::value(
                param,
                format!("{what} contains {x}: probabilities must be finite and >= 0"),
            ));
        }
        sum += x;
    }
    if (sum - 1.0).abs() > 1e-8 {
        return Err(CoreError::value(
            param,
            format!("{what} sums to {sum}, not 1"),
        ));
    }
    Ok(())
}

/// Draws `count` distinct `s`-tuples over `[0, v)` uniformly without replacement.
fn distinct_tuples(rng: &mut ChaCha8Rng, count: usize, v: u32, s: usize) -> Vec<u32> {
    let space = (v as u128).checked_pow(s as u32).unwrap_or(u128::MAX);
    let mut out = Vec::with_capacity(count * s);
    if space <= 1 << 22 {
        // Partial Fisher-Yates over all tuple codes.
        let space = space as usize;
        let mut codes: Vec<u32> = (0..space as u32).collect();
        for i in 0..count {
            let j = rng.random_range(i..space);
            codes.swap(i, j);
            let mut code = codes[i];
            let start = out.len();
            out.resize(start + s, 0);
            for k in (0..s).rev() {
                out[start + k] = code % v;
                code /= v;
            }
        }
    } else {
        // Rejection of repeats: every ordered sequence of distinct tuples is equally likely.
        let mut seen: HashSet<Vec<u32>> = HashSet::with_capacity(count);
        let mut t = vec![0u32; s];
        while seen.len() < count {
            for x in t.iter_mut() {
                *x = rng.random_range(0..v);
            }
            if seen.insert(t.clone()) {
                out.extend_from_slice(&t);
            }
        }
    }
    out
}

impl Grammar {
    /// A random grammar: each level's tuples drawn uniformly without replacement
    /// from all `v**s` tuples (ChaCha8 seeded with `seed`).
    #[allow(clippy::too_many_arguments)]
    pub fn random(
        v: u64,
        n: u64,
        m: u64,
        s: u64,
        levels: u64,
        seed: u64,
        rule_probs: Option<Vec<Vec<f64>>>,
        root_prior: Option<Vec<f64>>,
    ) -> CoreResult<Grammar> {
        check_dims(v, n, m, s, levels)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(GRAMMAR_STREAM);
        let rules: Vec<Vec<u32>> = (0..levels as usize)
            .map(|l| {
                let count = symbols_at(l, n as u32, v as u32) * m as usize;
                distinct_tuples(&mut rng, count, v as u32, s as usize)
            })
            .collect();
        Grammar::build(v, n, m, s, levels, rules, rule_probs, root_prior)
    }

    /// A grammar from given rule tables (`rules[l]` flattened `(symbols_l, m, s)`).
    /// Validates shapes, symbol ranges (`[0, v)`, any `i64` given) and uniqueness
    /// within each level.
    #[allow(clippy::too_many_arguments)]
    pub fn from_rules(
        v: u64,
        n: u64,
        m: u64,
        s: u64,
        levels: u64,
        rules: &[&[i64]],
        rule_probs: Option<Vec<Vec<f64>>>,
        root_prior: Option<Vec<f64>>,
    ) -> CoreResult<Grammar> {
        check_dims(v, n, m, s, levels)?;
        if rules.len() != levels as usize {
            return Err(CoreError::value(
                "rules",
                format!("expected L = {levels} levels, got {}", rules.len()),
            ));
        }
        let mut tables = Vec::with_capacity(rules.len());
        for (l, r) in rules.iter().enumerate() {
            let syms = symbols_at(l, n as u32, v as u32);
            let want = syms * m as usize * s as usize;
            if r.len() != want {
                return Err(CoreError::value(
                    "rules",
                    format!(
                        "rules[{l}] has {} entries, expected {syms}*{m}*{s} = {want}",
                        r.len()
                    ),
                ));
            }
            if let Some(&bad) = r.iter().find(|&&x| !(0..v as i64).contains(&x)) {
                return Err(CoreError::value(
                    "rules",
                    format!("rules[{l}] contains symbol {bad}, outside [0, v={v})"),
                ));
            }
            let table: Vec<u32> = r.iter().map(|&x| x as u32).collect();
            let mut seen: HashSet<&[u32]> = HashSet::with_capacity(syms * m as usize);
            for t in table.chunks(s as usize) {
                if !seen.insert(t) {
                    return Err(CoreError::value(
                        "rules",
                        format!("rules[{l}] contains the tuple {t:?} twice: rules within a level must be unique"),
                    ));
                }
            }
            drop(seen);
            tables.push(table);
        }
        Grammar::build(v, n, m, s, levels, tables, rule_probs, root_prior)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        v: u64,
        n: u64,
        m: u64,
        s: u64,
        levels: u64,
        rules: Vec<Vec<u32>>,
        rule_probs: Option<Vec<Vec<f64>>>,
        root_prior: Option<Vec<f64>>,
    ) -> CoreResult<Grammar> {
        let d = check_dims(v, n, m, s, levels)?;
        let (v, n, m, s) = (v as u32, n as u32, m as u32, s as u32);
        let nl = levels as usize;
        let rule_probs = match rule_probs {
            None => (0..nl)
                .map(|l| vec![1.0 / m as f64; symbols_at(l, n, v) * m as usize])
                .collect(),
            Some(p) => {
                if p.len() != nl {
                    return Err(CoreError::value(
                        "rule_probs",
                        format!("expected L = {nl} levels, got {}", p.len()),
                    ));
                }
                for (l, pl) in p.iter().enumerate() {
                    let syms = symbols_at(l, n, v);
                    if pl.len() != syms * m as usize {
                        return Err(CoreError::value(
                            "rule_probs",
                            format!(
                                "level {l} has {} probabilities, expected {syms}*{m}",
                                pl.len()
                            ),
                        ));
                    }
                    for (a, row) in pl.chunks(m as usize).enumerate() {
                        check_distribution("rule_probs", row, &format!("level {l}, symbol {a}"))?;
                    }
                }
                p
            }
        };
        let root_prior = match root_prior {
            None => vec![1.0 / n as f64; n as usize],
            Some(p) => {
                if p.len() != n as usize {
                    return Err(CoreError::value(
                        "root_prior",
                        format!("has {} entries, expected n = {n}", p.len()),
                    ));
                }
                check_distribution("root_prior", &p, "the root prior")?;
                p
            }
        };
        let uniform = root_prior.iter().all(|&x| x == root_prior[0])
            && rule_probs.iter().all(|pl| {
                pl.chunks(m as usize)
                    .all(|row| row.iter().all(|&x| x == row[0]))
            });
        let log_rule_probs = rule_probs
            .iter()
            .map(|pl| pl.iter().map(|x| x.ln()).collect())
            .collect();
        let log_root_prior = root_prior.iter().map(|x| x.ln()).collect();
        let samplers = rule_probs
            .iter()
            .map(|pl| level_sampler(pl, m as usize))
            .collect();
        let root_sampler = level_sampler(&root_prior, n as usize);
        let tables = rules
            .iter()
            .map(|r| TupleTable::build(r, s as usize, v))
            .collect();
        let internal = ((d - 1) / (s as usize - 1)) as u64;
        let num_strings = BigUint::from(n) * BigUint::from(m).pow(internal as u32);
        let num_strings_u64 = num_strings.to_u64();
        let mut g = Grammar {
            v,
            n,
            m,
            s,
            levels: levels as u32,
            d,
            rules,
            rule_probs,
            root_prior,
            log_rule_probs,
            log_root_prior,
            samplers,
            root_sampler,
            tables,
            uniform,
            num_strings,
            num_strings_u64,
            bottom: None,
            block_table: None,
        };
        g.bottom = BottomTable::build(&g.rule_view());
        g.block_table = BlockTable::build(&g.rule_view());
        Ok(g)
    }

    /// The validated rules, as the merged tables are built from them.
    fn rule_view(&self) -> RuleView<'_> {
        RuleView {
            v: self.v,
            n: self.n,
            m: self.m,
            s: self.s,
            levels: self.levels,
            rules: &self.rules,
            rule_probs: &self.rule_probs,
            log_rule_probs: &self.log_rule_probs,
            root_prior: &self.root_prior,
            tables: &self.tables,
        }
    }

    pub fn v(&self) -> u32 {
        self.v
    }
    pub fn n(&self) -> u32 {
        self.n
    }
    pub fn m(&self) -> u32 {
        self.m
    }
    pub fn s(&self) -> u32 {
        self.s
    }
    /// Depth `L`.
    pub fn levels(&self) -> u32 {
        self.levels
    }
    /// String length `s**L`.
    pub fn d(&self) -> usize {
        self.d
    }
    /// Number of internal nodes `(d-1)/(s-1)` (root included).
    pub fn internal_nodes(&self) -> usize {
        (self.d - 1) / (self.s as usize - 1)
    }
    /// Offset of level `l`'s first node in the level-order node layout.
    pub fn level_offset(&self, l: usize) -> usize {
        (self.s as usize).pow(l as u32).saturating_sub(1) / (self.s as usize - 1)
    }
    pub fn num_strings(&self) -> &BigUint {
        &self.num_strings
    }
    pub fn rules(&self) -> &[Vec<u32>] {
        &self.rules
    }
    pub fn rule_probs(&self) -> &[Vec<f64>] {
        &self.rule_probs
    }
    pub fn root_prior(&self) -> &[f64] {
        &self.root_prior
    }
    pub fn is_uniform(&self) -> bool {
        self.uniform
    }
    /// Number of symbols at internal level `l`.
    pub fn symbols_at(&self, l: usize) -> usize {
        symbols_at(l, self.n, self.v)
    }

    /// Number of strings with positive probability (as f64; `inf` when huge).
    pub fn support_size(&self) -> f64 {
        let (m, s) = (self.m as usize, self.s as usize);
        let mut below = vec![1.0f64; self.v as usize];
        for l in (0..self.levels as usize).rev() {
            let syms = self.symbols_at(l);
            let mut cur = vec![0.0f64; syms];
            for (a, c) in cur.iter_mut().enumerate() {
                for j in 0..m {
                    let id = a * m + j;
                    if self.rule_probs[l][id] > 0.0 {
                        *c += self.rules[l][id * s..(id + 1) * s]
                            .iter()
                            .map(|&b| below[b as usize])
                            .product::<f64>();
                    }
                }
            }
            below = cur;
        }
        below
            .iter()
            .zip(&self.root_prior)
            .filter(|(_, &p)| p > 0.0)
            .map(|(c, _)| c)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_rules_are_unique_and_in_range() {
        let g = Grammar::random(6, 6, 4, 2, 4, 0, None, None).unwrap();
        assert_eq!(g.d(), 16);
        for (l, r) in g.rules().iter().enumerate() {
            assert_eq!(r.len(), g.symbols_at(l) * 4 * 2);
            let set: HashSet<&[u32]> = r.chunks(2).collect();
            assert_eq!(set.len(), r.len() / 2);
            assert!(r.iter().all(|&x| x < 6));
        }
        assert_eq!(g.num_strings().to_u64(), Some(6 * 4u64.pow(15)));
        let h = Grammar::random(6, 6, 4, 2, 4, 0, None, None).unwrap();
        assert_eq!(g.rules(), h.rules());
        let k = Grammar::random(6, 6, 4, 2, 4, 1, None, None).unwrap();
        assert_ne!(g.rules(), k.rules());
    }

    #[test]
    fn rejection_path_for_large_tuple_spaces() {
        let g = Grammar::random(65536, 4, 3, 2, 2, 7, None, None).unwrap();
        let set: HashSet<&[u32]> = g.rules()[1].chunks(2).collect();
        assert_eq!(set.len(), 65536 * 3);
    }

    #[test]
    fn bad_dimensions_are_errors() {
        assert!(Grammar::random(0, 1, 1, 2, 1, 0, None, None).is_err());
        assert!(Grammar::random(6, 6, 7, 2, 2, 0, None, None).is_err()); // v*m > v**s
        assert!(Grammar::random(2, 5, 1, 2, 1, 0, None, None).is_err()); // n*m > v**s
        assert!(Grammar::random(2, 1, 1, 2, 40, 0, None, None).is_err()); // d too large
        assert!(Grammar::random(2, 1, 1, 1, 3, 0, None, None).is_err()); // s < 2
    }

    #[test]
    fn bad_rules_and_probs_are_errors() {
        let dup: &[&[i64]] = &[&[0, 1, 0, 1]];
        assert!(Grammar::from_rules(2, 1, 2, 2, 1, dup, None, None).is_err());
        let out_of_range: &[&[i64]] = &[&[0, 2, 0, 1]];
        assert!(Grammar::from_rules(2, 1, 2, 2, 1, &[&[0, -1, 0, 1]], None, None).is_err());
        assert!(Grammar::from_rules(2, 1, 2, 2, 1, out_of_range, None, None).is_err());
        let ok: &[&[i64]] = &[&[0, 1, 1, 0]];
        assert!(Grammar::from_rules(2, 1, 2, 2, 1, ok, Some(vec![vec![0.5, 0.6]]), None).is_err());
        assert!(
            Grammar::from_rules(2, 1, 2, 2, 1, ok, Some(vec![vec![f64::NAN, 1.0]]), None).is_err()
        );
        assert!(Grammar::from_rules(2, 1, 2, 2, 1, ok, None, Some(vec![0.5, 0.5])).is_err());
        assert!(Grammar::from_rules(2, 1, 2, 2, 1, ok, Some(vec![vec![0.25, 0.75]]), None).is_ok());
    }
}
