//! The whole program's one integration-test binary: the `sflam` command
//! line and the learning half, alone and inside the simulation. The
//! simulator half's tests are `crates/core/tests/core` (they build
//! without Burn). One module per area.

mod backends;
mod cli;
mod cosim;
mod docs;
mod fuzz;
mod gpu;
mod libtorch;
mod output;
mod training;
