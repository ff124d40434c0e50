//! The explicit split training loop (SPEC section 7). A [`Trainer`] owns
//! the data, its split over devices, the model templates and a thread
//! pool, and offers the steps every framework is made of: a split local
//! update (device forward -> wire -> server forward/backward -> gradient
//! back -> device backward), a whole-model local update, and evaluation
//! of a model on the held-out test set.
//!
//! Everything random is drawn from streams keyed by (seed, purpose, round,
//! device), so a participant's update does not depend on which thread ran
//! it, on the other participants, or on the thread count.

use super::data::{Dataset, dirichlet_partition};
use super::model::{DeviceModel, ServerModel};
use super::params::{load_flat, to_flat};
use super::wire;
use super::{OptimizerKind, OptimizerState, TrainSettings};
use crate::config::{BackendKind, GpuKind, Precision};
use crate::error::{Error, Result};
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

    fn optimizer(&self) -> ModuleOptimizer {
        match self.settings.optimizer {
            OptimizerKind::Sgd => super::optim::Sgd::new(self.settings.momentum).init(),
            OptimizerKind::Adam => super::optim::Adam::new().init(),
        }
    }

    /// The optimizer of `device`'s `half`: fresh, or its kept state.
    fn optimizer_of(&self, device: u32, half: Half) -> Result<ModuleOptimizer> {
        if self.settings.optimizer_state == OptimizerState::Reset {
            return Ok(self.optimizer());
        }
        match self.kept().get(&(device, half)) {
            None => Ok(self.optimizer()),
            Some(bytes) => self
                .optimizer()
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.clone()))
                .map_err(|e| Error::failure(format!("device {device}'s kept {half:?} optimizer state"), e)),
        }
    }

    /// Keeps `opt` as `device`'s `half` state (`optimizer_state = "keep"`).
    fn keep_optimizer(&self, device: u32, half: Half, opt: &ModuleOptimizer) -> Result<()> {
        if self.settings.optimizer_state == OptimizerState::Reset {
            return Ok(());
        }
        let bytes =
            opt.into_bytes().map_err(|e| Error::failure(format!("device {device}'s {half:?} optimizer state"), e))?;
        self.kept().insert((device, half), bytes.to_vec());
        Ok(())
    }

    /// Every kept optimizer state, in (device, half) order: what a
    /// checkpoint saves.
    pub fn kept_optimizers(&self) -> Vec<((u32, Half), Vec<u8>)> {
        self.kept().iter().map(|(key, v)| (*key, v.clone())).collect()
    }

    /// Replaces the kept optimizer states (a resumed checkpoint's).
    pub fn set_kept_optimizers(&self, states: Vec<((u32, Half), Vec<u8>)>) {
        *self.kept() = states.into_iter().collect();
    }

    /// The kept states. A poisoned lock (a participant's thread panicked)
    /// is taken over: every access inserts or reads one whole entry, so
    /// the map is never half-updated.
    fn kept(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u32, Half), Vec<u8>>> {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// One split local update of `device` in `round` from `start`, with its
    /// activations sent at `bits` (None = fp32). Each half's optimizer is
    /// fresh, or the device's kept state (`optimizer_state = "keep"`).
    pub fn split_update(&self, start: &Params, device: u32, round: u32, bits: Option<u32>) -> Result<LocalUpdate> {
        let (mut dm, mut sm) = self.models(start, &self.grad);
        let (mut opt_d, mut opt_s) =
            (self.optimizer_of(device, Half::Device)?, self.optimizer_of(device, Half::Server)?);
        let loss_fn = CrossEntropyLossConfig::new().init(&self.grad);
        let key = derive_seed(self.settings.seed, "wire") ^ ((round as u64) << 32 | device as u64);
        let (mut loss_sum, mut bytes) = (0.0, 0u64);
        let mut scale = self.loss_scale();
        let batches = self.batches(device, round);
        for (it, idx) in batches.iter().enumerate() {
            let lr = self.lr(round, it, batches.len());
            let (x, y) = self.train.batch_for(idx, &self.grad, self.vit.channels, self.vit.image);
            let act = dm.forward(x);
            let sent =
                wire::send(&act, bits, key.wrapping_add((it as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)), &self.grad)?;
            bytes += sent.wire_bytes;
            // The server's pass again at half the loss scale while its
            // gradients (the cut layer's among them) are not finite; the
            // device's message stays the one sent.
            let (gp, cut_grad, loss) = loop {
                let (gp, cut, loss) =
                    server_pass(&sm, &loss_fn, sent.input.clone(), y.clone(), self.settings.micro_batches, scale)?;
                match scale.unscale(gp, &sm, Some(cut.clone()))? {
                    Some(gp) => break (gp, cut, loss),
                    None => scale.halve()?,
                }
            };
            loss_sum += loss;
            sm = opt_s.step(lr, sm, gp);
            // Device backward: d(sum(act * g))/d(theta) = g . d(act)/d(theta),
            // g the cut layer's gradient at the loss scale.
            let g = Tensor::<3>::from_data(cut_grad.into_data(), &self.grad);
            let surrogate = (act * g).sum();
            let grads = surrogate.backward();
            let gp = scale.divide(GradientsParams::from_grads(grads, &dm), &dm);
            dm = opt_d.step(lr, dm, gp);
        }
        self.keep_optimizer(device, Half::Device, &opt_d)?;
        self.keep_optimizer(device, Half::Server, &opt_s)?;
        Ok(LocalUpdate {
            params: Params { device: to_flat(&dm), server: to_flat(&sm) },
            loss: loss_sum / batches.len().max(1) as f64,
            wire_bytes: bytes,
            loss_scale_halvings: scale.halvings(),
        })
    }

    /// One whole-model local update (FL, LL): both halves on the device.
    pub fn whole_update(&self, start: &Params, device: u32, round: u32) -> Result<LocalUpdate> {
        let (device_side, server_side) = self.models(start, &self.grad);
        let mut m = super::model::SplitVit { device_side, server_side };
        let mut opt = self.optimizer_of(device, Half::Whole)?;
        let loss_fn = CrossEntropyLossConfig::new().init(&self.grad);
        let mut loss_sum = 0.0;
        let mut scale = self.loss_scale();
        let batches = self.batches(device, round);
        for (it, idx) in batches.iter().enumerate() {
            let (x, y) = self.train.batch_for(idx, &self.grad, self.vit.channels, self.vit.image);
            let loss;
            let lr = self.lr(round, it, batches.len());
            (m, loss) = whole_step(m, &mut opt, lr, &loss_fn, x, y, self.settings.micro_batches, &mut scale)?;
            loss_sum += loss;
        }
        self.keep_optimizer(device, Half::Whole, &opt)?;
        Ok(LocalUpdate {
            params: Params { device: to_flat(&m.device_side), server: to_flat(&m.server_side) },
            loss: loss_sum / batches.len().max(1) as f64,
            wire_bytes: 0,
            loss_scale_halvings: scale.halvings(),
        })
    }

    /// A local update's first loss scale (`training.loss_scale_log2` at
    /// f16, none otherwise).
    fn loss_scale(&self) -> LossScale {
        LossScale::first(self.settings.precision, self.settings.loss_scale_log2)
    }

    /// Runs `f` for every item on the pool; results in item order.
    pub fn parallel<T: Sync, R: Send>(&self, items: &[T], f: impl Fn(&T) -> Result<R> + Sync + Send) -> Result<Vec<R>> {
        self.pool.install(|| items.par_iter().map(&f).collect())
    }

    /// Loss and accuracy of `p` on the test set (the first
    /// `eval_samples` of it when set), batches of 256 in parallel.
    pub fn evaluate(&self, p: &Params) -> Result<Eval> {
        let (dm, sm) = self.models(p, &self.plain);
        let n = match self.settings.eval_samples {
            0 => self.test.len(),
            k => k.min(self.test.len()),
        };
        if n == 0 {
            // Accuracy and loss of no images are undefined, not 0.
            return Err(Error::Input(
                "training.dataset: the test set holds no images, so the model cannot be evaluated".into(),
            ));
        }
        let chunks: Vec<Vec<u32>> = (0..n as u32).collect::<Vec<_>>().chunks(256).map(<[u32]>::to_vec).collect();
        let loss_fn = CrossEntropyLossConfig::new().init(&self.plain);
        let per: Vec<(f64, usize)> = self.parallel(&chunks, |idx| {
            let (x, y) = self.test.batch_for(idx, &self.plain, self.vit.channels, self.vit.image);
            let logits = sm.forward(dm.forward(x));
            let loss = finite_scalar(&loss_fn.forward(logits.clone(), y.clone()), "eval.loss")? * idx.len() as f64;
            let hits: Tensor<1, Int> = logits.argmax(1).reshape([idx.len()]).equal(y).int().sum();
            Ok((loss, hits.into_scalar::<i64>() as usize))
        })?;
        let (loss, hits) = per.iter().fold((0.0, 0usize), |(l, h), &(a, b)| (l + a, h + b));
        Ok(Eval { loss: loss / n.max(1) as f64, accuracy: hits as f64 / n.max(1) as f64 })
    }

    /// Writes `p` as a Burn record (burnpack) of the whole model.
    pub fn save(&self, p: &Params, path: &std::path::Path) -> Result<()> {
        let (device_side, server_side) = self.models(p, &self.plain);
        super::model::SplitVit { device_side, server_side }
            .save_file(path)
            .map_err(|e| Error::failure(format!("{}: saving the checkpoint", path.display()), e))
    }

    /// Reads a model saved by [`Trainer::save`].
    pub fn load(&self, path: &std::path::Path) -> Result<Params> {
        let (device_side, server_side) = self.models(&self.initial_params(), &self.plain);
        let m = super::model::SplitVit { device_side, server_side }
            .try_load_file(path)
            .map_err(|e| Error::Input(format!("{}: not a checkpoint of {}: {e}", path.display(), self.vit.name)))?;
        Ok(Params { device: to_flat(&m.device_side), server: to_flat(&m.server_side) })
    }

    /// The whole-model template on the plain device (for imports).
    pub fn template(&self, p: &Params) -> super::model::SplitVit {
        let (device_side, server_side) = self.models(p, &self.plain);
        super::model::SplitVit { device_side, server_side }
    }
}

