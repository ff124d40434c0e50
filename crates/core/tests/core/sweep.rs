//! Sweeps resume complete points only when they ran the same scenario.

use sflam_core::sweep::{SweepOptions, parse_axis, run_sweep};

#[test]
fn a_sweep_resumes_only_points_that_ran_the_same_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, "[run]\nrounds = 1\n[devices]\ncount = 20\n").unwrap();
    let out = dir.path().join("sweep");
    let axes = vec![parse_axis("run.candidates=5,10").unwrap()];
    let o = SweepOptions { jobs: 1, shard: (0, 1), common_seed: false, progress: false, learner: None };
    let first = run_sweep(&file, &[], &axes, &out, &o).unwrap();
    assert_eq!(first.len(), 2);
    let stamp = |d: &std::path::Path| std::fs::metadata(d.join("summary.json")).unwrap().modified().unwrap();
    let before: Vec<_> = first.iter().map(|d| stamp(d)).collect();
    // The same sweep again: both points resumed, nothing re-run.
    let again = run_sweep(&file, &[], &axes, &out, &o).unwrap();
    assert_eq!(again, first);
    assert_eq!(again.iter().map(|d| stamp(d)).collect::<Vec<_>>(), before);
    // Another scenario under the same folders: refused, naming the points.
    let e = run_sweep(&file, &["run.rounds=2".to_string()], &axes, &out, &o).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(msg.contains("2 point(s)") && msg.contains("run.candidates=5"), "{msg}");
    assert_eq!(first.iter().map(|d| stamp(d)).collect::<Vec<_>>(), before, "nothing was overwritten");
}

/// A point whose input file changed since it ran is stale: the sweep
/// refuses before running anything, naming the file.
#[test]
fn a_sweep_refuses_to_resume_points_whose_input_files_changed() {
    let dir = tempfile::tempdir().unwrap();
    let pos = dir.path().join("pos.csv");
    let rows = |dx: f64| {
        let mut t = String::from("x_m,y_m\n");
        for i in 0..20 {
            t += &format!("{},{}\n", 100.0 + dx + i as f64 * 10.0, 50.0);
        }
        t
    };
    std::fs::write(&pos, rows(0.0)).unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        format!(
            "[run]\nrounds = 1\n[devices]\ncount = 20\nplacement = \"file\"\npositions_file = {:?}\n",
            pos.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("sweep");
    let axes = vec![parse_axis("run.candidates=5,10").unwrap()];
    let o = SweepOptions { jobs: 1, shard: (0, 1), common_seed: false, progress: false, learner: None };
    let first = run_sweep(&file, &[], &axes, &out, &o).unwrap();
    let resolved = std::fs::read_to_string(first[0].join("scenario.resolved.toml")).unwrap();
    assert!(resolved.contains("# input devices.positions_file") && resolved.contains("sha256:"), "{resolved}");
    // Unchanged: resumed.
    run_sweep(&file, &[], &axes, &out, &o).unwrap();
    // Edited between two invocations: refused, naming the file.
    std::fs::write(&pos, rows(1.0)).unwrap();
    let e = run_sweep(&file, &[], &axes, &out, &o).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(msg.contains("pos.csv") && msg.contains("changed since that run read it"), "{msg}");
}
