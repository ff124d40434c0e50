//! The round controller (SPEC section 8): the round loop, written once, as
//! a model under the event kernel. Per participant and iteration the events
//! are: device forward done -> uplink done -> server done (after queueing)
//! -> downlink done -> device backward done; after the last iteration the
//! optional model upload. A round starts with the allocator's decision and
//! ends at the deadline (deadline mode) or when its last participant is
//! done (sync mode).

use crate::alloc::{Allocator, Candidate, Decision, Problem};
use crate::config::{FadingKind, FrameworkKind, RoundMode, Scenario};
use crate::device::{Availability, DeviceId, Mobility, Population, compute_time_s};
use crate::error::{Error, Result};
use crate::net::{PathLoss, large_scale_gain, noise_w, path_loss_from};
use crate::quant::{fp32_bits, payload_bits};
use crate::server::{ServerDiscipline, discipline_from};
use crate::sim::rng::{Rng, stream};
use crate::sim::{Context, Kernel, Model};
use crate::trace::{DeviceRoundRow, DeviceRow, EventRow, Outcome, RoundRow, SummaryBuilder, TraceSink};
use crate::units::{Db, SimTime};
use crate::workload::{Workload, vit_config};
use rand::Rng as _;
use rand::seq::index::sample;
use rand_distr::{Distribution, Exp1};

/// Called with every round's problem and decision (`--dump-problems`).
pub type DecisionHook<'a> = Box<dyn FnMut(&Problem, &Decision) -> Result<()> + 'a>;
/// Called after every round with its row (progress bars).
pub type RoundHook<'a> = Box<dyn FnMut(&RoundRow) + 'a>;

/// The learning half as the engine sees it (co-simulation): called at the
/// end of every round with the participants that met the deadline, in
/// device order, and the bits they sent at (32 = fp32). Returns the
/// round's training loss [nat] and, when it evaluated, the global model's
/// test accuracy [1].
pub trait Learner {
    fn round(&mut self, round: u32, finished: &[(DeviceId, u32)]) -> Result<(Option<f64>, Option<f64>)>;
}

/// Kernel events. Small and `Copy`: payloads live in tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ev {
    RoundStart,
    /// The round's deadline.
    Deadline {
        round: u32,
    },
    /// A device's availability flips.
    Toggle(DeviceId),
    /// A participant's current phase is complete.
    Step {
        round: u32,
        slot: u32,
    },
    /// The server discipline asked to be woken.
    ServerWake {
        round: u32,
        token: u64,
    },
    /// A participant drops out.
    Dropout {
        round: u32,
        slot: u32,
    },
}

/// Phases of one participant's round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `sl` only: waiting for the relay to reach this device.
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
    fn name(self) -> &'static str {
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
}

/// Durations of one participant's phases [ns].
#[derive(Clone, Copy, Debug, Default)]
struct Durations {
    fwd: SimTime,
    bwd: SimTime,
    up: SimTime,
    srv: SimTime,
    down: SimTime,
    model_up: SimTime,
}

/// One scheduled device in the current round.
#[derive(Clone, Debug)]
struct Participant {
    dev: DeviceId,
    /// Split frameworks send activations each iteration; fl and ll do not.
    split: bool,
    rb: u32,
    distance_m: f64,
    gain: f64,
    power_w: f64,
    bits: u32,
    rate_bps: f64,
    payload_bits: u64,
    predicted_s: f64,
    dur: Durations,
    /// Computation power [W].
    cmp_power_w: f64,
    phase: Phase,
    iter: u32,
    phase_start: SimTime,
    phase_end: SimTime,
    t_cmp: SimTime,
    t_com: SimTime,
    t_srv: SimTime,
    t_wait: SimTime,
    t_down: SimTime,
    e_cmp_j: f64,
    e_com_j: f64,
    outcome: Option<(Outcome, SimTime)>,
}

impl Participant {
    /// The phase after the current one; `Done` after the last.
    fn next_phase(&self, iterations: u32) -> Phase {
        match self.phase {
            Phase::Waiting => Phase::Forward,
            // Whole-model frameworks (fl, ll) never leave the device mid-iteration.
            Phase::Forward if !self.split => Phase::Backward,
            Phase::Forward => Phase::Uplink,
            Phase::Uplink => Phase::Server,
            Phase::Server if self.dur.down > SimTime::ZERO => Phase::Downlink,
            Phase::Server | Phase::Downlink => Phase::Backward,
            Phase::Backward if self.iter + 1 < iterations => Phase::Forward,
            Phase::Backward if self.dur.model_up > SimTime::ZERO => Phase::ModelUpload,
            Phase::Backward | Phase::ModelUpload | Phase::Done => Phase::Done,
        }
    }
}

