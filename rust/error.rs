//! The core's one error type. Messages name the parameter, the value and the
//! constraint; the binding layer maps variants to Python exception classes.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A value is out of its allowed range (Python `ValueError`).
    Value { param: String, message: String },
    /// A value has the wrong kind (Python `TypeError`).
    Type { param: String, message: String },
    /// A saved file is truncated, edited or foreign (Python `ValueError`).
    Format { message: String },
    /// An operating-system error while reading or writing (Python `OSError`).
    Io { message: String },
}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    pub fn value(param: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Value {
            param: param.into(),
            message: message.into(),
        }
    }
    pub fn type_(param: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Type {
            param: param.into(),
            message: message.into(),
        }
    }
    pub fn format(message: impl Into<String>) -> Self {
        CoreError::Format {
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Value { param, message } | CoreError::Type { param, message } => {
                write!(f, "{param}: {message}")
            }
            CoreError::Format { message } => write!(f, "invalid file: {message}"),
            CoreError::Io { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for CoreError {}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        CoreError::Io {
            message: e.to_string(),
        }
    }
}
