//! A round's allocation problem and a decision, as Python sees them: the
//! problem's per-candidate values as numpy arrays, a decision as the
//! policy's picks (candidate, RB, power, bits) checked against the problem
//! before the simulation runs it, and the built-in allocators callable on
//! any problem.

use crate::{DecisionError, NotConvergedError, SflamError, py_err, to_py};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use sflam::alloc::{Decision as CoreDecision, Exclusion, Problem as CoreProblem};
use sflam::config::{AllocatorConfig, AllocatorKind};

/// One round's allocation problem in one cell.
#[pyclass(module = "sflam", frozen)]
pub struct Problem {
    pub core: CoreProblem,
    /// Its cell [index].
    #[pyo3(get)]
    pub cell: u32,
    /// A seed drawn from the cell's allocator stream, for a policy that
    /// draws at random and should be reproducible.
    #[pyo3(get)]
    pub seed: u64,
}

fn column<'py, T: numpy::Element>(
    py: Python<'py>,
    p: &CoreProblem,
    f: impl Fn(&sflam::alloc::Candidate) -> T,
) -> Bound<'py, PyArray1<T>> {
    p.candidates.iter().map(f).collect::<Vec<T>>().into_pyarray(py)
}

#[pymethods]
impl Problem {
    /// A problem from JSON (`--dump-problems` files or `to_json`), checked
    /// as `sflam allocate` checks it.
    #[staticmethod]
    #[pyo3(signature = (text, cell = 0, seed = 0))]
    fn from_json(text: &str, cell: u32, seed: u64) -> PyResult<Problem> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| crate::ConfigError::new_err(format!("problem: not JSON: {e}")))?;
        let pv = v.get("problem").cloned().unwrap_or(v);
        let core: CoreProblem =
            serde_json::from_value(pv).map_err(|e| crate::ConfigError::new_err(format!("problem: {e}")))?;
        core.check().map_err(|m| crate::ConfigError::new_err(format!("problem: {m}")))?;
        Ok(Problem { core, cell, seed })
    }

    /// The problem as `--dump-problems` JSON.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.core).map_err(|e| SflamError::new_err(e.to_string()))
    }

    /// The round [index].
    #[getter]
    fn round(&self) -> u32 {
        self.core.round
    }
    /// K: resource blocks [1].
    #[getter]
    fn rb_count(&self) -> usize {
        self.core.rb_count
    }
    /// B: one RB's bandwidth [Hz].
    #[getter]
    fn rb_bandwidth_hz(&self) -> f64 {
        self.core.rb_bandwidth_hz
    }
    /// N0 B: noise power on one RB [W].
    #[getter]
    fn noise_w(&self) -> f64 {
        self.core.noise_w
    }
    /// T_max [s].
    #[getter]
    fn deadline_s(&self) -> f64 {
        self.core.deadline_s
    }
    /// w: joules per unit of utility [J].
    #[getter]
    fn weight_j(&self) -> f64 {
        self.core.weight_j
    }
    /// Smallest quantized width [bit].
    #[getter]
    fn bits_min(&self) -> u32 {
        self.core.bits_min
    }
    /// Largest quantized width [bit]; 32 (fp32) is also allowed.
    #[getter]
    fn bits_max(&self) -> u32 {
        self.core.bits_max
    }
    /// Device ids of the candidates [id].
    #[getter]
    fn device<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        column(py, &self.core, |c| c.device.0)
    }
    /// h[n, k]: channel gain of candidate n on RB k [1], shape (candidates, rb_count).
    #[getter]
    fn gains<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (n, k) = (self.core.candidates.len(), self.core.rb_count);
        let flat: Vec<f64> = self.core.candidates.iter().flat_map(|c| c.gains.iter().copied()).collect();
        let a = Array2::from_shape_vec((n, k), flat).map_err(|e| SflamError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }
    /// p_max [W].
    #[getter]
    fn p_max_w<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        column(py, &self.core, |c| c.p_max_w)
    }
    /// ρ: share of the candidates' data [1].
    #[getter]
    fn data_share<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        column(py, &self.core, |c| c.data_share)
    }
    /// τ: time left for the round's uploads [s].
    #[getter]
    fn uplink_time_s<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        column(py, &self.core, |c| c.uplink_time_s)
    }
    /// Round time off the uplink: compute, server, downlink [s].
    #[getter]
    fn fixed_time_s<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        column(py, &self.core, |c| c.fixed_time_s)
    }
    /// Computation energy for the round [J].
    #[getter]
    fn compute_energy_j<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        column(py, &self.core, |c| c.compute_energy_j)
    }
    /// Activation elements per upload [1].
    #[getter]
    fn activation_elements<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        column(py, &self.core, |c| c.activation_elements)
    }
    /// Bits uploaded once per round besides the activations [bit].
    #[getter]
    fn extra_upload_bits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        column(py, &self.core, |c| c.extra_upload_bits)
    }
    /// Iterations each candidate runs this round [1].
    #[getter]
    fn iterations<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        column(py, &self.core, |c| self.core.iterations_of(c))
    }
    /// U(b) for b = bits_min..=bits_max [1] (the measured table or the assumed curve).
    #[getter]
    fn utility<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.core.quantized_levels().iter().map(|&b| self.core.utility(b)).collect::<Vec<_>>().into_pyarray(py)
    }
    /// The round beyond the uplink (server discipline, service, relay,
    /// sync, queue-aware), or None.
    #[getter]
    fn round_model<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.core.round_model)
    }

    /// Candidate `candidate` on RB `rb` at `bits` and `power_w`, priced in
    /// closed form as the allocators price it: rate [bit/s], round time
    /// [s], uplink and compute energy [J], whether it meets the deadline,
    /// and its value w ρ U(b) − E [J].
    fn price<'py>(
        &self,
        py: Python<'py>,
        candidate: usize,
        rb: usize,
        bits: u32,
        power_w: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.check_pick("price", candidate, rb, Some(power_w), bits)?;
        let a = self.core.price(candidate, rb, bits, power_w);
        let d = PyDict::new(py);
        d.set_item("rate_bps", a.rate_bps)?;
        d.set_item("time_s", a.time_s)?;
        d.set_item("energy_com_j", a.energy_com_j)?;
        d.set_item("energy_cmp_j", a.energy_cmp_j)?;
        d.set_item("energy_j", a.energy_j())?;
        d.set_item("meets_deadline", self.core.meets_deadline(&a))?;
        d.set_item("value_j", self.core.value_j(&a))?;
        Ok(d)
    }

    /// The least power [W] with which `candidate` on `rb` at `bits` meets
    /// the deadline; None when even p_max does not.
    fn min_power_w(&self, candidate: usize, rb: usize, bits: u32) -> PyResult<Option<f64>> {
        self.check_pick("min_power_w", candidate, rb, None, bits)?;
        Ok(self.core.min_power_w(&self.core.candidates[candidate], rb, bits))
    }

    fn __len__(&self) -> usize {
        self.core.candidates.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<sflam.Problem round {} cell {}: {} candidates, {} RBs>",
            self.core.round,
            self.cell,
            self.core.candidates.len(),
            self.core.rb_count
        )
    }
}

