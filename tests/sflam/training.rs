//! The learning half: data readers, the Dirichlet split, split training
//! against a whole-model reference, aggregation, independence of copies,
//! thread-count independence, checkpoints and timm import.

use crate::backends::{max_abs_diff, params_diff};
use sflam::config::{FrameworkKind, Scenario, load_scenario_str};
use sflam::train::data::{DatasetKind, dirichlet_partition, load, synthetic};
use sflam::train::params::{to_flat, weighted_average};
use sflam::train::{ModelState, Trainer, Work, framework};
use std::io::Write;
use std::path::Path;

/// A small training scenario on synthetic data.
fn scenario(extra: &str) -> Scenario {
    let text = format!(
        "[run]\nname = \"t\"\nseed = 3\nrounds = 3\niterations = 2\nthreads = 1\n\
         [devices]\ncount = 8\n\
         [training]\ndataset = \"synthetic\"\nmodel = \"vit-tiny-28\"\nparticipants = 4\nbatch = 16\n\
         eval_samples = 200\nmin_samples = 20\nlr = 0.05\n{extra}"
    );
    load_scenario_str(&text, Path::new("<test>"), &[]).unwrap()
}

fn trainer(s: &Scenario) -> Trainer {
    sflam::train::trainer_of(s).unwrap()
}

#[test]
fn dirichlet_partition_covers_every_sample_once_with_the_minimum() {
    let (data, _) = synthetic(1, 60_000, 10);
    let mut rng = sflam::sim::rng::stream(1, "t", 0);
    // alpha = 0.1 over 1,000 devices: one pass, no rejection.
    let parts = dirichlet_partition(&data, 1000, 0.1, 10, &mut rng).unwrap();
    assert_eq!(parts.len(), 1000);
    assert!(parts.iter().all(|p| p.len() >= 10));
    let mut all: Vec<u32> = parts.concat();
    all.sort_unstable();
    assert_eq!(all, (0..60_000).collect::<Vec<u32>>());
    // Too many devices for the data: a clear error, not a hang.
    let err = dirichlet_partition(&data, 10_000, 0.1, 10, &mut rng).unwrap_err().to_string();
    assert!(err.contains("training.min_samples"), "{err}");
}

#[test]
fn dirichlet_shares_have_the_dirichlet_variance() {
    // Per class, device shares ~ Dir(alpha 1_N): Var = (1/N)(1 - 1/N)/(N alpha + 1).
    let (n, alpha) = (50usize, 0.5);
    let (data, _) = synthetic(2, 200_000, 10);
    let mut rng = sflam::sim::rng::stream(2, "t", 0);
    let mut var_sum = 0.0;
    let reps = 20;
    for _ in 0..reps {
        let parts = dirichlet_partition(&data, n, alpha, 0, &mut rng).unwrap();
        for c in 0..10 {
            let per: Vec<f64> = parts.iter().map(|p| data.class_counts(p)[c] as f64).collect();
            let tot: f64 = per.iter().sum();
            var_sum += per.iter().map(|x| (x / tot - 1.0 / n as f64).powi(2)).sum::<f64>() / n as f64;
        }
    }
    let got = var_sum / (reps * 10) as f64;
    let want = (1.0 / n as f64) * (1.0 - 1.0 / n as f64) / (n as f64 * alpha + 1.0);
    assert!((got / want - 1.0).abs() < 0.2, "variance {got} vs Dirichlet {want}");
}

fn write_gz(path: &Path, bytes: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap();
}

fn idx_images(n: usize, seed: u8) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..n * 784).map(|i| (i as u8).wrapping_mul(seed)));
    b
}

#[test]
fn fashion_mnist_idx_gzip_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for (split, n) in [("train", 5usize), ("t10k", 3)] {
        write_gz(&dir.path().join(format!("{split}-images-idx3-ubyte.gz")), &idx_images(n, 7));
        let mut l = vec![0, 0, 8, 1];
        l.extend_from_slice(&(n as u32).to_be_bytes());
        l.extend((0..n).map(|i| (i * 3 % 10) as u8));
        write_gz(&dir.path().join(format!("{split}-labels-idx1-ubyte.gz")), &l);
    }
    let (tr, te) = load(DatasetKind::FashionMnist, dir.path().to_str().unwrap(), 0).unwrap();
    assert_eq!((tr.len(), te.len(), tr.size, tr.channels), (5, 3, 28, 1));
    assert_eq!(tr.labels, vec![0, 3, 6, 9, 2]);
    assert_eq!(tr.pixels[..784 * 5], idx_images(5, 7)[16..]);
}

#[test]
fn missing_dataset_names_the_package() {
    let err = load(DatasetKind::FashionMnist, "/nonexistent/fmnist", 0).unwrap_err().to_string();
    assert!(err.contains("apt-get install dataset-fashion-mnist"), "{err}");
    let err = load(DatasetKind::Cifar10, "", 0).unwrap_err().to_string();
    assert!(err.contains("training.data_dir"), "{err}");
}

#[test]
fn cifar_binary_records_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |label: &[u8], px: u8| -> Vec<u8> {
        let mut r = label.to_vec();
        r.extend((0..3072).map(|i| px.wrapping_add((i / 1024) as u8)));
        r
    };
    for i in 1..=5 {
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), [rec(&[i], 10), rec(&[9], 20)].concat())
            .unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), rec(&[4], 30)).unwrap();
    let (tr, te) = load(DatasetKind::Cifar10, dir.path().to_str().unwrap(), 0).unwrap();
    assert_eq!((tr.len(), te.len(), tr.channels, tr.size, tr.classes), (10, 1, 3, 32, 10));
    assert_eq!(tr.labels, vec![1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    // Planes R, G, B in order: the first pixel of each plane is px + plane.
    assert_eq!([te.pixels[0], te.pixels[1024], te.pixels[2048]], [30, 31, 32]);
    // CIFAR-100: (coarse, fine), the fine label is the class.
    std::fs::write(dir.path().join("train.bin"), [rec(&[3, 77], 0), rec(&[1, 5], 0)].concat()).unwrap();
    std::fs::write(dir.path().join("test.bin"), rec(&[0, 99], 0)).unwrap();
    let (tr, te) = load(DatasetKind::Cifar100, dir.path().to_str().unwrap(), 0).unwrap();
    assert_eq!((tr.labels.clone(), te.labels.clone(), tr.classes), (vec![77, 5], vec![99], 100));
    // A truncated file is an error naming it.
    std::fs::write(dir.path().join("test.bin"), &rec(&[0, 1], 0)[..100]).unwrap();
    let err = load(DatasetKind::Cifar100, dir.path().to_str().unwrap(), 0).unwrap_err().to_string();
    assert!(err.contains("test.bin"), "{err}");
    // An empty test file: refused (no accuracy of 0.0 from no images).
    std::fs::write(dir.path().join("test.bin"), b"").unwrap();
    let err = load(DatasetKind::Cifar100, dir.path().to_str().unwrap(), 0).unwrap_err();
    assert!(err.exit_code() == 2 && err.to_string().contains("test.bin hold no images"), "{err}");
}

#[test]
fn split_fp32_update_equals_the_whole_model_update() {
    // The cut-layer gradient handed back and pushed through the device
    // side (straight-through at fp32) must reproduce plain backprop of the
    // joined model: the independent reference here is Burn's autodiff of
    // the whole model.
    let s = scenario("momentum = 0.0\n");
    let t = trainer(&s);
    let start = t.initial_params();
    let split = t.split_update(&start, 2, 0, None).unwrap();
    let whole = t.whole_update(&start, 2, 0).unwrap();
    let diff = max_abs_diff;
    assert!(diff(&split.params.device, &whole.params.device) < 1e-5);
    assert!(diff(&split.params.server, &whole.params.server) < 1e-5);
    assert!((split.loss - whole.loss).abs() < 1e-5);
    // And the update moved the weights.
    assert!(diff(&split.params.device, &start.device) > 1e-4);
}

#[test]
fn quantized_update_sends_exactly_the_payload_and_differs_from_fp32() {
    let s = scenario("");
    let t = trainer(&s);
    let start = t.initial_params();
    let q = t.split_update(&start, 1, 0, Some(4)).unwrap();
    let f = t.split_update(&start, 1, 0, None).unwrap();
    // 2 iterations x batch 16 x 49 tokens x 64 dims.
    let d = 16 * 49 * 64u64;
    assert_eq!(q.wire_bytes, 2 * sflam::quant::wire_bytes(sflam::quant::payload_bits(d, 4)));
    assert_eq!(f.wire_bytes, 2 * d * 4);
    assert_ne!(q.params, f.params);
}

#[test]
fn fedavg_is_the_data_weighted_mean_of_independent_updates() {
    let s = scenario("");
    let t = trainer(&s);
    let start = t.initial_params();
    let mut state = ModelState { global: start.clone(), local: Default::default() };
    let work = [Work { device: 0, bits: 8 }, Work { device: 5, bits: 6 }];
    framework(FrameworkKind::Sflam).round(&t, &mut state, 0, &work).unwrap();
    // Each participant alone, from the same start: no copy aliases another.
    let u0 = t.split_update(&start, 0, 0, Some(8)).unwrap();
    let u5 = t.split_update(&start, 5, 0, Some(6)).unwrap();
    let (w0, w5) = (t.samples(0) as f64, t.samples(5) as f64);
    assert_ne!(w0, w5, "pick devices with different data sizes");
    let want = weighted_average([(w0, &u0.params.server[..]), (w5, &u5.params.server[..])]).unwrap();
    assert_eq!(state.global.server, want);
    let want = weighted_average([(w0, &u0.params.device[..]), (w5, &u5.params.device[..])]).unwrap();
    assert_eq!(state.global.device, want);
    assert_ne!(state.global, start);
}

#[test]
fn no_participant_shares_state_with_another() {
    // Training device 0's copy leaves device 3's result untouched, whatever
    // ran before; the starting model is never written.
    let s = scenario("");
    let t = trainer(&s);
    let start = t.initial_params();
    let before = start.clone();
    let alone = t.split_update(&start, 3, 1, Some(8)).unwrap();
    let _ = t.split_update(&start, 0, 1, Some(8)).unwrap();
    let after = t.split_update(&start, 3, 1, Some(8)).unwrap();
    assert_eq!(alone.params, after.params);
    assert_eq!(start, before);
    // The modules built from a flat vector own their tensors.
    let m = t.template(&start);
    let flat = to_flat(&m.server_side);
    assert_eq!(flat, start.server);
}

fn final_state(s: &Scenario) -> (Vec<Option<f64>>, ModelState) {
    let t = trainer(s);
    let fw = framework(s.training.framework);
    let mut state = ModelState { global: t.initial_params(), local: Default::default() };
    let mut acc = Vec::new();
    for r in 0..s.run.rounds {
        let work: Vec<Work> =
            sflam::train::sample_participants(s, r).into_iter().map(|device| Work { device, bits: 8 }).collect();
        fw.round(&t, &mut state, r, &work).unwrap();
        acc.push(Some(fw.evaluate(&t, &state).unwrap().accuracy));
    }
    (acc, state)
}

#[test]
fn every_framework_is_independent_of_the_thread_count() {
    for fw in ["sflam", "sfl", "sl", "fl", "ll"] {
        let one = final_state(&scenario(&format!("framework = \"{fw}\"\n")));
        let mut s2 = scenario(&format!("framework = \"{fw}\"\n"));
        s2.run.threads = 2;
        let two = final_state(&s2);
        assert_eq!(one, two, "{fw}");
    }
}

#[test]
fn sflam_learns_the_synthetic_task() {
    // Near-iid shares (alpha = 100) so that a few rounds suffice.
    let mut s = scenario("optimizer = \"adam\"\n");
    s.training.lr = 0.003;
    s.training.dirichlet_alpha = 100.0;
    s.run.rounds = 6;
    s.run.iterations = 8;
    let (acc, _) = final_state(&s);
    let acc: Vec<f64> = acc.into_iter().map(|a| a.unwrap()).collect();
    // At this high rate the last rounds move by a few points either way
    // (0.805, 0.82, 0.785 in rounds 4-6 here): a bound on the best of the
    // last three and a looser one on the last, both far above chance.
    let best_late = acc[3..].iter().cloned().fold(0.0, f64::max);
    assert!(best_late > 0.8 && acc[5] > 0.7, "accuracy by round: {acc:?} (chance 0.1)");
}

#[test]
fn a_resumed_run_reaches_the_identical_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario("checkpoint_every = 2\n");
    s.run.rounds = 4;
    let whole = sflam::train::train_to_dir(&s, &dir.path().join("whole"), &Default::default()).unwrap();
    // The same scenario stopped after round 2 (as a killed job would be),
    // then resumed from its checkpoint.
    let part = dir.path().join("part");
    let stop = sflam::train::TrainOptions { stop_after: Some(2), ..Default::default() };
    let first = sflam::train::train_to_dir(&s, &part, &stop).unwrap();
    assert_eq!(first.rows.len(), 2);
    // Unfinished, the run is in `part.partial`, where its checkpoints are.
    assert_eq!(first.dir, dir.path().join("part.partial"));
    assert!(!part.exists());
    // Resuming under another scenario is refused.
    let mut other = s.clone();
    other.training.lr = 0.1;
    let resume_only = sflam::train::TrainOptions { resume: true, ..Default::default() };
    let err = sflam::train::train_to_dir(&other, &part, &resume_only).err().unwrap().to_string();
    assert!(err.contains("another scenario"), "{err}");
    // The resumed part reports each of its rounds (2 and 3) as it ends.
    static REPORTED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    fn report(r: &sflam::train::TrainRoundRow) {
        REPORTED.lock().unwrap().push(r.round);
    }
    let resume = sflam::train::TrainOptions { resume: true, on_round: Some(report), ..Default::default() };
    let resumed = sflam::train::train_to_dir(&s, &part, &resume).unwrap();
    assert_eq!(*REPORTED.lock().unwrap(), [2, 3]);
    let strip = |rows: &[sflam::train::TrainRoundRow]| -> Vec<sflam::train::TrainRoundRow> {
        rows.iter()
            .cloned()
            .map(|mut r| {
                r.wall_s = 0.0;
                r
            })
            .collect()
    };
    assert_eq!(strip(&whole.rows), strip(&resumed.rows));
    assert_eq!(whole.state, resumed.state);
    // The participants table too: the resumed run's holds the first part's
    // rounds from its checkpoint, on file as in memory.
    assert_eq!(whole.participants, resumed.participants);
    assert_eq!(parquet_rows(&part.join("participants.parquet")), resumed.participants.len());
    assert!(!dir.path().join("part.partial").exists(), "the finished run was swapped in");
    // A finished run: nothing to resume.
    let err = sflam::train::train_to_dir(&s, &part, &resume_only).err().unwrap().to_string();
    assert!(err.contains("nothing to resume"), "{err}");
}

