use super::Fading;
use crate::sim::rng::Rng;
use rand_distr::{Distribution, Exp1};

/// Rayleigh fading: the power gain is Exp(1), drawn per device, RB and
/// round from its own stream (`"channel"`).
pub struct Rayleigh {
    pub rng: Rng,
}

impl Fading for Rayleigh {
    #[inline]
    fn power_gain(&mut self) -> f64 {
        <Exp1 as Distribution<f64>>::sample(&Exp1, &mut self.rng)
    }
}
