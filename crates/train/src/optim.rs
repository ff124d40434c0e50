//! The optimizer's update and the micro-batches' gradient sum as one
//! pass per parameter on flex, in tasks on the rayon pool.
//!
//! Why: Burn's `Adam` updates a parameter with thirteen element-wise ops
//! and its `Sgd` with momentum with five, each a pass over the values
//! with its own buffer, on one thread (flex splits matrix products over
//! cores, not element-wise ops); and `GradientsAccumulator` sums the
//! micro-batches' gradients one `add` (a pass and a buffer) per part. All
//! of it runs after the parallel parts, on one core: on a 2-core machine
//! `vit-small-32`'s Adam update took about 10 ms and the sum of 16 parts
//! about 17 ms of a 0.5 s step, a share that grows with the core count,
//! since the parts' work divides over the cores and this did not (docs/performance.md,
//! Performance).
//!
//! [`Adam`] and [`Sgd`] are Burn [`Optimizer`]s (so `ModuleOptimizer` still
//! walks the module, keeps the states and serializes them under the same
//! names as Burn's: kept states and checkpoints read either way) whose
//! step on flex is one `sflam-kernels` loop giving Burn's bits, and on
//! other backends Burn's own ops. [`sum_in_order`] adds the parts onto
//! the first part's buffer in their order, as the accumulator did, one
//! pass per parameter. Tested bit for bit against Burn's optimizers and
//! accumulator.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamConfig, AdamState, AdaptiveMomentumState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer,
    RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{Device, Tensor, TensorData};
use sflam_kernels::AdamScalars;

use crate::model::on_flex;
use crate::ops::{contiguous_f32, values};

/// The updates as backend ops, on flex only (callers check [`on_flex`]
/// and take Burn's ops elsewhere). A backend extension takes tensors, not
/// optional ones, hence a first and a later step of each.
#[backend_extension(Flex)]
pub trait Updates: Backend {
    /// Adam's first step: `(w', m', v')`; see `sflam_kernels::adam`.
    fn adam_first(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        s: AdamScalars,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// A later Adam step from the moments `m`, `v`: `(w', m', v')`.
    fn adam_next(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        s: AdamScalars,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// w - g lr: plain SGD, and momentum's first step (whose velocity is
    /// `g`); see `sflam_kernels::sgd`.
    fn sgd_plain(w: FloatTensor<Self>, g: FloatTensor<Self>, lr: f32) -> FloatTensor<Self>;

    /// A later momentum step from the velocity `u`: `(w', u')`.
    fn sgd_momentum(
        w: FloatTensor<Self>,
        g: FloatTensor<Self>,
        u: FloatTensor<Self>,
        momentum: f32,
        keep: f32,
        lr: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// `t` with its values in row-major order (a copy only where `t` is
/// strided). Weights, gradients and optimizer states are f32 in every
/// `training.precision` (it rounds only the products' operands).
fn flat(t: FlexTensor) -> FlexTensor {
    contiguous_f32(&t).unwrap_or_else(|| panic!("an optimizer update on a {:?} tensor, not f32", t.dtype()))
}

/// `v` as a tensor of `t`'s shape.
fn like(t: &FlexTensor, v: Vec<f32>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, t.layout().shape().clone()))
}

impl Updates for Flex {
    fn adam_first(w: FlexTensor, g: FlexTensor, s: AdamScalars) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (w, g) = (flat(w), flat(g));
        let [wo, mo, vo] = sflam_kernels::adam(values(&w), values(&g), None, s);
        (like(&w, wo), like(&w, mo), like(&w, vo))
    }

    fn adam_next(
        w: FlexTensor,
        g: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        s: AdamScalars,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [w, g, m, v] = [w, g, m, v].map(flat);
        let [wo, mo, vo] = sflam_kernels::adam(values(&w), values(&g), Some((values(&m), values(&v))), s);
        (like(&w, wo), like(&w, mo), like(&w, vo))
    }

    fn sgd_plain(w: FlexTensor, g: FlexTensor, lr: f32) -> FlexTensor {
        let (w, g) = (flat(w), flat(g));
        like(&w, sflam_kernels::sgd(values(&w), values(&g), None, 0.0, KEEP, lr).0)
    }

    fn sgd_momentum(
        w: FlexTensor,
        g: FlexTensor,
        u: FlexTensor,
        momentum: f32,
        keep: f32,
        lr: f32,
    ) -> (FlexTensor, FlexTensor) {
        let [w, g, u] = [w, g, u].map(flat);
        let (wo, uo) = sflam_kernels::sgd(values(&w), values(&g), Some(values(&u)), momentum, keep, lr);
        (like(&w, wo), like(&w, uo.expect("a velocity with momentum")))
    }
}

/// Adam with Burn's defaults (beta_1 0.9, beta_2 0.999, epsilon 1e-5, no
/// weight decay, no AMSGrad) and Burn's state.
#[derive(Clone)]
pub struct Adam {
    burn: burn::optim::Adam,
    /// Whether flex takes the fused kernel (tests compare both ways).
    fused: bool,
}

/// The first moment's decay [1] (Burn's default).
const BETA_1: f32 = 0.9;
/// The second moment's decay [1] (Burn's default).
const BETA_2: f32 = 0.999;
/// The denominator's epsilon [1] (Burn's default).
const EPSILON: f32 = 1e-5;

impl Adam {
    /// The fused Adam (Burn's ops on backends other than flex).
    pub fn new() -> Adam {
        let config = AdamConfig::new().with_beta_1(BETA_1).with_beta_2(BETA_2).with_epsilon(EPSILON);
        Adam { burn: config.build(), fused: true }
    }

