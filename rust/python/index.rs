//! Bindings for the core `index` module.

use std::path::PathBuf;

use numpy::ndarray::ArrayView1;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use super::tokens::{tokens1, tokens2, with_slice, Tokens1, Tokens2};
use crate::index::{LcpBuf, SaBuf, TrainingIndex};

#[pyclass(module = "rhmfast._rhmfast", name = "TrainingIndex", frozen)]
pub struct PyTrainingIndex {
    inner: TrainingIndex,
}

type I64s<'py> = Bound<'py, PyArray1<i64>>;

/// A zero-copy read-only numpy view of `v`, kept alive by `owner`.
fn view<'py, T: numpy::Element>(
    v: &[T],
    owner: &Bound<'py, PyTrainingIndex>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the index is frozen and never mutates or reallocates its arrays; `owner`
    // becomes the array's base object and keeps the memory alive.
    let a = unsafe { PyArray1::borrow_from_array(&ArrayView1::from(v), owner.clone().into_any()) };
    a.readwrite().make_nonwriteable();
    Ok(a.into_any())
}

#[pymethods]
impl PyTrainingIndex {
    #[new]
    fn new(py: Python<'_>, train: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (t, rows, d) = tokens2(train, "train")?;
        let inner = with_slice!(t, Tokens2, s => py.detach(|| TrainingIndex::build(s, rows, d))?);
        Ok(PyTrainingIndex { inner })
    }

    fn lookup<'py>(
        &self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
    ) -> PyResult<(I64s<'py>, I64s<'py>)> {
        let (t, rows, w) = tokens2(samples, "samples")?;
        let (a, b) = with_slice!(t, Tokens2, s => py.detach(|| self.inner.lookup(s, rows, w))?);
        Ok((a.into_pyarray(py), b.into_pyarray(py)))
    }

    fn longest_match<'py>(
        &self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
    ) -> PyResult<(I64s<'py>, I64s<'py>, I64s<'py>)> {
        let (t, rows, w) = tokens2(samples, "samples")?;
        let (a, b, c) =
            with_slice!(t, Tokens2, s => py.detach(|| self.inner.longest_match(s, rows, w))?);
        Ok((a.into_pyarray(py), b.into_pyarray(py), c.into_pyarray(py)))
    }

    fn count<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
        offsets: numpy::PyReadonlyArray1<'py, i64>,
    ) -> PyResult<I64s<'py>> {
        let t = tokens1(tokens, "patterns")?;
        let offs = offsets.as_slice()?;
        let out = with_slice!(t, Tokens1, s => py.detach(|| self.inner.count(s, offs))?);
        Ok(out.into_pyarray(py))
    }

    fn kgram_counts<'py>(
        &self,
        py: Python<'py>,
        max_k: usize,
    ) -> PyResult<Vec<(Bound<'py, PyArray2<u32>>, I64s<'py>)>> {
        let d = self.inner.length();
        if max_k < 1 || max_k > d {
            return Err(
                crate::CoreError::value("max_k", format!("{max_k} is not in [1, d={d}]")).into(),
            );
        }
        let ks: Vec<usize> = (1..=max_k).collect();
        let all = py.detach(|| self.inner.kgram_counts(&ks))?;
        all.into_iter()
            .zip(ks)
            .map(|(c, k)| {
                let rows = c.counts.len();
                Ok((
                    c.kgrams.into_pyarray(py).reshape([rows, k])?,
                    c.counts.into_pyarray(py),
                ))
            })
            .collect()
    }

    fn strings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let (n, d) = (self.inner.num_strings(), self.inner.length());
        let v = py.detach(|| self.inner.strings());
        v.into_pyarray(py).reshape([n, d])
    }

    #[getter]
    fn suffix_array<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        match slf.get().inner.sa() {
            SaBuf::I32(v) => view(v, slf),
            SaBuf::I64(v) => view(v, slf),
        }
    }

    #[getter]
    fn lcp<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        match slf.get().inner.lcp() {
            LcpBuf::U8(v) => view(v, slf),
            LcpBuf::U16(v) => view(v, slf),
            LcpBuf::U32(v) => view(v, slf),
        }
    }

    #[getter]
    fn num_strings(&self) -> usize {
        self.inner.num_strings()
    }

    #[getter]
    fn length(&self) -> usize {
        self.inner.length()
    }

    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path))?;
        Ok(())
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| TrainingIndex::load(&path))?;
        Ok(PyTrainingIndex { inner })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTrainingIndex>()?;
    Ok(())
}
