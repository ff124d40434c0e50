//! The device population (struct of arrays indexed by [`DeviceId`]),
//! the computation model of eq. 9 and 10, availability and mobility.

mod availability;
mod mobility;
pub mod table;
pub mod trace;

pub use availability::Availability;
pub use mobility::Mobility;

use crate::config::Scenario;
use crate::error::Result;
use crate::geo::{CellId, Cells, Position};
use crate::net::PathLoss;
use crate::sim::rng::{Rng, stream};
use rand_distr::{Distribution, Normal, Uniform};

/// A device, as an index into the population tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct DeviceId(pub u32);

impl DeviceId {
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

/// Static and slowly-changing device attributes, one vector per attribute
/// so that a million devices stay compact.
#[derive(Clone, Debug, Default)]
pub struct Population {
    /// Current distance to the server [m].
    pub distance_m: Vec<f64>,
    /// Time of the last distance update [s].
    pub distance_at_s: Vec<f64>,
    /// Maximum transmit power p_max [W].
    pub p_max_w: Vec<f64>,
    /// GPU frequency f_n [Hz].
    pub gpu_freq_hz: Vec<f64>,
    /// GPU cores C_n [1].
    pub cores: Vec<u32>,
    /// FLOPs per cycle per core D_n [FLOP/cycle].
    pub flops_per_cycle: Vec<f64>,
    /// Local data size [samples].
    pub samples: Vec<u64>,
    /// Log-normal shadowing, fixed per device, towards its home cell [dB].
    pub shadowing_db: Vec<f64>,
    /// Home cell: the site `distance_m` is measured from (`crate::geo`).
    pub home: Vec<CellId>,
    /// Direction from the home site [rad].
    pub angle_rad: Vec<f64>,
    /// The cell the device last associated with.
    pub cell: Vec<CellId>,
}

impl Population {
    /// Draws the population from the scenario's distributions, from the
    /// `population` stream.
    pub fn draw(s: &Scenario) -> Population {
        let d = &s.devices;
        let n = d.count;
        let mut rng: Rng = stream(s.run.seed, "population", 0);
        let uni = |lo: f64, hi: f64| Uniform::new_inclusive(lo, hi).expect("validated range");
        let dist = uni(d.distance_min_m, d.distance_max_m);
        let pmax = uni(d.p_max_min_w, d.p_max_max_w);
        let freq = uni(d.gpu_freq_min_hz, d.gpu_freq_max_hz);
        let cores = Uniform::new_inclusive(d.cores_min, d.cores_max).expect("validated range");
        let samples = Uniform::new_inclusive(d.samples_min, d.samples_max).expect("validated range");
        let shadow = Normal::new(0.0, s.network.shadowing_std_db).expect("validated std");
        let mut p = Population {
            distance_m: Vec::with_capacity(n),
            distance_at_s: vec![0.0; n],
            p_max_w: Vec::with_capacity(n),
            gpu_freq_hz: Vec::with_capacity(n),
            cores: Vec::with_capacity(n),
            flops_per_cycle: vec![d.flops_per_cycle; n],
            samples: Vec::with_capacity(n),
            shadowing_db: Vec::with_capacity(n),
            home: vec![0; n],
            angle_rad: vec![0.0; n],
            cell: vec![0; n],
        };
        for _ in 0..n {
            p.distance_m.push(dist.sample(&mut rng));
            p.p_max_w.push(pmax.sample(&mut rng));
            p.gpu_freq_hz.push(freq.sample(&mut rng));
            p.cores.push(cores.sample(&mut rng));
            p.samples.push(samples.sample(&mut rng));
            let sh = if s.network.shadowing_std_db > 0.0 { shadow.sample(&mut rng) } else { 0.0 };
            p.shadowing_db.push(sh);
        }
        // Draws go device by device, so device i is the same whatever
        // `count` is above i.
        p
    }

    /// Places the devices on the map of `cells` (`devices.placement`) and
    /// associates each with its initial cell.
    pub fn place(&mut self, s: &Scenario, cells: &Cells, pl: &dyn PathLoss) -> Result<()> {
        let at = crate::geo::place(s, cells, &mut self.distance_m)?;
        for (i, p) in at.iter().enumerate() {
            self.home[i] = p.home;
            self.angle_rad[i] = p.angle_rad;
            self.cell[i] = cells.associate(pl, i as u32, p, self.shadowing_db[i]).0;
        }
        Ok(())
    }

    /// Where device `id` stands now.
    pub fn position(&self, id: DeviceId) -> Position {
        let i = id.idx();
        Position { home: self.home[i], radial_m: self.distance_m[i], angle_rad: self.angle_rad[i] }
    }

    pub fn len(&self) -> usize {
        self.distance_m.len()
    }

    pub fn is_empty(&self) -> bool {
        self.distance_m.is_empty()
    }

    /// Device throughput f_n C_n D_n [FLOP/s].
    pub fn flops_per_s(&self, id: DeviceId) -> f64 {
        let i = id.idx();
        self.gpu_freq_hz[i] * self.cores[i] as f64 * self.flops_per_cycle[i]
    }

    /// Computation power κ C_n f_n^3 [W] (eq. 10 divided by time).
    pub fn compute_power_w(&self, id: DeviceId, kappa: f64) -> f64 {
        let i = id.idx();
        kappa * self.cores[i] as f64 * self.gpu_freq_hz[i].powi(3)
    }
}

/// Eq. 9 (device) and eq. 11 (server): time to compute `flops` [FLOP] at
/// `flops_per_s` [FLOP/s] [s].
#[inline]
pub fn compute_time_s(flops: f64, flops_per_s: f64) -> f64 {
    flops / flops_per_s
}
