//! Co-simulation: each framework's timing semantics in the event
//! simulation, and real training inside it on exactly the participants
//! that met the deadline.

use sflam::config::{Scenario, load_scenario_str};
use sflam::trace::{Outcome, VecSink};
use sflam::train::framework::RoundStats;
use sflam::train::{ModelState, Work, framework};
use std::path::Path;

fn scenario(extra: &str) -> Scenario {
    let text = format!(
        "[run]\nname = \"c\"\nseed = 5\nrounds = 3\nmode = \"sync\"\ndeadline_s = 1000.0\niterations = 2\n\
         candidates = 8\nthreads = 1\n[network]\nrb_count = 8\n[devices]\ncount = 12\n[server]\ndiscipline = \"ideal\"\n\
         [model]\ntiming = \"vit-b32\"\nbatch = 16\n[allocator]\nname = \"exact\"\n{extra}"
    );
    load_scenario_str(&text, Path::new("<test>"), &[]).unwrap()
}

/// A co-simulated run replayed outside the simulation: each round of the
/// framework on exactly the participants that finished it, with their
/// bits; per round, its stats and the global model's test accuracy after.
fn replay(s: &Scenario, sink: &VecSink) -> Vec<(RoundStats, f64)> {
    let t = sflam::train::trainer_of(s).unwrap();
    let fw = framework(s.training.framework);
    let mut state = ModelState { global: t.initial_params(), local: Default::default() };
    let mut out = Vec::new();
    for r in &sink.rounds {
        let mut work: Vec<Work> = sink
            .device_rounds
            .iter()
            .filter(|d| d.round == r.round && d.outcome == Outcome::Finished)
            .map(|d| Work { device: d.device, bits: d.bits })
            .collect();
        work.sort_by_key(|w| w.device);
        let stats = fw.round(&t, &mut state, r.round, &work).unwrap();
        out.push((stats, fw.evaluate(&t, &state).unwrap().accuracy));
    }
    out
}

/// Round `round`'s `device_rounds` rows carry each finished device's own
/// update report, as `stats` (a replay of the round) has it, and nothing
/// for the others.
fn assert_device_reports(sink: &VecSink, round: u32, stats: &RoundStats) {
    let rows: Vec<_> = sink.device_rounds.iter().filter(|d| d.round == round).collect();
    for d in &rows {
        let at = stats.devices.iter().position(|&dev| dev == d.device);
        if d.outcome == Outcome::Finished {
            let i = at.unwrap_or_else(|| panic!("round {round}: finished device {} did not train", d.device));
            assert_eq!(d.train_loss, Some(stats.losses[i]), "round {round}, device {}", d.device);
            assert_eq!(d.loss_scale_halvings, Some(stats.loss_scale_halvings[i]), "round {round}, device {}", d.device);
        } else {
            assert_eq!(at, None, "round {round}: device {} trained without finishing", d.device);
            assert_eq!((d.train_loss, d.loss_scale_halvings), (None, None), "round {round}, device {}", d.device);
        }
    }
    assert_eq!(rows.iter().filter(|d| d.outcome == Outcome::Finished).count(), stats.devices.len(), "round {round}");
}

fn run(s: &Scenario) -> VecSink {
    let mut sink = VecSink::default();
    sflam::run::simulate(s, &mut sink, None, None).unwrap();
    sink
}

#[test]
fn sl_relays_one_device_at_a_time() {
    let sink = run(&scenario("[training]\nframework = \"sl\"\n"));
    for r in 0..3 {
        let rows: Vec<_> = sink.device_rounds.iter().filter(|d| d.round == r).collect();
        assert!(rows.len() > 1);
        let busy: f64 = rows.iter().map(|d| d.t_cmp_s + d.t_com_s + d.t_srv_s + d.t_wait_s + d.t_down_s).sum();
        let last = rows.iter().map(|d| d.time_s).fold(0.0, f64::max);
        assert!((last - busy).abs() <= 1e-6 * busy, "round {r}: last done at {last} s, busy {busy} s in all");
        // fp32 activations.
        assert!(rows.iter().all(|d| d.bits == 32));
    }
    // No training: no loss scale to count, no device's loss.
    assert!(sink.rounds.iter().all(|r| r.loss_scale_halvings.is_none()));
    assert!(sink.device_rounds.iter().all(|d| d.train_loss.is_none() && d.loss_scale_halvings.is_none()));
}

