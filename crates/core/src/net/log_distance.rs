use super::PathLoss;
use crate::units::Db;

/// Log-distance path loss PL(d) = intercept + slope * log10(d / 1 km) [dB]
/// (SPEC section 4; the 3GPP macro-cell model 128.1 + 37.6 log10(d km)).
#[derive(Clone, Debug)]
pub struct LogDistance {
    /// Loss at 1 km [dB]. Default 128.1.
    pub intercept_db: f64,
    /// Slope [dB per decade]. Default 37.6.
    pub slope_db: f64,
}

impl PathLoss for LogDistance {
    fn loss_db(&self, distance_m: f64) -> Db {
        Db(self.intercept_db + self.slope_db * (distance_m / 1000.0).log10())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_km_is_the_intercept() {
        let pl = LogDistance { intercept_db: 128.1, slope_db: 37.6 };
        assert!((pl.loss_db(1000.0).0 - 128.1).abs() < 1e-12);
        assert!((pl.loss_db(100.0).0 - (128.1 - 37.6)).abs() < 1e-12);
    }
}
