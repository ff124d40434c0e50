//! Output folders: sflam never deletes or overwrites what it did not
//! write, one process writes a folder at a time, and a replaced output
//! stays whole until the new one is. Each case checks that a sentinel
//! file of the user's survives.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sflam() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sflam"))
}

fn default_scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml")
}

/// A short timing-only run of the default scenario into `out`, from `cwd`.
fn run_in(cwd: &Path, out: &str, extra: &[&str]) -> Output {
    sflam()
        .current_dir(cwd)
        .arg("run")
        .arg(default_scenario())
        .args(["-q", "--set", "training.enabled=false", "--set", "run.rounds=2", "-o", out])
        .args(extra)
        .output()
        .unwrap()
}

fn sentinel(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("notes.txt");
    std::fs::write(&p, "a week of notes").unwrap();
    p
}

fn refused(o: &Output, words: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(words), "expected `{words}` in: {err}");
}

fn intact(p: &Path) {
    assert_eq!(std::fs::read_to_string(p).unwrap(), "a week of notes", "{} was touched", p.display());
}

/// Entries of a folder, sorted.
fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn the_working_folder_its_parents_and_the_root_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let note = sentinel(&work);
    let up = sentinel(tmp.path()).with_file_name("notes.txt");
    refused(&run_in(&work, ".", &[]), "working folder");
    refused(&run_in(&work, "..", &[]), "working folder");
    refused(&run_in(&work, "../work/", &[]), "working folder");
    refused(&run_in(&work, "/", &[]), "root");
    intact(&note);
    intact(&up);
    assert_eq!(ls(&work), ["notes.txt"]);
    assert_eq!(ls(tmp.path()), ["notes.txt", "work"]);
}

#[test]
fn a_folder_of_the_users_or_a_file_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let mine = tmp.path().join("mine");
    let note = sentinel(&mine);
    refused(&run_in(tmp.path(), "mine", &[]), "files sflam did not write (`notes.txt`)");
    refused(&run_in(tmp.path(), "mine/", &[]), "did not write");
    // The scenario's own folder is a folder of the user's like any other.
    std::fs::copy(default_scenario(), mine.join("s.toml")).unwrap();
    let o = sflam()
        .current_dir(tmp.path())
        .args(["run", "mine/s.toml", "-q", "--set", "training.enabled=false", "-o", "mine"])
        .output()
        .unwrap();
    refused(&o, "did not write");
    // A regular file as the output.
    let file = tmp.path().join("file.csv");
    std::fs::write(&file, "a week of notes").unwrap();
    refused(&run_in(tmp.path(), "file.csv", &[]), "is a file");
    intact(&file);
    intact(&note);
    assert_eq!(ls(&mine), ["notes.txt", "s.toml"]);
    assert_eq!(ls(tmp.path()), ["file.csv", "mine"], "nothing written beside them");
    // --dump-problems into a folder of the user's: refused too.
    let o = run_in(tmp.path(), "run", &["--dump-problems", "mine"]);
    refused(&o, "did not write");
    intact(&note);
    assert!(!tmp.path().join("run").exists());
}