#[test]
fn parallel_frameworks_overlap_and_fl_ll_stay_on_the_device() {
    let sfl = run(&scenario("[training]\nframework = \"sfl\"\n"));
    let rows: Vec<_> = sfl.device_rounds.iter().filter(|d| d.round == 0).collect();
    let busy: f64 = rows.iter().map(|d| d.t_cmp_s + d.t_com_s + d.t_srv_s + d.t_wait_s + d.t_down_s).sum();
    let last = rows.iter().map(|d| d.time_s).fold(0.0, f64::max);
    assert!(last < 0.5 * busy, "parallel: {last} s vs {busy} s of work");
    assert!(rows.iter().all(|d| d.bits == 32));

    let w = sflam::workload::Workload::of(sflam::workload::vit_config("vit-b32").unwrap());
    let fl = run(&scenario("[training]\nframework = \"fl\"\n"));
    for d in &fl.device_rounds {
        assert_eq!(d.t_srv_s, 0.0);
        // The only upload: the whole fp32 model once, at the allocated rate.
        let model_bits = 32.0 * (w.device_params + w.server_params) as f64;
        assert!(
            (d.t_com_s - model_bits / d.rate_bps).abs() < 1e-6 * d.t_com_s,
            "{} vs {}",
            d.t_com_s,
            model_bits / d.rate_bps
        );
    }
    // fl computes the whole model on the device: far more device time than sfl.
    let cmp = |s: &VecSink| s.device_rounds.iter().map(|d| d.t_cmp_s).sum::<f64>() / s.device_rounds.len() as f64;
    assert!(cmp(&fl) > 50.0 * cmp(&sfl));

    let ll = run(&scenario("[training]\nframework = \"ll\"\n"));
    assert!(ll.device_rounds.iter().all(|d| d.t_com_s == 0.0 && d.energy_com_j == 0.0 && d.t_srv_s == 0.0));
}

#[test]
fn training_in_the_loop_uses_exactly_the_finished_participants() {
    // A deadline that cuts some devices: their updates must not count.
    let mut s = scenario(
        "[training]\nenabled = true\ndataset = \"synthetic\"\nmin_samples = 20\nbatch = 16\neval_samples = 200\n\
         optimizer = \"adam\"\nlr = 0.002\n",
    );
    // `fixed` schedules at random, at p_max: some devices miss the deadline.
    s.run.mode = sflam::config::RoundMode::Deadline;
    s.run.deadline_s = 4.5;
    s.allocator.name = "fixed".parse().unwrap();
    let mut sink = VecSink::default();
    let summary = sflam::run::simulate(&s, &mut sink, None, None).unwrap();
    let fin = sink.device_rounds.iter().filter(|d| d.outcome == Outcome::Finished).count();
    let late = sink.device_rounds.iter().filter(|d| d.outcome == Outcome::Straggler).count();
    assert!(fin > 0 && late > 0, "want both finished ({fin}) and stragglers ({late})");
    assert!(sink.rounds.iter().all(|r| r.accuracy.is_some() && r.loss.is_some() == (r.finished > 0)));
    // The devices trace carries each device's class counts.
    assert!(
        sink.devices
            .iter()
            .all(|d| d.class_counts.len() == 10 && d.class_counts.iter().sum::<u32>() as u64 == d.samples)
    );

    // Replay outside the simulation with the finished devices and their bits.
    let t = sflam::train::trainer_of(&s).unwrap();
    // The summary's participant-steps are the trainer's iterations of exactly those devices.
    let steps: u64 = sink
        .device_rounds
        .iter()
        .filter(|d| d.outcome == Outcome::Finished)
        .map(|d| t.iterations_of(d.device) as u64)
        .sum();
    let training = summary.training.expect("a training run reports its throughput");
    assert_eq!(training.steps, steps);
    assert!(training.wall_s > 0.0 && training.steps_per_s > 0.0);
    for (r, (stats, accuracy)) in sink.rounds.iter().zip(replay(&s, &sink)) {
        assert_eq!(Some(accuracy), r.accuracy, "round {}", r.round);
        assert_eq!(r.loss, stats.learned(None).loss(), "round {}", r.round);
        // f32 scales nothing: no step is taken again.
        assert_eq!(r.loss_scale_halvings, Some(stats.learned(None).loss_scale_halvings()));
        assert_eq!(stats.learned(None).loss_scale_halvings(), 0);
        // Each finished device's row carries its own update's loss; the
        // stragglers' carry none.
        assert_device_reports(&sink, r.round, &stats);
    }
    // And the same run again is identical (seeded, thread-count independent).
    let mut s2 = s.clone();
    s2.run.threads = 2;
    let again = run(&s2);
    let acc = |k: &VecSink| k.rounds.iter().map(|r| (r.loss, r.accuracy)).collect::<Vec<_>>();
    assert_eq!(acc(&sink), acc(&again));
}

#[test]
fn fashion_mnist_from_the_debian_package() {
    // CI installs dataset-fashion-mnist; elsewhere the test says so and stops.
    let dir = Path::new(sflam::train::data::FASHION_MNIST_DIR);
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        eprintln!("skipped: {} not installed (apt-get install dataset-fashion-mnist)", dir.display());
        return;
    }
    let (tr, te) = sflam::train::data::load(sflam::train::data::DatasetKind::FashionMnist, "", 0).unwrap();
    assert_eq!((tr.len(), te.len(), tr.size, tr.channels), (60_000, 10_000, 28, 1));
    // Fashion-MNIST is balanced: 6,000 and 1,000 images per class.
    let all: Vec<u32> = (0..60_000).collect();
    assert_eq!(tr.class_counts(&all), vec![6000; 10]);
    let all: Vec<u32> = (0..10_000).collect();
    assert_eq!(te.class_counts(&all), vec![1000; 10]);
}

