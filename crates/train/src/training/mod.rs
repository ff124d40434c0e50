//! The explicit split training loop (SPEC section 7). A [`Trainer`] owns
//! the data, its split over devices, the model templates and a thread
//! pool, and offers the steps every framework is made of: a split local
//! update (device forward -> wire -> server forward/backward -> gradient
//! back -> device backward), a whole-model local update, and evaluation
//! of a model on the held-out test set. One file per concern: `split.rs`,
//! `whole.rs`, `eval.rs`, `state.rs` (optimizer states, model records),
//! `loss_scale.rs` (f16), `device.rs` (backends); this file holds the
//! types, the data and batches, the schedule and the shared helpers.
//!
//! Everything random is drawn from streams keyed by (seed, purpose, round,
//! device), so a participant's update does not depend on which thread ran
//! it, on the other participants, or on the thread count.

use super::data::{Dataset, dirichlet_partition};
use super::model::{DeviceModel, ServerModel};
use super::params::{load_flat, to_flat};
use super::wire;
use crate::config::{BackendKind, GpuKind, Precision};
use crate::config::{OptimizerKind, OptimizerState};
use crate::error::{Error, Result};
use crate::settings::TrainSettings;
use crate::sim::rng::{derive_seed, stream};
use crate::workload::VitConfig;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use std::collections::BTreeMap;

mod device;
mod eval;
mod loss_scale;
mod split;
mod state;
mod whole;

pub use device::{backend_device, check_precision};
pub use loss_scale::LossScale;
pub use whole::whole_step;

/// A model's parameters, split at the cut layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub device: Vec<f32>,
    pub server: Vec<f32>,
}

/// What one participant's local update produced.
#[derive(Clone, Debug)]
pub struct LocalUpdate {
    pub params: Params,
    /// Mean training loss over its iterations [nat].
    pub loss: f64,
    /// Uplink activation bytes over its iterations [B].
    pub wire_bytes: u64,
    /// Steps computed again at half the loss scale (f16) [steps].
    pub loss_scale_halvings: u32,
}

/// Test-set loss [nat] and accuracy [1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: f64,
}

pub struct Trainer {
    /// The trained model: `training.model`'s configuration with the data
    /// set's class count.
    pub vit: VitConfig,
    pub settings: TrainSettings,
    pub train: Dataset,
    pub test: Dataset,
    /// Training-sample indices of each device.
    pub parts: Vec<Vec<u32>>,
    plain: Device,
    grad: Device,
    device_template: DeviceModel,
    server_template: ServerModel,
    pool: rayon::ThreadPool,
    /// `optimizer_state = "keep"`: each device's optimizer state per half,
    /// as Burn's serialized record, on the host [B].
    kept: std::sync::Mutex<BTreeMap<(u32, Half), Vec<u8>>>,
}

/// Which model an optimizer state belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Half {
    /// The device side of a split update.
    Device = 0,
    /// The server side of a split update (the server keeps it per device).
    Server = 1,
    /// The whole model of a whole-model update (`fl`, `ll`).
    Whole = 2,
}

impl Half {
    const ALL: [Half; 3] = [Half::Device, Half::Server, Half::Whole];

    /// Its name in checkpoint files.
    pub fn name(self) -> &'static str {
        match self {
            Half::Device => "device",
            Half::Server => "server",
            Half::Whole => "whole",
        }
    }

    pub fn named(name: &str) -> Option<Half> {
        Half::ALL.into_iter().find(|h| h.name() == name)
    }
}

