//! The planner's prediction of a round: every scheduled device's phases
//! under the server's discipline, walked with the same kernel, the same
//! phase chain (`crate::phases`) and the same discipline code as the
//! engine, failures aside. Under `ideal` it is the paper's closed form in
//! integer nanoseconds; under `fifo` and `processor-sharing` it includes
//! the queue. The engine runs the same durations
//! ([`durations`]), so a device that neither fails nor is cut finishes at
//! exactly the predicted nanosecond (tested).

use super::{Assignment, Problem};
use crate::phases::{Durations, Phase};
use crate::quant::message_bits;
use crate::server::{ServerDiscipline, discipline_from};
use crate::sim::{Context, Kernel, Model};
use crate::units::{SimDuration, SimTime};

/// The phase lengths of an assignment: compute, server and downlink from
/// the problem's round model, the uploads at the assignment's rate.
/// `None` without a round model, or when an upload would take longer
/// than the clock can hold.
pub fn durations(p: &Problem, a: &Assignment) -> Option<Durations> {
    let m = p.round_model.as_ref()?;
    let c = &p.candidates[a.candidate];
    let act = c.activation_elements;
    let per_upload = message_bits(act, a.bits);
    Some(Durations {
        fwd: SimDuration(c.forward_ns),
        bwd: SimDuration(c.backward_ns),
        up: SimDuration::from_secs_f64(if act == 0 { 0.0 } else { per_upload as f64 / a.rate_bps })?,
        srv: SimDuration(m.service_ns),
        down: SimDuration(m.downlink_ns),
        model_up: SimDuration::from_secs_f64(c.extra_upload_bits as f64 / a.rate_bps)?,
    })
}

/// Each assignment's finish after the round start [ns], in the order of
/// `assignments` (the engine's slot order); `None` without a round model.
pub fn finish_times(p: &Problem, assignments: &[Assignment]) -> Option<Vec<SimDuration>> {
    let m = p.round_model.as_ref()?;
    let mut lanes = Vec::with_capacity(assignments.len());
    for a in assignments {
        let iterations = p.iterations_of(&p.candidates[a.candidate]);
        lanes.push(Lane { dur: durations(p, a)?, iterations, phase: Phase::Forward, iter: 0, finish: None });
    }
    let mut dry = Dry { lanes, server: discipline_from(m.discipline), split: m.split, done: Vec::new() };
    let mut kernel = Kernel::new();
    for (i, lane) in dry.lanes.iter_mut().enumerate() {
        // A relay starts only its first device (as the engine does).
        if m.relay && i > 0 {
            lane.phase = Phase::Waiting;
        } else {
            kernel.schedule(SimTime::ZERO + lane.dur.fwd, Ev::Step(i as u32)).ok()?;
        }
    }
    kernel.run(&mut dry, SimTime::MAX).ok()?;
    dry.lanes.iter().map(|l| l.finish.map(|t| t.saturating_sub(SimTime::ZERO))).collect()
}

struct Lane {
    dur: Durations,
    iterations: u32,
    phase: Phase,
    iter: u32,
    finish: Option<SimTime>,
}

#[derive(Clone, Copy)]
enum Ev {
    Step(u32),
    Wake(u64),
}

struct Dry {
    lanes: Vec<Lane>,
    server: Box<dyn ServerDiscipline>,
    split: bool,
    done: Vec<u32>,
}

impl Dry {
    /// Mirrors `Engine::enter`.
    fn enter(&mut self, i: usize, ph: Phase, ctx: &mut Context<'_, Ev>) {
        let now = ctx.now();
        let l = &mut self.lanes[i];
        l.phase = ph;
        match ph {
            Phase::Server => {
                if let Some(w) = self.server.arrive(now, i as u32, l.dur.srv) {
                    ctx.schedule(w.at, Ev::Wake(w.token));
                }
            }
            Phase::Done | Phase::Waiting => {}
            _ => ctx.schedule(now + l.dur.length_of(ph), Ev::Step(i as u32)),
        }
    }

    /// Mirrors `Engine::advance`, without failures.
    fn advance(&mut self, i: usize, ctx: &mut Context<'_, Ev>) {
        let l = &self.lanes[i];
        if l.finish.is_some() || l.phase == Phase::Done {
            return;
        }
        let next = l.dur.next_phase(l.phase, l.iter, l.iterations, self.split);
        if l.phase == Phase::Backward && next == Phase::Forward {
            self.lanes[i].iter += 1;
        }
        self.enter(i, next, ctx);
        if next == Phase::Done {
            self.lanes[i].finish = Some(ctx.now());
            if let Some(j) = self.lanes.iter().position(|l| l.phase == Phase::Waiting && l.finish.is_none()) {
                self.enter(j, Phase::Forward, ctx);
            }
        }
    }
}

impl Model for Dry {
    type Event = Ev;

    fn handle(&mut self, ev: Ev, ctx: &mut Context<'_, Ev>) -> crate::Result<()> {
        match ev {
            Ev::Step(i) => self.advance(i as usize, ctx),
            Ev::Wake(token) => {
                let mut done = std::mem::take(&mut self.done);
                done.clear();
                if let Some(w) = self.server.wake(ctx.now(), token, &mut done) {
                    ctx.schedule(w.at, Ev::Wake(w.token));
                }
                for &j in &done {
                    self.advance(j as usize, ctx);
                }
                self.done = done;
            }
        }
        Ok(())
    }
}
