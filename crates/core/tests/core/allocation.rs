//! Allocators: invariants every decision must hold.

use sflam_core::config::Scenario;
use sflam_core::trace::VecSink;

#[test]
fn fixed_allocator_uses_each_rb_once_at_p_max() {
    let mut s = Scenario::default();
    s.run.rounds = 3;
    s.devices.count = 40;
    s.run.candidates = 30;
    s.network.rb_count = 7;
    let mut sink = VecSink::default();
    sflam_core::run::simulate(&s, &mut sink, None, None, None).unwrap();
    for r in 0..3 {
        let rows: Vec<_> = sink.device_rounds.iter().filter(|d| d.round == r).collect();
        assert_eq!(rows.len(), 7);
        let mut rbs: Vec<u32> = rows.iter().map(|d| d.rb).collect();
        rbs.sort();
        rbs.dedup();
        assert_eq!(rbs.len(), 7);
        for d in rows {
            assert_eq!(d.bits, 8);
            let pmax = sink.devices[d.device as usize].p_max_w;
            assert_eq!(d.power_w, pmax);
        }
    }
}

use rand::{Rng, SeedableRng};
use sflam_core::alloc::{Decision, Problem, allocator_from, allocator_names};
use sflam_core::config::AllocatorConfig;

fn random_problem(seed: u64, n: usize, k: usize) -> Problem {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let deadline = 1.0;
    let candidates = (0..n)
        .map(|i| {
            let fixed = rng.random_range(0.3..0.8);
            crate::random_candidate(&mut rng, i, n, k, -13.0..-11.0, deadline, fixed)
        })
        .collect();
    Problem {
        round: 0,
        rb_count: k,
        rb_bandwidth_hz: 1e6,
        noise_w: 1e-13,
        deadline_s: deadline,
        iterations: 1,
        weight_j: 4.0 * n as f64,
        bits_min: 4,
        bits_max: 6,
        utility_table: None,
        candidates,
        round_model: None,
    }
}

fn decide(name: &str, p: &Problem) -> Decision {
    let mut a = allocator_from(name, &AllocatorConfig::default()).unwrap();
    let mut rng = sflam_core::sim::rng::stream(3, "allocator", 0);
    let d = a.decide(p, &mut rng);
    d.check(p).unwrap();
    d
}

/// Best value of candidate i on RB j over bits and a power grid of `grid`
/// points in (0, p_max] — no closed form used.
fn brute_pair(p: &Problem, i: usize, j: usize, grid: usize) -> Option<f64> {
    let c = &p.candidates[i];
    let mut best: Option<f64> = None;
    for b in p.bits_min..=p.bits_max {
        let u = (c.activation_elements * (b as u64 + 1) + 64) as f64;
        for g in 1..=grid {
            let pw = c.p_max_w * g as f64 / grid as f64;
            let r = p.rb_bandwidth_hz * (1.0 + pw * c.gains[j] / p.noise_w).log2();
            let t = u / r;
            if t <= c.uplink_time_s - 2e-9 {
                // The table when the problem has one, else the assumed curve,
                // written out here apart from `Problem::utility`.
                let u_b = match &p.utility_table {
                    Some(t) => t[(b - p.bits_min) as usize],
                    None => 1.0 - 0.5f64.powi((b - p.bits_min + 1) as i32),
                };
                let v = p.weight_j * c.data_share * u_b - c.compute_energy_j - pw * t;
                best = Some(best.map_or(v, |x: f64| x.max(v)));
                break; // larger powers on this grid only cost more
            }
        }
    }
    best
}

/// Max over all partial matchings (each device at most one RB, each RB at
/// most one device) of the sum of pair values; unmatched devices count 0.
fn brute_matching(vals: &[Vec<Option<f64>>], i: usize, used: &mut Vec<bool>) -> f64 {
    if i == vals.len() {
        return 0.0;
    }
    let mut best = brute_matching(vals, i + 1, used);
    for j in 0..used.len() {
        if let (false, Some(v)) = (used[j], vals[i][j]) {
            used[j] = true;
            best = best.max(v + brute_matching(vals, i + 1, used));
            used[j] = false;
        }
    }
    best
}

/// `exact`'s decision on `p`, checked against brute force over bits, a
/// power grid and every matching.
fn exact_checked_by_brute_force(p: &Problem, seed: u64) -> Decision {
    let grid = 20_000;
    let (n, k) = (p.candidates.len(), p.rb_count);
    let vals: Vec<Vec<Option<f64>>> = (0..n).map(|i| (0..k).map(|j| brute_pair(p, i, j, grid)).collect()).collect();
    let brute = brute_matching(&vals, 0, &mut vec![false; k]);
    let exact = decide("exact", p);
    // The grid can only be worse than the true optimum, by at most one
    // grid step of power held for the whole uplink window.
    let slack: f64 = p.candidates.iter().map(|c| c.p_max_w / grid as f64 * c.uplink_time_s).sum();
    assert!(exact.objective_j >= brute - 1e-9, "seed {seed}: exact {} < brute force {brute}", exact.objective_j);
    assert!(
        exact.objective_j <= brute + slack,
        "seed {seed}: exact {} > brute force {brute} + {slack}",
        exact.objective_j
    );
    exact
}

