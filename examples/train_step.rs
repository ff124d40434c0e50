//! Times the training step of `benches/train_step.rs` (forward, loss,
//! backward, Adam update of the whole split ViT) without criterion, on any
//! backend, model and batch:
//! `cargo run --release --example train_step -- [--steps N] [--model NAME]
//! [--batch B] [--micro M] [--backend flex|wgpu|libtorch] [--gpu-index I]
//! [--precision f32|f16|bf16]` (defaults 10, vit-small-32, 64, 1, flex, 0,
//! f32); prints s/step.
//! `benches/train_step_compare.sh` runs it beside
//! `benches/train_step_torch.py` (the same step in PyTorch) in one sitting.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use clap::Parser;
use sflam::train::model::SplitVit;
use sflam::train::optim::Adam;
use sflam::train::training::whole_step;
use sflam::train::training::{LossScale, check_precision};
use sflam::train::{BackendKind, GpuKind, Precision, backend_device};

#[derive(Parser)]
struct Args {
    /// Timed steps, after 2 untimed ones.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// A `sflam workload` model name.
    #[arg(long, default_value = "vit-small-32")]
    model: String,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Parts the batch's gradient is computed in, in parallel (`training.micro_batches`).
    #[arg(long, default_value_t = 1)]
    micro: usize,
    /// `training.backend`: flex, wgpu (cargo feature `gpu`), libtorch (feature `libtorch`) or ndarray (feature `ndarray`).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// `training.gpu_kind`: discrete, integrated, virtual or cpu.
    #[arg(long, default_value = "discrete")]
    gpu_kind: GpuKind,
    /// `training.gpu_index`.
    #[arg(long, default_value_t = 0)]
    gpu_index: usize,
    /// `training.precision`: the blocks' matrix products in f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    precision: Precision,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    sflam::train::tune_allocator();
    let vit = sflam::workload::vit_config(&a.model).ok_or_else(|| anyhow::anyhow!("unknown model {:?}", a.model))?;
    let (kind, precision) = (a.backend, a.precision);
    let device = backend_device(kind, a.gpu_kind, a.gpu_index)?.autodiff();
    check_precision(&device, precision, kind)?;
    let mut model = SplitVit::new(vit, &device).with_precision(precision);
    let mut opt = Adam::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let b = a.batch;
    let x = Tensor::<4>::random([b, vit.channels, vit.image, vit.image], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..b).map(|i| (i % 10) as i64).collect(), [b]), &device);
    // f16: the loss scale of `training.loss_scale_log2`'s default, kept
    // from step to step.
    let mut scale = LossScale::first(precision, sflam::config::TrainingConfig::default().loss_scale_log2);
    // whole_step reads the loss back to the host: each step ends synchronized.
    let mut step = || -> anyhow::Result<()> {
        (model, _) = whole_step(model.clone(), &mut opt, 1e-3, &loss_fn, x.clone(), y.clone(), a.micro, &mut scale)?;
        Ok(())
    };
    for _ in 0..2 {
        step()?;
    }
    let t = std::time::Instant::now();
    for _ in 0..a.steps {
        step()?;
    }
    // The pool flex's operations run on (RAYON_NUM_THREADS, or every core
    // this process may use).
    let threads = rayon::current_num_threads();
    println!(
        "sflam {} {precision} ({threads} threads), {}, batch {b}, micro {}: {:.4} s/step over {} steps",
        a.backend,
        a.model,
        a.micro,
        t.elapsed().as_secs_f64() / a.steps as f64,
        a.steps
    );
    Ok(())
}
