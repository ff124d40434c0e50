//! What the tests of the other backends share (`gpu.rs`, `libtorch.rs`):
//! the scenario they train, and the check of a backend's updates against
//! the CPU's (flex) from the same start.

use sflam::config::{Scenario, load_scenario_str};
use std::path::Path;

/// A small training scenario on synthetic data on `backend`.
pub fn scenario(backend: &str, extra: &str) -> Scenario {
    let text = format!(
        "[run]\nname = \"t\"\nseed = 5\nrounds = 2\niterations = 2\nthreads = 1\n\
         [devices]\ncount = 6\n\
         [training]\ndataset = \"synthetic\"\nmodel = \"vit-tiny-28\"\nparticipants = 3\nbatch = 16\n\
         eval_samples = 256\nmin_samples = 20\nlr = 0.05\nbackend = \"{backend}\"\n{extra}"
    );
    load_scenario_str(&text, Path::new("<test>"), &[]).unwrap()
}

/// The largest difference of two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The largest difference of two models' parameters, over both halves.
pub fn params_diff(a: &sflam::train::Params, b: &sflam::train::Params) -> f32 {
    max_abs_diff(&a.server, &b.server).max(max_abs_diff(&a.device, &b.device))
}

/// One split update at fp32 and at 4 bits, one whole-model update and an
/// evaluation on `other` (named `name`) against `cpu`, from the same start.
/// Both trainers come from [`scenario`] with `momentum = 0.0`.
#[cfg(any(feature = "gpu", feature = "libtorch"))]
pub fn updates_match_the_cpu(cpu: &sflam::train::Trainer, other: &sflam::train::Trainer, name: &str) {
    let start = cpu.initial_params();
    assert_eq!(start, other.initial_params(), "the start is drawn on the host");
    for (what, bits) in [("split fp32", None), ("split 4-bit", Some(4))] {
        let c = cpu.split_update(&start, 1, 0, bits).unwrap();
        let g = other.split_update(&start, 1, 0, bits).unwrap();
        let (dd, ds) =
            (max_abs_diff(&c.params.device, &g.params.device), max_abs_diff(&c.params.server, &g.params.server));
        let moved = max_abs_diff(&c.params.server, &start.server);
        eprintln!(
            "{what}: loss cpu {} {name} {}, max |dw| device {dd:e} server {ds:e} (update {moved:e})",
            c.loss, g.loss
        );
        assert_eq!(c.wire_bytes, g.wire_bytes, "{what}: bytes on the wire");
        assert!((c.loss - g.loss).abs() <= 1e-4 * c.loss.abs(), "{what}: loss {} vs {}", c.loss, g.loss);
        // fp32 sums in other orders: 1e-5 of an update that moves weights
        // by about 1e-2. At 4 bits the stochastic rounding can put an
        // element whose value differs in its last bits one level away,
        // which moves the update by far less than a step.
        let tol = if bits.is_none() { 1e-5 } else { 1e-4 };
        assert!(dd <= tol && ds <= tol, "{what}: weights differ by {dd:e} / {ds:e} (tolerance {tol:e})");
        assert!(moved > 100.0 * tol, "{what}: the update must move the weights ({moved:e})");
    }
    let c = cpu.whole_update(&start, 2, 1).unwrap();
    let g = other.whole_update(&start, 2, 1).unwrap();
    let d = params_diff(&c.params, &g.params);
    eprintln!("whole: loss cpu {} {name} {}, max |dw| {d:e}", c.loss, g.loss);
    assert!((c.loss - g.loss).abs() <= 1e-4 * c.loss.abs() && d <= 1e-5);
    let (ec, eg) = (cpu.evaluate(&c.params).unwrap(), other.evaluate(&c.params).unwrap());
    eprintln!("evaluation: cpu {ec:?} {name} {eg:?}");
    assert!((ec.loss - eg.loss).abs() <= 1e-4 * ec.loss && (ec.accuracy - eg.accuracy).abs() <= 1.0 / 256.0);
}
