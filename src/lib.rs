//! sflam: a discrete-event simulator of quantized split federated
//! fine-tuning (SFLAM) over OFDMA wireless networks, its real training
//! included. This crate wires the two halves together: the simulator
//! (`sflam-core`, re-exported here module by module) and the learning half
//! (`sflam-train`, as [`train`]), which plugs into the simulation as its
//! [`engine::Learner`]. See `ARCHITECTURE.md`.

pub use sflam_core::{
    Error, Result, alloc, config, device, engine, error, git_commit, net, output, progress, quant, server, sim, trace,
    units, workload,
};
pub use sflam_train as train;

/// One run, with the learning half wired in: as `sflam_core::run`, but a
/// scenario with `training.enabled` trains through [`train::CoLearner`].
pub mod run {
    use crate::config::Scenario;
    use crate::engine::{DecisionHook, Learner, RoundHook};
    use crate::trace::{Summary, TraceSink};
    pub use sflam_core::run::{AllocatorFactory, LearnerFactory, Observer, RunOptions, learner_of};
    use std::path::PathBuf;

    /// Opens and checks every file a run of `s` would read, without
    /// running: the tables, and (when the scenario trains or names them)
    /// the data set's files and `training.init` against the model. Returns
    /// those files, with the field that names each.
    pub fn check_inputs(s: &Scenario) -> crate::Result<Vec<(&'static str, PathBuf)>> {
        sflam_core::run::check_tables(s)?;
        let t = &s.training;
        let trains = t.enabled || !t.init.is_empty() || !t.data_dir.is_empty();
        if trains {
            let trainer = crate::train::trainer_of(s)?;
            crate::train::initial_state(s, &trainer)?;
        }
        Ok(crate::config::inputs::input_files(s, trains))
    }

    /// The learning half of a scenario: its data split over the simulated
    /// devices, the framework's state carried across rounds.
    pub fn co_learner(s: &Scenario) -> crate::Result<Box<dyn Learner>> {
        Ok(Box::new(crate::train::CoLearner::new(s)?))
    }

    /// Options with the learning half set.
    pub fn with_learner(opts: &RunOptions) -> RunOptions {
        RunOptions { learner: opts.learner.or(Some(co_learner as LearnerFactory)), ..opts.clone() }
    }

    /// Runs the scenario into any sink; returns the summary.
    pub fn simulate(
        s: &Scenario,
        sink: &mut dyn TraceSink,
        on_decision: Option<DecisionHook<'_>>,
        on_round: Option<RoundHook<'_>>,
    ) -> crate::Result<Summary> {
        let learner = learner_of(s, Some(co_learner))?;
        sflam_core::run::simulate(s, sink, learner, on_decision, on_round)
    }

    /// Runs a scenario into its output folder (see `sflam_core::run::run_to_dir`).
    pub fn run_to_dir(s: &Scenario, opts: &RunOptions) -> crate::Result<(PathBuf, Summary)> {
        sflam_core::run::run_to_dir(s, &with_learner(opts))
    }
}

/// Sweeps (`sflam_core::sweep`); points that train use [`run::co_learner`].
pub mod sweep {
    pub use sflam_core::sweep::*;
}
