//! The uplink channel of one round (SPEC section 4), composed from small
//! models as ns-3 composes its propagation: a [`PathLoss`], the device's
//! fixed shadowing, and a [`Fading`] that owns its stream.

use crate::config::NetworkConfig;
use crate::net::{Fading, PathLoss, fading_from, large_scale_gain, path_loss_from};
use crate::sim::rng::Rng;
use crate::units::Db;

pub struct Channel {
    path_loss: Box<dyn PathLoss>,
    fading: Box<dyn Fading>,
}

impl Channel {
    /// The scenario's channel; `fading_rng` is the fading's stream.
    pub fn new(cfg: &NetworkConfig, fading_rng: Rng) -> Channel {
        Channel { path_loss: path_loss_from(cfg), fading: fading_from(cfg.fading, fading_rng) }
    }

    /// The path-loss model (association and interference use it too).
    pub fn path_loss(&self) -> &dyn PathLoss {
        self.path_loss.as_ref()
    }

    /// Gains [1] of a device at `distance_m` [m] with shadowing
    /// `shadowing_db` [dB] on each of `rb_count` RBs, one fading draw per RB.
    pub fn gains(&mut self, distance_m: f64, shadowing_db: f64, rb_count: usize) -> Vec<f64> {
        let large = large_scale_gain(self.path_loss.loss_db(distance_m), Db(shadowing_db));
        (0..rb_count).map(|_| large * self.fading.power_gain()).collect()
    }
}
