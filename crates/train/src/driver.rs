//! `sflam train`: training without the network simulation, its traces
//! (`rounds`, `participants`, `devices`) and its options.

use crate::checkpoint::{Progress, ckpt_dir, load_checkpoint, round_dir, save_checkpoint};
use crate::config::{FrameworkKind, Scenario};
use crate::error::{Error, Result};
use crate::framework::{ModelState, Work, framework};
use crate::settings::{initial_state, trainer_of};
use crate::sim::rng::stream;
use crate::trace::parquet::TableFile;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use sflam_core::output::{Found, Kind, Staged};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
        if s.training.task == crate::config::TrainTask::Labels {
            std::fs::copy(&last, &tmp).map_err(|e| Error::io(&last, e))?;
        } else {
            // A pretext task: the backbone with a fresh head for the real task.
            let (target, params) = crate::settings::with_fresh_head(s, &state.global)?;
            target.save(&params, &tmp)?;
        }
        std::fs::rename(&tmp, out.join("model.bpk")).map_err(|e| Error::io(out, e))?;
        let dir = staged.commit()?;
        return Ok(TrainOutcome { dir, rows, participants, state });
    }
    Ok(TrainOutcome { dir: work, rows, participants, state })
}
