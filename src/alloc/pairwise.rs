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

    /// The best (bits, power [W], value [J]) for RB `k`, or `None` when no
    /// level meets the deadline within p_max.
    pub fn best(&self, p: &Problem, cand: usize, k: usize, power: PowerRule) -> Option<(u32, f64, f64)> {
        if self.tau_s <= 0.0 {
            return None;
        }
        let c = &p.candidates[cand];
        let h = c.gains[k];
        let mut best: Option<(u32, f64, f64)> = None;
        match power {
            PowerRule::MinFeasible => {
                let inv_h = 1.0 / h;
                for &(b, base, cb, _) in &self.rows {
                    let pw = cb * inv_h;
                    if pw > c.p_max_w || !pw.is_finite() {
                        continue;
                    }
                    // With p*, the uploads take exactly τ: E_com = p* τ.
                    let v = base - pw * self.tau_s;
                    if best.is_none_or(|(_, _, bv)| v > bv) {
                        best = Some((b, pw, v));
                    }
                }
            }
            PowerRule::Max => {
                let pw = c.p_max_w;
                let rate = crate::net::rate_bps(p.rb_bandwidth_hz, pw, h, p.noise_w);
                for &(b, base, _, u) in &self.rows {
                    let t = u / rate;
                    if t > self.tau_s {
                        continue;
                    }
                    let v = base - pw * t;
                    if best.is_none_or(|(_, _, bv)| v > bv) {
                        best = Some((b, pw, v));
                    }
                }
            }
        }
        best
    }
}
