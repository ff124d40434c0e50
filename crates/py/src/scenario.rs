//! `sflam.Scenario`: a scenario loaded and checked by the simulator's own
//! loader (the same errors as the CLI), with the text and overrides it came
//! from so that it can be changed (`with_overrides`) and pickled.

use crate::py_err;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use sflam::config::Scenario as Core;
use sflam::config::load_scenario_str;
use std::path::PathBuf;

/// A checked scenario. `Scenario.load(path, overrides)`,
/// `Scenario.from_toml(text)`; overrides are the CLI's `--set KEY=VALUE`.
#[pyclass(module = "sflam", frozen)]
pub struct Scenario {
    pub core: Core,
    text: String,
    path: PathBuf,
    overrides: Vec<String>,
}

impl Scenario {
    fn build(text: String, path: PathBuf, overrides: Vec<String>) -> PyResult<Scenario> {
        let core = load_scenario_str(&text, &path, &overrides).map_err(py_err)?;
        Ok(Scenario { core, text, path, overrides })
    }
}

#[pymethods]
impl Scenario {
    /// Reads a scenario file; `overrides` as `["run.rounds=5", ...]`.
    #[staticmethod]
    #[pyo3(signature = (path, overrides = Vec::new()))]
    fn load(path: PathBuf, overrides: Vec<String>) -> PyResult<Scenario> {
        let text = sflam::config::read_scenario_text(&path).map_err(py_err)?;
        Scenario::build(text, path, overrides)
    }

    /// A scenario from TOML text; `path` names it in error messages, and
    /// relative file names in it are taken from the working directory.
    #[staticmethod]
    #[pyo3(signature = (text, overrides = Vec::new(), path = None))]
    fn from_toml(text: String, overrides: Vec<String>, path: Option<PathBuf>) -> PyResult<Scenario> {
        Scenario::build(text, path.unwrap_or_else(|| PathBuf::from("<toml>")), overrides)
    }

    /// A scenario from a dict of sections (`{"run": {"rounds": 5}}`).
    #[staticmethod]
    #[pyo3(signature = (sections, overrides = Vec::new()))]
    fn from_dict(py: Python<'_>, sections: &Bound<'_, PyAny>, overrides: Vec<String>) -> PyResult<Scenario> {
        let text: String = py.import("sflam")?.getattr("_toml_of")?.call1((sections,))?.extract()?;
        Scenario::build(text, PathBuf::from("<dict>"), overrides)
    }

    /// The same scenario with more overrides (later ones win).
    fn with_overrides(&self, overrides: Vec<String>) -> PyResult<Scenario> {
        let mut all = self.overrides.clone();
        all.extend(overrides);
        Scenario::build(self.text.clone(), self.path.clone(), all)
    }

    /// Every parameter, defaults included, as TOML (`scenario.resolved.toml`).
    fn to_toml(&self) -> String {
        self.core.resolved_toml()
    }

    /// Every parameter, defaults included, as a dict of sections.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::to_py(py, &self.core)
    }

    /// The file (or the name given to `from_toml`) it was read from.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The overrides applied to the file's text.
    #[getter]
    fn overrides(&self) -> Vec<String> {
        self.overrides.clone()
    }

    /// `run.seed`.
    #[getter]
    fn seed(&self) -> u64 {
        self.core.run.seed
    }

    /// `run.rounds`.
    #[getter]
    fn rounds(&self) -> u32 {
        self.core.run.rounds
    }

    /// `run.candidates`: candidates per round and cell at most [1].
    #[getter]
    fn candidates(&self) -> usize {
        self.core.run.candidates
    }

    /// `network.rb_count`: resource blocks per cell [1].
    #[getter]
    fn rb_count(&self) -> usize {
        self.core.network.rb_count
    }

    /// `cells.count`.
    #[getter]
    fn cells(&self) -> usize {
        self.core.cells.count
    }

    /// `quantization.bits_min`, `quantization.bits_max` [bit].
    #[getter]
    fn bits(&self) -> (u32, u32) {
        (self.core.quantization.bits_min, self.core.quantization.bits_max)
    }

    /// `training.enabled`.
    #[getter]
    fn trains(&self) -> bool {
        self.core.training.enabled
    }

    /// Pickles as its text, path and overrides (loaded again on the other
    /// side: `AsyncVectorEnv`'s worker processes).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let me = slf.get();
        let from_toml = py.get_type::<Scenario>().getattr("from_toml")?;
        let args = (me.text.clone(), me.overrides.clone(), me.path.clone()).into_pyobject(py)?;
        Ok((from_toml, args))
    }

    fn __repr__(&self) -> String {
        format!(
            "<sflam.Scenario {:?} from {}{}>",
            self.core.run.name,
            self.path.display(),
            if self.overrides.is_empty() { String::new() } else { format!(" with {:?}", self.overrides) }
        )
    }
}