/// One pick of a decision: (candidate, RB, power [W], bits [bit]).
pub type Pick = (usize, usize, f64, u32);

/// A checked answer: a built-in allocator's decision runs as it is (its
/// own predictions kept), picks are priced in closed form.
pub enum Answer {
    Whole(CoreDecision),
    Picks(Vec<Pick>),
}

impl Problem {
    /// Checks one pick, naming `at` (the decision's entry, or the helper
    /// called) and the field in the error; `power_w` None: no power to check.
    fn check_pick(&self, at: &str, cand: usize, rb: usize, power_w: Option<f64>, bits: u32) -> PyResult<()> {
        let p = &self.core;
        if cand >= p.candidates.len() {
            return Err(DecisionError::new_err(format!(
                "{at}: candidate = {cand} outside 0..{} (the problem's candidates)",
                p.candidates.len()
            )));
        }
        let at = format!("{at} (candidate {cand})");
        if rb >= p.rb_count {
            return Err(DecisionError::new_err(format!(
                "{at}: rb = {rb} outside 0..{} (the problem's RBs)",
                p.rb_count
            )));
        }
        let p_max = p.candidates[cand].p_max_w;
        if let Some(power_w) = power_w.filter(|&w| !(w.is_finite() && w > 0.0 && w <= p_max)) {
            return Err(DecisionError::new_err(format!(
                "{at}: power_w = {power_w} W outside (0, p_max_w = {p_max} W]"
            )));
        }
        if !(bits == 32 || (p.bits_min..=p.bits_max).contains(&bits)) {
            return Err(DecisionError::new_err(format!(
                "{at}: bits = {bits} outside {}..={} (quantized) or 32 (fp32)",
                p.bits_min, p.bits_max
            )));
        }
        Ok(())
    }

    /// A policy's answer, checked: a `sflam.Decision` (a built-in
    /// allocator's) or a mapping of equal-length sequences `candidate`,
    /// `rb`, `power_w`, `bits`.
    pub fn answer(&self, obj: &Bound<'_, PyAny>) -> PyResult<Answer> {
        let picks = self.picks(obj)?;
        Ok(match obj.cast::<Decision>() {
            Ok(d) => Answer::Whole(d.get().core.clone()),
            Err(_) => Answer::Picks(picks),
        })
    }

