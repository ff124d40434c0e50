//! The `sflam` command line: a thin layer over the library. Exit codes:
//! 0 success, 2 bad input, 1 failure.

use clap::{Parser, Subcommand};
use sflam::config::{Scenario, load_scenario, load_scenario_str};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `println!` that does not panic when standard output is closed (`sflam
/// run | head`): the line is dropped and the command carries on, so a run
/// still completes its output.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// The default scenario, used when `scenarios/default.toml` is not in the
/// working directory.
const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");

#[derive(Parser)]
#[command(
    name = "sflam",
    version,
    about = "Discrete-event simulator of quantized split federated fine-tuning over OFDMA",
    after_help = "Examples:
  sflam run                                   # scenarios/default.toml -> runs/default/
  sflam run scenarios/fig4.toml --set allocator.name=bcd --set run.deadline_s=8 -o runs/t8
  python3 analysis/report.py runs/default     # a one-page report of any run
  sflam validate scenarios/cells.toml         # every problem at once, and the memory estimate
  sflam sweep scenarios/fig5.toml -o runs/fig5 && python3 analysis/fig5.py runs/fig5 figures
  sflam reference | less                      # every scenario key, its unit, default, range

Guide: README.md, then docs/ (getting-started, scenarios, traces, model, training, extending, results)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario (default: scenarios/default.toml) and write its traces.
    #[command(after_help = "Examples:
  sflam run                                              # the default co-simulation
  sflam run scenarios/fig4.toml -o runs/fig4-bcd --set allocator.name=bcd
  sflam run scenarios/default.toml --set training.enabled=false   # timing only
  sflam run scenarios/fig4.toml --dump-problems runs/problems     # each round's allocation problem as JSON
  sflam run runs/default/scenario.resolved.toml          # reproduce a run (into runs/default.rerun-1)