/// The rows of a Parquet file.
fn parquet_rows(path: &Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows() as usize
}

/// `sflam train`'s participants table: one row per participant a round,
/// exactly the round's sampled devices, each with its own update's loss,
/// bytes and f16 count, which the round's row sums or averages; and each
/// participant's loss is its update's, as the trainer gives it alone.
#[test]
fn the_participants_table_breaks_each_round_down_by_device() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("framework = \"sflam\"\nbits = 4\n");
    let out = sflam::train::train_to_dir(&s, dir.path(), &Default::default()).unwrap();
    assert_eq!(parquet_rows(&dir.path().join("participants.parquet")), out.participants.len());
    let t = trainer(&s);
    let mut state = t.initial_params();
    for r in &out.rows {
        let mine: Vec<_> = out.participants.iter().filter(|p| p.round == r.round).collect();
        let devices: Vec<u32> = mine.iter().map(|p| p.device).collect();
        assert_eq!(devices, sflam::train::sample_participants(&s, r.round), "round {}", r.round);
        let mean = mine.iter().map(|p| p.train_loss).sum::<f64>() / mine.len() as f64;
        assert_eq!(r.train_loss, Some(mean), "round {}", r.round);
        assert_eq!(r.wire_bytes, mine.iter().map(|p| p.wire_bytes).sum::<u64>(), "round {}", r.round);
        assert_eq!(r.loss_scale_halvings, mine.iter().map(|p| p.loss_scale_halvings).sum::<u32>());
        assert_eq!(r.samples, mine.iter().map(|p| p.samples).sum::<u64>(), "round {}", r.round);
        // The first participant's update from the round's start model, alone.
        let u = t.split_update(&state, mine[0].device, r.round, Some(4)).unwrap();
        assert_eq!((u.loss, u.wire_bytes), (mine[0].train_loss, mine[0].wire_bytes), "round {}", r.round);
        let work: Vec<Work> = devices.iter().map(|&device| Work { device, bits: 4 }).collect();
        let mut st = ModelState { global: state, local: Default::default() };
        framework(s.training.framework).round(&t, &mut st, r.round, &work).unwrap();
        state = st.global;
    }
}

/// `optimizer_state = "keep"`: a device's momentum carries from one of its
/// rounds to the next (plain SGD has none to carry), costs 4 B a parameter
/// a half, and survives a checkpoint and resume, for split and whole-model
/// frameworks.
#[test]
fn kept_optimizer_state_carries_between_a_devices_rounds() {
    let reset = trainer(&scenario("momentum = 0.9\n"));
    let keep = trainer(&scenario("momentum = 0.9\noptimizer_state = \"keep\"\n"));
    let start = reset.initial_params();
    // Round 0: nothing kept yet, the same update.
    let (r0, k0) =
        (reset.split_update(&start, 3, 0, Some(8)).unwrap(), keep.split_update(&start, 3, 0, Some(8)).unwrap());
    assert_eq!(r0.params, k0.params);
    // The kept state: SGD momentum, one f32 a parameter, for each half.
    let kept = keep.kept_optimizers();
    let halves: Vec<_> = kept.iter().map(|(k, _)| *k).collect();
    use sflam::train::training::Half;
    assert_eq!(halves, [(3, Half::Device), (3, Half::Server)]);
    for ((_, half), bytes) in &kept {
        let n = if *half == Half::Device { start.device.len() } else { start.server.len() };
        assert!(
            bytes.len() >= 4 * n && bytes.len() <= 4 * n + 64 * 1024,
            "{half:?}: {} B for {n} parameters",
            bytes.len()
        );
    }
    // Round 1 from the same start: the kept momentum moves it elsewhere.
    let (r1, k1) =
        (reset.split_update(&start, 3, 1, Some(8)).unwrap(), keep.split_update(&start, 3, 1, Some(8)).unwrap());
    assert_ne!(r1.params, k1.params);
    // Another device has nothing kept.
    assert_eq!(
        reset.split_update(&start, 4, 1, Some(8)).unwrap().params,
        keep.split_update(&start, 4, 1, Some(8)).unwrap().params
    );
    // Plain SGD keeps no state: keep = reset.
    let plain_r = trainer(&scenario("momentum = 0.0\n"));
    let plain_k = trainer(&scenario("momentum = 0.0\noptimizer_state = \"keep\"\n"));
    for round in 0..2 {
        assert_eq!(
            plain_r.whole_update(&start, 1, round).unwrap().params,
            plain_k.whole_update(&start, 1, round).unwrap().params
        );
    }
    // Checkpointed and resumed: the identical result, and different from reset's.
    for fw in ["sflam", "fl"] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = scenario(&format!(
            "framework = \"{fw}\"\nmomentum = 0.9\noptimizer_state = \"keep\"\ncheckpoint_every = 1\n"
        ));
        s.run.rounds = 4;
        s.devices.count = 5;
        let whole = sflam::train::train_to_dir(&s, &dir.path().join("whole"), &Default::default()).unwrap();
        let part = dir.path().join("part");
        let stop = sflam::train::TrainOptions { stop_after: Some(2), ..Default::default() };
        sflam::train::train_to_dir(&s, &part, &stop).unwrap();
        let partial = dir.path().join("part.partial");
        let saved = std::fs::read_dir(partial.join("checkpoints/round-00002")).unwrap().flatten();
        assert!(
            saved.map(|e| e.file_name().to_string_lossy().into_owned()).any(|n| n.starts_with("optimizer-")),
            "{fw}"
        );
        let resume = sflam::train::TrainOptions { resume: true, ..Default::default() };
        // A stray file named like a state, but not one, is refused by name.
        let stray = partial.join("checkpoints/round-00002/optimizer-7-elbow.bpk");
        std::fs::write(&stray, b"x").unwrap();
        let err = sflam::train::train_to_dir(&s, &part, &resume).err().unwrap();
        assert!(err.exit_code() == 2 && err.to_string().contains("optimizer-7-elbow.bpk"), "{err}");
        std::fs::remove_file(&stray).unwrap();
        let resumed = sflam::train::train_to_dir(&s, &part, &resume).unwrap();
        assert_eq!(whole.state, resumed.state, "{fw}");
        let mut r = s.clone();
        r.training.optimizer_state = sflam::train::OptimizerState::Reset;
        let reset = sflam::train::train_to_dir(&r, &dir.path().join("reset"), &Default::default()).unwrap();
        assert_ne!(whole.state, reset.state, "{fw}");
    }
}