    fn picks(&self, obj: &Bound<'_, PyAny>) -> PyResult<Vec<Pick>> {
        let picks: Vec<Pick> = if let Ok(d) = obj.cast::<Decision>() {
            let d = &d.get().core;
            for (i, a) in d.assignments.iter().enumerate() {
                if self.core.candidates.get(a.candidate).map(|c| c.device) != Some(a.device) {
                    return Err(DecisionError::new_err(format!(
                        "decision entry {i} (candidate {}): device {} is not that candidate of this problem (a decision made for another problem?)",
                        a.candidate, a.device.0
                    )));
                }
            }
            d.assignments.iter().map(|a| (a.candidate, a.rb, a.power_w, a.bits)).collect()
        } else if let Ok(m) = obj.cast::<PyMapping>() {
            let get = |key: &str| -> PyResult<Bound<'_, PyAny>> {
                m.get_item(key).map_err(|_| {
                    DecisionError::new_err(format!(
                        "decision: no `{key}`: a decision maps candidate, rb, power_w and bits to equal-length sequences"
                    ))
                })
            };
            let ints = |key: &str| -> PyResult<Vec<i64>> {
                get(key)?
                    .extract::<Vec<i64>>()
                    .map_err(|e| DecisionError::new_err(format!("decision `{key}`: integers expected: {e}")))
            };
            let (cand, rb, bits) = (ints("candidate")?, ints("rb")?, ints("bits")?);
            let power: Vec<f64> = get("power_w")?
                .extract()
                .map_err(|e| DecisionError::new_err(format!("decision `power_w`: numbers expected: {e}")))?;
            let n = cand.len();
            if rb.len() != n || power.len() != n || bits.len() != n {
                return Err(DecisionError::new_err(format!(
                    "decision: candidate, rb, power_w and bits differ in length ({n}, {}, {}, {})",
                    rb.len(),
                    power.len(),
                    bits.len()
                )));
            }
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let nonneg = |v: i64, f: &str| -> PyResult<usize> {
                    usize::try_from(v)
                        .map_err(|_| DecisionError::new_err(format!("decision entry {i}: {f} = {v} is negative")))
                };
                let b = u32::try_from(bits[i]).map_err(|_| {
                    DecisionError::new_err(format!("decision entry {i}: bits = {} out of range", bits[i]))
                })?;
                out.push((nonneg(cand[i], "candidate")?, nonneg(rb[i], "rb")?, power[i], b));
            }
            out
        } else {
            return Err(DecisionError::new_err(format!(
                "decision: a sflam.Decision or a mapping with candidate, rb, power_w and bits expected, got {}",
                obj.get_type().name()?
            )));
        };
        let mut rb_used = vec![usize::MAX; self.core.rb_count];
        let mut cand_used = vec![usize::MAX; self.core.candidates.len()];
        for (i, &(c, k, pw, b)) in picks.iter().enumerate() {
            self.check_pick(&format!("decision entry {i}"), c, k, Some(pw), b)?;
            if cand_used[c] != usize::MAX {
                return Err(DecisionError::new_err(format!(
                    "decision entry {i} (candidate {c}): candidate scheduled twice (entries {} and {i})",
                    cand_used[c]
                )));
            }
            if rb_used[k] != usize::MAX {
                return Err(DecisionError::new_err(format!(
                    "decision entry {i} (candidate {c}): rb = {k} already used by entry {}",
                    rb_used[k]
                )));
            }
            cand_used[c] = i;
            rb_used[k] = i;
        }
        Ok(picks)
    }
}

/// The decision the simulation runs for checked picks: each priced in
/// closed form, every other candidate left out as `not-chosen`.
pub fn decision_of(p: &CoreProblem, picks: &[Pick]) -> CoreDecision {
    let mut d = CoreDecision { iterations: 1, ..Default::default() };
    for &(c, k, pw, b) in picks {
        d.assignments.push(p.price(c, k, b, pw));
    }
    d.finish(p, |_| Exclusion::NotChosen)
}

/// What an allocator decided: per scheduled candidate its RB, power, bits
/// and the predicted rate, time and energy; the round's objective.
#[pyclass(module = "sflam", frozen)]
pub struct Decision {
    pub core: CoreDecision,
}

impl Decision {
    fn col<'py, T: numpy::Element>(
        &self,
        py: Python<'py>,
        f: impl Fn(&sflam::alloc::Assignment) -> T,
    ) -> Bound<'py, PyArray1<T>> {
        self.core.assignments.iter().map(f).collect::<Vec<T>>().into_pyarray(py)
    }
}

