//! [`RoundPlanner`]: what every allocator's decision goes through before
//! the round runs. It predicts each scheduled device's finish under the
//! server's discipline (`timeline`), and
//!
//! - **deadline rounds, queue-aware** (`allocator.queue_aware`, the
//!   default, under `fifo` or `processor-sharing`, or a relay): a device
//!   the prediction shows late has its upload budget τ_n cut by its
//!   lateness (plus 1 µs) and the allocator plans again, so its uploads get
//!   only the time its place at the server really leaves; after
//!   [`FREE_PASSES`] such passes the latest device is left out instead
//!   (`server-busy`), one per pass, so the loop ends. A second settling
//!   only leaves out the latest device, pass by pass; the plan with the
//!   higher objective is kept. Every device the
//!   final plan schedules finishes by the deadline in the prediction, and
//!   so in the simulation unless it fails. The budgets it settled on are in
//!   [`Decision::budgets_s`]: the inner allocator's claim (for `exact`:
//!   optimal over bits, power and RB matching) holds for those budgets.
//! - **sync rounds** (no deadline): a candidate that cannot meet
//!   `deadline_s` (the planning target) even at p_max gets the upload time
//!   it needs there, so it competes for the RBs by value instead of being
//!   infeasible; candidates the allocator still leaves out (not
//!   worthwhile) get a free RB if one is left, at p_max and their fastest
//!   bits (b_min, or fp32 when the framework does not quantize), matched to
//!   the free RBs by the best rates.
//!
//! Without a round model (a problem written by hand), decisions pass
//! through unchanged.

use super::assign::max_weight;
use super::timeline::finish_times;
use super::{Allocator, Decision, Exclusion, Problem};
use crate::config::ServerDisciplineKind;
use crate::sim::rng::Rng;
use crate::units::SimDuration;

/// Budget-cutting passes before late devices are left out one by one.
pub const FREE_PASSES: u32 = 16;
/// Cut beyond a late device's lateness [s].
const MARGIN_S: f64 = 1e-6;

/// Wraps an allocator with the round's prediction (see the module doc).
pub struct RoundPlanner {
    pub inner: Box<dyn Allocator>,
}

impl Allocator for RoundPlanner {
    fn decide(&mut self, p: &Problem, rng: &mut Rng) -> Decision {
        let Some(m) = p.round_model.as_ref() else { return self.inner.decide(p, rng) };
        let queues = m.discipline != ServerDisciplineKind::Ideal || m.relay;
        let mut d;
        if m.sync {
            let (q, extended) = sync_budgets(p);
            d = self.inner.decide(&q, rng);
            fill_free_rbs(&q, &mut d, m.quantized);
            d.budgets_s = extended;
        } else {
            d = self.inner.decide(p, rng);
            if m.queue_aware && queues && self.inner.uses_budgets() {
                d = self.around_the_queue(p, d, rng);
            }
        }
        if let Some(fin) = finish_times(p, &d.assignments) {
            for (a, f) in d.assignments.iter_mut().zip(fin) {
                a.time_s = f.as_secs_f64();
            }
        }
        d
    }

    fn in_parallel(&self) -> bool {
        self.inner.in_parallel()
    }

    fn uses_budgets(&self) -> bool {
        self.inner.uses_budgets()
    }
}

/// How late devices are brought back to the deadline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// Cut every late device's budget by its lateness, for
    /// [`FREE_PASSES`] passes; then leave out the latest one per pass.
    Cut,
    /// Leave out the latest device, one per pass.
    Drop,
}

impl RoundPlanner {
    /// Both ways of settling, from the same queue-blind start; the plan
    /// with the higher objective wins (`Cut` on a tie). Cutting spreads
    /// arrivals over the server's idle time at the round's start but can
    /// push a whole pack of devices ahead together; dropping keeps the
    /// cheap slow uploads of the devices that stay.
    fn around_the_queue(&mut self, p: &Problem, d: Decision, rng: &mut Rng) -> Decision {
        let cut = self.settle(p, d.clone(), Settle::Cut, rng);
        let drop = self.settle(p, d, Settle::Drop, rng);
        if drop.objective_j > cut.objective_j { drop } else { cut }
    }

