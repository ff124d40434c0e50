//! `devices.file`: per-device attributes from a CSV or Parquet table,
//! over the drawn population. Columns absent keep the scenario's
//! distributions; `device` (ids 0..rows-1, each once) is required. A
//! measured uplink rate becomes a per-device link offset
//! ([`link_offset_db`]).

use super::{DeviceId, Population};
use crate::config::{DeviceRows, Placement, Scenario};
use crate::error::{Error, Result};
use crate::geo::{CellId, Cells};
use crate::geo::{Column, read_columns};
use crate::net::PathLoss;
use crate::sim::rng::stream;
use rand::seq::index::sample;
use rand_distr::{Distribution, Uniform};
use std::path::Path;

/// The columns a device table may have, with their physical ranges.
pub const COLUMNS: [Column; 14] = [
    Column::required("device", 0.0, 4_294_967_295.0),
    Column::optional("distance_m", 0.01, 1e7),
    Column::optional("p_max_w", 1e-9, 1e3),
    Column::optional("gpu_freq_hz", 1e6, 1e12),
    Column::optional("cores", 1.0, 1e6),
    Column::optional("flops_per_cycle", 1e-6, 1e6),
    Column::optional("flops_per_s", 1e3, 1e18),
    Column::optional("samples", 1.0, 1e12),
    Column::optional("shadowing_db", -100.0, 100.0),
    Column::optional("uplink_bps", 1.0, 1e12),
    Column::optional("compute_s_per_sample", 1e-9, 1e6),
    Column::optional("x_m", -1e7, 1e7),
    Column::optional("y_m", -1e7, 1e7),
    Column::optional("cell", 0.0, 1e5),
];

/// Which table row each of the scenario's `count` devices takes.
fn rows_for(s: &Scenario, rows: usize, at: &str) -> Result<Vec<usize>> {
    let n = s.devices.count;
    let mut rng = stream(s.run.seed, "device-table", 0);
    match s.devices.file_rows {
        _ if n == rows => Ok((0..n).collect()),
        DeviceRows::First if n < rows => Ok((0..n).collect()),
        DeviceRows::Sample if n < rows => {
            let mut v = sample(&mut rng, rows, n).into_vec();
            v.sort_unstable();
            Ok(v)
        }
        DeviceRows::Resample => {
            let u = Uniform::new(0, rows).expect("rows > 0");
            Ok((0..n).map(|_| u.sample(&mut rng)).collect())
        }
        _ => Err(Error::Input(format!(
            "{at}: {rows} rows for devices.count = {n} devices: give at least {n} rows, or set \
             devices.file_rows = \"resample\" to draw rows with replacement"
        ))),
    }
}

/// A device table, read and checked, with the row each device takes.
pub struct Table {
    cols: std::collections::BTreeMap<String, Vec<f64>>,
    /// Row of the table for each of the scenario's devices.
    row: Vec<usize>,
    at: String,
}

impl Table {
    /// Reads `devices.file` (None when the scenario names none).
    pub fn read(s: &Scenario) -> Result<Option<Table>> {
        if s.devices.file.is_empty() {
            return Ok(None);
        }
        let path = Path::new(&s.devices.file);
        let at = format!("{} (devices.file)", path.display());
        let cols = read_columns(path, "devices.file", &COLUMNS)?;
        let ids = &cols["device"];
        let rows = ids.len();
        if rows == 0 {
            return Err(Error::Input(format!("{at}: no rows")));
        }
        let mut seen = vec![usize::MAX; rows];
        for (i, &id) in ids.iter().enumerate() {
            if id.fract() != 0.0 || id as usize >= rows {
                return Err(Error::Input(format!(
                    "{at}: row {}: column `device` = {id}: the ids are 0..{rows} (one per row), each once",
                    i + 1
                )));
            }
            let j = std::mem::replace(&mut seen[id as usize], i);
            if j != usize::MAX {
                return Err(Error::Input(format!(
                    "{at}: row {}: column `device` = {id}: also in row {}",
                    i + 1,
                    j + 1
                )));
            }
        }
        for name in ["cores", "samples", "cell"] {
            if let Some(v) = cols.get(name)
                && let Some(i) = v.iter().position(|x| x.fract() != 0.0)
            {
                return Err(Error::Input(format!(
                    "{at}: row {}: column `{name}` = {}: an integer is needed",
                    i + 1,
                    v[i]
                )));
            }
        }
        if let Some(v) = cols.get("cell")
            && let Some(i) = v.iter().position(|&c| c as usize >= s.cells.count)
        {
            return Err(Error::Input(format!(
                "{at}: row {}: column `cell` = {}: a cell in 0..cells.count = {}",
                i + 1,
                v[i],
                s.cells.count
            )));
        }
        let has = |c: &str| cols.contains_key(c);
        let conflicts: [(&str, &str, &str); 6] = [
            ("flops_per_s", "gpu_freq_hz", "both set the compute rate"),
            ("compute_s_per_sample", "gpu_freq_hz", "both set the compute rate"),
            ("compute_s_per_sample", "flops_per_s", "both set the compute rate"),
            ("uplink_bps", "shadowing_db", "both set the link's large-scale gain"),
            ("x_m", "distance_m", "both place the device"),
            ("x_m", "cell", "both set the home cell (a position's is its nearest site)"),
        ];
        for (a, b, why) in conflicts {
            if has(a) && has(b) {
                return Err(Error::Input(format!("{at}: columns `{a}` and `{b}` {why}: give one")));
            }
        }
        if has("x_m") != has("y_m") {
            return Err(Error::Input(format!("{at}: columns `x_m` and `y_m` go together: give both or neither")));
        }
        if (has("distance_m") || has("cell")) && s.devices.placement != Placement::Ring {
            return Err(Error::Input(format!(
                "{at}: columns `distance_m` and `cell` place devices around a home cell: they need \
                 devices.placement = \"ring\" (or give `x_m`, `y_m`)"
            )));
        }
        let mut by_id = vec![0; rows];
        for (i, &id) in ids.iter().enumerate() {
            by_id[id as usize] = i;
        }
        let row = rows_for(s, rows, &at)?.into_iter().map(|r| by_id[r]).collect();
        Ok(Some(Table { cols, row, at }))
    }

