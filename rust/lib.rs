//! rhmfast core: Random Hierarchy Model grammars, exact substring counting and a
//! suffix index over training sets.
//!
//! The core modules (`grammar`, `counting`, `index`, `denoise`) use no pyo3 types, so
//! `cargo test --no-default-features` runs without Python. The `python` module
//! (feature `python`, on by default) is the one thin binding layer.

pub mod counting;
pub mod denoise;
pub mod error;
pub mod grammar;
pub mod index;
mod memory;
mod radix;
pub mod token;

#[cfg(feature = "python")]
mod python;

pub use error::{CoreError, CoreResult};
