//! `sflam._sflam`: the native module under the Python package `sflam`
//! (python/sflam). A thin layer: every behaviour is the simulator's or the
//! learning half's; this crate converts values and errors and runs a
//! simulation on a thread of its own so that Python can answer its
//! allocation problems (`session.rs`).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

mod arrow;
mod problem;
mod scenario;
mod session;

create_exception!(sflam, SflamError, PyException, "An error from sflam.");
create_exception!(
    sflam,
    ConfigError,
    SflamError,
    "Bad input the user can fix (the CLI's exit 2): a scenario field, a table, a file; the message names the file, the field and what is allowed."
);
create_exception!(
    sflam,
    NotConvergedError,
    SflamError,
    "An iterative allocator stopped at its bound without converging; the message names the settings that bound it."
);
create_exception!(
    sflam,
    DecisionError,
    SflamError,
    "A decision a Python policy returned breaks a rule (an RB used twice, power outside (0, p_max], bits out of range, a number not finite); the message names the candidate and the field."
);

/// A sflam error as the Python exception of its kind, with the CLI's words.
pub(crate) fn py_err(e: sflam::Error) -> PyErr {
    match &e {
        sflam::Error::NotConverged { .. } => NotConvergedError::new_err(e.to_string()),
        _ if e.exit_code() == 2 => ConfigError::new_err(e.to_string()),
        _ => SflamError::new_err(e.to_string()),
    }
}

/// JSON text as Python values (`json.loads`).
pub(crate) fn from_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// Serializable Rust values as Python values, through JSON.
pub(crate) fn to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| SflamError::new_err(e.to_string()))?;
    from_json(py, &text)
}

/// Table I: parameters, FLOPs, cut-layer size and memory of each ViT, as
/// `sflam workload --json` writes it; `batch` images per iteration.
#[pyfunction]
#[pyo3(signature = (batch = 16))]
fn workload(py: Python<'_>, batch: usize) -> PyResult<Bound<'_, PyAny>> {
    if batch == 0 {
        return Err(ConfigError::new_err("batch must be at least 1"));
    }
    to_py(py, &sflam::workload::table_one(batch))
}

/// The scenario reference (every parameter with its unit, default and
/// rule) as Markdown, as `sflam reference` prints it.
#[pyfunction]
fn reference() -> String {
    sflam::config::reference_markdown()
}

/// The version of the Rust crates this module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _sflam(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SflamError", py.get_type::<SflamError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NotConvergedError", py.get_type::<NotConvergedError>())?;
    m.add("DecisionError", py.get_type::<DecisionError>())?;
    m.add_class::<scenario::Scenario>()?;
    m.add_class::<problem::Problem>()?;
    m.add_class::<problem::Decision>()?;
    m.add_class::<session::Session>()?;
    m.add_class::<session::Finished>()?;
    m.add_class::<arrow::ArrowTable>()?;
    m.add_function(wrap_pyfunction!(workload, m)?)?;
    m.add_function(wrap_pyfunction!(reference, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(problem::solve, m)?)?;
    m.add_function(wrap_pyfunction!(problem::allocator_names, m)?)?;
    Ok(())
}
