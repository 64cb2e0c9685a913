//! The binding layer: converts Python arguments, releases the GIL, calls the
//! core, converts results. No algorithm lives here.

use pyo3::prelude::*;

mod counting;
mod denoise;
mod errors;
mod grammar;
mod index;
mod tokens;

#[pymodule]
fn _rhmfast(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    grammar::register(m)?;
    index::register(m)?;
    counting::register(m)?;
    denoise::register(m)?;
    Ok(())
}
