//! Per-round resource allocation (SPEC section 6): the problem, the
//! decision, the [`Allocator`] trait and the registry of allocators by name.
//!
//! Every allocator fills the same [`Decision`]; a new one is one file, one
//! name in `config::AllocatorKind` and one arm in [`build`].

mod assign;
mod bcd;
mod exact;
mod fixed;
pub mod model;
pub mod pairwise;
mod random_rb;
mod round;
pub mod timeline;
pub mod utility;

pub use assign::{max_weight, min_weight_perfect_with_virtual};
pub use bcd::{Bcd, SCA_STEPS, Sca, sca_power};
pub use exact::Enumerate;
pub use fixed::Fixed;
pub use model::{Candidate, Problem};
pub use random_rb::RandomRb;
pub use round::{FREE_PASSES, RoundPlanner};

use crate::config::{AllocatorConfig, AllocatorKind, Plan};
use crate::device::DeviceId;
use crate::sim::rng::Rng;
use serde::{Deserialize, Serialize};

/// One scheduled device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Index into `Problem::candidates`.
    pub candidate: usize,
    pub device: DeviceId,
    /// Resource block [index].
    pub rb: usize,
    /// Transmit power [W].
    pub power_w: f64,
    /// Activation bits [bit] (32 = unquantized fp32).
    pub bits: u32,
    /// Uplink rate [bit/s].
    pub rate_bps: f64,
    /// Predicted round time T_n [s].
    pub time_s: f64,
    /// Predicted uplink energy for the round [J].
    pub energy_com_j: f64,
    /// Predicted computation energy for the round [J].
    pub energy_cmp_j: f64,
}

impl Assignment {
    /// E_n [J].
    pub fn energy_j(&self) -> f64 {
        self.energy_com_j + self.energy_cmp_j
    }
}

/// Why a candidate was not scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exclusion {
    /// No power <= p_max and no bits meet the deadline on any RB.
    Infeasible,
    /// Feasible, but no RB was left for it.
    NoResourceBlock,
    /// Feasible, but its utility is worth less than its energy.
    NotWorthwhile,
    /// Feasible alone, but its place in the server's queue leaves its
    /// uploads too little time (queue-aware planning).
    ServerBusy,
    /// A policy from outside sflam (Python's) did not schedule it; it
    /// gives no reason.
    NotChosen,
}

impl Exclusion {
    /// The name in traces and problem files.
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Infeasible => "infeasible",
            Exclusion::NoResourceBlock => "no-resource-block",
            Exclusion::NotWorthwhile => "not-worthwhile",
            Exclusion::ServerBusy => "server-busy",
            Exclusion::NotChosen => "not-chosen",
        }
    }
}

/// What an allocator decided for one round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub assignments: Vec<Assignment>,
    /// (candidate index, device, reason) for every candidate left out.
    pub excluded: Vec<(usize, DeviceId, Exclusion)>,
    /// Σ (w ρ_n U(b_n) − E_n) over the scheduled devices [J].
    pub objective_j: f64,
    /// Eq. 21: Σ ρ_n U(b_n) / Σ E_n [1/J]; 0 when nobody is scheduled.
    pub efficiency_per_j: f64,
    /// Iterations the allocator ran (1 for one-shot allocators).
    pub iterations: u32,
    /// Queue-aware planning: (candidate, upload budget τ_n [s]) of every
    /// candidate whose budget the queue cut; the decision is the inner
    /// allocator's for these budgets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets_s: Vec<(usize, f64)>,
    /// Set when an iterative step stopped at its bound without converging:
    /// what stopped, where, and which setting bounds it. The decision is
    /// then the last iterate, feasible but not the solver's answer, and
    /// the run stops on it ([`crate::Error::NotConverged`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconverged: Option<String>,
    /// `bcd`: the state after each block step, from the starting point
    /// on (the paper's Fig. 4 (a)-(c)); empty for one-shot allocators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<BcdStep>,
}

/// Which block step of `bcd` a [`BcdStep`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BcdBlock {
    /// The starting point, before the first iteration.
    Start,
    /// After (P1) power and (P2) bits, on the current matching.
    PowerBits,
    /// After (P3) the matching.
    Matching,
}

