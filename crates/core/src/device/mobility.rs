//! Distance changes between rounds.
//!
//! `random-walk` is a Brownian motion of the distance reflected into
//! [d_min, d_max]. It is updated lazily, when a device becomes a candidate:
//! folding one Gaussian increment of variance σ²Δt into the interval is the
//! exact law of reflected Brownian motion after Δt, so lazy updates lose
//! nothing and cost nothing for devices that are never picked.

use crate::config::{MobilityConfig, MobilityKind};
use crate::sim::rng::Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct Mobility {
    kind: MobilityKind,
    /// [m/√s]
    sigma: f64,
    /// [m]
    lo_m: f64,
    /// [m]
    hi_m: f64,
}

impl Mobility {
    pub fn new(cfg: &MobilityConfig, lo_m: f64, hi_m: f64) -> Mobility {
        Mobility { kind: cfg.model, sigma: cfg.step_std_m_per_sqrt_s, lo_m, hi_m }
    }

    /// The distance [m] from the home site after `elapsed_s` [s] starting
    /// from `d_m` [m]. A device placed beyond `distance_max_m` (placements
    /// other than `ring`) walks within [min, its current distance].
    pub fn advance(&self, d_m: f64, elapsed_s: f64, rng: &mut Rng) -> f64 {
        match self.kind {
            MobilityKind::Static => d_m,
            MobilityKind::RandomWalk => {
                let hi = self.hi_m.max(d_m);
                if elapsed_s <= 0.0 || hi <= self.lo_m {
                    return d_m;
                }
                let z: f64 = StandardNormal.sample(rng);
                fold(d_m + self.sigma * elapsed_s.sqrt() * z, self.lo_m, hi)
            }
        }
    }
}

/// Reflects `x` into [lo, hi] (period 2(hi - lo)).
pub fn fold(x: f64, lo: f64, hi: f64) -> f64 {
    let w = hi - lo;
    let y = (x - lo).rem_euclid(2.0 * w);
    lo + if y > w { 2.0 * w - y } else { y }
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn fold_reflects() {
        assert_eq!(fold(5.0, 0.0, 10.0), 5.0);
        assert_eq!(fold(12.0, 0.0, 10.0), 8.0);
        assert_eq!(fold(-3.0, 0.0, 10.0), 3.0);
        assert_eq!(fold(23.0, 0.0, 10.0), 3.0);
    }
}
