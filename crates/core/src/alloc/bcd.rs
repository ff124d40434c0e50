//! `bcd` — the paper's Algorithm 3 as written: block coordinate descent over
//! (P1) power by successive convex approximation, (P2) bits by exhaustive
//! search per device, (P3) RB matching as a minimum-weight perfect
//! bipartite matching with virtual vertices, until the objective changes by
//! less than ε. Every block step keeps the current point feasible and does
//! not lower the objective, so the iteration converges; it is a local
//! method, and `exact` bounds it from above.

use super::assign::max_weight;
use super::pairwise::{BitsRule, Levels, PowerRule};
use super::{Allocator, BcdBlock, BcdStep, Decision, Exclusion, Problem};
use crate::config::BcdStart;
use crate::net::rate_bps;
use crate::sim::rng::Rng;
use std::f64::consts::LN_2;

pub struct Bcd {
    /// Stop when the objective changes by less than this [J].
    pub epsilon_j: f64,
    pub max_iterations: u32,
    /// The starting power (`allocator.bcd_start`).
    pub start: BcdStart,
}

/// (P1) The smallest power on gain `h` that carries `u_bits` within `tau_s`,
/// by SCA: each step replaces the concave rate term log2(1 + p h / N0B) by
/// its first-order Taylor expansion at the current power (eq. 27) and solves
/// the resulting linear problem in closed form (the linearized energy, eq.
/// 26, increases with p, so the optimum sits on the linearized constraint).
/// Stops at [`SCA_STEPS`] steps.
pub fn sca_power(u_bits: f64, tau_s: f64, bandwidth_hz: f64, noise_w: f64, h: f64, p_max_w: f64, start_w: f64) -> Sca {
    if tau_s <= 0.0 {
        return Sca::TooSlow;
    }
    let g = h / noise_w;
    let target = u_bits / (bandwidth_hz * tau_s); // [bit/s/Hz] needed
    let phi = |p: f64| (p * g).ln_1p() / LN_2;
    if phi(p_max_w) < target {
        return Sca::TooSlow;
    }
    let mut p = start_w.clamp(0.0, p_max_w);
    let mut last_step = f64::INFINITY;
    for step in 1..=SCA_STEPS {
        let d_phi = g / ((1.0 + p * g) * LN_2);
        let next = (p + (target - phi(p)) / d_phi).clamp(0.0, p_max_w);
        if !next.is_finite() {
            return Sca::NotConverged { power_w: p, step };
        }
        let moved = (next - p).abs();
        // Converged: a step within the last ulps, or (the steps shrink
        // quadratically until rounding in phi stops them, a few ulps of phi
        // at high SNR) a step no smaller than the one before, once small.
        let tiny = moved <= 1e-15 * p.max(1e-300);
        let stalled = moved >= last_step && moved <= 1e-9 * p;
        if tiny || stalled {
            return Sca::Power { power_w: next, steps: step };
        }
        last_step = moved;
        p = next;
    }
    Sca::NotConverged { power_w: p, step: SCA_STEPS }
}

/// Steps of [`sca_power`]: from any start it converges quadratically once
/// near the root, in well under 100 steps on every problem `Problem::check`
/// admits; more is a numeric failure, not slowness.
pub const SCA_STEPS: u32 = 200;

/// What (P1)'s SCA found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sca {
    /// The smallest power [W] that carries the bits in time, after `steps`.
    Power { power_w: f64, steps: u32 },
    /// Even p_max is too slow (or no time at all).
    TooSlow,
    /// Steps stopped moving toward the root: the last power [W] and the
    /// step at which it stopped (a non-finite step or [`SCA_STEPS`]).
    NotConverged { power_w: f64, step: u32 },
}

