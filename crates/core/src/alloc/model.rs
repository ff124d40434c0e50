//! The per-round allocation problem (SPEC section 6) and its closed forms.
//! This is also the JSON format of `--dump-problems` and `sflam allocate`.

use crate::config::ServerDisciplineKind;
use crate::device::DeviceId;
use crate::net::rate_bps;
use serde::{Deserialize, Serialize};

/// One round's problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub round: u32,
    /// K [1].
    pub rb_count: usize,
    /// B [Hz].
    pub rb_bandwidth_hz: f64,
    /// N0 B [W].
    pub noise_w: f64,
    /// T_max [s].
    pub deadline_s: f64,
    /// I [1].
    pub iterations: u32,
    /// w [J per unit utility].
    pub weight_j: f64,
    /// Smallest and largest quantized bit width [bit].
    pub bits_min: u32,
    pub bits_max: u32,
    pub candidates: Vec<Candidate>,
    /// A measured utility U(b) for `bits_min..=bits_max`, in order
    /// (`allocator.utility = "table"`); absent: the assumed curve
    /// ([`super::utility::assumed`]) [1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utility_table: Option<Vec<f64>>,
    /// The round beyond the uplink: the server, the relay, the round mode.
    /// Absent (problems written by hand, older dumps): the paper's model,
    /// an ideal server and a hard deadline, times in closed form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_model: Option<RoundModel>,
}

/// What the planner knows of a round beyond the uplink, so it can predict
/// each device's finish under the server's discipline
/// (`alloc::timeline`) and plan around the queue (`alloc::RoundPlanner`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundModel {
    /// The edge server's queueing discipline.
    pub discipline: ServerDisciplineKind,
    /// Server service per iteration at full speed [ns].
    pub service_ns: u64,
    /// Cut-layer gradient downlink per iteration [ns] (0: off).
    pub downlink_ns: u64,
    /// Activations go to the server every iteration (split frameworks).
    pub split: bool,
    /// Devices train one after another, in candidate order (`sl`).
    pub relay: bool,
    /// `sync` rounds: the deadline is only the planning target; every
    /// candidate with a free RB is scheduled.
    pub sync: bool,
    /// Activations are quantized (else fp32).
    pub quantized: bool,
    /// Plan with the queue (`allocator.queue_aware`).
    pub queue_aware: bool,
}