    /// Burn's ops on every backend (the reference the fused step is
    /// tested against).
    pub fn unfused() -> Adam {
        Adam { fused: false, ..Adam::new() }
    }

    /// As a module optimizer.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl Default for Adam {
    fn default() -> Adam {
        Adam::new()
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        if !(self.fused && on_flex(&tensor.device())) {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (time, m, v) = match state {
            Some(s) => (s.momentum.time + 1, Some(s.momentum.moment_1), Some(s.momentum.moment_2)),
            None => (1, None, None),
        };
        // Burn's order of roundings (burn-optim 0.22 `AdaptiveMomentum`).
        let root = (1.0 - BETA_2.powi(time as i32)).sqrt();
        let s = AdamScalars {
            beta_1: BETA_1,
            beta_2: BETA_2,
            correction: root / (1.0 - BETA_1.powi(time as i32)),
            floor: EPSILON * root,
            lr: lr as f32,
        };
        let (w, g) = (tensor.into_dispatch(), grad.into_dispatch());
        let (w, m, v) = match (m, v) {
            (Some(m), Some(v)) => <Dispatch as Updates>::adam_next(w, g, m.into_dispatch(), v.into_dispatch(), s),
            _ => <Dispatch as Updates>::adam_first(w, g, s),
        };
        let [w, m, v] = [w, m, v].map(Tensor::from_dispatch);
        (w, Some(AdamState::new(AdaptiveMomentumState::new(time, m, v))))
    }

    fn to_device<const D: usize>(state: AdamState<D>, device: &Device) -> AdamState<D> {
        <burn::optim::Adam as Optimizer>::to_device(state, device)
    }
}

/// SGD, with momentum (dampening 0, no Nesterov) when `momentum` > 0, as
/// Burn's `Sgd`; its state is stored under Burn's names
/// (`momentum.velocity`).
#[derive(Clone)]
pub struct Sgd {
    /// The momentum [1]; None = plain SGD.
    momentum: Option<f32>,
    fused: bool,
}

/// An SGD parameter's state: with momentum, its velocity [1]. Stored as
/// Burn's `SgdState` is (its velocity under `momentum.velocity`), so a
/// state written by either reads in the other.
#[derive(Clone)]
pub struct SgdState<const D: usize> {
    pub velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(v) = &self.velocity {
            out.push_tensor(&join_path(prefix, "momentum"), "velocity", v.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity =
            src.take_tensor(&join_path(prefix, "momentum"), "velocity").map(|d| Tensor::from_data(d, device));
        Some(SgdState { velocity })
    }
}

/// 1 - dampening [1]: the gradient's weight in the velocity.
const KEEP: f32 = 1.0;

impl Sgd {
    /// `momentum` [1]: 0 = plain SGD.
    pub fn new(momentum: f64) -> Sgd {
        Sgd { momentum: (momentum > 0.0).then_some(momentum as f32), fused: true }
    }

