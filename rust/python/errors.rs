//! The one place where core errors become Python exceptions.

use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::PyErr;

use crate::error::CoreError;

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        let text = e.to_string();
        match e {
            CoreError::Value { .. } | CoreError::Format { .. } => PyValueError::new_err(text),
            CoreError::Type { .. } => PyTypeError::new_err(text),
            CoreError::Io { .. } => PyOSError::new_err(text),
        }
    }
}
