//! The learning half (SPEC sections 1, 2 and 7): a split ViT trained with
//! Burn, activations quantized and bit-packed on the wire, and the
//! frameworks `sflam`, `sfl`, `sl`, `fl`, `ll` under one round loop.
//!
//! - `model.rs`: the two modules (device side, server side), timm names.
//! - `data.rs`: Fashion-MNIST, CIFAR-10/100, synthetic; Dirichlet split.
//! - `wire.rs`: the cut layer through the real quantizer.
//! - `training.rs`: [`Trainer`], the local updates and evaluation.
//! - `framework.rs`: the strategies.
//! - `params.rs`: flat parameter vectors and FedAvg.
//! - `import.rs`: timm safetensors.
//! - `calibrate.rs`: `sflam calibrate`, the utility U(b) measured from
//!   training.
//! - `settings.rs`: what training needs from a scenario, the trainer and
//!   the initial model.
//! - `driver.rs`: `sflam train` (training without the network
//!   simulation) and its traces; `checkpoint.rs`: its checkpoints.
//! - `colearner.rs`: [`CoLearner`], the learning half inside the
//!   simulation (`sflam_core::engine::Learner`).
//! - this file: the public surface, and the allocator tuning.
//!
//! This crate builds on `sflam-core`, whose modules it names as its own
//! (`crate::config`, ...), and adds Burn.

pub mod calibrate;
mod checkpoint;
mod colearner;
pub mod data;
mod driver;
pub mod framework;
pub mod import;
pub mod model;
pub mod ops;
pub mod optim;
pub mod params;
mod settings;
pub mod training;
pub mod wire;

// The core's modules, as this crate sees them.
pub(crate) use sflam_core::{config, engine, error, quant, sim, trace, workload};

pub use crate::config::{BackendKind, GpuKind, LrSchedule, OptimizerKind, OptimizerState, Precision};
pub use framework::{Framework, ModelState, RoundStats, Work, framework};
pub use training::{Eval, Params, Trainer, backend_device};

pub use colearner::CoLearner;
pub use driver::{
    DataRow, ParticipantRow, TrainOptions, TrainOutcome, TrainRoundRow, sample_participants, train_to_dir,
};
pub use settings::{TrainSettings, initial_state, trainer_of};

/// Keeps freed tensor buffers in the process (glibc): Burn allocates a
/// fresh buffer per op, and glibc's defaults hand buffers above its mmap
/// threshold back to the kernel, so every step paid for page faults and
/// zeroing of the same megabytes again (-17% step time at vit-small-32,
/// docs/performance.md). Call once at start-up; a no-op elsewhere.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; these are in range
    // (mmap threshold at most 32 MiB on 64-bit glibc).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
