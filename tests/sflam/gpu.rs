//! The GPU backend (`training.backend = "wgpu"`, cargo feature `gpu`).
//! Without the feature, asking for it is a clear error. With it, the tests
//! below run on the machine's first discrete GPU (another kind with
//! `SFLAM_TEST_GPU_KIND`, a `training.gpu_kind` name, e.g. `integrated`) and
//! are skipped, with the reason printed, where there is none (CI never has
//! one).
//!
//! The reference for the GPU is the CPU (flex): the same scenario, seed and
//! start. Float sums run in other orders on the GPU, so results agree
//! within a tolerance, not bit for bit (docs/gpu.md, "Training on a GPU").

#[cfg(not(feature = "gpu"))]
#[test]
fn wgpu_without_the_feature_is_a_clear_error() {
    let err =
        sflam::train::trainer_of(&crate::backends::scenario("wgpu", "")).err().expect("no GPU backend in this build");
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("training.backend") && msg.contains("--features gpu"), "{msg}");
    assert!(msg.contains("training.gpu_kind = \"discrete\", training.gpu_index = 0"), "{msg}");
}

#[cfg(feature = "gpu")]
mod on_the_gpu {
    use crate::backends::{params_diff, scenario, updates_match_the_cpu};
    use burn::tensor::{Tensor, TensorData};
    use sflam::config::Scenario;
    use sflam::train::{BackendKind, GpuKind, Trainer, backend_device};

    /// The kind of Vulkan device the tests train on.
    fn gpu_kind() -> GpuKind {
        match std::env::var("SFLAM_TEST_GPU_KIND") {
            Ok(k) => k.parse().unwrap_or_else(|e| panic!("SFLAM_TEST_GPU_KIND: {e}")),
            Err(_) => GpuKind::Discrete,
        }
    }

    /// The shared test scenario on that device.
    fn on_gpu(extra: &str) -> Scenario {
        scenario("wgpu", &format!("gpu_kind = \"{}\"\n{extra}", gpu_kind()))
    }

