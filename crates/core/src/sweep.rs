//! Sweeps: a grid of `--set` overrides run in parallel on the local cores,
//! each point a complete run in a hive-partitioned folder
//! (`<out>/key=value/.../rounds.parquet`) that polars, DuckDB or Spark read
//! as one table. `--shard i/n` keeps the points `j` with `j % n == i`, so a
//! job-array engine can spread a sweep over machines.

use crate::config::{Scenario, inputs, load_scenario_str};
use crate::error::{Error, Result};
use crate::output::{self, Found, Kind};
use crate::run::{LearnerFactory, RunOptions, run_to_dir};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One grid axis: a dotted key and its values as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `key=v1,v2,...`.
pub fn parse_axis(s: &str) -> Result<Axis> {
    let (key, vals) = s
        .split_once('=')
        .ok_or_else(|| Error::Input(format!("--grid `{s}`: expected KEY=V1,V2,... e.g. run.deadline_s=6,8,10")))?;
    let values: Vec<String> = vals.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if key.trim().is_empty() || values.is_empty() {
        return Err(Error::Input(format!("--grid `{s}`: needs a key and at least one value")));
    }
    for v in &values {
        if v.contains(['/', '\\']) || v.starts_with('.') {
            return Err(Error::Input(format!(
                "--grid `{s}`: value `{v}` cannot name a folder (no '/', '\\' or leading '.')"
            )));
        }
    }
    Ok(Axis { key: key.trim().to_string(), values })
}

/// Refuses a grid that would write one folder twice: an axis given twice
/// (`--grid run.seed=1,2 --grid run.seed=3,4`) or a value repeated within
/// an axis (`run.seed=1,1`).
pub fn check_axes(axes: &[Axis]) -> Result<()> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.key == a.key) {
            return Err(Error::Input(format!(
                "--grid {}: the key is given as two axes; give its values once, as {}=V1,V2,...",
                a.key, a.key
            )));
        }
        for (j, v) in a.values.iter().enumerate() {
            if a.values[..j].iter().any(|w| w.trim_matches('"') == v.trim_matches('"')) {
                return Err(Error::Input(format!(
                    "--grid {}: value `{v}` is given twice; each value names one point's folder",
                    a.key
                )));
            }
        }
    }
    Ok(())
}

/// Parses `i/n` with 0 <= i < n.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::Input(format!("--shard `{s}`: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// One point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub index: usize,
    /// (key, value) per axis.
    pub values: Vec<(String, String)>,
}

impl Point {
    /// The hive-style relative folder, `k1=v1/k2=v2`.
    pub fn folder(&self) -> PathBuf {
        self.values.iter().map(|(k, v)| format!("{k}={}", v.trim_matches('"'))).collect()
    }

    fn label(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("/")
    }
}

