//! Evaluation of a model on the held-out test set.

use super::*;

impl Trainer {
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
}