    /// The GPU's trainer, or None (and why, printed) on a machine without one.
    fn gpu_trainer(extra: &str) -> Option<Trainer> {
        match sflam::train::trainer_of(&on_gpu(extra)) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.to_string();
                // No GPU is the one reason to skip, and it must say so.
                assert!(msg.contains("training.backend = \"wgpu\"") && msg.contains("gpu_index"), "{msg}");
                eprintln!("skipped: {msg}");
                None
            }
        }
    }

    #[test]
    fn a_missing_gpu_index_is_a_clear_error() {
        if gpu_trainer("").is_none() {
            return;
        }
        // On the CPU kind, which has no index, the index itself is refused.
        let err = backend_device(BackendKind::Wgpu, gpu_kind(), 97).expect_err("no 98th device of its kind");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("gpu_index = 97"), "{err}");
    }

    /// One split update at fp32 and at 4 bits, and one whole-model update,
    /// on the GPU against the CPU from the same start.
    #[test]
    fn gpu_updates_match_the_cpu() {
        let Some(gpu) = gpu_trainer("momentum = 0.0\n") else { return };
        let cpu = sflam::train::trainer_of(&scenario("flex", "momentum = 0.0\n")).unwrap();
        updates_match_the_cpu(&cpu, &gpu, "gpu");
    }

    /// Mixed precision on the GPU against the CPU's at the same setting
    /// (`training.precision = "f16"` with its loss scale, and `"bf16"`),
    /// from the same start, a split update at 8 bits and a whole one: the
    /// two backends round the same products to the type and differ only
    /// where a float sum in another order lands on the other side of a
    /// rounding, so the GPU's weights must be no farther from the CPU's than
    /// the CPU's are from its f32 (losses within 1e-3). A type the GPU does
    /// not compute in (CubeCL's Vulkan: bf16) is reported and skipped.
    #[test]
    fn gpu_mixed_precision_updates_match_the_cpus() {
        if gpu_trainer("").is_none() {
            return;
        }
        let cpu32 = sflam::train::trainer_of(&scenario("flex", "momentum = 0.0\n")).unwrap();
        let start = cpu32.initial_params();
        for p in ["f16", "bf16"] {
            let extra = format!("momentum = 0.0\nprecision = \"{p}\"\n");
            let gpu = match sflam::train::trainer_of(&on_gpu(&extra)) {
                Ok(t) => t,
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("training.precision = \"{p}\"")), "{msg}");
                    eprintln!("skipped {p}: {msg}");
                    continue;
                }
            };
            let cpu = sflam::train::trainer_of(&scenario("flex", &extra)).unwrap();
            for whole in [false, true] {
                let run = |t: &Trainer| {
                    if whole { t.whole_update(&start, 2, 1) } else { t.split_update(&start, 1, 0, Some(8)) }
                };
                let (c, g, f) = (run(&cpu).unwrap(), run(&gpu).unwrap(), run(&cpu32).unwrap());
                let (apart, scale) = (params_diff(&g.params, &c.params), params_diff(&c.params, &f.params));
                eprintln!(
                    "{p} {}: loss cpu {} gpu {}, max |dw| gpu-cpu {apart:e}, cpu {p}-f32 {scale:e}",
                    if whole { "whole" } else { "split" },
                    c.loss,
                    g.loss
                );
                assert!((c.loss - g.loss).abs() <= 1e-3 * c.loss.abs(), "{p}: loss {} vs {}", c.loss, g.loss);
                assert!(apart <= scale, "{p}: the GPU is {apart:e} from the CPU, which is {scale:e} from f32");
            }
        }
    }

    /// The cut layer's round trip from GPU memory: what arrives is the
    /// host quantizer's output for the GPU's activations, byte for byte,
    /// and the gradient passes it straight through to the device side.
    #[test]
    fn the_cut_layer_round_trip_from_the_gpu() {
        if gpu_trainer("").is_none() {
            return;
        }
        let dev = backend_device(BackendKind::Wgpu, gpu_kind(), 0).unwrap().autodiff();
        let (b, t, d) = (4usize, 5usize, 8usize);
        let n = b * t * d;
        let xs: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let x = Tensor::<3>::from_data(TensorData::new(xs.clone(), [b, t, d]), &dev).require_grad();
        let act = x.clone().mul_scalar(2.0);
        let sent = sflam::train::wire::send(&act, Some(6), 1234, &dev).unwrap();
        let host: Vec<f32> = xs.iter().map(|v| v * 2.0).collect();
        let bytes = sflam::quant::quantize_pack(&host, 6, 1234).unwrap();
        let want = sflam::quant::unpack(&bytes, n, 6).unwrap();
        assert_eq!(sent.wire_bytes, bytes.len() as u64);
        assert_eq!(sent.input.to_data().convert::<f32>().as_slice::<f32>().unwrap(), &want[..]);
        // Server loss sum(w * received): its cut gradient is w; the device
        // side's surrogate sum(act * w) then gives dL/dx = 2w.
        let ws: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        let w = Tensor::<3>::from_data(TensorData::new(ws.clone(), [b, t, d]), &dev);
        let mut grads = (sent.input.clone() * w.clone()).sum().backward();
        let cut = sent.input.grad_remove(&mut grads).expect("a cut gradient");
        assert_eq!(cut.to_data().convert::<f32>().as_slice::<f32>().unwrap(), &ws[..]);
        let g = Tensor::<3>::from_data(cut.into_data(), &dev);
        let grads = (act * g).sum().backward();
        let dx = x.grad(&grads).expect("a device-side gradient");
        let dx = dx.to_data().convert::<f32>();
        let want: Vec<f32> = ws.iter().map(|w| 2.0 * w).collect();
        assert_eq!(dx.as_slice::<f32>().unwrap(), &want[..]);
    }

    /// What holds on one machine: the same seed gives the same update twice
    /// in one process (the kernels chosen by autotuning are cached for the
    /// process). Across processes, docs/gpu.md states what to expect.
    #[test]
    fn the_same_seed_twice_on_one_gpu() {
        let Some(gpu) = gpu_trainer("") else { return };
        let start = gpu.initial_params();
        let a = gpu.split_update(&start, 0, 0, Some(8)).unwrap();
        let b = gpu.split_update(&start, 0, 0, Some(8)).unwrap();
        let d = params_diff(&a.params, &b.params);
        eprintln!("same seed twice: max |dw| {d:e}");
        assert!(d <= 1e-6, "{d:e}");
    }
}
