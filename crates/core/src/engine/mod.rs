//! The round controller (SPEC section 8): the round loop, written once, as
//! a model under the event kernel. Per participant and iteration the events
//! are: device forward done -> uplink done -> server done (after queueing)
//! -> downlink done -> device backward done; after the last iteration the
//! optional model upload. A round starts with the allocator's decision and
//! ends at the deadline (deadline mode) or when its last participant is
//! done (sync mode).
//!
//! - `params.rs`: the scenario resolved once into the engine's units.
//! - `channel.rs`: path loss + shadowing + fading.
//! - `problem.rs`: the round's allocation problems, one per cell.
//! - `interference.rs`: co-channel interference between cells.
//! - `participant.rs`: phases, their lengths, time and energy booking.
//! - `rows.rs`: the trace rows.
//! - this file: the engine, its events, and the round's life.

mod channel;
mod interference;
mod params;
mod participant;
mod problem;
mod rows;

pub use params::{EngineParams, timing_workload, utility_table};
pub use participant::Phase;

use crate::alloc::{Allocator, Decision, Problem, timeline};
use crate::backhaul::Backhaul;
use crate::config::InterferenceKind;
use crate::config::{RoundMode, Scenario};
use crate::device::{Availability, DeviceId, Mobility, Population};
use crate::error::{Error, Result};
use crate::geo::{CellId, Cells};
use crate::net::rate_bps;
use crate::quant::message_bits;
use crate::server::{ServerDiscipline, discipline_from};
use crate::sim::rng::{Rng, stream};
use crate::sim::{Context, Kernel, Model};
use crate::trace::{
    BcdStepRow, CellRow, DeviceRow, EventRow, LeftOutRow, Outcome, RoundRow, SummaryBuilder, TraceSink,
};
use crate::units::{SimDuration, SimTime};
use channel::Channel;
use params::ns;
use participant::Participant;
use rand::Rng as _;
use rand::seq::index::sample;
use rayon::prelude::*;
use rows::RoundSums;

/// Called with every round's problem and decision of each cell that had
/// candidates (`--dump-problems`).
pub type DecisionHook<'a> = Box<dyn FnMut(CellId, &Problem, &Decision) -> Result<()> + 'a>;
/// Called after every round with its row (progress bars).
pub type RoundHook<'a> = Box<dyn FnMut(&RoundRow) + 'a>;

/// A participant that met its round, as the learner gets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finished {
    pub device: DeviceId,
    /// Bits its activations were sent at (32 = fp32) [bit].
    pub bits: u32,
    /// The cell it trained in.
    pub cell: CellId,
}

/// How a round's updates are aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// One global model from every finished participant (no backhaul, or
    /// the cloud aggregating every round: the same average).
    Flat,
    /// Each cell's edge server averages its own participants into its
    /// edge model; the cloud does not aggregate this round.
    Edge,
    /// Edge aggregation, then the cloud averages the edge models into the
    /// global model, which every edge server starts from next.
    EdgeAndCloud,
}

/// The learning half as the engine sees it (co-simulation): called at the
/// end of every round with the participants that met the deadline, in
/// device order, with their bits and cells, and how to aggregate. Returns
/// what the round learned ([`Learned`]): the global model's test accuracy
/// when it evaluated, and each participant's training loss and f16 steps
/// taken again, which land in that device's `device_rounds` row (a device
/// reported twice, or one that did not finish, is an error).
pub trait Learner {
    /// Samples and per-class counts of every device's data, so the
    /// simulation's data shares are the partition's.
    fn data(&self) -> (Vec<u64>, Vec<Vec<u32>>);
    fn round(&mut self, round: u32, finished: &[Finished], aggregation: Aggregation) -> Result<Learned>;
    /// What the initial weights came from (the import report of a
    /// checkpoint), for the run's summary; `None` for a random start.
    fn init_report(&self) -> Option<serde_json::Value> {
        None
    }
}

/// What a [`Learner`] reports of a round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Learned {
    /// The global model's test accuracy, in evaluated rounds [1].
    pub accuracy: Option<f64>,
    /// Each participant that trained, in the order it trained (the
    /// round's loss is their mean in this order).
    pub devices: Vec<DeviceLearned>,
}

/// One participant's local update, as a [`Learner`] reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceLearned {
    pub device: DeviceId,
    /// Mean training loss over its iterations [nat].
    pub loss: f64,
    /// Steps computed again at half the loss scale
    /// (`training.precision = "f16"`) [steps].
    pub loss_scale_halvings: u32,
}