    /// Burn's ops on every backend (the reference path).
    pub fn unfused(momentum: f64) -> Sgd {
        Sgd { fused: false, ..Sgd::new(momentum) }
    }

    /// As a module optimizer.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let velocity = state.and_then(|s| s.velocity);
        if self.fused && on_flex(&tensor.device()) {
            let (w, g, lr) = (tensor.into_dispatch(), grad.into_dispatch(), lr as f32);
            let (w, velocity) = match (self.momentum, velocity) {
                (None, _) => (<Dispatch as Updates>::sgd_plain(w, g, lr), None),
                (Some(_), None) => (<Dispatch as Updates>::sgd_plain(w, g.clone(), lr), Some(g)),
                (Some(mu), Some(u)) => {
                    let (w, u) = <Dispatch as Updates>::sgd_momentum(w, g, u.into_dispatch(), mu, KEEP, lr);
                    (w, Some(u))
                }
            };
            let velocity = velocity.map(Tensor::from_dispatch);
            return (Tensor::from_dispatch(w), Some(SgdState { velocity }));
        }
        // Burn's `Sgd` and `Momentum` (burn-optim 0.22), op for op.
        let (grad, velocity) = match self.momentum {
            None => (grad, None),
            Some(mu) => {
                let u = match velocity {
                    Some(u) => grad.mul_scalar(KEEP).add(u.mul_scalar(mu)),
                    None => grad,
                };
                (u.clone(), Some(u))
            }
        };
        (tensor - grad.mul_scalar(lr), Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState { velocity: state.velocity.map(|v| v.to_device(device)) }
    }
}

/// `parts`' gradients of `m` summed parameter by parameter in part order,
/// the bits of `GradientsAccumulator` fed the parts in order: on flex each
/// parameter's sum is one pass in tasks on the rayon pool.
pub fn sum_in_order<M: Module>(m: &M, parts: Vec<GradientsParams>) -> GradientsParams {
    struct Sum {
        parts: Vec<GradientsParams>,
        out: GradientsParams,
    }
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grads: Vec<Tensor<D>> = self.parts.iter_mut().filter_map(|p| p.remove::<D>(param.id)).collect();
            let sum = match grads.len() {
                0 => return,
                1 => grads.into_iter().next().expect("one part"),
                _ if on_flex(&grads[0].device()) => {
                    // Fresh gradients own their buffers: `into_data` hands
                    // them over without a copy, and the first takes the sum.
                    let device = grads[0].device();
                    let mut data = grads.into_iter().map(Tensor::into_data);
                    let mut sum = data.next().expect("parts");
                    let rest: Vec<TensorData> = data.collect();
                    let rest: Vec<&[f32]> =
                        rest.iter().map(|d| d.as_slice::<f32>().expect("gradients are f32")).collect();
                    sflam_kernels::add_in_order(sum.as_mut_slice::<f32>().expect("gradients are f32"), &rest);
                    Tensor::from_data(sum, &device)
                }
                _ => grads.into_iter().reduce(|sum, g| sum.add(g)).expect("parts"),
            };
            self.out.register::<D>(param.id, sum);
        }
    }
    let mut sum = Sum { parts, out: GradientsParams::new() };
    m.visit(&mut sum);
    sum.out
}
