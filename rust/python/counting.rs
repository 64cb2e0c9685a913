//! Bindings for the core `counting` module.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use super::tokens::{tokens2, with_slice, Tokens2};
use crate::counting::{self, Counts};

type Windows<'py> = Bound<'py, PyArray2<u32>>;
type I64s<'py> = Bound<'py, PyArray1<i64>>;

fn windows<'py>(py: Python<'py>, c: Counts, w: usize) -> PyResult<(I64s<'py>, Windows<'py>, I64s<'py>)> {
    let rows = c.counts.len();
    Ok((c.positions.into_pyarray(py), c.windows.into_pyarray(py).reshape([rows, w])?, c.counts.into_pyarray(py)))
}

#[pyfunction]
fn kgram_counts<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, k: usize) -> PyResult<(Windows<'py>, I64s<'py>)> {
    let (t, rows, d) = tokens2(x, "x")?;
    let c = with_slice!(t, Tokens2, s => py.detach(|| counting::kgram_counts(s, rows, d, k))?);
    let (_, w, n) = windows(py, c, k)?;
    Ok((w, n))
}

#[pyfunction]
fn kgram_counts_all<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    max_k: usize,
) -> PyResult<Vec<(Windows<'py>, I64s<'py>)>> {
    let (t, rows, d) = tokens2(x, "x")?;
    let all = with_slice!(t, Tokens2, s => py.detach(|| counting::kgram_counts_all(s, rows, d, max_k))?);
    all.into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (_, w, n) = windows(py, c, i + 1)?;
            Ok((w, n))
        })
        .collect()
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
    let c = with_slice!(t, Tokens2, sl => py.detach(|| counting::block_counts(sl, rows, d, s, level, positional))?);
    // width of the level's blocks (validated by the core above)
    let depth = (0..).find(|&l| s.pow(l) >= d).unwrap_or(0);
    let w = s.pow(depth - level as u32);
    windows(py, c, w)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kgram_counts, m)?)?;
    m.add_function(wrap_pyfunction!(kgram_counts_all, m)?)?;
    m.add_function(wrap_pyfunction!(block_counts, m)?)?;
    Ok(())
}
