//! The utility U(b) the allocators weigh activation bits by: the assumed
//! curve (SPEC's "C" choice, the paper's being lost) or a table measured
//! from training (`sflam calibrate`), read from CSV or Parquet.

use crate::error::{Error, Result};
use crate::geo::{Column, read_columns};
use std::path::Path;

/// U(b) = 1 − 2^−(b − b_min + 1) on the quantized widths; fp32 counts as 1.
pub fn assumed(bits: u32, bits_min: u32) -> f64 {
    if bits >= 32 { 1.0 } else { 1.0 - 0.5f64.powi((bits as i32 - bits_min as i32) + 1) }
}

/// Why a utility table is not usable: the row (1-based, in the file's
/// order; 0 for the table as a whole) and what is allowed.
pub fn check_table(
    bits: &[u32],
    utility: &[f64],
    bits_min: u32,
    bits_max: u32,
) -> std::result::Result<(), (usize, String)> {
    for (i, &u) in utility.iter().enumerate() {
        if !(u > 0.0 && u <= 1.0) {
            return Err((i + 1, format!("utility {u}: a value in (0, 1] is needed (normalized so fp32 = 1)")));
        }
    }
    let mut order: Vec<usize> = (0..bits.len()).collect();
    order.sort_by_key(|&i| (bits[i], i));
    for w in order.windows(2) {
        let (a, b) = (w[0], w[1]);
        if bits[a] == bits[b] {
            return Err((b + 1, format!("bits {} twice (rows {} and {})", bits[b], a + 1, b + 1)));
        }
        if utility[b] < utility[a] {
            return Err((
                b + 1,
                format!(
                    "utility {} at {} bits is below {} at {} bits (row {}): U(b) must not fall as bits grow",
                    utility[b],
                    bits[b],
                    utility[a],
                    bits[a],
                    a + 1
                ),
            ));
        }
    }
    if let Some(i) = bits.iter().position(|&b| b >= 32)
        && utility[i] != 1.0
    {
        return Err((
            i + 1,
            format!("utility {} at fp32 (32 bits): 1 is needed (the table is normalized so fp32 = 1)", utility[i]),
        ));
    }
    if let Some(b) = (bits_min..=bits_max).find(|b| !bits.contains(b)) {
        return Err((
            0,
            format!(
                "no row for {b} bits: every width in quantization.bits_min..=bits_max = {bits_min}..={bits_max} is needed"
            ),
        ));
    }
    Ok(())
}

/// Reads a utility table (`allocator.utility_file`): columns `bits`
/// (1..=16, or 32 for fp32) and `utility` in (0, 1], other columns
/// (`accuracy`, `seeds`, ... as `sflam calibrate` records them) ignored.
/// Returns U for `bits_min..=bits_max`, in order.
pub fn read_table(path: &Path, bits_min: u32, bits_max: u32) -> Result<Vec<f64>> {
    let spec = [Column::required("bits", 1.0, 32.0), Column::required("utility", 0.0, 1.0)];
    let cols = read_columns(path, "allocator.utility_file", &spec)?;
    let at = format!("{} (allocator.utility_file)", path.display());
    let mut bits = Vec::new();
    for (i, &b) in cols["bits"].iter().enumerate() {
        if b.fract() != 0.0 || !((1.0..=16.0).contains(&b) || b == 32.0) {
            return Err(Error::Input(format!(
                "{at}: row {}: column `bits` = {b}: an integer in 1..=16, or 32 (fp32)",
                i + 1
            )));
        }
        bits.push(b as u32);
    }
    let utility = &cols["utility"];
    check_table(&bits, utility, bits_min, bits_max).map_err(|(row, why)| {
        Error::Input(if row == 0 { format!("{at}: {why}") } else { format!("{at}: row {row}: {why}") })
    })?;
    Ok((bits_min..=bits_max).map(|b| utility[bits.iter().position(|&x| x == b).expect("checked")]).collect())
}

/// One row of a fitted utility table.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedRow {
    /// Bit width (32 = fp32) [bit].
    pub bits: u32,
    /// U(b): accuracy relative to fp32's, made non-decreasing, in (0, 1] [1].
    pub utility: f64,
    /// Mean measured test accuracy over the seeds; None where the width
    /// was not trained and U is interpolated [1].
    pub accuracy: Option<f64>,
    /// Standard deviation of that accuracy over the seeds [1].
    pub accuracy_sd: Option<f64>,
    /// Seeds measured (0: interpolated) [1].
    pub seeds: u32,
}

/// Smallest utility a table may hold: U must be positive [1].
pub const UTILITY_FLOOR: f64 = 1e-3;

/// Least-squares non-decreasing fit of `y` (pool adjacent violators, equal
/// weights): where a later value falls below an earlier one, both become
/// their block's mean.
pub fn isotonic(y: &[f64]) -> Vec<f64> {
    // Blocks of (sum, count), merged while the last mean falls.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for &v in y {
        blocks.push((v, 1));
        while blocks.len() > 1 {
            let (s1, n1) = blocks[blocks.len() - 1];
            let (s0, n0) = blocks[blocks.len() - 2];
            if s1 / n1 as f64 >= s0 / n0 as f64 {
                break;
            }
            blocks.pop();
            *blocks.last_mut().expect("two blocks") = (s0 + s1, n0 + n1);
        }
    }
    blocks.iter().flat_map(|&(s, n)| std::iter::repeat_n(s / n as f64, n)).collect()
}