/// A job killed between a checkpoint's files (after the model, before the
/// progress file) resumes from the checkpoint before it and reaches the
/// identical result. `ll` keeps a model per device, so it has the most
/// files (`a_resumed_run_reaches_the_identical_result` covers `sflam`).
#[test]
fn a_job_killed_between_checkpoint_files_resumes_identically() {
    {
        let fw = "ll";
        let dir = tempfile::tempdir().unwrap();
        let mut s = scenario(&format!("framework = \"{fw}\"\ncheckpoint_every = 1\n"));
        s.run.rounds = 4;
        let whole = sflam::train::train_to_dir(&s, &dir.path().join("whole"), &Default::default()).unwrap();
        let part = dir.path().join("part");
        let opts = |stop, resume, crash| sflam::train::TrainOptions {
            stop_after: Some(stop),
            resume,
            crash_in_last_checkpoint: crash,
            ..Default::default()
        };
        sflam::train::train_to_dir(&s, &part, &opts(2, false, false)).unwrap();
        // Round 3 trains, writes its model files, and the job dies.
        let err = sflam::train::train_to_dir(&s, &part, &opts(3, true, true)).err().unwrap().to_string();
        assert!(err.contains("fault injected"), "{err}");
        let ck = dir.path().join("part.partial/checkpoints");
        assert!(ck.join("round-00003/global.bpk").exists(), "the killed checkpoint's model is on disk");
        // A half-written file in the dead checkpoint changes nothing.
        std::fs::write(ck.join("round-00003/global.bpk"), b"half").unwrap();
        // A checkpoint from another build of sflam is refused, naming it.
        let pj = ck.join("progress.json");
        let text = std::fs::read_to_string(&pj).unwrap();
        std::fs::write(&pj, text.replacen("(git ", "(git other-", 1)).unwrap();
        let err = sflam::train::train_to_dir(&s, &part, &opts(4, true, false)).err().unwrap().to_string();
        assert!(err.contains("same one") && err.contains("other-"), "{err}");
        std::fs::write(&pj, text).unwrap();
        let resumed = sflam::train::train_to_dir(&s, &part, &opts(4, true, false)).unwrap();
        let strip = |rows: &[sflam::train::TrainRoundRow]| -> Vec<_> {
            rows.iter()
                .cloned()
                .map(|mut r| {
                    r.wall_s = 0.0;
                    r
                })
                .collect()
        };
        assert_eq!(strip(&whole.rows), strip(&resumed.rows), "{fw}");
        assert_eq!(whole.state, resumed.state, "{fw}");
        let ck = part.join("checkpoints");
        assert!(!ck.join("round-00003").exists() && ck.join("round-00004").exists(), "{fw}: old folders removed");
    }
}

/// A timm-named safetensors file from `p`, in PyTorch layouts.
fn write_timm(t: &Trainer, p: &sflam::train::Params, path: &Path, classes: usize) {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let dims = t.dims().to_vec();
            let v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            self.out.push((self.path.join("."), dims, v));
        }
    }
    let m = t.template(p);
    let mut c = Collect { path: vec![], out: vec![] };
    m.device_side.visit(&mut c);
    let dev = std::mem::take(&mut c.out);
    m.server_side.visit(&mut c);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, dims, v) in dev.into_iter().chain(c.out) {
        let mut name = name;
        let is_norm = name.contains("norm");
        if is_norm {
            name = name.replace(".gamma", ".weight").replace(".beta", ".bias");
        }
        // Linear weights: Burn [in, out] -> PyTorch [out, in].
        let linear = !is_norm && name.ends_with(".weight") && dims.len() == 2;
        let (dims, v) = if linear {
            let (i, o) = (dims[0], dims[1]);
            let mut tv = vec![0f32; v.len()];
            for a in 0..i {
                for b in 0..o {
                    tv[b * i + a] = v[a * o + b];
                }
            }
            (vec![o, i], tv)
        } else {
            (dims, v)
        };
        tensors.push((name, dims, v));
    }
    // A head of another class count, as an ImageNet checkpoint has.
    if classes != 10 {
        for (name, dims, v) in tensors.iter_mut() {
            if name.starts_with("head.") {
                dims[0] = classes;
                *v = vec![0.5; dims.iter().product()];
            }
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.into_iter().map(|(n, d, v)| (n, d, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, d, b)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, d.clone(), b).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn timm_safetensors_load_by_name_with_pytorch_layouts() {
    let s = scenario("");
    let t = trainer(&s);
    // Weights from another seed, so that a no-op import would be caught.
    let mut other = s.clone();
    other.run.seed = 99;
    let source = trainer(&other).initial_params();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vit.safetensors");
    write_timm(&t, &source, &file, 10);
    let mut m = t.template(&t.initial_params());
    let rep = sflam::train::import::load_timm(&mut m, &file).unwrap();
    assert!(rep.missing.is_empty() && rep.unused.is_empty(), "{rep:?}");
    assert_eq!(to_flat(&m.device_side), source.device);
    assert_eq!(to_flat(&m.server_side), source.server);
    // The qkv weight is fused as in timm: [3 dim, dim] in the file.
    let st = safetensors::SafeTensors::deserialize(&std::fs::read(&file).unwrap())
        .unwrap()
        .tensor("blocks.0.attn.qkv.weight")
        .unwrap()
        .shape()
        .to_vec();
    assert_eq!(st, vec![192, 64]);
    // An ImageNet head is skipped and reported.
    write_timm(&t, &source, &file, 1000);
    let mut m = t.template(&t.initial_params());
    let rep = sflam::train::import::load_timm(&mut m, &file).unwrap();
    assert!(rep.skipped.iter().any(|(k, why)| k == "head.weight" && why.contains("class count")), "{rep:?}");
    assert_eq!(to_flat(&m.device_side), source.device);
}

/// One local update of `framework` (`fl`: whole-model; else split at 8
/// bits) with plain SGD on `threads` threads from the scenario's start,
/// `extra` added to its `[training]`: (the start, the update).
fn sgd_update(
    framework: &str,
    extra: &str,
    threads: usize,
) -> (sflam::train::Params, sflam::train::training::LocalUpdate) {
    let mut s = scenario(&format!("framework = \"{framework}\"\noptimizer = \"sgd\"\nmomentum = 0.0\n{extra}"));
    s.run.threads = threads;
    let t = trainer(&s);
    let start = t.initial_params();
    let u = t.install(|| match framework {
        "fl" => t.whole_update(&start, 1, 0),
        _ => t.split_update(&start, 1, 0, Some(8)),
    });
    (start, u.unwrap())
}

#[test]
fn micro_batches_give_the_full_batch_gradient_at_any_thread_count() {
    // The reference is the update from the whole batch at once: cutting
    // it into 4 parts whose share-weighted gradients are summed must give
    // the same weights (to float summation order) and the same loss, for a
    // whole-model update and for a split one (whose parts are the
    // server's: the 8-bit message is the whole batch's, the same bytes).
    let (update, diff) = (sgd_update, max_abs_diff);
    for framework in ["fl", "sflam"] {
        let (start, whole) = update(framework, "", 1);
        let (_, parts) = update(framework, "micro_batches = 4\n", 1);
        assert!(diff(&parts.params.server, &whole.params.server) < 1e-5, "{framework}");
        assert!(diff(&parts.params.device, &whole.params.device) < 1e-5, "{framework}");
        assert!((parts.loss - whole.loss).abs() < 1e-5, "{framework}");
        assert_eq!(parts.wire_bytes, whole.wire_bytes, "{framework}");
        assert!(diff(&whole.params.server, &start.server) > 1e-4, "{framework}: the update moved the weights");
        assert!(diff(&whole.params.device, &start.device) > 1e-5, "{framework}: the device half moved too");
        // Parts run in parallel: two threads give the identical bits.
        let (_, two) = update(framework, "micro_batches = 4\n", 2);
        assert_eq!(two.params, parts.params, "{framework}");
    }
}

#[test]
fn lr_schedule_and_warmup_follow_their_closed_forms() {
    use sflam::config::LrSchedule;
    let (lr, total) = (0.2, 1000u64);
    assert_eq!(LrSchedule::Cosine.at(lr, 0, total, 0), lr);
    assert!((LrSchedule::Cosine.at(lr, 250, total, 0) - lr * (2.0 + 2f64.sqrt()) / 4.0).abs() < 1e-12);
    assert!((LrSchedule::Cosine.at(lr, 500, total, 0) - 0.1).abs() < 1e-12);
    assert!((LrSchedule::Cosine.at(lr, 750, total, 0) - lr * (2.0 - 2f64.sqrt()) / 4.0).abs() < 1e-12);
    assert_eq!(LrSchedule::Constant.at(lr, 750, total, 0), lr);
    assert!(LrSchedule::Cosine.at(lr, 1000, total, 0).abs() < 1e-12);
    // 100 warm-up steps: lr/100, 2 lr/100, ..., lr, then the cosine over
    // the remaining 900 (its midpoint at step 100 + 450).
    assert!((LrSchedule::Cosine.at(lr, 0, total, 100) - lr / 100.0).abs() < 1e-15);
    assert!((LrSchedule::Cosine.at(lr, 49, total, 100) - lr / 2.0).abs() < 1e-15);
    assert_eq!(LrSchedule::Cosine.at(lr, 99, total, 100), lr);
    assert_eq!(LrSchedule::Cosine.at(lr, 100, total, 100), lr);
    assert!((LrSchedule::Cosine.at(lr, 550, total, 100) - 0.1).abs() < 1e-12);
    assert_eq!(LrSchedule::Constant.at(lr, 30, total, 100), lr * 31.0 / 100.0);
    let err = load_scenario_str(
        "[run]\nname = \"t\"\nrounds = 2\niterations = 5\n[training]\nwarmup_iterations = 10\n",
        Path::new("<test>"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("training.warmup_iterations") && err.contains("10 steps"), "{err}");
}

/// The checked-in timm reference (`tests/reference/timm_vit.py`): its
/// config, input batch and logits.
fn timm_reference() -> (sflam::workload::VitConfig, Vec<usize>, Vec<f32>, Vec<f64>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("timm_vit.json")).unwrap()).unwrap();
    let c = &j["config"];
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    let cfg = sflam::workload::VitConfig {
        name: "timm-reference",
        image: u("image"),
        channels: u("channels"),
        patch: u("patch"),
        dim: u("dim"),
        depth: u("depth"),
        heads: u("heads"),
        mlp_dim: u("mlp_dim"),
        classes: u("classes"),
    };
    let shape = j["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let input = j["input"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let logits = j["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    (cfg, shape, input, logits)
}

fn reference_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference").join(name)
}

/// sflam's model with a timm checkpoint loaded gives timm's logits (1e-4),
/// from the plain file and from one saved under a `module.` wrapper.
#[test]
fn timm_reference_logits() {
    use burn::tensor::{Tensor, TensorData};
    let (cfg, shape, input, want) = timm_reference();
    let device =
        sflam::train::backend_device(sflam::train::BackendKind::Flex, sflam::train::GpuKind::Discrete, 0).unwrap();
    for (file, prefix) in [("timm_vit.safetensors", None), ("timm_vit_wrapped.safetensors", Some("module."))] {
        let mut m = sflam::train::model::SplitVit::new(&cfg, &device);
        let rep = sflam::train::import::load_timm(&mut m, &reference_file(file)).unwrap();
        assert_eq!(rep.prefix.as_deref(), prefix, "{rep:?}");
        assert!(rep.skipped.is_empty() && rep.missing.is_empty() && rep.unused.is_empty(), "{rep:?}");
        // 2 (patch embed) + 2 + 2 (tokens) + 12 per block + 2 (norm) + 2 (head).
        assert_eq!(rep.applied, 8 + 12 * cfg.depth, "{rep:?}");
        let x =
            Tensor::<4>::from_data(TensorData::new(input.clone(), [shape[0], shape[1], shape[2], shape[3]]), &device);
        let got: Vec<f32> = m.forward(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((*g as f64 - w).abs() <= 1e-4, "{file}: logit {i}: sflam {g}, timm {w}");
        }
    }
}

/// A safetensors file's tensors as (name, shape, little-endian bytes).
type Tensors = Vec<(String, Vec<usize>, Vec<u8>)>;

/// A checkpoint of another structure is refused naming the first offending
/// key; a head of another class count is skipped and reported; a file with
/// none of the model's tensors is an error.
#[test]
fn timm_import_is_strict() {
    let (cfg, _, _, _) = timm_reference();
    let device =
        sflam::train::backend_device(sflam::train::BackendKind::Flex, sflam::train::GpuKind::Discrete, 0).unwrap();
    let bytes = std::fs::read(reference_file("timm_vit.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Rewrites the reference with `edit` applied to its (name, shape, bytes).
    let write = |name: &str, edit: &dyn Fn(&mut Tensors)| {
        let mut t: Tensors =
            st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        edit(&mut t);
        let views: Vec<(String, safetensors::tensor::TensorView)> = t
            .iter()
            .map(|(n, d, b)| {
                (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, d.clone(), b).unwrap())
            })
            .collect();
        let path = dir.path().join(format!("{name}.safetensors"));
        safetensors::serialize_to_file(views, None, &path).unwrap();
        path
    };
    let f32s = |n: usize| vec![0u8; 4 * n];
    let load = |path: &Path| {
        let mut m = sflam::train::model::SplitVit::new(&cfg, &device);
        sflam::train::import::load_timm(&mut m, path)
    };
    let refused = |name: &str, edit: &dyn Fn(&mut Tensors), key: &str, why: &str| {
        let err = load(&write(name, edit)).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(why), "{name}: {err}");
    };
    refused(
        "layerscale",
        &|t| t.push(("blocks.0.ls1.gamma".into(), vec![32], f32s(32))),
        "blocks.0.ls1.gamma",
        "LayerScale",
    );
    refused("qknorm", &|t| t.push(("blocks.1.attn.q_norm.weight".into(), vec![8], f32s(8))), "q_norm", "qk-norm");
    refused("registers", &|t| t.push(("reg_token".into(), vec![1, 4, 32], f32s(128))), "reg_token", "register tokens");
    refused(
        "deeper",
        &|t| {
            let extra: Vec<_> = t
                .iter()
                .filter(|x| x.0.starts_with("blocks.1."))
                .map(|x| (x.0.replace("blocks.1.", "blocks.2."), x.1.clone(), x.2.clone()))
                .collect();
            t.extend(extra);
        },
        "blocks.2.",
        "deeper",
    );
    refused("shallower", &|t| t.retain(|x| !x.0.starts_with("blocks.1.")), "blocks.1.", "shallower");
    refused(
        "wider",
        &|t| {
            for x in t.iter_mut().filter(|x| x.0 == "cls_token") {
                x.1 = vec![1, 1, 48];
                x.2 = f32s(48);
            }
        },
        "cls_token",
        "shape",
    );
    // An ImageNet head: skipped and said so, the rest applied.
    let path = write("head1000", &|t| {
        for x in t.iter_mut().filter(|x| x.0.starts_with("head.")) {
            x.1[0] = 1000;
            x.2 = f32s(x.1.iter().product());
        }
    });
    let rep = load(&path).unwrap();
    assert_eq!(rep.skipped.len(), 2, "{rep:?}");
    assert!(rep.skipped[0].1.contains("class count"), "{rep:?}");
    assert_eq!(rep.applied, 6 + 12 * cfg.depth);
    // Unrelated tensors only: nothing applied is an error.
    let path = write("foreign", &|t| {
        t.clear();
        t.push(("encoder.layer.0.weight".into(), vec![4], f32s(4)));
    });
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("no tensor"), "{err}");
}

