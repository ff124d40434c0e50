//! Scenario files: typed, documented config sections (SPEC section 10
//! holds the defaults), loading with precise error locations, `--set`
//! overrides, semantic validation, and the resolved-scenario writer.
//!
//! Each parameter is declared once, with [`params::section!`]: its meaning
//! and unit (in brackets), default, origin (P = the paper, C = chosen here,
//! X = a tool setting) and allowed values. The struct, its `Default`, its
//! checks and the guide's scenario reference all come from that one
//! declaration. This module is a leaf: it imports nothing of the simulator.
//!
//! ```
//! use sflam_core::config::load_scenario_str;
//! let s = load_scenario_str("[network]\nrb_count = 20\n", "inline.toml".as_ref(), &["run.seed=7".into()]).unwrap();
//! assert_eq!((s.network.rb_count, s.run.seed, s.devices.count), (20, 7, 100));
//! // A bad value is reported with the file, the line, the field and what is allowed.
//! let e = load_scenario_str("[network]\nrb_count = 0\n", "bad.toml".as_ref(), &[]).unwrap_err();
//! assert!(e.to_string().starts_with("bad.toml:2:"), "{e}");
//! assert!(e.to_string().contains("network.rb_count") && e.to_string().contains("an integer in 1..=100000"));
//! ```

mod framework;
pub mod inputs;
mod load;
pub mod memory;
pub mod models;
pub mod params;
mod validate;

pub use framework::{Plan, Planner, Profile, Upload};
pub use load::{load_scenario, load_scenario_str, parse_override, read_scenario_text};
pub use params::{Checker, ParamDoc, Problem, Section};
pub use validate::validate;

use params::{choice, section};
use serde::{Deserialize, Serialize};

/// A whole scenario. Missing sections and fields take their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub run: RunConfig,
    pub network: NetworkConfig,
    pub cells: CellsConfig,
    pub backhaul: BackhaulConfig,
    pub devices: DevicesConfig,
    pub availability: AvailabilityConfig,
    pub mobility: MobilityConfig,
    pub server: ServerConfig,
    pub model: ModelConfig,
    pub quantization: QuantizationConfig,
    pub allocator: AllocatorConfig,
    pub training: TrainingConfig,
    pub sweep: SweepConfig,
}

/// Calls `$m!(field, Type)` for every section, in file order: the one list
/// of sections the checks and the reference walk.
macro_rules! for_each_section {
    ($m:ident) => {
        $m!(run, $crate::config::RunConfig);
        $m!(network, $crate::config::NetworkConfig);
        $m!(cells, $crate::config::CellsConfig);
        $m!(backhaul, $crate::config::BackhaulConfig);
        $m!(devices, $crate::config::DevicesConfig);
        $m!(availability, $crate::config::AvailabilityConfig);
        $m!(mobility, $crate::config::MobilityConfig);
        $m!(server, $crate::config::ServerConfig);
        $m!(model, $crate::config::ModelConfig);
        $m!(quantization, $crate::config::QuantizationConfig);
        $m!(allocator, $crate::config::AllocatorConfig);
        $m!(training, $crate::config::TrainingConfig);
        $m!(sweep, $crate::config::SweepConfig);
    };
}
pub(crate) use for_each_section;

section! {
    /// `[run]`: the round loop and the output.
    RunConfig "run" {
        /// Scenario name, used in the default output folder.
        name: String = "default".to_string(), X, Rule::Name;
        /// Master seed [1]; every component derives its own stream. Any
        /// u64: a seed above 2^63 - 1 (TOML's largest integer) may also be
        /// written as a string of digits, as `--set` passes it.
        #[serde(deserialize_with = "params::u64_from_int_or_digits")]
        seed: u64 = 1, X, Rule::Any;
        /// Global rounds R [1].
        rounds: u32 = 20, X, Rule::MinU(1);
        /// `"deadline"`: a round lasts `deadline_s`, late devices are
        /// stragglers; `"sync"`: a round ends when its last participant is done.
        mode: RoundMode = RoundMode::Deadline, X, Rule::Any;
        /// Round deadline T_max [s].
        deadline_s: f64 = 10.0, C, Rule::AboveAtMostF(0.0, 1e6);
        /// Mini-batch iterations I per participant and round [1].
        iterations: u32 = 1, P, Rule::RangeU(1, crate::alloc::model::ITERATIONS_MAX as u64);
        /// Candidate pool per round, sampled from online devices [1].
        candidates: usize = 100, X, Rule::MinU(1);
        /// Output folder; empty means `runs/<name>`.
        output_dir: String = String::new(), X, Rule::Any;
        /// Also write the `events` table (one row per event).
        events_trace: bool = false, X, Rule::Any;
        /// Write `bcd_steps.parquet`: `bcd`'s state after each block step
        /// of every round (the paper's Fig. 4 (a)-(c)).
        bcd_trace: bool = false, X, Rule::Any;
        /// Rows buffered per Parquet row group [1].
        row_group_rows: usize = 65536, X, Rule::MinU(1);
        /// Worker threads for trace writing and training; 0 = all cores [1].
        /// Results never depend on it.
        threads: usize = 0, X, Rule::Any;
    }
}

