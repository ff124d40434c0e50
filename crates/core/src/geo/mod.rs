//! The map (multi-cell deployments): base stations with their RBs and edge
//! servers, device positions, association and link gains.
//!
//! A device stands at `home cell's site + radial_m (cos angle, sin angle)`:
//! its radial distance is the population's `distance_m`, so that the
//! paper's single cell (one site at the origin, `placement = "ring"`) is
//! the special case in which every distance, draw and trace is what it was
//! before cells existed. Mobility moves the radial distance (the position
//! moves along the ray from the home site); association to the nearest or
//! strongest site is re-evaluated whenever the device becomes a candidate.
//!
//! - `table.rs`: cell and position tables from CSV or Parquet.

mod table;

pub use table::{Column, read_columns};

/// A site's or device's coordinate on the plane [m]: within 10,000 km of
/// the origin, so that distances and path losses stay finite.
pub const COORD_LIMIT_M: f64 = 1e7;

use crate::config::{Association, CellLayout, Placement, Scenario};
use crate::error::{Error, Result};
use crate::net::{PathLoss, large_scale_gain};
use crate::sim::rng::{Rng, stream};
use crate::units::Db;
use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use std::path::Path;

/// A cell's index into [`Cells`].
pub type CellId = u32;

/// One cell: a base station and its edge server.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Site position [m].
    pub x_m: f64,
    /// [m]
    pub y_m: f64,
    /// Resource blocks of this cell [1].
    pub rb_count: usize,
    /// Reuse colour: cells of one colour share a band [1].
    pub colour: u32,
    /// Edge-server GPU cores, when the cell table gives them [1].
    pub server_cores: Option<f64>,
    /// Edge-server GPU frequency, when the cell table gives it [Hz].
    pub server_freq_hz: Option<f64>,
}

/// Every cell of the deployment.
#[derive(Clone, Debug)]
pub struct Cells {
    pub cells: Vec<Cell>,
    association: Association,
    /// Smallest distance the path loss is evaluated at [m].
    min_distance_m: f64,
    shadowing_std_db: f64,
    seed: u64,
}

/// Axial coordinates of the first `n` cells of a hexagonal grid, ring by
/// ring outwards from (0, 0).
pub fn hex_spiral(n: usize) -> Vec<(i64, i64)> {
    const DIRS: [(i64, i64); 6] = [(1, 0), (1, -1), (0, -1), (-1, 0), (-1, 1), (0, 1)];
    let mut out = vec![(0, 0)];
    let mut k = 1i64;
    while out.len() < n {
        let (mut q, mut r) = (DIRS[4].0 * k, DIRS[4].1 * k);
        for d in DIRS {
            for _ in 0..k {
                out.push((q, r));
                q += d.0;
                r += d.1;
            }
        }
        k += 1;
    }
    out.truncate(n);
    out
}

/// The reuse colour of axial hex cell (q, r) for reuse factor `k`: for
/// k >= 3, (q + s r) mod k with s = 3 for k = 7 (the classic 7-cell
/// cluster) and 2 otherwise, so that no two neighbours share a colour.
pub fn hex_colour(q: i64, r: i64, k: usize) -> u32 {
    let k = k as i64;
    let s = if k == 7 { 3 } else { 2 };
    (q + s * r).rem_euclid(k) as u32
}