#[test]
fn a_complete_run_is_replaced_whole_and_only_if_sflam_alone_wrote_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_in(tmp.path(), "runs/x", &["--dump-problems", "problems"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = tmp.path().join("runs/x");
    assert!(ls(&x).contains(&".sflam-output".to_string()) && x.join("summary.json").exists());
    let first = std::fs::read(x.join("device_rounds.parquet")).unwrap();
    // Again, with a trailing slash: replaced, nothing left beside it.
    let o = run_in(tmp.path(), "runs/x/", &["--set", "run.seed=2", "--dump-problems", "problems/"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ls(&tmp.path().join("runs")), ["x"]);
    assert_eq!(ls(tmp.path()), ["problems", "runs"]);
    assert_ne!(std::fs::read(x.join("device_rounds.parquet")).unwrap(), first, "the seed-2 run replaced it");
    // A run that fails after it started leaves the old run whole.
    let before = std::fs::read(x.join("summary.json")).unwrap();
    let o = sflam()
        .current_dir(tmp.path())
        .arg("run")
        .arg(default_scenario())
        .args(["-q", "--set", "run.rounds=1", "--set", "training.init=\"missing.bpk\"", "-o", "runs/x"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(std::fs::read(x.join("summary.json")).unwrap(), before);
    assert_eq!(ls(&tmp.path().join("runs")), ["x"], "no partial output left");
    // A file of the user's put into the run: the run is no longer sflam's alone.
    let note = sentinel(&x);
    refused(&run_in(tmp.path(), "runs/x", &[]), "files sflam did not write there (`notes.txt`)");
    intact(&note);
    assert_eq!(std::fs::read(x.join("summary.json")).unwrap(), before);
    // An output of another command is not replaced by a run.
    let sweep = tmp.path().join("sweep");
    std::fs::create_dir(&sweep).unwrap();
    std::fs::write(sweep.join(".sflam-output"), r#"{"kind":"sweep","complete":false,"sflam_version":"0"}"#).unwrap();
    refused(&run_in(tmp.path(), "sweep", &[]), "`sflam sweep` output");
}

#[test]
fn a_second_writer_of_one_folder_is_refused_and_the_first_output_is_whole() {
    let tmp = tempfile::tempdir().unwrap();
    // Long enough (a million devices) that the second starts while the
    // first holds the lock; the first's lock file appears before its work.
    let args = |out: &str| {
        let mut c = sflam();
        c.current_dir(tmp.path())
            .arg("run")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/million-devices.toml"))
            .args(["-q", "--set", "run.rounds=30", "-o", out]);
        c
    };
    let mut first = args("shared").stdout(std::process::Stdio::null()).spawn().unwrap();
    let lock = tmp.path().join("shared.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let second = args("shared").output().unwrap();
    let first = first.wait().unwrap();
    assert!(first.success());
    refused(&second, "another sflam process is writing `shared`");
    // The first's output is whole: the same as a lone run's.
    let lone = args("lone").output().unwrap();
    assert!(lone.status.success());
    // (rounds.parquet holds the allocator's wall time, the one column that varies.)
    for f in ["device_rounds.parquet", "devices.parquet"] {
        let (a, b) = (tmp.path().join("shared").join(f), tmp.path().join("lone").join(f));
        assert!(std::fs::read(a).unwrap() == std::fs::read(b).unwrap(), "{f} differs from a lone run's");
    }
    assert_eq!(ls(tmp.path()), ["lone", "shared"], "no lock or partial left");
}

#[test]
fn a_sweep_refuses_a_grid_that_writes_one_folder_twice_and_a_folder_of_the_users() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = |grid: &[&str], out: &str| {
        let mut c = sflam();
        c.current_dir(tmp.path()).arg("sweep").arg(default_scenario()).args([
            "-q",
            "--set",
            "training.enabled=false",
            "--set",
            "run.rounds=1",
            "-o",
            out,
        ]);
        for g in grid {
            c.args(["--grid", g]);
        }
        c.output().unwrap()
    };
    refused(&sweep(&["run.seed=1,1"], "s"), "given twice");
    refused(&sweep(&["run.seed=1,2", "run.seed=3,4"], "s"), "two axes");
    let o = sweep(&["run.seed=1,2"], "s");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ls(&tmp.path().join("s")), [".sflam-output", "run.seed=1", "run.seed=2"]);
    let note = sentinel(&tmp.path().join("mine"));
    refused(&sweep(&["run.seed=1,2"], "mine"), "did not write");
    intact(&note);
    let o = sflam().arg("sweep").arg(default_scenario()).args(["--jobs", "0", "--grid", "run.seed=1"]).output();
    refused(&o.unwrap(), "--jobs 0");
}

/// The inputs that crashed, hung or answered wrongly: each is now bad
/// input (exit 2) naming the field, the file and what is allowed.
#[test]
fn extreme_and_malformed_inputs_are_bad_input_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let validate = |args: &[&str]| {
        sflam().current_dir(tmp.path()).arg("validate").arg(default_scenario()).args(args).output().unwrap()
    };
    // Every unknown key at once, with the rest of the problems.
    let o = validate(&["--set", "network.rb_cont=3", "--set", "run.roundz=2", "--set", "quantization.bits_min=0"]);
    refused(&o, "rb_cont");
    refused(&o, "roundz");
    refused(&o, "quantization.bits_min");
    // Sizes that cannot be allocated, and solver inputs that never converged.
    refused(&validate(&["--set", "network.rb_count=1000000000000"]), "network.rb_count");
    refused(&validate(&["--set", "network.rb_bandwidth_hz=1e308"]), "network.rb_bandwidth_hz");
    refused(&validate(&["--set", "run.iterations=4294967295"]), "run.iterations");
    refused(&validate(&["--set", "devices.distance_min_m=1e-100"]), "devices.distance_min_m");
    refused(&validate(&["--set", "server.freq_hz=1e-300"]), "server.freq_hz");
    // A scenario path that is a folder.
    refused(&sflam().current_dir(tmp.path()).args(["validate", "."]).output().unwrap(), "is a folder");
    // Referenced files are opened: missing, a repeated column, a value out of range.
    let pos = |name: &str, text: &str| {
        std::fs::write(tmp.path().join(name), text).unwrap();
        validate(&["--set", "devices.placement=\"file\"", "--set", &format!("devices.positions_file=\"{name}\"")])
    };
    let o = validate(&["--set", "devices.placement=\"file\"", "--set", "devices.positions_file=\"absent.csv\""]);
    refused(&o, "absent.csv");
    refused(&pos("twice.csv", "x_m,y_m,x_m\n1,2,3\n"), "column `x_m` appears twice");
    let far: String = std::iter::once("x_m,y_m\n".to_string()).chain((0..100).map(|_| "1e300,0\n".into())).collect();
    refused(&pos("far.csv", &far), "column `x_m` = 1e300");
    // A data set of 0x0 images.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let idx = |dims: &[u32]| {
        let mut v = vec![0u8, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
        v
    };
    for split in ["train", "t10k"] {
        std::fs::write(data.join(format!("{split}-images-idx3-ubyte")), idx(&[0, 0, 0])).unwrap();
        std::fs::write(data.join(format!("{split}-labels-idx1-ubyte")), idx(&[0])).unwrap();
    }
    refused(&validate(&["--set", "training.data_dir=\"data\""]), "dimension 1 of the IDX header is 0");
    // A problem with one device twice, and one whose sizes would wrap.
    let o = run_in(tmp.path(), "r", &["--dump-problems", "p", "--set", "run.rounds=1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(tmp.path().join("p/round-00000.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let allocate = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut d = doc.clone();
        edit(&mut d["problem"]);
        let path = tmp.path().join("edited.json");
        std::fs::write(&path, d.to_string()).unwrap();
        sflam().args(["allocate", "--allocator", "bcd"]).arg(&path).output().unwrap()
    };
    refused(
        &allocate(&|p| {
            let c = p["candidates"][0].clone();
            p["candidates"].as_array_mut().unwrap().push(c);
        }),
        "the same device as candidates[0]",
    );
    refused(&allocate(&|p| p["candidates"][0]["activation_elements"] = u64::MAX.into()), "activation_elements");
    refused(&allocate(&|p| p["candidates"][0]["extra_upload_bits"] = u64::MAX.into()), "extra_upload_bits");
}

/// Files beside the output that share sflam's names are not taken for
/// sflam's: a `<out>.lock` or an empty `<out>.replaced` of the user's is
/// refused and left as it is.
#[test]
fn files_named_like_sflams_beside_the_output_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = tmp.path().join("x.lock");
    std::fs::write(&lock, "a week of notes").unwrap();
    refused(&run_in(tmp.path(), "x", &[]), "x.lock` exists and sflam did not write it");
    intact(&lock);
    std::fs::remove_file(&lock).unwrap();
    let replaced = tmp.path().join("y.replaced");
    std::fs::create_dir(&replaced).unwrap();
    refused(&run_in(tmp.path(), "y", &[]), "y.replaced` is in the way");
    assert!(replaced.is_dir());
    assert_eq!(ls(tmp.path()), ["y.replaced"], "nothing else written");
}