impl RunConfig {
    /// The worker threads this run uses: `threads`, or all cores when 0.
    pub fn worker_threads(&self) -> usize {
        threads_or_all_cores(self.threads)
    }
}

/// A thread count where 0 means all cores [1]: the one place that rule is
/// written (`run.threads`, the trainer's pool).
pub fn threads_or_all_cores(threads: usize) -> usize {
    if threads > 0 { threads } else { all_cores() }
}

/// The cores this process may use [1] (at least 1): what "0 = all cores"
/// means everywhere.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

choice! {
    /// How a round ends.
    RoundMode { Deadline = "deadline", Sync = "sync" }
}

section! {
    /// `[network]`: OFDMA uplink (SPEC section 4) and the downlink.
    NetworkConfig "network" {
        /// Resource blocks K [1].
        rb_count: usize = 10, X, Rule::RangeU(1, RB_COUNT_MAX as u64);
        /// Bandwidth of one RB, B [Hz].
        rb_bandwidth_hz: f64 = 20e6, P, Rule::AboveAtMostF(0.0, 1e10);
        /// Noise spectral density N0 [dBm/Hz].
        noise_dbm_per_hz: f64 = -174.0, C, Rule::RangeF(-300.0, 0.0);
        /// Path-loss model.
        path_loss: PathLossKind = PathLossKind::LogDistance, C, Rule::Any;
        /// Log-distance intercept at 1 km [dB].
        path_loss_intercept_db: f64 = 128.1, C, Rule::RangeF(0.0, 400.0);
        /// Log-distance slope [dB per decade of km].
        path_loss_slope_db: f64 = 37.6, C, Rule::AboveF(0.0);
        /// Carrier frequency for free-space path loss [Hz].
        carrier_hz: f64 = 2e9, X, Rule::AboveF(0.0);
        /// Log-normal shadowing standard deviation, per device [dB]; 0 = off.
        shadowing_std_db: f64 = 0.0, X, Rule::RangeF(0.0, 30.0);
        /// Small-scale fading: `"rayleigh"` (per device, RB and round) or `"none"`.
        fading: FadingKind = FadingKind::Rayleigh, P, Rule::Any;
        /// Model the downlink of the cut-layer gradient (the paper ignores it).
        downlink: bool = false, P, Rule::Any;
        /// Downlink rate per device [bit/s].
        downlink_rate_bps: f64 = 100e6, C, Rule::AboveF(0.0);
        /// Upload the device-side model after the last iteration (at the
        /// uplink rate and power of the round; the paper omits it).
        model_upload: bool = false, P, Rule::Any;
    }
}

choice! {
    /// A path-loss model (`crate::net`).
    PathLossKind { LogDistance = "log-distance", FreeSpace = "free-space" }
}

choice! {
    /// A small-scale fading model (`crate::net::fading`).
    FadingKind { Rayleigh = "rayleigh", None = "none" }
}

section! {
    /// `[cells]`: base stations on a map, each with its RBs and edge server
    /// (`crate::geo`). One cell (the default) is the paper's single cell:
    /// its traces are those of a scenario without this section.
    CellsConfig "cells" {
        /// Cells (base stations, each with its own edge server) [1].
        count: usize = 1, X, Rule::RangeU(1, 100_000);
        /// Where the cells stand: `"hex"` (a hexagonal grid spiralling out
        /// from the origin), `"random"` (uniform in a square of side
        /// sqrt(count) x `inter_site_m`) or `"file"` (`cells.file`).
        layout: CellLayout = CellLayout::Hex, X, Rule::Any;
        /// Distance between neighbouring base stations [m].
        inter_site_m: f64 = 2000.0, X, Rule::AboveF(0.0);
        /// With `layout = "file"`: a CSV or Parquet table of `count` rows
        /// with columns `x_m`, `y_m` [m] and optionally `rb_count` [1], `server_cores` [1]
        /// and `server_freq_hz` [Hz] (absent: `network.rb_count` and the
        /// `[server]` draw); one row per cell.
        file: String = String::new(), X, Rule::PathEnding(&[".csv", ".parquet"]);
        /// Frequency reuse factor K: cells are coloured into K groups
        /// (on the hex grid a pattern in which neighbours differ, for any
        /// K >= 3; elsewhere the cell index mod K); cells of one colour use
        /// the same band and interfere, other colours do not [1].
        reuse: usize = 1, X, Rule::MinU(1);
        /// Which cell a device uses: `"nearest"` base station or
        /// `"strongest"` large-scale gain (path loss and the link's
        /// shadowing); re-evaluated whenever the device is a candidate.
        association: Association = Association::Nearest, X, Rule::Any;
        /// Uplink interference from co-channel devices of other cells:
        /// `"full"` (SINR, evaluated per round at the planned powers of the
        /// devices scheduled on the same RB of same-colour cells, as if
        /// their uploads overlapped, averaged over fading) or `"none"` (SNR).
        interference: InterferenceKind = InterferenceKind::Full, X, Rule::Any;
    }
}

