//! Times the training step of `benches/train_step.rs` without criterion:
//! `cargo run --release --example train_step [STEPS] [MODEL] [MICRO_BATCHES]`
//! (defaults 10, vit-small-32, 2); prints s/step.
//! Used for profiling (`perf record`) and quick comparisons with
//! `python3 benches/train_step_torch.py`.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use sflam::train::model::SplitVit;
use sflam::train::training::whole_step;

fn main() {
    sflam::train::tune_allocator();
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let name = std::env::args().nth(2).unwrap_or_else(|| "vit-small-32".into());
    let micro: usize = std::env::args().nth(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    let vit = sflam::workload::vit_config(&name).expect("a workload model name");
    let device = Device::flex().autodiff();
    let mut model = SplitVit::new(vit, &device);
    let mut opt = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let x = Tensor::<4>::random([64, vit.channels, vit.image, vit.image], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..64).map(|i| (i % 10) as i64).collect(), [64]), &device);
    let mut step = || {
        let loss;
        (model, loss) = whole_step(model.clone(), &mut opt, 1e-3, &loss_fn, x.clone(), y.clone(), micro).unwrap();
        loss
    };
    for _ in 0..2 {
        step();
    }
    let t = std::time::Instant::now();
    for _ in 0..steps {
        step();
    }
    println!(
        "{name}, {micro} micro-batches: {:.3} s/step over {steps} steps",
        t.elapsed().as_secs_f64() / steps as f64
    );
}