impl Learned {
    /// Mean training loss of the participants [nat]; None when nobody trained.
    pub fn loss(&self) -> Option<f64> {
        let n = self.devices.len();
        (n > 0).then(|| self.devices.iter().map(|d| d.loss).sum::<f64>() / n as f64)
    }

    /// Steps computed again at half the loss scale, over the participants [steps].
    pub fn loss_scale_halvings(&self) -> u32 {
        self.devices.iter().fold(0u32, |sum, d| sum.saturating_add(d.loss_scale_halvings))
    }
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
    /// A participant's phase `phase` is complete. The device and phase
    /// travel with the event, so one that fires after its round closed is
    /// still logged as what it was.
    Step {
        round: u32,
        slot: u32,
        dev: DeviceId,
        phase: Phase,
    },
    /// A cell's server discipline asked to be woken.
    ServerWake {
        round: u32,
        cell: CellId,
        token: u64,
    },
    /// A model on the backhaul reached the next node of its route.
    Hop {
        round: u32,
        transfer: u32,
    },
    /// A participant drops out.
    Dropout {
        round: u32,
        slot: u32,
        dev: DeviceId,
    },
}

/// Run totals for the summary.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub scheduled: u64,
    pub finished: u64,
    pub stragglers: u64,
    pub failed: u64,
    /// [J]
    pub energy_cmp_j: f64,
    /// [J]
    pub energy_com_j: f64,
    pub rounds_done: u32,
}

/// One model on the backhaul: a cell's edge model going up, or the
/// cloud's model coming down to it.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    cell: CellId,
    up: bool,
    /// Hops done.
    hops: usize,
}

/// One cell's edge server and allocator.
struct CellState {
    server: Box<dyn ServerDiscipline>,
    allocator: Box<dyn Allocator>,
    /// The allocator's stream (cell 0: the single cell's).
    rng_alloc: Rng,
}

/// The simulation: cells, devices, channel, servers, allocators, round
/// controller.
pub struct Engine<'s> {
    p: EngineParams,
    pop: Population,
    cells: Cells,
    cell_state: Vec<CellState>,
    interference: InterferenceKind,
    backhaul: Option<Backhaul>,
    /// Cloud aggregation period [rounds].
    cloud_every: u32,
    transfers: Vec<Transfer>,
    in_flight: usize,
    /// The closed round's row while its models are on the backhaul.
    pending: Option<RoundRow>,
    avail: Availability,
    mobility: Mobility,
    channel: Channel,
    rng_avail: Rng,
    rng_mobility: Rng,
    rng_candidates: Rng,
    rng_dropout: Rng,
    sink: &'s mut dyn TraceSink,
    summary: SummaryBuilder,
    /// Called with every round's problem and decision (`--dump-problems`).
    pub on_decision: Option<DecisionHook<'s>>,
    /// Called after every round with its row (progress bars).
    pub on_round: Option<RoundHook<'s>>,
    /// Real training of each round's finished participants (co-simulation).
    pub learner: Option<Box<dyn Learner + 's>>,
    /// Wall-clock time spent in the learner's rounds [s] (not part of the
    /// deterministic result).
    pub learner_wall_s: f64,
    /// Local iterations handed to the learner, summed over its finished
    /// participants (participant-steps: the count the timing charged and
    /// the trainer runs) [1].
    pub learner_steps: u64,
    /// Per-device class counts for the devices table (when training).
    class_counts: Vec<Vec<u32>>,

    round: u32,
    round_start: SimTime,
    round_open: bool,
    parts: Vec<Participant>,
    /// Participant slot per device, `u32::MAX` when not in this round.
    slot_of: Vec<u32>,
    done_buf: Vec<u32>,
    /// This round's decisions, one per cell with candidates.
    decisions: Vec<Decision>,
    /// Candidates of this round whose cell changed since they last
    /// associated [1].
    handovers: u32,
    online_at_start: u64,
    alloc_wall_s: f64,
    pub totals: Totals,
}

