//! The learning half (SPEC sections 1, 2 and 7): a split ViT trained with
//! Burn, activations quantized and bit-packed on the wire, and the
//! frameworks `sflam`, `sfl`, `sl`, `fl`, `ll` under one round loop.
//!
//! - `model.rs`: the two modules (device side, server side), timm names.
//! - `data.rs`: Fashion-MNIST, CIFAR-10/100, synthetic; Dirichlet split.
//! - `wire.rs`: the cut layer through the real quantizer.
//! - `training.rs`: [`Trainer`], the local updates and evaluation.
//! - `framework.rs`: the strategies.
//! - `params.rs`: flat parameter vectors and FedAvg.
//! - `import.rs`: timm safetensors.
//! - this file: `sflam train` (training without the network simulation),
//!   its trace and its checkpoints, and [`CoLearner`], the learning half
//!   inside the simulation (`sflam_core::engine::Learner`).
//!
//! This crate builds on `sflam-core`, whose modules it names as its own
//! (`crate::config`, ...), and adds Burn.

pub mod data;
pub mod framework;
pub mod import;
pub mod model;
pub mod ops;
pub mod optim;
pub mod params;
pub mod training;
pub mod wire;

// The core's modules, as this crate sees them.
pub(crate) use sflam_core::{config, engine, error, quant, sim, trace, workload};

pub use crate::config::{BackendKind, GpuKind, LrSchedule, OptimizerKind, OptimizerState, Precision};
pub use framework::{Framework, ModelState, RoundStats, Work, framework};
pub use training::{Eval, Params, Trainer, backend_device};

use crate::config::{FrameworkKind, Scenario, inputs};
use crate::error::{Error, Result};
use crate::sim::rng::stream;
use crate::trace::parquet::TableFile;
use params::weighted_average_model;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use sflam_core::output::{Found, Kind, Staged};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Keeps freed tensor buffers in the process (glibc): Burn allocates a
/// fresh buffer per op, and glibc's defaults hand buffers above its mmap
/// threshold back to the kernel, so every step paid for page faults and
/// zeroing of the same megabytes again (-17% step time at vit-small-32,
/// docs/performance.md). Call once at start-up; a no-op elsewhere.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; these are in range
    // (mmap threshold at most 32 MiB on 64-bit glibc).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// What a [`Trainer`] needs from a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSettings {
    pub seed: u64,
    /// Dirichlet α [1].
    pub alpha: f64,
    /// Minimum samples per device [samples].
    pub min_samples: usize,
    /// Mini-batch [images].
    pub batch: usize,
    /// Local iterations per participant and round, when `local_epochs` is 0 [1].
    pub iterations: u32,
    /// Passes over a device's own data per round; 0 = `iterations` [1].
    pub local_epochs: u32,
    pub optimizer: OptimizerKind,
    /// Fresh optimizer state every local update, or kept per device.
    pub optimizer_state: OptimizerState,
    /// Learning rate [1].
    pub lr: f64,
    /// SGD momentum [1].
    pub momentum: f64,
    pub lr_schedule: LrSchedule,
    /// Linear warm-up steps before the schedule [iterations].
    pub warmup_iterations: u64,
    /// Parts each mini-batch's gradient is computed in, in parallel [1].
    pub micro_batches: usize,
    /// The number format of the blocks' matrix products.
    pub precision: Precision,
    /// First loss scale of an f16 local update, log2 [1].
    pub loss_scale_log2: u32,
    /// Rounds of the run, the schedule's horizon [rounds].
    pub rounds: u32,
    /// Test samples evaluated; 0 = all [samples].
    pub eval_samples: usize,
    /// Worker threads; 0 = all cores [1].
    pub threads: usize,
    pub backend: BackendKind,
    /// The kind of Vulkan device of `backend = "wgpu"`.
    pub gpu_kind: GpuKind,
    /// Which device of `gpu_kind` [1].
    pub gpu_index: usize,
}

impl TrainSettings {
    pub fn of(s: &Scenario) -> TrainSettings {
        let t = &s.training;
        TrainSettings {
            seed: s.run.seed,
            alpha: t.dirichlet_alpha,
            min_samples: t.min_samples as usize,
            batch: t.batch,
            iterations: s.run.iterations,
            local_epochs: t.local_epochs,
            optimizer: t.optimizer,
            optimizer_state: t.optimizer_state,
            lr: t.lr,
            momentum: t.momentum,
            lr_schedule: t.lr_schedule,
            warmup_iterations: t.warmup_iterations,
            micro_batches: t.micro_batches,
            precision: t.precision,
            loss_scale_log2: t.loss_scale_log2,
            rounds: s.run.rounds,
            eval_samples: t.eval_samples,
            threads: s.run.threads,
            backend: t.backend,
            gpu_kind: t.gpu_kind,
            gpu_index: t.gpu_index,
        }
    }
}

