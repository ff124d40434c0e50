//! `rb` — random RB assignment, power and bits optimized (a baseline of
//! the paper).

use super::pairwise::{BitsRule, Levels, PowerRule};
use super::{Allocator, Decision, Exclusion, Problem};
use crate::sim::rng::Rng;
use rand::seq::index::sample;

pub struct RandomRb;

impl Allocator for RandomRb {
    fn decide(&mut self, p: &Problem, rng: &mut Rng) -> Decision {
        let n = p.candidates.len();
        let m = n.min(p.rb_count);
        let chosen = sample(rng, n, m).into_vec();
        let rbs = sample(rng, p.rb_count, m).into_vec();
        let mut d = Decision { iterations: 1, ..Default::default() };
        for (i, k) in chosen.into_iter().zip(rbs) {
            let levels = Levels::new(p, i, BitsRule::Search);
            match levels.best(p, i, k, PowerRule::MinFeasible) {
                Some((b, pw, v)) if v > 0.0 => d.assignments.push(p.price(i, k, b, pw)),
                Some(_) => d.excluded.push((i, p.candidates[i].device, Exclusion::NotWorthwhile)),
                None => d.excluded.push((i, p.candidates[i].device, Exclusion::Infeasible)),
            }
        }
        d.finish(p, |_| Exclusion::NoResourceBlock)
    }
}
