//! The phases of one participant's round and their order, shared by the
//! event simulation (`engine`) and the planner's prediction of the round
//! (`alloc::timeline`), so that the two walk the same chain.

use crate::units::SimDuration;

/// Phases of one participant's round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Relay frameworks (`sl`): waiting for the relay to reach this device.
    Waiting,
    Forward,
    Uplink,
    Server,
    Downlink,
    Backward,
    ModelUpload,
    Done,
}

impl Phase {
    /// The name in traces (`cut_phase`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Forward => "forward",
            Phase::Uplink => "uplink",
            Phase::Server => "server",
            Phase::Downlink => "downlink",
            Phase::Backward => "backward",
            Phase::ModelUpload => "model-upload",
            Phase::Done => "done",
        }
    }

    /// The event kind logged when this phase completes.
    pub fn done_event(self) -> &'static str {
        match self {
            Phase::Forward => "forward-done",
            Phase::Uplink => "uplink-done",
            Phase::Downlink => "downlink-done",
            Phase::Backward => "backward-done",
            Phase::ModelUpload => "model-upload-done",
            _ => "step",
        }
    }
}

/// Lengths of one participant's phases, per iteration (the model upload
/// once per round).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Durations {
    pub fwd: SimDuration,
    pub bwd: SimDuration,
    pub up: SimDuration,
    /// Server service at full speed (the discipline may stretch it).
    pub srv: SimDuration,
    pub down: SimDuration,
    pub model_up: SimDuration,
}

impl Durations {
    /// The phase after `phase` in iteration `iter` (0-based) of
    /// `iterations`; `Done` after the last. `split`: activations go to the
    /// server every iteration; whole-model frameworks never leave the
    /// device mid-iteration.
    pub fn next_phase(&self, phase: Phase, iter: u32, iterations: u32, split: bool) -> Phase {
        match phase {
            Phase::Waiting => Phase::Forward,
            Phase::Forward if !split => Phase::Backward,
            Phase::Forward => Phase::Uplink,
            Phase::Uplink => Phase::Server,
            Phase::Server if self.down > SimDuration::ZERO => Phase::Downlink,
            Phase::Server | Phase::Downlink => Phase::Backward,
            Phase::Backward if iter + 1 < iterations => Phase::Forward,
            Phase::Backward if self.model_up > SimDuration::ZERO => Phase::ModelUpload,
            Phase::Backward | Phase::ModelUpload | Phase::Done => Phase::Done,
        }
    }

    /// The nominal length of phase `ph`; zero for the server (its
    /// discipline decides) and the waiting and done states.
    pub fn length_of(&self, ph: Phase) -> SimDuration {
        match ph {
            Phase::Forward => self.fwd,
            Phase::Uplink => self.up,
            Phase::Downlink => self.down,
            Phase::Backward => self.bwd,
            Phase::ModelUpload => self.model_up,
            Phase::Server | Phase::Done | Phase::Waiting => SimDuration::ZERO,
        }
    }
}