/// Builds the trainer of a scenario: loads the data, splits it over
/// `devices.count` devices.
pub fn trainer_of(s: &Scenario) -> Result<Trainer> {
    let t = &s.training;
    let vit = crate::workload::vit_config(&t.model)
        .ok_or_else(|| Error::Input(format!("training.model = {:?}: unknown", t.model)))?;
    let (train, test) = data::load(t.dataset, &t.data_dir, s.run.seed)?;
    let train = train.truncated(t.train_samples);
    // The public share is drawn with seed 0, not the run's: a pretraining
    // run and the runs that fine-tune from it must agree on it.
    let train = if t.public_share > 0.0 {
        let (public, private) = train.split_public(t.public_share, 0);
        train.subset(if t.data_part == crate::config::DataPart::Public { &public } else { &private })
    } else {
        train
    };
    Trainer::new(vit, TrainSettings::of(s), train, test, s.devices.count)
}

/// The initial state: `training.init` or the seeded random init; with a
/// timm checkpoint, its import report too (printed to stderr here, and
/// recorded by the caller).
pub fn initial_state(s: &Scenario, t: &Trainer) -> Result<(ModelState, Option<import::ImportReport>)> {
    let init = &s.training.init;
    let mut report = None;
    let global = if init.is_empty() {
        t.initial_params()
    } else if init.ends_with(".safetensors") {
        let mut m = t.template(&t.initial_params());
        let r = import::load_timm(&mut m, Path::new(init))?;
        eprintln!("{r}");
        report = Some(r);
        Params { device: params::to_flat(&m.device_side), server: params::to_flat(&m.server_side) }
    } else {
        t.load(Path::new(init))?
    };
    for (half, v) in [("device", &global.device), ("server", &global.server)] {
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::Input(format!(
                "{init} (training.init): the {half} side's parameter {i} is {}; a model's parameters are finite",
                v[i]
            )));
        }
    }
    Ok((ModelState { global, local: Default::default() }, report))
}

sflam_core::row! {
    /// One row of the `rounds` table of `sflam train`.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct TrainRoundRow in "rounds" {
        pub round: u32,
        pub framework: FrameworkKind,
        pub participants: u32,
        /// Training samples held by the participants [samples].
        pub samples: u64,
        /// Mean activation bits [bit]; None for frameworks that send fp32 or nothing.
        pub mean_bits: Option<f64>,
        /// Uplink activation bytes of the round [B].
        pub wire_bytes: u64,
        /// Mean training loss of the participants [nat].
        pub train_loss: Option<f64>,
        /// Global model on the test set [nat]; None in rounds not evaluated.
        pub test_loss: Option<f64>,
        /// Global model's test accuracy [1].
        pub accuracy: Option<f64>,
        /// Steps computed again at half the loss scale
        /// (`training.precision = "f16"`), over the participants [steps].
        pub loss_scale_halvings: u32,
        /// Wall time of the round [s]: the one column that varies between runs.
        pub wall_s: f64,
    }
}

sflam_core::row! {
    /// One row of the `participants` table of `sflam train`: one
    /// participant's local update in one round.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct ParticipantRow in "participants" {
        pub round: u32,
        pub device: u32,
        /// Training samples it holds [samples].
        pub samples: u64,
        /// Uplink activation bytes of its update [B].
        pub wire_bytes: u64,
        /// Mean training loss over its iterations [nat].
        pub train_loss: f64,
        /// Steps computed again at half the loss scale
        /// (`training.precision = "f16"`) [steps].
        pub loss_scale_halvings: u32,
    }
}

sflam_core::row! {
    /// One row of the `devices` table of a training run: the data a device holds.
    #[derive(Clone, Debug, PartialEq)]
    pub struct DataRow in "devices" {
        pub device: u32,
        pub samples: u64,
        /// Samples per class, class 0 first [samples].
        pub class_counts: Vec<u32>,
    }
}

