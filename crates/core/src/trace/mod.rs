//! Traces (SPEC section 9): row types, the [`TraceSink`] trait the engine
//! pushes into, a `Vec` sink for tests and the Parquet sink for runs.

pub mod columns;
pub mod memory;
pub mod parquet;
mod summary;

pub use columns::{ColumnSet, Row};
pub use memory::ArrowSink;
pub use parquet::ParquetSink;
pub use summary::{Summary, SummaryBuilder, TrainingThroughput};

use crate::error::Result;
use serde::Serialize;

crate::row! {
    /// One row per round.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct RoundRow in "rounds" {
        pub round: u32,
        /// Round start [s].
        pub start_s: f64,
        /// Round end [s].
        pub end_s: f64,
        /// Devices online at the start [1].
        pub online: u64,
        pub candidates: u32,
        pub scheduled: u32,
        pub finished: u32,
        pub stragglers: u32,
        /// Dropped out or went offline [1].
        pub failed: u32,
        /// Σ E_n over scheduled devices [J].
        pub energy_j: f64,
        pub energy_cmp_j: f64,
        pub energy_com_j: f64,
        /// Mean bits of the scheduled devices [bit]; None when nobody was scheduled.
        pub mean_bits: Option<f64>,
        /// Planned objective Σ (w ρ_n U(b_n) − E_n) over the scheduled
        /// devices, as the allocator predicted it [J].
        pub objective_j: f64,
        /// Planned efficiency, eq. 21 [1/J].
        pub efficiency_per_j: f64,
        /// Realized objective: w Σ ρ_n U(b_n) over the devices that
        /// finished, less all energy spent (stragglers' and failed
        /// devices' included) [J].
        pub realized_objective_j: f64,
        /// Realized efficiency: Σ ρ_n U(b_n) of the finished devices over
        /// all energy spent [1/J]; 0 when nothing was spent.
        pub realized_efficiency_per_j: f64,
        pub alloc_iterations: u32,
        /// Candidates whose cell changed since they last associated [1].
        pub handovers: u32,
        /// From the round's close until every edge server holds the cloud's
        /// model again (cloud-aggregation rounds of `[backhaul]`; 0 in the
        /// others) [s]. The next round starts after it.
        pub backhaul_s: f64,
        /// Energy of those backhaul transfers: model bits x links crossed
        /// x `backhaul.energy_per_bit_j` [J]; not in `energy_j` (the
        /// devices') [J].
        pub backhaul_energy_j: f64,
        /// Allocator wall time [s]: the one column that varies between runs.
        pub alloc_wall_s: f64,
        pub loss: Option<f64>,
        pub accuracy: Option<f64>,
        /// Training steps computed again at half the loss scale
        /// (`training.precision = "f16"`), over the round's participants;
        /// None without training [steps].
        pub loss_scale_halvings: Option<u32>,
    }
}

/// How a scheduled device's round ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Finished,
    /// Missed the deadline.
    Straggler,
    /// Dropped out mid-round (dropout process).
    Dropped,
    /// Went offline mid-round (availability process).
    Offline,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Finished => "finished",
            Outcome::Straggler => "straggler",
            Outcome::Dropped => "dropped",
            Outcome::Offline => "offline",
        }
    }
}

impl columns::Cell for Outcome {
    const COL: columns::Col = columns::Col::Str;
    fn put(&self, c: &mut ColumnSet) {
        c.str(self.as_str());
    }
}

/// Frameworks are written by name (`rounds` of `sflam train`).
impl columns::Cell for crate::config::FrameworkKind {
    const COL: columns::Col = columns::Col::Str;
    fn put(&self, c: &mut ColumnSet) {
        c.str(self.as_str());
    }
}

crate::row! {
    /// One row per scheduled device per round.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct DeviceRoundRow in "device_rounds" {
        pub round: u32,
        pub device: u32,
        /// The cell it associated with this round.
        pub cell: u32,
        pub rb: u32,
        /// [m]
        pub distance_m: f64,
        /// Channel gain on its RB [1].
        pub gain: f64,
        pub power_w: f64,
        pub bits: u32,
        pub rate_bps: f64,
        /// Interference from co-channel devices of other cells on its RB
        /// at its site, at their planned powers [W]; 0 with one cell.
        pub interference_w: f64,
        /// Signal to interference plus noise on its RB [dB].
        pub sinr_db: f64,
        /// Bits per activation upload [bit].
        pub payload_bits: u64,
        /// Device compute, forward + backward, all iterations [s].
        pub t_cmp_s: f64,
        /// Uplink, all uploads [s].
        pub t_com_s: f64,
        /// Server service [s].
        pub t_srv_s: f64,
        /// Waiting for the server [s].
        pub t_wait_s: f64,
        /// Downlink [s].
        pub t_down_s: f64,
        /// From round start to done (or to the cut for the others) [s].
        pub time_s: f64,
        /// What the allocator predicted [s].
        pub predicted_time_s: f64,
        pub energy_cmp_j: f64,
        pub energy_com_j: f64,
        pub energy_j: f64,
        pub outcome: Outcome,
        /// Where an unfinished device was when the round closed on it
        /// (`forward`, `uplink`, `server`, `downlink`, `backward`,
        /// `model-upload`, or `waiting` for its turn in a relay); None
        /// for a finished device.
        pub cut_phase: Option<&'static str>,
        /// The local iteration it was in then, counted from 0 (`run.iterations`
        /// or its own under `training.local_epochs`; the model upload
        /// follows the last); None for a finished device [1].
        pub cut_iteration: Option<u32>,
        /// Its local update's mean training loss over its iterations; None
        /// unless it finished a round of a training run [nat].
        pub train_loss: Option<f64>,
        /// Its steps computed again at half the loss scale
        /// (`training.precision = "f16"`); None unless it finished a round
        /// of a training run [steps].
        pub loss_scale_halvings: Option<u32>,
    }
}

