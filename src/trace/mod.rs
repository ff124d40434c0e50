//! Traces (SPEC section 9): row types, the [`TraceSink`] trait the engine
//! pushes into, a `Vec` sink for tests and the Parquet sink for runs.

pub mod columns;
pub mod parquet;
mod summary;

pub use columns::{ColumnSet, Row};
pub use parquet::ParquetSink;
pub use summary::{Summary, SummaryBuilder};

use crate::error::Result;
use columns::Col;
use serde::Serialize;

/// One row per round.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundRow {
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
    /// Allocator objective [J].
    pub objective_j: f64,
    /// Allocator efficiency, eq. 21 [1/J].
    pub efficiency_per_j: f64,
    pub alloc_iterations: u32,
    /// Allocator wall time [s]: the one column that varies between runs.
    pub alloc_wall_s: f64,
    pub loss: Option<f64>,
    pub accuracy: Option<f64>,
}

impl Row for RoundRow {
    const TABLE: &'static str = "rounds";
    fn columns() -> Vec<(&'static str, Col)> {
        use Col::*;
        vec![
            ("round", U32),
            ("start_s", F64),
            ("end_s", F64),
            ("online", U64),
            ("candidates", U32),
            ("scheduled", U32),
            ("finished", U32),
            ("stragglers", U32),
            ("failed", U32),
            ("energy_j", F64),
            ("energy_cmp_j", F64),
            ("energy_com_j", F64),
            ("mean_bits", OptF64),
            ("objective_j", F64),
            ("efficiency_per_j", F64),
            ("alloc_iterations", U32),
            ("alloc_wall_s", F64),
            ("loss", OptF64),
            ("accuracy", OptF64),
        ]
    }
    fn push(&self, c: &mut ColumnSet) {
        c.u32(self.round).f64(self.start_s).f64(self.end_s).u64(self.online).u32(self.candidates);
        c.u32(self.scheduled).u32(self.finished).u32(self.stragglers).u32(self.failed).f64(self.energy_j);
        c.f64(self.energy_cmp_j).f64(self.energy_com_j).opt_f64(self.mean_bits).f64(self.objective_j);
        c.f64(self.efficiency_per_j).u32(self.alloc_iterations).f64(self.alloc_wall_s).opt_f64(self.loss);
        c.opt_f64(self.accuracy);
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

/// One row per scheduled device per round.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceRoundRow {
    pub round: u32,
    pub device: u32,
    pub rb: u32,
    /// [m]
    pub distance_m: f64,
    /// Channel gain on its RB [1].
    pub gain: f64,
    pub power_w: f64,
    pub bits: u32,
    pub rate_bps: f64,
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
    /// Where an unfinished device was cut: e.g. `uplink` in iteration 1.
    pub cut_phase: Option<&'static str>,
}

impl Row for DeviceRoundRow {
    const TABLE: &'static str = "device_rounds";
    fn columns() -> Vec<(&'static str, Col)> {
        use Col::*;
        vec![
            ("round", U32),
            ("device", U32),
            ("rb", U32),
            ("distance_m", F64),
            ("gain", F64),
            ("power_w", F64),
            ("bits", U32),
            ("rate_bps", F64),
            ("payload_bits", U64),
            ("t_cmp_s", F64),
            ("t_com_s", F64),
            ("t_srv_s", F64),
            ("t_wait_s", F64),
            ("t_down_s", F64),
            ("time_s", F64),
            ("predicted_time_s", F64),
            ("energy_cmp_j", F64),
            ("energy_com_j", F64),
            ("energy_j", F64),
            ("outcome", Str),
            ("cut_phase", OptStr),
        ]
    }
    fn push(&self, c: &mut ColumnSet) {
        c.u32(self.round).u32(self.device).u32(self.rb).f64(self.distance_m).f64(self.gain).f64(self.power_w);
        c.u32(self.bits).f64(self.rate_bps).u64(self.payload_bits).f64(self.t_cmp_s).f64(self.t_com_s);
        c.f64(self.t_srv_s).f64(self.t_wait_s).f64(self.t_down_s).f64(self.time_s).f64(self.predicted_time_s);
        c.f64(self.energy_cmp_j).f64(self.energy_com_j).f64(self.energy_j).str(self.outcome.as_str());
        c.opt_str(self.cut_phase);
    }
}

/// Static device attributes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceRow {
    pub device: u32,
    pub distance_m: f64,
    pub p_max_w: f64,
    pub gpu_freq_hz: f64,
    pub cores: u32,
    pub flops_per_cycle: f64,
    pub samples: u64,
    pub shadowing_db: f64,
    /// Samples per class when the run trains (empty otherwise) [samples].
    pub class_counts: Vec<u32>,
}

impl Row for DeviceRow {
    const TABLE: &'static str = "devices";
    fn columns() -> Vec<(&'static str, Col)> {
        use Col::*;
        vec![
            ("device", U32),
            ("distance_m", F64),
            ("p_max_w", F64),
            ("gpu_freq_hz", F64),
            ("cores", U32),
            ("flops_per_cycle", F64),
            ("samples", U64),
            ("shadowing_db", F64),
            ("class_counts", ListU32),
        ]
    }
    fn push(&self, c: &mut ColumnSet) {
        c.u32(self.device).f64(self.distance_m).f64(self.p_max_w).f64(self.gpu_freq_hz).u32(self.cores);
        c.f64(self.flops_per_cycle).u64(self.samples).f64(self.shadowing_db).list_u32(&self.class_counts);
    }
}

/// One row per handled event (optional table).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRow {
    /// [ns]
    pub time_ns: u64,
    pub round: u32,
    pub device: Option<u32>,
    pub kind: &'static str,
}

impl Row for EventRow {
    const TABLE: &'static str = "events";
    fn columns() -> Vec<(&'static str, Col)> {
        use Col::*;
        vec![("time_ns", U64), ("round", U32), ("device", OptU32), ("kind", Str)]
    }
    fn push(&self, c: &mut ColumnSet) {
        c.u64(self.time_ns).u32(self.round).opt_u32(self.device).str(self.kind);
    }
}

/// Where the engine pushes rows.
pub trait TraceSink {
    fn device(&mut self, r: &DeviceRow) -> Result<()>;
    fn round(&mut self, r: &RoundRow) -> Result<()>;
    fn device_round(&mut self, r: &DeviceRoundRow) -> Result<()>;
    fn event(&mut self, r: &EventRow) -> Result<()>;
    /// Flushes and closes; after it the output is complete.
    fn finish(&mut self) -> Result<()>;
}

/// Keeps every row in memory (tests, small runs).
#[derive(Default, Debug, Clone)]
pub struct VecSink {
    pub devices: Vec<DeviceRow>,
    pub rounds: Vec<RoundRow>,
    pub device_rounds: Vec<DeviceRoundRow>,
    pub events: Vec<EventRow>,
    pub finished: bool,
}

impl TraceSink for VecSink {
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
    fn event(&mut self, r: &EventRow) -> Result<()> {
        self.events.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        Ok(())
    }
}