Each round prints: round, its end [s], candidates, scheduled (given an RB),
finished, stragglers (cut at the deadline), failed (dropped or offline),
the devices' energy [J] (the server's is not counted), and with training the
mean loss of the finished and the test accuracy. Candidates left out and why
are in left_out.parquet.")]
    Run {
        /// Scenario file.
        scenario: Option<PathBuf>,
        /// Override a field: --set network.rb_count=20 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (overrides run.output_dir).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write each round's allocation problem and decision as JSON here.
        #[arg(long, value_name = "DIR")]
        dump_problems: Option<PathBuf>,
        /// Print only the summary at the end: no progress bar, no per-round lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a scenario; exit 0 when valid, 2 with every problem otherwise.
    #[command(after_help = "Examples:
  sflam validate scenarios/default.toml
  sflam validate scenarios/fig4.toml --set network.rb_count=5 --set run.deadline_s=8")]
    Validate {
        scenario: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the workload model (the paper's Table I).
    #[command(after_help = "Examples:
  sflam workload
  sflam workload --json --batch 32 > workload.json && python3 analysis/table1.py workload.json figures")]
    Workload {
        /// JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Mini-batch size [images].
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Run a grid of overrides in parallel into hive-partitioned folders.
    #[command(after_help = "Examples:
  sflam sweep scenarios/fig4.toml -o runs/fig4            # the scenario's own [sweep] grid
  sflam sweep scenarios/fig4.toml -o runs/t --common-seed --grid allocator.name=bcd,ep --grid run.deadline_s=8,12
  sflam sweep scenarios/fig5.toml -o runs/fig5 --shard 0/4    # one of four slices (a cluster array job)

Points land in OUTPUT/key=value/... folders; a rerun resumes, skipping complete points.")]
    Sweep {
        scenario: PathBuf,
        /// An axis: KEY=V1,V2,... (repeatable; the product is run). Default:
        /// the scenario's `sweep.grid`.
        #[arg(long = "grid", value_name = "KEY=V1,V2")]
        grid: Vec<String>,
        /// Overrides applied to every point.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (default: `sweep.output_dir`, else runs/<run.name>).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Parallel runs (default: all cores).
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Run only slice I of N: points j with j % N == I.
        #[arg(long, default_value = "0/1")]
        shard: String,
        /// Same seed for every point (compare policies on the same devices).
        #[arg(long)]
        common_seed: bool,
        /// Print only the summary at the end: no progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Train the scenario's framework without the network simulation
    /// (`[training]`), writing rounds.parquet with loss and accuracy.
    #[command(after_help = "Examples:
  sflam train scenarios/train-fmnist.toml -o runs/train
  sflam train scenarios/train-fmnist.toml -o runs/train --stop-after 2   # stop with a checkpoint
  sflam train scenarios/train-fmnist.toml -o runs/train --resume         # go on from it
  sflam train scenarios/pretrain-fmnist.toml -o runs/pretrain --replace  # train again over a finished run")]
    Train {
        scenario: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (overrides run.output_dir).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Continue an unfinished run from its last checkpoint (kept in
        /// <output>.partial until the run's last round).
        #[arg(long, conflicts_with = "replace")]
        resume: bool,
        /// Train again into a folder that holds a finished run or an
        /// unfinished run's checkpoints (the old run stays whole until the
        /// new one is complete).
        #[arg(long)]
        replace: bool,
        /// Stop after this many rounds in all, with a checkpoint to resume from.
        #[arg(long, value_name = "ROUNDS")]
        stop_after: Option<u32>,
        /// Print only the summary at the end: no progress bar, no per-round lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Measure the utility U(b) from training: short `sflam train` runs at
    /// each bit width and at fp32, then a table for `allocator.utility =
    /// "table"` (OUTPUT/utility.csv) and every curve (OUTPUT/seed=S/bits=B/).
    #[command(after_help = "Examples:
  sflam calibrate scenarios/calibrate-fmnist.toml -o runs/calibrate
  sflam calibrate scenarios/calibrate-fmnist.toml -o runs/calibrate --seeds 3 --bits 2,4,8
  python3 analysis/fig3.py runs/calibrate        # Fig. 3: accuracy against bits
  sflam run scenarios/fig4.toml --set 'allocator.utility=\"table\"' --set 'allocator.utility_file=\"runs/calibrate/utility.csv\"'")]
    Calibrate {
        scenario: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (default: runs/<run.name>-calibrate).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Bit widths to train, each in 1..=16 (fp32 is always trained).
        #[arg(long, value_delimiter = ',', default_values_t = sflam::train::calibrate::DEFAULT_BITS)]
        bits: Vec<u32>,
        /// Seeds per width: run.seed, run.seed + 1, ...
        #[arg(long, default_value_t = 1)]
        seeds: u32,
        /// Print only the table: no progress bar, no per-training lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print the scenario reference (every key, its meaning and unit,
    /// default and allowed values) as Markdown, from the declarations.
    Reference,
    /// Solve one allocation problem (a `--dump-problems` file) offline.
    #[command(after_help = "Examples:
  sflam run scenarios/fig4.toml -q -o runs/f4 --dump-problems runs/f4-problems
  sflam allocate runs/f4-problems/round-00000.json --allocator bcd
  sflam allocate runs/f4-problems/round-00000.json --allocator exact | jq .objective_j")]
    Allocate {
        problem: PathBuf,
        #[arg(long, default_value = "exact")]
        allocator: String,
        /// Seed of the allocator's RNG stream (random allocators).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn load(path: Option<&Path>, set: &[String]) -> sflam::Result<Scenario> {
    match path {
        Some(p) => load_scenario(p, set),
        None => {
            let p = Path::new("scenarios/default.toml");
            if p.exists() {
                load_scenario(p, set)
            } else {
                let builtin =
                    |set: &[String]| load_scenario_str(DEFAULT_SCENARIO, Path::new("<built-in default.toml>"), set);
                // Its checkpoint (a path relative to the repository) is read
                // from the source tree the binary was built from, as the data
                // subset is, so that it runs from any working directory; the
                // user's --set comes after, so it still overrides.
                let init = builtin(&[])?.training.init;
                let mut with_init = Vec::new();
                if !init.is_empty() && Path::new(&init).is_relative() {
                    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(&init);
                    with_init.push(format!("training.init={:?}", shipped.display().to_string()));
                }
                with_init.extend_from_slice(set);
                builtin(&with_init)
            }
        }
    }
}

fn real_main() -> Result<(), sflam::Error> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run { scenario, set, output, dump_problems, quiet } => {
            let mut s = load(scenario.as_deref(), &set)?;
            if let Some(o) = output {
                s.run.output_dir = o.display().to_string();
            } else if let Some(fresh) = scenario.as_deref().and_then(|p| rerun_folder(p, &s.output_dir())) {
                eprintln!(
                    "{} is inside the run folder it names; writing to {} instead (-o chooses)",
                    scenario.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                    fresh.display()
                );
                s.run.output_dir = fresh.display().to_string();
            }
            let opts = sflam::run::RunOptions {
                dump_problems,
                progress: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                learner: Some(sflam::run::co_learner),
                report: (!quiet).then_some(print_sim_round as fn(&sflam::trace::RoundRow)),
                ..Default::default()
            };
            let (dir, sum) = sflam::run::run_to_dir(&s, &opts)?;
            say!(
                "{}: {} rounds, {} devices, simulated {:.1} s in {:.2} s wall; {} scheduled, {} finished, {} stragglers, {} failed; energy {:.1} J",
                sum.scenario,
                sum.rounds,
                sum.devices,
                sum.simulated_s,
                sum.wall_s,
                sum.scheduled,
                sum.finished,
                sum.stragglers,
                sum.failed,
                sum.energy_j
            );
            say!(
                "timing model: {}; trained model: {}",
                sum.timing_model,
                sum.trained_model.as_deref().unwrap_or("none (timing only)")
            );
            say!("output: {}", dir.display());
            say!("report: python3 analysis/report.py {}", dir.display());
        }
        Cmd::Validate { scenario, set } => {
            let s = load_scenario(&scenario, &set)?;
            let files = sflam::run::check_inputs(&s)?;
            say!(
                "{}: valid ({} devices, {} rounds, allocator {}; {} input file(s) read and checked)",
                scenario.display(),
                s.devices.count,
                s.run.rounds,
                s.allocator.name,
                files.len()
            );
            say!("{}", sflam::config::memory::estimate(&s, s.network.rb_count).describe());
        }
        Cmd::Workload { json, batch } => {
            if batch == 0 {
                return Err(sflam::Error::Input("--batch must be at least 1".into()));
            }
            if json {
                let rows = sflam::workload::table_one(batch);
                say!("{}", serde_json::to_string_pretty(&rows).map_err(|e| sflam::Error::failure("workload JSON", e))?);
            } else {
                print_all(&sflam::workload::table_one_markdown(batch))?;
            }
        }
        Cmd::Sweep { scenario, grid, set, output, jobs, shard, common_seed, quiet } => {
            if jobs == Some(0) {
                return Err(sflam::Error::Input("--jobs 0: give at least 1 parallel run (default: all cores)".into()));
            }
            let base = load_scenario(&scenario, &set)?;
            let grid = if grid.is_empty() { base.sweep.grid.clone() } else { grid };
            if grid.is_empty() {
                return Err(sflam::Error::Input(format!(
                    "{}: no grid: give --grid KEY=V1,V2 or set sweep.grid in the scenario",
                    scenario.display()
                )));
            }
            let output = output.unwrap_or_else(|| {
                if base.sweep.output_dir.is_empty() {
                    PathBuf::from("runs").join(&base.run.name)
                } else {
                    PathBuf::from(&base.sweep.output_dir)
                }
            });
            let axes = grid.iter().map(|g| sflam::sweep::parse_axis(g)).collect::<sflam::Result<Vec<_>>>()?;
            let opts = sflam::sweep::SweepOptions {
                jobs: jobs.unwrap_or_else(sflam::config::all_cores),
                shard: sflam::sweep::parse_shard(&shard)?,
                common_seed: common_seed || base.sweep.common_seed,
                progress: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                learner: Some(sflam::run::co_learner),
            };
            let dirs = sflam::sweep::run_sweep(&scenario, &set, &axes, &output, &opts)?;
            say!("{} points written under {}", dirs.len(), output.display());
        }
        Cmd::Train { scenario, set, output, resume, replace, stop_after, quiet } => {
            let s = load_scenario(&scenario, &set)?;
            let out = output.unwrap_or_else(|| s.output_dir());
            let opts = sflam::train::TrainOptions {
                resume,
                replace,
                stop_after,
                progress: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                on_round: (!quiet).then_some(print_round as fn(&sflam::train::TrainRoundRow)),
                ..Default::default()
            };
            let r = sflam::train::train_to_dir(&s, &out, &opts)?;
            say!(
                "{}: {} {} on {:?}, {} rounds; output: {}",
                s.run.name,
                s.training.model,
                s.training.framework,
                s.training.dataset,
                r.rows.len(),
                r.dir.display()
            );
        }
        Cmd::Calibrate { scenario, set, output, bits, seeds, quiet } => {
            let s = load_scenario(&scenario, &set)?;
            let out = output.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-calibrate", s.run.name)));
            let opts = sflam::train::calibrate::CalibrateOptions {
                bits,
                seeds,
                progress: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                on_point: (!quiet).then_some(print_point as fn(u64, u32, f64)),
            };
            let c = sflam::train::calibrate::calibrate(&s, &out, &opts)?;
            print_all(&sflam::alloc::utility::to_csv(&c.rows))?;
            say!("utility table: {} (allocator.utility = \"table\", allocator.utility_file)", c.table.display());
        }
        Cmd::Reference => print_all(&sflam::config::reference_markdown())?,
        Cmd::Allocate { problem, allocator, seed } => {
            let d = sflam::alloc::solve_file(&problem, &allocator, seed)?;
            say!("{}", serde_json::to_string_pretty(&d).map_err(|e| sflam::Error::failure("decision JSON", e))?);
        }
    }
    Ok(())
}

/// Writes `text` to standard output; a reader that stops early (`| head`)
/// is not an error.
fn print_all(text: &str) -> Result<(), sflam::Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(sflam::Error::failure("standard output", e)),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    sflam::train::tune_allocator();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            // The error's own words: its source (an I/O error) is in them
            // already, so the chain is not printed again.
            eprintln!("error: {}: {e}", if code == 2 { "bad input" } else { "run failed" });
            ExitCode::from(code as u8)
        }
    }
}

/// A run replaces its output folder when it completes. When the scenario
/// file lies inside that folder (`sflam run runs/x/scenario.resolved.toml`
/// reproducing runs/x), the run would delete the run it reproduces: it
/// goes to the first free `<folder>.rerun-N` instead.
fn rerun_folder(scenario: &Path, out: &Path) -> Option<PathBuf> {
    let (file, out) = (scenario.canonicalize().ok()?, out.canonicalize().ok()?);
    if !file.starts_with(&out) {
        return None;
    }
    (1..).map(|k| PathBuf::from(format!("{}.rerun-{k}", out.display()))).find(|p| !p.exists())
}

/// One co-simulation round as it ends, under a header printed once (the
/// legend is in `sflam run --help` and the README).
fn print_sim_round(r: &sflam::trace::RoundRow) {
    static HEADER: std::sync::Once = std::sync::Once::new();
    HEADER.call_once(|| {
        say!(
            "{:>5} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>10} {:>7} {:>8}",
            "round",
            "end_s",
            "cand",
            "sched",
            "fin",
            "strag",
            "failed",
            "energy_j",
            "loss",
            "accuracy"
        )
    });
    let f = |v: Option<f64>, w: usize| v.map_or_else(|| format!("{:>w$}", "-"), |v| format!("{v:>w$.4}"));
    say!(
        "{:>5} {:>9.1} {:>6} {:>6} {:>6} {:>6} {:>6} {:>10.1} {} {}",
        r.round,
        r.end_s,
        r.candidates,
        r.scheduled,
        r.finished,
        r.stragglers,
        r.failed,
        r.energy_j,
        f(r.loss, 7),
        f(r.accuracy, 8)
    );
}

/// One calibration training as it ends.
fn print_point(seed: u64, bits: u32, accuracy: f64) {
    let b = if bits == 32 { "fp32".to_string() } else { format!("{bits} bits") };
    say!("seed {seed:>3}  {b:>7}  final test accuracy {accuracy:.4}");
}

/// One line per round of `sflam train`, printed as the round ends.
fn print_round(row: &sflam::train::TrainRoundRow) {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    say!(
        "round {:>4}  train loss {}  test loss {}  accuracy {}  ({:.1} s)",
        row.round,
        f(row.train_loss),
        f(row.test_loss),
        f(row.accuracy),
        row.wall_s
    );
}
