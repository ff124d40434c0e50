//! One run, wired in one place: scenario -> engine -> sink -> output folder.
//!
//! Output goes to `<dir>.partial` and is renamed to `<dir>` only when the
//! run completed and every file was closed, so an interrupted or failed run
//! never leaves output that looks complete.

use crate::alloc::{Decision, Problem, allocator_from};
use crate::config::Scenario;
use crate::engine::{DecisionHook, Engine, Ev, RoundHook};
use crate::error::{Error, Result};
use crate::sim::Kernel;
use crate::trace::{ParquetSink, RoundRow, Summary, TraceSink};
use crate::units::SimTime;
use std::path::{Path, PathBuf};

/// Options of a run beyond the scenario.
#[derive(Default)]
pub struct RunOptions {
    /// Write each round's problem and decision as JSON here.
    pub dump_problems: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
}

/// The allocator a run uses: the scenario's for `sflam`. `sfl`, `sl` and
/// `fl` send fp32 activations or a model, so they get the fp32 counterpart
/// of the scenario's allocator: `ep` -> p_max with fp32, `fixed` -> fixed at
/// 32 bits, anything else -> `nq` (power and matching optimized). `ll`
/// sends nothing and gets `fixed` at 32 bits, only to fill the RBs.
pub fn allocator_for(s: &Scenario) -> Result<Box<dyn crate::alloc::Allocator>> {
    use crate::alloc::{Enumerate, Fixed};
    use crate::config::FrameworkKind;
    let name = s.allocator.name.as_str();
    Ok(match (s.training.framework, name) {
        (FrameworkKind::Sflam, _) => {
            allocator_from(name, &s.allocator).ok_or_else(|| Error::Input(format!("unknown allocator `{name}`")))?
        }
        (FrameworkKind::Ll, _) | (_, "fixed") => Box::new(Fixed { bits: 32 }),
        (_, "ep") => Box::new(Enumerate::equal_power_fp32()),
        _ => Box::new(Enumerate::no_quantization()),
    })
}

/// Runs the scenario into any sink; returns the summary. The caller owns
/// the sink's output.
pub fn simulate(
    s: &Scenario,
    sink: &mut dyn TraceSink,
    mut on_decision: Option<DecisionHook<'_>>,
    mut on_round: Option<RoundHook<'_>>,
) -> Result<Summary> {
    let wall = std::time::Instant::now();
    let allocator = allocator_for(s)?;
    // The learning half, when the scenario trains: data split over the
    // simulated devices, the framework's state carried across rounds.
    let learner = if s.training.enabled { Some(crate::train::CoLearner::new(s)?) } else { None };
    let mut kernel: Kernel<Ev> = Kernel::new();
    let (totals, time_p, energy_p) = {
        let mut engine = Engine::new(s, allocator, sink)?;
        engine.on_decision = on_decision.take();
        engine.on_round = on_round.take();
        if let Some(l) = learner {
            let (samples, counts) = l.data();
            engine.set_data(samples, counts);
            engine.learner = Some(Box::new(l));
        }
        engine.wire(&mut kernel)?;
        kernel.run(&mut engine, SimTime::MAX)?;
        let t = engine.totals.clone();
        if t.rounds_done != s.run.rounds {
            return Err(Error::Numeric {
                checkpoint: "run.rounds",
                detail: format!("the kernel drained after {} of {} rounds", t.rounds_done, s.run.rounds),
            });
        }
        (t, engine.summary().time_percentiles(), engine.summary().energy_percentiles())
    };
    sink.finish()?;
    Ok(Summary {
        scenario: s.run.name.clone(),
        seed: s.run.seed,
        sflam_version: env!("CARGO_PKG_VERSION"),
        git_commit: crate::git_commit(),
        timing_model: s.model.timing.clone(),
        trained_model: s.training.enabled.then(|| s.training.model.clone()),
        allocator: s.allocator.name.clone(),
        devices: s.devices.count as u64,
        rounds: totals.rounds_done,
        simulated_s: kernel.now().as_secs_f64(),
        events: kernel.processed(),
        scheduled: totals.scheduled,
        finished: totals.finished,
        stragglers: totals.stragglers,
        failed: totals.failed,
        energy_j: totals.energy_cmp_j + totals.energy_com_j,
        energy_cmp_j: totals.energy_cmp_j,
        energy_com_j: totals.energy_com_j,
        device_round_time_s: time_p,
        device_round_energy_j: energy_p,
        wall_s: wall.elapsed().as_secs_f64(),
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Worker threads for a scenario: `run.threads`, or all cores when 0.
pub fn threads_of(s: &Scenario) -> usize {
    if s.run.threads > 0 { s.run.threads } else { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) }
}

/// Runs a scenario into its output folder: Parquet traces, `summary.json`
/// and `scenario.resolved.toml`. Returns the folder and the summary.
pub fn run_to_dir(s: &Scenario, opts: &RunOptions) -> Result<(PathBuf, Summary)> {
    let out = s.output_dir();
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    write(&partial.join("scenario.resolved.toml"), &s.resolved_toml())?;
    if let Some(d) = &opts.dump_problems {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let mut sink = ParquetSink::create(&partial, s.run.events_trace, s.run.row_group_rows, threads_of(s))?;
    let bar = progress_bar(opts.progress, s.run.rounds as u64);
    let dump_dir = opts.dump_problems.clone();
    let on_decision: Option<DecisionHook<'_>> = dump_dir.map(|dir| {
        Box::new(move |p: &Problem, d: &Decision| {
            let path = dir.join(format!("round-{:05}.json", p.round));
            let doc = serde_json::json!({ "problem": p, "decision": d });
            let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Trace(e.to_string()))?;
            write(&path, &text)
        }) as DecisionHook<'_>
    });
    let b2 = bar.clone();
    let on_round: Option<RoundHook<'_>> = Some(Box::new(move |r: &RoundRow| {
        b2.set_message(format!("t = {:.1} s, {} finished", r.end_s, r.finished));
        b2.inc(1);
    }));
    let summary = simulate(s, &mut sink, on_decision, on_round)?;
    bar.finish_and_clear();
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Trace(e.to_string()))?;
    write(&partial.join("summary.json"), &json)?;
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    }
    std::fs::rename(&partial, &out).map_err(|e| Error::io(&out, e))?;
    Ok((out, summary))
}

/// A bar of `len` rounds, or a hidden one.
pub fn progress_bar(show: bool, len: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} round {pos}/{len} [{bar:30}] {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
