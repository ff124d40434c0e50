//! `rb` — random RB assignment, power and bits optimized (a baseline of
//! the paper).

use super::assign::random_matching;
use super::pairwise::{BitsRule, Levels, PowerRule};
use super::{Allocator, Decision, Exclusion, Problem};
use crate::sim::rng::Rng;

pub struct RandomRb;

impl Allocator for RandomRb {
    fn decide(&mut self, p: &Problem, rng: &mut Rng) -> Decision {
        let mut d = Decision { iterations: 1, ..Default::default() };
        for (i, k) in random_matching(p.candidates.len(), p.rb_count, rng) {
            let levels = Levels::new(p, i, BitsRule::Search, PowerRule::MinFeasible);
            match levels.best(p, i, k) {
                Some((b, pw, v)) if v > 0.0 => d.assignments.push(p.price(i, k, b, pw)),
                Some(_) => d.excluded.push((i, p.candidates[i].device, Exclusion::NotWorthwhile)),
                None => d.excluded.push((i, p.candidates[i].device, Exclusion::Infeasible)),
            }
        }
        d.finish(p, |_| Exclusion::NoResourceBlock)
    }
}