impl Cells {
    /// The scenario's cells (`[cells]`); random layouts draw from the
    /// `"cells"` stream, a table's per-cell server from its columns.
    pub fn build(s: &Scenario) -> Result<Cells> {
        let c = &s.cells;
        let rb = s.network.rb_count;
        let plain = |x_m: f64, y_m: f64, colour: u32| Cell {
            x_m,
            y_m,
            rb_count: rb,
            colour,
            server_cores: None,
            server_freq_hz: None,
        };
        let cells = match c.layout {
            CellLayout::Hex => hex_spiral(c.count)
                .into_iter()
                .map(|(q, r)| {
                    let (x, y) = hex_position(q, r, c.inter_site_m);
                    plain(x, y, hex_colour(q, r, c.reuse))
                })
                .collect(),
            CellLayout::Random => {
                let side = (c.count as f64).sqrt() * c.inter_site_m;
                let mut rng: Rng = stream(s.run.seed, "cells", 0);
                (0..c.count)
                    .map(|i| {
                        let x = if c.count == 1 { 0.0 } else { (rng.random::<f64>() - 0.5) * side };
                        let y = if c.count == 1 { 0.0 } else { (rng.random::<f64>() - 0.5) * side };
                        plain(x, y, (i % c.reuse) as u32)
                    })
                    .collect()
            }
            CellLayout::File => read_cells(Path::new(&c.file), c.count, rb, c.reuse)?,
        };
        Ok(Cells {
            cells,
            association: c.association,
            min_distance_m: s.devices.distance_min_m,
            shadowing_std_db: s.network.shadowing_std_db,
            seed: s.run.seed,
        })
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Distance [m] from (x, y) [m] to cell `c`'s site.
    pub fn site_distance_m(&self, c: CellId, x_m: f64, y_m: f64) -> f64 {
        let s = &self.cells[c as usize];
        (x_m - s.x_m).hypot(y_m - s.y_m)
    }

    /// The link distance [m] the path loss is evaluated at: the distance
    /// to the site, at least `devices.distance_min_m` (where the model
    /// holds).
    fn link_m(&self, d_m: f64) -> f64 {
        d_m.max(self.min_distance_m)
    }

    /// The shadowing [dB] of the link from device `dev` to cell `c`: the
    /// device's own draw towards its home cell (the single cell's
    /// shadowing, unchanged), an independent draw of the same law towards
    /// every other cell (counter-based: fixed per link, no storage).
    pub fn link_shadowing_db(&self, dev: u32, home: CellId, own_db: f64, c: CellId) -> f64 {
        if c == home || self.shadowing_std_db == 0.0 {
            return own_db;
        }
        let mut rng: Rng = stream(self.seed, "link-shadowing", (dev as u64) << 32 | c as u64);
        Normal::new(0.0, self.shadowing_std_db).expect("validated std").sample(&mut rng)
    }

    /// The cell a device at (x, y) uses, and its distance [m] to it.
    /// `home` / `radial_m` give the home link exactly (no rounding through
    /// the position), so one cell reproduces the single-cell distances.
    pub fn associate(&self, pl: &dyn PathLoss, dev: u32, at: &Position, shadowing_db: f64) -> (CellId, f64) {
        let mut best = (at.home, self.link_m(at.radial_m));
        if self.cells.len() == 1 {
            return best;
        }
        let xy = at.xy(self);
        let mut best_key = self.key(pl, dev, at.home, shadowing_db, best.0, best.1);
        for c in (0..self.cells.len() as CellId).filter(|&c| c != at.home) {
            let d = self.link_distance_m(at, xy, c);
            let key = self.key(pl, dev, at.home, shadowing_db, c, d);
            if key < best_key {
                (best, best_key) = ((c, d), key);
            }
        }
        best
    }

    /// What association minimises: the distance, or the loss in dB.
    fn key(&self, pl: &dyn PathLoss, dev: u32, home: CellId, own_db: f64, c: CellId, d: f64) -> f64 {
        match self.association {
            Association::Nearest => d,
            Association::Strongest => pl.loss_db(d).0 + self.link_shadowing_db(dev, home, own_db, c),
        }
    }

    /// Link distance [m] from a device at `at` (map coordinates `xy`
    /// [m], `at.xy`) to cell `c`'s site: towards its home site exactly
    /// its radial distance; at least `devices.distance_min_m`.
    pub fn link_distance_m(&self, at: &Position, xy: (f64, f64), c: CellId) -> f64 {
        self.link_m(if c == at.home { at.radial_m } else { self.site_distance_m(c, xy.0, xy.1) })
    }

    /// Large-scale gain [1] from a device at `at` (map coordinates `xy`
    /// [m]) to cell `c`'s site.
    pub fn gain_to(
        &self,
        pl: &dyn PathLoss,
        dev: u32,
        at: &Position,
        xy: (f64, f64),
        shadowing_db: f64,
        c: CellId,
    ) -> f64 {
        let d = self.link_distance_m(at, xy, c);
        large_scale_gain(pl.loss_db(d), Db(self.link_shadowing_db(dev, at.home, shadowing_db, c)))
    }
}

/// A device's place: its home cell, distance and angle from the home site.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    pub home: CellId,
    /// [m]
    pub radial_m: f64,
    /// [rad]
    pub angle_rad: f64,
}

impl Position {
    /// Map coordinates [m].
    pub fn xy(&self, cells: &Cells) -> (f64, f64) {
        let s = &cells.cells[self.home as usize];
        (s.x_m + self.radial_m * self.angle_rad.cos(), s.y_m + self.radial_m * self.angle_rad.sin())
    }
}

/// Pointy-top hex grid: axial (q, r) to map coordinates [m] for
/// neighbouring sites `d_m` [m] apart.
fn hex_position(q: i64, r: i64, d_m: f64) -> (f64, f64) {
    (d_m * (q as f64 + r as f64 / 2.0), d_m * (3f64.sqrt() / 2.0) * r as f64)
}

fn read_cells(path: &Path, count: usize, rb: usize, reuse: usize) -> Result<Vec<Cell>> {
    let l = COORD_LIMIT_M;
    let spec = [
        Column::required("x_m", -l, l),
        Column::required("y_m", -l, l),
        Column::optional("rb_count", 1.0, crate::config::RB_COUNT_MAX as f64),
        Column::optional("server_cores", 1.0, 1e7),
        Column::optional("server_freq_hz", 1e6, 1e12),
    ];
    let cols = read_columns(path, "cells.file", &spec)?;
    let n = cols["x_m"].len();
    if n != count {
        return Err(Error::Input(format!(
            "{} (cells.file): {n} rows; one row per cell is needed, cells.count = {count}",
            path.display()
        )));
    }
    let mut cells = Vec::with_capacity(n);
    for i in 0..n {
        let get = |k: &str| cols.get(k).map(|v| v[i]);
        let positive = |k: &str| -> Result<Option<f64>> {
            match get(k) {
                Some(v) if v <= 0.0 || (k != "server_freq_hz" && v.fract() != 0.0) => Err(Error::Input(format!(
                    "{} (cells.file): row {}: column `{k}` = {v}: a positive {} is needed",
                    path.display(),
                    i + 1,
                    if k == "server_freq_hz" { "number" } else { "integer" }
                ))),
                v => Ok(v),
            }
        };
        cells.push(Cell {
            x_m: cols["x_m"][i],
            y_m: cols["y_m"][i],
            rb_count: positive("rb_count")?.map_or(rb, |v| v as usize),
            colour: (i % reuse) as u32,
            server_cores: positive("server_cores")?,
            server_freq_hz: positive("server_freq_hz")?,
        });
    }
    Ok(cells)
}