/// What `sflam train` leaves in `checkpoints/` besides the model.
#[derive(Serialize, Deserialize)]
struct Progress {
    /// Rounds done [1].
    round: u32,
    /// The scenario, so a resume cannot silently change it.
    scenario: String,
    rows: Vec<TrainRoundRow>,
    /// The `participants` rows of the rounds done. A checkpoint of an
    /// earlier build has none; it is refused for its build (see
    /// `load_checkpoint`), so the field may be absent to reach that error.
    #[serde(default)]
    participants: Vec<ParticipantRow>,
    /// The checkpoint's folder under `checkpoints/` (`round-NNNNN`).
    dir: String,
    /// The import report of `training.init`, when it was a timm checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    import: Option<import::ImportReport>,
}

/// Options of `sflam train`.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the last checkpoint of an unfinished run (kept in
    /// `<out>.partial`).
    pub resume: bool,
    /// Train again into a folder that holds a finished run or an
    /// unfinished run's checkpoints; the old run stays whole until the new
    /// one is complete.
    pub replace: bool,
    /// Stop (with a checkpoint) after this many rounds in all; the run can
    /// be resumed later (time-limited cluster jobs).
    pub stop_after: Option<u32>,
    pub progress: bool,
    /// Called with each round's row as soon as the round is done (above
    /// the progress bar), so a long run shows its curve while it runs.
    pub on_round: Option<fn(&TrainRoundRow)>,
    /// Fault injection for tests: the last checkpoint stops after its model
    /// files, before `progress.json`, as a job killed there would.
    pub crash_in_last_checkpoint: bool,
}

/// The result of a training run.
pub struct TrainOutcome {
    pub dir: PathBuf,
    pub rows: Vec<TrainRoundRow>,
    pub participants: Vec<ParticipantRow>,
    pub state: ModelState,
}

fn ckpt_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The folder under `checkpoints/` of the checkpoint after `rounds` rounds.
fn round_dir(rounds: u32) -> String {
    format!("round-{rounds:05}")
}

/// A checkpoint is a folder `checkpoints/round-NNNNN/` with the model
/// files, made whole before `checkpoints/progress.json` (written to a
/// temporary file and renamed, which is atomic) names it; only then are
/// older folders removed. A job killed at any instant leaves either the old
/// progress naming the old, intact folder, or the new progress naming the
/// new, complete one: never a model of round r+k beside progress of round
/// r. `crash`: fault injection for tests (stop after the model files, as a
/// kill there would).
fn save_checkpoint(t: &Trainer, out: &Path, state: &ModelState, p: &Progress, crash: bool) -> Result<()> {
    let root = ckpt_dir(out);
    let dir = root.join(&p.dir);
    if dir.exists() {
        // Left by a job killed while writing it: never named by progress.
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    t.save(&state.global, &dir.join("global.bpk"))?;
    for (d, p) in &state.local {
        t.save(p, &dir.join(format!("local-{d}.bpk")))?;
    }
    // Kept optimizer states (`optimizer_state = "keep"`), Burn's records.
    for ((d, half), bytes) in t.kept_optimizers() {
        let path = dir.join(format!("optimizer-{d}-{}.bpk", half.name()));
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    if crash {
        return Err(Error::failure("checkpoint", "fault injected before progress.json"));
    }
    let json = serde_json::to_string_pretty(p).map_err(|e| Error::failure("writing progress.json", e))?;
    let tmp = root.join("progress.json.partial");
    std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, root.join("progress.json")).map_err(|e| Error::io(&root, e))?;
    // Older checkpoints (and a crashed attempt's) are no longer named.
    let entries = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("round-") && name != p.dir {
            std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
        }
    }
    Ok(())
}

/// The scenario's text without its `#` header (version, commit, seed note).
fn scenario_body(text: &str) -> String {
    text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
}