section! {
    /// `[backhaul]`: the links between the cells' edge servers and a cloud
    /// aggregator (`crate::backhaul`). Edge servers aggregate their cell's
    /// devices every round; every `cloud_every` rounds each edge model
    /// travels to the cloud and the global model back, over shortest paths
    /// whose links are FIFO queues, before the next round starts.
    BackhaulConfig "backhaul" {
        /// Simulate the backhaul; off: no backhaul time (the paper's single
        /// server, or flat aggregation across cells at no cost).
        enabled: bool = false, X, Rule::Any;
        /// Cloud aggregation period k [rounds]: the edge models go to the
        /// cloud after rounds k-1, 2k-1, ... (k = 1: every round).
        cloud_every: u32 = 1, X, Rule::MinU(1);
        /// `"star"` (every edge server linked to the cloud directly) or
        /// `"file"` (`links_file`).
        topology: BackhaulTopology = BackhaulTopology::Star, X, Rule::Any;
        /// Rate of each star link, each direction [bit/s].
        rate_bps: f64 = 1e9, X, Rule::AboveF(0.0);
        /// One-way latency of each star link [s].
        latency_s: f64 = 0.005, X, Rule::MinF(0.0);
        /// Energy of carrying one bit over one link (transmission and
        /// switching; wired backhaul equipment spends 1-100 nJ/bit) [J/bit].
        energy_per_bit_j: f64 = 1e-8, C, Rule::MinF(0.0);
        /// With `topology = "file"`: a CSV or Parquet table of links with
        /// columns `from`, `to` (node ids: cells 0..count-1, the cloud -1,
        /// any other id a router), `rate_bps` [bit/s] and `latency_s` [s];
        /// each link carries both directions, each its own FIFO queue.
        links_file: String = String::new(), X, Rule::PathEnding(&[".csv", ".parquet"]);
    }
}

choice! {
    /// How the backhaul is laid out.
    BackhaulTopology { Star = "star", File = "file" }
}

choice! {
    /// How cells are placed (`crate::geo`).
    CellLayout { Hex = "hex", Random = "random", File = "file" }
}

choice! {
    /// How a device picks its cell.
    Association { Nearest = "nearest", Strongest = "strongest" }
}

choice! {
    /// Whether other cells' uplinks interfere.
    InterferenceKind { Full = "full", None = "none" }
}

choice! {
    /// How devices are placed on the map.
    Placement { Ring = "ring", Uniform = "uniform", Hotspots = "hotspots", File = "file" }
}

