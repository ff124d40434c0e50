//! The whole-model local update (`fl`, `ll`) and its training step.

use super::*;

impl Trainer {
    /// One whole-model local update (FL, LL): both halves on the device.
    pub fn whole_update(&self, start: &Params, device: u32, round: u32) -> Result<LocalUpdate> {
        let (device_side, server_side) = self.models(start, &self.grad);
        let mut m = crate::model::SplitVit { device_side, server_side };
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
    m: crate::model::SplitVit,
    opt: &mut ModuleOptimizer,
    lr: f64,
    loss_fn: &CrossEntropyLoss,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    micro: usize,
    scale: &mut LossScale,
) -> Result<(crate::model::SplitVit, f64)> {
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