impl Allocator for Bcd {
    fn decide(&mut self, p: &Problem, _rng: &mut Rng) -> Decision {
        let (n, k) = (p.candidates.len(), p.rb_count);
        let levels = p.quantized_levels();
        // Per candidate: current power, bits, RB (None = unmatched).
        let mut power: Vec<f64> = p.candidates.iter().map(|c| c.p_max_w).collect();
        let mut bits: Vec<u32> = vec![p.bits_max; n];
        let tau: Vec<f64> = p.candidates.iter().map(|c| c.uplink_time_s - p.guard_s(c)).collect();

        // Value of candidate i on RB j at (power, bits), or None if late.
        let value = |i: usize, j: usize, pw: f64, b: u32| -> Option<f64> {
            let c = &p.candidates[i];
            let r = rate_bps(p.rb_bandwidth_hz, pw, c.gains[j], p.noise_w);
            let u = p.round_upload_bits(c, b);
            let t = u / r;
            (t <= tau[i] && tau[i] > 0.0)
                .then(|| p.weight_j * c.data_share * p.utility(b) - c.compute_energy_j - pw * t)
        };
        // Initial point: the starting power (p_max, or the closed-form
        // optimum for b_max on the device's best RB); bits by P2 on that
        // RB; the matching by P3.
        let best_bits = |i: usize, j: usize, pw: f64| -> Option<(u32, f64)> {
            levels.iter().filter_map(|&b| value(i, j, pw, b).map(|v| (b, v))).fold(None, |acc, (b, v)| match acc {
                Some((_, bv)) if bv >= v => acc,
                _ => Some((b, v)),
            })
        };
        for i in 0..n {
            let j = (0..k).max_by(|&a, &b| p.candidates[i].gains[a].total_cmp(&p.candidates[i].gains[b])).unwrap_or(0);
            if self.start == BcdStart::ClosedForm
                && let Some(pw) = p.min_power_w(&p.candidates[i], j, p.bits_max)
            {
                // Keep the feasible side by the last ulps, as P1 does.
                power[i] = nudge_feasible(pw, p.candidates[i].p_max_w, |pw| value(i, j, pw, p.bits_max).is_some());
            }
            if let Some((b, _)) = best_bits(i, j, power[i]) {
                bits[i] = b;
            }
        }
        let matching = |power: &[f64], bits: &[u32]| -> Vec<(usize, usize)> {
            let mut w = vec![0.0; n * k];
            for i in 0..n {
                for j in 0..k {
                    if let Some(v) = value(i, j, power[i], bits[i]) {
                        w[i * k + j] = v;
                    }
                }
            }
            max_weight(n, k, &w)
        };
        let mut x = matching(&power, &bits);
        let objective = |x: &[(usize, usize)], power: &[f64], bits: &[u32]| -> f64 {
            x.iter().filter_map(|&(i, j)| value(i, j, power[i], bits[i])).sum()
        };
        let mut obj = objective(&x, &power, &bits);
        // The state after a block step, for Fig. 4 (a)-(c): the matched
        // devices' mean energy, the objective, eq. 21's efficiency and the
        // mean bits, over the pairs of `x` still feasible.
        let state = |iteration: u32, step: BcdBlock, x: &[(usize, usize)], power: &[f64], bits: &[u32]| {
            let (mut e, mut u, mut b, mut m) = (0.0, 0.0, 0.0, 0usize);
            for &(i, j) in x {
                let c = &p.candidates[i];
                let r = rate_bps(p.rb_bandwidth_hz, power[i], c.gains[j], p.noise_w);
                if value(i, j, power[i], bits[i]).is_some() {
                    e += c.compute_energy_j + power[i] * p.round_upload_bits(c, bits[i]) / r;
                    u += c.data_share * p.utility(bits[i]);
                    b += bits[i] as f64;
                    m += 1;
                }
            }
            BcdStep {
                iteration,
                step,
                scheduled: m as u32,
                mean_energy_j: if m > 0 { e / m as f64 } else { 0.0 },
                objective_j: objective(x, power, bits),
                efficiency_per_j: if e > 0.0 { u / e } else { 0.0 },
                mean_bits: if m > 0 { b / m as f64 } else { 0.0 },
            }
        };
        let mut history = vec![state(0, BcdBlock::Start, &x, &power, &bits)];
        let mut iterations = 0;
        let mut unconverged = None;
        let mut last_change_j = f64::INFINITY;
        for it in 1..=self.max_iterations {
            iterations = it;
            // (P1) power for the matched devices.
            for &(i, j) in &x {
                let c = &p.candidates[i];
                let u = p.round_upload_bits(c, bits[i]);
                match sca_power(u, tau[i], p.rb_bandwidth_hz, p.noise_w, c.gains[j], c.p_max_w, power[i]) {
                    Sca::Power { power_w, .. } => {
                        // SCA lands on the constraint from below; keep the
                        // feasible side by the last ulps.
                        let pw = nudge_feasible(power_w, c.p_max_w, |pw| value(i, j, pw, bits[i]).is_some());
                        if value(i, j, pw, bits[i]).is_some() {
                            power[i] = pw;
                        }
                    }
                    Sca::TooSlow => {}
                    Sca::NotConverged { power_w, step } => {
                        unconverged.get_or_insert(format!(
                            "bcd's power step (SCA) for device {} on RB {j} stopped at {power_w:e} W after {step} \
                             of its {SCA_STEPS} steps without converging",
                            c.device.0
                        ));
                    }
                }
            }
            // (P2) bits for the matched devices at their power.
            for &(i, j) in &x {
                if let Some((b, _)) = best_bits(i, j, power[i]) {
                    bits[i] = b;
                }
            }
            history.push(state(it, BcdBlock::PowerBits, &x, &power, &bits));
            // (P3) the matching at (power, bits).
            x = matching(&power, &bits);
            history.push(state(it, BcdBlock::Matching, &x, &power, &bits));
            let new = objective(&x, &power, &bits);
            last_change_j = (new - obj).abs();
            obj = new;
            if last_change_j < self.epsilon_j {
                break;
            }
        }
        // NaN (a non-finite objective) counts as not converged.
        let converged = last_change_j < self.epsilon_j;
        if !converged {
            unconverged.get_or_insert(format!(
                "bcd's objective still changed by {last_change_j:e} J in iteration {iterations} of allocator.max_iterations = {}, \
                 more than allocator.epsilon_j = {:e} J; \
                 raise allocator.max_iterations or allocator.epsilon_j",
                self.max_iterations, self.epsilon_j
            ));
        }
        let mut d = Decision { iterations, unconverged, history, ..Default::default() };
        for &(i, j) in &x {
            d.assignments.push(p.price(i, j, bits[i], power[i]));
        }
        // Candidates left out, labelled as `exact` labels them: infeasible
        // if no RB works even at p_max and the smallest bits; not worthwhile
        // if no RB has a positive best value at the closed-form power
        // (`exact`'s own per-pair optimum); otherwise no RB was left.
        let reason: Vec<Exclusion> = (0..n)
            .map(|i| {
                if !(0..k).any(|j| value(i, j, p.candidates[i].p_max_w, p.bits_min).is_some()) {
                    return Exclusion::Infeasible;
                }
                let pairs = Levels::new(p, i, BitsRule::Search, PowerRule::MinFeasible);
                let worthwhile = (0..k).any(|j| pairs.best(p, i, j).is_some_and(|(_, _, v)| v > 0.0));
                if worthwhile { Exclusion::NoResourceBlock } else { Exclusion::NotWorthwhile }
            })
            .collect();
        d.finish(p, |i| reason[i])
    }
}