/// Per-candidate quantities the round needs (fixed for the round).
struct CandidateTimes {
    dur: Durations,
    cmp_power_w: f64,
}

/// The simulation: devices, channel, server, allocator, round controller.
pub struct Engine<'s> {
    s: Scenario,
    work: Workload,
    pop: Population,
    avail: Availability,
    mobility: Mobility,
    path_loss: Box<dyn PathLoss>,
    server: Box<dyn ServerDiscipline>,
    allocator: Box<dyn Allocator>,
    /// Server throughput f_s C_s D_s [FLOP/s].
    server_flops_per_s: f64,
    noise_w: f64,
    rng_avail: Rng,
    rng_mobility: Rng,
    rng_channel: Rng,
    rng_candidates: Rng,
    rng_alloc: Rng,
    rng_dropout: Rng,
    sink: &'s mut dyn TraceSink,
    summary: SummaryBuilder,
    /// Called with every round's problem and decision (`--dump-problems`).
    pub on_decision: Option<DecisionHook<'s>>,
    /// Called after every round with its row (progress bars).
    pub on_round: Option<RoundHook<'s>>,
    /// Real training of each round's finished participants (co-simulation).
    pub learner: Option<Box<dyn Learner + 's>>,
    /// Per-device class counts for the devices table (when training).
    class_counts: Vec<Vec<u32>>,

    round: u32,
    round_start: SimTime,
    round_open: bool,
    parts: Vec<Participant>,
    /// Participant slot per device, `u32::MAX` when not in this round.
    slot_of: Vec<u32>,
    server_arrival: Vec<SimTime>,
    done_buf: Vec<u32>,
    decision: Decision,
    online_at_start: u64,
    alloc_wall_s: f64,
    pub totals: Totals,
}

/// Run totals for the summary.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub scheduled: u64,
    pub finished: u64,
    pub stragglers: u64,
    pub failed: u64,
    pub energy_cmp_j: f64,
    pub energy_com_j: f64,
    pub rounds_done: u32,
}

fn ns(s: f64, what: &'static str) -> Result<SimTime> {
    SimTime::from_secs_f64(s).ok_or_else(|| Error::Numeric { checkpoint: what, detail: format!("duration {s} s") })
}