impl Trainer {
    /// Splits `train` over `devices` and builds the model templates.
    pub fn new(
        vit: &'static VitConfig,
        settings: TrainSettings,
        train: Dataset,
        test: Dataset,
        devices: usize,
    ) -> Result<Trainer> {
        // Gray images go to 3-channel models repeated; any size is resized.
        if !(train.channels == vit.channels || (train.channels == 1 && vit.channels == 3)) {
            return Err(Error::Input(format!(
                "training.model = {:?} takes {}-channel images; the data set has {} channels",
                vit.name, vit.channels, train.channels,
            )));
        }
        // The head has the data set's classes (CIFAR-100: 100), whatever
        // the configuration's nominal count.
        let vit = VitConfig { classes: train.classes, ..vit.clone() };
        let mut rng = stream(settings.seed, "partition", 0);
        let parts = dirichlet_partition(&train, devices, settings.alpha, settings.min_samples, &mut rng)?;
        let plain = backend_device(settings.backend, settings.gpu_kind, settings.gpu_index)?;
        check_precision(&plain, settings.precision, settings.backend)?;
        let grad = plain.clone().autodiff();
        // Parameter ids numbered in module order instead of Burn's random
        // ones: optimizer records are keyed by them, and a kept state must
        // find its parameters again in a resumed process.
        let device_template = number_params(DeviceModel::new(&vit, &grad), 1);
        let server_template = number_params(ServerModel::new(&vit, &grad).with_precision(settings.precision), 1 << 32);
        let threads = sflam_core::config::threads_or_all_cores(settings.threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::failure(format!("a pool of run.threads = {threads} worker threads"), e))?;
        Ok(Trainer {
            vit,
            settings,
            train,
            test,
            parts,
            plain,
            grad,
            device_template,
            server_template,
            pool,
            kept: Default::default(),
        })
    }

    /// The initial model: timm-style N(0, 0.02) weights, unit norms, zero
    /// biases, drawn from the run's own stream (Burn's global generator is
    /// shared by every thread and so is not used).
    pub fn initial_params(&self) -> Params {
        let mut rng = stream(self.settings.seed, "init", 0);
        let dev = init_params(self.device_template.clone(), &mut rng);
        let srv = init_params(self.server_template.clone(), &mut rng);
        Params { device: to_flat(&dev), server: to_flat(&srv) }
    }

    /// Runs `f` on the trainer's pool (its threads also run Burn's kernels).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Samples each device holds [1].
    pub fn samples(&self, device: u32) -> usize {
        self.parts[device as usize].len()
    }

    /// Local iterations of `device` in a round: `run.iterations`, or
    /// `local_epochs` x ceil(samples / batch) (the simulation charges the
    /// same count, `config::local_iterations`).
    pub fn iterations_of(&self, device: u32) -> u32 {
        let s = &self.settings;
        crate::config::local_iterations(s.local_epochs, self.samples(device) as u64, s.batch, s.iterations)
    }

    /// The mini-batches of `device` in `round`. With a fixed iteration
    /// count: its samples reshuffled per round, cycled when it holds fewer
    /// than iterations x batch. With local epochs: each epoch a fresh
    /// permutation of its samples cut into ceil(samples / batch) batches,
    /// the last one filled up from the start of the same permutation, so
    /// every batch holds `batch` images and every sample is seen every
    /// epoch.
    fn batches(&self, device: u32, round: u32) -> Vec<Vec<u32>> {
        let own = &self.parts[device as usize];
        let b = self.settings.batch;
        let epochs = self.settings.local_epochs;
        if epochs == 0 {
            let mut own = own.clone();
            let mut rng = stream(self.settings.seed, "batches", ((round as u64) << 32) | device as u64);
            own.shuffle(&mut rng);
            return (0..self.settings.iterations as usize)
                .map(|i| (0..b).map(|j| own[(i * b + j) % own.len()]).collect())
                .collect();
        }
        let per_epoch = own.len().div_ceil(b).max(1);
        let mut out = Vec::with_capacity(epochs as usize * per_epoch);
        for e in 0..epochs as u64 {
            let mut perm = own.clone();
            let key = ((round as u64) << 32) | device as u64;
            perm.shuffle(&mut stream(self.settings.seed, "batches", key ^ (e << 56)));
            out.extend((0..per_epoch).map(|i| (0..b).map(|j| perm[(i * b + j) % perm.len()]).collect()));
        }
        out
    }

    /// The learning rate [1] of local iteration `it` of `round` for a
    /// device running `per` iterations a round (the schedule runs over each
    /// device's own steps).
    fn lr(&self, round: u32, it: usize, per: usize) -> f64 {
        let per = per as u64;
        let step = round as u64 * per + it as u64;
        self.settings.lr_schedule.at(
            self.settings.lr,
            step,
            self.settings.rounds as u64 * per,
            self.settings.warmup_iterations,
        )
    }

