//! The OFDMA uplink (SPEC section 4): path loss, shadowing, fading and the
//! Shannon rate of eq. 12. One small trait per physical model, one file per
//! implementation.

mod free_space;
mod log_distance;

pub use free_space::FreeSpace;
pub use log_distance::LogDistance;

use crate::config::{NetworkConfig, PathLossKind};
use crate::units::{Db, Dbm};

/// A deterministic distance-dependent path loss.
pub trait PathLoss: Send + Sync {
    /// Loss at distance `distance_m` [m] [dB].
    fn loss_db(&self, distance_m: f64) -> Db;
}

/// Builds the scenario's path-loss model.
pub fn path_loss_from(cfg: &NetworkConfig) -> Box<dyn PathLoss> {
    match cfg.path_loss {
        PathLossKind::LogDistance => {
            Box::new(LogDistance { intercept_db: cfg.path_loss_intercept_db, slope_db: cfg.path_loss_slope_db })
        }
        PathLossKind::FreeSpace => Box::new(FreeSpace { carrier_hz: cfg.carrier_hz }),
    }
}

/// Noise power over one RB, N0 * B [W].
pub fn noise_w(noise_dbm_per_hz: f64, bandwidth_hz: f64) -> f64 {
    Dbm(noise_dbm_per_hz).to_watts() * bandwidth_hz
}

/// Eq. 12: achievable rate [bit/s] at power `power_w` [W] over gain
/// `gain` [1] on bandwidth `bandwidth_hz` [Hz] with noise `noise_w` [W].
#[inline]
pub fn rate_bps(bandwidth_hz: f64, power_w: f64, gain: f64, noise_w: f64) -> f64 {
    bandwidth_hz * (power_w * gain / noise_w).ln_1p() / std::f64::consts::LN_2
}

/// The large-scale gain [1] = 10^(-(PL + shadowing)/10).
#[inline]
pub fn large_scale_gain(loss: Db, shadowing: Db) -> f64 {
    Db(-(loss.0 + shadowing.0)).to_linear()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_matches_shannon() {
        // SNR 1 -> 1 bit/s/Hz.
        assert!((rate_bps(1e6, 1.0, 1.0, 1.0) - 1e6).abs() < 1e-6);
        assert!((rate_bps(2e6, 3.0, 1.0, 1.0) - 4e6).abs() < 1e-6);
    }
}