impl BcdBlock {
    pub fn as_str(self) -> &'static str {
        match self {
            BcdBlock::Start => "start",
            BcdBlock::PowerBits => "power-bits",
            BcdBlock::Matching => "matching",
        }
    }
}

/// `bcd`'s state after one block step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BcdStep {
    /// Iteration (0: the starting point) [1].
    pub iteration: u32,
    pub step: BcdBlock,
    /// Matched devices whose pair is feasible at this point [1].
    pub scheduled: u32,
    /// Their mean energy for the round, computation and uplink [J].
    pub mean_energy_j: f64,
    /// Σ (w ρ_n U(b_n) − E_n) over them [J].
    pub objective_j: f64,
    /// Eq. 21: Σ ρ_n U(b_n) / Σ E_n over them [1/J].
    pub efficiency_per_j: f64,
    /// Their mean bits [bit].
    pub mean_bits: f64,
}

impl Decision {
    /// Builds the metrics from the assignments and marks every other
    /// candidate with `default_reason` unless it is already excluded.
    pub fn finish(mut self, p: &Problem, default_reason: impl Fn(usize) -> Exclusion) -> Decision {
        let mut seen = vec![false; p.candidates.len()];
        for a in &self.assignments {
            seen[a.candidate] = true;
        }
        for (i, _, _) in &self.excluded {
            seen[*i] = true;
        }
        for (i, c) in p.candidates.iter().enumerate() {
            if !seen[i] {
                self.excluded.push((i, c.device, default_reason(i)));
            }
        }
        self.excluded.sort_by_key(|e| e.0);
        self.assignments.sort_by_key(|a| a.candidate);
        let (mut util, mut energy, mut obj) = (0.0, 0.0, 0.0);
        for a in &self.assignments {
            let c = &p.candidates[a.candidate];
            let u = c.data_share * p.utility(a.bits);
            util += u;
            energy += a.energy_j();
            obj += p.weight_j * u - a.energy_j();
        }
        self.objective_j = obj;
        self.efficiency_per_j = if energy > 0.0 { util / energy } else { 0.0 };
        self
    }

    /// Checks the named invariants: every number finite, each RB and each
    /// candidate used at most once, power within limits.
    pub fn check(&self, p: &Problem) -> Result<(), String> {
        let mut rb_used = vec![false; p.rb_count];
        let mut cand_used = vec![false; p.candidates.len()];
        for a in &self.assignments {
            let fields = [a.power_w, a.rate_bps, a.time_s, a.energy_com_j, a.energy_cmp_j];
            if fields.iter().any(|v| !v.is_finite()) {
                return Err(format!("non-finite value for device {}", a.device.0));
            }
            if a.rb >= p.rb_count || std::mem::replace(&mut rb_used[a.rb], true) {
                return Err(format!("RB {} used twice or out of range", a.rb));
            }
            if a.candidate >= p.candidates.len() || std::mem::replace(&mut cand_used[a.candidate], true) {
                return Err(format!("candidate {} scheduled twice or out of range", a.candidate));
            }
            let c = &p.candidates[a.candidate];
            if a.power_w < 0.0 || a.power_w > c.p_max_w * (1.0 + 1e-12) {
                return Err(format!("device {} power {} W outside [0, {}]", a.device.0, a.power_w, c.p_max_w));
            }
        }
        if !self.objective_j.is_finite() || !self.efficiency_per_j.is_finite() {
            return Err("non-finite objective or efficiency".into());
        }
        Ok(())
    }
}

/// A per-round allocation policy.
pub trait Allocator: Send {
    fn decide(&mut self, p: &Problem, rng: &mut Rng) -> Decision;

    /// Whether its decisions follow the candidates' upload budgets τ_n
    /// (queue-aware planning cuts them); `fixed` ignores them.
    fn uses_budgets(&self) -> bool {
        true
    }