/// A power that lands on a constraint from below, moved up by relative
/// steps of 1e-14 (the last ulps) until `feasible` holds, at most
/// [`NUDGE_STEPS`] steps and never past `p_max_w` [W]. Bounded: a power
/// still infeasible after them is left to the caller's feasibility check.
fn nudge_feasible(mut pw: f64, p_max_w: f64, feasible: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..NUDGE_STEPS {
        if feasible(pw) || pw >= p_max_w {
            break;
        }
        pw = (pw * (1.0 + 1e-14)).min(p_max_w);
    }
    pw
}

/// Steps of [`nudge_feasible`]: rounding is a few ulps; a gap wider than
/// this is not rounding.
const NUDGE_STEPS: u32 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sca_converges_to_the_closed_form() {
        let (u, tau, bw, n0) = (2.0e7, 0.4, 20e6, 8e-14);
        for &h in &[1e-13, 5e-12, 2e-10] {
            let closed = ((u / (bw * tau)) * LN_2).exp_m1() * n0 / h;
            let Sca::Power { power_w: p, steps } = sca_power(u, tau, bw, n0, h, 1e9, 1e9) else {
                panic!("h={h}: no power")
            };
            assert!(((p - closed) / closed).abs() < 1e-12, "h={h}: {p} vs {closed}");
            assert!(steps < 100);
        }
    }

    /// Too little time even at p_max, and no time at all, are `TooSlow`;
    /// a start anywhere in [0, p_max] reaches the same root.
    #[test]
    fn sca_outcomes() {
        let (u, bw, n0, h) = (2.0e7, 20e6, 8e-14, 5e-12);
        assert_eq!(sca_power(u, 0.0, bw, n0, h, 1.0, 1.0), Sca::TooSlow);
        assert_eq!(sca_power(u, 1e-6, bw, n0, h, 1.0, 1.0), Sca::TooSlow);
        let root = |start| match sca_power(u, 0.4, bw, n0, h, 10.0, start) {
            Sca::Power { power_w, .. } => power_w,
            other => panic!("start {start}: {other:?}"),
        };
        let a = root(10.0);
        for start in [0.0, 1e-9, 0.5 * a, a, 3.0] {
            assert!(((root(start) - a) / a).abs() < 1e-12, "start {start}");
        }
    }
}