/// One optimizer step of the whole model on the batch (x, y): forward,
/// loss, backward, update. The batch is cut into `micro` near-equal parts
/// whose gradients are computed in parallel on the current rayon pool,
/// each from its mean loss weighted by its share of the batch, and summed
/// in part order: the full batch's mean-loss gradient, the same for any
/// thread count. With a loss `scale` (f16) the loss is multiplied by it
/// and the gradients divided by it, and a step whose gradients are not
/// finite is computed again at half the scale. Returns the model and the
/// batch's mean loss [nat].
#[allow(clippy::too_many_arguments)]
pub fn whole_step(
    m: super::model::SplitVit,
    opt: &mut ModuleOptimizer,
    lr: f64,
    loss_fn: &CrossEntropyLoss,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    micro: usize,
    scale: &mut LossScale,
) -> Result<(super::model::SplitVit, f64)> {
    let b = x.dims()[0];
    let micro = micro.clamp(1, b.max(1));
    loop {
        let (grads, loss) = if micro == 1 {
            let loss = loss_fn.forward(m.forward(x.clone()), y.clone());
            let value = finite_scalar(&loss, "train.device_loss")?;
            (GradientsParams::from_grads(scale.apply(loss).backward(), &m), value)
        } else {
            let (grads, _, loss) = in_parts(&m, b, micro, |m, start, len, share| {
                let loss = loss_fn.forward(m.forward(x.clone().narrow(0, start, len)), y.clone().narrow(0, start, len));
                let value = finite_scalar(&loss, "train.device_loss")?;
                let weighted = scale.apply(loss.mul_scalar(share as f32));
                Ok((GradientsParams::from_grads(weighted.backward(), m), (), value * share))
            })?;
            (grads, loss)
        };
        match scale.unscale(grads, &m, None)? {
            Some(grads) => return Ok((opt.step(lr, m, grads), loss)),
            None => scale.halve()?,
        }
    }
}