section! {
    /// `[devices]`: the population, drawn once from these distributions.
    DevicesConfig "devices" {
        /// Devices N [1].
        count: usize = 100, X, Rule::RangeU(1, 100_000_000);
        /// Distance to the server, uniform in [min, max] [m].
        distance_min_m: f64 = 50.0, P, Rule::RangeF(0.01, 1e7);
        /// Upper end of the distance [m].
        distance_max_m: f64 = 1000.0, P, Rule::RangeF(0.01, 1e7);
        /// Maximum transmit power p_max, uniform in [min, max] [W].
        p_max_min_w: f64 = 0.5, P, Rule::AboveAtMostF(0.0, 1e3);
        /// Upper end of p_max [W].
        p_max_max_w: f64 = 2.0, P, Rule::AboveAtMostF(0.0, 1e3);
        /// GPU frequency f_n, uniform in [min, max] [Hz].
        gpu_freq_min_hz: f64 = 0.5e9, C, Rule::RangeF(1e6, 1e12);
        /// Upper end of f_n [Hz].
        gpu_freq_max_hz: f64 = 1.5e9, C, Rule::RangeF(1e6, 1e12);
        /// GPU cores C_n, uniform integer in [min, max] [1].
        cores_min: u32 = 4, P, Rule::MinU(1);
        /// Upper end of C_n [1].
        cores_max: u32 = 6, P, Rule::Any;
        /// FLOPs per cycle per core D_n [FLOP/cycle].
        flops_per_cycle: f64 = 1.0, P, Rule::AboveF(0.0);
        /// Energy coefficient κ [W/(cycle/s)^3 per core].
        kappa: f64 = 1e-28, C, Rule::MinF(0.0);
        /// Local data size, uniform integer in [min, max] [samples]; sets
        /// the data share ρ_n (a training run replaces it by its partition).
        samples_min: u64 = 100, X, Rule::MinU(1);
        /// Upper end of the data size [samples].
        samples_max: u64 = 1000, X, Rule::Any;
        /// Where devices stand: `"ring"` (each around a home cell drawn
        /// uniformly, at the distance above and a uniform angle: with one
        /// cell, the paper's drop), `"uniform"` (uniform over the cells'
        /// bounding box grown by `distance_max_m`), `"hotspots"`
        /// (`hotspots` clusters around uniform centres) or `"file"`
        /// (`positions_file`).
        placement: Placement = Placement::Ring, X, Rule::Any;
        /// Hotspot clusters with `placement = "hotspots"` [1].
        hotspots: usize = 10, X, Rule::MinU(1);
        /// Standard deviation of a device's offset from its hotspot, per
        /// axis [m].
        hotspot_std_m: f64 = 100.0, X, Rule::AboveF(0.0);
        /// With `placement = "file"`: a CSV or Parquet table with columns
        /// `x_m`, `y_m` [m], one row per device, at least `count` rows.
        positions_file: String = String::new(), X, Rule::PathEnding(&[".csv", ".parquet"]);
        /// Per-device attributes from a CSV or Parquet table
        /// (docs/devices.md): column `device` (ids 0..rows-1, each once)
        /// and any of `x_m`, `y_m` [m] or `distance_m` [m] and `cell`,
        /// `p_max_w` [W], `gpu_freq_hz` [Hz] or `flops_per_s` [FLOP/s] or
        /// `compute_s_per_sample` [s], `cores`, `flops_per_cycle`,
        /// `samples`, `shadowing_db` [dB] or `uplink_bps` [bit/s]; a
        /// column absent keeps the distributions above; other columns are
        /// ignored [path].
        file: String = String::new(), X, Rule::PathEnding(&[".csv", ".parquet"]);
        /// Which rows of `file` the devices take when the counts differ:
        /// `"first"` (the first `count` rows), `"sample"` (a seeded sample
        /// of `count` rows) or `"resample"` (drawn with replacement; the
        /// only choice with fewer rows than devices).
        file_rows: DeviceRows = DeviceRows::First, X, Rule::Any;
    }
}

choice! {
    /// Which rows of `devices.file` the devices take.
    DeviceRows { First = "first", Sample = "sample", Resample = "resample" }
}

choice! {
    /// How devices go on and off line.
    AvailabilityModel { Exponential = "exponential", Trace = "trace" }
}

section! {
    /// `[availability]`: per-device on/off process, exponential durations or a trace.
    AvailabilityConfig "availability" {
        /// Turn the process on; off means every device is always online (as the paper).
        enabled: bool = false, P, Rule::Any;
        /// `"exponential"` (online and offline durations drawn with the
        /// means below) or `"trace"` (each device online exactly in its
        /// intervals from `availability.file`).
        model: AvailabilityModel = AvailabilityModel::Exponential, X, Rule::Any;
        /// With `model = "trace"`: a CSV or Parquet table with columns
        /// `device`, `start_s`, `end_s` [s] (an online interval [start,
        /// end)) and optionally `period_s` [s] (the trace repeats with
        /// this period, as FedScale's `finish_time`; 0 = once); every
        /// device 0..count-1 needs at least one interval [path].
        file: String = String::new(), X, Rule::PathEnding(&[".csv", ".parquet"]);
        /// Mean online duration [s].
        mean_online_s: f64 = 600.0, X, Rule::AboveF(0.0);
        /// Mean offline duration [s].
        mean_offline_s: f64 = 120.0, X, Rule::AboveF(0.0);
        /// Probability that a scheduled participant drops out during a
        /// round, at a uniform time within its own planned round (round
        /// start to its predicted finish) [1].
        dropout_probability: f64 = 0.0, P, Rule::RangeF(0.0, 1.0);
    }
}

section! {
    /// `[mobility]`: how a device's distance changes between rounds.
    MobilityConfig "mobility" {
        /// `"static"` or `"random-walk"` (reflected Brownian motion of the
        /// distance within [distance_min_m, distance_max_m]).
        model: MobilityKind = MobilityKind::Static, P, Rule::Any;
        /// Random-walk intensity: std of the distance change over one second [m/√s].
        step_std_m_per_sqrt_s: f64 = 1.0, X, Rule::MinF(0.0);
    }
}

choice! {
    /// A mobility model (`crate::device::Mobility`).
    MobilityKind { Static = "static", RandomWalk = "random-walk" }
}

