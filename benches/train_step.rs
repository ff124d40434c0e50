//! One training step (forward, loss, backward, Adam update) of a fixed ViT:
//! dim 192, depth 6, 3 heads, MLP 768, patch 4 on 32x32x3, 10 classes,
//! batch 64 (`vit-small-32`), on the flex backend with the machine's
//! cores. Reference in the same sitting, same thread count:
//! `python3 benches/train_step_torch.py`. `cargo bench --bench train_step`.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use sflam::train::model::SplitVit;
use sflam::train::optim::Adam;
use sflam::train::training::{LossScale, whole_step};
use std::time::Duration;

fn step(c: &mut Criterion) {
    sflam::train::tune_allocator();
    let vit = sflam::workload::vit_config("vit-small-32").unwrap();
    let device = Device::flex().autodiff();
    let mut model = SplitVit::new(vit, &device);
    let mut opt = Adam::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let x = Tensor::<4>::random([64, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..64).map(|i| (i % 10) as i64).collect(), [64]), &device);
    let mut scale = LossScale::NONE;
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10).measurement_time(Duration::from_secs(30)).warm_up_time(Duration::from_secs(3));
    // The project's step, as `training.micro_batches = 1` and `= 2` run it.
    for micro in [1, 2] {
        g.bench_function(format!("vit-small-32/batch64/adam/micro{micro}"), |b| {
            b.iter(|| {
                let loss;
                (model, loss) =
                    whole_step(model.clone(), &mut opt, 1e-3, &loss_fn, x.clone(), y.clone(), micro, &mut scale)
                        .unwrap();
                loss
            })
        });
    }
    g.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