/// Loss scaling for f16 products (`training.loss_scale_log2`): gradients
/// below f16's smallest value (6e-8) would flush to zero in the products'
/// backward, so the loss is multiplied by a power of two before the
/// backward and the gradients divided by it after, both exactly. f32 and
/// bf16 (f32's exponent range) do not scale: their steps are unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScale {
    /// The current factor [1]; None = no scaling.
    factor: Option<f32>,
    /// Steps computed again at half the scale so far [steps].
    halvings: u32,
}

impl LossScale {
    /// No scaling (f32, bf16).
    pub const NONE: LossScale = LossScale { factor: None, halvings: 0 };

    /// A local update's first scale: 2^`log2` at f16, none otherwise.
    pub fn first(p: Precision, log2: u32) -> LossScale {
        match p {
            Precision::F16 => LossScale { factor: Some((log2 as f32).exp2()), halvings: 0 },
            Precision::F32 | Precision::Bf16 => LossScale::NONE,
        }
    }

    /// The current factor [1] (1 without scaling).
    pub fn factor(self) -> f32 {
        self.factor.unwrap_or(1.0)
    }

    /// How many steps were computed again at half the scale [steps].
    pub fn halvings(self) -> u32 {
        self.halvings
    }

    /// The loss to differentiate: `loss` times the factor.
    fn apply<const D: usize>(self, loss: Tensor<D>) -> Tensor<D> {
        match self.factor {
            Some(f) => loss.mul_scalar(f),
            None => loss,
        }
    }