section! {
    /// `[server]`: the edge server's GPU and its queueing discipline.
    ServerConfig "server" {
        /// `"ideal"` (every device served at full speed in parallel, as the
        /// paper), `"fifo"` or `"processor-sharing"`.
        discipline: ServerDisciplineKind = ServerDisciplineKind::Fifo, C, Rule::Any;
        /// GPU frequency f_s [Hz].
        freq_hz: f64 = 3e9, P, Rule::RangeF(1e6, 1e12);
        /// GPU cores C_s, uniform integer in [min, max], drawn once [1].
        cores_min: u32 = 2560, P, Rule::MinU(1);
        /// Upper end of C_s [1].
        cores_max: u32 = 5120, P, Rule::Any;
        /// FLOPs per cycle per core D_s, uniform integer in [min, max] [FLOP/cycle].
        flops_per_cycle_min: u32 = 1, P, Rule::MinU(1);
        /// Upper end of D_s [FLOP/cycle].
        flops_per_cycle_max: u32 = 2, P, Rule::Any;
    }
}

choice! {
    /// A server queueing discipline (`crate::server`).
    ServerDisciplineKind { Ideal = "ideal", Fifo = "fifo", ProcessorSharing = "processor-sharing" }
}

section! {
    /// `[model]`: the model whose workload sets the timing.
    ModelConfig "model" {
        /// Timing model, by name (`sflam workload` lists them).
        timing: String = "vit-b32".to_string(), P, Rule::OneOf(models::config_names);
        /// Mini-batch size [images].
        batch: usize = 64, P, Rule::MinU(1);
    }
}

section! {
    /// `[quantization]`: the activation quantizer (SPEC section 2).
    QuantizationConfig "quantization" {
        /// Smallest bit width an allocator may choose [bit] (the paper: b >= 4).
        bits_min: u32 = 4, C, Rule::Bits;
        /// Largest bit width [bit].
        bits_max: u32 = 16, C, Rule::Bits;
    }
}

section! {
    /// `[allocator]`: the per-round resource allocation (SPEC section 6).
    AllocatorConfig "allocator" {
        /// The allocator that plans each round (SPEC section 6).
        name: AllocatorKind = AllocatorKind::Fixed, X, Rule::Any;
        /// Bits used by `fixed` [bit].
        fixed_bits: u32 = 8, X, Rule::Bits;
        /// Trade-off weight w between utility and energy [J per unit utility].
        weight_j: f64 = 1000.0, C, Rule::MinF(0.0);
        /// The utility U(b) that weighs activation bits: `"assumed"`
        /// (1 − 2^−(b − bits_min + 1), chosen because the paper's curve was
        /// lost) or `"table"` (measured from training, read from
        /// `allocator.utility_file`; `sflam calibrate` writes one).
        utility: UtilityKind = UtilityKind::Assumed, C, Rule::Any;
        /// The utility table when `allocator.utility = "table"`: CSV or
        /// Parquet with columns `bits` (every width in
        /// `quantization.bits_min..=bits_max`; 32 = fp32) and `utility` in
        /// (0, 1], not falling as bits grow, fp32 = 1; read only when
        /// `allocator.utility = "table"` [path].
        utility_file: String = String::new(), X, Rule::PathEnding(&[".csv", ".parquet"]);
        /// BCD stopping tolerance on the objective [J].
        epsilon_j: f64 = 1e-6, X, Rule::AboveF(0.0);
        /// BCD iteration cap [1].
        max_iterations: u32 = 50, X, Rule::MinU(1);
        /// BCD's starting power: `"p-max"` (every device at p_max, as the
        /// paper's Algorithm 3 leaves it open) or `"closed-form"` (each
        /// device's energy-minimal power for `bits_max` on its best RB).
        bcd_start: BcdStart = BcdStart::PMax, X, Rule::Any;
        /// Plan with the server's queue: under `fifo` and
        /// `processor-sharing` each device's uploads get only the time its
        /// place at the server leaves (`false`: the paper's queue-blind
        /// plan, every device served at once at full speed).
        queue_aware: bool = true, X, Rule::Any;
    }
}

choice! {
    /// Where the allocators' utility U(b) comes from.
    UtilityKind { Assumed = "assumed", Table = "table" }
}

choice! {
    /// Where `bcd` starts its block coordinate descent.
    BcdStart { PMax = "p-max", ClosedForm = "closed-form" }
}

choice! {
    /// An allocator (SPEC section 6). `crate::alloc::build` makes one of
    /// each, by an exhaustive match: a new allocator is one line here and
    /// one arm there, and the compiler checks they agree.
    AllocatorKind {
        /// The joint optimum: per (device, RB) best bits and power, then one assignment.
        Exact = "exact",
        /// The paper's Algorithm 3 (block coordinate descent with SCA power).
        Bcd = "bcd",
        /// Equal power p_max; bits and matching optimized.
        Ep = "ep",
        /// Random RB assignment; power and bits optimized.
        Rb = "rb",
        /// No quantization: fp32 activations; power and matching optimized.
        Nq = "nq",
        /// `allocator.fixed_bits` and p_max for everyone, RBs in candidate order.
        Fixed = "fixed",
    }
}