/// `training.local_epochs`: a device's update runs local_epochs x
/// ceil(samples / batch) mini-batches (each one activation message on the
/// wire), the count the simulation charges (`config::local_iterations`).
#[test]
fn local_epochs_run_passes_over_each_devices_own_data() {
    let s = scenario("local_epochs = 2\n");
    let t = trainer(&s);
    let one = trainer(&scenario(""));
    let start = t.initial_params();
    let mut seen = std::collections::BTreeSet::new();
    for d in [0u32, 3, 5] {
        let n = t.samples(d) as u64;
        let want = 2 * n.div_ceil(s.training.batch as u64) as u32;
        assert_eq!(t.iterations_of(d), want);
        assert_eq!(sflam::config::local_iterations(2, n, s.training.batch, 1), want);
        // Wire bytes: one fp32 message of batch x cut per iteration; the
        // fixed-count trainer (run.iterations = 2) gives the per-message size.
        let u = t.split_update(&start, d, 0, None).unwrap();
        let u1 = one.split_update(&start, d, 0, None).unwrap();
        assert_eq!(u.wire_bytes * 2, u1.wire_bytes * want as u64, "device {d}");
        seen.insert(want);
    }
    assert!(seen.len() > 1, "devices should hold different amounts of data");
}

/// The Fashion-MNIST subset shipped with the repository (the default
/// run's data on a machine without Debian's package) reads as the real
/// format: 6,000 training and 1,000 test images of 28x28, every class
/// present, the same images as the full set's first ones where it is
/// installed.
#[test]
fn shipped_fashion_mnist_subset_reads_as_the_real_set() {
    let dir = sflam::train::data::FASHION_MNIST_SUBSET_DIR;
    let (train, test) = load(DatasetKind::FashionMnist, dir, 0).unwrap();
    assert_eq!((train.len(), test.len()), (6000, 1000));
    let counts = train.class_counts(&(0..6000).collect::<Vec<u32>>());
    assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
    if Path::new(sflam::train::data::FASHION_MNIST_DIR).exists() {
        let (full, _) = load(DatasetKind::FashionMnist, sflam::train::data::FASHION_MNIST_DIR, 0).unwrap();
        let first: Vec<u32> = (0..6000).collect();
        assert_eq!(full.class_counts(&first), counts);
    }
}

/// CIFAR-100 in its binary format (synthetic records written here): the
/// trained model's head has the data set's 100 classes, and a `sflam
/// train` round runs on it and evaluates.
#[test]
fn cifar100_trains_with_a_100_class_head() {
    let dir = tempfile::tempdir().unwrap();
    let records = |n: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(n * 3074);
        for i in 0..n {
            let fine = (i % 100) as u8;
            out.extend([fine / 5, fine]);
            // A pattern per record (a multiplicative hash of its index and pixel).
            out.extend((0..3072u32).map(|j| ((i as u32 * 3072 + j).wrapping_mul(2_654_435_761) >> 24) as u8));
        }
        out
    };
    std::fs::write(dir.path().join("train.bin"), records(1200)).unwrap();
    std::fs::write(dir.path().join("test.bin"), records(200)).unwrap();
    let mut s = scenario("");
    s.training.dataset = DatasetKind::Cifar100;
    s.training.data_dir = dir.path().display().to_string();
    s.training.model = "vit-tiny-32".into();
    s.training.min_samples = 10;
    let t = trainer(&s);
    assert_eq!(t.vit.classes, 100);
    let m = t.template(&t.initial_params());
    assert_eq!(m.server_side.head.weight.val().dims(), [t.vit.dim, 100]);
    let out = dir.path().join("run");
    let mut s1 = s.clone();
    s1.run.rounds = 1;
    let r = sflam::train::train_to_dir(&s1, &out, &Default::default()).unwrap();
    let acc = r.rows[0].accuracy.unwrap();
    assert!((0.0..=1.0).contains(&acc), "{acc}");
}

/// A checkpoint for 28x28 images into the model for 42x42: the position
/// embedding is resampled as timm's `checkpoint_filter_fn` does, the input
/// resized as `F.interpolate` does, and the logits are timm's (all checked
/// against `tests/reference/timm_vit.json`'s `resampled`).
#[test]
fn timm_checkpoint_resampled_to_another_image_size() {
    use burn::tensor::{Tensor, TensorData};
    let (cfg, shape, input, _) = timm_reference();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("timm_vit.json")).unwrap()).unwrap();
    let r = &j["resampled"];
    let floats =
        |v: &serde_json::Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    let close = |what: &str, got: &[f32], want: &[f64], tol: f64| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() <= tol, "{what} {i}: sflam {g}, timm {w}");
        }
    };
    let big = sflam::workload::VitConfig { image: r["image"].as_u64().unwrap() as usize, ..cfg.clone() };
    let device =
        sflam::train::backend_device(sflam::train::BackendKind::Flex, sflam::train::GpuKind::Discrete, 0).unwrap();
    let mut m = sflam::train::model::SplitVit::new(&big, &device);
    let rep = sflam::train::import::load_timm(&mut m, &reference_file("timm_vit.safetensors")).unwrap();
    assert_eq!(rep.resampled.len(), 1, "{rep:?}");
    assert!(rep.resampled[0].1.contains("4x4") && rep.resampled[0].1.contains("6x6"), "{rep:?}");
    assert_eq!(rep.applied, 8 + 12 * cfg.depth, "{rep:?}");
    let pos: Vec<f32> = m.server_side.pos_embed.val().into_data().try_to_vec::<f32>().unwrap();
    close("pos_embed", &pos, &floats(&r["pos_embed"]), 1e-5);
    let x = Tensor::<4>::from_data(TensorData::new(input, [shape[0], shape[1], shape[2], shape[3]]), &device);
    let x = sflam::train::data::adapt(x, 1, big.image);
    let xs: Vec<f32> = x.clone().into_data().try_to_vec::<f32>().unwrap();
    close("resized input", &xs, &floats(&r["input"]), 1e-5);
    let got: Vec<f32> = m.forward(x).into_data().try_to_vec::<f32>().unwrap();
    close("logits", &got, &floats(&r["logits"]), 1e-4);
}

