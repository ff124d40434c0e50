//! A module's float parameters as one flat `Vec<f32>`, in the module's
//! visiting order. The global model lives in this form between rounds:
//! every participant gets a fresh deep copy (no device's state aliases
//! another's, nor the global one), and FedAvg (eq. 6) is a weighted sum of
//! plain vectors, accumulated in f64 in participant order.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};

/// The flat parameters of a module [1 per element].
pub fn to_flat<M: Module>(m: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend_from_slice(data.as_slice::<f32>().expect("f32 after convert"));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// `m` with every float parameter replaced by fresh tensors on `device`
/// holding `flat`'s values. Panics if `flat` is not `m`'s length (a bug,
/// not an input error: both come from the same template).
pub fn load_flat<M: Module>(m: M, flat: &[f32], device: &Device) -> M {
    struct Load<'a> {
        flat: &'a [f32],
        at: usize,
        device: &'a Device,
    }
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| {
                let shape = t.shape();
                let n = shape.num_elements();
                let values = self.flat[self.at..self.at + n].to_vec();
                self.at += n;
                let fresh = Tensor::from_data(TensorData::new(values, shape), self.device);
                // Only an autodiff device records gradients (evaluation runs on the plain one).
                if self.device.is_autodiff() && t.is_require_grad() { fresh.require_grad() } else { fresh }
            })
        }
    }
    let mut l = Load { flat, at: 0, device };
    let out = m.map(&mut l);
    assert_eq!(l.at, flat.len(), "flat parameter vector does not match the module");
    out
}

/// FedAvg of a whole split model: [`weighted_average`] of the device
/// halves and of the server halves over `(weight, model)`. None when there
/// is nothing to average.
pub fn weighted_average_model(items: &[(f64, &crate::training::Params)]) -> Option<crate::training::Params> {
    let device = weighted_average(items.iter().map(|(w, p)| (*w, &p.device[..])))?;
    let server = weighted_average(items.iter().map(|(w, p)| (*w, &p.server[..])))?;
    Some(crate::training::Params { device, server })
}

/// FedAvg (eq. 6): Σ w_i x_i / Σ w_i over `(weight, params)` in the given
/// order, accumulated in f64. None when there is nothing to average.
pub fn weighted_average<'a>(items: impl IntoIterator<Item = (f64, &'a [f32])>) -> Option<Vec<f32>> {
    let mut acc: Vec<f64> = Vec::new();
    let mut total = 0.0;
    for (w, x) in items {
        if acc.is_empty() {
            acc = vec![0.0; x.len()];
        }
        assert_eq!(acc.len(), x.len(), "averaging models of different shapes");
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += w * v as f64;
        }
        total += w;
    }
    (total > 0.0).then(|| acc.iter().map(|a| (a / total) as f32).collect())
}