impl PartialEq<&str> for AllocatorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

section! {
    /// `[sweep]`: the grid `sflam sweep` runs when no `--grid` is given, so
    /// a paper figure is one command.
    SweepConfig "sweep" {
        /// Axes as `"key=v1,v2,..."`, like `--grid`.
        grid: Vec<String> = Vec::new(), X, Rule::Any;
        /// Same seed for every point, like `--common-seed`.
        common_seed: bool = false, X, Rule::Any;
        /// Output folder of the sweep; empty means `runs/<run.name>`.
        output_dir: String = String::new(), X, Rule::Any;
    }
}

section! {
    /// `[training]`: the learning half (SPEC section 7). `sflam train`
    /// always trains; `sflam run` trains inside the simulation when `enabled`.
    TrainingConfig "training" {
        /// Train the model inside the simulation (`sflam run`).
        enabled: bool = false, X, Rule::Any;
        /// The learning framework.
        framework: FrameworkKind = FrameworkKind::Sflam, X, Rule::Any;
        /// The trained model, a `sflam workload` name (the timed one is `model.timing`).
        model: String = "vit-tiny-28".to_string(), X, Rule::OneOf(models::config_names);
        /// The data set.
        dataset: DatasetKind = DatasetKind::FashionMnist, X, Rule::Any;
        /// Data folder; empty = the default (Fashion-MNIST: Debian's
        /// `dataset-fashion-mnist` in /usr/share/datasets/fashion-mnist
        /// when installed, else the 6,000 + 1,000-image subset shipped in
        /// crates/train/data/fashion-mnist-subset).
        data_dir: String = String::new(), X, Rule::Any;
        /// Use only the first N training samples; 0 = all [samples].
        train_samples: usize = 0, X, Rule::Any;
        /// Share of the training set held out as public data: the devices
        /// never hold it; a pretraining run trains on it
        /// (`training.data_part = "public"`). The draw does not depend on
        /// the run's seed, so every scenario with this share agrees on it.
        /// 0 = none [1].
        public_share: f64 = 0.0, X, Rule::Any;
        /// Which part of the training set this run uses: `"private"` (the
        /// rest after the public share, split over the devices) or
        /// `"public"` (the public share only).
        data_part: DataPart = DataPart::Private, X, Rule::Any;
        /// The task a pretraining run learns: `"labels"` (the data set's
        /// classes) or `"rotation"` (a pretext task: each image turned by
        /// 0, 90, 180 or 270 degrees, drawn per image from the run's seed,
        /// the turn its label; a 4-class head). With `"rotation"`,
        /// `sflam train` writes `model.bpk` with the pretrained backbone
        /// and a freshly drawn head for the data set's classes, so that a
        /// run fine-tuning from it starts near chance on the real task.
        task: TrainTask = TrainTask::Labels, X, Rule::Any;
        /// Evaluate on the first N test samples; 0 = all [samples].
        eval_samples: usize = 0, X, Rule::Any;
        /// Dirichlet concentration α of the per-class partition [1].
        dirichlet_alpha: f64 = 0.5, P, Rule::AboveF(0.0);
        /// Minimum samples per device in the partition [samples].
        min_samples: u64 = 10, X, Rule::MinU(1);
        /// Participants per round of `sflam train` (the simulation's come
        /// from its allocator) [1].
        participants: usize = 10, X, Rule::MinU(1);
        /// Training mini-batch [images]; iterations per round are
        /// `run.iterations`, or follow `training.local_epochs`.
        batch: usize = 32, X, Rule::MinU(1);
        /// Local epochs per participant and round: passes over the device's
        /// own data (the authors' code: 5). A device's iterations are then
        /// local_epochs x ceil(samples / batch), in the simulation's timing,
        /// energy and allocation problem as in its training (a device with
        /// twice the data computes and uploads twice as long); the timing
        /// batch is `model.batch`, which must then equal `training.batch`
        /// when training. 0 = `run.iterations` for every device [1].
        local_epochs: u32 = 0, X, Rule::Any;
        /// Activation bits of `sflam train` runs of `sflam` (the
        /// simulation's come from its allocator) [bit].
        bits: u32 = 8, X, Rule::Bits;
        /// The optimizer (SGD as the authors' code).
        optimizer: OptimizerKind = OptimizerKind::Sgd, P, Rule::Any;
        /// The optimizer's state between rounds: `"reset"` (a fresh
        /// optimizer for every local update: FedAvg's default and the
        /// authors' code) or `"keep"` (each device keeps its own SGD
        /// momentum or Adam moments for each half it trains, from one of
        /// its rounds to the next, in memory and in checkpoints). Memory of
        /// `"keep"`: per device that has trained, parameters x 4 B x (1 for
        /// SGD with momentum, 2 for Adam, 0 for plain SGD), on the host:
        /// vit-tiny-28 with Adam 1.1 MB, ViT-B/32 with SGD momentum 0.35 GB.
        optimizer_state: OptimizerState = OptimizerState::Reset, X, Rule::Any;
        /// Learning rate [1] (the authors' code).
        lr: f64 = 0.01, P, Rule::AboveF(0.0);
        /// SGD momentum [1]; 0 = none (the authors' code).
        momentum: f64 = 0.9, P, Rule::RangeBelowF(0.0, 1.0);
        /// Each mini-batch is cut into this many equal parts whose gradients
        /// are computed in parallel and summed: the full batch's gradient, in
        /// less wall time when a round has fewer participants than cores
        /// (e.g. the centralized baseline, `sl`'s relay). In a split
        /// framework only the server's half is parted: the device still
        /// sends each mini-batch as one quantized message. Results depend
        /// on it (float summation order), not on the thread count [1].
        micro_batches: usize = 1, X, Rule::Any;
        /// The number format of the transformer's matrix products (the
        /// linear layers of every block and the attention's two products):
        /// `"f32"`, or mixed precision for a GPU's matrix units, `"f16"`
        /// (Vulkan's: wgpu computes in f16, not bf16) or `"bf16"`: each
        /// product's operands rounded to that type, summed in f32 by the
        /// backend, the result rounded and carried on in f32; weights,
        /// gradients, optimizer state, the patch embedding, the head,
        /// softmax, layer norm and GELU stay f32. `"f16"` scales the loss
        /// (`loss_scale_log2`). On flex mixed precision costs time and
        /// measures the accuracy effect; results stay a pure function of
        /// the seed.
        precision: Precision = Precision::F32, X, Rule::Any;
        /// With `precision = "f16"`: each local update's first loss scale
        /// is 2^N (PyTorch's GradScaler starts at 2^16), so that small
        /// gradients survive f16 (whose smallest value is 6e-8); a step
        /// whose scaled gradients are not finite is computed again at half
        /// the scale, which then holds for the rest of the update. Powers
        /// of two scale and unscale exactly [1].
        loss_scale_log2: u32 = 16, X, Rule::RangeU(0, 24);
        /// `"constant"` or `"cosine"`: the rate at step t of T = rounds x
        /// iterations is lr x (1 + cos(pi t / T)) / 2.
        lr_schedule: LrSchedule = LrSchedule::Constant, X, Rule::Any;
        /// Linear warm-up: the rate rises as lr x (t + 1) / W over the first
        /// W steps (counted over the whole run, rounds x iterations), then
        /// follows `lr_schedule` over the remaining steps; 0 = none [iterations].
        warmup_iterations: u64 = 0, X, Rule::Any;
        /// Evaluate every N rounds (and after the last) [rounds].
        eval_every: u32 = 1, X, Rule::MinU(1);
        /// Save a checkpoint every N rounds; 0 = only after the last [rounds].
        checkpoint_every: u32 = 0, X, Rule::Any;
        /// Initial weights: empty = random (seeded); a `.bpk` checkpoint of
        /// this model; or a `.safetensors` file with timm ViT names.
        init: String = String::new(), X, Rule::PathEnding(&[".bpk", ".safetensors"]);
        /// The Burn backend: `"flex"` (CPU, pure Rust), `"wgpu"` (a GPU
        /// through Vulkan; needs the `gpu` cargo feature), `"libtorch"`
        /// (PyTorch's CPU kernels through Burn's tch backend; needs the
        /// `libtorch` cargo feature and PyTorch 2.9.0) or `"ndarray"` (CPU,
        /// deprecated upstream; needs the `ndarray` cargo feature).
        backend: BackendKind = BackendKind::Flex, X, Rule::Any;
        /// With `backend = "wgpu"`: which kind of Vulkan device trains:
        /// `"discrete"`, `"integrated"` (a laptop's or an APU's GPU),
        /// `"virtual"` (a VM's) or `"cpu"` (a software Vulkan driver such
        /// as Mesa's lavapipe).
        gpu_kind: GpuKind = GpuKind::Discrete, X, Rule::Any;
        /// With `backend = "wgpu"`: which device of `gpu_kind`, counted
        /// from 0 in the order Vulkan lists them; 0 with `"cpu"` [1].
        gpu_index: usize = 0, X, Rule::Any;
    }
}