/// One candidate device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub device: DeviceId,
    /// Channel gain h_{n,k} per RB [1].
    pub gains: Vec<f64>,
    /// p_max_n [W].
    pub p_max_w: f64,
    /// ρ_n: share of the candidates' data [1].
    pub data_share: f64,
    /// Time left for the round's uploads, τ_n = T_max − I (t_cmp + t_srv + t_down) [s].
    pub uplink_time_s: f64,
    /// Round time spent off the uplink, I (t_cmp + t_srv + t_down) [s].
    pub fixed_time_s: f64,
    /// Computation energy for the round, I E_cmp [J].
    pub compute_energy_j: f64,
    /// Activation elements per upload, d [1].
    pub activation_elements: u64,
    /// Extra bits uploaded once per round (device model) [bit].
    pub extra_upload_bits: u64,
    /// Device forward pass per iteration [ns] (with a round model).
    #[serde(default)]
    pub forward_ns: u64,
    /// Device backward pass per iteration [ns] (with a round model).
    #[serde(default)]
    pub backward_ns: u64,
    /// Its own iterations this round (`training.local_epochs`); 0 = the
    /// problem's `iterations` [1].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub iterations: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Problem {
    /// U(b): the measured table's value when the problem has one, else
    /// the assumed 1 − 2^−(b − b_min + 1); unquantized (b >= 32) counts
    /// as one. A width outside the table's range (a problem written by
    /// hand) takes its nearest end's value.
    pub fn utility(&self, bits: u32) -> f64 {
        match &self.utility_table {
            Some(t) if bits < 32 && !t.is_empty() => {
                let i = (bits.saturating_sub(self.bits_min) as usize).min(t.len() - 1);
                t[i]
            }
            _ => super::utility::assumed(bits, self.bits_min),
        }
    }

    /// The iterations candidate `c` runs this round [1].
    pub fn iterations_of(&self, c: &Candidate) -> u32 {
        if c.iterations > 0 { c.iterations } else { self.iterations }
    }

    /// Bits uploaded by candidate `c` in the round at `bits` [bit].
    pub fn round_upload_bits(&self, c: &Candidate, bits: u32) -> f64 {
        // Saturating: `check` bounds a problem from outside so that no
        // level comes near 2^64; the engine's own sizes are far below.
        let per = crate::quant::message_bits(c.activation_elements, bits);
        (self.iterations_of(c) as u64).saturating_mul(per).saturating_add(c.extra_upload_bits) as f64
    }

    /// The quantized bit levels, `bits_min..=bits_max`.
    pub fn quantized_levels(&self) -> Vec<u32> {
        (self.bits_min..=self.bits_max).collect()
    }

    /// Time guard for integer-nanosecond rounding of each upload [s].
    pub fn guard_s(&self, c: &Candidate) -> f64 {
        (self.iterations_of(c) as f64 + if c.extra_upload_bits > 0 { 1.0 } else { 0.0 }) * 1e-9
    }

    /// The energy-minimal power that meets the deadline on RB `k` at
    /// `bits`: p* = (2^(U / (B τ)) − 1) N0 B / h [W]; `None` when τ <= 0 or
    /// p* > p_max. Exact because p U / r(p) increases with p.
    pub fn min_power_w(&self, c: &Candidate, k: usize, bits: u32) -> Option<f64> {
        let tau = c.uplink_time_s - self.guard_s(c);
        if tau <= 0.0 {
            return None;
        }
        let u = self.round_upload_bits(c, bits);
        let p = (u / (self.rb_bandwidth_hz * tau) * std::f64::consts::LN_2).exp_m1() * self.noise_w / c.gains[k];
        (p.is_finite() && p <= c.p_max_w).then_some(p)
    }

    /// Prices a choice: the assignment with time and energy at `power_w`.
    pub fn price(&self, cand: usize, k: usize, bits: u32, power_w: f64) -> super::Assignment {
        let c = &self.candidates[cand];
        let rate = rate_bps(self.rb_bandwidth_hz, power_w, c.gains[k], self.noise_w);
        let up_s = self.round_upload_bits(c, bits) / rate;
        super::Assignment {
            candidate: cand,
            device: c.device,
            rb: k,
            power_w,
            bits,
            rate_bps: rate,
            time_s: c.fixed_time_s + up_s,
            energy_com_j: power_w * up_s,
            energy_cmp_j: c.compute_energy_j,
        }
    }

    /// Whether an assignment meets the deadline (with the rounding guard).
    pub fn meets_deadline(&self, a: &super::Assignment) -> bool {
        let c = &self.candidates[a.candidate];
        a.time_s <= self.deadline_s - self.guard_s(c) * 0.5 + 1e-12 * self.deadline_s
    }

    /// Value of an assignment in the objective, w ρ U(b) − E [J].
    pub fn value_j(&self, a: &super::Assignment) -> f64 {
        self.weight_j * self.candidates[a.candidate].data_share * self.utility(a.bits) - a.energy_j()
    }
}

/// The most iterations a round may have [1] (`run.iterations` too).
pub const ITERATIONS_MAX: u32 = 1_000_000;
/// The most activation elements one upload may carry [1]: 2^36, far above
/// ViT-L/32's 3.3 M at batch 64, and small enough that a round's bits
/// (x 32 bits x [`ITERATIONS_MAX`] < 2^20, + 2^53) stay below 2^62.
pub const ACTIVATION_ELEMENTS_MAX: u64 = 1 << 36;
/// The most bits of a model upload [bit]: 2^53 (1 PiB).
pub const EXTRA_UPLOAD_BITS_MAX: u64 = 1 << 53;