/// The utility table from measured accuracies: `measured` holds, per bit
/// width trained (1..=16), the accuracy of each seed; `fp32` fp32's. U is
/// each width's mean accuracy over fp32's mean, fitted non-decreasing
/// ([`isotonic`]), clipped to [[`UTILITY_FLOOR`], 1]; widths in 1..=16 not
/// trained are interpolated linearly between their trained neighbours
/// (beyond the ends, the end's value); fp32 is 1.
pub fn fit(measured: &[(u32, Vec<f64>)], fp32: &[f64]) -> Vec<FittedRow> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let sd = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt()
    };
    let base = mean(fp32);
    let mut m: Vec<&(u32, Vec<f64>)> = measured.iter().collect();
    m.sort_by_key(|x| x.0);
    let ratio: Vec<f64> = m.iter().map(|(_, a)| if base > 0.0 { mean(a) / base } else { 1.0 }).collect();
    let fitted: Vec<f64> = isotonic(&ratio).into_iter().map(|u| u.clamp(UTILITY_FLOOR, 1.0)).collect();
    let mut rows = Vec::new();
    for b in 1..=16u32 {
        let row = match m.iter().position(|x| x.0 == b) {
            Some(i) => FittedRow {
                bits: b,
                utility: fitted[i],
                accuracy: Some(mean(&m[i].1)),
                accuracy_sd: Some(sd(&m[i].1)),
                seeds: m[i].1.len() as u32,
            },
            None => {
                let lo = m.iter().rposition(|x| x.0 < b);
                let hi = m.iter().position(|x| x.0 > b);
                let u = match (lo, hi) {
                    (Some(l), Some(h)) => {
                        let t = (b - m[l].0) as f64 / (m[h].0 - m[l].0) as f64;
                        fitted[l] + t * (fitted[h] - fitted[l])
                    }
                    (Some(l), None) => fitted[l],
                    (None, Some(h)) => fitted[h],
                    (None, None) => 1.0,
                };
                FittedRow { bits: b, utility: u, accuracy: None, accuracy_sd: None, seeds: 0 }
            }
        };
        rows.push(row);
    }
    rows.push(FittedRow {
        bits: 32,
        utility: 1.0,
        accuracy: Some(mean(fp32)),
        accuracy_sd: Some(sd(fp32)),
        seeds: fp32.len() as u32,
    });
    rows
}

/// The table as CSV, the format [`read_table`] reads (`bits`, `utility`,
/// then the measurements: empty where interpolated).
pub fn to_csv(rows: &[FittedRow]) -> String {
    let opt = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x:.6}"));
    let mut out = String::from("bits,utility,accuracy,accuracy_sd,seeds\n");
    for r in rows {
        out.push_str(&format!("{},{:.6},{},{},{}\n", r.bits, r.utility, opt(r.accuracy), opt(r.accuracy_sd), r.seeds));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_pools_violators() {
        assert_eq!(isotonic(&[0.5, 0.4, 0.6]), vec![0.45, 0.45, 0.6]);
        assert_eq!(isotonic(&[1.0, 2.0, 3.0]), vec![1.0, 2.0, 3.0]);
        assert_eq!(isotonic(&[3.0, 2.0, 1.0]), vec![2.0, 2.0, 2.0]);
        // The fit is the least-squares non-decreasing one: brute force over
        // a grid of non-decreasing sequences never does better.
        let y = [0.2, 0.7, 0.5, 0.6, 0.9, 0.8];
        let f = isotonic(&y);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        let err = |g: &[f64]| g.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        let grid: Vec<f64> = (0..=20).map(|i| i as f64 * 0.05).collect();
        let mut best = f64::INFINITY;
        let mut g = vec![0.0; y.len()];
        fn walk(i: usize, lo: usize, grid: &[f64], g: &mut Vec<f64>, best: &mut f64, err: &dyn Fn(&[f64]) -> f64) {
            if i == g.len() {
                *best = best.min(err(g));
                return;
            }
            for k in lo..grid.len() {
                g[i] = grid[k];
                walk(i + 1, k, grid, g, best, err);
            }
        }
        walk(0, 0, &grid, &mut g, &mut best, &err);
        assert!(err(&f) <= best + 1e-12, "{} > {best}", err(&f));
    }

    #[test]
    fn fit_normalizes_interpolates_and_reads_back() {
        let measured =
            vec![(2, vec![0.30, 0.34]), (4, vec![0.62, 0.58]), (8, vec![0.81, 0.79]), (16, vec![0.78, 0.80])];
        let rows = fit(&measured, &[0.80, 0.80]);
        let u = |b: u32| rows.iter().find(|r| r.bits == b).unwrap().utility;
        assert!((u(2) - 0.4).abs() < 1e-12 && (u(4) - 0.75).abs() < 1e-12);
        assert!((u(3) - 0.575).abs() < 1e-12, "interpolated");
        assert!((u(1) - 0.4).abs() < 1e-12, "below the first: its value");
        assert!((u(8) - 0.99375).abs() < 1e-12 && (u(16) - 0.99375).abs() < 1e-12, "pooled: 8 and 16 bits as one");
        assert_eq!(u(32), 1.0);
        assert!(rows.windows(2).all(|w| w[0].utility <= w[1].utility));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("u.csv");
        std::fs::write(&f, to_csv(&rows)).unwrap();
        let t = read_table(&f, 4, 16).unwrap();
        assert_eq!(t.len(), 13);
        assert!((t[0] - 0.75).abs() < 1e-6);
    }
}