    /// Halves the factor after gradients that were not finite; below 1 the
    /// step cannot be saved (its forward overflows f16, or it is NaN).
    fn halve(&mut self) -> Result<()> {
        match self.factor {
            Some(f) if f > 1.0 => {
                self.factor = Some(f / 2.0);
                self.halvings += 1;
                Ok(())
            }
            _ => Err(Error::Numeric {
                checkpoint: "train.loss_scale",
                detail: "gradients are not finite even at loss scale 1 (f16 overflows in the forward, or NaN); \
                         try training.precision = \"bf16\" or \"f32\", or a smaller training.lr"
                    .into(),
            }),
        }
    }

    /// `m`'s gradients divided by the factor, without a check.
    fn divide<M: Module>(self, grads: GradientsParams, m: &M) -> GradientsParams {
        match self.factor {
            Some(f) => Unscale::run(grads, m, 1.0 / f).0,
            None => grads,
        }
    }

    /// `m`'s gradients divided by the factor, or None when one of them (or
    /// of `extra`'s values) is not finite. One value read back per call;
    /// nothing at all without scaling.
    fn unscale<M: Module>(
        self,
        grads: GradientsParams,
        m: &M,
        extra: Option<Tensor<3>>,
    ) -> Result<Option<GradientsParams>> {
        let Some(f) = self.factor else { return Ok(Some(grads)) };
        let (grads, mut sums) = Unscale::run(grads, m, 1.0 / f);
        sums.extend(extra.map(|t| t.sum()));
        // A sum of every gradient: infinite or NaN exactly when one of
        // them is (their sizes after unscaling are far from f32's limit).
        let total = Tensor::cat(sums, 0).sum().into_scalar::<f32>();
        Ok(total.is_finite().then_some(grads))
    }
}

/// Divides each of a module's gradients by the loss scale, keeping each
/// one's sum for the finiteness check.
struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    inverse: f32,
    sums: Vec<Tensor<1>>,
}

impl Unscale<'_> {
    fn run<M: Module>(mut grads: GradientsParams, m: &M, inverse: f32) -> (GradientsParams, Vec<Tensor<1>>) {
        let mut u = Unscale { grads: &mut grads, inverse, sums: Vec::new() };
        m.visit(&mut u);
        let sums = u.sums;
        (grads, sums)
    }
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let g = g.mul_scalar(self.inverse);
            self.sums.push(g.clone().sum());
            self.grads.register(param.id, g);
        }
    }
}