    fn settle(&mut self, p: &Problem, mut d: Decision, how: Settle, rng: &mut Rng) -> Decision {
        let Some(deadline) = SimDuration::from_secs_f64(p.deadline_s) else { return d };
        let n = p.candidates.len();
        let free = if how == Settle::Cut { FREE_PASSES } else { 0 };
        let mut q: Option<Problem> = None;
        let mut squeezed = vec![false; n];
        // The first inner decision that did not converge taints the plan.
        let mut unconverged = d.unconverged.take();
        let passes = free + n as u32 + 1;
        let mut settled = false;
        for pass in 0..passes {
            let cur = q.as_ref().unwrap_or(p);
            let Some(fin) = finish_times(cur, &d.assignments) else {
                settled = true;
                break;
            };
            // (candidate, lateness [ns]) of every late device.
            let late: Vec<(usize, u64)> = d
                .assignments
                .iter()
                .zip(&fin)
                .filter(|(_, f)| **f > deadline)
                .map(|(a, f)| (a.candidate, f.0 - deadline.0))
                .collect();
            if late.is_empty() {
                settled = true;
                break;
            }
            let q = q.get_or_insert_with(|| p.clone());
            if pass < free {
                for &(c, ns) in &late {
                    q.candidates[c].uplink_time_s -= ns as f64 * 1e-9 + MARGIN_S;
                    squeezed[c] = true;
                }
            } else {
                // The latest device (the first by candidate on a tie) goes.
                let &(c, _) = late.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).expect("not empty");
                // No time left for its uploads: infeasible to any allocator.
                q.candidates[c].uplink_time_s = 0.0;
                squeezed[c] = true;
            }
            d = self.inner.decide(q, rng);
            if unconverged.is_none() {
                unconverged = d.unconverged.take();
            }
        }
        // Every pass leaves out one more late device once the free passes
        // are spent, so the loop settles before its bound; not settling is
        // a bug to report, not a plan to run.
        if !settled && unconverged.is_none() {
            unconverged = Some(format!(
                "the queue-aware planner still had late devices after its {passes} passes \
                 ({FREE_PASSES} budget cuts, then one device left out per pass); \
                 allocator.queue_aware = false plans without it"
            ));
        }
        d.unconverged = unconverged;
        if let Some(q) = q {
            for (i, _, why) in &mut d.excluded {
                if squeezed[*i] && *why != Exclusion::NoResourceBlock {
                    *why = Exclusion::ServerBusy;
                }
            }
            d.budgets_s = (0..n).filter(|&i| squeezed[i]).map(|i| (i, q.candidates[i].uplink_time_s)).collect();
        }
        d
    }
}

/// Sync rounds have no deadline, so none may be infeasible for missing it:
/// a candidate whose upload budget is too short even at p_max on its best
/// RB at the largest payload any plan sends (fp32) gets just that time
/// instead, and competes for the RBs by value like the others. Returns the
/// problem planned and the (candidate, budget [s]) pairs extended.
fn sync_budgets(p: &Problem) -> (Problem, Vec<(usize, f64)>) {
    let bits = 32;
    let mut q = p.clone();
    let mut extended = Vec::new();
    for (i, c) in q.candidates.iter_mut().enumerate() {
        let best = c.gains.iter().copied().fold(0.0, f64::max);
        let rate = crate::net::rate_bps(p.rb_bandwidth_hz, c.p_max_w, best, p.noise_w);
        // Twice the rounding guard and a relative hair: p_max then fits.
        let need = (p.round_upload_bits(c, bits) / rate) * (1.0 + 1e-9) + 2.0 * p.guard_s(c);
        if c.uplink_time_s < need {
            c.uplink_time_s = need;
            extended.push((i, need));
        }
    }
    (q, extended)
}

/// Sync rounds: every candidate left out takes a free RB while any is
/// left, at p_max and its fastest bits; those still left out had no RB.
fn fill_free_rbs(p: &Problem, d: &mut Decision, quantized: bool) {
    let mut used = vec![false; p.rb_count];
    for a in &d.assignments {
        used[a.rb] = true;
    }
    let free: Vec<usize> = (0..p.rb_count).filter(|&k| !used[k]).collect();
    let left: Vec<usize> = d.excluded.iter().map(|e| e.0).collect();
    if free.is_empty() || left.is_empty() {
        return;
    }
    // Best total spectral efficiency at p_max [bit/s/Hz].
    let w: Vec<f64> = left
        .iter()
        .flat_map(|&i| {
            let c = &p.candidates[i];
            free.iter().map(move |&k| (c.p_max_w * c.gains[k] / p.noise_w).ln_1p())
        })
        .collect();
    let bits = if quantized { p.bits_min } else { 32 };
    let mut placed = vec![false; p.candidates.len()];
    for (r, col) in max_weight(left.len(), free.len(), &w) {
        let i = left[r];
        d.assignments.push(p.price(i, free[col], bits, p.candidates[i].p_max_w));
        placed[i] = true;
    }
    d.excluded.retain(|e| !placed[e.0]);
    for e in &mut d.excluded {
        e.2 = Exclusion::NoResourceBlock;
    }
    let taken = std::mem::take(d);
    *d = taken.finish(p, |_| Exclusion::NoResourceBlock);
}
