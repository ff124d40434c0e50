//! The allocators' utility from a measured table (`allocator.utility =
//! "table"`): a table equal to the assumed curve changes nothing, a bad
//! table is bad input naming the file and the row.

use sflam_core::alloc::utility::assumed;
use sflam_core::config::load_scenario;
use sflam_core::trace::VecSink;

fn fig4(overrides: &[String]) -> sflam_core::config::Scenario {
    let mut ov: Vec<String> = vec!["run.rounds=4".into(), "training.enabled=false".into()];
    ov.extend(overrides.iter().cloned());
    load_scenario(&crate::repo("scenarios/fig4.toml"), &ov).unwrap()
}

use crate::try_run as run;

/// Today's curve written as a table (every f64 to the last bit) gives
/// every allocator's decisions, and so every trace row, unchanged.
#[test]
fn a_table_equal_to_the_assumed_curve_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("assumed.csv");
    let mut csv = String::from("bits,utility,accuracy\n");
    for b in 4..=16 {
        csv.push_str(&format!("{b},{:?},0.5\n", assumed(b, 4)));
    }
    csv.push_str("32,1.0,0.5\n");
    std::fs::write(&file, csv).unwrap();
    for name in ["exact", "bcd", "ep", "rb", "nq", "fixed"] {
        let base = fig4(&[format!("allocator.name={name}")]);
        let table = fig4(&[
            format!("allocator.name={name}"),
            "allocator.utility=\"table\"".into(),
            format!("allocator.utility_file={:?}", file.display().to_string()),
        ]);
        let (a, b) = (run(&base).unwrap(), run(&table).unwrap());
        assert_eq!(crate::strip_wall(&a.rounds), crate::strip_wall(&b.rounds), "{name}");
        assert_eq!(a.device_rounds, b.device_rounds, "{name}");
        assert_eq!(a.left_out, b.left_out, "{name}");
        assert!(!a.device_rounds.is_empty());
    }
}

/// A measured utility that is flat from 5 bits (training learns as well
/// at 5 bits as at 16) makes `exact` choose fewer bits and spend less
/// energy than the assumed curve, which still pays for every bit. (A
/// table that keeps rising to 16 bits, even by 2%, makes it choose more:
/// at `w` = 1000 J the assumed curve's last bits are worth almost nothing.)
#[test]
fn a_flat_measured_utility_buys_fewer_bits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flat.csv");
    let mut csv = String::from("bits,utility\n4,0.6\n");
    for b in 5..=16 {
        csv.push_str(&format!("{b},1.0\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let mean_bits =
        |s: &VecSink| s.device_rounds.iter().map(|d| d.bits as f64).sum::<f64>() / s.device_rounds.len() as f64;
    let energy = |s: &VecSink| s.rounds.iter().map(|r| r.energy_j).sum::<f64>();
    let a = run(&fig4(&["allocator.name=exact".into()])).unwrap();
    let b = run(&fig4(&[
        "allocator.name=exact".into(),
        "allocator.utility=\"table\"".into(),
        format!("allocator.utility_file={:?}", file.display().to_string()),
    ]))
    .unwrap();
    assert!(mean_bits(&b) < mean_bits(&a) - 1.0, "{} vs {}", mean_bits(&b), mean_bits(&a));
    assert!(energy(&b) < energy(&a), "{} vs {}", energy(&b), energy(&a));
}

/// Bad tables: exit 2, naming the file and the row (or the missing width).
#[test]
fn a_bad_utility_table_names_the_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let full = |f: &dyn Fn(u32) -> f64| (4..=16).map(|b| format!("{b},{}\n", f(b))).collect::<String>();
    let cases: Vec<(&str, String, &str)> = vec![
        ("falling", format!("bits,utility\n{}", full(&|b| if b == 9 { 0.1 } else { 0.5 + b as f64 / 40.0 })), "row 6"),
        ("above-one", format!("bits,utility\n{}", full(&|b| if b == 7 { 1.5 } else { 0.5 })), "row 4"),
        ("zero", format!("bits,utility\n{}", full(&|b| if b == 4 { 0.0 } else { 0.5 })), "row 1"),
        ("missing", "bits,utility\n4,0.5\n5,0.6\n6,0.7\n".into(), "no row for 7 bits"),
        ("other-range", "bits,utility\n1,0.2\n2,0.4\n3,0.6\n".into(), "no row for 4 bits"),
        ("twice", format!("bits,utility\n{}5,0.9\n", full(&|_| 0.5)), "twice"),
        ("fraction", format!("bits,utility\n4.5,0.5\n{}", full(&|_| 0.5)), "row 1"),
        ("fp32", format!("bits,utility\n{}32,0.9\n", full(&|_| 0.5)), "fp32"),
        ("no-column", "bits,u\n4,0.5\n".into(), "no column `utility`"),
    ];
    for (name, text, words) in cases {
        let file = dir.path().join(format!("{name}.csv"));
        std::fs::write(&file, text).unwrap();
        let s = fig4(&[
            "allocator.name=exact".into(),
            "allocator.utility=\"table\"".into(),
            format!("allocator.utility_file={:?}", file.display().to_string()),
        ]);
        let e = run(&s).err().unwrap_or_else(|| panic!("{name}: accepted"));
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2, "{name}: {msg}");
        assert!(msg.contains(&format!("{name}.csv")) && msg.contains("allocator.utility_file"), "{name}: {msg}");
        assert!(msg.contains(words), "{name}: `{words}` not in: {msg}");
        // `validate` reads it too.
        assert!(sflam_core::run::check_tables(&s).is_err(), "{name}");
    }
    // The table setting without a file is refused at load; a file beside
    // the assumed curve is not read (a sweep may grid over the utility).
    let e =
        load_scenario(&crate::repo("scenarios/fig4.toml"), &["allocator.utility=\"table\"".to_string()]).unwrap_err();
    assert!(e.to_string().contains("allocator.utility_file"), "{e}");
    let bad = format!("allocator.utility_file={:?}", dir.path().join("falling.csv").display().to_string());
    assert!(run(&fig4(&[bad])).is_ok());
}