/// The server's half of one split iteration on the received activations
/// `input` (an autodiff leaf): forward, loss, backward. Returns the
/// server's parameter gradients and the gradient at the cut layer (what
/// goes back down to the device), both at the loss `scale`, and the
/// batch's mean loss [nat]. As in
/// [`whole_step`], `micro` > 1 cuts the batch into near-equal parts whose
/// share-weighted gradients are computed in parallel and summed in part
/// order; each part's cut-layer gradient is its rows of the whole one, so
/// they are concatenated. The device's forward, the one quantized message
/// and the device's backward stay whole: only the server's work, nearly
/// all of a step, is parted.
fn server_pass(
    sm: &ServerModel,
    loss_fn: &CrossEntropyLoss,
    input: Tensor<3>,
    y: Tensor<1, Int>,
    micro: usize,
    scale: LossScale,
) -> Result<(GradientsParams, Tensor<3>, f64)> {
    let b = input.dims()[0];
    let micro = micro.clamp(1, b.max(1));
    let no_gradient =
        || Error::Numeric { checkpoint: "train.cut_gradient", detail: "no gradient reached the cut layer".into() };
    if micro == 1 {
        let loss = loss_fn.forward(sm.forward(input.clone()), y);
        let value = finite_scalar(&loss, "train.server_loss")?;
        let mut grads = scale.apply(loss).backward();
        let cut = input.grad_remove(&mut grads).ok_or_else(no_gradient)?;
        return Ok((GradientsParams::from_grads(grads, sm), cut, value));
    }
    let (grads, cuts, loss) = in_parts(sm, b, micro, |sm, start, len, share| {
        let leaf = input.clone().narrow(0, start, len).detach().require_grad();
        let loss = loss_fn.forward(sm.forward(leaf.clone()), y.clone().narrow(0, start, len));
        let value = finite_scalar(&loss, "train.server_loss")?;
        let mut grads = scale.apply(loss.mul_scalar(share as f32)).backward();
        let cut = leaf.grad_remove(&mut grads).ok_or_else(no_gradient)?;
        Ok((GradientsParams::from_grads(grads, sm), cut, value * share))
    })?;
    Ok((grads, Tensor::cat(cuts, 0), loss))
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

/// The Burn device of a backend, or why it is not in this build or on
/// this machine. `gpu_kind` and `gpu_index` pick the Vulkan device of
/// `"wgpu"`.
pub fn backend_device(kind: BackendKind, gpu_kind: GpuKind, gpu_index: usize) -> Result<burn::tensor::Device> {
    match kind {
        BackendKind::Flex => Ok(burn::tensor::Device::flex()),
        // Deprecated upstream; kept opt-in because users asked for it.
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        BackendKind::Ndarray => Ok(burn::tensor::Device::ndarray()),
        #[cfg(not(feature = "ndarray"))]
        BackendKind::Ndarray => Err(Error::Input(
            "training.backend = \"ndarray\": this build has no ndarray backend; \
             rebuild with `cargo build --release --features ndarray`, or use \"flex\""
                .into(),
        )),
        #[cfg(feature = "libtorch")]
        // Deprecated upstream (Burn points to CubeCL and flex); opt-in, measured.
        #[allow(deprecated)]
        BackendKind::LibTorch => Ok(burn::tensor::Device::libtorch()),
        #[cfg(not(feature = "libtorch"))]
        BackendKind::LibTorch => Err(Error::Input(
            "training.backend = \"libtorch\": this build has no LibTorch backend; rebuild with \
             `LIBTORCH_USE_PYTORCH=1 cargo build --release --features libtorch` beside PyTorch 2.9.0, or use \"flex\""
                .into(),
        )),
        #[cfg(feature = "gpu")]
        BackendKind::Wgpu => gpu_device(gpu_kind, gpu_index),
        #[cfg(not(feature = "gpu"))]
        BackendKind::Wgpu => Err(Error::Input(format!(
            "training.backend = \"wgpu\" (training.gpu_kind = \"{gpu_kind}\", training.gpu_index = {gpu_index}): \
             this build has no GPU backend; rebuild with `cargo build --release --features gpu`, or use \"flex\""
        ))),
    }
}

/// Whether `device` (of `backend`) computes in `p`'s number format: a
/// clear error naming both settings and the formats it has, instead of a
/// panic at the first cast.
pub fn check_precision(device: &Device, p: Precision, backend: BackendKind) -> Result<()> {
    precision_on(p, backend, |p| super::model::half_dtype(p).is_none_or(|t| device.supports_dtype(t)))
}

/// [`check_precision`] for a device that computes in the formats `has`
/// says.
fn precision_on(p: Precision, backend: BackendKind, has: impl Fn(Precision) -> bool) -> Result<()> {
    if has(p) {
        return Ok(());
    }
    let allowed: Vec<String> = Precision::ALL.iter().filter(|q| has(**q)).map(|q| format!("\"{q}\"")).collect();
    Err(Error::Input(format!(
        "training.precision = \"{p}\": training.backend = \"{backend}\" does not compute in {p} on this device; \
         allowed here: {}",
        allowed.join(", ")
    )))
}

/// The Vulkan device `index` of `kind`, opened once here so that a
/// machine without one (no driver, no Vulkan loader, no such index) is a
/// clear error instead of a panic deep inside the first training step:
/// Burn's wgpu runtime opens its device lazily and panics when it cannot.
#[cfg(feature = "gpu")]
fn gpu_device(kind: GpuKind, index: usize) -> Result<burn::tensor::Device> {
    use burn::tensor::DeviceKind;
    let (selector, what) = match kind {
        GpuKind::Discrete => (DeviceKind::DiscreteGpu(index), format!("discrete GPU {index}")),
        GpuKind::Integrated => (DeviceKind::IntegratedGpu(index), format!("integrated GPU {index}")),
        GpuKind::Virtual => (DeviceKind::VirtualGpu(index), format!("virtual GPU {index}")),
        // Burn selects Vulkan's CPU device without an index (a scenario
        // refuses one at load; this is for callers of the library).
        GpuKind::Cpu if index != 0 => {
            return Err(Error::Input(format!(
                "training.gpu_index = {index}: 0 when training.gpu_kind = \"cpu\" (training.backend = \"wgpu\")"
            )));
        }
        GpuKind::Cpu => (DeviceKind::Cpu, "CPU device".to_string()),
    };
    let device = burn::tensor::Device::vulkan(selector);
    let probe = device.clone();
    // The probe's panics (the runtime's own thread's first, then this
    // thread's) are the expected answer on such a machine: their messages
    // are kept for the error instead of printed, then the hook is restored.
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hook = std::panic::take_hook();
    let sink = said.clone();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        if let Ok(mut v) = sink.lock() {
            v.push(msg);
        }
    }));
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        Tensor::<1>::ones([1], &probe).into_scalar::<f32>()
    }));
    std::panic::set_hook(hook);
    match opened {
        Ok(1.0) => Ok(device),
        Ok(v) => Err(Error::failure(
            format!("training.backend = \"wgpu\": Vulkan {what} answered {v} for 1.0"),
            "the GPU backend computed a wrong value",
        )),
        Err(_) => {
            let said = said.lock().map(|v| v.join("; ")).unwrap_or_default();
            Err(Error::Input(format!(
                "training.backend = \"wgpu\": no Vulkan {what} on this machine \
                 (training.gpu_kind = \"{kind}\", training.gpu_index = {index}; \
                 is a Vulkan driver and loader installed?): {said}"
            )))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A device without bf16 (wgpu's Vulkan, whose bf16 has no
    /// arithmetic in CubeCL 0.11) refuses it naming both settings and the
    /// formats it has, and takes the others; flex has all three.
    #[test]
    fn a_format_the_device_lacks_is_refused_with_the_ones_it_has() {
        let vulkan = |p: Precision| p != Precision::Bf16;
        let e = precision_on(Precision::Bf16, BackendKind::Wgpu, vulkan).unwrap_err().to_string();
        for part in ["training.precision = \"bf16\"", "training.backend = \"wgpu\"", "allowed here: \"f32\", \"f16\""] {
            assert!(e.contains(part), "{e}");
        }
        assert!(matches!(precision_on(Precision::Bf16, BackendKind::Wgpu, vulkan), Err(Error::Input(_))));
        for p in [Precision::F32, Precision::F16] {
            assert!(precision_on(p, BackendKind::Wgpu, vulkan).is_ok());
        }
        for &p in Precision::ALL {
            assert!(check_precision(&Device::flex(), p, BackendKind::Flex).is_ok(), "flex computes in {p}");
        }
    }
}
