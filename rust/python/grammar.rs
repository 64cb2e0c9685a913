//! Bindings for the core `grammar` module: convert arguments, release the GIL,
//! delegate, convert results. Token arrays go through `tokens.rs` (one dtype policy
//! with the index); shapes are normalised by the Python facade (`rhmfast.grammar`);
//! values (token and rule symbol ranges) are validated by the core.

use std::sync::Arc;

use num_bigint::BigUint;
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::tokens::{tokens1, tokens2, with_slice, Tokens1, Tokens2};
use crate::error::CoreError;
use crate::grammar::{Grammar, Ranks, SampleToken};
use crate::token::Token;

fn to_u64(param: &str, x: i64) -> PyResult<u64> {
    u64::try_from(x)
        .map_err(|_| CoreError::value(param, format!("{param} = {x} must be >= 0")).into())
}

/// Expands `$go!(T)` with the narrowest token type `T` that holds `v` symbols.
macro_rules! narrowest_token {
    ($v:expr, $go:ident) => {
        if $v <= 1 << 8 {
            $go!(u8)
        } else if $v <= 1 << 16 {
            $go!(u16)
        } else {
            $go!(u32)
        }
    };
}

fn matrix<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    cols: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let rows = v.len().checked_div(cols).unwrap_or(0);
    Ok(v.into_pyarray(py).reshape([rows, cols])?.into_any())
}

/// The contiguous data of an optional 1-D array.
fn optional_slice<'a>(
    param: &str,
    a: Option<&'a PyReadonlyArray1<'_, i64>>,
) -> PyResult<Option<&'a [i64]>> {
    a.map(|a| {
        a.as_slice()
            .map_err(|_| PyValueError::new_err(format!("{param}: expected a contiguous array")))
    })
    .transpose()
}

/// `x` must hold strings of the grammar's length `d`.
fn check_length(g: &Grammar, cols: usize) -> PyResult<()> {
    if cols != g.d() {
        return Err(CoreError::value(
            "x",
            format!("strings have length {cols}, expected d = {}", g.d()),
        )
        .into());
    }
    Ok(())
}

/// A Random Hierarchy Model grammar (native). Use `rhmfast.RHM`.
#[pyclass(name = "Grammar", module = "rhmfast._rhmfast", frozen)]
pub struct PyGrammar {
    pub(super) inner: Arc<Grammar>,
}

fn probs_in(rule_probs: Option<Vec<PyReadonlyArray2<'_, f64>>>) -> PyResult<Option<Vec<Vec<f64>>>> {
    rule_probs
        .map(|ps| {
            ps.iter()
                .map(|p| Ok(p.as_array().iter().copied().collect()))
                .collect::<PyResult<Vec<_>>>()
        })
        .transpose()
}

impl PyGrammar {
    fn sampled<'py, T: SampleToken + numpy::Element>(
        &self,
        py: Python<'py>,
        out: crate::grammar::Sampled<T>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (d, k) = (self.inner.d(), self.inner.internal_nodes());
        let tokens = matrix(py, out.tokens, d)?;
        let (syms, rules) = match out.tree {
            Some((a, b)) => (matrix(py, a, k)?, matrix(py, b, k)?),
            None => (py.None().into_bound(py), py.None().into_bound(py)),
        };
        PyTuple::new(py, [tokens, syms, rules])
    }
}

