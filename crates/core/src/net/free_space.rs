use super::PathLoss;
use crate::units::Db;

/// Free-space (Friis) path loss: 20 log10(4 π d f / c) [dB].
#[derive(Clone, Debug)]
pub struct FreeSpace {
    /// Carrier frequency [Hz]. Default 2e9.
    pub carrier_hz: f64,
}

/// Speed of light [m/s].
const C_MPS: f64 = 299_792_458.0;

impl PathLoss for FreeSpace {
    fn loss_db(&self, distance_m: f64) -> Db {
        Db(20.0 * (4.0 * std::f64::consts::PI * distance_m * self.carrier_hz / C_MPS).log10())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friis_at_one_km_two_ghz() {
        // 20 log10(4π·1000·2e9/c) = 98.46 dB.
        let l = FreeSpace { carrier_hz: 2e9 }.loss_db(1000.0).0;
        assert!((l - 98.459).abs() < 1e-2, "{l}");
    }
}