impl<'s> Engine<'s> {
    /// Wires the simulation from a validated scenario.
    pub fn new(s: &Scenario, allocator: Box<dyn Allocator>, sink: &'s mut dyn TraceSink) -> Result<Engine<'s>> {
        let cfg = vit_config(&s.model.timing)
            .ok_or_else(|| Error::Input(format!("unknown timing model `{}`", s.model.timing)))?;
        let work = Workload::of(cfg);
        let pop = Population::draw(s);
        let mut rng_server = stream(s.run.seed, "server", 0);
        let cores = rng_server.random_range(s.server.cores_min..=s.server.cores_max) as f64;
        let fpc = rng_server.random_range(s.server.flops_per_cycle_min..=s.server.flops_per_cycle_max) as f64;
        let n = pop.len();
        Ok(Engine {
            work,
            avail: Availability::new(&s.availability, n),
            mobility: Mobility::new(&s.mobility, s.devices.distance_min_m, s.devices.distance_max_m),
            path_loss: path_loss_from(&s.network),
            server: discipline_from(s.server.discipline),
            allocator,
            server_flops_per_s: s.server.freq_hz * cores * fpc,
            noise_w: noise_w(s.network.noise_dbm_per_hz, s.network.rb_bandwidth_hz),
            rng_avail: stream(s.run.seed, "availability", 0),
            rng_mobility: stream(s.run.seed, "mobility", 0),
            rng_channel: stream(s.run.seed, "channel", 0),
            rng_candidates: stream(s.run.seed, "candidates", 0),
            rng_alloc: stream(s.run.seed, "allocator", 0),
            rng_dropout: stream(s.run.seed, "dropout", 0),
            sink,
            summary: SummaryBuilder::default(),
            on_decision: None,
            on_round: None,
            learner: None,
            class_counts: Vec::new(),
            round: 0,
            round_start: SimTime::ZERO,
            round_open: false,
            parts: Vec::new(),
            slot_of: vec![u32::MAX; n],
            server_arrival: Vec::new(),
            done_buf: Vec::new(),
            decision: Decision::default(),
            online_at_start: 0,
            alloc_wall_s: 0.0,
            totals: Totals::default(),
            pop,
            s: s.clone(),
        })
    }

    /// Replaces the drawn data sizes with a real partition's (training
    /// runs), so that the allocator's data shares and the aggregation
    /// weights are the same numbers. Call before [`Engine::wire`].
    pub fn set_data(&mut self, samples: Vec<u64>, class_counts: Vec<Vec<u32>>) {
        debug_assert_eq!(samples.len(), self.pop.len());
        self.pop.samples = samples;
        self.class_counts = class_counts;
    }

    fn framework(&self) -> FrameworkKind {
        self.s.training.framework
    }

    /// Split frameworks cut the model at the device; fl and ll train it whole there.
    fn split(&self) -> bool {
        !matches!(self.framework(), FrameworkKind::Fl | FrameworkKind::Ll)
    }

    /// Activation elements sent per iteration [1]: none for fl and ll.
    fn activation_elements(&self) -> u64 {
        if self.split() { (self.s.model.batch * self.work.cut_elements) as u64 } else { 0 }
    }

    /// Bits uploaded once per round besides activations [bit]: fl the
    /// whole model, sl the device-side model handed on, sflam/sfl the
    /// device-side model when `network.model_upload`, ll nothing.
    fn extra_upload_bits(&self) -> u64 {
        let w = &self.work;
        match self.framework() {
            FrameworkKind::Fl => 32 * (w.device_params + w.server_params) as u64,
            FrameworkKind::Sl => 32 * w.device_params as u64,
            FrameworkKind::Ll => 0,
            FrameworkKind::Sflam | FrameworkKind::Sfl => {
                if self.s.network.model_upload {
                    32 * w.device_params as u64
                } else {
                    0
                }
            }
        }
    }

    /// Server throughput [FLOP/s].
    pub fn server_flops_per_s(&self) -> f64 {
        self.server_flops_per_s
    }

    pub fn summary(&self) -> &SummaryBuilder {
        &self.summary
    }

    /// Writes the devices table and schedules the initial events.
    pub fn wire(&mut self, kernel: &mut Kernel<Ev>) -> Result<()> {
        for i in 0..self.pop.len() {
            let p = &self.pop;
            self.sink.device(&DeviceRow {
                device: i as u32,
                distance_m: p.distance_m[i],
                p_max_w: p.p_max_w[i],
                gpu_freq_hz: p.gpu_freq_hz[i],
                cores: p.cores[i],
                flops_per_cycle: p.flops_per_cycle[i],
                samples: p.samples[i],
                shadowing_db: p.shadowing_db[i],
                class_counts: self.class_counts.get(i).cloned().unwrap_or_default(),
            })?;
            if let Some(dt) = self.avail.init(DeviceId(i as u32), &mut self.rng_avail) {
                kernel.schedule(ns(dt, "availability.duration")?, Ev::Toggle(DeviceId(i as u32)))?;
            }
        }
        kernel.schedule(SimTime::ZERO, Ev::RoundStart)
    }

    fn times_of(&self, dev: DeviceId) -> Result<CandidateTimes> {
        let b = self.s.model.batch as f64;
        let fps = self.pop.flops_per_s(dev);
        let w = &self.work;
        let act = self.activation_elements();
        let net = &self.s.network;
        let down_s = if net.downlink { fp32_bits(act) as f64 / net.downlink_rate_bps } else { 0.0 };
        if !self.split() {
            // fl, ll: the whole model's forward and backward on the device.
            let fwd = w.device_fwd_flops + w.server_fwd_flops;
            let train = w.device_train_flops + w.server_train_flops;
            return Ok(CandidateTimes {
                dur: Durations {
                    fwd: ns(compute_time_s(b * fwd, fps), "device.forward_time")?,
                    bwd: ns(compute_time_s(b * (train - fwd), fps), "device.backward_time")?,
                    ..Durations::default()
                },
                cmp_power_w: self.pop.compute_power_w(dev, self.s.devices.kappa),
            });
        }
        Ok(CandidateTimes {
            dur: Durations {
                fwd: ns(compute_time_s(b * w.device_fwd_flops, fps), "device.forward_time")?,
                bwd: ns(compute_time_s(b * (w.device_train_flops - w.device_fwd_flops), fps), "device.backward_time")?,
                srv: ns(compute_time_s(b * w.server_train_flops, self.server_flops_per_s), "server.service_time")?,
                down: ns(down_s, "downlink.time")?,
                up: SimTime::ZERO,
                model_up: SimTime::ZERO,
            },
            cmp_power_w: self.pop.compute_power_w(dev, self.s.devices.kappa),
        })
    }

    fn start_round(&mut self, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        self.round_start = now;
        self.round_open = true;
        let s = &self.s;
        let k_rbs = s.network.rb_count;
        // Candidates: a uniform sample of the online devices, by id.
        let online = self.avail.online();
        self.online_at_start = online.len() as u64;
        let m = s.run.candidates.min(online.len());
        let mut cands: Vec<DeviceId> =
            sample(&mut self.rng_candidates, online.len(), m).into_iter().map(|i| online[i]).collect();
        cands.sort_unstable();

        let act = self.activation_elements();
        let extra = self.extra_upload_bits();
        let total_samples: f64 = cands.iter().map(|d| self.pop.samples[d.idx()] as f64).sum();
        let it = s.run.iterations as f64;
        let (split, sequential) = (self.split(), self.framework() == FrameworkKind::Sl);
        let mut problem = Problem {
            round: self.round,
            rb_count: k_rbs,
            rb_bandwidth_hz: s.network.rb_bandwidth_hz,
            noise_w: self.noise_w,
            deadline_s: s.run.deadline_s,
            iterations: s.run.iterations,
            weight_j: s.allocator.weight_j,
            bits_min: s.quantization.bits_min,
            bits_max: s.quantization.bits_max,
            candidates: Vec::with_capacity(cands.len()),
        };
        let mut times = Vec::with_capacity(cands.len());
        let now_s = now.as_secs_f64();
        for &dev in &cands {
            let i = dev.idx();
            // Mobility: bring the distance up to now.
            let d = self.mobility.advance(
                self.pop.distance_m[i],
                now_s - self.pop.distance_at_s[i],
                &mut self.rng_mobility,
            );
            self.pop.distance_m[i] = d;
            self.pop.distance_at_s[i] = now_s;
            let large = large_scale_gain(self.path_loss.loss_db(d), Db(self.pop.shadowing_db[i]));
            let gains: Vec<f64> = (0..k_rbs)
                .map(|_| match s.network.fading {
                    FadingKind::Rayleigh => large * <Exp1 as Distribution<f64>>::sample(&Exp1, &mut self.rng_channel),
                    FadingKind::None => large,
                })
                .collect();
            let t = self.times_of(dev)?;
            let fixed = it * (t.dur.fwd + t.dur.bwd + t.dur.srv + t.dur.down).as_secs_f64();
            problem.candidates.push(Candidate {
                device: dev,
                gains,
                p_max_w: self.pop.p_max_w[i],
                data_share: self.pop.samples[i] as f64 / total_samples,
                uplink_time_s: s.run.deadline_s - fixed,
                fixed_time_s: fixed,
                compute_energy_j: it * t.cmp_power_w * (t.dur.fwd + t.dur.bwd).as_secs_f64(),
                activation_elements: act,
                extra_upload_bits: extra,
            });
            times.push(t);
        }

        let t0 = std::time::Instant::now();
        let decision = self.allocator.decide(&problem, &mut self.rng_alloc);
        self.alloc_wall_s = t0.elapsed().as_secs_f64();
        decision.check(&problem).map_err(|detail| Error::Numeric { checkpoint: "allocator.decision", detail })?;
        if let Some(cb) = self.on_decision.as_mut() {
            cb(&problem, &decision)?;
        }

        self.parts.clear();
        self.server_arrival.clear();
        for a in &decision.assignments {
            let c = &problem.candidates[a.candidate];
            let mut dur = times[a.candidate].dur;
            let per_upload = if a.bits >= 32 { fp32_bits(act) } else { payload_bits(act, a.bits) };
            dur.up = ns(if act == 0 { 0.0 } else { per_upload as f64 / a.rate_bps }, "uplink.time")?;
            dur.model_up = ns(extra as f64 / a.rate_bps, "model_upload.time")?;
            let slot = self.parts.len() as u32;
            // sl relays: only the first device starts; each later one waits
            // for the one before it to finish.
            let waits = sequential && slot > 0;
            self.slot_of[c.device.idx()] = slot;
            self.parts.push(Participant {
                dev: c.device,
                split,
                rb: a.rb as u32,
                distance_m: self.pop.distance_m[c.device.idx()],
                gain: c.gains[a.rb],
                power_w: a.power_w,
                bits: a.bits,
                rate_bps: a.rate_bps,
                payload_bits: per_upload,
                predicted_s: a.time_s,
                dur,
                cmp_power_w: times[a.candidate].cmp_power_w,
                phase: if waits { Phase::Waiting } else { Phase::Forward },
                iter: 0,
                phase_start: now,
                phase_end: if waits { SimTime::MAX } else { now + dur.fwd },
                t_cmp: SimTime::ZERO,
                t_com: SimTime::ZERO,
                t_srv: SimTime::ZERO,
                t_wait: SimTime::ZERO,
                t_down: SimTime::ZERO,
                e_cmp_j: 0.0,
                e_com_j: 0.0,
                outcome: None,
            });
            self.server_arrival.push(SimTime::ZERO);
            if !waits {
                ctx.schedule(now + dur.fwd, Ev::Step { round: self.round, slot });
            }
            let q = self.s.availability.dropout_probability;
            if q > 0.0 && self.rng_dropout.random::<f64>() < q {
                let at = self.rng_dropout.random::<f64>() * self.s.run.deadline_s;
                ctx.schedule(now + ns(at, "dropout.time")?, Ev::Dropout { round: self.round, slot });
            }
        }
        self.decision = decision;
        let deadline = ns(self.s.run.deadline_s, "run.deadline_s")?;
        match self.s.run.mode {
            RoundMode::Deadline => ctx.schedule(now + deadline, Ev::Deadline { round: self.round }),
            RoundMode::Sync if self.parts.is_empty() => {
                // Nobody to wait for: idle one deadline so time moves on.
                ctx.schedule(now + deadline, Ev::Deadline { round: self.round })
            }
            RoundMode::Sync => {}
        }
        Ok(())
    }

    /// Starts the phase `ph` of slot `i` at `now`.
    fn enter(&mut self, i: usize, ph: Phase, ctx: &mut Context<'_, Ev>) {
        let now = ctx.now();
        let round = self.round;
        let p = &mut self.parts[i];
        let len = match ph {
            Phase::Forward => p.dur.fwd,
            Phase::Uplink => p.dur.up,
            Phase::Downlink => p.dur.down,
            Phase::Backward => p.dur.bwd,
            Phase::ModelUpload => p.dur.model_up,
            Phase::Server | Phase::Done | Phase::Waiting => SimTime::ZERO,
        };
        p.phase = ph;
        p.phase_start = now;
        p.phase_end = now + len;
        match ph {
            Phase::Server => {
                self.server_arrival[i] = now;
                if let Some(w) = self.server.arrive(now, i as u32, p.dur.srv) {
                    ctx.schedule(w.at, Ev::ServerWake { round, token: w.token });
                }
            }
            Phase::Done | Phase::Waiting => {}
            _ => ctx.schedule(p.phase_end, Ev::Step { round, slot: i as u32 }),
        }
    }

    /// Books the energy and time of the phase that ends (or is cut) at `now`.
    fn book(&mut self, i: usize, now: SimTime) {
        let p = &mut self.parts[i];
        let dt = now.saturating_sub(p.phase_start);
        match p.phase {
            Phase::Forward | Phase::Backward => {
                p.t_cmp = p.t_cmp + dt;
                p.e_cmp_j += p.cmp_power_w * dt.as_secs_f64();
            }
            Phase::Uplink | Phase::ModelUpload => {
                p.t_com = p.t_com + dt;
                p.e_com_j += p.power_w * dt.as_secs_f64();
            }
            Phase::Downlink => p.t_down = p.t_down + dt,
            Phase::Waiting => {}
            Phase::Server => {
                // Cut while queued or in service: all of it counts as waiting
                // beyond the nominal service.
                let srv = dt.0.min(p.dur.srv.0);
                p.t_srv = p.t_srv + SimTime(srv);
                p.t_wait = p.t_wait + SimTime(dt.0 - srv);
            }
            Phase::Done => {}
        }
    }

    /// The phase of slot `i` completed at `now`: move to the next one.
    fn advance(&mut self, i: usize, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        if self.parts[i].outcome.is_some() {
            return Ok(());
        }
        self.book(i, now);
        let p = &self.parts[i];
        if p.phase == Phase::Done {
            return Ok(());
        }
        let next = p.next_phase(self.s.run.iterations);
        if p.phase == Phase::Backward && next == Phase::Forward {
            self.parts[i].iter += 1;
        }
        self.enter(i, next, ctx);
        if next == Phase::Done {
            self.parts[i].outcome = Some((Outcome::Finished, now));
            self.pass_relay(ctx);
            self.maybe_close_sync(ctx)?;
        }
        Ok(())
    }

    /// `sl`: the next waiting participant (if any) starts now.
    fn pass_relay(&mut self, ctx: &mut Context<'_, Ev>) {
        if let Some(j) = self.parts.iter().position(|p| p.phase == Phase::Waiting && p.outcome.is_none()) {
            self.enter(j, Phase::Forward, ctx);
        }
    }

    fn fail(&mut self, i: usize, why: Outcome, ctx: &mut Context<'_, Ev>) -> Result<()> {
        if self.parts[i].outcome.is_some() {
            return Ok(());
        }
        let now = ctx.now();
        self.book(i, now);
        let was_active = self.parts[i].phase != Phase::Waiting;
        self.parts[i].outcome = Some((why, now));
        if was_active && self.framework() == FrameworkKind::Sl {
            self.pass_relay(ctx);
        }
        self.maybe_close_sync(ctx)
    }

    fn maybe_close_sync(&mut self, ctx: &mut Context<'_, Ev>) -> Result<()> {
        if self.s.run.mode == RoundMode::Sync && self.parts.iter().all(|p| p.outcome.is_some()) {
            self.end_round(ctx)?;
        }
        Ok(())
    }

    fn end_round(&mut self, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        // Deadline: a device whose last phase ends exactly now is on time.
        for i in 0..self.parts.len() {
            let p = &self.parts[i];
            if p.outcome.is_none() {
                let last = p.next_phase(self.s.run.iterations) == Phase::Done;
                let end = p.phase_end;
                if last && end <= now {
                    self.book(i, end);
                    self.parts[i].outcome = Some((Outcome::Finished, end));
                } else {
                    self.book(i, now);
                    self.parts[i].outcome = Some((Outcome::Straggler, now));
                }
            }
        }
        self.server.clear();
        let r = self.round;
        let (mut fin, mut strag, mut failed) = (0u32, 0u32, 0u32);
        let (mut e_cmp, mut e_com, mut bits) = (0.0, 0.0, 0.0);
        for p in &self.parts {
            let (outcome, at) = p.outcome.expect("every participant has an outcome at round end");
            match outcome {
                Outcome::Finished => fin += 1,
                Outcome::Straggler => strag += 1,
                Outcome::Dropped | Outcome::Offline => failed += 1,
            }
            let time_s = at.saturating_sub(self.round_start).as_secs_f64();
            let energy = p.e_cmp_j + p.e_com_j;
            if !energy.is_finite() || !time_s.is_finite() {
                return Err(Error::Numeric { checkpoint: "round.energy", detail: format!("device {}", p.dev.0) });
            }
            e_cmp += p.e_cmp_j;
            e_com += p.e_com_j;
            bits += p.bits as f64;
            self.summary.record(time_s, energy);
            self.sink.device_round(&DeviceRoundRow {
                round: r,
                device: p.dev.0,
                rb: p.rb,
                distance_m: p.distance_m,
                gain: p.gain,
                power_w: p.power_w,
                bits: p.bits,
                rate_bps: p.rate_bps,
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
                energy_j: energy,
                outcome,
                cut_phase: (outcome != Outcome::Finished).then(|| p.phase.name()),
            })?;
            self.slot_of[p.dev.idx()] = u32::MAX;
        }
        let (loss, accuracy) = match self.learner.as_mut() {
            Some(l) => {
                let mut done: Vec<(DeviceId, u32)> = self
                    .parts
                    .iter()
                    .filter(|p| matches!(p.outcome, Some((Outcome::Finished, _))))
                    .map(|p| (p.dev, p.bits))
                    .collect();
                done.sort_unstable();
                l.round(r, &done)?
            }
            None => (None, None),
        };
        let n = self.parts.len();
        let row = RoundRow {
            round: r,
            start_s: self.round_start.as_secs_f64(),
            end_s: now.as_secs_f64(),
            online: self.online_at_start,
            candidates: (self.decision.assignments.len() + self.decision.excluded.len()) as u32,
            scheduled: n as u32,
            finished: fin,
            stragglers: strag,
            failed,
            energy_j: e_cmp + e_com,
            energy_cmp_j: e_cmp,
            energy_com_j: e_com,
            mean_bits: (n > 0).then(|| bits / n as f64),
            objective_j: self.decision.objective_j,
            efficiency_per_j: self.decision.efficiency_per_j,
            alloc_iterations: self.decision.iterations,
            alloc_wall_s: self.alloc_wall_s,
            loss,
            accuracy,
        };
        self.sink.round(&row)?;
        if let Some(cb) = self.on_round.as_mut() {
            cb(&row);
        }
        let t = &mut self.totals;
        t.scheduled += n as u64;
        t.finished += fin as u64;
        t.stragglers += strag as u64;
        t.failed += failed as u64;
        t.energy_cmp_j += e_cmp;
        t.energy_com_j += e_com;
        t.rounds_done += 1;
        self.round_open = false;
        self.round += 1;
        if self.round >= self.s.run.rounds {
            ctx.stop();
        } else {
            ctx.schedule(now, Ev::RoundStart);
        }
        Ok(())
    }

    fn record_event(&mut self, t: SimTime, ev: &Ev) -> Result<()> {
        let (round, device, kind) = match *ev {
            Ev::RoundStart => (self.round, None, "round-start"),
            Ev::Deadline { round } => (round, None, "deadline"),
            Ev::Toggle(d) => (self.round, Some(d.0), if self.avail.is_online(d) { "offline" } else { "online" }),
            Ev::Step { round, slot } => {
                let p = self.parts.get(slot as usize);
                let kind = match p.map(|p| p.phase) {
                    Some(Phase::Forward) => "forward-done",
                    Some(Phase::Uplink) => "uplink-done",
                    Some(Phase::Downlink) => "downlink-done",
                    Some(Phase::Backward) => "backward-done",
                    Some(Phase::ModelUpload) => "model-upload-done",
                    _ => "step",
                };
                (round, p.map(|p| p.dev.0), kind)
            }
            Ev::ServerWake { round, .. } => (round, None, "server-wake"),
            Ev::Dropout { round, slot } => (round, self.parts.get(slot as usize).map(|p| p.dev.0), "dropout"),
        };
        self.sink.event(&EventRow { time_ns: t.0, round, device, kind })
    }
}

impl Model for Engine<'_> {
    type Event = Ev;

