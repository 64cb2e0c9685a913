//! Token arrays from Python: any of uint8/uint16/uint32/int64, C-contiguous (the
//! facade converts other dtypes once).

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

pub enum Tokens2<'py> {
    U8(PyReadonlyArray2<'py, u8>),
    U16(PyReadonlyArray2<'py, u16>),
    U32(PyReadonlyArray2<'py, u32>),
    I64(PyReadonlyArray2<'py, i64>),
}

pub enum Tokens1<'py> {
    U8(PyReadonlyArray1<'py, u8>),
    U16(PyReadonlyArray1<'py, u16>),
    U32(PyReadonlyArray1<'py, u32>),
    I64(PyReadonlyArray1<'py, i64>),
}

fn type_err(param: &str, what: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{param}: expected a C-contiguous {what} array of dtype uint8, uint16, uint32 or int64"
    ))
}

pub fn tokens2<'py>(
    obj: &Bound<'py, PyAny>,
    param: &str,
) -> PyResult<(Tokens2<'py>, usize, usize)> {
    let t = if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, u8>>() {
        Tokens2::U8(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, u16>>() {
        Tokens2::U16(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, u32>>() {
        Tokens2::U32(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, i64>>() {
        Tokens2::I64(a)
    } else {
        return Err(type_err(param, "2-D"));
    };
    let (shape, contiguous) = match &t {
        Tokens2::U8(a) => (a.shape().to_vec(), a.is_c_contiguous()),
        Tokens2::U16(a) => (a.shape().to_vec(), a.is_c_contiguous()),
        Tokens2::U32(a) => (a.shape().to_vec(), a.is_c_contiguous()),
        Tokens2::I64(a) => (a.shape().to_vec(), a.is_c_contiguous()),
    };
    if !contiguous {
        return Err(type_err(param, "2-D"));
    }
    Ok((t, shape[0], shape[1]))
}

pub fn tokens1<'py>(obj: &Bound<'py, PyAny>, param: &str) -> PyResult<Tokens1<'py>> {
    let t = if let Ok(a) = obj.extract::<PyReadonlyArray1<'py, u8>>() {
        Tokens1::U8(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray1<'py, u16>>() {
        Tokens1::U16(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray1<'py, u32>>() {
        Tokens1::U32(a)
    } else if let Ok(a) = obj.extract::<PyReadonlyArray1<'py, i64>>() {
        Tokens1::I64(a)
    } else {
        return Err(type_err(param, "1-D"));
    };
    let contiguous = match &t {
        Tokens1::U8(a) => a.is_c_contiguous(),
        Tokens1::U16(a) => a.is_c_contiguous(),
        Tokens1::U32(a) => a.is_c_contiguous(),
        Tokens1::I64(a) => a.is_c_contiguous(),
    };
    if !contiguous {
        return Err(type_err(param, "1-D"));
    }
    Ok(t)
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
