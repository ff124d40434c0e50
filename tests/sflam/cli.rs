//! The binary: exit codes and output files.

use std::process::Command;

fn sflam() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sflam"))
}

#[test]
fn validate_exit_codes() {
    let ok = sflam().args(["validate", "scenarios/default.toml"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[quantization]\nbits_min = 0\n").unwrap();
    let out = sflam().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:") && err.contains("quantization.bits_min") && err.contains("1..=16"), "{err}");
    let missing = sflam().args(["validate", "no/such/file.toml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn workload_json_has_the_table() {
    let out = sflam().args(["workload", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    let b32 = rows.iter().find(|r| r["model"] == "vit-b32").unwrap();
    for key in ["model", "device_params_mib", "device_gflops_batch64", "device_memory_mib", "output_shape"] {
        assert!(b32.get(key).is_some(), "missing {key}");
    }
    assert_eq!(b32["output_shape"], "(b, 50, 768)");
    let table = sflam().arg("workload").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("| vit-l32 | 12.00 | 19.73 | 24.50 |"));
}

#[test]
fn run_writes_complete_output_and_resolved_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let st = sflam()
        .args(["run", "scenarios/default.toml", "-q", "--set", "run.rounds=2", "--set", "run.events_trace=true", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    for f in [
        "rounds.parquet",
        "device_rounds.parquet",
        "devices.parquet",
        "events.parquet",
        "summary.json",
        "scenario.resolved.toml",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert!(!dir.path().join("run.partial").exists());
    let resolved = std::fs::read_to_string(out.join("scenario.resolved.toml")).unwrap();
    assert!(resolved.contains("# seed = 1") && resolved.contains("rounds = 2") && resolved.contains("kappa"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["rounds"], 2);
    // The default run is the co-simulation: it trains and tests a model.
    assert_eq!(summary["trained_model"], "vit-tiny-28");
    use parquet::record::RowAccessor;
    let rounds = std::fs::File::open(out.join("rounds.parquet")).unwrap();
    let rows = parquet::file::reader::SerializedFileReader::new(rounds).unwrap();
    let acc: Vec<f64> = parquet::file::reader::FileReader::get_row_iter(&rows, None)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let i = r.get_column_iter().position(|(n, _)| n == "accuracy").unwrap();
            r.get_double(i).unwrap()
        })
        .collect();
    assert_eq!(acc.len(), 2);
    assert!(acc[1] > 0.15 && acc[1] <= 1.0, "accuracy {acc:?} after two rounds (chance 0.1)");
    for k in ["p50", "p90", "p99", "max"] {
        assert!(summary["device_round_time_s"][k].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn failed_run_leaves_no_complete_looking_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A dump folder that cannot be created makes the run fail midway.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let st = sflam()
        .args([
            "run",
            "scenarios/default.toml",
            "-q",
            "--set",
            "run.rounds=2",
            "--set",
            "training.enabled=false",
            "--dump-problems",
        ])
        .arg(blocker.join("sub"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_ne!(st.status.code(), Some(0));
    assert!(!out.exists(), "a failed run must not leave {}", out.display());
}

#[test]
fn dump_problems_and_allocate_offline() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("problems");
    let st = sflam()
        .args(["run", "scenarios/default.toml", "-q", "--set", "run.rounds=2", "--set", "training.enabled=false", "-o"])
        .arg(dir.path().join("run"))
        .arg("--dump-problems")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let file = dump.join("round-00000.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(!v["problem"]["candidates"].as_array().unwrap().is_empty());
    let out = sflam().arg("allocate").arg(&file).args(["--allocator", "fixed"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(d["assignments"].as_array().is_some());
    // Bad input: not JSON, unknown allocator.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{").unwrap();
    let out = sflam().arg("allocate").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = sflam().arg("allocate").arg(&file).args(["--allocator", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `sflam run runs/x/scenario.resolved.toml` reproduces runs/x into a new
/// folder, byte for byte, and leaves runs/x as it was.
#[test]
fn rerunning_a_resolved_scenario_never_overwrites_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("x");
    let out = sflam()
        .args(["run", "scenarios/default.toml", "-q", "--set", "run.rounds=3", "--set", "training.enabled=false", "-o"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = std::fs::read(first.join("device_rounds.parquet")).unwrap();
    let summary = std::fs::read(first.join("summary.json")).unwrap();
    for k in 1..=2 {
        let out = sflam().arg("run").arg(first.join("scenario.resolved.toml")).arg("-q").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let again = dir.path().join(format!("x.rerun-{k}"));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("x.rerun-{k}")));
        assert_eq!(std::fs::read(again.join("device_rounds.parquet")).unwrap(), before, "rerun {k} reproduces");
    }
    assert_eq!(std::fs::read(first.join("device_rounds.parquet")).unwrap(), before);
    assert_eq!(std::fs::read(first.join("summary.json")).unwrap(), summary, "the original run is untouched");
}

/// A solver stopped at its bound is a clear error naming the settings that
/// bound it (exit 2), and leaves no output behind; with room, the same run
/// converges.
#[test]
fn bcd_that_does_not_converge_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = |iters: &str| {
        sflam()
            .args(["run", "scenarios/fig4.toml", "-q", "--set", "run.rounds=2", "--set", "allocator.name=bcd"])
            .args(["--set", &format!("allocator.max_iterations={iters}"), "-o"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let st = run("1");
    let err = String::from_utf8_lossy(&st.stderr);
    assert_eq!(st.status.code(), Some(2), "{err}");
    assert!(err.contains("did not converge") && err.contains("allocator.max_iterations = 1"), "{err}");
    assert!(err.contains("allocator.epsilon_j"), "{err}");
    assert!(!out.exists(), "no output after a failed run");
    let st = run("50");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
}

/// The console: a header once, one line per round with candidates,
/// scheduled, finished, stragglers and failed; the report command named at
/// the end; `-q` keeps only the summary, as its help says.
#[test]
fn console_lines_and_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let run = |quiet: bool, out: &str| {
        let mut c = sflam();
        c.args(["run", "scenarios/fig4.toml", "--set", "run.rounds=3", "-o"]).arg(dir.path().join(out));
        if quiet {
            c.arg("-q");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let loud = run(false, "a");
    let lines: Vec<&str> = loud.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["round", "end_s", "cand", "sched", "fin", "strag", "failed", "energy_j", "loss", "accuracy"]);
    assert_eq!(lines.iter().filter(|l| l.trim_start().starts_with("round")).count(), 1, "the header once");
    for (r, line) in lines[1..4].iter().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0], r.to_string());
        let n: Vec<u32> = f[2..7].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(n[0], 30, "fig4 has 30 candidates a round");
        assert!(n[1] <= n[0] && n[2] + n[3] + n[4] == n[1], "{line}");
    }
    assert!(loud.contains(&format!("report: python3 analysis/report.py {}", dir.path().join("a").display())));
    let quiet = run(true, "b");
    assert!(!quiet.contains("accuracy") && !quiet.contains("end_s"), "{quiet}");
    assert!(quiet.contains("output:"));
}

/// Help teaches by example, and a misspelled subcommand gets the right one.
#[test]
fn help_has_examples_and_typos_get_suggestions() {
    for sub in [&[][..], &["run"], &["sweep"], &["train"], &["validate"], &["allocate"], &["workload"]] {
        let o = sflam().args(sub).arg("--help").output().unwrap();
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(o.status.success() && text.contains("Examples:\n  sflam "), "{sub:?}: {text}");
    }
    for (typo, right) in [("rum", "run"), ("swep", "sweep"), ("trian", "train")] {
        let o = sflam().arg(typo).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("similar subcommand exists: '{right}'")), "{typo}: {err}");
    }
}

/// A reader that stops early (`sflam run | head -2`) neither kills nor
/// fails the run: its output still completes, exit 0.
#[test]
fn a_closed_stdout_does_not_fail_the_run() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = sflam()
        // 2,000 lines (about 180 KB) overflow the pipe's buffer: later writes meet EPIPE.
        .args(["run", "scenarios/fig4.toml", "--set", "run.rounds=2000", "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("round"), "{first}");
    // The reader is dropped here: later lines meet a closed pipe.
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("rounds.parquet").is_file() && out.join("summary.json").is_file());
}

/// Without `scenarios/default.toml` in the working folder `sflam run`
/// runs the built-in default, which still fine-tunes the shipped
/// checkpoint: read from the source tree the binary was built from, the
/// path recorded in the resolved scenario.
#[test]
fn the_built_in_default_finds_its_checkpoint_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let st =
        sflam().current_dir(dir.path()).args(["run", "-q", "--set", "run.rounds=1", "-o", "out"]).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let resolved = std::fs::read_to_string(dir.path().join("out/scenario.resolved.toml")).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pretrained-rotation.bpk");
    assert!(resolved.contains(&format!("init = {:?}", shipped.display().to_string())), "{resolved}");
}
