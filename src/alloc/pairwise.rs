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

/// One bit level as a line in the abscissa x (see [`Levels::lines`]).
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
    /// (bits, w ρ U(b) − E_cmp [J], c_b [W·gain]: p*(b) = c_b / h, round upload bits)
    rows: Vec<(u32, f64, f64, f64)>,
    /// τ (with the rounding guard) [s].
    tau_s: f64,
}

impl Levels {
    pub fn new(p: &Problem, cand: usize, bits: BitsRule) -> Levels {
        let c = &p.candidates[cand];
        let tau = c.uplink_time_s - p.guard_s(c);
        let list: Vec<u32> = match bits {
            BitsRule::Search => p.quantized_levels(),
            BitsRule::Fp32 => vec![32],
        };
        let rows = list
            .into_iter()
            .map(|b| {
                let u = p.round_upload_bits(c, b);
                let gain_free = (u / (p.rb_bandwidth_hz * tau) * std::f64::consts::LN_2).exp_m1() * p.noise_w;
                (b, p.weight_j * c.data_share * p.utility(b) - c.compute_energy_j, gain_free, u)
            })
            .collect();
        Levels { rows, tau_s: tau }
    }

    /// Per-RB abscissa x_k and per-level lines (base, energy slope,
    /// feasibility slope, limit) such that on RB k at level b:
    /// value = base − e_slope · x_k, feasible iff f_slope · x_k <= limit.
    /// `MinFeasible`: x = 1/h, E_com = c_b τ / h, p* = c_b / h <= p_max.
    /// `Max`: x = 1/r(p_max), E_com = p_max U_b / r, U_b / r <= τ.
    fn lines(&self, p: &Problem, cand: usize, power: PowerRule) -> (Vec<f64>, Vec<Line>) {
        let c = &p.candidates[cand];
        match power {
            PowerRule::MinFeasible => (
                c.gains.iter().map(|h| 1.0 / h).collect(),
                self.rows
                    .iter()
                    .map(|&(bits, base, cb, _)| Line {
                        bits,
                        base,
                        e_slope: cb * self.tau_s,
                        f_slope: cb,
                        limit: c.p_max_w,
                    })
                    .collect(),
            ),
            PowerRule::Max => (
                c.gains
                    .iter()
                    .map(|&h| 1.0 / crate::net::rate_bps(p.rb_bandwidth_hz, c.p_max_w, h, p.noise_w))
                    .collect(),
                self.rows
                    .iter()
                    .map(|&(bits, base, _, u)| Line {
                        bits,
                        base,
                        e_slope: c.p_max_w * u,
                        f_slope: u,
                        limit: self.tau_s,
                    })
                    .collect(),
            ),
        }
    }

    /// Writes into `values[j]` the best value [J] on RB j over all levels,
    /// or −∞ where no level meets the deadline within p_max; returns the
    /// index of the best level per RB through `level` (u64::MAX = none).
    /// Where no value can be positive, the cheapest feasible level is
    /// reported instead of the best: its value is <= 0 too, and no
    /// allocator schedules a pair of value <= 0.
    /// Levels are enumerated exhaustively; the loop over RBs is branch-free
    /// so it vectorizes (1,000 x 100 x 13 in a few milliseconds).
    pub fn values_into(&self, p: &Problem, cand: usize, power: PowerRule, values: &mut [f64], level: &mut [u64]) {
        values.fill(f64::NEG_INFINITY);
        level.fill(u64::MAX);
        if self.tau_s <= 0.0 {
            return;
        }
        if self.rows.iter().all(|r| r.1 <= 0.0) {
            // No level is worth even its computation energy: every value is
            // <= 0 wherever it is feasible, so report the cheapest level
            // (feasible whenever any level is) instead of searching.
            let (x, lines) = self.lines(p, cand, power);
            let Line { base, e_slope, f_slope, limit, .. } = lines[0];
            for ((v, l), xj) in values.iter_mut().zip(level.iter_mut()).zip(&x) {
                if f_slope * xj <= limit {
                    *v = base - e_slope * xj;
                    *l = 0;
                }
            }
            return;
        }
        let (x, lines) = self.lines(p, cand, power);
        for (li, &Line { base, e_slope, f_slope, limit, .. }) in lines.iter().enumerate() {
            for ((xj, bv), bi) in x.iter().zip(values.iter_mut()).zip(level.iter_mut()) {
                let v = base - e_slope * xj;
                let better = (f_slope * xj <= limit) & (v > *bv);
                *bv = if better { v } else { *bv };
                *bi = if better { li as u64 } else { *bi };
            }
        }
    }

    /// The best (bits, power [W], value [J]) on every RB of the candidate's
    /// row, `None` where no level meets the deadline within p_max.
    pub fn best_row(&self, p: &Problem, cand: usize, power: PowerRule) -> Vec<Option<(u32, f64, f64)>> {
        let k = p.rb_count;
        let (mut values, mut level) = (vec![0.0; k], vec![0u64; k]);
        self.values_into(p, cand, power, &mut values, &mut level);
        if self.tau_s <= 0.0 {
            return vec![None; k];
        }
        let (x, lines) = self.lines(p, cand, power);
        let p_max = p.candidates[cand].p_max_w;
        (0..k)
            .map(|j| {
                let Line { bits: b, f_slope, .. } = *lines.get(usize::try_from(level[j]).ok()?)?;
                let pw = match power {
                    PowerRule::MinFeasible => f_slope * x[j],
                    PowerRule::Max => p_max,
                };
                Some((b, pw, values[j]))
            })
            .collect()
    }

    /// As [`Levels::best_row`], for one RB.
    pub fn best(&self, p: &Problem, cand: usize, k: usize, power: PowerRule) -> Option<(u32, f64, f64)> {
        self.best_row(p, cand, power).swap_remove(k)
    }
}
