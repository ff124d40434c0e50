//! One run, wired in one place: scenario -> engine (+ the learner, when
//! the scenario trains) -> sink -> output folder.
//!
//! Output goes to `<dir>.partial` and is swapped in for `<dir>` only when
//! the run completed and every file was closed, so an interrupted or failed
//! run never leaves output that looks complete; `crate::output` decides
//! what may be replaced (only a complete run sflam wrote) and locks it.

use crate::alloc::{Allocator, Decision, Problem, build_plan};
use crate::config::Scenario;
use crate::engine::{DecisionHook, Engine, Ev, Learner, RoundHook};
use crate::error::{Error, Result};
use crate::output::{Kind, Staged};
use crate::sim::Kernel;
use crate::trace::{ParquetSink, RoundRow, Summary, TraceSink, TrainingThroughput};
use crate::units::SimTime;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Builds the learning half of a scenario that trains (`training.enabled`):
/// `sflam_train::CoLearner` in the `sflam` binary. The core knows only the
/// [`Learner`] trait.
pub type LearnerFactory = fn(&Scenario) -> Result<Box<dyn Learner>>;

/// Makes the allocator that replaces the scenario's: called once per cell,
/// in cell order (a policy from outside sflam, e.g. Python's).
pub type AllocatorFactory = Arc<dyn Fn() -> Box<dyn Allocator> + Send + Sync>;

/// Watches a run from outside (the Python session: its stop flag, the
/// rounds streamed to an environment).
pub trait Observer: Send + Sync {
    /// After each cell's decision, before the round runs it; an error
    /// stops the run with it.
    fn decision(&self, _cell: u32, _p: &Problem, _d: &Decision) -> Result<()> {
        Ok(())
    }
    /// As each round ends.
    fn round(&self, _r: &RoundRow) {}
}

/// Options of a run beyond the scenario.
#[derive(Default, Clone)]
pub struct RunOptions {
    /// Write each round's problem and decision as JSON here.
    pub dump_problems: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
    /// The learning half, for scenarios with `training.enabled`.
    pub learner: Option<LearnerFactory>,
    /// Called with each round's row as the round ends (above the progress
    /// bar), so a co-simulation shows its accuracy while it runs.
    pub report: Option<fn(&RoundRow)>,
    /// Replaces the scenario's allocator (and its framework's plan).
    pub allocator: Option<AllocatorFactory>,
    /// Sees every decision and round.
    pub observer: Option<Arc<dyn Observer>>,
}

/// The learner of `s`: none unless it trains; an error when it trains and
/// no factory was given.
pub fn learner_of(s: &Scenario, factory: Option<LearnerFactory>) -> Result<Option<Box<dyn Learner>>> {
    match (s.training.enabled, factory) {
        (false, _) => Ok(None),
        (true, Some(f)) => f(s).map(Some),
        (true, None) => Err(no_learning_half()),
    }
}

/// A scenario trains, but this program was given no learner.
fn no_learning_half() -> Error {
    Error::Input(
        "training.enabled = true: this program has no learning half; run it with the `sflam` binary, \
         or set training.enabled = false for a timing-only run"
            .into(),
    )
}

/// Runs the scenario into any sink; returns the summary. The caller owns
/// the sink's output.
///
/// `learner` trains each round's finished participants (co-simulation);
/// it must be given when the scenario trains (see [`learner_of`]).
pub fn simulate(
    s: &Scenario,
    sink: &mut dyn TraceSink,
    learner: Option<Box<dyn Learner>>,
    on_decision: Option<DecisionHook<'_>>,
    on_round: Option<RoundHook<'_>>,
) -> Result<Summary> {
    simulate_with(s, sink, learner, on_decision, on_round, None)
}