/// The 224-pixel path on CIFAR-10 binaries (synthetic records written
/// here): 32x32 images resized to a 224-pixel ViT (timm's
/// vit_small_patch32_224 layout), one round trains and evaluates; the
/// fine-tuning scenario validates.
#[test]
fn a_224_pixel_vit_trains_on_cifar10_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let records = |n: usize, seed: u32| -> Vec<u8> {
        let mut out = Vec::with_capacity(n * 3073);
        for i in 0..n {
            out.push((i % 10) as u8);
            out.extend((0..3072u32).map(|j| ((seed + i as u32 * 3072 + j).wrapping_mul(2_654_435_761) >> 24) as u8));
        }
        out
    };
    for b in 1..=5 {
        std::fs::write(dir.path().join(format!("data_batch_{b}.bin")), records(16, b * 100_000)).unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), records(8, 7)).unwrap();
    let mut s = scenario("");
    s.training.dataset = DatasetKind::Cifar10;
    s.training.data_dir = dir.path().display().to_string();
    s.training.model = "vit-s32".into();
    s.training.min_samples = 4;
    s.training.batch = 4;
    s.training.participants = 2;
    s.training.eval_samples = 8;
    s.run.iterations = 1;
    s.run.rounds = 1;
    let t = trainer(&s);
    assert_eq!((t.vit.image, t.vit.classes), (224, 10));
    let r = sflam::train::train_to_dir(&s, &dir.path().join("run"), &Default::default()).unwrap();
    let (loss, acc) = (r.rows[0].train_loss.unwrap(), r.rows[0].accuracy.unwrap());
    assert!(loss.is_finite() && (0.0..=1.0).contains(&acc), "{loss} {acc}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    sflam::config::load_scenario(&root.join("scenarios/finetune-cifar10.toml"), &[]).unwrap();
}

/// `training.public_share`: the public part and the devices' private part
/// are disjoint and cover the set, and a pretraining run writes its final model where the runs that
/// fine-tune from it read it.
#[test]
fn public_share_is_disjoint_from_the_devices_data_and_seeds_a_fine_tune() {
    let (data, _) = synthetic(1, 1000, 10);
    let (public, private) = data.split_public(0.1, 0);
    assert_eq!((public.len(), private.len()), (100, 900));
    let mut all: Vec<u32> = public.iter().chain(&private).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<u32>>());
    // The draw does not depend on the run's seed (synthetic data does, so
    // the split itself is compared).
    assert!(data.split_public(0.1, 0) == (public.clone(), private.clone()));
    let mk = |seed: u64, part: &str| {
        let mut s = scenario(&format!("public_share = 0.25\ndata_part = \"{part}\"\n"));
        s.run.seed = seed;
        trainer(&s)
    };
    let a = mk(3, "public");
    let p = mk(3, "private");
    assert_eq!(a.train.len() + p.train.len(), 2000);
    // No image of the public part is among the private part's.
    let il = 28 * 28;
    let imgs = |t: &Trainer| -> std::collections::BTreeSet<Vec<u8>> {
        t.train.pixels.chunks(il).map(|c| c.to_vec()).collect()
    };
    assert!(imgs(&a).is_disjoint(&imgs(&p)));
    // Pretrain on the public part; fine-tune from its model.bpk.
    let dir = tempfile::tempdir().unwrap();
    let mut pre = scenario("public_share = 0.25\ndata_part = \"public\"\nframework = \"fl\"\n");
    pre.training.participants = 1;
    pre.devices.count = 1;
    pre.run.rounds = 1;
    let out = dir.path().join("pre");
    let r = sflam::train::train_to_dir(&pre, &out, &Default::default()).unwrap();
    assert!(out.join("model.bpk").exists());
    let mut ft = scenario("public_share = 0.25\n");
    ft.training.init = out.join("model.bpk").display().to_string();
    let t = trainer(&ft);
    let (start, _) = sflam::train::initial_state(&ft, &t).unwrap();
    assert_eq!(start.global, r.state.global);
}

/// Asserts `got` is `want` within `tol` times the larger of 1 and `want`'s
/// largest magnitude, element by element; `what` names the comparison.
fn assert_close_scaled(want: &[f32], got: &[f32], tol: f32, what: &str) {
    assert_eq!(want.len(), got.len(), "{what}");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = want.iter().zip(got).fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    assert!(worst <= tol * scale, "{what}: differs by {worst} (scale {scale})");
}

/// Compares one of the model's functions with Burn's on the values `xs`
/// (shaped `shape`): the values and the gradients of a weighted sum (so
/// that every element's slope is checked) on the autodiff device, and the
/// values without autodiff (evaluation), all within `tol`. Returns the
/// model's values.
fn matches_burn<const D: usize>(
    xs: &[f32],
    shape: [usize; D],
    ours: fn(burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D>,
    burns: fn(burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D>,
    tol: f32,
) -> Vec<f32> {
    use burn::tensor::{Device, Tensor};
    let device = Device::flex().autodiff();
    let w: Vec<f32> = (0..xs.len()).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.02).collect();
    let run = |f: fn(Tensor<D>) -> Tensor<D>| {
        let x = Tensor::<1>::from_floats(xs, &device).reshape(shape).require_grad();
        let y = f(x.clone());
        let weights = Tensor::<1>::from_floats(w.as_slice(), &device).reshape(shape);
        let grads = (y.clone() * weights).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        (y.into_data().try_to_vec::<f32>().unwrap(), g)
    };
    let ((v_ours, g_ours), (v_burn, g_burn)) = (run(ours), run(burns));
    let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst(&v_ours, &v_burn) < tol, "values differ by {}", worst(&v_ours, &v_burn));
    assert!(worst(&g_ours, &g_burn) < tol, "gradients differ by {}", worst(&g_ours, &g_burn));
    let plain = ours(Tensor::<1>::from_floats(xs, &Device::flex()).reshape(shape));
    assert!(worst(&plain.into_data().try_to_vec::<f32>().unwrap(), &v_burn) < tol, "without autodiff");
    v_ours
}

/// The model's softmax (on flex the `Softmax` op: one vectorized loop
/// forward, one for the gradient) against Burn's: the same values and
/// gradients.
#[test]
fn model_softmax_matches_burns_softmax_in_value_and_gradient() {
    // Attention-like scores: rows of 50, some far apart (up to 60).
    let xs: Vec<f32> = (0..3000).map(|i| ((i * 53 % 211) as f32 - 105.0) * 0.3 + (i % 50) as f32 * 0.01).collect();
    let v = matches_burn(
        &xs,
        [2, 3, 10, 50],
        sflam::train::model::softmax_last,
        |x| burn::tensor::activation::softmax(x, 3),
        1e-6,
    );
    for row in v.chunks(50) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "a row sums to one");
    }
}

/// The model's GELU (on flex the `Gelu` op: value and slope from the
/// vectorized kernel) against Burn's own erf-based GELU: the same values and the same
/// gradients through a small graph, on inputs spanning the tails.
#[test]
fn model_gelu_matches_burns_gelu_in_value_and_gradient() {
    let xs: Vec<f32> = (0..2400).map(|i| (i as f32 - 1200.0) * 7.5e-3).collect();
    matches_burn(&xs, [2, 30, 40], sflam::train::model::gelu, burn::tensor::activation::gelu, 2e-6);
}

/// The model's layer norm (on flex the `Norm` op: one loop over each row
/// forward, one for the three gradients) against Burn's `LayerNorm`: the
/// same values, and the same gradients of the input, gamma and beta, with
/// gamma and beta away from their 1 and 0, rows of 37 (a remainder past
/// the kernel's 8 partial sums), inputs far from zero mean, and a case of
/// 1200 rows, more than one task's, whose column sums add across blocks.
#[test]
fn model_norm_matches_burns_layer_norm_with_its_gradients() {
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution, Tensor};
    use sflam::train::model::{NORM_EPS, norm};
    let device = Device::flex().autodiff();
    for shape in [[2, 13, 37], [4, 300, 37]] {
        let d = shape[2];
        let mut layer = LayerNormConfig::new(d).with_epsilon(NORM_EPS).init(&device);
        layer.gamma = Param::from_tensor(Tensor::<1>::random([d], Distribution::Uniform(0.5, 1.5), &device));
        layer.beta = Some(Param::from_tensor(Tensor::<1>::random([d], Distribution::Normal(0.0, 0.3), &device)));
        let x0 = Tensor::<3>::random(shape, Distribution::Normal(0.0, 2.0), &device).add_scalar(3.0);
        let weights = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let v = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let run = |ours: bool| {
            let x = x0.clone().require_grad();
            let y = if ours { norm(&layer, x.clone()) } else { layer.forward(x.clone()) };
            let g = (y.clone() * weights.clone()).sum().backward();
            let beta = layer.beta.as_ref().unwrap();
            [
                v(y.flatten(0, 2)),
                v(x.grad(&g).unwrap().flatten(0, 2)),
                v(layer.gamma.val().grad(&g).unwrap()),
                v(beta.val().grad(&g).unwrap()),
            ]
        };
        let (want, got) = (run(false), run(true));
        for (what, (want, got)) in
            ["output", "input gradient", "gamma's gradient", "beta's gradient"].iter().zip(want.iter().zip(&got))
        {
            assert_close_scaled(want, got, 2e-5, &format!("{what} {shape:?}"));
        }
        // Without autodiff: the op's forward alone.
        let flex = Device::flex();
        let mut plain_layer = LayerNormConfig::new(d).with_epsilon(NORM_EPS).init(&flex);
        plain_layer.gamma = Param::from_tensor(Tensor::from_data(layer.gamma.val().into_data(), &flex));
        let beta = layer.beta.as_ref().unwrap().val();
        plain_layer.beta = Some(Param::from_tensor(Tensor::from_data(beta.into_data(), &flex)));
        let plain = norm(&plain_layer, Tensor::<3>::from_data(x0.clone().into_data(), &flex));
        let worst = v(plain.flatten(0, 2)).iter().zip(&want[0]).fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(worst <= 2e-5, "output without autodiff {shape:?}: differs by {worst}");
    }
}

