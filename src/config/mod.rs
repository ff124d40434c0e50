//! Scenario files: typed, documented config structs (SPEC section 10 holds
//! the defaults), loading with precise error locations, `--set` overrides,
//! semantic validation, and the resolved-scenario writer.
//!
//! Every field names its unit in brackets and its default; `P` marks a
//! value from the paper, `C` one chosen here (SPEC section 10).

mod load;
mod validate;

pub use load::{load_scenario, load_scenario_str, parse_override};
pub use validate::validate;

use serde::{Deserialize, Serialize};

/// A whole scenario. Missing sections and fields take their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub run: RunConfig,
    pub network: NetworkConfig,
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

/// `[run]`: the round loop and the output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Scenario name, used in the default output folder. Default `"default"`.
    pub name: String,
    /// Master seed [1]; every component derives its own stream. Default 1.
    pub seed: u64,
    /// Global rounds R [1]. Default 20.
    pub rounds: u32,
    /// `"deadline"`: a round lasts `deadline_s`, late devices are stragglers;
    /// `"sync"`: a round ends when its last participant is done. Default `"deadline"`.
    pub mode: RoundMode,
    /// Round deadline T_max [s]. Default 10.0 (C).
    pub deadline_s: f64,
    /// Mini-batch iterations I per participant and round [1]. Default 1 (P).
    pub iterations: u32,
    /// Candidate pool per round, sampled from online devices [1]. Default 100.
    pub candidates: usize,
    /// Output folder; empty means `runs/<name>`. Default `""`.
    pub output_dir: String,
    /// Also write the `events` table (one row per event). Default false.
    pub events_trace: bool,
    /// Rows buffered per Parquet row group [1]. Default 65536.
    pub row_group_rows: usize,
    /// Worker threads for trace writing and training; 0 = all cores [1].
    /// Results never depend on it. Default 0.
    pub threads: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: "default".into(),
            seed: 1,
            rounds: 20,
            mode: RoundMode::Deadline,
            deadline_s: 10.0,
            iterations: 1,
            candidates: 100,
            output_dir: String::new(),
            events_trace: false,
            row_group_rows: 65536,
            threads: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoundMode {
    Deadline,
    Sync,
}