/// [`simulate`], with `allocator` (when given) in place of the scenario's.
pub fn simulate_with(
    s: &Scenario,
    sink: &mut dyn TraceSink,
    learner: Option<Box<dyn Learner>>,
    mut on_decision: Option<DecisionHook<'_>>,
    mut on_round: Option<RoundHook<'_>>,
    allocator: Option<&AllocatorFactory>,
) -> Result<Summary> {
    let wall = std::time::Instant::now();
    if s.training.enabled && learner.is_none() {
        return Err(no_learning_half());
    }
    let plan = s.training.framework.profile().plan(s.allocator.name);
    let scenario_allocator = || build_plan(plan, &s.allocator);
    let allocator: &dyn Fn() -> Box<dyn Allocator> = match allocator {
        Some(f) => f.as_ref(),
        None => &scenario_allocator,
    };
    let mut kernel: Kernel<Ev> = Kernel::new();
    let training_init = learner.as_ref().and_then(|l| l.init_report());
    let (totals, time_p, energy_p, training) = {
        let mut engine = Engine::new(s, allocator, sink)?;
        engine.on_decision = on_decision.take();
        engine.on_round = on_round.take();
        if let Some(l) = learner {
            // The partition's data sizes replace the drawn ones, so the
            // allocator's shares and the aggregation weights agree.
            let (samples, counts) = l.data();
            engine.set_data(samples, counts);
            engine.learner = Some(l);
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
        let training =
            engine.learner.is_some().then(|| TrainingThroughput::new(engine.learner_steps, engine.learner_wall_s));
        (t, engine.summary().time_percentiles(), engine.summary().energy_percentiles(), training)
    };
    sink.finish()?;
    Ok(Summary {
        scenario: s.run.name.clone(),
        seed: s.run.seed,
        sflam_version: env!("CARGO_PKG_VERSION"),
        git_commit: crate::git_commit(),
        timing_model: s.model.timing.clone(),
        trained_model: s.training.enabled.then(|| s.training.model.clone()),
        training_init,
        training,
        framework: s.training.framework.as_str(),
        allocator: plan.name(),
        allocator_configured: s.allocator.name.as_str(),
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

/// Reads and checks every table a run of `s` would read (cells, device
/// positions, backhaul links, the utility table) without running it; `sflam validate` adds
/// the learning half's files.
pub fn check_tables(s: &Scenario) -> Result<()> {
    let cells = crate::geo::Cells::build(s)?;
    if s.devices.placement == crate::config::Placement::File {
        crate::geo::place(s, &cells, &mut vec![0.0; s.devices.count])?;
    }
    if s.backhaul.enabled {
        crate::backhaul::Backhaul::build(s, cells.len(), 0)?;
    }
    crate::engine::utility_table(s)?;
    if let Some(t) = crate::device::table::Table::read(s)? {
        // The population only with a table to check against it.
        let mut pop = crate::device::Population::draw(s);
        let pl = crate::net::path_loss_from(&s.network);
        t.apply(s, &mut pop)?;
        pop.place(s, &cells, pl.as_ref())?;
        t.place(s, &mut pop, &cells, pl.as_ref())?;
    }
    crate::device::Availability::build(&s.availability, s.devices.count)?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Runs a scenario into its output folder: Parquet traces, `summary.json`
/// and `scenario.resolved.toml`. Returns the folder and the summary.
pub fn run_to_dir(s: &Scenario, opts: &RunOptions) -> Result<(PathBuf, Summary)> {
    // Both folders are checked and locked before any work.
    let mut staged = Staged::open(&s.output_dir(), Kind::Run)?;
    if let Some(d) = &opts.dump_problems {
        let d = crate::output::normalize(d)?;
        if d.starts_with(staged.out()) || staged.out().starts_with(&d) {
            return Err(Error::Input(format!(
                "--dump-problems {}: a folder apart from the run's output {} (neither inside the other)",
                d.display(),
                staged.out().display()
            )));
        }
    }
    let mut dump = opts.dump_problems.as_deref().map(|d| Staged::open(d, Kind::DumpProblems)).transpose()?;
    staged.fresh()?;
    if let Some(d) = &mut dump {
        d.fresh()?;
    }
    match write_run(s, opts, staged.dir(), dump.as_ref().map(|d| d.dir())) {
        Ok(summary) => {
            if let Some(d) = dump {
                d.commit()?;
            }
            staged.commit()?;
            Ok((s.output_dir(), summary))
        }
        Err(e) => {
            // Ours alone, and nothing a later run could use.
            staged.discard();
            if let Some(d) = dump {
                d.discard();
            }
            Err(e)
        }
    }
}

/// The run's files into `partial` (and its problems into `dump_dir`).
fn write_run(s: &Scenario, opts: &RunOptions, partial: &Path, dump_dir: Option<&Path>) -> Result<Summary> {
    write(&partial.join("scenario.resolved.toml"), &s.resolved_toml_with_inputs(s.training.enabled)?)?;
    let learner = learner_of(s, opts.learner)?;
    let mut sink = ParquetSink::create(
        partial,
        s.run.events_trace,
        s.run.bcd_trace,
        s.run.row_group_rows,
        s.run.worker_threads(),
    )?;
    let bar = crate::progress::bar(opts.progress, s.run.rounds as u64);
    let dump_dir = dump_dir.map(Path::to_path_buf);
    let multi_cell = s.cells.count > 1;
    let observer = opts.observer.clone();
    let on_decision: Option<DecisionHook<'_>> = (dump_dir.is_some() || observer.is_some()).then(|| {
        let observer = observer.clone();
        Box::new(move |cell, p: &Problem, d: &Decision| {
            if let Some(o) = &observer {
                o.decision(cell, p, d)?;
            }
            let Some(dir) = &dump_dir else { return Ok(()) };
            // One cell: the single cell's file names.
            let name = if multi_cell {
                format!("round-{:05}-cell-{cell:05}.json", p.round)
            } else {
                format!("round-{:05}.json", p.round)
            };
            let path = dir.join(name);
            let doc = serde_json::json!({ "problem": p, "decision": d });
            let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Trace(e.to_string()))?;
            write(&path, &text)
        }) as DecisionHook<'_>
    });
    let b2 = bar.clone();
    let report = opts.report;
    let on_round: Option<RoundHook<'_>> = Some(Box::new(move |r: &RoundRow| {
        let acc = r.accuracy.map(|a| format!(", accuracy {a:.4}")).unwrap_or_default();
        b2.set_message(format!("t = {:.1} s, {} finished{acc}", r.end_s, r.finished));
        b2.inc(1);
        if let Some(f) = report {
            b2.suspend(|| f(r));
        }
        if let Some(o) = &observer {
            o.round(r);
        }
    }));
    let summary = simulate_with(s, &mut sink, learner, on_decision, on_round, opts.allocator.as_ref())?;
    bar.finish_and_clear();
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Trace(e.to_string()))?;
    write(&partial.join("summary.json"), &json)?;
    Ok(summary)
}