fn load_checkpoint(t: &Trainer, out: &Path, scenario: &str) -> Result<(ModelState, Progress)> {
    let root = ckpt_dir(out);
    let pj = root.join("progress.json");
    let text = std::fs::read_to_string(&pj).map_err(|e| Error::io(&pj, e))?;
    let p: Progress = serde_json::from_str(&text).map_err(|e| Error::Input(format!("{}: {e}", pj.display())))?;
    if scenario_body(&p.scenario) != scenario_body(scenario) {
        return Err(Error::Input(format!(
            "{}: the checkpoint was made with another scenario; resume with the same one",
            pj.display()
        )));
    }
    if let Some(why) = inputs::changed(&inputs::recorded(&p.scenario), &inputs::recorded(scenario)) {
        return Err(Error::Input(format!(
            "{}: cannot resume: {why}; start again without --resume (--replace), or restore the file",
            pj.display()
        )));
    }
    if p.scenario != scenario {
        let build =
            |s: &str| s.lines().find(|l| l.starts_with("# sflam ")).unwrap_or("").trim_start_matches("# ").to_string();
        return Err(Error::Input(format!(
            "{}: the checkpoint was made by {}, this is {}; results are reproducible per build, so resume with the same one",
            pj.display(),
            build(&p.scenario),
            build(scenario)
        )));
    }
    let dir = root.join(&p.dir);
    let mut state = ModelState { global: t.load(&dir.join("global.bpk"))?, local: Default::default() };
    // One pass over the folder: per-device models and kept optimizer states.
    let (mut locals, mut kept) = (Vec::<(u32, PathBuf)>::new(), Vec::new());
    for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(d) = name.strip_prefix("local-").and_then(|n| n.strip_suffix(".bpk")?.parse().ok()) {
            locals.push((d, e.path()));
        }
        let Some(key) = name.strip_prefix("optimizer-").and_then(|n| n.strip_suffix(".bpk")) else { continue };
        let parsed = key.split_once('-').and_then(|(d, h)| Some((d.parse::<u32>().ok()?, training::Half::named(h)?)));
        let key = parsed.ok_or_else(|| {
            Error::Input(format!("{}: not an optimizer state's name (optimizer-DEVICE-HALF.bpk)", e.path().display()))
        })?;
        kept.push((key, std::fs::read(e.path()).map_err(|err| Error::io(e.path(), err))?));
    }
    locals.sort();
    for (d, path) in locals {
        state.local.insert(d, t.load(&path)?);
    }
    kept.sort_by_key(|(key, _)| *key);
    t.set_kept_optimizers(kept);
    Ok((state, p))
}

/// The participants of `round` in a run without the simulation: a uniform
/// sample without replacement, in device order.
pub fn sample_participants(s: &Scenario, round: u32) -> Vec<u32> {
    let n = s.devices.count;
    let k = s.training.participants.min(n);
    let mut rng = stream(s.run.seed, "participants", round as u64);
    let mut v: Vec<u32> = sample(&mut rng, n, k).into_iter().map(|i| i as u32).collect();
    v.sort_unstable();
    v
}