#[pymethods]
impl PyGrammar {
    #[staticmethod]
    #[pyo3(signature = (v, n, m, s, L, *, seed, rule_probs=None, root_prior=None))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn random(
        py: Python<'_>,
        v: i64,
        n: i64,
        m: i64,
        s: i64,
        L: i64,
        seed: u64,
        rule_probs: Option<Vec<PyReadonlyArray2<'_, f64>>>,
        root_prior: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let (v, n, m, s, l) = (
            to_u64("v", v)?,
            to_u64("n", n)?,
            to_u64("m", m)?,
            to_u64("s", s)?,
            to_u64("L", L)?,
        );
        let probs = probs_in(rule_probs)?;
        let prior = root_prior.map(|p| p.as_array().iter().copied().collect::<Vec<f64>>());
        let g = py.detach(|| Grammar::random(v, n, m, s, l, seed, probs, prior))?;
        Ok(PyGrammar { inner: Arc::new(g) })
    }

    #[staticmethod]
    #[pyo3(signature = (v, rules, *, rule_probs=None, root_prior=None))]
    fn from_rules(
        py: Python<'_>,
        v: i64,
        rules: Vec<PyReadonlyArray3<'_, i64>>,
        rule_probs: Option<Vec<PyReadonlyArray2<'_, f64>>>,
        root_prior: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let v = to_u64("v", v)?;
        let first = rules
            .first()
            .ok_or_else(|| PyValueError::new_err("rules: expected at least one level"))?;
        let sh = first.shape();
        let (n, m, s) = (sh[0] as u64, sh[1] as u64, sh[2] as u64);
        let mut tables = Vec::with_capacity(rules.len());
        for (l, r) in rules.iter().enumerate() {
            let want_rows = if l == 0 { n } else { v };
            let rs = r.shape();
            if rs[0] as u64 != want_rows || rs[1] as u64 != m || rs[2] as u64 != s {
                return Err(CoreError::value(
                    "rules",
                    format!("rules[{l}] has shape {rs:?}, expected ({want_rows}, {m}, {s})"),
                )
                .into());
            }
            tables.push(r.as_slice().map_err(|_| {
                PyValueError::new_err(format!("rules[{l}]: expected a C-contiguous array"))
            })?);
        }
        let probs = probs_in(rule_probs)?;
        let prior = root_prior.map(|p| p.as_array().iter().copied().collect::<Vec<f64>>());
        let levels = tables.len() as u64;
        let g = py.detach(|| Grammar::from_rules(v, n, m, s, levels, &tables, probs, prior))?;
        Ok(PyGrammar { inner: Arc::new(g) })
    }

    #[getter]
    fn v(&self) -> u32 {
        self.inner.v()
    }
    #[getter]
    fn n(&self) -> u32 {
        self.inner.n()
    }
    #[getter]
    fn m(&self) -> u32 {
        self.inner.m()
    }
    #[getter]
    fn s(&self) -> u32 {
        self.inner.s()
    }
    #[getter]
    #[allow(non_snake_case)]
    fn L(&self) -> u32 {
        self.inner.levels()
    }
    #[getter]
    fn d(&self) -> usize {
        self.inner.d()
    }
    #[getter]
    fn num_strings(&self) -> BigUint {
        self.inner.num_strings().clone()
    }
    #[getter]
    fn is_uniform(&self) -> bool {
        self.inner.is_uniform()
    }

    /// Rule tables, level 0 `(n, m, s)`, others `(v, m, s)`, int64.
    fn rules<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let g = &self.inner;
        let arrays = g
            .rules()
            .iter()
            .enumerate()
            .map(|(l, r)| {
                let flat: Vec<i64> = r.iter().map(|&x| x as i64).collect();
                Ok(flat
                    .into_pyarray(py)
                    .reshape([g.symbols_at(l), g.m() as usize, g.s() as usize])?
                    .into_any())
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, arrays)
    }

    /// Rule probabilities per level, `(symbols, m)` float64.
    fn rule_probs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let g = &self.inner;
        let arrays = g
            .rule_probs()
            .iter()
            .map(|p| matrix(py, p.clone(), g.m() as usize))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, arrays)
    }

    fn root_prior<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.root_prior().to_vec().into_pyarray(py)
    }

    /// Number of strings of positive probability (float; inf when huge).
    fn support_size(&self) -> f64 {
        self.inner.support_size()
    }

    /// Returns `(tokens, symbols or None, rules or None)`.
    #[pyo3(signature = (num, *, seed, unique=false, return_tree=false))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        num: i64,
        seed: u64,
        unique: bool,
        return_tree: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let num = to_u64("num", num)? as usize;
        let g = self.inner.clone();
        let v = g.v();
        macro_rules! go {
            ($t:ty) => {{
                let out = py.detach(move || {
                    if unique {
                        g.sample_unique::<$t>(num, seed, return_tree)
                    } else {
                        g.sample::<$t>(num, seed, return_tree)
                    }
                })?;
                self.sampled(py, out)
            }};
        }
        narrowest_token!(v, go)
    }

    /// Returns `(symbols or None, rules or None, valid_levels, root, log_prob)`.
    #[pyo3(signature = (x, *, tree=true))]
    fn parse<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        tree: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (t, rows, cols) = tokens2(x, "x")?;
        let g = &self.inner;
        check_length(g, cols)?;
        let p = with_slice!(t, Tokens2, s => py.detach(|| g.parse(s, tree)))?;
        let k = g.internal_nodes();
        let none = || py.None().into_bound(py);
        let syms = match p.symbols {
            Some(v) => matrix(py, v, k)?,
            None => none(),
        };
        let rules = match p.rules {
            Some(v) => matrix(py, v, k)?,
            None => none(),
        };
        let vl = Array2::from_shape_vec((rows, g.levels() as usize), p.valid_levels)
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .into_pyarray(py)
            .into_any();
        let root = p.root.into_pyarray(py).into_any();
        let lp = p.log_prob.into_pyarray(py).into_any();
        PyTuple::new(py, [syms, rules, vl, root, lp])
    }

    /// Mixed-radix rank of every string (Python ints).
    fn rank<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let (t, _, cols) = tokens2(x, "x")?;
        let g = &self.inner;
        check_length(g, cols)?;
        let ranks = with_slice!(t, Tokens2, s => py.detach(|| g.rank(s)))?;
        match ranks {
            Ranks::Small(v) => PyList::new(py, v),
            Ranks::Big(v) => PyList::new(py, v),
        }
    }

    /// Strings with the given ranks; returns `(tokens, symbols or None, rules or None)`.
    #[pyo3(signature = (ranks, *, return_tree=false))]
    fn unrank<'py>(
        &self,
        py: Python<'py>,
        ranks: Vec<Bound<'py, PyAny>>,
        return_tree: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let small: Option<Vec<u64>> = ranks.iter().map(|i| i.extract::<u64>().ok()).collect();
        let ranks = match small {
            Some(v) => Ranks::Small(v),
            None => Ranks::Big(
                ranks
                    .iter()
                    .map(|i| {
                        i.extract::<BigUint>().map_err(|_| {
                            PyValueError::new_err("i: ranks must be non-negative integers")
                        })
                    })
                    .collect::<PyResult<Vec<_>>>()?,
            ),
        };
        let g = self.inner.clone();
        let v = g.v();
        macro_rules! go {
            ($t:ty) => {{
                let out = py.detach(move || g.unrank::<$t>(&ranks, return_tree))?;
                self.sampled(py, out)
            }};
        }
        narrowest_token!(v, go)
    }

    /// `(s**level, symbols)` marginal probabilities of the symbols at every node of a level.
    fn symbol_marginals<'py>(&self, py: Python<'py>, level: i64) -> PyResult<Bound<'py, PyAny>> {
        let g = &self.inner;
        let out = py.detach(|| g.symbol_marginals(level))?;
        let syms = if level == g.levels() as i64 {
            g.v() as usize
        } else {
            g.symbols_at(level as usize)
        };
        matrix(py, out, syms)
    }

    #[pyo3(signature = (blocks, level, positions=None))]
    fn block_probs<'py>(
        &self,
        py: Python<'py>,
        blocks: &Bound<'py, PyAny>,
        level: i64,
        positions: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (t, _, _) = tokens2(blocks, "blocks")?;
        let g = &self.inner;
        let pos = optional_slice("positions", positions.as_ref())?;
        let out = with_slice!(t, Tokens2, s => py.detach(|| g.block_probs(s, level, pos)))?;
        Ok(out.into_pyarray(py))
    }

    #[pyo3(signature = (patterns, offsets=None))]
    fn kgram_probs<'py>(
        &self,
        py: Python<'py>,
        patterns: Vec<Bound<'py, PyAny>>,
        offsets: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        // Patterns may differ in dtype; each is short (<= d tokens), so one copy as i64.
        let owned: Vec<Vec<i64>> = patterns
            .iter()
            .map(|p| {
                let t = tokens1(p, "patterns")?;
                Ok(with_slice!(t, Tokens1, s => s.iter().map(|x| x.to_i64()).collect()))
            })
            .collect::<PyResult<_>>()?;
        let pats: Vec<&[i64]> = owned.iter().map(Vec::as_slice).collect();
        let offs = optional_slice("offsets", offsets.as_ref())?;
        let g = &self.inner;
        let out = py.detach(|| g.kgram_probs(&pats, offs))?;
        Ok(out.into_pyarray(py))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGrammar>()?;
    Ok(())
}