impl<'s> Engine<'s> {
    /// Wires the simulation from a validated scenario; `allocator` makes
    /// each cell's allocator, which plans its rounds
    /// (`crate::alloc::build_plan` gives the scenario's).
    pub fn new(
        s: &Scenario,
        allocator: &dyn Fn() -> Box<dyn Allocator>,
        sink: &'s mut dyn TraceSink,
    ) -> Result<Engine<'s>> {
        let cells = Cells::build(s)?;
        let p = EngineParams::resolve(s, &cells)?;
        let seed = p.seed;
        let channel = Channel::new(&s.network, stream(seed, "channel", 0));
        let mut pop = Population::draw(s);
        let table = crate::device::table::Table::read(s)?;
        if let Some(t) = &table {
            t.apply(s, &mut pop)?;
        }
        pop.place(s, &cells, channel.path_loss())?;
        if let Some(t) = &table {
            t.place(s, &mut pop, &cells, channel.path_loss())?;
        }
        let n = pop.len();
        let backhaul = if s.backhaul.enabled { Some(Backhaul::build(s, cells.len(), p.model_bits)?) } else { None };
        let cell_state = (0..cells.len())
            .map(|c| CellState {
                server: discipline_from(s.server.discipline),
                allocator: allocator(),
                rng_alloc: stream(seed, "allocator", c as u64),
            })
            .collect();
        Ok(Engine {
            avail: Availability::build(&s.availability, n)?,
            mobility: Mobility::new(&s.mobility, s.devices.distance_min_m, s.devices.distance_max_m),
            channel,
            cells,
            cell_state,
            interference: s.cells.interference,
            backhaul,
            cloud_every: s.backhaul.cloud_every,
            transfers: Vec::new(),
            in_flight: 0,
            pending: None,
            rng_avail: stream(seed, "availability", 0),
            rng_mobility: stream(seed, "mobility", 0),
            rng_candidates: stream(seed, "candidates", 0),
            rng_dropout: stream(seed, "dropout", 0),
            sink,
            summary: SummaryBuilder::default(),
            on_decision: None,
            on_round: None,
            learner: None,
            learner_wall_s: 0.0,
            learner_steps: 0,
            class_counts: Vec::new(),
            round: 0,
            round_start: SimTime::ZERO,
            round_open: false,
            parts: Vec::new(),
            slot_of: vec![u32::MAX; n],
            done_buf: Vec::new(),
            decisions: Vec::new(),
            handovers: 0,
            online_at_start: 0,
            alloc_wall_s: 0.0,
            totals: Totals::default(),
            pop,
            p,
        })
    }

    /// The resolved parameters the engine runs on.
    pub fn params(&self) -> &EngineParams {
        &self.p
    }

    /// Replaces the drawn data sizes with a real partition's (training
    /// runs), so that the allocator's data shares and the aggregation
    /// weights are the same numbers. Call before [`Engine::wire`].
    pub fn set_data(&mut self, samples: Vec<u64>, class_counts: Vec<Vec<u32>>) {
        debug_assert_eq!(samples.len(), self.pop.len());
        self.pop.samples = samples;
        self.class_counts = class_counts;
    }

    pub fn summary(&self) -> &SummaryBuilder {
        &self.summary
    }

    /// Writes the cells and devices tables and schedules the initial events.
    pub fn wire(&mut self, kernel: &mut Kernel<Ev>) -> Result<()> {
        let mut per_cell = vec![0u64; self.cells.len()];
        for &c in &self.pop.cell {
            per_cell[c as usize] += 1;
        }
        for (c, cell) in self.cells.cells.iter().enumerate() {
            self.sink.cell(&CellRow {
                cell: c as u32,
                x_m: cell.x_m,
                y_m: cell.y_m,
                rb_count: cell.rb_count as u32,
                colour: cell.colour,
                server_service_s: self.p.server_service[c].as_secs_f64(),
                devices: per_cell[c],
            })?;
        }
        for i in 0..self.pop.len() {
            let p = &self.pop;
            let (x_m, y_m) = p.position(DeviceId(i as u32)).xy(&self.cells);
            self.sink.device(&DeviceRow {
                device: i as u32,
                distance_m: p.distance_m[i],
                x_m,
                y_m,
                cell: p.cell[i],
                p_max_w: p.p_max_w[i],
                gpu_freq_hz: p.gpu_freq_hz[i],
                cores: p.cores[i],
                flops_per_cycle: p.flops_per_cycle[i],
                samples: p.samples[i],
                shadowing_db: p.shadowing_db[i],
                class_counts: self.class_counts.get(i).cloned().unwrap_or_default(),
            })?;
            if let Some(dt) = self.avail.init(DeviceId(i as u32), &mut self.rng_avail) {
                kernel.schedule(SimTime::ZERO + ns(dt, "availability.duration")?, Ev::Toggle(DeviceId(i as u32)))?;
            }
        }
        kernel.schedule(SimTime::ZERO, Ev::RoundStart)
    }

    /// A round begins: candidates, their problem, the allocator's
    /// decision, and the first event of every participant.
    fn start_round(&mut self, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        self.round_start = now;
        self.round_open = true;
        // Candidates: a uniform sample of the online devices, by id.
        let online = self.avail.online();
        self.online_at_start = online.len() as u64;
        let m = self.p.candidates.min(online.len());
        let mut cands: Vec<DeviceId> =
            sample(&mut self.rng_candidates, online.len(), m).into_iter().map(|i| online[i]).collect();
        cands.sort_unstable();

        let world = problem::World {
            params: &self.p,
            pop: &mut self.pop,
            cells: &self.cells,
            mobility: &self.mobility,
            rng_mobility: &mut self.rng_mobility,
            channel: &mut self.channel,
        };
        let problems;
        (problems, self.handovers) = problem::build(world, self.round, now, &cands)?;

        // Each cell's allocator decides on its own problem; cells in
        // parallel, each with its own stream, so the decisions do not
        // depend on the thread count.
        let t0 = std::time::Instant::now();
        let mut states: Vec<Option<&mut CellState>> = self.cell_state.iter_mut().map(Some).collect();
        let jobs: Vec<(&mut CellState, &Problem)> = problems
            .iter()
            .map(|cp| (states[cp.cell as usize].take().expect("one problem per cell"), &cp.problem))
            .collect();
        let decide = |(st, pr): (&mut CellState, &Problem)| st.allocator.decide(pr, &mut st.rng_alloc);
        let decisions: Vec<Decision> = if jobs.iter().all(|(st, _)| st.allocator.in_parallel()) {
            jobs.into_par_iter().map(decide).collect()
        } else {
            jobs.into_iter().map(decide).collect()
        };
        self.alloc_wall_s = t0.elapsed().as_secs_f64();
        for (cp, d) in problems.iter().zip(&decisions) {
            d.check(&cp.problem).map_err(|detail| Error::Numeric { checkpoint: "allocator.decision", detail })?;
            if let Some(detail) = &d.unconverged {
                return Err(Error::NotConverged { round: self.round, cell: cp.cell, detail: detail.clone() });
            }
            if let Some(cb) = self.on_decision.as_mut() {
                cb(cp.cell, &cp.problem, d)?;
            }
            if self.p.bcd_trace {
                for h in &d.history {
                    self.sink.bcd_step(&BcdStepRow {
                        round: self.round,
                        cell: cp.cell,
                        iteration: h.iteration,
                        step: h.step.as_str(),
                        scheduled: h.scheduled,
                        mean_energy_j: h.mean_energy_j,
                        objective_j: h.objective_j,
                        efficiency_per_j: h.efficiency_per_j,
                        mean_bits: h.mean_bits,
                    })?;
                }
            }
            for &(i, dev, why) in &d.excluded {
                let c = &cp.problem.candidates[i];
                self.sink.left_out(&LeftOutRow {
                    round: self.round,
                    device: dev.0,
                    cell: cp.cell,
                    reason: why.as_str(),
                    distance_m: cp.times[i].distance_m,
                    best_gain: c.gains.iter().copied().fold(0.0, f64::max),
                    uplink_budget_s: c.uplink_time_s,
                })?;
            }
        }

        // Interference between cells at the planned powers.
        let txs: Vec<interference::Tx> = problems
            .iter()
            .zip(&decisions)
            .flat_map(|(cp, d)| {
                d.assignments.iter().map(move |a| interference::Tx {
                    cell: cp.cell,
                    dev: a.device,
                    rb: a.rb,
                    power_w: a.power_w,
                })
            })
            .collect();
        let interference = if self.cells.len() > 1 && self.interference == InterferenceKind::Full {
            interference::interference_w(&self.cells, self.channel.path_loss(), &self.pop, &txs)
        } else {
            vec![0.0; txs.len()]
        };

        self.parts.clear();
        let act = self.p.activation_elements;
        let relay = self.p.profile.relay;
        let mut k = 0;
        for (cp, decision) in problems.iter().zip(&decisions) {
            let problem = &cp.problem;
            let first_slot = self.parts.len();
            for a in &decision.assignments {
                let c = &problem.candidates[a.candidate];
                let gain = c.gains[a.rb];
                let interference_w = interference[k];
                k += 1;
                // The realized rate: eq. 12 with the interference added to
                // the noise (the plan's rate when there is none).
                let mut a = a.clone();
                if interference_w > 0.0 {
                    a.rate_bps = rate_bps(problem.rb_bandwidth_hz, a.power_w, gain, problem.noise_w + interference_w);
                }
                let sinr_db = 10.0 * (a.power_w * gain / (problem.noise_w + interference_w)).log10();
                // The planner's prediction ran on these very durations
                // (on the plan's rate, when interference slows it).
                let dur = timeline::durations(problem, &a).ok_or_else(|| Error::Numeric {
                    checkpoint: "uplink.time",
                    detail: format!("device {}: rate {} bit/s", c.device.0, a.rate_bps),
                })?;
                let per_upload = message_bits(act, a.bits);
                let slot = self.parts.len() as u32;
                // A relay starts only its cell's first device; each later
                // one waits for the one before it.
                let waits = relay && slot as usize > first_slot;
                self.slot_of[c.device.idx()] = slot;
                self.parts.push(Participant {
                    dev: c.device,
                    cell: cp.cell,
                    split: self.p.profile.split,
                    rb: a.rb as u32,
                    distance_m: cp.times[a.candidate].distance_m,
                    gain,
                    power_w: a.power_w,
                    bits: a.bits,
                    rate_bps: a.rate_bps,
                    interference_w,
                    sinr_db,
                    payload_bits: per_upload,
                    predicted_s: a.time_s,
                    utility: c.data_share * problem.utility(a.bits),
                    dur,
                    cmp_power_w: cp.times[a.candidate].cmp_power_w,
                    phase: if waits { Phase::Waiting } else { Phase::Forward },
                    iterations: problem.iterations_of(c),
                    iter: 0,
                    phase_start: now,
                    phase_end: if waits { SimTime::MAX } else { now + dur.fwd },
                    t_cmp: Default::default(),
                    t_com: Default::default(),
                    t_srv: Default::default(),
                    t_wait: Default::default(),
                    t_down: Default::default(),
                    e_cmp_j: 0.0,
                    e_com_j: 0.0,
                    outcome: None,
                });
                if !waits {
                    ctx.schedule(
                        now + dur.fwd,
                        Ev::Step { round: self.round, slot, dev: c.device, phase: Phase::Forward },
                    );
                }
                // A dropout strikes within the device's own planned round.
                let q = self.p.dropout_probability;
                if q > 0.0 && self.rng_dropout.random::<f64>() < q {
                    let at = self.rng_dropout.random::<f64>() * a.time_s;
                    ctx.schedule(now + ns(at, "dropout.time")?, Ev::Dropout { round: self.round, slot, dev: c.device });
                }
            }
        }
        self.decisions = decisions;
        match self.p.mode {
            RoundMode::Deadline => ctx.schedule(now + self.p.deadline, Ev::Deadline { round: self.round }),
            RoundMode::Sync if self.parts.is_empty() => {
                // Nobody to wait for: idle one deadline so time moves on.
                ctx.schedule(now + self.p.deadline, Ev::Deadline { round: self.round })
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
        p.phase = ph;
        p.phase_start = now;
        p.phase_end = now + p.length_of(ph);
        match ph {
            Phase::Server => {
                let cell = p.cell;
                if let Some(w) = self.cell_state[cell as usize].server.arrive(now, i as u32, p.dur.srv) {
                    ctx.schedule(w.at, Ev::ServerWake { round, cell, token: w.token });
                }
            }
            Phase::Done | Phase::Waiting => {}
            _ => ctx.schedule(p.phase_end, Ev::Step { round, slot: i as u32, dev: p.dev, phase: ph }),
        }
    }

    /// The phase of slot `i` completed at `now`: move to the next one.
    fn advance(&mut self, i: usize, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        if self.parts[i].outcome.is_some() {
            return Ok(());
        }
        self.parts[i].book(now);
        let p = &self.parts[i];
        if p.phase == Phase::Done {
            return Ok(());
        }
        let next = p.next_phase();
        if p.phase == Phase::Backward && next == Phase::Forward {
            self.parts[i].iter += 1;
        }
        self.enter(i, next, ctx);
        if next == Phase::Done {
            self.parts[i].outcome = Some((Outcome::Finished, now));
            self.pass_relay(self.parts[i].cell, ctx);
            self.maybe_close_sync(ctx)?;
        }
        Ok(())
    }

    /// Relay frameworks: the next waiting participant of `cell` (if any)
    /// starts now.
    fn pass_relay(&mut self, cell: CellId, ctx: &mut Context<'_, Ev>) {
        if let Some(j) =
            self.parts.iter().position(|p| p.cell == cell && p.phase == Phase::Waiting && p.outcome.is_none())
        {
            self.enter(j, Phase::Forward, ctx);
        }
    }

    /// Slot `i` dropped out or went offline now: a failed device is data.
    fn fail(&mut self, i: usize, why: Outcome, ctx: &mut Context<'_, Ev>) -> Result<()> {
        if self.parts[i].outcome.is_some() {
            return Ok(());
        }
        let now = ctx.now();
        self.cut(i, now);
        let cell = self.parts[i].cell;
        if self.parts[i].phase == Phase::Server
            && let Some(w) = self.cell_state[cell as usize].server.cancel(now, i as u32)
        {
            // Its place at the server goes to the next job at once.
            ctx.schedule(w.at, Ev::ServerWake { round: self.round, cell, token: w.token });
        }
        let was_active = self.parts[i].phase != Phase::Waiting;
        self.parts[i].outcome = Some((why, now));
        if was_active && self.p.profile.relay {
            self.pass_relay(cell, ctx);
        }
        self.maybe_close_sync(ctx)
    }

    /// Books slot `i`'s current phase, cut at `now`: a server job is
    /// charged the work its discipline did on it, the rest is waiting.
    fn cut(&mut self, i: usize, now: SimTime) {
        let p = &self.parts[i];
        let served = if p.phase == Phase::Server {
            self.cell_state[p.cell as usize].server.progress(now, i as u32)
        } else {
            SimDuration::ZERO
        };
        self.parts[i].cut(now, served);
    }

    fn maybe_close_sync(&mut self, ctx: &mut Context<'_, Ev>) -> Result<()> {
        if self.p.mode == RoundMode::Sync && self.parts.iter().all(|p| p.outcome.is_some()) {
            self.end_round(ctx)?;
        }
        Ok(())
    }

    /// The round closes: outcomes, rows, the learner, the next round.
    fn end_round(&mut self, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        // Deadline: a device whose last phase ends exactly now is on time.
        for i in 0..self.parts.len() {
            let p = &mut self.parts[i];
            if p.outcome.is_none() {
                let end = p.phase_end;
                if p.next_phase() == Phase::Done && end <= now {
                    p.book(end);
                    p.outcome = Some((Outcome::Finished, end));
                } else {
                    self.cut(i, now);
                    self.parts[i].outcome = Some((Outcome::Straggler, now));
                }
            }
        }
        for st in &mut self.cell_state {
            st.server.clear();
        }
        let r = self.round;
        // Edge servers aggregate every round; the cloud every k-th (k = 1,
        // or no backhaul: one flat average).
        let aggregation = if self.backhaul.is_none() || self.cloud_every == 1 {
            Aggregation::Flat
        } else if self.cloud_round(r) {
            Aggregation::EdgeAndCloud
        } else {
            Aggregation::Edge
        };
        // The finished participants train before the rows are written, so
        // each device's row carries its own update's report.
        let learned = match self.learner.as_mut() {
            Some(l) => {
                let finished = self.parts.iter().filter(|p| matches!(p.outcome, Some((Outcome::Finished, _))));
                self.learner_steps += finished.clone().map(|p| p.iterations as u64).sum::<u64>();
                let mut done: Vec<Finished> =
                    finished.map(|p| Finished { device: p.dev, bits: p.bits, cell: p.cell }).collect();
                done.sort_unstable();
                let wall = std::time::Instant::now();
                let out = l.round(r, &done, aggregation)?;
                self.learner_wall_s += wall.elapsed().as_secs_f64();
                Some(out)
            }
            None => None,
        };
        let mut per_part: Vec<Option<DeviceLearned>> = vec![None; self.parts.len()];
        for d in learned.iter().flat_map(|l| &l.devices) {
            let slot = self.slot_of.get(d.device.idx()).map_or(u32::MAX, |&s| s) as usize;
            match self.parts.get(slot) {
                Some(p) if matches!(p.outcome, Some((Outcome::Finished, _))) && per_part[slot].is_none() => {
                    per_part[slot] = Some(*d)
                }
                Some(p) if per_part[slot].is_some() => {
                    return Err(Error::Numeric {
                        checkpoint: "round.learner",
                        detail: format!("the learner reported device {} twice in round {r}", p.dev.0),
                    });
                }
                _ => {
                    return Err(Error::Numeric {
                        checkpoint: "round.learner",
                        detail: format!("the learner reported device {}, which did not finish round {r}", d.device.0),
                    });
                }
            }
        }
        let mut sums = RoundSums::default();
        for (p, learned) in self.parts.iter().zip(per_part) {
            let (outcome, at) = p.outcome.expect("every participant has an outcome at round end");
            sums.add(p, outcome);
            let time_s = at.saturating_sub(self.round_start).as_secs_f64();
            let energy = p.e_cmp_j + p.e_com_j;
            if !energy.is_finite() || !time_s.is_finite() {
                return Err(Error::Numeric { checkpoint: "round.energy", detail: format!("device {}", p.dev.0) });
            }
            self.summary.record(time_s, energy);
            self.sink.device_round(&rows::device_round(r, p, outcome, time_s, learned))?;
            self.slot_of[p.dev.idx()] = u32::MAX;
        }
        let n = self.parts.len();
        let energy_j = sums.energy_cmp_j + sums.energy_com_j;
        let row = RoundRow {
            round: r,
            start_s: self.round_start.as_secs_f64(),
            end_s: now.as_secs_f64(),
            online: self.online_at_start,
            candidates: self.decisions.iter().map(|d| d.assignments.len() + d.excluded.len()).sum::<usize>() as u32,
            scheduled: n as u32,
            finished: sums.finished,
            stragglers: sums.stragglers,
            failed: sums.failed,
            energy_j,
            energy_cmp_j: sums.energy_cmp_j,
            energy_com_j: sums.energy_com_j,
            mean_bits: (n > 0).then(|| sums.bits / n as f64),
            objective_j: self.decisions.iter().map(|d| d.objective_j).sum(),
            efficiency_per_j: planned_efficiency(&self.decisions),
            realized_objective_j: self.p.weight_j * sums.utility - energy_j,
            realized_efficiency_per_j: if energy_j > 0.0 { sums.utility / energy_j } else { 0.0 },
            alloc_iterations: self.decisions.iter().map(|d| d.iterations).sum(),
            handovers: self.handovers,
            backhaul_s: 0.0,
            backhaul_energy_j: 0.0,
            alloc_wall_s: self.alloc_wall_s,
            loss: learned.as_ref().and_then(Learned::loss),
            accuracy: learned.as_ref().and_then(|l| l.accuracy),
            loss_scale_halvings: learned.as_ref().map(Learned::loss_scale_halvings),
        };
        let t = &mut self.totals;
        t.scheduled += n as u64;
        t.finished += sums.finished as u64;
        t.stragglers += sums.stragglers as u64;
        t.failed += sums.failed as u64;
        t.energy_cmp_j += sums.energy_cmp_j;
        t.energy_com_j += sums.energy_com_j;
        self.round_open = false;
        if self.cloud_round(r) {
            // The edge models go to the cloud; the round's row waits for
            // the global model to be back at every edge server.
            self.pending = Some(row);
            return self.send_models(true, ctx);
        }
        self.finish_round(row, ctx)
    }

    /// Whether round `r` ends with the cloud aggregating over the backhaul.
    fn cloud_round(&self, r: u32) -> bool {
        self.backhaul.is_some() && (r + 1).is_multiple_of(self.cloud_every)
    }

    /// Starts one model per cell on the backhaul: the edge models up to
    /// the cloud (`up`), or the cloud's model down to every cell.
    fn send_models(&mut self, up: bool, ctx: &mut Context<'_, Ev>) -> Result<()> {
        self.transfers = (0..self.cells.len() as CellId).map(|cell| Transfer { cell, up, hops: 0 }).collect();
        self.in_flight = self.transfers.len();
        for t in 0..self.transfers.len() {
            self.hop(t, ctx)?;
        }
        Ok(())
    }

    /// Transfer `t` is at its next node now: onto the next link, or done.
    /// When the last model reaches the cloud, the global model starts
    /// down to every cell; when the last one is home, the round finishes.
    fn hop(&mut self, t: usize, ctx: &mut Context<'_, Ev>) -> Result<()> {
        let now = ctx.now();
        let bh = self.backhaul.as_mut().expect("transfers only with a backhaul");
        let tr = self.transfers[t];
        let route = bh.route_up(tr.cell as usize);
        if tr.hops < route.len() {
            let hop = if tr.up { route[tr.hops] } else { Backhaul::reversed(route[route.len() - 1 - tr.hops]) };
            let at = bh.send(hop, now)?;
            if let Some(row) = self.pending.as_mut() {
                row.backhaul_energy_j += bh.hop_energy_j();
            }
            self.transfers[t].hops += 1;
            ctx.schedule(at, Ev::Hop { round: self.round, transfer: t as u32 });
            return Ok(());
        }
        self.in_flight -= 1;
        if self.in_flight > 0 {
            return Ok(());
        }
        if tr.up {
            // The cloud has every edge model: the global model goes down.
            return self.send_models(false, ctx);
        }
        let mut row = self.pending.take().expect("a round waits on the backhaul");
        row.backhaul_s = now.as_secs_f64() - row.end_s;
        self.finish_round(row, ctx)
    }

    /// Writes the round's row and starts the next round (or stops).
    fn finish_round(&mut self, row: RoundRow, ctx: &mut Context<'_, Ev>) -> Result<()> {
        self.sink.round(&row)?;
        if let Some(cb) = self.on_round.as_mut() {
            cb(&row);
        }
        self.totals.rounds_done += 1;
        let now = ctx.now();
        self.round += 1;
        if self.round >= self.p.rounds {
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
            Ev::Step { round, dev, phase, .. } => (round, Some(dev.0), phase.done_event()),
            Ev::ServerWake { round, .. } => (round, None, "server-wake"),
            Ev::Dropout { round, dev, .. } => (round, Some(dev.0), "dropout"),
            Ev::Hop { round, .. } => (round, None, "backhaul-hop"),
        };
        self.sink.event(&EventRow { time_ns: t.0, round, device, kind })
    }
}

/// The round's planned efficiency (eq. 21) over every cell's decision:
/// Σ ρ_n U(b_n) / Σ E_n, each cell's shares summing to 1 (one cell: its
/// decision's own value).
fn planned_efficiency(decisions: &[Decision]) -> f64 {
    if let [d] = decisions {
        return d.efficiency_per_j;
    }
    let energy = |d: &Decision| d.assignments.iter().map(|a| a.energy_j()).sum::<f64>();
    let (u, e) = decisions.iter().fold((0.0, 0.0), |(u, e), d| {
        let ed = energy(d);
        (u + d.efficiency_per_j * ed, e + ed)
    });
    if e > 0.0 { u / e } else { 0.0 }
}

impl Model for Engine<'_> {
    type Event = Ev;

    fn handle(&mut self, ev: Ev, ctx: &mut Context<'_, Ev>) -> Result<()> {
        if self.p.events_trace {
            self.record_event(ctx.now(), &ev)?;
        }
        let current = |r: u32, e: &Engine| r == e.round && e.round_open;
        match ev {
            Ev::RoundStart => self.start_round(ctx),
            Ev::Deadline { round } if current(round, self) => self.end_round(ctx),
            Ev::Toggle(dev) => {
                let (online, dt) = self.avail.toggle(dev, &mut self.rng_avail);
                if let Some(dt) = dt {
                    ctx.schedule_in(ns(dt, "availability.duration")?, Ev::Toggle(dev));
                }
                let slot = self.slot_of[dev.idx()];
                if !online && self.round_open && slot != u32::MAX {
                    self.fail(slot as usize, Outcome::Offline, ctx)?;
                }
                Ok(())
            }
            Ev::Step { round, slot, .. } if current(round, self) => self.advance(slot as usize, ctx),
            Ev::ServerWake { round, cell, token } if current(round, self) => {
                let mut done = std::mem::take(&mut self.done_buf);
                done.clear();
                if let Some(w) = self.cell_state[cell as usize].server.wake(ctx.now(), token, &mut done) {
                    ctx.schedule(w.at, Ev::ServerWake { round, cell, token: w.token });
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
            Ev::Dropout { round, slot, .. } if current(round, self) => self.fail(slot as usize, Outcome::Dropped, ctx),
            Ev::Hop { round, transfer } if round == self.round && self.pending.is_some() => {
                self.hop(transfer as usize, ctx)
            }
            // Events of a closed round are stale.
            _ => Ok(()),
        }
    }
}
