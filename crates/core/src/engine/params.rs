//! The scenario as the engine uses it, resolved once at wiring time (as
//! ripgrep's `HiArgs` resolves its low-level arguments): durations in
//! nanoseconds, the framework's profile, the workload's per-image
//! FLOPs on each side, the server's drawn throughput. Event handlers read
//! only these.

use crate::alloc::model::RoundModel;
use crate::config::{Profile, RoundMode, Scenario};
use crate::device::compute_time_s;
use crate::error::{Error, Result};
use crate::geo::{Cell, Cells};
use crate::net::noise_w;
use crate::quant::fp32_bits;
use crate::sim::rng::stream;
use crate::units::SimDuration;
use crate::workload::{Workload, vit_config};
use rand::Rng as _;

/// A duration [s] as [`SimDuration`], or the named numeric checkpoint.
pub(crate) fn ns(s: f64, what: &'static str) -> Result<SimDuration> {
    SimDuration::from_secs_f64(s).ok_or_else(|| Error::Numeric { checkpoint: what, detail: format!("duration {s} s") })
}

/// Everything the round loop needs from the scenario, in its units.
#[derive(Clone, Debug)]
pub struct EngineParams {
    pub seed: u64,
    /// Rounds R [1].
    pub rounds: u32,
    pub mode: RoundMode,
    /// Deadline T_max [ns].
    pub deadline: SimDuration,
    /// Deadline T_max [s], as the allocator's problem states it.
    pub deadline_s: f64,
    /// Iterations I per participant and round [1] (when `local_epochs` is 0).
    pub iterations: u32,
    /// Local epochs per round; 0 = `iterations` for everyone [1].
    pub local_epochs: u32,
    /// Candidate pool per round [1].
    pub candidates: usize,
    pub events_trace: bool,
    /// Dropout probability per scheduled participant and round [1].
    pub dropout_probability: f64,
    /// What the framework means for the network.
    pub profile: &'static Profile,
    /// Mini-batch [images].
    pub batch: f64,
    /// Device forward FLOPs per image [FLOP]: the patch embedding for a
    /// split framework, the whole model otherwise.
    pub device_fwd_flops: f64,
    /// Device backward FLOPs per image [FLOP].
    pub device_bwd_flops: f64,
    /// Server time per iteration at full speed [ns] (split frameworks),
    /// per cell: each cell's edge server has its own drawn speed.
    pub server_service: Vec<SimDuration>,
    /// Downlink of the cut-layer gradient per iteration [ns]; zero when off.
    pub downlink: SimDuration,
    /// Activation elements per iteration [1]; 0 for whole-model frameworks.
    pub activation_elements: u64,
    /// Bits uploaded once per round besides activations [bit].
    pub extra_upload_bits: u64,
    /// The whole model in fp32, as an edge server sends it over the
    /// backhaul [bit].
    pub model_bits: u64,
    /// Energy coefficient κ [W/(cycle/s)^3 per core].
    pub kappa: f64,
    /// Resource blocks K per cell [1].
    pub rb_count: Vec<usize>,
    /// RB bandwidth B [Hz].
    pub rb_bandwidth_hz: f64,
    /// Noise power over one RB [W].
    pub noise_w: f64,
    /// Utility weight w [J per unit utility].
    pub weight_j: f64,
    /// Bit range of the allocator [bit].
    pub bits_min: u32,
    pub bits_max: u32,
    /// The measured utility for `bits_min..=bits_max` (`allocator.utility
    /// = "table"`); None: the assumed curve [1].
    pub utility_table: Option<Vec<f64>>,
    /// Write `bcd`'s per-step history (`run.bcd_trace`).
    pub bcd_trace: bool,
    /// What the planner is told of the round beyond the uplink, per cell.
    pub round_model: Vec<RoundModel>,
}

/// The workload of the scenario's timing model (`model.timing`).
pub fn timing_workload(s: &Scenario) -> Result<Workload> {
    let cfg = vit_config(&s.model.timing)
        .ok_or_else(|| Error::Input(format!("model.timing = {:?}: unknown timing model", s.model.timing)))?;
    Ok(Workload::of(cfg))
}

