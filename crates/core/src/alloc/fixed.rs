use super::assign::random_matching;
use super::{Allocator, Decision, Exclusion, Problem};
use crate::sim::rng::Rng;

/// The simplest policy: up to K random candidates on random RBs, each at
/// p_max with fixed bits. Devices that then miss the deadline become
/// stragglers in the simulation.
pub struct Fixed {
    /// [bit]
    pub bits: u32,
}

impl Allocator for Fixed {
    fn decide(&mut self, p: &Problem, rng: &mut Rng) -> Decision {
        let mut d = Decision { iterations: 1, ..Default::default() };
        for (cand, k) in random_matching(p.candidates.len(), p.rb_count, rng) {
            let pw = p.candidates[cand].p_max_w;
            d.assignments.push(p.price(cand, k, self.bits, pw));
        }
        d.finish(p, |_| Exclusion::NoResourceBlock)
    }

    fn uses_budgets(&self) -> bool {
        false
    }
}
