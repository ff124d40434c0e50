//! `devices.file`: per-device attributes from a CSV or Parquet table,
//! over the drawn population. Columns absent keep the scenario's
//! distributions; `device` (ids 0..rows-1, each once) is required. A
//! measured uplink rate becomes a per-device link offset
//! ([`link_offset_db`]).

use super::Population;
use crate::config::{DeviceRows, Placement, Scenario};
use crate::error::{Error, Result};
use crate::geo::{Column, read_columns};
use crate::sim::rng::stream;
use rand::seq::index::sample;
use rand_distr::{Distribution, Uniform};
use std::path::Path;

/// The columns a device table may have, with their physical ranges.
pub const COLUMNS: [Column; 10] = [
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

/// Overrides the drawn population with the table's columns.
pub fn apply(s: &Scenario, p: &mut Population) -> Result<()> {
    if s.devices.file.is_empty() {
        return Ok(());
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
            return Err(Error::Input(format!("{at}: row {}: column `device` = {id}: also in row {}", i + 1, j + 1)));
        }
    }
    for name in ["cores", "samples"] {
        if let Some(v) = cols.get(name)
            && let Some(i) = v.iter().position(|x| x.fract() != 0.0)
        {
            return Err(Error::Input(format!("{at}: row {}: column `{name}` = {}: an integer is needed", i + 1, v[i])));
        }
    }
    if cols.contains_key("distance_m") && s.devices.placement != Placement::Ring {
        return Err(Error::Input(format!(
            "{at}: column `distance_m` places devices around their home cell: it needs devices.placement = \"ring\" \
             (give positions with devices.positions_file instead)"
        )));
    }
    if cols.contains_key("uplink_bps") {
        if cols.contains_key("shadowing_db") {
            return Err(Error::Input(format!(
                "{at}: columns `uplink_bps` and `shadowing_db` both set the link's large-scale gain: give one"
            )));
        }
        if s.devices.placement != Placement::Ring {
            return Err(Error::Input(format!(
                "{at}: column `uplink_bps` is calibrated at the device's distance to its home cell: it needs \
                 devices.placement = \"ring\""
            )));
        }
    }
    if cols.contains_key("flops_per_s") && cols.contains_key("gpu_freq_hz") {
        return Err(Error::Input(format!(
            "{at}: columns `flops_per_s` and `gpu_freq_hz` both set the compute rate: give one"
        )));
    }
    // Row of the table by device id.
    let mut by_id = vec![0; rows];
    for (i, &id) in ids.iter().enumerate() {
        by_id[id as usize] = i;
    }
    let pick = rows_for(s, rows, &at)?;
    let get = |name: &str, dev: usize| cols.get(name).map(|v| v[by_id[pick[dev]]]);
    for d in 0..s.devices.count {
        if let Some(v) = get("distance_m", d) {
            p.distance_m[d] = v;
        }
        if let Some(v) = get("p_max_w", d) {
            p.p_max_w[d] = v;
        }
        if let Some(v) = get("gpu_freq_hz", d) {
            p.gpu_freq_hz[d] = v;
        }
        if let Some(v) = get("cores", d) {
            p.cores[d] = v as u32;
        }
        if let Some(v) = get("flops_per_cycle", d) {
            p.flops_per_cycle[d] = v;
        }
        if let Some(v) = get("samples", d) {
            p.samples[d] = v as u64;
        }
        if let Some(v) = get("shadowing_db", d) {
            p.shadowing_db[d] = v;
        }
        // A measured rate: the frequency that gives it with the device's
        // cores and FLOPs per cycle (the energy model κ C f³ then uses it).
        if let Some(v) = get("flops_per_s", d) {
            p.gpu_freq_hz[d] = v / (p.cores[d] as f64 * p.flops_per_cycle[d]);
        }
        if let Some(r) = get("uplink_bps", d) {
            p.shadowing_db[d] = link_offset_db(s, r, p.p_max_w[d], p.distance_m[d]).map_err(|why| {
                Error::Input(format!("{at}: row {}: column `uplink_bps` = {r}: {why}", by_id[pick[d]] + 1))
            })?;
        }
    }
    Ok(())
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