/// The utility table of `allocator.utility = "table"`, read and checked
/// against the scenario's bit range; None with the assumed curve.
pub fn utility_table(s: &Scenario) -> Result<Option<Vec<f64>>> {
    match s.allocator.utility {
        crate::config::UtilityKind::Assumed => Ok(None),
        crate::config::UtilityKind::Table => crate::alloc::utility::read_table(
            std::path::Path::new(&s.allocator.utility_file),
            s.quantization.bits_min,
            s.quantization.bits_max,
        )
        .map(Some),
    }
}

impl EngineParams {
    /// Resolves a validated scenario for its `cells`. Draws each cell's
    /// server cores and FLOPs per cycle from the `"server"` stream of the
    /// cell's index (cell 0: the single cell's draw), unless the cell
    /// table gives them.
    pub fn resolve(s: &Scenario, cells: &Cells) -> Result<EngineParams> {
        let work = timing_workload(s)?;
        let server_flops_per_s = |c: usize, cell: &Cell| {
            let mut rng_server = stream(s.run.seed, "server", c as u64);
            let cores = rng_server.random_range(s.server.cores_min..=s.server.cores_max) as f64;
            let fpc = rng_server.random_range(s.server.flops_per_cycle_min..=s.server.flops_per_cycle_max) as f64;
            cell.server_freq_hz.unwrap_or(s.server.freq_hz) * cell.server_cores.unwrap_or(cores) * fpc
        };
        let profile = s.training.framework.profile();
        let batch = s.model.batch as f64;
        let act = profile.activation_elements(s.model.batch, work.cut_elements);
        let (fwd, bwd) = work.device_flops(profile.split);
        let net = &s.network;
        let down_s = if net.downlink { fp32_bits(act) as f64 / net.downlink_rate_bps } else { 0.0 };
        let server_service = cells
            .cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                ns(compute_time_s(batch * work.server_train_flops, server_flops_per_s(c, cell)), "server.service_time")
            })
            .collect::<Result<Vec<_>>>()?;
        let downlink = ns(down_s, "downlink.time")?;
        let round_model = |service: SimDuration| RoundModel {
            discipline: s.server.discipline,
            service_ns: if profile.split { service.0 } else { 0 },
            downlink_ns: if profile.split { downlink.0 } else { 0 },
            split: profile.split,
            relay: profile.relay,
            sync: s.run.mode == RoundMode::Sync,
            quantized: profile.quantized,
            queue_aware: s.allocator.queue_aware,
        };
        let round_model = server_service.iter().map(|&sv| round_model(sv)).collect();
        // A cells table's resource blocks, checked against memory as the
        // scenario's network.rb_count was at load.
        let max_rb = cells.cells.iter().map(|c| c.rb_count).max().unwrap_or(0);
        if max_rb > s.network.rb_count
            && let Some((est, m)) = crate::config::memory::over_machine(s, max_rb)
        {
            return Err(Error::Input(format!(
                "{} (cells.file): a cell with rb_count = {max_rb}: {}",
                s.cells.file,
                est.refusal(m)
            )));
        }
        Ok(EngineParams {
            seed: s.run.seed,
            rounds: s.run.rounds,
            mode: s.run.mode,
            deadline: ns(s.run.deadline_s, "run.deadline_s")?,
            deadline_s: s.run.deadline_s,
            iterations: s.run.iterations,
            local_epochs: s.training.local_epochs,
            candidates: s.run.candidates,
            events_trace: s.run.events_trace,
            dropout_probability: s.availability.dropout_probability,
            profile,
            batch,
            device_fwd_flops: fwd,
            device_bwd_flops: bwd,
            server_service,
            downlink,
            activation_elements: act,
            extra_upload_bits: profile.extra_upload_bits(work.device_params, work.server_params, net.model_upload),
            model_bits: 32 * (work.device_params + work.server_params) as u64,
            kappa: s.devices.kappa,
            rb_count: cells.cells.iter().map(|c| c.rb_count).collect(),
            rb_bandwidth_hz: net.rb_bandwidth_hz,
            noise_w: noise_w(net.noise_dbm_per_hz, net.rb_bandwidth_hz),
            weight_j: s.allocator.weight_j,
            bits_min: s.quantization.bits_min,
            bits_max: s.quantization.bits_max,
            utility_table: super::utility_table(s)?,
            bcd_trace: s.run.bcd_trace,
            round_model,
        })
    }
}