/// `[network]`: OFDMA uplink (SPEC section 4) and the downlink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Resource blocks K [1]. Default 10.
    pub rb_count: usize,
    /// Bandwidth of one RB, B [Hz]. Default 20e6 (P).
    pub rb_bandwidth_hz: f64,
    /// Noise spectral density N0 [dBm/Hz]. Default -174 (C).
    pub noise_dbm_per_hz: f64,
    /// Path-loss model: `"log-distance"` or `"free-space"`. Default `"log-distance"` (C).
    pub path_loss: PathLossKind,
    /// Log-distance intercept at 1 km [dB]. Default 128.1 (C).
    pub path_loss_intercept_db: f64,
    /// Log-distance slope [dB per decade of km]. Default 37.6 (C).
    pub path_loss_slope_db: f64,
    /// Carrier frequency for free-space path loss [Hz]. Default 2e9.
    pub carrier_hz: f64,
    /// Log-normal shadowing standard deviation, per device [dB]; 0 = off. Default 0.
    pub shadowing_std_db: f64,
    /// Small-scale fading: `"rayleigh"` (per device, RB and round) or `"none"`. Default `"rayleigh"` (P).
    pub fading: FadingKind,
    /// Model the downlink of the cut-layer gradient. Default false (P ignores it).
    pub downlink: bool,
    /// Downlink rate per device [bit/s]. Default 100e6 (C).
    pub downlink_rate_bps: f64,
    /// Upload the device-side model after the last iteration (at the uplink
    /// rate and power of the round). Default false (P omits it).
    pub model_upload: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            rb_count: 10,
            rb_bandwidth_hz: 20e6,
            noise_dbm_per_hz: -174.0,
            path_loss: PathLossKind::LogDistance,
            path_loss_intercept_db: 128.1,
            path_loss_slope_db: 37.6,
            carrier_hz: 2e9,
            shadowing_std_db: 0.0,
            fading: FadingKind::Rayleigh,
            downlink: false,
            downlink_rate_bps: 100e6,
            model_upload: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathLossKind {
    LogDistance,
    FreeSpace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FadingKind {
    Rayleigh,
    None,
}

/// `[devices]`: the population, drawn once from these distributions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    /// Devices N [1]. Default 100.
    pub count: usize,
    /// Distance to the server, uniform in [min, max] [m]. Default 50 (P).
    pub distance_min_m: f64,
    /// Default 1000 (P) [m].
    pub distance_max_m: f64,
    /// Maximum transmit power p_max, uniform [W]. Default 0.5 (P).
    pub p_max_min_w: f64,
    /// Default 2.0 (P) [W].
    pub p_max_max_w: f64,
    /// GPU frequency f_n, uniform [Hz]. Default 0.5e9 (C).
    pub gpu_freq_min_hz: f64,
    /// Default 1.5e9 (C) [Hz].
    pub gpu_freq_max_hz: f64,
    /// GPU cores C_n, uniform integer in [min, max] [1]. Default 4 (P).
    pub cores_min: u32,
    /// Default 6 (P) [1].
    pub cores_max: u32,
    /// FLOPs per cycle per core D_n [FLOP/cycle]. Default 1 (P).
    pub flops_per_cycle: f64,
    /// Energy coefficient κ [W/(cycle/s)^3 per core]. Default 1e-28 (C).
    pub kappa: f64,
    /// Local data size, uniform integer in [min, max] [samples]; sets the
    /// data share ρ_n. Default 100.
    pub samples_min: u64,
    /// Default 1000 [samples].
    pub samples_max: u64,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            count: 100,
            distance_min_m: 50.0,
            distance_max_m: 1000.0,
            p_max_min_w: 0.5,
            p_max_max_w: 2.0,
            gpu_freq_min_hz: 0.5e9,
            gpu_freq_max_hz: 1.5e9,
            cores_min: 4,
            cores_max: 6,
            flops_per_cycle: 1.0,
            kappa: 1e-28,
            samples_min: 100,
            samples_max: 1000,
        }
    }
}

/// `[availability]`: per-device on/off process with exponential durations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AvailabilityConfig {
    /// Turn the process on; off means every device is always online. Default false (P).
    pub enabled: bool,
    /// Mean online duration [s]. Default 600.
    pub mean_online_s: f64,
    /// Mean offline duration [s]. Default 120.
    pub mean_offline_s: f64,
    /// Probability that a scheduled participant drops out during a round,
    /// at a uniform time within the deadline [1]. Default 0 (P).
    pub dropout_probability: f64,
}

impl Default for AvailabilityConfig {
    fn default() -> Self {
        AvailabilityConfig { enabled: false, mean_online_s: 600.0, mean_offline_s: 120.0, dropout_probability: 0.0 }
    }
}

/// `[mobility]`: how a device's distance changes between rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MobilityConfig {
    /// `"static"` or `"random-walk"` (reflected Brownian motion of the
    /// distance within [distance_min_m, distance_max_m]). Default `"static"` (P).
    pub model: MobilityKind,
    /// Random-walk intensity: std of the distance change over one second [m/√s]. Default 1.0.
    pub step_std_m_per_sqrt_s: f64,
}

