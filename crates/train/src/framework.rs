//! The learning frameworks of SPEC section 7 as strategies under one round
//! loop: each says how a round's participants train from the current state
//! and how the state moves on. Aggregation (eq. 6) weights by data size and
//! covers only the participants handed in: the ones that met the deadline.

use super::params::weighted_average_model;
use super::training::{Eval, LocalUpdate, Params, Trainer};
use crate::config::{FrameworkKind, Profile};
use crate::engine::{DeviceLearned, Learned};
use crate::error::Result;
use sflam_core::device::DeviceId;
use std::collections::BTreeMap;

/// One participant of a round: the device and the bits its activations
/// travel at (32 = fp32; ignored by the frameworks that send none or fp32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Work {
    pub device: u32,
    pub bits: u32,
}

/// The model state a framework carries between rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelState {
    pub global: Params,
    /// `ll` only: each device's own model, once it has trained.
    pub local: BTreeMap<u32, Params>,
}

/// What a round did, per participant in `work` order.
#[derive(Clone, Debug, Default)]
pub struct RoundStats {
    /// Each participant's device.
    pub devices: Vec<u32>,
    /// Training loss of each participant [nat].
    pub losses: Vec<f64>,
    /// Uplink activation bytes of each participant [B].
    pub wire_bytes: Vec<u64>,
    /// Steps each participant computed again at half the loss scale
    /// (f16) [steps].
    pub loss_scale_halvings: Vec<u32>,
}

impl RoundStats {
    fn of(work: &[Work], updates: &[LocalUpdate]) -> RoundStats {
        RoundStats {
            devices: work.iter().map(|w| w.device).collect(),
            losses: updates.iter().map(|u| u.loss).collect(),
            wire_bytes: updates.iter().map(|u| u.wire_bytes).collect(),
            loss_scale_halvings: updates.iter().map(|u| u.loss_scale_halvings).collect(),
        }
    }

    /// The round as a learner reports it, with the global model's test
    /// `accuracy` [1]: each participant's device, loss and f16 steps taken
    /// again in work order, whose mean loss and total steps
    /// ([`Learned::loss`], [`Learned::loss_scale_halvings`]) are the
    /// round's.
    pub fn learned(&self, accuracy: Option<f64>) -> Learned {
        let devices = (self.devices.iter().zip(&self.losses).zip(&self.loss_scale_halvings))
            .map(|((&d, &loss), &halvings)| DeviceLearned { device: DeviceId(d), loss, loss_scale_halvings: halvings })
            .collect();
        Learned { accuracy, devices }
    }
}

/// A learning framework.
pub trait Framework: Send + Sync {
    fn kind(&self) -> FrameworkKind;
    /// What this framework means for the network: split or whole model,
    /// relay or parallel, quantized or fp32, what it uploads, who plans
    /// its rounds (`sflam_core::config::Profile`, declared once there).
    fn profile(&self) -> &'static Profile {
        self.kind().profile()
    }
    /// Trains one round of `work` (in device order) and moves `state` on.
    fn round(&self, t: &Trainer, state: &mut ModelState, round: u32, work: &[Work]) -> Result<RoundStats>;
    /// The accuracy this framework reports: the global model on the test set.
    fn evaluate(&self, t: &Trainer, state: &ModelState) -> Result<Eval> {
        t.evaluate(&state.global)
    }
}

/// The framework of a scenario.
pub fn framework(kind: FrameworkKind) -> Box<dyn Framework> {
    match kind {
        FrameworkKind::Sflam | FrameworkKind::Sfl => Box::new(SplitFed { quantized: kind.profile().quantized }),
        FrameworkKind::Sl => Box::new(Sequential),
        FrameworkKind::Fl => Box::new(FedAvg),
        FrameworkKind::Ll => Box::new(Local),
    }
}

fn aggregate(t: &Trainer, state: &mut ModelState, work: &[Work], updates: &[LocalUpdate]) {
    let items: Vec<(f64, &Params)> =
        work.iter().zip(updates).map(|(w, u)| (t.samples(w.device) as f64, &u.params)).collect();
    if let Some(global) = weighted_average_model(&items) {
        state.global = global;
    }
}

/// `sflam` (quantized at each participant's bits) and `sfl` (fp32):
/// parallel split training, each participant on its own copy of both
/// halves, both averaged at round end.
pub struct SplitFed {
    pub quantized: bool,
}

impl Framework for SplitFed {
    fn kind(&self) -> FrameworkKind {
        if self.quantized { FrameworkKind::Sflam } else { FrameworkKind::Sfl }
    }

    fn round(&self, t: &Trainer, state: &mut ModelState, round: u32, work: &[Work]) -> Result<RoundStats> {
        let start = &state.global;
        let updates = t.parallel(work, |w| {
            t.split_update(start, w.device, round, (self.quantized && w.bits < 32).then_some(w.bits))
        })?;
        aggregate(t, state, work, &updates);
        Ok(RoundStats::of(work, &updates))
    }
}

/// `sl`: one device-side and one server-side model, relayed from device to
/// device in order; no averaging, fp32 activations.
pub struct Sequential;

impl Framework for Sequential {
    fn kind(&self) -> FrameworkKind {
        FrameworkKind::Sl
    }

    fn round(&self, t: &Trainer, state: &mut ModelState, round: u32, work: &[Work]) -> Result<RoundStats> {
        let mut updates = Vec::with_capacity(work.len());
        for w in work {
            let u = t.install(|| t.split_update(&state.global, w.device, round, None))?;
            state.global = u.params.clone();
            updates.push(u);
        }
        Ok(RoundStats::of(work, &updates))
    }
}

/// `fl`: FedAvg of the whole model trained on each device.
pub struct FedAvg;

impl Framework for FedAvg {
    fn kind(&self) -> FrameworkKind {
        FrameworkKind::Fl
    }

    fn round(&self, t: &Trainer, state: &mut ModelState, round: u32, work: &[Work]) -> Result<RoundStats> {
        let start = &state.global;
        let updates = t.parallel(work, |w| t.whole_update(start, w.device, round))?;
        aggregate(t, state, work, &updates);
        Ok(RoundStats::of(work, &updates))
    }
}

/// `ll`: every device trains its own whole model, never shared; the
/// reported accuracy is the mean over the devices that have trained.
pub struct Local;

impl Framework for Local {
    fn kind(&self) -> FrameworkKind {
        FrameworkKind::Ll
    }

    fn round(&self, t: &Trainer, state: &mut ModelState, round: u32, work: &[Work]) -> Result<RoundStats> {
        let updates = {
            let s = &*state;
            t.parallel(work, |w| t.whole_update(s.local.get(&w.device).unwrap_or(&s.global), w.device, round))?
        };
        for (w, u) in work.iter().zip(&updates) {
            state.local.insert(w.device, u.params.clone());
        }
        Ok(RoundStats::of(work, &updates))
    }

    fn evaluate(&self, t: &Trainer, state: &ModelState) -> Result<Eval> {
        if state.local.is_empty() {
            return t.evaluate(&state.global);
        }
        let evals: Vec<Eval> = state.local.values().map(|p| t.evaluate(p)).collect::<Result<_>>()?;
        let n = evals.len() as f64;
        Ok(Eval {
            loss: evals.iter().map(|e| e.loss).sum::<f64>() / n,
            accuracy: evals.iter().map(|e| e.accuracy).sum::<f64>() / n,
        })
    }
}
