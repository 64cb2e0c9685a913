//! Bindings for the core `denoise` module: exact posteriors under the grammar, the
//! training set and their mixture.

use numpy::{IntoPyArray, PyArray1, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::grammar::PyGrammar;
use super::tokens::{tokens2, with_slice, Tokens2};
use crate::denoise::{self, Empirical, Evidence, Posterior};

type Out<'py> = (Bound<'py, PyArray3<f64>>, Bound<'py, PyArray1<f64>>);

/// Masked evidence (`mask_id`) or uniform noise (`alpha_bar`, one per row): exactly one.
fn evidence<'a>(
    x: &'a PyReadonlyArray2<'_, i64>,
    mask_id: Option<i64>,
    alpha_bar: &'a Option<PyReadonlyArray1<'_, f64>>,
) -> PyResult<Evidence<'a>> {
    let tokens = x.as_slice()?;
    match (mask_id, alpha_bar) {
        (Some(mask_id), None) => Ok(Evidence::Masked { tokens, mask_id }),
        (None, Some(a)) => Ok(Evidence::Uniform {
            tokens,
            alpha_bar: a.as_slice()?,
        }),
        _ => Err(PyValueError::new_err(
            "give exactly one of mask_id (masked noise) and alpha_bar (uniform noise)",
        )),
    }
}

/// `(rows, d, v)` marginals and `(rows,)` log evidence.
fn out<'py>(py: Python<'py>, p: Posterior, d: usize, v: usize) -> PyResult<Out<'py>> {
    let rows = p.log_evidence.len();
    Ok((
        p.marginals.into_pyarray(py).reshape([rows, d, v])?,
        p.log_evidence.into_pyarray(py),
    ))
}

#[pyfunction]
#[pyo3(signature = (g, x, *, mask_id=None, alpha_bar=None))]
fn grammar_posterior<'py>(
    py: Python<'py>,
    g: &PyGrammar,
    x: PyReadonlyArray2<'py, i64>,
    mask_id: Option<i64>,
    alpha_bar: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Out<'py>> {
    let ev = evidence(&x, mask_id, &alpha_bar)?;
    let p = py.detach(|| g.inner.posterior(&ev))?;
    out(py, p, g.inner.d(), g.inner.v() as usize)
}

#[pyclass(name = "Empirical", module = "rhmfast._rhmfast", frozen)]
pub struct PyEmpirical {
    inner: Empirical,
}

#[pymethods]
impl PyEmpirical {
    #[new]
    #[pyo3(signature = (train, v, weights=None))]
    fn new(
        py: Python<'_>,
        train: &Bound<'_, PyAny>,
        v: u32,
        weights: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let (t, rows, d) = tokens2(train, "train")?;
        let w = weights.as_ref().map(|w| w.as_slice()).transpose()?;
        let inner = with_slice!(t, Tokens2, s => py.detach(|| Empirical::new(s, rows, d, v, w))?);
        Ok(PyEmpirical { inner })
    }

    #[pyo3(signature = (x, *, mask_id=None, alpha_bar=None))]
    fn posterior<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, i64>,
        mask_id: Option<i64>,
        alpha_bar: Option<PyReadonlyArray1<'py, f64>>,
    ) -> PyResult<Out<'py>> {
        let ev = evidence(&x, mask_id, &alpha_bar)?;
        let p = py.detach(|| self.inner.posterior(&ev))?;
        out(py, p, self.inner.d(), self.inner.v())
    }

    #[getter]
    fn num_strings(&self) -> usize {
        self.inner.num_strings()
    }
    #[getter]
    fn d(&self) -> usize {
        self.inner.d()
    }
    #[getter]
    fn v(&self) -> usize {
        self.inner.v()
    }
}

/// The posterior of `(1 - lam) p_grammar + lam p_train` (both components computed on
/// the same evidence, then weighed by their shares of its probability).
#[pyfunction]
#[pyo3(signature = (g, train, lam, x, *, mask_id=None, alpha_bar=None))]
fn mixture_posterior<'py>(
    py: Python<'py>,
    g: &PyGrammar,
    train: &PyEmpirical,
    lam: f64,
    x: PyReadonlyArray2<'py, i64>,
    mask_id: Option<i64>,
    alpha_bar: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Out<'py>> {
    let ev = evidence(&x, mask_id, &alpha_bar)?;
    let p = py.detach(|| -> crate::CoreResult<Posterior> {
        denoise::check_lam(lam)?;
        let a = g.inner.posterior(&ev)?;
        let b = train.inner.posterior(&ev)?;
        denoise::mixture(&a, &b, lam, g.inner.v() as usize)
    })?;
    out(py, p, g.inner.d(), g.inner.v() as usize)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(grammar_posterior, m)?)?;
    m.add_function(wrap_pyfunction!(mixture_posterior, m)?)?;
    m.add_class::<PyEmpirical>()?;
    Ok(())
}
