//! The core crate's one integration-test binary: the simulator half,
//! built and run without Burn (`cargo test -p sflam-core`). One module
//! per area.

mod allocation;
mod closed_forms;
mod config;
mod determinism;
mod events;
mod quantization;
mod queueing;
mod sweep;
mod workload;

/// A path in the repository (tests run in `crates/core`).
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}
