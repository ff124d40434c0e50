//! `summary.json`: totals and hdrhistogram percentiles of per-device round
//! time and energy.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of one quantity, in the unit its name says.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The run summary.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub sflam_version: &'static str,
    pub git_commit: Option<&'static str>,
    pub timing_model: String,
    pub trained_model: Option<String>,
    /// The import report of `training.init` (tensors applied, skipped,
    /// missing, unused), when the run trains from a checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_init: Option<serde_json::Value>,
    /// The learning half's throughput, when the run trains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingThroughput>,
    /// The learning framework whose network behaviour was simulated.
    pub framework: &'static str,
    /// The allocator that planned the rounds (the framework's plan:
    /// e.g. `nq` for `sfl` under a configured `bcd`).
    pub allocator: String,
    /// The scenario's `allocator.name`.
    pub allocator_configured: &'static str,
    pub devices: u64,
    pub rounds: u32,
    /// Simulated time at the end [s].
    pub simulated_s: f64,
    pub events: u64,
    pub scheduled: u64,
    pub finished: u64,
    pub stragglers: u64,
    pub failed: u64,
    /// Σ device energy [J].
    pub energy_j: f64,
    pub energy_cmp_j: f64,
    pub energy_com_j: f64,
    /// Per scheduled device and round: time from round start to done or cut [s].
    pub device_round_time_s: Percentiles,
    /// Per scheduled device and round: energy [J].
    pub device_round_energy_j: Percentiles,
    /// Wall-clock time of the run [s] (not part of the deterministic result).
    pub wall_s: f64,
}

/// How fast the co-simulation trained: participant-steps (one local
/// iteration of one participant) against the wall time spent training and
/// evaluating. The step count is part of the deterministic result, the
/// times are not.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TrainingThroughput {
    /// Local iterations run, summed over participants and rounds [1].
    pub steps: u64,
    /// Wall-clock time in the learner (training and evaluation) [s].
    pub wall_s: f64,
    /// steps / wall_s [1/s].
    pub steps_per_s: f64,
}

impl TrainingThroughput {
    pub fn new(steps: u64, wall_s: f64) -> TrainingThroughput {
        TrainingThroughput { steps, wall_s, steps_per_s: if wall_s > 0.0 { steps as f64 / wall_s } else { 0.0 } }
    }
}

/// Collects the histograms while the run goes.
pub struct SummaryBuilder {
    /// Round time [µs].
    time_us: Histogram<u64>,
    /// Energy [µJ].
    energy_uj: Histogram<u64>,
}

impl Default for SummaryBuilder {
    fn default() -> Self {
        SummaryBuilder {
            time_us: Histogram::new_with_bounds(1, 1 << 50, 3).expect("valid bounds"),
            energy_uj: Histogram::new_with_bounds(1, 1 << 50, 3).expect("valid bounds"),
        }
    }
}

impl SummaryBuilder {
    /// Records one device-round: time [s], energy [J].
    pub fn record(&mut self, time_s: f64, energy_j: f64) {
        let clamp = |x: f64| {
            if x.is_finite() && x > 0.0 { x.round().min(u64::MAX as f64 / 2.0) as u64 } else { 0 }
        };
        self.time_us.saturating_record(clamp(time_s * 1e6));
        self.energy_uj.saturating_record(clamp(energy_j * 1e6));
    }

    pub fn time_percentiles(&self) -> Percentiles {
        pct(&self.time_us, 1e-6)
    }

    pub fn energy_percentiles(&self) -> Percentiles {
        pct(&self.energy_uj, 1e-6)
    }
}

fn pct(h: &Histogram<u64>, scale: f64) -> Percentiles {
    let q = |p: f64| {
        if h.is_empty() { 0.0 } else { h.value_at_quantile(p) as f64 * scale }
    };
    Percentiles {
        count: h.len(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: if h.is_empty() { 0.0 } else { h.max() as f64 * scale },
        mean: if h.is_empty() { 0.0 } else { h.mean() * scale },
    }
}