impl Default for MobilityConfig {
    fn default() -> Self {
        MobilityConfig { model: MobilityKind::Static, step_std_m_per_sqrt_s: 1.0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MobilityKind {
    Static,
    RandomWalk,
}

/// `[server]`: the edge server's GPU and its queueing discipline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `"ideal"` (every device served at full speed in parallel, as the
    /// paper), `"fifo"` or `"processor-sharing"`. Default `"fifo"` (C).
    pub discipline: ServerDisciplineKind,
    /// GPU frequency f_s [Hz]. Default 3e9 (P).
    pub freq_hz: f64,
    /// GPU cores C_s, uniform integer in [min, max], drawn once [1]. Default 2560 (P).
    pub cores_min: u32,
    /// Default 5120 (P) [1].
    pub cores_max: u32,
    /// FLOPs per cycle per core D_s, uniform integer in [min, max] [FLOP/cycle]. Default 1 (P).
    pub flops_per_cycle_min: u32,
    /// Default 2 (P) [FLOP/cycle].
    pub flops_per_cycle_max: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            discipline: ServerDisciplineKind::Fifo,
            freq_hz: 3e9,
            cores_min: 2560,
            cores_max: 5120,
            flops_per_cycle_min: 1,
            flops_per_cycle_max: 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerDisciplineKind {
    Ideal,
    Fifo,
    ProcessorSharing,
}

/// `[model]`: the model whose workload sets the timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Timing model, by name (`sflam workload` lists them). Default `"vit-b32"` (P).
    pub timing: String,
    /// Mini-batch size [images]. Default 64 (P).
    pub batch: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { timing: "vit-b32".into(), batch: 64 }
    }
}

/// `[quantization]`: the activation quantizer (SPEC section 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantizationConfig {
    /// Smallest bit width an allocator may choose [bit]. Default 4 (C; paper: b >= 4).
    pub bits_min: u32,
    /// Largest bit width [bit]. Default 16 (C).
    pub bits_max: u32,
}

impl Default for QuantizationConfig {
    fn default() -> Self {
        QuantizationConfig { bits_min: 4, bits_max: 16 }
    }
}

/// `[allocator]`: the per-round resource allocation (SPEC section 6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllocatorConfig {
    /// Allocator by name. Default `"fixed"`.
    pub name: String,
    /// Bits used by `fixed` [bit]. Default 8.
    pub fixed_bits: u32,
    /// Trade-off weight w between utility and energy [J per unit utility]. Default 1000 (C).
    pub weight_j: f64,
    /// BCD stopping tolerance on the objective [J]. Default 1e-6.
    pub epsilon_j: f64,
    /// BCD iteration cap [1]. Default 50.
    pub max_iterations: u32,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig { name: "fixed".into(), fixed_bits: 8, weight_j: 1000.0, epsilon_j: 1e-6, max_iterations: 50 }
    }
}

/// `[sweep]`: the grid `sflam sweep` runs when no `--grid` is given, so a
/// paper figure is one command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SweepConfig {
    /// Axes as `"key=v1,v2,..."`, like `--grid`. Default `[]`.
    pub grid: Vec<String>,
    /// Same seed for every point, like `--common-seed`. Default false.
    pub common_seed: bool,
    /// Output folder of the sweep; empty means `runs/<run.name>`. Default `""`.
    pub output_dir: String,
}