crate::row! {
    /// One row per candidate the allocator left out, per round: with
    /// `device_rounds` (the scheduled ones), every candidate's fate.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct LeftOutRow in "left_out" {
        pub round: u32,
        pub device: u32,
        /// The cell whose allocator left it out.
        pub cell: u32,
        /// `infeasible` (no power <= p_max and no bits meet the deadline
        /// on any RB), `no-resource-block` (feasible, no RB left),
        /// `not-worthwhile` (its utility is worth less than its energy),
        /// `server-busy` (its place in the server's queue leaves its
        /// uploads too little time), `not-chosen` (a Python policy did not
        /// schedule it).
        pub reason: &'static str,
        /// Link distance to its cell's site this round [m].
        pub distance_m: f64,
        /// Its best channel gain over the cell's RBs this round [1].
        pub best_gain: f64,
        /// Upload budget τ_n the allocator had: the deadline less its
        /// compute, server and downlink time (negative when those alone
        /// miss it), before queue-aware planning cut it [s].
        pub uplink_budget_s: f64,
    }
}

crate::row! {
    /// `bcd`'s state after each block step of a round's decision (with
    /// `run.bcd_trace`).
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct BcdStepRow in "bcd_steps" {
        pub round: u32,
        pub cell: u32,
        /// Iteration (0: the starting point) [1].
        pub iteration: u32,
        /// `start`, `power-bits` (after P1 and P2) or `matching` (after P3).
        pub step: &'static str,
        /// Matched devices feasible at this point [1].
        pub scheduled: u32,
        /// Their mean energy for the round [J].
        pub mean_energy_j: f64,
        /// Σ (w ρ U − E) over them [J].
        pub objective_j: f64,
        /// Eq. 21 over them [1/J].
        pub efficiency_per_j: f64,
        /// Their mean bits [bit].
        pub mean_bits: f64,
    }
}

crate::row! {
    /// Static device attributes.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct DeviceRow in "devices" {
        pub device: u32,
        /// Distance from its home cell's site [m].
        pub distance_m: f64,
        /// Position on the map [m].
        pub x_m: f64,
        /// [m]
        pub y_m: f64,
        /// The cell it associates with at the start.
        pub cell: u32,
        pub p_max_w: f64,
        pub gpu_freq_hz: f64,
        pub cores: u32,
        pub flops_per_cycle: f64,
        pub samples: u64,
        pub shadowing_db: f64,
        /// Samples per class when the run trains (empty otherwise) [samples].
        pub class_counts: Vec<u32>,
    }
}

crate::row! {
    /// One row per cell: its site, band and edge server.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct CellRow in "cells" {
        pub cell: u32,
        /// Site position [m].
        pub x_m: f64,
        /// [m]
        pub y_m: f64,
        pub rb_count: u32,
        /// Reuse colour: cells of one colour share a band.
        pub colour: u32,
        /// Server time of one iteration at full speed [s].
        pub server_service_s: f64,
        /// Devices associated with it at the start [1].
        pub devices: u64,
    }
}

crate::row! {
    /// One row per handled event (optional table).
    #[derive(Clone, Debug, PartialEq, Serialize)]
    pub struct EventRow in "events" {
        /// [ns]
        pub time_ns: u64,
        pub round: u32,
        pub device: Option<u32>,
        pub kind: &'static str,
    }
}

/// Where the engine pushes rows.
pub trait TraceSink {
    fn cell(&mut self, r: &CellRow) -> Result<()>;
    fn device(&mut self, r: &DeviceRow) -> Result<()>;
    fn round(&mut self, r: &RoundRow) -> Result<()>;
    fn device_round(&mut self, r: &DeviceRoundRow) -> Result<()>;
    fn left_out(&mut self, r: &LeftOutRow) -> Result<()>;
    fn bcd_step(&mut self, r: &BcdStepRow) -> Result<()>;
    fn event(&mut self, r: &EventRow) -> Result<()>;
    /// Flushes and closes; after it the output is complete.
    fn finish(&mut self) -> Result<()>;
}

/// Keeps every row in memory (tests, small runs).
#[derive(Default, Debug, Clone)]
pub struct VecSink {
    pub cells: Vec<CellRow>,
    pub devices: Vec<DeviceRow>,
    pub rounds: Vec<RoundRow>,
    pub device_rounds: Vec<DeviceRoundRow>,
    pub left_out: Vec<LeftOutRow>,
    pub bcd_steps: Vec<BcdStepRow>,
    pub events: Vec<EventRow>,
    pub finished: bool,
}

impl TraceSink for VecSink {
    fn cell(&mut self, r: &CellRow) -> Result<()> {
        self.cells.push(r.clone());
        Ok(())
    }
    fn device(&mut self, r: &DeviceRow) -> Result<()> {
        self.devices.push(r.clone());
        Ok(())
    }
    fn round(&mut self, r: &RoundRow) -> Result<()> {
        self.rounds.push(r.clone());
        Ok(())
    }
    fn device_round(&mut self, r: &DeviceRoundRow) -> Result<()> {
        self.device_rounds.push(r.clone());
        Ok(())
    }
    fn left_out(&mut self, r: &LeftOutRow) -> Result<()> {
        self.left_out.push(r.clone());
        Ok(())
    }
    fn bcd_step(&mut self, r: &BcdStepRow) -> Result<()> {
        self.bcd_steps.push(r.clone());
        Ok(())
    }
    fn event(&mut self, r: &EventRow) -> Result<()> {
        self.events.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        Ok(())
    }
}
