//! `availability.model = "trace"`: devices online exactly in their
//! intervals, cyclic traces repeating to the nanosecond, a participant
//! failing at its interval's end, bad tables named by file and row.

use sflam_core::config::load_scenario;
use sflam_core::trace::Outcome;
use std::path::Path;

fn scenario(file: &Path, extra: &[&str]) -> sflam_core::config::Scenario {
    let mut ov: Vec<String> = vec![
        "run.rounds=8".into(),
        "training.enabled=false".into(),
        "devices.count=40".into(),
        "run.candidates=20".into(),
        "allocator.name=fixed".into(),
        "run.deadline_s=10".into(),
        "run.events_trace=true".into(),
        "availability.enabled=true".into(),
        "availability.model=\"trace\"".into(),
        format!("availability.file={:?}", file.display().to_string()),
    ];
    ov.extend(extra.iter().map(|s| s.to_string()));
    load_scenario(&crate::repo("scenarios/fig4.toml"), &ov).unwrap()
}

use crate::try_run as run;

/// Device d: online in [d/4, 13 + d/3) and [30 + d/7, 61.5) s, once; or,
/// with a period, the same within every 70 s.
fn intervals(d: u32) -> [(f64, f64); 2] {
    let d = d as f64;
    [(d / 4.0, 13.0 + d / 3.0), (30.0 + d / 7.0, 61.5)]
}

fn write(path: &Path, period: Option<f64>) {
    let mut csv =
        String::from(if period.is_some() { "device,start_s,end_s,period_s\n" } else { "device,start_s,end_s\n" });
    for d in (0..40).rev() {
        for (s, e) in intervals(d) {
            match period {
                Some(p) => csv.push_str(&format!("{d},{s:?},{e:?},{p:?}\n")),
                None => csv.push_str(&format!("{d},{s:?},{e:?}\n")),
            }
        }
    }
    std::fs::write(path, csv).unwrap();
}

fn online_at(t: f64, period: Option<f64>) -> usize {
    (0..40)
        .filter(|&d| {
            let u = period.map_or(t, |p| t % p);
            intervals(d).iter().any(|&(s, e)| s <= u && u < e)
        })
        .count()
}

#[test]
fn devices_are_online_exactly_in_their_intervals() {
    let dir = tempfile::tempdir().unwrap();
    for period in [None, Some(70.0)] {
        let f = dir.path().join("av.csv");
        write(&f, period);
        let sink = run(&scenario(&f, &["run.rounds=16"])).unwrap();
        // Every toggle of device d at exactly a boundary of its trace.
        let end_ns = (sink.rounds.last().unwrap().end_s * 1e9) as u64;
        for d in 0..40u32 {
            let got: Vec<(u64, &str)> = sink
                .events
                .iter()
                .filter(|e| e.device == Some(d) && (e.kind == "online" || e.kind == "offline"))
                .map(|e| (e.time_ns, e.kind))
                .collect();
            let mut want = Vec::new();
            for cycle in 0..if period.is_some() { 3 } else { 1 } {
                for (s, e) in intervals(d) {
                    let base = cycle as f64 * period.unwrap_or(0.0);
                    for (t, kind) in [(base + s, "online"), (base + e, "offline")] {
                        let ns = (t * 1e9).round() as u64;
                        // Online at 0 is the initial state, not an event.
                        if ns > 0 && ns <= end_ns {
                            want.push((ns, kind));
                        }
                    }
                }
            }
            assert_eq!(got, want, "device {d}, period {period:?}");
        }
        // Online at each round's start, against the intervals.
        for r in &sink.rounds {
            assert_eq!(r.online as usize, online_at(r.start_s, period), "round {} at {} s", r.round, r.start_s);
        }
        // A participant whose interval ends mid-round fails at that instant.
        let failed: Vec<_> = sink.device_rounds.iter().filter(|d| d.outcome == Outcome::Offline).collect();
        assert!(!failed.is_empty(), "some interval ends mid-round");
        for d in failed {
            let start = sink.rounds[d.round as usize].start_s;
            let end = start + d.time_s;
            let u = period.map_or(end, |p| end % p);
            assert!(intervals(d.device).iter().any(|&(_, e)| (e - u).abs() < 1e-9), "{d:?} at {end}");
        }
    }
}

#[test]
fn a_bad_availability_table_names_the_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let all = |extra: &str| {
        let mut s = String::from("device,start_s,end_s,period_s\n");
        for d in 0..40 {
            s.push_str(&format!("{d},0,10,100\n"));
        }
        s + extra
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("overlap", all("5,5,20,100\n"), "row 41: device 5's interval [5, 20) overlaps"),
        ("backwards", all("3,50,40,100\n"), "row 41: column `end_s` = 40 is not after"),
        ("negative", all("3,-1,4,100\n"), "row 41: column `start_s`"),
        ("past-period", all("3,50,140,100\n"), "row 41: column `end_s` = 140 is past `period_s` = 100"),
        ("two-periods", all("3,50,60,90\n"), "row 41: column `period_s` = 90: device 3 has period_s = 100"),
        ("missing", "device,start_s,end_s\n0,0,1\n".into(), "no interval for device 1"),
    ];
    for (name, text, words) in cases {
        let f = dir.path().join(format!("{name}.csv"));
        std::fs::write(&f, text).unwrap();
        let s = scenario(&f, &[]);
        let e = run(&s).err().unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(e.exit_code(), 2, "{name}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{name}.csv")) && msg.contains("availability.file") && msg.contains(words),
            "{name}: {msg}"
        );
        assert!(sflam_core::run::check_tables(&s).is_err(), "validate reads it: {name}");
    }
    // The model without the process on, or without a file, at load.
    let e = load_scenario(
        &crate::repo("scenarios/fig4.toml"),
        &["availability.model=\"trace\"".to_string(), "availability.enabled=true".to_string()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("availability.file"), "{e}");
}
