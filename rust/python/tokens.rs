//! Token arrays from Python: any of uint8/uint16/uint32/int64, C-contiguous (the
//! facade converts other dtypes once).

use numpy::ndarray::Dimension;
use numpy::{Ix1, Ix2, PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// A read-only token array of one of the accepted dtypes.
pub enum Tokens<'py, D: Dimension> {
    U8(PyReadonlyArray<'py, u8, D>),
    U16(PyReadonlyArray<'py, u16, D>),
    U32(PyReadonlyArray<'py, u32, D>),
    I64(PyReadonlyArray<'py, i64, D>),
}

pub type Tokens1<'py> = Tokens<'py, Ix1>;
pub type Tokens2<'py> = Tokens<'py, Ix2>;

/// The token array `obj` with its shape; a TypeError names `param` otherwise.
fn tokens<'py, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    param: &str,
) -> PyResult<(Tokens<'py, D>, Vec<usize>)> {
    let err = || {
        PyTypeError::new_err(format!(
            "{param}: expected a C-contiguous {}-D array of dtype uint8, uint16, uint32 or int64",
            D::NDIM.unwrap_or(0)
        ))
    };
    let t = if let Ok(a) = obj.extract::<PyReadonlyArray<'py, u8, D>>() {
        Tokens::U8(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray<'py, u16, D>>() {
        Tokens::U16(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray<'py, u32, D>>() {
        Tokens::U32(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray<'py, i64, D>>() {
        Tokens::I64(a)
    } else {
        return Err(err());
    };
    let (shape, contiguous) = match &t {
        Tokens::U8(a) => (a.shape().to_vec(), a.is_c_contiguous()),
        Tokens::U16(a) => (a.shape().to_vec(), a.is_c_contiguous()),
        Tokens::U32(a) => (a.shape().to_vec(), a.is_c_contiguous()),
        Tokens::I64(a) => (a.shape().to_vec(), a.is_c_contiguous()),
    };
    if !contiguous {
        return Err(err());
    }
    Ok((t, shape))
}

/// A 2-D token array with its `(rows, columns)`.
pub fn tokens2<'py>(
    obj: &Bound<'py, PyAny>,
    param: &str,
) -> PyResult<(Tokens2<'py>, usize, usize)> {
    let (t, shape) = tokens(obj, param)?;
    Ok((t, shape[0], shape[1]))
}

/// A 1-D token array.
pub fn tokens1<'py>(obj: &Bound<'py, PyAny>, param: &str) -> PyResult<Tokens1<'py>> {
    Ok(tokens(obj, param)?.0)
}

/// Bind `$s` to the token slice of a `Tokens1`/`Tokens2` and evaluate `$body`.
macro_rules! with_slice {
    ($t:expr, $kind:ident, $s:ident => $body:expr) => {
        match &$t {
            $kind::U8(a) => {
                let $s = a.as_slice()?;
                $body
            }
            $kind::U16(a) => {
                let $s = a.as_slice()?;
                $body
            }
            $kind::U32(a) => {
                let $s = a.as_slice()?;
                $body
            }
            $kind::I64(a) => {
                let $s = a.as_slice()?;
                $body
            }
        }
    };
}
pub(crate) use with_slice;