impl Problem {
    /// Checks a problem read from outside: shapes and ranges.
    pub fn check(&self) -> Result<(), String> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let rb_max = crate::config::RB_COUNT_MAX;
        if !(1..=rb_max).contains(&self.rb_count) {
            return Err(format!("field `rb_count` = {}: must be in 1..={rb_max}", self.rb_count));
        }
        for (name, v, max) in [
            ("rb_bandwidth_hz", self.rb_bandwidth_hz, 1e10),
            ("noise_w", self.noise_w, 1.0),
            ("deadline_s", self.deadline_s, 1e6),
        ] {
            if !(pos(v) && v <= max) {
                return Err(format!("field `{name}` = {v}: must be a finite number in (0, {max:e}]"));
            }
        }
        if !(1..=ITERATIONS_MAX).contains(&self.iterations) {
            return Err(format!("field `iterations` = {}: must be in 1..={ITERATIONS_MAX}", self.iterations));
        }
        if !(1..=16).contains(&self.bits_min) || !(1..=16).contains(&self.bits_max) || self.bits_min > self.bits_max {
            return Err(format!(
                "fields `bits_min`..`bits_max` = {}..{}: bits in 1..=16, min <= max",
                self.bits_min, self.bits_max
            ));
        }
        if !(self.weight_j.is_finite() && (0.0..=1e12).contains(&self.weight_j)) {
            return Err(format!("field `weight_j` = {}: must be a number in [0, 1e12]", self.weight_j));
        }
        if let Some(t) = &self.utility_table {
            let n = (self.bits_max - self.bits_min + 1) as usize;
            if t.len() != n {
                return Err(format!(
                    "field `utility_table`: {} values for bits_min..=bits_max = {}..={}, which needs {n}",
                    t.len(),
                    self.bits_min,
                    self.bits_max
                ));
            }
            let bits: Vec<u32> = (self.bits_min..=self.bits_max).collect();
            super::utility::check_table(&bits, t, self.bits_min, self.bits_max)
                .map_err(|(i, why)| format!("field `utility_table[{}]`: {why}", i.saturating_sub(1)))?;
        }
        for (i, c) in self.candidates.iter().enumerate() {
            if let Some(j) = self.candidates[..i].iter().position(|o| o.device == c.device) {
                return Err(format!(
                    "candidates[{i}].device = {}: the same device as candidates[{j}]; each device is a candidate once",
                    c.device.0
                ));
            }
            if c.iterations > ITERATIONS_MAX {
                return Err(format!(
                    "candidates[{i}].iterations = {}: must be in 0..={ITERATIONS_MAX} (0: the problem's)",
                    c.iterations
                ));
            }
            if c.activation_elements > ACTIVATION_ELEMENTS_MAX {
                return Err(format!(
                    "candidates[{i}].activation_elements = {}: must be at most {ACTIVATION_ELEMENTS_MAX}",
                    c.activation_elements
                ));
            }
            if c.extra_upload_bits > EXTRA_UPLOAD_BITS_MAX {
                return Err(format!(
                    "candidates[{i}].extra_upload_bits = {}: must be at most {EXTRA_UPLOAD_BITS_MAX}",
                    c.extra_upload_bits
                ));
            }
            if c.gains.len() != self.rb_count {
                return Err(format!(
                    "candidates[{i}].gains: {} values, expected rb_count = {}",
                    c.gains.len(),
                    self.rb_count
                ));
            }
            if let Some(g) = c.gains.iter().find(|g| !(pos(**g) && **g <= 1e12)) {
                return Err(format!("candidates[{i}].gains: {g} is not a power gain in (0, 1e12]"));
            }
            if !(pos(c.p_max_w) && c.p_max_w <= 1e3) {
                return Err(format!("candidates[{i}].p_max_w = {}: must be a finite number in (0, 1e3]", c.p_max_w));
            }
            for (name, v) in [
                ("data_share", c.data_share),
                ("fixed_time_s", c.fixed_time_s),
                ("compute_energy_j", c.compute_energy_j),
            ] {
                if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
                    return Err(format!("candidates[{i}].{name} = {v}: must be a number in [0, 1e9]"));
                }
            }
            if !(c.uplink_time_s.is_finite() && c.uplink_time_s.abs() <= 1e9) {
                return Err(format!(
                    "candidates[{i}].uplink_time_s = {}: must be a number in [-1e9, 1e9]",
                    c.uplink_time_s
                ));
            }
        }
        Ok(())
    }
}