#[test]
fn hierarchical_aggregation_edges_every_round_cloud_every_k() {
    // Three cells, the cloud aggregating after rounds 1 and 3: replayed by
    // hand from the traces (which devices finished where), each cell's
    // devices starting from its edge model, the cloud averaging the edge
    // models by their samples and every cell starting from it again.
    let mut s = scenario(
        "[training]\nenabled = true\ndataset = \"synthetic\"\nmin_samples = 20\nbatch = 16\neval_samples = 200\n\
         optimizer = \"adam\"\nlr = 0.002\n\
         [cells]\ncount = 3\ninter_site_m = 600.0\n[backhaul]\nenabled = true\ncloud_every = 2\n",
    );
    s.run.rounds = 4;
    s.run.candidates = 12;
    let sink = run(&s);
    assert!(sink.rounds.iter().all(|r| r.accuracy.is_some()));
    let cells: std::collections::BTreeSet<u32> = sink.device_rounds.iter().map(|d| d.cell).collect();
    assert!(cells.len() > 1, "devices trained in several cells");

    let t = sflam::train::trainer_of(&s).unwrap();
    let fw = framework(s.training.framework);
    let mut global = t.initial_params();
    let mut edges: std::collections::BTreeMap<u32, (sflam::train::Params, f64)> = Default::default();
    for r in &sink.rounds {
        for &c in &cells {
            let work: Vec<Work> = sink
                .device_rounds
                .iter()
                .filter(|d| d.round == r.round && d.cell == c && d.outcome == Outcome::Finished)
                .map(|d| Work { device: d.device, bits: d.bits })
                .collect();
            if work.is_empty() {
                continue;
            }
            let start = edges.get(&c).map_or_else(|| global.clone(), |e| e.0.clone());
            let mut st = ModelState { global: start, local: Default::default() };
            let stats = fw.round(&t, &mut st, r.round, &work).unwrap();
            // Each device's row carries its update's loss in its cell's round.
            for (i, &dev) in stats.devices.iter().enumerate() {
                let row = sink.device_rounds.iter().find(|d| d.round == r.round && d.device == dev).unwrap();
                assert_eq!(row.train_loss, Some(stats.losses[i]), "round {}, device {dev}", r.round);
            }
            let samples: f64 = work.iter().map(|w| t.samples(w.device) as f64).sum();
            edges.insert(c, (st.global, samples));
        }
        if (r.round + 1) % 2 == 0 {
            let avg = |half: fn(&sflam::train::Params) -> &[f32]| {
                sflam::train::params::weighted_average(edges.values().map(|(p, w)| (*w, half(p)))).unwrap()
            };
            global = sflam::train::Params { device: avg(|p| &p.device), server: avg(|p| &p.server) };
            edges.clear();
        }
        let acc = t.evaluate(&global).unwrap().accuracy;
        assert_eq!(Some(acc), r.accuracy, "round {}", r.round);
        assert!(r.backhaul_s > 0.0 || (r.round + 1) % 2 != 0);
    }
    // Between cloud rounds the global model does not move.
    assert_eq!(sink.rounds[0].accuracy, Some(t.evaluate(&t.initial_params()).unwrap().accuracy));
}

/// f16 with a first loss scale of 2^24 (which overflows f16's gradients
/// here): every round that trained counts the steps it took again at half
/// the scale, and each finished device its own; the replay outside the
/// simulation counts the same, and a round nobody finished counts none.
#[test]
fn f16_steps_taken_again_are_counted_in_the_rounds_and_device_rounds_traces() {
    let s = scenario(
        "[training]\nenabled = true\ndataset = \"synthetic\"\nmin_samples = 20\nbatch = 16\neval_samples = 100\n\
         eval_every = 3\nprecision = \"f16\"\nloss_scale_log2 = 24\n",
    );
    let sink = run(&s);
    for (r, (stats, _)) in sink.rounds.iter().zip(replay(&s, &sink)) {
        assert_eq!(r.loss_scale_halvings, Some(stats.learned(None).loss_scale_halvings()), "round {}", r.round);
        // Each participant's update starts at 2^24 and halves at least once.
        assert!(stats.loss_scale_halvings.iter().all(|&h| h >= 1), "round {}: {stats:?}", r.round);
        assert_eq!(stats.loss_scale_halvings.len(), r.finished as usize);
        // And each device's row, its own count.
        assert_device_reports(&sink, r.round, &stats);
    }
    assert!(sink.rounds.iter().any(|r| r.finished > 0));
}
