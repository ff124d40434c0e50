//! What training needs from a scenario: [`TrainSettings`], the
//! [`Trainer`] with its data split over the devices, and the initial
//! model (random, a `.bpk` checkpoint or timm weights).

use crate::config::Scenario;
use crate::config::{BackendKind, GpuKind, LrSchedule, OptimizerKind, OptimizerState, Precision};
use crate::error::{Error, Result};
use crate::framework::ModelState;
use crate::training::{Params, Trainer};
use crate::{data, import, params};
use std::path::Path;

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
    let (train, test) = match t.task {
        crate::config::TrainTask::Labels => (train, test),
        crate::config::TrainTask::Rotation => (train.rotated(s.run.seed, 0), test.rotated(s.run.seed, 1)),
    };
    Trainer::new(vit, TrainSettings::of(s), train, test, s.devices.count)
}

/// The model a pretext-task run hands on (`training.task = "rotation"`):
/// its pretrained parameters with the pretext head replaced by a fresh one
/// for the data set's classes, drawn as a run of the real task at the same
/// seed draws its head. The head is the server side's last parameters
/// (`ServerModel::head`: weight, then bias). Returns the trainer of the
/// real task (to save with) and the parameters.
pub fn with_fresh_head(s: &Scenario, pretext: &Params) -> Result<(Trainer, Params)> {
    let mut real = s.clone();
    real.training.task = crate::config::TrainTask::Labels;
    let target = trainer_of(&real)?;
    let fresh = target.initial_params();
    let head = |classes: usize| classes * (target.vit.dim + 1);
    let (from, to) = (head(4), head(target.vit.classes));
    let body = pretext.server.len().checked_sub(from).filter(|&b| b + to == fresh.server.len());
    let Some(body) = body else {
        return Err(Error::Numeric {
            checkpoint: "training.task",
            detail: format!(
                "the pretext model's server side ({} parameters) is not the real task's ({}) with a {}-class head for a 4-class one",
                pretext.server.len(),
                fresh.server.len(),
                target.vit.classes
            ),
        });
    };
    let mut server = pretext.server[..body].to_vec();
    server.extend_from_slice(&fresh.server[body..]);
    Ok((target, Params { device: pretext.device.clone(), server }))
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