choice! {
    /// The kind of Vulkan device that trains with `training.backend = "wgpu"`.
    GpuKind { Discrete = "discrete", Integrated = "integrated", Virtual = "virtual", Cpu = "cpu" }
}

choice! {
    /// Which data set to train on.
    DatasetKind { FashionMnist = "fashion-mnist", Cifar10 = "cifar10", Cifar100 = "cifar100", Synthetic = "synthetic" }
}

choice! {
    /// A part of the training set (`training.public_share`).
    DataPart { Private = "private", Public = "public" }
}

choice! {
    /// What a training run learns (`training.task`).
    TrainTask { Labels = "labels", Rotation = "rotation" }
}

choice! {
    /// The local optimizer.
    OptimizerKind { Sgd = "sgd", Adam = "adam" }
}

choice! {
    /// The number format of the training step's matrix products.
    Precision { F32 = "f32", F16 = "f16", Bf16 = "bf16" }
}

choice! {
    /// The optimizer's state between a device's rounds.
    OptimizerState { Reset = "reset", Keep = "keep" }
}

choice! {
    /// How the learning rate moves over a run's steps.
    LrSchedule { Constant = "constant", Cosine = "cosine" }
}

/// Mini-batch iterations of a device holding `samples` [samples] in one
/// round: `local_epochs` x ceil(samples / batch) passes of `batch` images
/// (at least 1), or `fixed` when `local_epochs` is 0 [1].
pub fn local_iterations(local_epochs: u32, samples: u64, batch: usize, fixed: u32) -> u32 {
    if local_epochs == 0 {
        return fixed;
    }
    let per_epoch = samples.div_ceil(batch.max(1) as u64).max(1);
    (local_epochs as u64 * per_epoch).min(u32::MAX as u64) as u32
}