    fn models(&self, p: &Params, device: &Device) -> (DeviceModel, ServerModel) {
        (
            load_flat(self.device_template.clone(), &p.device, device),
            load_flat(self.server_template.clone(), &p.server, device),
        )
    }

    /// Runs `f` for every item on the pool; results in item order.
    pub fn parallel<T: Sync, R: Send>(&self, items: &[T], f: impl Fn(&T) -> Result<R> + Sync + Send) -> Result<Vec<R>> {
        self.pool.install(|| items.par_iter().map(&f).collect())
    }
}

/// The part-wise pass of [`whole_step`] and [`server_pass`]: part i of
/// `micro` covers rows start..start + len of the batch of `b` and weighs
/// share = len / b. `part` gets its own copy of `m` with fresh leaves (same
/// data, same ParamIds): graphs that share nodes are merged by
/// burn-autodiff 0.22, whose merge and backward take their two locks in
/// opposite orders, so parallel parts on shared leaves deadlock. It returns
/// the part's share-weighted gradients, an output and its share-weighted
/// loss. Parts run in parallel on the current pool; gradients and losses
/// are summed, and outputs collected, in part order.
fn in_parts<M: Module + Sync, R: Send>(
    m: &M,
    b: usize,
    micro: usize,
    part: impl Fn(&M, usize, usize, f64) -> Result<(GradientsParams, R, f64)> + Sync,
) -> Result<(GradientsParams, Vec<R>, f64)> {
    let parts: Vec<(GradientsParams, R, f64)> = (0..micro)
        .into_par_iter()
        .map(|i| {
            let (start, end) = (i * b / micro, (i + 1) * b / micro);
            part(&fork(m), start, end - start, (end - start) as f64 / b as f64)
        })
        .collect::<Result<_>>()?;
    let (mut grads, mut outs, mut loss) = (Vec::with_capacity(micro), Vec::with_capacity(micro), 0.0);
    for (g, out, l) in parts {
        grads.push(g);
        outs.push(out);
        loss += l;
    }
    Ok((super::optim::sum_in_order(m, grads), outs, loss))
}

/// The same parameters (data shared, ParamIds kept) as fresh autodiff
/// leaves, so that no graph built on the copy shares a node with another.
fn fork<M: Module>(m: &M) -> M {
    struct Leaves;
    impl ModuleMapper for Leaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.detach().require_grad())
        }
    }
    m.clone().map(&mut Leaves)
}

fn finite_scalar(t: &Tensor<1>, checkpoint: &'static str) -> Result<f64> {
    let v = t.clone().into_scalar::<f32>() as f64;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Numeric { checkpoint, detail: format!("loss is {v} (try a smaller training.lr)") })
    }
}

/// Gives `m`'s parameters the ids first, first + 1, ... in module order.
fn number_params<M: Module>(m: M, first: u64) -> M {
    struct Number(u64);
    impl ModuleMapper for Number {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            self.0 += 1;
            Param::from_mapped_value(burn::module::ParamId::from(self.0 - 1), value, mapper)
        }
    }
    m.map(&mut Number(first))
}

/// Sets every float parameter by its name: `gamma` (norm scale) to 1,
/// `beta` and `bias` to 0, everything else N(0, 0.02).
fn init_params<M: Module>(m: M, rng: &mut crate::sim::rng::Rng) -> M {
    struct Init<'a> {
        rng: &'a mut crate::sim::rng::Rng,
        path: Vec<String>,
    }
    impl ModuleMapper for Init<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let leaf = self.path.last().map(String::as_str).unwrap_or("");
            let normal = Normal::new(0.0f32, 0.02).expect("valid normal");
            param.map(|t| {
                let shape = t.shape();
                let n = shape.num_elements();
                let values: Vec<f32> = match leaf {
                    "gamma" => vec![1.0; n],
                    "beta" | "bias" => vec![0.0; n],
                    _ => (0..n).map(|_| normal.sample(self.rng)).collect(),
                };
                Tensor::from_data(TensorData::new(values, shape), &t.device()).set_require_grad(t.is_require_grad())
            })
        }
    }
    m.map(&mut Init { rng, path: Vec::new() })
}