/// The attention's per-head products (on flex the `Heads` op: gemm on
/// the strided head views, `P V` written with each token's heads side by
/// side) against Burn's matmul, through the attention's own views: q, k
/// and v split from `[B, T, H hd]` tokens, k transposed, the heads merged
/// back after `P V`. The same values and gradients of all three sources;
/// also a case of single-row products and the forward without autodiff.
#[test]
fn heads_matmul_equals_burns_matmul_through_the_attentions_views() {
    use burn::tensor::{Device, Distribution, Tensor};
    use sflam::train::Precision;
    use sflam::train::model::heads_matmul;
    for (b, t, h, hd) in [(2, 7, 3, 5), (3, 1, 2, 4), (2, 65, 3, 64)] {
        for tracked in [true, false] {
            let device = if tracked { Device::flex().autodiff() } else { Device::flex() };
            let normal = Distribution::Normal(0.0, 1.0);
            let src: Vec<Tensor<3>> = (0..3).map(|_| Tensor::random([b, t, h * hd], normal, &device)).collect();
            let weights = Tensor::<3>::random([b, t, h * hd], normal, &device);
            let run = |ours: bool| {
                let leaves: Vec<Tensor<3>> =
                    src.iter().map(|s| if tracked { s.clone().require_grad() } else { s.clone() }).collect();
                let split = |x: &Tensor<3>| x.clone().reshape([b, t, h, hd]).swap_dims(1, 2);
                let (q, k, v) = (split(&leaves[0]), split(&leaves[1]), split(&leaves[2]));
                let mm =
                    |x: Tensor<4>, y: Tensor<4>| if ours { heads_matmul(x, y, Precision::F32) } else { x.matmul(y) };
                let scores = mm(q, k.swap_dims(2, 3)).mul_scalar(0.1);
                let out = mm(scores, v).swap_dims(1, 2).reshape([b, t, h * hd]);
                let v = |t: Tensor<3>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                let mut got = vec![v(out.clone())];
                if tracked {
                    let g = (out * weights.clone()).sum().backward();
                    got.extend(leaves.iter().map(|l| v(l.grad(&g).unwrap())));
                }
                got
            };
            let (want, got) = (run(false), run(true));
            for (i, (want, got)) in want.iter().zip(&got).enumerate() {
                let what = ["output", "q's source gradient", "k's source gradient", "v's source gradient"][i];
                assert_close_scaled(want, got, 1e-5, &format!("{what} [{b}, {t}, {h}, {hd}], autodiff {tracked}"));
            }
        }
    }
}

/// `model::dense` (one flattened product; on flex the `dense` op's own
/// gemm calls and backward) gives Burn's `linear` on the `[B, T, in]`
/// input: the same values and the same gradients of the input, weight and
/// bias, for a layer Burn keeps batched (output as wide as the input), one
/// it merges (wider output), one large enough for the products to run
/// threaded, one of a single row and output, and weights and biases that
/// are strided slices of wider ones (as the attention's q, k and v are).
#[test]
fn dense_equals_burns_batched_linear_with_its_gradients() {
    use burn::tensor::module::linear;
    use burn::tensor::{Device, Distribution, Tensor};
    use sflam::train::Precision;
    use sflam::train::model::dense;
    let device = Device::flex().autodiff();
    let cases = [(4, 13, 24, 24, 0), (3, 7, 16, 64, 0), (2, 100, 200, 200, 0), (1, 1, 8, 1, 0), (4, 13, 24, 24, 2)];
    for (b, t, din, dout, slice) in cases {
        let normal = Distribution::Normal(0.0, 1.0);
        // With `slice` = i, the weight and bias are the i-th of three
        // column blocks of wider ones.
        let wide = if slice > 0 { 3 } else { 1 };
        let (x0, w0, b0) = (
            Tensor::<3>::random([b, t, din], normal, &device),
            Tensor::<2>::random([din, wide * dout], normal, &device),
            Tensor::<1>::random([wide * dout], normal, &device),
        );
        let grads_of = |use_dense: bool| {
            let (x, w, bias) = (x0.clone().require_grad(), w0.clone().require_grad(), b0.clone().require_grad());
            let (ws, bs) = (w.clone().narrow(1, slice * dout, dout), bias.clone().narrow(0, slice * dout, dout));
            let y = if use_dense {
                dense(x.clone(), ws, Some(bs), Precision::F32)
            } else {
                linear(x.clone(), ws, Some(bs))
            };
            // The output's gradient is 1 + y / 2: different at every entry.
            let loss = (y.clone() * y.clone().detach().mul_scalar(0.5).add_scalar(1.0)).sum();
            let g = loss.backward();
            let v = |data: burn::tensor::TensorData| data.convert::<f32>().try_to_vec::<f32>().unwrap();
            (
                v(y.into_data()),
                v(x.grad(&g).unwrap().into_data()),
                v(w.grad(&g).unwrap().into_data()),
                v(bias.grad(&g).unwrap().into_data()),
            )
        };
        let (want, got) = (grads_of(false), grads_of(true));
        let close = |want: &[f32], got: &[f32], what: &str| {
            assert_close_scaled(want, got, 1e-5, &format!("{what} [{b}x{t}x{din} -> {dout}, slice {slice}]"))
        };
        close(&want.0, &got.0, "output");
        close(&want.1, &got.1, "input gradient");
        close(&want.2, &got.2, "weight gradient");
        close(&want.3, &got.3, "bias gradient");
        // Without autodiff: the op's forward alone.
        let flex = Device::flex();
        let (x, w, bias) = (
            Tensor::<3>::from_data(x0.clone().into_data(), &flex),
            Tensor::<2>::from_data(w0.clone().into_data(), &flex),
            Tensor::<1>::from_data(b0.clone().into_data(), &flex),
        );
        let (ws, bs) = (w.narrow(1, slice * dout, dout), bias.narrow(0, slice * dout, dout));
        let v = |t: Tensor<3>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        close(
            &v(linear(x.clone(), ws.clone(), Some(bs.clone()))),
            &v(dense(x, ws, Some(bs), Precision::F32)),
            "output without autodiff",
        );
    }
}

/// One rounding of `v` to `p`'s type (round to nearest, ties to even), by
/// the `half` crate: the reference's, independent of any backend; and the
/// type's relative step (its unit in the last place at 1).
fn round_to(v: f64, p: sflam::train::Precision) -> f64 {
    use burn::tensor::{bf16, f16};
    use sflam::train::Precision;
    match p {
        Precision::F32 => v as f32 as f64,
        Precision::F16 => f16::from_f32(v as f32).to_f32() as f64,
        Precision::Bf16 => bf16::from_f32(v as f32).to_f32() as f64,
    }
}

/// `training.precision = "f16"` and `"bf16"`: `model::dense` (bias-free
/// and with a bias) and `heads_matmul` give autocast's products, against
/// loops in f64 on the same values: each operand rounded to the type, the
/// sum rounded to it once (then the bias added in f32). The products'
/// outputs and the gradients of the inputs and the weight are values of
/// the type, each within one step of the type of the reference plus f32's
/// summation error; and the f32 setting gives other values, so the
/// setting is in effect.
#[test]
fn mixed_products_are_autocasts_rounded_operands_and_result() {
    use burn::tensor::{Device, Distribution, Tensor};
    use sflam::train::Precision;
    use sflam::train::model::{dense, heads_matmul};
    let device = Device::flex().autodiff();
    let normal = Distribution::Normal(0.0, 1.0);
    let v = |t: burn::tensor::TensorData| t.convert::<f32>().try_to_vec::<f32>().unwrap();
    for p in [Precision::F16, Precision::Bf16] {
        // Significant bits (the leading one included) and smallest normal.
        let (bits, tiny) = match p {
            Precision::F16 => (11, 6.103_515_6e-5),
            _ => (8, f32::MIN_POSITIVE as f64),
        };
        // `got` against the reference sums: each got[i] must be a value of
        // the type and within one of its steps of round(sum[i]) plus f32
        // summation error over the terms' magnitudes `mag[i]`.
        let check = |got: &[f32], sum: &[f64], mag: &[f64], bias: Option<&[f32]>, what: &str| {
            assert_eq!(got.len(), sum.len(), "{what}");
            for (i, (&g, (&s, &m))) in got.iter().zip(sum.iter().zip(mag)).enumerate() {
                let want = round_to(s, p);
                let b = bias.map_or(0.0, |b| b[i % b.len()] as f64);
                if bias.is_none() {
                    assert_eq!(round_to(g as f64, p), g as f64, "{what}[{i}] = {g} is not a {p} value");
                }
                let step = want.abs().max(tiny) * (2f64).powi(1 - bits);
                let tol = step + 1e-5 * m + 1e-6 * b.abs();
                assert!((g as f64 - (want + b)).abs() <= tol, "{what}[{i}]: {g} against {} (tol {tol})", want + b);
            }
        };
        // y[r, c] = sum_j a(r, j) b(j, c), each factor rounded: (sums, magnitudes).
        let products =
            |rows: usize, k: usize, cols: usize, a: &dyn Fn(usize, usize) -> f32, b: &dyn Fn(usize, usize) -> f32| {
                let (mut sum, mut mag) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
                for r in 0..rows {
                    for c in 0..cols {
                        for j in 0..k {
                            let t = round_to(a(r, j) as f64, p) * round_to(b(j, c) as f64, p);
                            sum[r * cols + c] += t;
                            mag[r * cols + c] += t.abs();
                        }
                    }
                }
                (sum, mag)
            };

        for (bsz, t, din, dout, with_bias) in [(2, 5, 24, 16, false), (3, 7, 40, 24, true)] {
            let x = Tensor::<3>::random([bsz, t, din], normal, &device).require_grad();
            let w = Tensor::<2>::random([din, dout], normal, &device).require_grad();
            let bias = with_bias.then(|| Tensor::<1>::random([dout], normal, &device));
            // The output's gradient: a fixed pattern, different at every entry.
            let g = Tensor::<3>::random([bsz, t, dout], normal, &device);
            let y = dense(x.clone(), w.clone(), bias.clone(), p);
            let grads = (y.clone() * g.clone()).sum().backward();
            let (xs, ws, gs) = (v(x.to_data()), v(w.to_data()), v(g.to_data()));
            let bs = bias.map(|b| v(b.into_data()));
            let rows = bsz * t;
            let what = format!("{p} dense [{rows}x{din} -> {dout}], bias {with_bias}");
            let (sum, mag) = products(rows, din, dout, &|r, j| xs[r * din + j], &|j, c| ws[j * dout + c]);
            let got = v(y.to_data());
            check(&got, &sum, &mag, bs.as_deref(), &format!("{what}: output"));
            // d x = g W^T and d W = x^T g, both products of rounded operands.
            let (sum, mag) = products(rows, dout, din, &|r, j| gs[r * dout + j], &|j, c| ws[c * dout + j]);
            check(&v(x.grad(&grads).unwrap().into_data()), &sum, &mag, None, &format!("{what}: input gradient"));
            let (sum, mag) = products(din, rows, dout, &|r, j| xs[j * din + r], &|j, c| gs[j * dout + c]);
            check(&v(w.grad(&grads).unwrap().into_data()), &sum, &mag, None, &format!("{what}: weight gradient"));
            let full = v(dense(x, w, None, Precision::F32).into_data());
            assert!(full.iter().zip(&got).any(|(a, b)| a != b), "{what}: gave f32's values");
        }

        // [B, H, m, k] x [B, H, k, n], as the attention's scores.
        let (bsz, h, m, k, n) = (2, 3, 5, 8, 6);
        let a = Tensor::<4>::random([bsz, h, m, k], normal, &device);
        let b = Tensor::<4>::random([bsz, h, k, n], normal, &device);
        let (av, bv) = (v(a.to_data()), v(b.to_data()));
        let got = v(heads_matmul(a, b, p).into_data());
        for q in 0..bsz * h {
            let (sum, mag) = products(m, k, n, &|r, j| av[q * m * k + r * k + j], &|j, c| bv[q * k * n + j * n + c]);
            check(&got[q * m * n..(q + 1) * m * n], &sum, &mag, None, &format!("{p} heads_matmul, head {q}"));
        }
    }
}

