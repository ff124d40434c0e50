//! Generated input: arbitrary and mutated bytes fed to the scenario
//! loader, the allocation-problem reader (`sflam allocate`) and the CSV and
//! Parquet table readers. Each case must return Ok or a typed error within
//! a time bound: never a panic, an abort or a hang.
//!
//! CI runs a bounded number of cases per target on a fixed seed; a long
//! campaign sets `SFLAM_FUZZ_CASES` (e.g. 100000) and `SFLAM_FUZZ_SEED`
//! and runs `cargo test -p sflam-core --test core fuzz` (see docs/trust.md).

use crate::fuzz_support::{bounded, inputs, mutate, runner};
use proptest::prelude::*;
use std::path::Path;

#[test]
fn scenario_loader_answers_every_input() {
    let seed = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/default.toml")).unwrap();
    runner()
        .run(&inputs(), |(raw, bytes, edits)| {
            let input = if raw { bytes } else { mutate(&seed, &edits) };
            let text = String::from_utf8_lossy(&input).into_owned();
            let shown = text.clone();
            let r = bounded(move || {
                sflam_core::config::load_scenario_str(&text, Path::new("fuzz.toml"), &[]).map(|s| {
                    // What loads must also resolve and load again.
                    let again = sflam_core::config::load_scenario_str(&s.resolved_toml(), Path::new("r.toml"), &[]);
                    assert!(again.is_ok(), "a loaded scenario's resolved form is refused: {again:?}");
                })
            })?;
            if let Err(e) = r {
                prop_assert!(e.exit_code() == 2, "a run failure, not bad input: {e}\non: {shown}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn problem_reader_and_allocators_answer_every_input() {
    // A real problem, as `--dump-problems` writes it.
    let s = sflam_core::config::load_scenario_str(
        "[run]\nrounds = 1\ncandidates = 6\n[devices]\ncount = 8\n[network]\nrb_count = 4\n",
        Path::new("p.toml"),
        &[],
    )
    .unwrap();
    let mut problem = None;
    let mut sink = sflam_core::trace::VecSink::default();
    let hook: sflam_core::engine::DecisionHook<'_> = Box::new(|_, p: &sflam_core::alloc::Problem, _| {
        problem.get_or_insert_with(|| serde_json::json!({ "problem": p }).to_string());
        Ok(())
    });
    sflam_core::run::simulate(&s, &mut sink, None, Some(hook), None).unwrap();
    let seed = problem.unwrap().into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("problem.json");
    let names = ["exact", "bcd", "fixed", "ep", "rb", "nq"];
    runner()
        .run(&(inputs(), 0..names.len()), |((raw, bytes, edits), k)| {
            let input = if raw { bytes } else { mutate(&seed, &edits) };
            std::fs::write(&path, &input).unwrap();
            let p = path.clone();
            let r = bounded(move || sflam_core::alloc::solve_file(&p, names[k], 1).map(|_| ()))?;
            if let Err(e) = r {
                prop_assert!(
                    e.exit_code() == 2,
                    "{} on {}: a run failure, not bad input: {e}",
                    names[k],
                    p_str(&input)
                );
            }
            Ok(())
        })
        .unwrap();
}

fn p_str(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(2000).collect()
}

#[test]
fn table_readers_answer_every_input() {
    use sflam_core::geo::{Column, read_columns};
    let dir = tempfile::tempdir().unwrap();
    let csv = b"x_m,y_m,rb_count\n10,20,5\n-30.5,40,6\n1e3,2e3,7\n".to_vec();
    // A valid Parquet table: the CSV's rows as a sflam trace writes them.
    let parquet = {
        use arrow_array::{Float64Array, Int32Array, RecordBatch};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("x_m", Arc::new(Float64Array::from(vec![10.0, -30.5, 1e3])) as Arc<dyn arrow_array::Array>),
            ("y_m", Arc::new(Float64Array::from(vec![20.0, 40.0, 2e3])) as _),
            ("rb_count", Arc::new(Int32Array::from(vec![5, 6, 7])) as _),
        ])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    };
    let spec = [
        Column::required("x_m", -1e7, 1e7),
        Column::required("y_m", -1e7, 1e7),
        Column::optional("rb_count", 1.0, 1e5),
    ];
    runner()
        .run(&(inputs(), any::<bool>()), |((raw, bytes, edits), is_csv)| {
            let (seed, name) = if is_csv { (&csv, "t.csv") } else { (&parquet, "t.parquet") };
            let input = if raw { bytes } else { mutate(seed, &edits) };
            let path = dir.path().join(name);
            std::fs::write(&path, &input).unwrap();
            let r = bounded(move || read_columns(&path, "cells.file", &spec).map(|c| c.len()))?;
            if let Err(e) = r {
                prop_assert!(e.exit_code() == 2, "{e}");
            }
            Ok(())
        })
        .unwrap();
}
