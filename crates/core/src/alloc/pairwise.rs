//! The closed-form per-pair optimum shared by `exact`, `ep`, `nq` and `rb`:
//! for a candidate on one RB, the best bits (and power) by enumeration.

use super::Problem;

/// How power is chosen for a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerRule {
    /// The energy-minimal power that meets the deadline (closed form).
    MinFeasible,
    /// Always p_max (the `ep` baseline).
    Max,
}

/// Which bit widths are on offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitsRule {
    /// `bits_min..=bits_max`, searched exhaustively.
    Search,
    /// Unquantized fp32 only (the `nq` baseline).
    Fp32,
}

/// One bit level as a line in an abscissa x that depends on the RB only:
/// on RB k, value = base − e_slope · x_k, feasible iff f_slope · x_k <= limit.
/// `MinFeasible`: x = 1/h, E_com = c_b τ / h, p* = c_b / h <= p_max, where
/// c_b = (2^(U_b / (B τ)) − 1) N0 B. `Max`: x = 1/r(p_max),
/// E_com = p_max U_b / r, U_b / r <= τ.
#[derive(Clone, Copy)]
struct Line {
    bits: u32,
    /// w ρ U(b) − E_cmp [J]
    base: f64,
    /// Uplink energy per unit x [J].
    e_slope: f64,
    /// Feasible iff f_slope · x <= limit.
    f_slope: f64,
    limit: f64,
}

/// Per-candidate constants of the enumeration, computed once per round so
/// that pricing a (candidate, RB) pair costs a few multiply-adds per level.
pub struct Levels {
    lines: Vec<Line>,
    power: PowerRule,
    /// τ (with the rounding guard) [s].
    tau_s: f64,
    /// p_max [W].
    p_max_w: f64,
}

impl Levels {
    pub fn new(p: &Problem, cand: usize, bits: BitsRule, power: PowerRule) -> Levels {
        let c = &p.candidates[cand];
        let tau = c.uplink_time_s - p.guard_s(c);
        let list: Vec<u32> = match bits {
            BitsRule::Search => p.quantized_levels(),
            BitsRule::Fp32 => vec![32],
        };
        let lines = list
            .into_iter()
            .map(|bits| {
                let u = p.round_upload_bits(c, bits);
                let base = p.weight_j * c.data_share * p.utility(bits) - c.compute_energy_j;
                match power {
                    PowerRule::MinFeasible => {
                        let cb = (u / (p.rb_bandwidth_hz * tau) * std::f64::consts::LN_2).exp_m1() * p.noise_w;
                        Line { bits, base, e_slope: cb * tau, f_slope: cb, limit: c.p_max_w }
                    }
                    PowerRule::Max => Line { bits, base, e_slope: c.p_max_w * u, f_slope: u, limit: tau },
                }
            })
            .collect();
        Levels { lines, power, tau_s: tau, p_max_w: c.p_max_w }
    }

    /// The abscissa of RB `k` (see [`Line`]).
    fn abscissa(&self, p: &Problem, cand: usize, k: usize) -> f64 {
        let h = p.candidates[cand].gains[k];
        match self.power {
            PowerRule::MinFeasible => 1.0 / h,
            PowerRule::Max => 1.0 / crate::net::rate_bps(p.rb_bandwidth_hz, self.p_max_w, h, p.noise_w),
        }
    }

    /// Writes into `values[j]` the best value [J] at abscissa `x[j]` over
    /// all levels, or −∞ where no level meets the deadline within p_max,
    /// and the index of that level into `level[j]` (u64::MAX = none).
    /// Where no value can be positive, the cheapest feasible level is
    /// reported instead of the best: its value is <= 0 too, and no
    /// allocator schedules a pair of value <= 0.
    /// Levels are enumerated exhaustively; the loop over RBs is branch-free
    /// so it vectorizes (1,000 x 100 x 13 in a few milliseconds).
    fn fill(&self, x: &[f64], values: &mut [f64], level: &mut [u64]) {
        values.fill(f64::NEG_INFINITY);
        level.fill(u64::MAX);
        if self.tau_s <= 0.0 {
            return;
        }
        // No level worth even its computation energy: only the cheapest.
        let search = if self.lines.iter().all(|l| l.base <= 0.0) { &self.lines[..1] } else { &self.lines[..] };
        for (li, &Line { base, e_slope, f_slope, limit, .. }) in search.iter().enumerate() {
            for ((xj, bv), bi) in x.iter().zip(values.iter_mut()).zip(level.iter_mut()) {
                let v = base - e_slope * xj;
                let better = (f_slope * xj <= limit) & (v > *bv);
                *bv = if better { v } else { *bv };
                *bi = if better { li as u64 } else { *bi };
            }
        }
    }

    /// The best value [J] on every RB of the candidate's row into `values`
    /// (−∞ where infeasible; see [`Levels::fill`] for rows that cannot be
    /// positive); `level` is scratch of the same length.
    pub fn values_into(&self, p: &Problem, cand: usize, values: &mut [f64], level: &mut [u64]) {
        let x: Vec<f64> = (0..p.rb_count).map(|k| self.abscissa(p, cand, k)).collect();
        self.fill(&x, values, level);
    }

    /// The best (bits, power [W], value [J]) on RB `k`, or `None` when no
    /// level meets the deadline within p_max.
    pub fn best(&self, p: &Problem, cand: usize, k: usize) -> Option<(u32, f64, f64)> {
        let x = self.abscissa(p, cand, k);
        let (mut value, mut level) = ([0.0], [0u64]);
        self.fill(&[x], &mut value, &mut level);
        let Line { bits, f_slope, .. } = *self.lines.get(usize::try_from(level[0]).ok()?)?;
        let pw = match self.power {
            PowerRule::MinFeasible => f_slope * x,
            PowerRule::Max => self.p_max_w,
        };
        Some((bits, pw, value[0]))
    }
}
