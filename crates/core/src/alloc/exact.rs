//! `exact` — the joint optimum of SPEC section 6 — and the `ep` and `nq`
//! baselines, which are the same enumeration with power or bits pinned.
//!
//! For a fixed (device, RB, bits) the energy-minimal power is closed-form,
//! so every (device, RB) pair has a best value by enumeration over bits; one
//! maximum-weight assignment over those values is then the global optimum.

use super::assign::max_weight;
use super::pairwise::{BitsRule, Levels, PowerRule};
use super::{Allocator, Decision, Exclusion, Problem};
use crate::sim::rng::Rng;

/// Enumerate pairs, then one assignment.
pub struct Enumerate {
    pub power: PowerRule,
    pub bits: BitsRule,
}

impl Enumerate {
    /// `exact`: closed-form power, bits searched.
    pub fn exact() -> Enumerate {
        Enumerate { power: PowerRule::MinFeasible, bits: BitsRule::Search }
    }
    /// `ep`: every device at p_max, bits and matching optimized.
    pub fn equal_power() -> Enumerate {
        Enumerate { power: PowerRule::Max, bits: BitsRule::Search }
    }
    /// `nq`: fp32 activations, power and matching optimized.
    pub fn no_quantization() -> Enumerate {
        Enumerate { power: PowerRule::MinFeasible, bits: BitsRule::Fp32 }
    }
    /// `ep` without quantization: p_max, fp32, matching optimized (the fp32
    /// counterpart of `ep` for the frameworks that do not quantize).
    pub fn equal_power_fp32() -> Enumerate {
        Enumerate { power: PowerRule::Max, bits: BitsRule::Fp32 }
    }
}

impl Allocator for Enumerate {
    fn decide(&mut self, p: &Problem, _rng: &mut Rng) -> Decision {
        let (n, k) = (p.candidates.len(), p.rb_count);
        let mut w = vec![0.0; n * k];
        let mut level = vec![0u64; k];
        let mut reason = vec![Exclusion::Infeasible; n];
        let mut levels = Vec::with_capacity(n);
        for i in 0..n {
            let l = Levels::new(p, i, self.bits, self.power);
            let row = &mut w[i * k..(i + 1) * k];
            l.values_into(p, i, row, &mut level);
            for v in row.iter_mut() {
                if *v > 0.0 {
                    reason[i] = Exclusion::NoResourceBlock;
                } else {
                    if *v > f64::NEG_INFINITY && reason[i] == Exclusion::Infeasible {
                        reason[i] = Exclusion::NotWorthwhile;
                    }
                    *v = 0.0;
                }
            }
            levels.push(l);
        }
        let mut d = Decision { iterations: 1, ..Default::default() };
        for (i, j) in max_weight(n, k, &w) {
            // Re-derive the matched pair's bits and power (cheap: <= K pairs).
            if let Some((b, pw, _)) = levels[i].best(p, i, j) {
                d.assignments.push(p.price(i, j, b, pw));
            }
        }
        d.finish(p, |i| reason[i])
    }
}
