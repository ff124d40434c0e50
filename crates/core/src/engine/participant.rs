//! One scheduled device in the current round: its phases, their lengths,
//! and the time and energy booked to it as each phase ends or is cut.

use crate::device::DeviceId;
use crate::geo::CellId;
pub use crate::phases::{Durations, Phase};
use crate::trace::Outcome;
use crate::units::{SimDuration, SimTime};

/// One scheduled device in the current round.
#[derive(Clone, Debug)]
pub struct Participant {
    pub dev: DeviceId,
    /// Its cell this round.
    pub cell: CellId,
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
    /// Co-channel interference at its site [W].
    pub interference_w: f64,
    /// [dB]
    pub sinr_db: f64,
    /// Bits per activation upload [bit].
    pub payload_bits: u64,
    /// The allocator's predicted round time [s].
    pub predicted_s: f64,
    /// ρ_n U(b_n): what finishing adds to the round's utility [1].
    pub utility: f64,
    pub dur: Durations,
    /// Computation power [W].
    pub cmp_power_w: f64,
    pub phase: Phase,
    /// Iterations this round [1].
    pub iterations: u32,
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
    pub fn next_phase(&self) -> Phase {
        self.dur.next_phase(self.phase, self.iter, self.iterations, self.split)
    }

    /// The nominal length of phase `ph` (see [`Durations::length_of`]).
    pub fn length_of(&self, ph: Phase) -> SimDuration {
        self.dur.length_of(ph)
    }

    /// Books the current phase, cut unfinished at `now`; a server job is
    /// charged `served`, the work its discipline did on it [ns at full
    /// speed] (zero while it was still queued), the rest is waiting.
    pub fn cut(&mut self, now: SimTime, served: SimDuration) {
        if self.phase == Phase::Server {
            let dt = now.saturating_sub(self.phase_start);
            let srv = served.min(self.dur.srv).min(dt);
            self.t_srv += srv;
            self.t_wait += SimDuration(dt.0 - srv.0);
        } else {
            self.book(now);
        }
    }

    /// Books the time and energy of the current phase, which ends at `now`.
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
                // Completed: the nominal service, the rest was queueing.
                let srv = dt.min(self.dur.srv);
                self.t_srv += srv;
                self.t_wait += SimDuration(dt.0 - srv.0);
            }
            Phase::Waiting | Phase::Done => {}
        }
    }
}
