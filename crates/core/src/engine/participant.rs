//! One scheduled device in the current round: its phases, their lengths,
//! and the time and energy booked to it as each phase ends or is cut.

use crate::device::DeviceId;
use crate::trace::Outcome;
use crate::units::{SimDuration, SimTime};

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
#[derive(Clone, Copy, Debug, Default)]
pub struct Durations {
    pub fwd: SimDuration,
    pub bwd: SimDuration,
    pub up: SimDuration,
    /// Server service at full speed (the discipline may stretch it).
    pub srv: SimDuration,
    pub down: SimDuration,
    pub model_up: SimDuration,
}

/// One scheduled device in the current round.
#[derive(Clone, Debug)]
pub struct Participant {
    pub dev: DeviceId,
    /// Split frameworks send activations each iteration; whole-model ones do not.
    pub split: bool,
    pub rb: u32,
    /// [m]
    pub distance_m: f64,
    /// Channel gain on its RB [1].
    pub gain: f64,
    pub power_w: f64,
    /// [bit] (32 = fp32)
    pub bits: u32,
    pub rate_bps: f64,
    /// Bits per activation upload [bit].
    pub payload_bits: u64,
    /// The allocator's predicted round time [s].
    pub predicted_s: f64,
    pub dur: Durations,
    /// Computation power [W].
    pub cmp_power_w: f64,
    pub phase: Phase,
    pub iter: u32,
    pub phase_start: SimTime,
    pub phase_end: SimTime,
    pub t_cmp: SimDuration,
    pub t_com: SimDuration,
    pub t_srv: SimDuration,
    pub t_wait: SimDuration,
    pub t_down: SimDuration,
    /// [J]
    pub e_cmp_j: f64,
    /// [J]
    pub e_com_j: f64,
    pub outcome: Option<(Outcome, SimTime)>,
}

impl Participant {
    /// The phase after the current one; `Done` after the last.
    pub fn next_phase(&self, iterations: u32) -> Phase {
        match self.phase {
            Phase::Waiting => Phase::Forward,
            // Whole-model frameworks never leave the device mid-iteration.
            Phase::Forward if !self.split => Phase::Backward,
            Phase::Forward => Phase::Uplink,
            Phase::Uplink => Phase::Server,
            Phase::Server if self.dur.down > SimDuration::ZERO => Phase::Downlink,
            Phase::Server | Phase::Downlink => Phase::Backward,
            Phase::Backward if self.iter + 1 < iterations => Phase::Forward,
            Phase::Backward if self.dur.model_up > SimDuration::ZERO => Phase::ModelUpload,
            Phase::Backward | Phase::ModelUpload | Phase::Done => Phase::Done,
        }
    }

    /// The nominal length of phase `ph`; zero for the server (its
    /// discipline decides) and the waiting and done states.
    pub fn length_of(&self, ph: Phase) -> SimDuration {
        match ph {
            Phase::Forward => self.dur.fwd,
            Phase::Uplink => self.dur.up,
            Phase::Downlink => self.dur.down,
            Phase::Backward => self.dur.bwd,
            Phase::ModelUpload => self.dur.model_up,
            Phase::Server | Phase::Done | Phase::Waiting => SimDuration::ZERO,
        }
    }

    /// Books the time and energy of the current phase, which ends (or is
    /// cut) at `now`.
    pub fn book(&mut self, now: SimTime) {
        let dt = now.saturating_sub(self.phase_start);
        match self.phase {
            Phase::Forward | Phase::Backward => {
                self.t_cmp += dt;
                self.e_cmp_j += self.cmp_power_w * dt.as_secs_f64();
            }
            Phase::Uplink | Phase::ModelUpload => {
                self.t_com += dt;
                self.e_com_j += self.power_w * dt.as_secs_f64();
            }
            Phase::Downlink => self.t_down += dt,
            Phase::Server => {
                // Cut while queued or in service: all of it counts as
                // waiting beyond the nominal service.
                let srv = dt.min(self.dur.srv);
                self.t_srv += srv;
                self.t_wait += SimDuration(dt.0 - srv.0);
            }
            Phase::Waiting | Phase::Done => {}
        }
    }
}