/// `sflam train`: trains `training.framework` for `run.rounds` rounds
/// without the network simulation; writes `rounds.parquet`,
/// `participants.parquet`, `devices.parquet`, `scenario.toml` and
/// checkpoints into `out`.
pub fn train_to_dir(s: &Scenario, out: &Path, opts: &TrainOptions) -> Result<TrainOutcome> {
    // Checked and locked before any work; written aside in `<out>.partial`
    // (where an unfinished run keeps its checkpoints) and swapped in whole.
    let mut staged = Staged::open(out, Kind::Train)?;
    let finished = staged.target == Found::Ours { complete: true };
    let progress_file = ckpt_dir(staged.dir()).join("progress.json");
    let unfinished = staged.leftover == Found::Ours { complete: false } && progress_file.exists();
    if opts.resume && !unfinished {
        return Err(Error::Input(if finished {
            format!(
                "--resume: the run in {} is finished, so there is nothing to resume (--replace trains it again)",
                out.display()
            )
        } else {
            format!(
                "--resume: there is no checkpoint to resume from: an unfinished `sflam train` keeps its \
                 checkpoints in {}, which holds none; start without --resume",
                staged.dir().display()
            )
        }));
    }
    if !opts.resume && !opts.replace {
        if unfinished {
            return Err(Error::Input(format!(
                "{} holds the checkpoints of an unfinished run of {}: --resume continues it, --replace \
                 discards it and starts again",
                staged.dir().display(),
                out.display()
            )));
        }
        if finished {
            return Err(Error::Input(format!(
                "{} holds a finished `sflam train` run; --replace trains again into it (the old run stays \
                 whole until the new one is complete), or choose another folder with -o",
                out.display()
            )));
        }
    }
    if !opts.resume {
        staged.fresh()?;
    }
    let work = staged.dir().to_path_buf();
    let out = work.as_path();
    let scenario = s.resolved_toml_with_inputs(true)?;
    let trainer = trainer_of(s)?;
    let fw = framework(s.training.framework);
    let (mut state, mut rows, mut participants, import) = if opts.resume {
        let (st, p) = load_checkpoint(&trainer, out, &scenario)?;
        (st, p.rows, p.participants, p.import)
    } else {
        let (st, import) = initial_state(s, &trainer)?;
        (st, Vec::new(), Vec::new(), import)
    };
    std::fs::write(out.join("scenario.toml"), &scenario).map_err(|e| Error::io(out, e))?;
    let mut devices = TableFile::<DataRow>::create(out)?;
    for (d, part) in trainer.parts.iter().enumerate() {
        devices.push(&DataRow {
            device: d as u32,
            samples: part.len() as u64,
            class_counts: trainer.train.class_counts(part),
        })?;
    }
    devices.finish()?;
    let mut table = TableFile::<TrainRoundRow>::create(out)?;
    for r in &rows {
        table.push(r)?;
    }
    let mut by_device = TableFile::<ParticipantRow>::create(out)?;
    for r in &participants {
        by_device.push(r)?;
    }
    let first = rows.len() as u32;
    let bar = sflam_core::progress::bar(opts.progress, s.run.rounds.saturating_sub(first) as u64);
    let end = opts.stop_after.map_or(s.run.rounds, |k| k.min(s.run.rounds));
    for round in first..end {
        let start = Instant::now();
        let work: Vec<Work> =
            sample_participants(s, round).into_iter().map(|device| Work { device, bits: s.training.bits }).collect();
        let stats = fw.round(&trainer, &mut state, round, &work)?;
        let last = round + 1 == s.run.rounds;
        let eval = if (round + 1).is_multiple_of(s.training.eval_every) || last {
            Some(fw.evaluate(&trainer, &state)?)
        } else {
            None
        };
        let quantized = s.training.framework.profile().quantized;
        let learned = stats.learned(eval.map(|e| e.accuracy));
        let row = TrainRoundRow {
            round,
            framework: fw.kind(),
            participants: work.len() as u32,
            samples: work.iter().map(|w| trainer.samples(w.device) as u64).sum(),
            mean_bits: (quantized && !work.is_empty())
                .then(|| work.iter().map(|w| w.bits as f64).sum::<f64>() / work.len() as f64),
            wire_bytes: stats.wire_bytes.iter().sum(),
            train_loss: learned.loss(),
            test_loss: eval.map(|e| e.loss),
            accuracy: learned.accuracy,
            loss_scale_halvings: learned.loss_scale_halvings(),
            wall_s: start.elapsed().as_secs_f64(),
        };
        table.push(&row)?;
        for (i, &device) in stats.devices.iter().enumerate() {
            let p = ParticipantRow {
                round,
                device,
                samples: trainer.samples(device) as u64,
                wire_bytes: stats.wire_bytes[i],
                train_loss: stats.losses[i],
                loss_scale_halvings: stats.loss_scale_halvings[i],
            };
            by_device.push(&p)?;
            participants.push(p);
        }
        if let Some(a) = row.accuracy {
            bar.set_message(format!("accuracy {a:.4}"));
        }
        bar.inc(1);
        if let Some(report) = opts.on_round {
            bar.suspend(|| report(&row));
        }
        rows.push(row);
        let every = s.training.checkpoint_every;
        if last || round + 1 == end || (every > 0 && (round + 1).is_multiple_of(every)) {
            let progress = Progress {
                round: round + 1,
                scenario: scenario.clone(),
                rows: rows.clone(),
                participants: participants.clone(),
                dir: round_dir(round + 1),
                import: import.clone(),
            };
            let crash = opts.crash_in_last_checkpoint && round + 1 == end;
            save_checkpoint(&trainer, out, &state, &progress, crash)?;
        }
    }
    bar.finish_and_clear();
    table.finish()?;
    by_device.finish()?;
    if end == s.run.rounds {
        // The final model at a stable path (`training.init` of the runs
        // that fine-tune from it): a copy of the last checkpoint's (the
        // last round always checkpoints), copied whole and then renamed.
        let last = ckpt_dir(out).join(round_dir(end)).join("global.bpk");
        let tmp = out.join("model.partial.bpk");
        std::fs::copy(&last, &tmp).map_err(|e| Error::io(&last, e))?;
        std::fs::rename(&tmp, out.join("model.bpk")).map_err(|e| Error::io(out, e))?;
        let dir = staged.commit()?;
        return Ok(TrainOutcome { dir, rows, participants, state });
    }
    Ok(TrainOutcome { dir: work, rows, participants, state })
}

