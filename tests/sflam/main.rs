//! The one integration-test binary; each area is a module under tests/sflam/.

mod allocation;
mod cli;
mod closed_forms;
mod config;
mod cosim;
mod determinism;
mod quantization;
mod training;
mod workload;