    fn get(&self, name: &str, dev: usize) -> Option<f64> {
        self.cols.get(name).map(|v| v[self.row[dev]])
    }

    /// Overrides the drawn attributes (before placement).
    pub fn apply(&self, s: &Scenario, p: &mut Population) -> Result<()> {
        // Device-side training FLOPs per sample of the timed model, for a
        // measured time per sample [FLOP].
        let flops_per_sample = if self.cols.contains_key("compute_s_per_sample") {
            let (fwd, bwd) = crate::engine::timing_workload(s)?.device_flops(s.training.framework.profile().split);
            fwd + bwd
        } else {
            0.0
        };
        for d in 0..s.devices.count {
            if let Some(v) = self.get("distance_m", d) {
                p.distance_m[d] = v;
            }
            if let Some(v) = self.get("p_max_w", d) {
                p.p_max_w[d] = v;
            }
            if let Some(v) = self.get("gpu_freq_hz", d) {
                p.gpu_freq_hz[d] = v;
            }
            if let Some(v) = self.get("cores", d) {
                p.cores[d] = v as u32;
            }
            if let Some(v) = self.get("flops_per_cycle", d) {
                p.flops_per_cycle[d] = v;
            }
            if let Some(v) = self.get("samples", d) {
                p.samples[d] = v as u64;
            }
            if let Some(v) = self.get("shadowing_db", d) {
                p.shadowing_db[d] = v;
            }
            // A measured rate (or time per sample of the timed model's
            // device-side training): the frequency that gives it with the
            // device's cores and FLOPs per cycle (κ C f³ then uses it).
            let rate = self
                .get("flops_per_s", d)
                .or_else(|| self.get("compute_s_per_sample", d).map(|t| flops_per_sample / t));
            if let Some(v) = rate {
                p.gpu_freq_hz[d] = v / (p.cores[d] as f64 * p.flops_per_cycle[d]);
            }
        }
        Ok(())
    }

    /// After placement: positions (`x_m`, `y_m`: home is the nearest
    /// site) or home cells (`cell`) from the table, then measured uplink
    /// rates as link offsets at the distance to the home site, and every
    /// changed device associated again.
    pub fn place(&self, s: &Scenario, p: &mut Population, cells: &Cells, pl: &dyn PathLoss) -> Result<()> {
        let (xy, home, up) =
            (self.cols.contains_key("x_m"), self.cols.contains_key("cell"), self.cols.contains_key("uplink_bps"));
        if !(xy || home || up) {
            return Ok(());
        }
        for d in 0..s.devices.count {
            if xy {
                let (x, y) = (self.get("x_m", d).expect("x"), self.get("y_m", d).expect("y"));
                let (h, dist) = (0..cells.len() as CellId)
                    .map(|c| (c, cells.site_distance_m(c, x, y)))
                    .fold((0, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b });
                let site = &cells.cells[h as usize];
                p.home[d] = h;
                p.distance_m[d] = dist.max(0.01);
                p.angle_rad[d] = (y - site.y_m).atan2(x - site.x_m);
            }
            if let Some(c) = self.get("cell", d) {
                p.home[d] = c as CellId;
            }
            if let Some(r) = self.get("uplink_bps", d) {
                p.shadowing_db[d] = link_offset_db(s, r, p.p_max_w[d], p.distance_m[d]).map_err(|why| {
                    Error::Input(format!("{}: row {}: column `uplink_bps` = {r}: {why}", self.at, self.row[d] + 1))
                })?;
            }
            let pos = p.position(DeviceId(d as u32));
            p.cell[d] = cells.associate(pl, d as u32, &pos, p.shadowing_db[d]).0;
        }
        Ok(())
    }
}

/// The shadowing [dB] that makes a device at `distance_m` [m] reach the
/// measured rate `rate_bps` [bit/s] on one RB at `p_max_w` [W] without
/// fading: the large-scale gain g with B log2(1 + p_max g / N0 B) = rate,
/// i.e. g = (2^(rate / B) − 1) N0 B / p_max, less the path loss at that
/// distance. Rayleigh fading (mean power gain 1) applies on top, so the
/// mean rate is a little below the measured one (Jensen).
pub fn link_offset_db(s: &Scenario, rate_bps: f64, p_max_w: f64, distance_m: f64) -> std::result::Result<f64, String> {
    let b = s.network.rb_bandwidth_hz;
    let n0b = crate::net::noise_w(s.network.noise_dbm_per_hz, b);
    let g = (rate_bps / b * std::f64::consts::LN_2).exp_m1() * n0b / p_max_w;
    if !(g.is_finite() && g > 0.0 && g <= 1.0) {
        let most = b * (1.0 + p_max_w / n0b).log2();
        return Err(format!(
            "more than p_max = {p_max_w} W could carry on one RB of {b} Hz even without path loss ({most:.4e} bit/s): \
             is the unit bit/s?"
        ));
    }
    let loss = crate::net::path_loss_from(&s.network).loss_db(distance_m).0;
    Ok(-10.0 * g.log10() - loss)
}
