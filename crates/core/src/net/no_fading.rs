use super::Fading;

/// No small-scale fading: the power gain is 1 and nothing is drawn.
pub struct NoFading;

impl Fading for NoFading {
    #[inline]
    fn power_gain(&mut self) -> f64 {
        1.0
    }
}
