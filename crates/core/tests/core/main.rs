//! The core crate's one integration-test binary: the simulator half,
//! built and run without Burn (`cargo test -p sflam-core`). One module
//! per area.

mod allocation;
mod cells;
mod closed_forms;
mod config;
mod determinism;
mod devices;
mod events;
mod fuzz;
mod fuzz_support;
mod learner;
mod quantization;
mod queueing;
mod sweep;
mod traces;
mod utility;
mod workload;

/// The default scenario, timing only (the simulator's half; the
/// co-simulation is tested with the learning half), with `overrides`.
pub fn default_timing(overrides: &[&str]) -> sflam_core::config::Scenario {
    let ov: Vec<String> =
        std::iter::once("training.enabled=false").chain(overrides.iter().copied()).map(str::to_string).collect();
    sflam_core::config::load_scenario(&repo("scenarios/default.toml"), &ov).unwrap()
}

/// Runs `s` into memory; the sink is finished.
pub fn run_vec(s: &sflam_core::config::Scenario) -> sflam_core::trace::VecSink {
    let sink = try_run(s).unwrap();
    assert!(sink.finished);
    sink
}

/// Runs `s` into memory, its error returned (bad-input tests).
pub fn try_run(s: &sflam_core::config::Scenario) -> sflam_core::Result<sflam_core::trace::VecSink> {
    let mut sink = sflam_core::trace::VecSink::default();
    sflam_core::run::simulate(s, &mut sink, None, None, None)?;
    Ok(sink)
}

/// Round rows without the allocator's wall time (the one column that
/// varies between runs of one seed).
pub fn strip_wall(rows: &[sflam_core::trace::RoundRow]) -> Vec<sflam_core::trace::RoundRow> {
    rows.iter().map(|r| sflam_core::trace::RoundRow { alloc_wall_s: 0.0, ..r.clone() }).collect()
}

/// A path in the repository (tests run in `crates/core`).
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// A candidate of a hand-made allocation problem: `fixed_s` of the
/// `deadline_s` goes to computation and the server, the rest to uploads;
/// gains 10^U(gain_exp) per RB over `k` RBs, p_max and computation energy
/// drawn from `rng` (in that order).
pub fn random_candidate(
    rng: &mut rand_pcg::Pcg64,
    i: usize,
    n: usize,
    k: usize,
    gain_exp: std::ops::Range<f64>,
    deadline_s: f64,
    fixed_s: f64,
) -> sflam_core::alloc::Candidate {
    use rand::Rng;
    sflam_core::alloc::Candidate {
        device: sflam_core::device::DeviceId(i as u32),
        gains: (0..k).map(|_| 10f64.powf(rng.random_range(gain_exp.clone()))).collect(),
        p_max_w: rng.random_range(0.5..2.0),
        data_share: 1.0 / n as f64,
        uplink_time_s: deadline_s - fixed_s,
        fixed_time_s: fixed_s,
        compute_energy_j: rng.random_range(0.1..0.5),
        activation_elements: 100_000,
        extra_upload_bits: 0,
        forward_ns: 0,
        backward_ns: 0,
        iterations: 0,
    }
}