#[pymethods]
impl Decision {
    /// Candidate index of each scheduled device [index].
    #[getter]
    fn candidate<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.col(py, |a| a.candidate as u64)
    }
    /// Device id [id].
    #[getter]
    fn device<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.col(py, |a| a.device.0)
    }
    /// Resource block [index].
    #[getter]
    fn rb<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.col(py, |a| a.rb as u64)
    }
    /// Transmit power [W].
    #[getter]
    fn power_w<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.col(py, |a| a.power_w)
    }
    /// Activation bits (32: fp32) [bit].
    #[getter]
    fn bits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.col(py, |a| a.bits)
    }
    /// Uplink rate [bit/s].
    #[getter]
    fn rate_bps<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.col(py, |a| a.rate_bps)
    }
    /// Predicted round time [s].
    #[getter]
    fn time_s<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.col(py, |a| a.time_s)
    }
    /// Predicted energy, compute and uplink [J].
    #[getter]
    fn energy_j<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.col(py, |a| a.energy_j())
    }

    /// Σ (w ρ U(b) − E) over the scheduled devices [J].
    #[getter]
    fn objective_j(&self) -> f64 {
        self.core.objective_j
    }
    /// Eq. 21: Σ ρ U(b) / Σ E [1/J].
    #[getter]
    fn efficiency_per_j(&self) -> f64 {
        self.core.efficiency_per_j
    }
    /// Iterations the allocator ran [1].
    #[getter]
    fn iterations(&self) -> u32 {
        self.core.iterations
    }
    /// (candidate, device, reason) of every candidate left out.
    #[getter]
    fn excluded(&self) -> Vec<(usize, u32, &'static str)> {
        self.core.excluded.iter().map(|&(i, d, why)| (i, d.0, why.as_str())).collect()
    }
    /// The decision as `--dump-problems` writes it.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.core).map_err(|e| SflamError::new_err(e.to_string()))
    }
    /// As a dict of the four picks' arrays (what a policy may return).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("candidate", self.candidate(py))?;
        d.set_item("rb", self.rb(py))?;
        d.set_item("power_w", self.power_w(py))?;
        d.set_item("bits", self.bits(py))?;
        Ok(d)
    }
    fn __len__(&self) -> usize {
        self.core.assignments.len()
    }
    fn __repr__(&self) -> String {
        format!("<sflam.Decision: {} scheduled, objective {:.6} J>", self.core.assignments.len(), self.core.objective_j)
    }
}

/// Solves `problem` with the built-in allocator `name` (`exact`, `bcd`,
/// `ep`, `rb`, `nq`, `fixed`), as `sflam allocate` does; `settings` are
/// `[allocator]` fields (e.g. `{"max_iterations": 50}`); `seed` defaults
/// to the problem's.
#[pyfunction]
#[pyo3(signature = (problem, name, settings = None, seed = None))]
pub fn solve(
    py: Python<'_>,
    problem: &Bound<'_, Problem>,
    name: &str,
    settings: Option<&Bound<'_, PyDict>>,
    seed: Option<u64>,
) -> PyResult<Decision> {
    let p = problem.get();
    let kind: AllocatorKind = name.parse().map_err(|e: String| crate::ConfigError::new_err(e))?;
    let mut cfg = AllocatorConfig { name: kind, ..Default::default() };
    if let Some(s) = settings {
        let json: String = py.import("json")?.call_method1("dumps", (s,))?.extract()?;
        let mut v = serde_json::to_value(&cfg).map_err(|e| SflamError::new_err(e.to_string()))?;
        let extra: serde_json::Value = serde_json::from_str(&json).map_err(|e| SflamError::new_err(e.to_string()))?;
        for (k, val) in extra.as_object().into_iter().flatten() {
            if v.get(k).is_none() {
                return Err(crate::ConfigError::new_err(format!("allocator settings: unknown field `{k}`")));
            }
            v[k] = val.clone();
        }
        cfg = serde_json::from_value(v).map_err(|e| crate::ConfigError::new_err(format!("allocator settings: {e}")))?;
        cfg.name = kind;
    }
    let seed = seed.unwrap_or(p.seed);
    let cell = p.cell as u64;
    let core = p.core.clone();
    let d = py.detach(move || {
        let mut a = sflam::alloc::build(kind, &cfg);
        let mut rng = sflam::sim::rng::stream(seed, "allocator", cell);
        a.decide(&core, &mut rng)
    });
    d.check(&p.core).map_err(|detail| py_err(sflam::Error::Numeric { checkpoint: "allocator.decision", detail }))?;
    if let Some(detail) = &d.unconverged {
        return Err(NotConvergedError::new_err(format!("{name} did not converge: {detail}")));
    }
    Ok(Decision { core: d })
}

/// Names of the built-in allocators.
#[pyfunction]
pub fn allocator_names() -> Vec<&'static str> {
    sflam::alloc::allocator_names().to_vec()
}