    /// Whether the cells' allocators may decide in parallel. A policy that
    /// answers from outside the simulation (Python's, through one channel)
    /// says no: its cells are asked one after another, in cell order, so
    /// the order it sees problems in does not depend on the thread count.
    fn in_parallel(&self) -> bool {
        true
    }
}

/// Builds an allocator wrapped in its [`RoundPlanner`]: the registry, one
/// arm per [`AllocatorKind`] (the compiler checks that every name has one).
pub fn build(kind: AllocatorKind, cfg: &AllocatorConfig) -> Box<dyn Allocator> {
    Box::new(RoundPlanner { inner: build_bare(kind, cfg) })
}

fn build_bare(kind: AllocatorKind, cfg: &AllocatorConfig) -> Box<dyn Allocator> {
    match kind {
        AllocatorKind::Exact => Box::new(Enumerate::exact()),
        AllocatorKind::Bcd => {
            Box::new(Bcd { epsilon_j: cfg.epsilon_j, max_iterations: cfg.max_iterations, start: cfg.bcd_start })
        }
        AllocatorKind::Ep => Box::new(Enumerate::equal_power()),
        AllocatorKind::Rb => Box::new(RandomRb),
        AllocatorKind::Nq => Box::new(Enumerate::no_quantization()),
        AllocatorKind::Fixed => Box::new(Fixed { bits: cfg.fixed_bits }),
    }
}

/// Wraps an allocator from outside sflam in the [`RoundPlanner`], so that
/// queue-aware re-planning and sync rounds' free RBs apply to it.
pub fn planned(inner: Box<dyn Allocator>) -> Box<dyn Allocator> {
    Box::new(RoundPlanner { inner })
}

/// Builds the allocator of a framework's [`Plan`], wrapped in its
/// [`RoundPlanner`].
pub fn build_plan(plan: Plan, cfg: &AllocatorConfig) -> Box<dyn Allocator> {
    let inner: Box<dyn Allocator> = match plan {
        Plan::Configured(kind) => build_bare(kind, cfg),
        Plan::FixedAt(bits) => Box::new(Fixed { bits }),
        Plan::EqualPowerFp32 => Box::new(Enumerate::equal_power_fp32()),
        Plan::NoQuantization => Box::new(Enumerate::no_quantization()),
    };
    Box::new(RoundPlanner { inner })
}

/// Names accepted by `allocator.name` and `--allocator`.
pub fn allocator_names() -> &'static [&'static str] {
    AllocatorKind::NAMES
}

/// Builds an allocator by name; `None` for an unknown name.
pub fn allocator_from(name: &str, cfg: &AllocatorConfig) -> Option<Box<dyn Allocator>> {
    name.parse::<AllocatorKind>().ok().map(|k| build(k, cfg))
}

/// Reads a problem (a bare problem or a `--dump-problems` file holding
/// `{"problem": .., "decision": ..}`), checks it, and solves it.
pub fn solve_file(path: &std::path::Path, name: &str, seed: u64) -> crate::Result<Decision> {
    use crate::error::Error;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Input(format!(
            "{}: not a problem file: byte {} is not UTF-8 text (a problem is JSON, as --dump-problems writes it)",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Input(format!("{}: not JSON: {e}", path.display())))?;
    let pv = v.get("problem").cloned().unwrap_or(v);
    let p: Problem = serde_path_to_error::deserialize(pv)
        .map_err(|e| Error::Input(format!("{}: field `{}`: {}", path.display(), e.path(), e.inner())))?;
    p.check().map_err(|m| Error::Input(format!("{}: {m}", path.display())))?;
    let kind: AllocatorKind = name.parse().map_err(Error::Input)?;
    let mut a = build(kind, &AllocatorConfig { name: kind, ..Default::default() });
    let mut rng = crate::sim::rng::stream(seed, "allocator", 0);
    let mut d = a.decide(&p, &mut rng);
    d.check(&p).map_err(|detail| Error::Numeric { checkpoint: "allocator.decision", detail })?;
    if let Some(detail) = d.unconverged.take() {
        return Err(Error::Input(format!("{}: {name} did not converge: {detail}", path.display())));
    }
    Ok(d)
}