#[test]
fn exact_equals_brute_force_and_bcd_never_beats_it() {
    let mut exact_positive = 0;
    for seed in 0..40 {
        let (n, k) = (2 + seed as usize % 4, 1 + seed as usize % 3);
        let p = random_problem(seed, n, k);
        let exact = exact_checked_by_brute_force(&p, seed);
        if exact.objective_j > 0.0 {
            exact_positive += 1;
        }
        // Every allocator over the same action space (`fixed` ignores the
        // deadline; `nq` sends fp32, outside bits_min..=bits_max).
        for name in ["bcd", "ep", "rb"] {
            let d = decide(name, &p);
            assert!(
                d.objective_j <= exact.objective_j + 1e-9,
                "seed {seed}: {name} {} beats exact {}",
                d.objective_j,
                exact.objective_j
            );
        }
    }
    assert!(exact_positive > 20, "instances too easy or too hard: {exact_positive}");
}

#[test]
fn every_allocation_meets_deadline_and_power_limits() {
    for seed in 100..130 {
        let p = random_problem(seed, 12, 5);
        for name in allocator_names() {
            let d = decide(name, &p);
            for a in &d.assignments {
                let c = &p.candidates[a.candidate];
                assert!(a.power_w > 0.0 && a.power_w <= c.p_max_w, "{name}: power {}", a.power_w);
                if *name != "fixed" {
                    assert!(a.time_s <= p.deadline_s, "{name}: time {} > {}", a.time_s, p.deadline_s);
                }
                match *name {
                    "ep" => assert_eq!(a.power_w, c.p_max_w),
                    "nq" => assert_eq!(a.bits, 32),
                    _ => assert!((p.bits_min..=p.bits_max).contains(&a.bits) || *name == "fixed"),
                }
            }
            assert_eq!(d.assignments.len() + d.excluded.len(), p.candidates.len(), "{name}");
        }
    }
}

#[test]
fn bcd_reports_iterations_and_stays_close_to_exact() {
    let mut gaps = Vec::new();
    for seed in 200..220 {
        let p = random_problem(seed, 10, 4);
        let e = decide("exact", &p).objective_j;
        let b = decide("bcd", &p);
        assert!(b.iterations >= 1);
        if e > 0.0 {
            gaps.push((e - b.objective_j) / e);
        }
    }
    assert!(!gaps.is_empty());
    assert!(gaps.iter().all(|g| *g >= -1e-12));
}

#[test]
fn scheduled_devices_finish_in_the_simulation() {
    // With the paper's ideal server, every device an optimizing allocator
    // schedules must finish by the deadline in the event simulation too.
    for name in ["exact", "bcd", "ep", "rb", "nq"] {
        let mut s = Scenario::default();
        s.run.rounds = 4;
        s.run.deadline_s = 20.0;
        s.run.iterations = 2;
        s.devices.count = 60;
        s.run.candidates = 40;
        s.network.downlink = true;
        s.network.model_upload = true;
        s.server.discipline = sflam_core::config::ServerDisciplineKind::Ideal;
        s.allocator.name = name.parse().unwrap();
        let mut sink = VecSink::default();
        sflam_core::run::simulate(&s, &mut sink, None, None, None).unwrap();
        assert!(!sink.device_rounds.is_empty(), "{name} scheduled nobody");
        for r in &sink.device_rounds {
            assert_eq!(
                r.outcome,
                sflam_core::trace::Outcome::Finished,
                "{name}: device {} round {}: {r:?}",
                r.device,
                r.round
            );
            assert!(r.time_s <= s.run.deadline_s);
            assert!(
                (r.time_s - r.predicted_time_s).abs() < 1e-6,
                "{name}: predicted {} simulated {}",
                r.predicted_time_s,
                r.time_s
            );
        }
    }
}

#[test]
fn virtual_vertex_matching_equals_rectangular_assignment() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    for _ in 0..50 {
        let (n, k) = (rng.random_range(1..40), rng.random_range(1..7));
        let w: Vec<f64> = (0..n * k).map(|_| rng.random_range(-1.0..5.0)).collect();
        let total = |v: &[(usize, usize)]| v.iter().map(|&(r, c)| w[r * k + c]).sum::<f64>();
        let a = sflam_core::alloc::max_weight(n, k, &w);
        let b = sflam_core::alloc::min_weight_perfect_with_virtual(n, k, &w);
        assert!((total(&a) - total(&b)).abs() < 1e-9);
    }
}

