//! sflam-core: the simulator half of sflam, a discrete-event simulator of
//! quantized split federated fine-tuning (SFLAM) over OFDMA wireless
//! networks. It does not depend on Burn: the learning half
//! (`sflam-train`) plugs in through [`engine::Learner`]. See
//! `ARCHITECTURE.md`.

pub mod alloc;
pub mod backhaul;
pub mod config;
pub mod device;
pub mod engine;
pub mod error;
pub mod geo;
pub mod net;
pub mod output;
pub mod phases;
pub mod progress;
pub mod quant;
pub mod run;
pub mod server;
pub mod sim;
pub mod sweep;
pub mod trace;
pub mod units;
pub mod workload;

pub use error::{Error, Result};

/// The git commit this library was built from, when known.
pub fn git_commit() -> Option<&'static str> {
    let c = env!("SFLAM_GIT_COMMIT");
    (!c.is_empty()).then_some(c)
}
