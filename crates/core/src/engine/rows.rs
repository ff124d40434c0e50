//! The trace rows the round controller writes, built from its state.

use super::DeviceLearned;
use super::participant::Participant;
use crate::trace::{DeviceRoundRow, Outcome};

/// The `device_rounds` row of a participant whose round ended with
/// `outcome`, `time_s` [s] after the round start.
/// `learned`: its local update's report, when it finished a training round.
pub fn device_round(
    round: u32,
    p: &Participant,
    outcome: Outcome,
    time_s: f64,
    learned: Option<DeviceLearned>,
) -> DeviceRoundRow {
    DeviceRoundRow {
        round,
        device: p.dev.0,
        cell: p.cell,
        rb: p.rb,
        distance_m: p.distance_m,
        gain: p.gain,
        power_w: p.power_w,
        bits: p.bits,
        rate_bps: p.rate_bps,
        interference_w: p.interference_w,
        sinr_db: p.sinr_db,
        payload_bits: p.payload_bits,
        t_cmp_s: p.t_cmp.as_secs_f64(),
        t_com_s: p.t_com.as_secs_f64(),
        t_srv_s: p.t_srv.as_secs_f64(),
        t_wait_s: p.t_wait.as_secs_f64(),
        t_down_s: p.t_down.as_secs_f64(),
        time_s,
        predicted_time_s: p.predicted_s,
        energy_cmp_j: p.e_cmp_j,
        energy_com_j: p.e_com_j,
        energy_j: p.e_cmp_j + p.e_com_j,
        outcome,
        cut_phase: (outcome != Outcome::Finished).then(|| p.phase.name()),
        cut_iteration: (outcome != Outcome::Finished).then_some(p.iter),
        train_loss: learned.map(|l| l.loss),
        loss_scale_halvings: learned.map(|l| l.loss_scale_halvings),
    }
}

/// A round's sums over its participants.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundSums {
    pub finished: u32,
    pub stragglers: u32,
    /// Dropped out or went offline.
    pub failed: u32,
    /// [J]
    pub energy_cmp_j: f64,
    /// [J]
    pub energy_com_j: f64,
    /// Σ bits [bit].
    pub bits: f64,
    /// Σ ρ_n U(b_n) over the devices that finished [1].
    pub utility: f64,
}

impl RoundSums {
    pub fn add(&mut self, p: &Participant, outcome: Outcome) {
        match outcome {
            Outcome::Finished => {
                self.finished += 1;
                self.utility += p.utility;
            }
            Outcome::Straggler => self.stragglers += 1,
            Outcome::Dropped | Outcome::Offline => self.failed += 1,
        }
        self.energy_cmp_j += p.e_cmp_j;
        self.energy_com_j += p.e_com_j;
        self.bits += p.bits as f64;
    }
}