/// With no weight on utility every feasible device costs more than it is
/// worth: `bcd` says so as `exact` does, and keeps `infeasible` for the
/// devices no RB can carry in time.
#[test]
fn bcd_and_exact_label_unworthy_candidates_alike() {
    use sflam_core::alloc::Exclusion;
    let mut p = random_problem(11, 12, 4);
    p.weight_j = 0.0;
    // Two candidates with no time left for any upload.
    for c in &mut p.candidates[..2] {
        c.uplink_time_s = -0.1;
    }
    let cfg = AllocatorConfig::default();
    let mut rng = sflam_core::sim::rng::stream(1, "allocator", 0);
    for name in ["exact", "bcd"] {
        let d = allocator_from(name, &cfg).unwrap().decide(&p, &mut rng);
        assert!(d.assignments.is_empty(), "{name}");
        for (i, _, why) in &d.excluded {
            let want = if *i < 2 { Exclusion::Infeasible } else { Exclusion::NotWorthwhile };
            assert_eq!(*why, want, "{name}: candidate {i}");
        }
        assert_eq!(d.excluded.len(), 12, "{name}");
    }
}

/// With a measured utility table (here one where 5 bits already buy
/// nearly everything, unlike the assumed curve), `exact` still equals
/// brute force, and no allocator over the same actions beats it; the
/// table changes the bits chosen.
#[test]
fn exact_equals_brute_force_with_a_table_utility() {
    let mut fewer_bits = 0;
    for seed in 0..24 {
        let (n, k) = (2 + seed as usize % 4, 1 + seed as usize % 3);
        let mut p = random_problem(seed, n, k);
        let assumed = decide("exact", &p);
        p.utility_table = Some(vec![0.6, 0.98, 1.0]);
        let exact = exact_checked_by_brute_force(&p, seed);
        for name in ["bcd", "ep", "rb"] {
            assert!(decide(name, &p).objective_j <= exact.objective_j + 1e-9, "seed {seed}: {name}");
        }
        let mean =
            |d: &Decision| d.assignments.iter().map(|a| a.bits as f64).sum::<f64>() / d.assignments.len().max(1) as f64;
        if mean(&exact) < mean(&assumed) {
            fewer_bits += 1;
        }
    }
    assert!(fewer_bits > 0, "a flatter utility never lowered the bits chosen");
}

/// A problem's table is checked like a file's: one value per width, in
/// (0, 1], not falling as bits grow.
#[test]
fn a_bad_utility_table_in_a_problem_is_refused() {
    let mut p = random_problem(1, 3, 2);
    for (t, words) in [
        (vec![0.5, 0.9], "2 values"),
        (vec![0.5, 0.4, 1.0], "must not fall"),
        (vec![0.0, 0.5, 1.0], "(0, 1]"),
        (vec![0.5, 0.9, 1.5], "(0, 1]"),
        (vec![0.5, f64::NAN, 1.0], "(0, 1]"),
    ] {
        p.utility_table = Some(t.clone());
        let e = p.check().unwrap_err();
        assert!(e.contains("utility_table") && e.contains(words), "{t:?}: {e}");
    }
}

/// `bcd`'s history (Fig. 4 (a)-(c)): the start, then a power-and-bits and
/// a matching state per iteration; the objective after each matching never
/// falls (every block step keeps the point feasible and does not lower
/// it), and the last state is the decision.
#[test]
fn bcd_history_is_monotone_and_ends_at_the_decision() {
    use sflam_core::alloc::BcdBlock;
    for seed in 0..30 {
        let (n, k) = (3 + seed as usize % 5, 1 + seed as usize % 4);
        let p = random_problem(100 + seed, n, k);
        let d = decide("bcd", &p);
        let h = &d.history;
        assert_eq!(h[0].step, BcdBlock::Start);
        assert_eq!(h.len(), 1 + 2 * d.iterations as usize, "seed {seed}");
        for (i, pair) in h[1..].chunks(2).enumerate() {
            assert_eq!((pair[0].step, pair[1].step), (BcdBlock::PowerBits, BcdBlock::Matching));
            assert_eq!(pair[0].iteration, i as u32 + 1);
        }
        let matched: Vec<f64> = h.iter().filter(|s| s.step != BcdBlock::PowerBits).map(|s| s.objective_j).collect();
        assert!(matched.windows(2).all(|w| w[1] >= w[0] - 1e-9), "seed {seed}: {matched:?}");
        let last = h.last().unwrap();
        assert!((last.objective_j - d.objective_j).abs() < 1e-9, "seed {seed}");
        assert_eq!(last.scheduled as usize, d.assignments.len(), "seed {seed}");
        assert!(decide("exact", &p).history.is_empty());
    }
}
