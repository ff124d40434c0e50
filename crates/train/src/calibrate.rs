//! `sflam calibrate`: the utility U(b) measured from training. Short
//! `sflam train` runs of split training at each bit width (framework
//! `sflam` at `training.bits = b`) and at fp32 (`sfl`), same data and the
//! same seeds, give each width's final test accuracy; the table is that
//! accuracy over fp32's, fitted non-decreasing
//! (`sflam_core::alloc::utility::fit`), and the allocators read it with
//! `allocator.utility = "table"`.

use crate::config::{FrameworkKind, Scenario};
use crate::driver::{TrainOptions, train_to_dir};
use crate::error::{Error, Result};
use sflam_core::alloc::utility::{FittedRow, fit, to_csv};
use sflam_core::output::{Kind, Staged};
use std::path::{Path, PathBuf};

/// The bit widths `sflam calibrate` trains by default (the paper's Fig. 3
/// range) [bit].
pub const DEFAULT_BITS: [u32; 9] = [1, 2, 3, 4, 5, 6, 8, 12, 16];

pub struct CalibrateOptions {
    /// Bit widths to train, each in 1..=16 [bit]; fp32 is always trained.
    pub bits: Vec<u32>,
    /// Seeds per width: `run.seed`, `run.seed + 1`, ... [1].
    pub seeds: u32,
    pub progress: bool,
    /// Called after each training with (seed, bits (32 = fp32), final accuracy).
    pub on_point: Option<fn(u64, u32, f64)>,
}

/// The fitted table and where it was written.
pub struct Calibration {
    pub rows: Vec<FittedRow>,
    /// `<out>/utility.csv`.
    pub table: PathBuf,
}

/// Trains every (seed, width) point into `out/seed=S/bits=B/` (a `sflam
/// train` folder each: `rounds.parquet` holds the curve) and writes
/// `out/utility.csv`. The folder is written aside and swapped in whole
/// like every sflam output; an interrupted calibration starts again.
pub fn calibrate(s: &Scenario, out: &Path, opts: &CalibrateOptions) -> Result<Calibration> {
    let mut bits = opts.bits.clone();
    bits.sort_unstable();
    if bits.is_empty() || bits.iter().any(|b| !(1..=16).contains(b)) || bits.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::Input(format!("--bits {bits:?}: distinct bit widths in 1..=16 (fp32 is always trained)")));
    }
    if opts.seeds == 0 {
        return Err(Error::Input("--seeds 0: at least one seed".into()));
    }
    let mut staged = Staged::open(out, Kind::Calibrate)?;
    staged.fresh()?;
    let mut measured: Vec<(u32, Vec<f64>)> = bits.iter().map(|&b| (b, Vec::new())).collect();
    let mut fp32 = Vec::new();
    for seed in s.run.seed..s.run.seed + opts.seeds as u64 {
        for b in bits.iter().copied().chain([32]) {
            let mut p = s.clone();
            p.run.seed = seed;
            if b == 32 {
                p.training.framework = FrameworkKind::Sfl;
            } else {
                p.training.framework = FrameworkKind::Sflam;
                p.training.bits = b;
            }
            let dir = staged.dir().join(format!("seed={seed}")).join(format!("bits={b}"));
            let r = train_to_dir(&p, &dir, &TrainOptions { progress: opts.progress, ..Default::default() })?;
            let acc = r.rows.iter().rev().find_map(|row| row.accuracy).ok_or_else(|| {
                Error::Input(format!(
                    "{}: no round was evaluated; set training.eval_every to at most run.rounds = {}",
                    dir.display(),
                    p.run.rounds
                ))
            })?;
            if let Some(f) = opts.on_point {
                f(seed, b, acc);
            }
            match measured.iter_mut().find(|m| m.0 == b) {
                Some(m) => m.1.push(acc),
                None => fp32.push(acc),
            }
        }
    }
    let rows = fit(&measured, &fp32);
    let file = staged.dir().join("utility.csv");
    std::fs::write(&file, to_csv(&rows)).map_err(|e| Error::io(&file, e))?;
    let dir = staged.commit()?;
    Ok(Calibration { rows, table: dir.join("utility.csv") })
}
