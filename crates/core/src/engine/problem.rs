//! The round's allocation problem (SPEC section 6): each candidate's
//! distance brought up to now, its channel gains, its compute and server
//! times, and what is left of the deadline for its uploads.

use super::channel::Channel;
use super::params::{EngineParams, ns};
use super::participant::Durations;
use crate::alloc::{Candidate, Problem};
use crate::config::local_iterations;
use crate::device::{DeviceId, Mobility, Population, compute_time_s};
use crate::error::Result;
use crate::geo::{CellId, Cells};
use crate::sim::rng::Rng;
use crate::units::SimTime;

/// Per-candidate quantities the round needs (fixed for the round).
pub struct CandidateTimes {
    /// Phase lengths; the uplink and model upload are set once the
    /// allocator has chosen the rate.
    pub dur: Durations,
    /// Computation power [W].
    pub cmp_power_w: f64,
    /// Link distance to its cell's site this round [m].
    pub distance_m: f64,
}

/// The phase lengths of `dev` under the framework's profile, served by
/// `cell`'s edge server at link distance `distance_m` [m].
pub fn times_of(
    p: &EngineParams,
    pop: &Population,
    dev: DeviceId,
    cell: CellId,
    distance_m: f64,
) -> Result<CandidateTimes> {
    let fps = pop.flops_per_s(dev);
    let mut dur = Durations {
        fwd: ns(compute_time_s(p.batch * p.device_fwd_flops, fps), "device.forward_time")?,
        bwd: ns(compute_time_s(p.batch * p.device_bwd_flops, fps), "device.backward_time")?,
        ..Durations::default()
    };
    if p.profile.split {
        dur.srv = p.server_service[cell as usize];
        dur.down = p.downlink;
    }
    Ok(CandidateTimes { dur, cmp_power_w: pop.compute_power_w(dev, p.kappa), distance_m })
}

/// What the problem builder needs that lives in the engine.
pub struct World<'a> {
    pub params: &'a EngineParams,
    pub pop: &'a mut Population,
    pub cells: &'a Cells,
    pub mobility: &'a Mobility,
    pub rng_mobility: &'a mut Rng,
    pub channel: &'a mut Channel,
}

/// One cell's share of the round: its allocation problem and each of its
/// candidates' times.
pub struct CellProblem {
    pub cell: CellId,
    pub problem: Problem,
    pub times: Vec<CandidateTimes>,
}

/// Builds round `round`'s problems at `now` for `cands` (in device order),
/// one per cell that has candidates, in cell order. Candidate by
/// candidate: moves its distance up to now, associates it with a cell
/// (`cells.association`; `handovers` counts those whose cell changed) and
/// draws its fading on that cell's RBs. With one cell this is the single
/// cell's problem, draw for draw. Also returns the handovers: candidates
/// whose cell changed since they last associated.
pub fn build(w: World<'_>, round: u32, now: SimTime, cands: &[DeviceId]) -> Result<(Vec<CellProblem>, u32)> {
    let p = w.params;
    let mut out: Vec<CellProblem> = Vec::new();
    // Index into `out` per cell that has candidates.
    let mut at: std::collections::BTreeMap<CellId, usize> = Default::default();
    let now_s = now.as_secs_f64();
    let mut handovers = 0;
    for &dev in cands {
        let i = dev.idx();
        // Mobility: bring the distance up to now.
        let d = w.mobility.advance(w.pop.distance_m[i], now_s - w.pop.distance_at_s[i], w.rng_mobility);
        w.pop.distance_m[i] = d;
        w.pop.distance_at_s[i] = now_s;
        let pos = w.pop.position(dev);
        let (cell, dist) = w.cells.associate(w.channel.path_loss(), dev.0, &pos, w.pop.shadowing_db[i]);
        if cell != w.pop.cell[i] {
            handovers += 1;
            w.pop.cell[i] = cell;
        }
        let shadow = w.cells.link_shadowing_db(dev.0, pos.home, w.pop.shadowing_db[i], cell);
        let rb_count = p.rb_count[cell as usize];
        let gains = w.channel.gains(dist, shadow, rb_count);
        let t = times_of(p, w.pop, dev, cell, dist)?;
        let its = local_iterations(p.local_epochs, w.pop.samples[i], p.batch as usize, p.iterations);
        let it = its as f64;
        let fixed = it * (t.dur.fwd + t.dur.bwd + t.dur.srv + t.dur.down).as_secs_f64();
        let k = *at.entry(cell).or_insert_with(|| {
            out.push(CellProblem {
                cell,
                problem: Problem {
                    round,
                    rb_count,
                    rb_bandwidth_hz: p.rb_bandwidth_hz,
                    noise_w: p.noise_w,
                    deadline_s: p.deadline_s,
                    iterations: p.iterations,
                    weight_j: p.weight_j,
                    bits_min: p.bits_min,
                    bits_max: p.bits_max,
                    utility_table: p.utility_table.clone(),
                    candidates: Vec::new(),
                    round_model: Some(p.round_model[cell as usize].clone()),
                },
                times: Vec::new(),
            });
            out.len() - 1
        });
        out[k].problem.candidates.push(Candidate {
            device: dev,
            gains,
            p_max_w: w.pop.p_max_w[i],
            // Samples for now; the share within the cell below.
            data_share: w.pop.samples[i] as f64,
            uplink_time_s: p.deadline_s - fixed,
            fixed_time_s: fixed,
            compute_energy_j: it * t.cmp_power_w * (t.dur.fwd + t.dur.bwd).as_secs_f64(),
            activation_elements: p.activation_elements,
            extra_upload_bits: p.extra_upload_bits,
            forward_ns: t.dur.fwd.0,
            backward_ns: t.dur.bwd.0,
            iterations: if p.local_epochs > 0 { its } else { 0 },
        });
        out[k].times.push(t);
    }
    for cp in &mut out {
        let total: f64 = cp.problem.candidates.iter().map(|c| c.data_share).sum();
        for c in &mut cp.problem.candidates {
            c.data_share /= total;
        }
    }
    out.sort_by_key(|cp| cp.cell);
    Ok((out, handovers))
}
