//! The split local update: device forward, the activations through the
//! real quantizer, the server's forward and backward, the cut-layer
//! gradient back, the device's backward; both halves stepped.

use super::*;

impl Trainer {
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
pub(super) fn server_pass(
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