/// Places `n` devices (`devices.placement`), from the `"placement"`
/// stream; `radial_m` holds each device's drawn distance, which `ring`
/// keeps and the other placements replace by the distance to the home
/// (nearest) site.
pub fn place(s: &Scenario, cells: &Cells, radial_m: &mut [f64]) -> Result<Vec<Position>> {
    let d = &s.devices;
    let n = radial_m.len();
    let mut rng: Rng = stream(s.run.seed, "placement", 0);
    let tau = std::f64::consts::TAU;
    let from_xy = |x: f64, y: f64| -> Position {
        let (home, dist) = (0..cells.len() as CellId)
            .map(|c| (c, cells.site_distance_m(c, x, y)))
            .fold((0, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b });
        let site = &cells.cells[home as usize];
        Position { home, radial_m: dist, angle_rad: (y - site.y_m).atan2(x - site.x_m) }
    };
    let (lo_x, hi_x, lo_y, hi_y) = cells
        .cells
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |(a, b, c, e), s| {
            (a.min(s.x_m), b.max(s.x_m), c.min(s.y_m), e.max(s.y_m))
        });
    let grow = d.distance_max_m;
    let uniform_xy = |rng: &mut Rng| {
        (
            lo_x - grow + rng.random::<f64>() * (hi_x - lo_x + 2.0 * grow),
            lo_y - grow + rng.random::<f64>() * (hi_y - lo_y + 2.0 * grow),
        )
    };
    let out: Vec<Position> = match d.placement {
        Placement::Ring => (0..n)
            .map(|i| {
                let home = if cells.len() == 1 { 0 } else { rng.random_range(0..cells.len() as CellId) };
                Position { home, radial_m: radial_m[i], angle_rad: rng.random::<f64>() * tau }
            })
            .collect(),
        Placement::Uniform => (0..n)
            .map(|_| {
                let (x, y) = uniform_xy(&mut rng);
                from_xy(x, y)
            })
            .collect(),
        Placement::Hotspots => {
            let centres: Vec<(f64, f64)> = (0..d.hotspots).map(|_| uniform_xy(&mut rng)).collect();
            let off = Normal::new(0.0, d.hotspot_std_m).expect("validated std");
            (0..n)
                .map(|_| {
                    let (cx, cy) = centres[rng.random_range(0..centres.len())];
                    from_xy(cx + off.sample(&mut rng), cy + off.sample(&mut rng))
                })
                .collect()
        }
        Placement::File => {
            let path = Path::new(&d.positions_file);
            let l = COORD_LIMIT_M;
            let spec = [Column::required("x_m", -l, l), Column::required("y_m", -l, l)];
            let cols = read_columns(path, "devices.positions_file", &spec)?;
            if cols["x_m"].len() < n {
                return Err(Error::Input(format!(
                    "{} (devices.positions_file): {} rows; at least devices.count = {n} are needed",
                    path.display(),
                    cols["x_m"].len()
                )));
            }
            (0..n).map(|i| from_xy(cols["x_m"][i], cols["y_m"][i])).collect()
        }
    };
    if d.placement != Placement::Ring {
        for (r, p) in radial_m.iter_mut().zip(&out) {
            *r = p.radial_m;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_spiral_rings_are_complete_and_distinct() {
        let h = hex_spiral(37);
        let set: std::collections::BTreeSet<_> = h.iter().copied().collect();
        assert_eq!(set.len(), 37);
        // 1 + 6 + 12 + 18 cells fill the rings up to distance 3.
        assert!(h.iter().all(|&(q, r)| (q.abs() + r.abs() + (q + r).abs()) / 2 <= 3));
    }

    #[test]
    fn neighbours_are_inter_site_apart_and_differ_in_colour() {
        let h = hex_spiral(61);
        for (i, &(q, r)) in h.iter().enumerate() {
            for &(q2, r2) in &h[i + 1..] {
                let (a, b) = (hex_position(q, r, 1000.0), hex_position(q2, r2, 1000.0));
                let d = (a.0 - b.0).hypot(a.1 - b.1);
                assert!(d > 999.999, "sites closer than the inter-site distance: {d}");
                if d < 1000.001 {
                    for k in [3, 4, 7] {
                        assert_ne!(hex_colour(q, r, k), hex_colour(q2, r2, k), "neighbours share colour at K = {k}");
                    }
                }
            }
        }
    }
}