/// Mixed precision in the trainer (`training.precision = "f16"`, with its
/// loss scale, and `"bf16"`): a whole-model and a split update from the
/// same start as f32's move the weights nearly as f32's do (their
/// difference a small share of the update), are not f32's (the setting
/// reaches every block), and are bit-identical at one and at two threads
/// with micro-batches (the CPU's determinism holds).
#[test]
fn mixed_updates_track_f32_and_stay_deterministic() {
    for framework in ["fl", "sflam"] {
        let update = |extra: &str, threads: usize| sgd_update(framework, extra, threads);
        let (start, full) = update("", 1);
        let (_, full_parts) = update("micro_batches = 4\n", 1);
        let moved = params_diff(&full.params, &start);
        for p in ["f16", "bf16"] {
            let (_, half) = update(&format!("precision = \"{p}\"\n"), 1);
            let apart = params_diff(&half.params, &full.params);
            eprintln!(
                "{framework} {p}: update {moved:e}, against f32 {apart:e}, loss {} against {}",
                half.loss, full.loss
            );
            assert!(apart > 0.0, "{framework}: {p} gave f32's weights");
            // Measured: bf16 0.14% of the update, f16 0.03%; losses within 5e-6.
            assert!(apart <= 0.01 * moved, "{framework}: {p} is {apart:e} from f32 after an update of {moved:e}");
            assert!(
                (half.loss - full.loss).abs() <= 1e-3 * full.loss,
                "{framework} {p}: loss {} against {}",
                half.loss,
                full.loss
            );
            let parts = format!("precision = \"{p}\"\nmicro_batches = 4\n");
            let (_, one) = update(&parts, 1);
            let (_, two) = update(&parts, 2);
            assert_eq!(one.params, two.params, "{framework}: {p} at one and two threads");
            // The parts' copies of the model keep the setting: apart from
            // f32's parts by about as much as the whole batch is from f32's
            // whole batch, not by summation order alone (hundreds of times less).
            let order = params_diff(&full_parts.params, &full.params);
            let parted = params_diff(&one.params, &full_parts.params);
            eprintln!(
                "{framework} {p} in parts: against f32's parts {parted:e}, f32's parts against its whole {order:e}"
            );
            assert!(
                parted >= 0.5 * apart && parted > 10.0 * order,
                "{framework} {p}: {parted:e} / {apart:e} / {order:e}"
            );
        }
    }
}

/// f16's loss scale: a step whose scaled gradients overflow f16 (2^24
/// times a loss of about 2.3 puts the logits' gradient past f16's largest
/// value, 65504) is computed again at half the scale until they are
/// finite: the step ends at a smaller scale with finite weights near the
/// f32 step's; without scaling (f32) the scale is untouched.
#[test]
fn an_f16_step_that_overflows_is_taken_again_at_half_the_scale() {
    use burn::optim::SgdConfig;
    use sflam::train::Precision;
    use sflam::train::training::{LossScale, whole_step};
    let (m0, loss_fn, x, y) = whole_model_batch();
    let step = |p: Precision, scale: &mut LossScale| {
        let mut opt = SgdConfig::new().init();
        let m = m0.clone().with_precision(p);
        whole_step(m, &mut opt, 0.05, &loss_fn, x.clone(), y.clone(), 1, scale).unwrap()
    };
    let mut none = LossScale::NONE;
    let (full, _) = step(Precision::F32, &mut none);
    assert_eq!(none, LossScale::NONE);
    assert_eq!(none.halvings(), 0);
    let mut scale = LossScale::first(Precision::F16, 24);
    let (half, loss) = step(Precision::F16, &mut scale);
    eprintln!("loss {loss}, scale after the step 2^{}", scale.factor().log2());
    assert!(scale.factor() < (24f32).exp2(), "2^24 must overflow here");
    assert!(scale.factor() >= 1.0);
    // Each halving counted: 2^24 down to the scale the step ended at.
    assert_eq!(scale.halvings() as f32, 24.0 - scale.factor().log2());
    let (start, full, half) = (whole_flat(&m0), whole_flat(&full), whole_flat(&half));
    assert!(half.iter().all(|v| v.is_finite()));
    let (moved, apart) = (max_abs_diff(&full, &start), max_abs_diff(&half, &full));
    eprintln!("update {moved:e}, f16 against f32 {apart:e}");
    assert!(apart <= 0.01 * moved, "f16 after halving is {apart:e} from f32 (update {moved:e})");
}

/// A `vit-tiny-28` whole model on flex with autodiff, its loss, and a
/// batch of 8 random images labelled 0..8.
fn whole_model_batch() -> (
    sflam::train::model::SplitVit,
    burn::nn::loss::CrossEntropyLoss,
    burn::tensor::Tensor<4>,
    burn::tensor::Tensor<1, burn::tensor::Int>,
) {
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
    let vit = sflam::workload::vit_config("vit-tiny-28").unwrap();
    let device = Device::flex().autodiff();
    let m = sflam::train::model::SplitVit::new(vit, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let x = Tensor::<4>::random([8, vit.channels, vit.image, vit.image], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..8).map(|i| (i % 10) as i64).collect(), [8]), &device);
    (m, loss_fn, x, y)
}

/// Both halves' parameters of a whole model, device side first.
fn whole_flat(m: &sflam::train::model::SplitVit) -> Vec<f32> {
    let mut v = to_flat(&m.device_side);
    v.extend(to_flat(&m.server_side));
    v
}

/// Every gradient of `m` in `grads`, flattened in visiting order.
fn grads_of<M: burn::module::Module>(m: &M, grads: &burn::optim::GradientsParams) -> Vec<f32> {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Get<'a>(&'a burn::optim::GradientsParams, Vec<f32>);
    impl ModuleVisitor for Get<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = self.0.get::<D>(param.id).expect("a gradient for every parameter");
            self.1.extend(g.into_data().iter::<f32>());
        }
    }
    let mut get = Get(grads, Vec::new());
    m.visit(&mut get);
    get.1
}

/// A small whole model, a batch and a step function for the optimizer
/// tests: `steps` whole-model steps with `opt` from `m`.
fn optimizer_bench() -> (
    sflam::train::model::SplitVit,
    impl Fn(sflam::train::model::SplitVit, &mut burn::optim::ModuleOptimizer, usize) -> sflam::train::model::SplitVit,
) {
    use sflam::train::training::{LossScale, whole_step};
    let (m0, loss_fn, x, y) = whole_model_batch();
    let step = move |mut m, opt: &mut burn::optim::ModuleOptimizer, steps: usize| {
        for _ in 0..steps {
            let mut none = LossScale::NONE;
            m = whole_step(m, opt, 0.01, &loss_fn, x.clone(), y.clone(), 1, &mut none).unwrap().0;
        }
        m
    };
    (m0, step)
}

/// The fused optimizer steps (`sflam::train::optim`, one kernel pass per
/// parameter on flex) give exactly Burn's Adam's and SGD's weights (with
/// momentum 0.9 and dampening 0, the trainer's setting, and without)
/// over three steps, and so does their Burn-ops path (other backends').
/// Their states are Burn's format: a state Burn wrote continues in the
/// fused optimizer, and one the fused optimizer wrote continues in Burn's,
/// to the same bits.
#[test]
fn fused_optimizers_give_burns_bits_and_share_its_states() {
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
    use sflam::train::optim::{Adam, Sgd};
    let (m0, step) = optimizer_bench();
    let flat = |m: &sflam::train::model::SplitVit| whole_flat(m).into_iter().map(f32::to_bits).collect::<Vec<_>>();
    let sgd = |momentum: f64| {
        let momentum = (momentum > 0.0).then_some(MomentumConfig { momentum, dampening: 0.0, nesterov: false });
        SgdConfig::new().with_momentum(momentum).init()
    };
    type Make = Box<dyn Fn() -> ModuleOptimizer>;
    let cases: [(&str, Make, Make, Make); 3] = [
        (
            "adam",
            Box::new(|| AdamConfig::new().init()),
            Box::new(|| Adam::new().init()),
            Box::new(|| Adam::unfused().init()),
        ),
        (
            "sgd momentum",
            Box::new(move || sgd(0.9)),
            Box::new(|| Sgd::new(0.9).init()),
            Box::new(|| Sgd::unfused(0.9).init()),
        ),
        ("sgd", Box::new(move || sgd(0.0)), Box::new(|| Sgd::new(0.0).init()), Box::new(|| Sgd::unfused(0.0).init())),
    ];
    for (name, burn_opt, fused, unfused) in cases {
        let (mut b, mut f, mut u) = (burn_opt(), fused(), unfused());
        let want = step(m0.clone(), &mut b, 3);
        assert_ne!(flat(&want), flat(&m0), "{name}: the steps moved the weights");
        assert!(flat(&step(m0.clone(), &mut f, 3)) == flat(&want), "{name}: fused against Burn's");
        assert!(flat(&step(m0.clone(), &mut u, 3)) == flat(&want), "{name}: Burn-ops path against Burn's");
        // Two steps in one optimizer, its state carried over in bytes to
        // the other for the third.
        for (first, second, what) in
            [(&burn_opt, &fused, "Burn's state, fused step"), (&fused, &burn_opt, "fused state, Burn's step")]
        {
            let mut a = first();
            let m = step(m0.clone(), &mut a, 2);
            let mut c = second().from_bytes(a.into_bytes().unwrap()).unwrap();
            assert!(flat(&step(m, &mut c, 1)) == flat(&want), "{name}: {what}");
        }
    }
}

/// The micro-batches' gradients summed by `sflam::train::optim::sum_in_order`
/// (one pass per parameter, in place on flex) are exactly Burn's
/// `GradientsAccumulator`'s fed the parts in order.
#[test]
fn parts_sum_in_order_as_burns_accumulator() {
    use burn::optim::{GradientsAccumulator, GradientsParams};
    use burn::tensor::{Distribution, Tensor};
    let (m, loss_fn, x, y) = whole_model_batch();
    // Five parts of 8 random images each (of the batch's shape).
    let xs: Vec<Tensor<4>> =
        (0..5).map(|_| Tensor::random(x.dims(), Distribution::Normal(0.0, 1.0), &x.device())).collect();
    let parts = || -> Vec<GradientsParams> {
        xs.iter()
            .map(|x| GradientsParams::from_grads(loss_fn.forward(m.forward(x.clone()), y.clone()).backward(), &m))
            .collect()
    };
    let mut acc = GradientsAccumulator::new();
    for p in parts() {
        acc.accumulate(&m, p);
    }
    let want = grads_of(&m, &acc.grads());
    let got = grads_of(&m, &sflam::train::optim::sum_in_order(&m, parts()));
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "the sums differ from Burn's");
    // Not a sum of equal parts: the five batches' gradients differ.
    let single = grads_of(&m, &parts().remove(0));
    assert!(max_abs_diff(&single.iter().map(|g| g * 5.0).collect::<Vec<_>>(), &want) > 1e-6);
}