    fn handle(&mut self, ev: Ev, ctx: &mut Context<'_, Ev>) -> Result<()> {
        if self.s.run.events_trace {
            self.record_event(ctx.now(), &ev)?;
        }
        let current = |r: u32, e: &Engine| r == e.round && e.round_open;
        match ev {
            Ev::RoundStart => self.start_round(ctx),
            Ev::Deadline { round } if current(round, self) => self.end_round(ctx),
            Ev::Toggle(dev) => {
                let (online, dt) = self.avail.toggle(dev, &mut self.rng_avail);
                ctx.schedule_in(ns(dt, "availability.duration")?, Ev::Toggle(dev));
                let slot = self.slot_of[dev.idx()];
                if !online && self.round_open && slot != u32::MAX {
                    self.fail(slot as usize, Outcome::Offline, ctx)?;
                }
                Ok(())
            }
            Ev::Step { round, slot } if current(round, self) => self.advance(slot as usize, ctx),
            Ev::ServerWake { round, token } if current(round, self) => {
                let mut done = std::mem::take(&mut self.done_buf);
                done.clear();
                if let Some(w) = self.server.wake(ctx.now(), token, &mut done) {
                    ctx.schedule(w.at, Ev::ServerWake { round, token: w.token });
                }
                for &j in &done {
                    let i = j as usize;
                    if self.parts[i].outcome.is_none() {
                        self.advance(i, ctx)?;
                    }
                }
                self.done_buf = done;
                Ok(())
            }
            Ev::Dropout { round, slot } if current(round, self) => self.fail(slot as usize, Outcome::Dropped, ctx),
            // Events of a closed round are stale.
            _ => Ok(()),
        }
    }
}
