//! Loss scaling for `training.precision = "f16"`: a scale that halves
//! when a step's gradients overflow, and the gradients unscaled.

use super::*;

impl Trainer {
    /// A local update's first loss scale (`training.loss_scale_log2` at
    /// f16, none otherwise).
    pub(super) fn loss_scale(&self) -> LossScale {
        LossScale::first(self.settings.precision, self.settings.loss_scale_log2)
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
    pub(super) fn apply<const D: usize>(self, loss: Tensor<D>) -> Tensor<D> {
        match self.factor {
            Some(f) => loss.mul_scalar(f),
            None => loss,
        }
    }

    /// Halves the factor after gradients that were not finite; below 1 the
    /// step cannot be saved (its forward overflows f16, or it is NaN).
    pub(super) fn halve(&mut self) -> Result<()> {
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
    pub(super) fn divide<M: Module>(self, grads: GradientsParams, m: &M) -> GradientsParams {
        match self.factor {
            Some(f) => Unscale::run(grads, m, 1.0 / f).0,
            None => grads,
        }
    }

    /// `m`'s gradients divided by the factor, or None when one of them (or
    /// of `extra`'s values) is not finite. One value read back per call;
    /// nothing at all without scaling.
    pub(super) fn unscale<M: Module>(
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
