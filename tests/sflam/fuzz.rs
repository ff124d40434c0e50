//! Generated input for the learning half's readers: mutated and arbitrary
//! IDX files (Fashion-MNIST) and safetensors checkpoints (`training.init`).
//! Each case returns Ok or bad input (exit 2) within a time bound: never a
//! panic, an abort or a hang. `SFLAM_FUZZ_CASES` and
//! `SFLAM_FUZZ_SEED` set the cases per target and their seed.

#[path = "../../crates/core/tests/core/fuzz_support.rs"]
mod fuzz_support;

use fuzz_support::{bounded, inputs, mutate, runner};
use proptest::prelude::*;
use std::path::Path;

/// An IDX file of u8 with `dims` and `body`.
fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn idx_reader_answers_every_input() {
    use sflam::train::data::{DatasetKind, load};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let seeds = [
        ("train-images-idx3-ubyte", idx(&[3, 4, 4], &[7; 48])),
        ("train-labels-idx1-ubyte", idx(&[3], &[0, 1, 9])),
        ("t10k-images-idx3-ubyte", idx(&[2, 4, 4], &[9; 32])),
        ("t10k-labels-idx1-ubyte", idx(&[2], &[3, 4])),
    ];
    for (name, bytes) in &seeds {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    assert!(load(DatasetKind::FashionMnist, d.to_str().unwrap(), 0).is_ok(), "the seeds are a valid set");
    runner()
        .run(&(inputs(), 0..seeds.len()), |((raw, bytes, edits), k)| {
            let (name, seed) = &seeds[k];
            std::fs::write(d.join(name), if raw { bytes } else { mutate(seed, &edits) }).unwrap();
            let dir = d.to_str().unwrap().to_string();
            let r = bounded(move || load(DatasetKind::FashionMnist, &dir, 0).map(|(a, b)| a.len() + b.len()))?;
            std::fs::write(d.join(name), seed).unwrap();
            if let Err(e) = r {
                prop_assert!(e.exit_code() == 2, "{e}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn safetensors_reader_answers_every_input() {
    let text = "[run]\nseed = 1\n[devices]\ncount = 2\n[training]\ndataset = \"synthetic\"\nmodel = \"vit-tiny-28\"\n";
    let s = sflam::config::load_scenario_str(text, Path::new("<fuzz>"), &[]).unwrap();
    let t = std::sync::Arc::new(sflam::train::trainer_of(&s).unwrap());
    let seed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/timm_vit.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.safetensors");
    runner()
        .run(&inputs(), |(raw, bytes, edits)| {
            // Edits land in the header (its first bytes) as often as in the data.
            std::fs::write(&path, if raw { bytes } else { mutate(&seed, &edits) }).unwrap();
            let (t, p) = (t.clone(), path.clone());
            let r = bounded(move || {
                let mut m = t.template(&t.initial_params());
                sflam::train::import::load_timm(&mut m, &p).map(|_| ())
            })?;
            if let Err(e) = r {
                prop_assert!(e.exit_code() == 2, "{e}");
            }
            Ok(())
        })
        .unwrap();
}
