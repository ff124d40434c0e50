//! The server in the plan: queue-aware planning, its prediction against
//! the simulation, the brute-force check of `exact` with a queue, sync
//! rounds without a deadline, failed devices leaving the server, and the
//! realized accounting.

use rand::{Rng, SeedableRng};
use sflam_core::alloc::model::RoundModel;
use sflam_core::alloc::timeline::finish_times;
use sflam_core::alloc::{Exclusion, Problem, allocator_from};
use sflam_core::config::{AllocatorConfig, FrameworkKind, RoundMode, Scenario, ServerDisciplineKind};
use sflam_core::trace::{Outcome, VecSink};

use crate::run_vec as run;

/// A deadline scenario where the server is the bottleneck: 12 RBs, two
/// iterations, ViT-B/32's server step on a slow server.
fn crowded(discipline: ServerDisciplineKind, allocator: &str) -> Scenario {
    let mut s = Scenario::default();
    s.run.rounds = 4;
    s.run.deadline_s = 30.0;
    s.run.iterations = 2;
    s.devices.count = 80;
    s.run.candidates = 40;
    s.network.rb_count = 12;
    s.network.downlink = true;
    s.network.model_upload = true;
    s.server.discipline = discipline;
    s.server.freq_hz = 0.3e9;
    s.allocator.name = allocator.parse().unwrap();
    s
}