/// `[training]`: the learning half (SPEC section 7). `sflam train` always
/// trains; `sflam run` trains inside the simulation when `enabled`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// Train the model inside the simulation (`sflam run`). Default false.
    pub enabled: bool,
    /// Framework: `"sflam"`, `"sfl"`, `"sl"`, `"fl"` or `"ll"`. Default `"sflam"`.
    pub framework: FrameworkKind,
    /// The trained model, a `sflam workload` name (the timed one is
    /// `model.timing`). Default `"vit-tiny-28"`.
    pub model: String,
    /// `"fashion-mnist"`, `"cifar10"`, `"cifar100"` or `"synthetic"`. Default `"fashion-mnist"`.
    pub dataset: DatasetKind,
    /// Data folder; empty = the default (Fashion-MNIST: Debian's
    /// `dataset-fashion-mnist`, /usr/share/datasets/fashion-mnist). Default `""`.
    pub data_dir: String,
    /// Use only the first N training samples; 0 = all [samples]. Default 0.
    pub train_samples: usize,
    /// Evaluate on the first N test samples; 0 = all [samples]. Default 0.
    pub eval_samples: usize,
    /// Dirichlet concentration α of the per-class partition [1]. Default 0.5 (P).
    pub dirichlet_alpha: f64,
    /// Minimum samples per device in the partition [samples]. Default 10.
    pub min_samples: u64,
    /// Participants per round of `sflam train` (the simulation's come from
    /// its allocator) [1]. Default 10.
    pub participants: usize,
    /// Training mini-batch [images]; iterations per round are `run.iterations`. Default 32.
    pub batch: usize,
    /// Activation bits of `sflam train` runs of `sflam` (the simulation's
    /// come from its allocator) [bit]. Default 8.
    pub bits: u32,
    /// `"sgd"` or `"adam"`. Default `"sgd"` (the authors' code).
    pub optimizer: OptimizerKind,
    /// Learning rate [1]. Default 0.01 (authors' code).
    pub lr: f64,
    /// SGD momentum [1]; 0 = none. Default 0.9 (authors' code).
    pub momentum: f64,
    /// Each mini-batch is cut into this many equal parts whose gradients
    /// are computed in parallel and summed: the full batch's gradient, in
    /// less wall time when a round has fewer participants than cores
    /// (e.g. the centralized baseline). Whole-model frameworks (`fl`,
    /// `ll`) only: a split one sends each mini-batch as one message.
    /// Results depend on it (float summation order), not on the thread
    /// count [1]. Default 1.
    pub micro_batches: usize,
    /// `"constant"` or `"cosine"`: the rate at step t of T = rounds x
    /// iterations is lr x (1 + cos(pi t / T)) / 2. Default `"constant"`.
    pub lr_schedule: LrSchedule,
    /// Linear warm-up: the rate rises as lr x (t + 1) / W over the first
    /// W steps (counted over the whole run, rounds x iterations), then
    /// follows `lr_schedule` over the remaining steps; 0 = none
    /// [iterations]. Default 0.
    pub warmup_iterations: u64,
    /// Evaluate every N rounds (and after the last) [rounds]. Default 1.
    pub eval_every: u32,
    /// Save a checkpoint every N rounds; 0 = only after the last [rounds]. Default 0.
    pub checkpoint_every: u32,
    /// Initial weights: empty = random (seeded); a `.bpk` checkpoint of this
    /// model; or a `.safetensors` file with timm ViT names. Default `""`.
    pub init: String,
    /// `"flex"` (default) or `"ndarray"` (needs the `ndarray` cargo feature).
    pub backend: BackendKind,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            enabled: false,
            framework: FrameworkKind::Sflam,
            model: "vit-tiny-28".into(),
            dataset: DatasetKind::FashionMnist,
            data_dir: String::new(),
            train_samples: 0,
            eval_samples: 0,
            dirichlet_alpha: 0.5,
            min_samples: 10,
            participants: 10,
            batch: 32,
            bits: 8,
            optimizer: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            micro_batches: 1,
            lr_schedule: LrSchedule::Constant,
            warmup_iterations: 0,
            eval_every: 1,
            checkpoint_every: 0,
            init: String::new(),
            backend: BackendKind::Flex,
        }
    }
}

pub use crate::train::data::DatasetKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

/// How the learning rate moves over a run's steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    Constant,
    Cosine,
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

/// The Burn backend training runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Flex,
    Ndarray,
}

impl BackendKind {
    /// The Burn device of this backend, or why it is not in this build.
    pub fn device(self) -> crate::Result<burn::tensor::Device> {
        match self {
            BackendKind::Flex => Ok(burn::tensor::Device::flex()),
            // Deprecated upstream; kept opt-in because users asked for it.
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(burn::tensor::Device::ndarray()),
            #[cfg(not(feature = "ndarray"))]
            BackendKind::Ndarray => Err(crate::Error::Input(
                "training.backend = \"ndarray\": this build has no ndarray backend; \
                 rebuild with `cargo build --release --features ndarray`, or use \"flex\""
                    .into(),
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameworkKind {
    Sflam,
    Sfl,
    Sl,
    Fl,
    Ll,
}

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