/// The learning half inside the simulation (`training.enabled`): the
/// engine hands it each round's finished participants, their bits and
/// cells, and how to aggregate (flat, or edge servers every round and the
/// cloud every `backhaul.cloud_every` rounds).
pub struct CoLearner {
    trainer: Trainer,
    fw: Box<dyn Framework>,
    state: ModelState,
    /// Hierarchical aggregation: each cell's edge model since the cloud's
    /// last aggregation, with its weight (the samples of the devices its
    /// latest edge round averaged) [samples].
    edges: BTreeMap<u32, (Params, f64)>,
    eval_every: u32,
    rounds: u32,
    import: Option<import::ImportReport>,
}

impl CoLearner {
    pub fn new(s: &Scenario) -> Result<CoLearner> {
        let trainer = trainer_of(s)?;
        let (state, import) = initial_state(s, &trainer)?;
        Ok(CoLearner {
            fw: framework(s.training.framework),
            trainer,
            state,
            edges: BTreeMap::new(),
            import,
            eval_every: s.training.eval_every,
            rounds: s.run.rounds,
        })
    }
}

impl CoLearner {
    /// Hierarchical aggregation: the framework's round runs per cell,
    /// from the cell's edge model (the global model when the cloud has
    /// aggregated since), and its result becomes the edge model; with
    /// `cloud`, the edge models are then averaged into the global model
    /// (weighted by their samples) and the edge models dropped.
    fn edge_round(&mut self, round: u32, finished: &[crate::engine::Finished], cloud: bool) -> Result<RoundStats> {
        let mut by_cell: BTreeMap<u32, Vec<Work>> = BTreeMap::new();
        for f in finished {
            by_cell.entry(f.cell).or_default().push(Work { device: f.device.0, bits: f.bits });
        }
        let mut stats = RoundStats::default();
        for (cell, work) in by_cell {
            let start = self.edges.get(&cell).map_or_else(|| self.state.global.clone(), |e| e.0.clone());
            let mut st = ModelState { global: start, local: std::mem::take(&mut self.state.local) };
            let s = self.fw.round(&self.trainer, &mut st, round, &work);
            self.state.local = st.local;
            let s = s?;
            let weight = work.iter().map(|w| self.trainer.samples(w.device) as f64).sum();
            self.edges.insert(cell, (st.global, weight));
            stats.devices.extend(s.devices);
            stats.losses.extend(s.losses);
            stats.wire_bytes.extend(s.wire_bytes);
            stats.loss_scale_halvings.extend(s.loss_scale_halvings);
        }
        if cloud {
            let items: Vec<(f64, &Params)> = self.edges.values().map(|(p, w)| (*w, p)).collect();
            if let Some(global) = weighted_average_model(&items) {
                self.state.global = global;
            }
            self.edges.clear();
        }
        Ok(stats)
    }
}

impl crate::engine::Learner for CoLearner {
    fn data(&self) -> (Vec<u64>, Vec<Vec<u32>>) {
        let t = &self.trainer;
        (t.parts.iter().map(|p| p.len() as u64).collect(), t.parts.iter().map(|p| t.train.class_counts(p)).collect())
    }

    fn round(
        &mut self,
        round: u32,
        finished: &[crate::engine::Finished],
        aggregation: crate::engine::Aggregation,
    ) -> Result<crate::engine::Learned> {
        use crate::engine::Aggregation;
        let stats = match aggregation {
            Aggregation::Flat => {
                let work: Vec<Work> = finished.iter().map(|f| Work { device: f.device.0, bits: f.bits }).collect();
                self.fw.round(&self.trainer, &mut self.state, round, &work)?
            }
            Aggregation::Edge | Aggregation::EdgeAndCloud => {
                self.edge_round(round, finished, aggregation == Aggregation::EdgeAndCloud)?
            }
        };
        let last = round + 1 == self.rounds;
        let acc = if (round + 1).is_multiple_of(self.eval_every) || last {
            Some(self.fw.evaluate(&self.trainer, &self.state)?.accuracy)
        } else {
            None
        };
        Ok(stats.learned(acc))
    }

    fn init_report(&self) -> Option<serde_json::Value> {
        self.import.as_ref().and_then(|r| serde_json::to_value(r).ok())
    }
}
