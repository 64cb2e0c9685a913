//! Bindings for the core `counting` module.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use super::tokens::{tokens2, with_slice, Tokens2};
use crate::counting::{self, Counts};

/// A (K, width) token array in the dtype of the input.
type Windows<'py> = Bound<'py, PyAny>;
type I64s<'py> = Bound<'py, PyArray1<i64>>;

fn windows<'py, X: numpy::Element>(
    py: Python<'py>,
    c: Counts<X>,
    w: usize,
) -> PyResult<(I64s<'py>, Windows<'py>, I64s<'py>)> {
    let rows = c.counts.len();
    let win: Bound<'py, PyArray2<X>> = c.windows.into_pyarray(py).reshape([rows, w])?;
    Ok((
        c.positions.into_pyarray(py),
        win.into_any(),
        c.counts.into_pyarray(py),
    ))
}

#[pyfunction]
fn kgram_counts<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    k: usize,
) -> PyResult<(Windows<'py>, I64s<'py>)> {
    let (t, rows, d) = tokens2(x, "x")?;
    with_slice!(t, Tokens2, s => {
        let c = py.detach(|| counting::kgram_counts(s, rows, d, k))?;
        let (_, w, n) = windows(py, c, k)?;
        Ok((w, n))
    })
}

#[pyfunction]
fn kgram_counts_all<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    max_k: usize,
) -> PyResult<Vec<(Windows<'py>, I64s<'py>)>> {
    let (t, rows, d) = tokens2(x, "x")?;
    with_slice!(t, Tokens2, s => {
        let all = py.detach(|| counting::kgram_counts_all(s, rows, d, max_k))?;
        all.into_iter()
            .enumerate()
            .map(|(i, c)| {
                let (_, w, n) = windows(py, c, i + 1)?;
                Ok((w, n))
            })
            .collect()
    })
}

#[pyfunction]
#[pyo3(signature = (x, s, level, *, positional))]
fn block_counts<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    s: usize,
    level: usize,
    positional: bool,
) -> PyResult<(I64s<'py>, Windows<'py>, I64s<'py>)> {
    let (t, rows, d) = tokens2(x, "x")?;
    with_slice!(t, Tokens2, sl => {
        let c = py.detach(|| counting::block_counts(sl, rows, d, s, level, positional))?;
        // width of the level's blocks (s, level and d were validated by the core)
        let depth = (0..).find(|&l| s.pow(l) >= d).unwrap_or(0);
        let w = s.pow(depth - level as u32);
        windows(py, c, w)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kgram_counts, m)?)?;
    m.add_function(wrap_pyfunction!(kgram_counts_all, m)?)?;
    m.add_function(wrap_pyfunction!(block_counts, m)?)?;
    Ok(())
}
