//! The OFDMA uplink (SPEC section 4): path loss, shadowing, fading and the
//! Shannon rate of eq. 12. One small trait per physical model, one file per
//! implementation.
//!
//! ```
//! use sflam_core::net::{LogDistance, PathLoss, large_scale_gain, rate_bps, noise_w};
//! use sflam_core::units::Db;
//! // SPEC section 4: 128.1 + 37.6 log10(d / 1 km) dB, so 128.1 dB at 1 km.
//! let pl = LogDistance { intercept_db: 128.1, slope_db: 37.6 };
//! assert!((pl.loss_db(1000.0).0 - 128.1).abs() < 1e-12);
//! assert!((pl.loss_db(100.0).0 - (128.1 - 37.6)).abs() < 1e-12);
//! // Eq. 12 at 1 W over a 20 MHz RB, 500 m away, no shadowing.
//! let h = large_scale_gain(pl.loss_db(500.0), Db(0.0));
//! let r = rate_bps(20e6, 1.0, h, noise_w(-174.0, 20e6));
//! assert!(r > 1e6 && r < 1e9, "{r}");
//! ```

mod free_space;
mod log_distance;
mod no_fading;
mod rayleigh;

pub use free_space::FreeSpace;
pub use log_distance::LogDistance;
pub use no_fading::NoFading;
pub use rayleigh::Rayleigh;

use crate::config::{FadingKind, NetworkConfig, PathLossKind};
use crate::sim::rng::Rng;
use crate::units::{Db, Dbm};

/// A deterministic distance-dependent path loss.
pub trait PathLoss: Send + Sync {
    /// Loss at distance `distance_m` [m] [dB].
    fn loss_db(&self, distance_m: f64) -> Db;
}

/// Small-scale fading: one power gain [1] per device, RB and round, drawn
/// from the model's own stream.
pub trait Fading: Send {
    fn power_gain(&mut self) -> f64;
}

/// Builds the scenario's fading model; `rng` is its stream.
pub fn fading_from(kind: FadingKind, rng: Rng) -> Box<dyn Fading> {
    match kind {
        FadingKind::Rayleigh => Box::new(Rayleigh { rng }),
        FadingKind::None => Box::new(NoFading),
    }
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
