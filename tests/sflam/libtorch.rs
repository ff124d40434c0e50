//! The LibTorch backend (`training.backend = "libtorch"`, cargo feature
//! `libtorch`: PyTorch's CPU kernels under Burn's autodiff). Without the
//! feature, asking for it is a clear error; with it, its updates match
//! flex's from the same start, within float summation order.

use sflam::config::{Scenario, load_scenario_str};
use std::path::Path;

/// A small training scenario on synthetic data on `backend`.
fn scenario(backend: &str) -> Scenario {
    let text = format!(
        "[run]\nname = \"t\"\nseed = 5\nrounds = 2\niterations = 2\nthreads = 1\n\
         [devices]\ncount = 6\n\
         [training]\ndataset = \"synthetic\"\nmodel = \"vit-tiny-28\"\nparticipants = 3\nbatch = 16\n\
         eval_samples = 256\nmin_samples = 20\nlr = 0.05\nmomentum = 0.0\nbackend = \"{backend}\"\n"
    );
    load_scenario_str(&text, Path::new("<test>"), &[]).unwrap()
}

#[cfg(not(feature = "libtorch"))]
#[test]
fn libtorch_without_the_feature_is_a_clear_error() {
    let err = sflam::train::trainer_of(&scenario("libtorch")).err().expect("no LibTorch backend in this build");
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("training.backend") && msg.contains("--features libtorch"), "{msg}");
}

#[cfg(feature = "libtorch")]
#[test]
fn libtorch_updates_match_flex() {
    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }
    let flex = sflam::train::trainer_of(&scenario("flex")).unwrap();
    let torch = sflam::train::trainer_of(&scenario("libtorch")).unwrap();
    let start = flex.initial_params();
    assert_eq!(start, torch.initial_params(), "the start is drawn on the host");
    for bits in [None, Some(4)] {
        let f = flex.split_update(&start, 1, 0, bits).unwrap();
        let t = torch.split_update(&start, 1, 0, bits).unwrap();
        let d = max_abs_diff(&f.params.device, &t.params.device).max(max_abs_diff(&f.params.server, &t.params.server));
        let moved = max_abs_diff(&f.params.server, &start.server);
        eprintln!("split {bits:?}: loss flex {} libtorch {}, max |dw| {d:e} (update {moved:e})", f.loss, t.loss);
        assert_eq!(f.wire_bytes, t.wire_bytes);
        assert!((f.loss - t.loss).abs() <= 1e-4 * f.loss.abs(), "loss {} vs {}", f.loss, t.loss);
        // As on the GPU: 1e-5 at fp32; at 4 bits an element may round one
        // level away, which moves the update by far less than a step.
        let tol = if bits.is_none() { 1e-5 } else { 1e-4 };
        assert!(d <= tol && moved > 100.0 * tol, "weights differ by {d:e} (update {moved:e})");
    }
    let f = flex.whole_update(&start, 2, 1).unwrap();
    let t = torch.whole_update(&start, 2, 1).unwrap();
    let d = max_abs_diff(&f.params.server, &t.params.server).max(max_abs_diff(&f.params.device, &t.params.device));
    assert!((f.loss - t.loss).abs() <= 1e-4 * f.loss.abs() && d <= 1e-5, "whole: {d:e}");
    let (ef, et) = (flex.evaluate(&f.params).unwrap(), torch.evaluate(&f.params).unwrap());
    assert!((ef.loss - et.loss).abs() <= 1e-4 * ef.loss && (ef.accuracy - et.accuracy).abs() <= 1.0 / 256.0);
}