/// `sflam train` folders: a finished run or an unfinished run's
/// checkpoints are never discarded without `--replace`; `--resume`
/// without a checkpoint says so; a replacement keeps the old run whole
/// until the new one is complete.
#[test]
fn train_folders_are_replaced_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario("");
    s.run.rounds = 2;
    let out = dir.path().join("t");
    let opts =
        |resume, replace, stop| sflam::train::TrainOptions { resume, replace, stop_after: stop, ..Default::default() };
    let err = sflam::train::train_to_dir(&s, &out, &opts(true, false, None)).err().unwrap();
    assert!(err.exit_code() == 2 && err.to_string().contains("no checkpoint to resume from"), "{err}");
    assert!(!out.exists() && !dir.path().join("t.partial").exists());
    let first = sflam::train::train_to_dir(&s, &out, &opts(false, false, None)).unwrap();
    let model = std::fs::read(out.join("model.bpk")).unwrap();
    // Finished: refused without --replace, the model untouched.
    let err = sflam::train::train_to_dir(&s, &out, &opts(false, false, None)).err().unwrap();
    assert!(err.exit_code() == 2 && err.to_string().contains("--replace"), "{err}");
    // A replacement stopped half-way: the old run is whole beside its checkpoints.
    let mut other = s.clone();
    other.run.seed = 9;
    sflam::train::train_to_dir(&other, &out, &opts(false, true, Some(1))).unwrap();
    assert_eq!(std::fs::read(out.join("model.bpk")).unwrap(), model);
    assert!(dir.path().join("t.partial/checkpoints/progress.json").exists());
    // The unfinished run's checkpoints: neither --resume nor --replace is refused.
    let err = sflam::train::train_to_dir(&other, &out, &opts(false, false, None)).err().unwrap();
    assert!(err.to_string().contains("--resume continues it"), "{err}");
    let done = sflam::train::train_to_dir(&other, &out, &opts(true, false, None)).unwrap();
    assert_eq!(done.dir, out.canonicalize().unwrap());
    assert_ne!(std::fs::read(out.join("model.bpk")).unwrap(), model, "replaced when complete");
    assert_ne!(first.state, done.state);
    assert!(!dir.path().join("t.partial").exists() && !dir.path().join("t.replaced").exists());
    // A folder of the user's: refused, the file kept.
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "n").unwrap();
    let err = sflam::train::train_to_dir(&s, &mine, &opts(false, true, None)).err().unwrap();
    assert!(err.to_string().contains("did not write"), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "n");
}

/// A `training.init` whose parameters are not all finite is bad input
/// naming the file, not a numeric checkpoint failing mid-run.
#[test]
fn a_non_finite_initial_model_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario("");
    let t = trainer(&s);
    let mut p = t.initial_params();
    p.server[3] = f32::NAN;
    let path = dir.path().join("nan.bpk");
    t.save(&p, &path).unwrap();
    s.training.init = path.display().to_string();
    let err = sflam::train::initial_state(&s, &t).err().unwrap();
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("nan.bpk (training.init)") && msg.contains("server side's parameter 3 is NaN"), "{msg}");
}

/// `sflam calibrate`: one `sflam train` run per (seed, width) and fp32,
/// each width's recorded accuracy the mean of its runs' last evaluated
/// accuracy, a table the allocators accept; bad widths refused.
#[test]
fn calibrate_measures_a_utility_table() {
    use sflam::train::calibrate::{CalibrateOptions, calibrate};
    let s = scenario("eval_every = 1\n");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal");
    let opts = CalibrateOptions { bits: vec![8, 2], seeds: 2, progress: false, on_point: None };
    let c = calibrate(&s, &out, &opts).unwrap();
    assert_eq!(c.table, out.join("utility.csv"));
    let bits: Vec<u32> = c.rows.iter().map(|r| r.bits).collect();
    assert_eq!(bits, (1..=16).chain([32]).collect::<Vec<u32>>());
    assert!(c.rows.windows(2).all(|w| w[0].utility <= w[1].utility && w[0].utility > 0.0));
    assert_eq!(c.rows.last().unwrap().utility, 1.0);
    // Each measured width's accuracy is the mean of its two runs' own last accuracy.
    for (b, row) in [(2u32, &c.rows[1]), (8, &c.rows[7]), (32, c.rows.last().unwrap())] {
        let accs: Vec<f64> = [3u64, 4]
            .iter()
            .map(|seed| {
                let mut p = s.clone();
                p.run.seed = *seed;
                if b == 32 {
                    p.training.framework = FrameworkKind::Sfl;
                } else {
                    p.training.bits = b;
                }
                let d = out.join(format!("seed={seed}/bits={b}"));
                assert!(d.join("rounds.parquet").is_file(), "{}", d.display());
                let again = dir.path().join(format!("again-{seed}-{b}"));
                let r = sflam::train::train_to_dir(&p, &again, &Default::default()).unwrap();
                r.rows.iter().rev().find_map(|x| x.accuracy).unwrap()
            })
            .collect();
        assert_eq!(row.seeds, 2);
        assert!((row.accuracy.unwrap() - (accs[0] + accs[1]) / 2.0).abs() < 1e-12, "{b} bits");
    }
    assert_eq!(c.rows[3].seeds, 0, "4 bits interpolated");
    // The table drives a run.
    let t = sflam::alloc::utility::read_table(&c.table, 4, 16).unwrap();
    assert_eq!(t.len(), 13);
    // Bad widths and seeds: bad input, nothing written.
    for (bits, seeds) in [(vec![0], 1), (vec![4, 4], 1), (vec![17], 1), (vec![], 1), (vec![4], 0)] {
        let o = dir.path().join("bad");
        let e = calibrate(&s, &o, &CalibrateOptions { bits, seeds, progress: false, on_point: None }).err().unwrap();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(!o.exists());
    }
}

/// `img` turned counter-clockwise by 90 degrees, written independently of
/// `Dataset::rotated`: row i of the result is column n - 1 - i of `img`.
fn rot90(img: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = img[j * n + (n - 1 - i)];
        }
    }
    out
}

#[test]
fn the_rotation_pretext_turns_each_image_by_its_label() {
    let (data, _) = synthetic(1, 4000, 10);
    let data = data.truncated(4000);
    let rot = data.rotated(7, 0);
    assert_eq!((rot.classes, rot.len(), rot.channels, rot.size), (4, data.len(), data.channels, data.size));
    let (n, c) = (data.size, data.channels);
    let len = c * n * n;
    let mut counts = [0usize; 4];
    for i in 0..data.len() {
        let k = rot.labels[i] as usize;
        counts[k] += 1;
        for ch in 0..c {
            let plane = ch * n * n..(ch + 1) * n * n;
            let mut want = data.pixels[i * len..(i + 1) * len][plane.clone()].to_vec();
            for _ in 0..k {
                want = rot90(&want, n);
            }
            assert_eq!(&rot.pixels[i * len..(i + 1) * len][plane], &want[..], "image {i}, turn {k}");
        }
    }
    // The turns are drawn uniformly: 1,000 expected each, sd 27.
    for k in counts {
        assert!((k as f64 - 1000.0).abs() < 150.0, "{counts:?}");
    }
    // Drawn from the seed: the same again, another stream differs.
    assert_eq!(data.rotated(7, 0).labels, rot.labels);
    assert_ne!(data.rotated(7, 1).labels, rot.labels);
}

#[test]
fn a_pretext_run_hands_on_its_backbone_with_a_fresh_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario("task = \"rotation\"\n");
    s.run.rounds = 1;
    let out = dir.path().join("pretext");
    let done = sflam::train::train_to_dir(&s, &out, &Default::default()).unwrap();
    // The pretext model has a 4-class head ...
    let pretext = trainer(&s);
    assert_eq!(pretext.vit.classes, 4);
    // ... the model handed on the data set's 10, freshly drawn as a run of
    // the real task at the same seed draws its own.
    let mut real_s = s.clone();
    real_s.training.task = sflam::config::TrainTask::Labels;
    let real = trainer(&real_s);
    assert_eq!(real.vit.classes, 10);
    let handed = real.load(&out.join("model.bpk")).unwrap();
    let fresh = real.initial_params();
    let trained = &done.state.global;
    assert_eq!(handed.device, trained.device);
    let head = |classes: usize| classes * (real.vit.dim + 1);
    let body = trained.server.len() - head(4);
    assert_eq!(handed.server.len(), body + head(10));
    assert_eq!(handed.server[..body], trained.server[..body]);
    assert_eq!(handed.server[body..], fresh.server[body..]);
    assert_ne!(trained.device, real.initial_params().device, "the backbone trained");
}

/// The checkpoint the default scenario fine-tunes,
/// scenarios/pretrained-rotation.bpk, is what `sflam train
/// scenarios/pretrain-rotation.toml` hands on: a backbone that trained
/// away from the seed's random start, with the fresh 10-class head that
/// run draws; so before fine-tuning it is at chance on the default's test
/// images. (That the backbone is that run's, byte for byte, takes the
/// 97 s pretraining on the full data set: docs/training.md.)
#[test]
fn the_shipped_checkpoint_is_a_pretext_backbone_with_a_fresh_head_at_chance() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pre = sflam::config::load_scenario(&repo.join("scenarios/pretrain-rotation.toml"), &[]).unwrap();
    assert_eq!(pre.training.task, sflam::config::TrainTask::Rotation);
    pre.training.task = sflam::config::TrainTask::Labels;
    let real = trainer(&pre);
    let shipped = real.load(&repo.join("scenarios/pretrained-rotation.bpk")).unwrap();
    let fresh = real.initial_params();
    let head = real.vit.classes * (real.vit.dim + 1);
    let body = fresh.server.len() - head;
    assert_eq!(shipped.server.len(), fresh.server.len());
    assert_eq!(shipped.server[body..], fresh.server[body..], "the head is the fresh one");
    assert_ne!(shipped.device, fresh.device, "the patch embedding trained");
    assert_ne!(shipped.server[..body], fresh.server[..body], "the blocks trained");
    let default = sflam::config::load_scenario(&repo.join("scenarios/default.toml"), &[]).unwrap();
    assert_eq!(default.training.init, "scenarios/pretrained-rotation.bpk");
    let e = trainer(&default).evaluate(&shipped).unwrap();
    // 1,000 test images of 10 balanced classes: chance is 10%, sd 0.95 points.
    assert!((0.05..0.16).contains(&e.accuracy), "{}", e.accuracy);
}