impl LrSchedule {
    /// The rate [1] at `step` of `total` steps from the base rate `lr` [1],
    /// the first `warmup` steps rising linearly to `lr` and the schedule
    /// running over the steps after them.
    pub fn at(self, lr: f64, step: u64, total: u64, warmup: u64) -> f64 {
        if step < warmup {
            return lr * (step + 1) as f64 / warmup as f64;
        }
        let (step, total) = (step - warmup, total.saturating_sub(warmup));
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total.max(1) as f64).cos()),
        }
    }
}

choice! {
    /// The Burn backend training runs on (`sflam_train` builds its device).
    BackendKind { Flex = "flex", Ndarray = "ndarray", Wgpu = "wgpu", LibTorch = "libtorch" }
}

choice! {
    /// A learning framework (SPEC section 7); what each means for the
    /// network is `crate::framework::Profile`, its learning `sflam_train`.
    FrameworkKind { Sflam = "sflam", Sfl = "sfl", Sl = "sl", Fl = "fl", Ll = "ll" }
}

/// Every scenario key with its doc, default, origin and allowed values, in
/// file order.
pub fn reference() -> Vec<(&'static str, &'static str, Vec<ParamDoc>)> {
    let mut out = Vec::new();
    macro_rules! one {
        ($f:ident, $t:ty) => {
            out.push((<$t as Section>::KEY, <$t as Section>::DOC, <$t as Section>::reference()));
        };
    }
    for_each_section!(one);
    out
}

/// The guide's scenario reference (`docs/scenarios.md`), generated from
/// the declarations.
pub fn reference_markdown() -> String {
    let mut md = String::new();
    for (key, doc, rows) in reference() {
        let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let doc = doc.trim_start_matches(&format!("`[{key}]`:")).trim();
        md.push_str(&format!(
            "**`[{key}]`** — {doc}\n\n| key | meaning [unit] | default | allowed |\n|---|---|---|---|\n"
        ));
        for r in rows {
            let origin = match r.origin {
                params::Origin::P => " (P)",
                params::Origin::C => " (C)",
                params::Origin::X => "",
            };
            let allowed = r.allowed.unwrap_or_else(|| "any".into()).replace('|', "\\|");
            md.push_str(&format!(
                "| `{}` | {} | `{}`{origin} | {allowed} |\n",
                r.key,
                r.doc.replace('|', "\\|"),
                r.default
            ));
        }
        md.push('\n');
    }
    md
}

/// The most resource blocks a cell may have [1]: 5G NR has at most 275 per
/// carrier; this bound keeps per-RB tables of a million devices in memory.
pub const RB_COUNT_MAX: usize = 100_000;

impl Scenario {
    /// The output folder: `run.output_dir`, or `runs/<name>`.
    pub fn output_dir(&self) -> std::path::PathBuf {
        if self.run.output_dir.is_empty() {
            std::path::PathBuf::from("runs").join(&self.run.name)
        } else {
            std::path::PathBuf::from(&self.run.output_dir)
        }
    }

    /// The scenario with every default filled in, as TOML, headed by the
    /// provenance a reader needs to reproduce it.
    pub fn resolved_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not serialize: {e}\n"));
        format!(
            "# Resolved scenario: every default filled in.\n# sflam {} (git {})\n# seed = {}\n\n{body}",
            env!("CARGO_PKG_VERSION"),
            crate::git_commit().unwrap_or("unknown"),
            self.run.seed
        )
    }
}