/// Every point of the grid in order (last axis fastest).
pub fn points(axes: &[Axis]) -> Vec<Point> {
    let mut out = vec![Vec::new()];
    for a in axes {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<(String, String)>| {
                a.values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((a.key.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    out.into_iter().enumerate().map(|(index, values)| Point { index, values }).collect()
}

/// How to run a sweep.
pub struct SweepOptions {
    pub jobs: usize,
    pub shard: (usize, usize),
    /// Use the scenario's seed for every point (common random numbers, for
    /// comparing policies on the same devices and channels) instead of a
    /// seed derived from the point.
    pub common_seed: bool,
    pub progress: bool,
    /// The learning half, for points that train.
    pub learner: Option<LearnerFactory>,
}

/// The scenario of one point: base overrides, then the point's values, the
/// seed and the output folder.
pub fn point_scenario(
    text: &str,
    file: &Path,
    base: &[String],
    p: &Point,
    out: &Path,
    common_seed: bool,
) -> Result<Scenario> {
    let mut ov: Vec<String> = base.to_vec();
    ov.extend(p.values.iter().map(|(k, v)| format!("{k}={v}")));
    let mut s = load_scenario_str(text, file, &ov)?;
    if !common_seed && !p.values.iter().any(|(k, _)| k == "run.seed") {
        s.run.seed = crate::sim::rng::derive_seed(s.run.seed, &p.label());
    }
    s.run.output_dir = out.join(p.folder()).display().to_string();
    s.run.threads = 1;
    Ok(s)
}

/// Why the complete run in `s`'s output folder is not a run of exactly
/// `s` on the same input files; `None` when it is.
fn stale(s: &Scenario) -> Result<Option<String>> {
    let path = s.output_dir().join("scenario.resolved.toml");
    let Some(text) = std::fs::read_to_string(&path).ok() else {
        return Ok(Some("its scenario.resolved.toml cannot be read".into()));
    };
    if load_scenario_str(&text, &path, &[]).ok().is_none_or(|old| old != *s) {
        return Ok(Some("its scenario.resolved.toml differs from what the sweep would run now".into()));
    }
    let now = inputs::input_digests(s, s.training.enabled)?;
    Ok(inputs::changed(&inputs::recorded(&text), &now))
}

/// Runs this shard's points; returns the folders written. Points already
/// complete are skipped, so a sweep resumes, but only when they ran the
/// same scenario; otherwise the sweep refuses before running anything.
pub fn run_sweep(file: &Path, base: &[String], axes: &[Axis], out: &Path, o: &SweepOptions) -> Result<Vec<PathBuf>> {
    check_axes(axes)?;
    let text = crate::config::read_scenario_text(file)?;
    // The sweep's folder: locked for this process, and a sweep's (marked)
    // or new; its points are runs, each replaced only as a run would be.
    let abs = output::normalize(out)?;
    let _lock = output::Lock::take(&abs, out)?;
    match output::inspect(&abs, Kind::Sweep, out)? {
        Found::Absent | Found::Empty => output::create_marked(&abs, Kind::Sweep)?,
        Found::Ours { .. } => {}
    }
    let mine: Vec<Point> = points(axes).into_iter().filter(|p| p.index % o.shard.1 == o.shard.0).collect();
    // Validate every point before running any.
    let scenarios: Vec<Scenario> =
        mine.iter().map(|p| point_scenario(&text, file, base, p, out, o.common_seed)).collect::<Result<_>>()?;
    // A complete point is resumed only if it ran what this sweep would run.
    let mut changed = Vec::new();
    for s in scenarios.iter().filter(|s| output::is_complete(&s.output_dir(), Kind::Run)) {
        if let Some(why) = stale(s)? {
            changed.push(format!("{} ({why})", s.output_dir().display()));
        }
    }
    if !changed.is_empty() {
        return Err(Error::Input(format!(
            "{} point(s) of this sweep were run with another scenario or other input files, so they cannot \
             be resumed: {}; remove them to re-run them, or write the sweep elsewhere with -o",
            changed.len(),
            changed.join("; ")
        )));
    }
    let bar =
        if o.progress { indicatif::ProgressBar::new(scenarios.len() as u64) } else { indicatif::ProgressBar::hidden() };
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let done: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..o.jobs.max(1).min(scenarios.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(s) = scenarios.get(i) else { break };
                    if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                        break;
                    }
                    let dir = s.output_dir();
                    let r = if output::is_complete(&dir, Kind::Run) {
                        Ok(dir.clone())
                    } else {
                        run_to_dir(s, &RunOptions { learner: o.learner, ..RunOptions::default() }).map(|(d, _)| d)
                    };
                    match r {
                        Ok(d) => {
                            if let Ok(mut v) = done.lock() {
                                v.push(d);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut v = done.into_inner().unwrap_or_default();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_shards() {
        let axes = vec![parse_axis("a=1,2").unwrap(), parse_axis("b=x,y,z").unwrap()];
        let ps = points(&axes);
        assert_eq!(ps.len(), 6);
        assert_eq!(ps[1].folder(), PathBuf::from("a=1/b=y"));
        let (i, n) = parse_shard("1/4").unwrap();
        assert_eq!((i, n), (1, 4));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_axis("a=").is_err());
        assert!(parse_axis("a=../x").is_err());
        assert!(check_axes(&[parse_axis("a=1,1").unwrap()]).is_err());
        assert!(check_axes(&[parse_axis("a=1,\"1\"").unwrap()]).is_err());
        assert!(check_axes(&[parse_axis("a=1,2").unwrap(), parse_axis("a=3").unwrap()]).is_err());
        assert!(check_axes(&axes).is_ok());
    }
}