#[test]
fn plan_predicts_the_simulation_to_the_nanosecond() {
    use ServerDisciplineKind::*;
    let mut checked = 0;
    for discipline in [Ideal, Fifo, ProcessorSharing] {
        for allocator in ["exact", "bcd", "rb", "fixed"] {
            for framework in [FrameworkKind::Sflam, FrameworkKind::Sl] {
                for mode in [RoundMode::Deadline, RoundMode::Sync] {
                    let mut s = crowded(discipline, allocator);
                    s.training.framework = framework;
                    s.run.mode = mode;
                    let sink = run(&s);
                    for r in sink.device_rounds.iter().filter(|r| r.outcome == Outcome::Finished) {
                        // Both sides are integer nanoseconds turned into seconds.
                        assert_eq!(
                            r.time_s, r.predicted_time_s,
                            "{discipline:?} {allocator} {framework:?} {mode:?}: device {} round {}",
                            r.device, r.round
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 500, "too few finished devices to check: {checked}");
}

#[test]
fn queue_aware_plans_finish_every_scheduled_device() {
    for discipline in [ServerDisciplineKind::Fifo, ServerDisciplineKind::ProcessorSharing] {
        for allocator in ["exact", "bcd", "ep", "rb", "nq"] {
            let mut s = crowded(discipline, allocator);
            let aware = run(&s);
            s.allocator.queue_aware = false;
            let blind = run(&s);
            let late = |k: &VecSink| k.device_rounds.iter().filter(|r| r.outcome == Outcome::Straggler).count();
            assert!(!aware.device_rounds.is_empty(), "{discipline:?} {allocator}: nobody scheduled");
            assert_eq!(late(&aware), 0, "{discipline:?} {allocator}: queue-aware plan left stragglers");
            // The scenario is one where the queue matters.
            assert!(late(&blind) > 0, "{discipline:?} {allocator}: the queue-blind plan has no stragglers");
        }
    }
}

/// A small problem with a FIFO server whose service time is a large part
/// of the deadline, so planning must queue devices.
fn queued_problem(seed: u64, n: usize, k: usize, iterations: u32) -> Problem {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let deadline = 1.0;
    let service_ns = rng.random_range(60_000_000..160_000_000u64);
    let candidates = (0..n)
        .map(|i| {
            let fwd = rng.random_range(20_000_000..80_000_000u64);
            let bwd = rng.random_range(20_000_000..80_000_000u64);
            let fixed = iterations as f64 * (fwd + bwd + service_ns) as f64 * 1e-9;
            let mut c = crate::random_candidate(&mut rng, i, n, k, -12.5..-11.0, deadline, fixed);
            (c.forward_ns, c.backward_ns) = (fwd, bwd);
            c
        })
        .collect();
    Problem {
        round: 0,
        rb_count: k,
        rb_bandwidth_hz: 2e6,
        noise_w: 1e-13,
        deadline_s: deadline,
        iterations,
        weight_j: 4.0 * n as f64,
        bits_min: 4,
        bits_max: 6,
        utility_table: None,
        candidates,
        round_model: Some(RoundModel {
            discipline: ServerDisciplineKind::Fifo,
            service_ns,
            downlink_ns: 0,
            split: true,
            relay: false,
            sync: false,
            quantized: true,
            queue_aware: true,
        }),
    }
}

/// Best objective over every partial matching of candidates to RBs, every
/// bit width and a fine power grid, for the budgets each candidate has —
/// no closed form used.
fn brute_force(p: &Problem, grid: usize) -> f64 {
    let (n, k) = (p.candidates.len(), p.rb_count);
    let pair = |i: usize, j: usize| -> Option<f64> {
        let c = &p.candidates[i];
        let mut best: Option<f64> = None;
        for b in p.bits_min..=p.bits_max {
            let u = p.iterations as f64 * (c.activation_elements * (b as u64 + 1) + 64) as f64;
            for g in 1..=grid {
                let pw = c.p_max_w * g as f64 / grid as f64;
                let t = u / (p.rb_bandwidth_hz * (1.0 + pw * c.gains[j] / p.noise_w).log2());
                if t <= c.uplink_time_s - 4e-9 {
                    let v = p.weight_j * c.data_share * p.utility(b) - c.compute_energy_j - pw * t;
                    best = Some(best.map_or(v, |x: f64| x.max(v)));
                    break;
                }
            }
        }
        best
    };
    let vals: Vec<Vec<Option<f64>>> = (0..n).map(|i| (0..k).map(|j| pair(i, j)).collect()).collect();
    fn best(vals: &[Vec<Option<f64>>], i: usize, used: &mut [bool]) -> f64 {
        if i == vals.len() {
            return 0.0;
        }
        let mut m = best(vals, i + 1, used);
        for j in 0..used.len() {
            if let (false, Some(v)) = (used[j], vals[i][j]) {
                used[j] = true;
                m = m.max(v + best(vals, i + 1, used));
                used[j] = false;
            }
        }
        m
    }
    best(&vals, 0, &mut vec![false; k])
}

/// `exact` with a FIFO server claims: every device it schedules finishes
/// by the deadline under the queue, and its decision is optimal over bits,
/// power and RB matching for the upload budgets the queue left
/// (`Decision::budgets_s`). Both are checked here, the second by brute
/// force.
#[test]
fn exact_with_a_queue_is_optimal_for_its_budgets() {
    let grid = 20_000;
    let (mut squeezed, mut blind_late, mut positive) = (0, 0, 0);
    for seed in 0..40u64 {
        let (n, k, it) = (2 + seed as usize % 3, 1 + seed as usize % 3, 1 + (seed % 2) as u32);
        let p = queued_problem(seed, n, k, it);
        let cfg = AllocatorConfig::default();
        let mut rng = sflam_core::sim::rng::stream(1, "allocator", 0);
        let d = allocator_from("exact", &cfg).unwrap().decide(&p, &mut rng);
        d.check(&p).unwrap();
        let deadline_ns = (p.deadline_s * 1e9) as u64;
        let fin = finish_times(&p, &d.assignments).unwrap();
        for (a, f) in d.assignments.iter().zip(&fin) {
            assert!(f.0 <= deadline_ns, "seed {seed}: device {} predicted at {} ns", a.device.0, f.0);
            assert_eq!(a.time_s, f.as_secs_f64());
        }
        // The budgets it settled on, applied to the paper's problem.
        let mut q = p.clone();
        q.round_model = None;
        for &(i, b) in &d.budgets_s {
            q.candidates[i].uplink_time_s = b;
        }
        let brute = brute_force(&q, grid);
        let slack: f64 = q.candidates.iter().map(|c| c.p_max_w / grid as f64 * c.uplink_time_s.max(0.0)).sum();
        assert!(d.objective_j >= brute - 1e-9, "seed {seed}: exact {} < brute force {brute}", d.objective_j);
        assert!(d.objective_j <= brute + slack, "seed {seed}: exact {} > brute force {brute}", d.objective_j);
        squeezed += usize::from(!d.budgets_s.is_empty());
        positive += usize::from(d.objective_j > 0.0);
        // Without the queue in the plan, some device is late.
        let mut blind = p.clone();
        blind.round_model.as_mut().unwrap().queue_aware = false;
        let db = allocator_from("exact", &cfg).unwrap().decide(&blind, &mut rng);
        let fb = finish_times(&blind, &db.assignments).unwrap();
        blind_late += usize::from(fb.iter().any(|f| f.0 > deadline_ns));
    }
    assert!(squeezed >= 10, "too few instances where the queue cut a budget: {squeezed}");
    assert!(blind_late >= 10, "too few instances where queue-blind planning is late: {blind_late}");
    assert!(positive >= 20, "instances too hard: {positive}");
}

/// Labels: a candidate the queue pushed out is `server-busy`, never
/// `infeasible` (it was feasible alone).
#[test]
fn queue_exclusions_are_server_busy() {
    let mut seen = 0;
    for seed in 100..160u64 {
        let p = queued_problem(seed, 4, 4, 2);
        let mut alone = p.clone();
        alone.round_model = None;
        let cfg = AllocatorConfig::default();
        let mut rng = sflam_core::sim::rng::stream(1, "allocator", 0);
        let d0 = allocator_from("exact", &cfg).unwrap().decide(&alone, &mut rng);
        let d = allocator_from("exact", &cfg).unwrap().decide(&p, &mut rng);
        for &(i, _, why) in &d.excluded {
            if why == Exclusion::ServerBusy {
                seen += 1;
                assert!(
                    d0.assignments.iter().any(|a| a.candidate == i)
                        || d0.excluded.iter().any(|e| e.0 == i && e.2 == Exclusion::NoResourceBlock),
                    "seed {seed}: candidate {i} was not schedulable alone"
                );
            }
        }
    }
    assert!(seen > 0, "no candidate was pushed out by the queue");
}

/// Sync rounds have no deadline: with a deadline no device can meet,
/// every candidate that has an RB is still scheduled, and all finish.
#[test]
fn sync_rounds_schedule_every_candidate_with_an_rb() {
    for framework in [FrameworkKind::Sflam, FrameworkKind::Fl, FrameworkKind::Sfl] {
        for allocator in ["exact", "bcd", "ep"] {
            let mut s = crowded(ServerDisciplineKind::Fifo, allocator);
            s.training.framework = framework;
            s.run.mode = RoundMode::Sync;
            s.run.deadline_s = 0.01;
            s.network.rb_count = 30;
            s.run.candidates = 20;
            let sink = run(&s);
            for r in &sink.rounds {
                assert_eq!(r.scheduled, 20, "{framework:?} {allocator}: round {}", r.round);
                assert_eq!(r.finished, 20, "{framework:?} {allocator}");
            }
        }
    }
}

/// A dropout strikes within the device's own planned round (sync mode
/// too), and a device that leaves the server frees it: nobody is later
/// than planned, and some are earlier.
#[test]
fn dropouts_fall_in_the_planned_round_and_free_the_server() {
    for mode in [RoundMode::Deadline, RoundMode::Sync] {
        let mut s = crowded(ServerDisciplineKind::Fifo, "exact");
        s.run.mode = mode;
        s.run.rounds = 12;
        s.availability.dropout_probability = 0.5;
        let sink = run(&s);
        let mut dropped = 0;
        let mut earlier = 0;
        for r in &sink.device_rounds {
            match r.outcome {
                Outcome::Dropped => {
                    dropped += 1;
                    assert!(r.time_s <= r.predicted_time_s, "{mode:?}: dropout after the planned finish: {r:?}");
                }
                Outcome::Finished => {
                    assert!(r.time_s <= r.predicted_time_s, "{mode:?}: later than planned: {r:?}");
                    earlier += usize::from(r.time_s < r.predicted_time_s);
                }
                o => panic!("{mode:?}: unexpected outcome {o:?}"),
            }
        }
        assert!(dropped > 5, "{mode:?}: {dropped} dropouts");
        assert!(earlier > 0, "{mode:?}: no device gained from a freed server");
    }
}

/// A device cut while its job still waits in the FIFO queue was served for
/// nothing: at most one job per round is in service at the cut.
#[test]
fn a_job_queued_at_the_cut_has_no_service_time() {
    let mut s = crowded(ServerDisciplineKind::Fifo, "fixed");
    s.run.iterations = 1;
    s.run.deadline_s = 3.0;
    let sink = run(&s);
    let mut queued = 0;
    for round in 0..s.run.rounds {
        let cut: Vec<_> =
            sink.device_rounds.iter().filter(|r| r.round == round && r.cut_phase == Some("server")).collect();
        assert!(cut.iter().filter(|r| r.t_srv_s > 0.0).count() <= 1, "round {round}: {cut:?}");
        queued += cut.iter().filter(|r| r.t_srv_s == 0.0 && r.t_wait_s > 0.0).count();
    }
    assert!(queued > 0, "no job was still queued at a cut");
}

/// Planned against realized: with no failure and an ideal server the two
/// agree; when every device drops out nothing is gained and all the energy
/// spent is lost.
#[test]
fn realized_objective_counts_finished_utility_against_all_energy() {
    let mut s = crowded(ServerDisciplineKind::Ideal, "exact");
    let sink = run(&s);
    assert!(sink.rounds.iter().all(|r| r.finished > 2));
    for r in &sink.rounds {
        assert!((r.realized_objective_j - r.objective_j).abs() <= 1e-6 * r.objective_j.abs().max(1.0), "{r:?}");
        assert!((r.realized_efficiency_per_j - r.efficiency_per_j).abs() <= 1e-6 * r.efficiency_per_j, "{r:?}");
    }
    s.availability.dropout_probability = 1.0;
    let sink = run(&s);
    for r in &sink.rounds {
        assert_eq!(r.finished, 0);
        assert_eq!(r.realized_objective_j, -r.energy_j, "{r:?}");
        assert_eq!(r.realized_efficiency_per_j, 0.0);
    }
}

/// A device that fails while its job waits at the server or is in service
/// gives its place up at once (the discipline's cancel). With one
/// iteration, only a failure before or at the server can let others finish
/// before their predicted time: in rounds whose failures all came later,
/// everyone finishes exactly as predicted; in rounds whose failures were
/// all at the server or later, someone finishes earlier.
#[test]
fn a_failed_device_leaves_the_server_queue() {
    for discipline in [ServerDisciplineKind::Fifo, ServerDisciplineKind::ProcessorSharing] {
        let mut s = crowded(discipline, "exact");
        s.run.iterations = 1;
        s.run.rounds = 40;
        s.run.deadline_s = 15.0;
        s.availability.dropout_probability = 0.3;
        let sink = run(&s);
        let mut gained = 0;
        for round in 0..s.run.rounds {
            let rows: Vec<_> = sink.device_rounds.iter().filter(|r| r.round == round).collect();
            let cut = |phases: &[&str]| {
                rows.iter().any(|r| r.outcome == Outcome::Dropped && phases.contains(&r.cut_phase.unwrap_or("")))
            };
            let before_server = cut(&["forward", "uplink"]);
            let at_server = cut(&["server"]);
            let finished = rows.iter().filter(|r| r.outcome == Outcome::Finished);
            if !before_server && !at_server {
                for r in finished {
                    assert_eq!(r.time_s, r.predicted_time_s, "{discipline:?} round {round}: {r:?}");
                }
            } else if !before_server && at_server {
                gained += usize::from(finished.into_iter().any(|r| r.time_s < r.predicted_time_s));
            }
        }
        assert!(gained > 0, "{discipline:?}: no device gained from a job that left the server");
    }
}

/// `training.local_epochs`: each device runs local_epochs x ceil(samples /
/// batch) iterations, and the simulation charges exactly that many: its
/// computation and uplink time are that multiple of one iteration's (same
/// seed, same devices, same RBs), and the allocator's problem says so.
#[test]
fn local_epochs_charge_each_device_its_own_iterations() {
    let base = || {
        let mut s = Scenario::default();
        s.run.rounds = 3;
        s.run.mode = RoundMode::Sync;
        s.devices.count = 40;
        s.run.candidates = 20;
        s.network.rb_count = 8;
        s.model.batch = 64;
        s.devices.samples_min = 50;
        s.devices.samples_max = 600;
        s.server.discipline = ServerDisciplineKind::Ideal;
        s
    };
    let one = run(&base());
    let mut s = base();
    s.training.local_epochs = 2;
    let iters: std::cell::RefCell<Vec<(u32, u32, u32)>> = Default::default();
    let mut sink = VecSink::default();
    let hook: sflam_core::engine::DecisionHook = Box::new(|_, p, _| {
        for c in &p.candidates {
            iters.borrow_mut().push((p.round, c.device.0, p.iterations_of(c)));
        }
        Ok(())
    });
    sflam_core::run::simulate(&s, &mut sink, None, Some(hook), None).unwrap();
    let want = |d: u32| 2 * sink.devices[d as usize].samples.div_ceil(64) as u32;
    let mut distinct = std::collections::BTreeSet::new();
    for &(_, d, n) in iters.borrow().iter() {
        assert_eq!(n, want(d), "device {d}");
        distinct.insert(n);
    }
    assert!(distinct.len() > 3, "devices should differ in iterations: {distinct:?}");
    let mut compared = 0;
    for r in &sink.device_rounds {
        let Some(a) = one.device_rounds.iter().find(|a| a.round == r.round && a.device == r.device) else { continue };
        let n = want(r.device) as f64;
        // Integer nanoseconds per phase, so the multiple is exact.
        assert!((r.t_cmp_s - n * a.t_cmp_s).abs() < 1e-9, "{r:?} vs {a:?}");
        assert!((r.t_com_s - n * a.t_com_s).abs() < 1e-9, "{r:?} vs {a:?}");
        assert!((r.energy_cmp_j - n * a.energy_cmp_j).abs() <= 1e-9 * r.energy_cmp_j);
        compared += 1;
    }
    assert!(compared > 20, "{compared}");
}

/// Sync rounds with more candidates than RBs: a candidate that cannot
/// meet `deadline_s` (its computation alone takes longer) is not left out
/// as infeasible; it competes for the RB by value and, holding most of the
/// data, wins it although its channel is the worst.
#[test]
fn sync_rounds_exclude_nobody_as_infeasible() {
    for allocator in ["exact", "bcd", "ep", "nq"] {
        let mut p = queued_problem(5, 3, 1, 1);
        {
            let m = p.round_model.as_mut().unwrap();
            m.sync = true;
            m.discipline = ServerDisciplineKind::Ideal;
        }
        p.weight_j = 1e4;
        let slow = 1;
        for (i, c) in p.candidates.iter_mut().enumerate() {
            c.data_share = if i == slow { 0.8 } else { 0.1 };
            c.gains = vec![if i == slow { 2e-12 } else { 1e-11 }];
        }
        p.candidates[slow].fixed_time_s = 1.5 * p.deadline_s;
        p.candidates[slow].uplink_time_s = -0.5 * p.deadline_s;
        let cfg = AllocatorConfig::default();
        let mut rng = sflam_core::sim::rng::stream(1, "allocator", 0);
        let d = allocator_from(allocator, &cfg).unwrap().decide(&p, &mut rng);
        assert_eq!(d.assignments.len(), 1, "{allocator}");
        assert_eq!(d.assignments[0].candidate, slow, "{allocator}: {d:?}");
        assert!(d.budgets_s.iter().any(|b| b.0 == slow), "{allocator}");
        assert!(d.excluded.iter().all(|e| e.2 == Exclusion::NoResourceBlock), "{allocator}: {:?}", d.excluded);
    }
}
