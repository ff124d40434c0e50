//! Units. Simulated time is an integer newtype ([`SimTime`], an instant in
//! nanoseconds; [`SimDuration`], a length of time) so that event ordering
//! never depends on float equality. Physical quantities
//! are `f64` with the unit in the name (`_w`, `_hz`, `_s`, `_j`, `_bits`,
//! `_m`); the only quantities that need a conversion with a trap in it —
//! decibels — get newtypes ([`Db`], [`Dbm`]) so that dB never meets watts
//! unnamed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Simulated time [ns since the start of the run].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SimTime(pub u64);

/// Nanoseconds per second.
pub const NS_PER_S: f64 = 1e9;

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// The instant `s` [s] after the start, rounded to the nearest
    /// nanosecond; `None` for NaN, negative, infinite or out-of-range input.
    pub fn from_secs_f64(s: f64) -> Option<SimTime> {
        SimDuration::from_secs_f64(s).map(|d| SimTime(d.0))
    }

    /// The time since the start [s].
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S
    }

    /// `self + d`, `None` on overflow.
    pub fn checked_add(self, d: SimDuration) -> Option<SimTime> {
        self.0.checked_add(d.0).map(SimTime)
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    pub fn saturating_sub(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

/// A simulated duration [ns]: the difference of two [`SimTime`]s. An
/// instant plus a duration is an instant; two instants do not add.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SimDuration(pub u64);

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    /// Converts a duration [s] to [ns], rounding to the nearest nanosecond.
    /// Returns `None` for NaN, negative, infinite or out-of-range input: the
    /// caller names the checkpoint where that happened.
    pub fn from_secs_f64(s: f64) -> Option<SimDuration> {
        if !s.is_finite() || s < 0.0 {
            return None;
        }
        let ns = (s * NS_PER_S).round();
        if ns >= u64::MAX as f64 {
            return None;
        }
        Some(SimDuration(ns as u64))
    }

    /// The duration [s].
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S
    }
}

/// Saturates at [`SimTime::MAX`] (never reached by a validated run).
impl std::ops::Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Add for SimDuration {
    type Output = SimDuration;
    fn add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::AddAssign for SimDuration {
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

impl std::ops::Mul<u32> for SimDuration {
    type Output = SimDuration;
    fn mul(self, k: u32) -> SimDuration {
        SimDuration(self.0.saturating_mul(k as u64))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.9} s", self.as_secs_f64())
    }
}

/// A power ratio or gain [dB].
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Db(pub f64);

impl Db {
    /// The linear ratio [1] = 10^(dB/10).
    pub fn to_linear(self) -> f64 {
        10f64.powf(self.0 / 10.0)
    }
}

/// An absolute power (or power spectral density when the name says so)
/// [dBm, or dBm/Hz].
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Dbm(pub f64);

impl Dbm {
    /// The same power [W] (or [W/Hz] for a density).
    pub fn to_watts(self) -> f64 {
        10f64.powf((self.0 - 30.0) / 10.0)
    }
}

/// Bits per mebibyte-of-f32 conversions used by the workload model.
pub const BITS_PER_BYTE: f64 = 8.0;
/// Bytes in one MiB [B].
pub const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simtime_round_trip_and_rejects_bad_input() {
        assert_eq!(SimTime::from_secs_f64(1.5), Some(SimTime(1_500_000_000)));
        assert_eq!(SimTime::from_secs_f64(-1.0), None);
        assert_eq!(SimTime::from_secs_f64(f64::NAN), None);
        assert_eq!(SimTime::from_secs_f64(f64::INFINITY), None);
        assert_eq!(SimTime(2_000_000_000).as_secs_f64(), 2.0);
        assert_eq!(SimTime(5) + SimDuration(3), SimTime(8));
        assert_eq!(SimTime(5).saturating_sub(SimTime(8)), SimDuration::ZERO);
        assert_eq!(SimTime(8).saturating_sub(SimTime(5)), SimDuration(3));
    }

    #[test]
    fn decibel_conversions() {
        assert!((Dbm(30.0).to_watts() - 1.0).abs() < 1e-12);
        // -174 dBm/Hz is 3.98e-21 W/Hz.
        assert!((Dbm(-174.0).to_watts() / 3.981_071_705_534_97e-21 - 1.0).abs() < 1e-9);
        assert!((Db(10.0).to_linear() - 10.0).abs() < 1e-12);
    }
}
