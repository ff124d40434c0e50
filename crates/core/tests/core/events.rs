//! The traces of events and of every candidate's fate: every event is
//! logged with its own round's device and phase, also one that fires after
//! its round closed (a straggler's); every candidate is scheduled or left
//! out with its reason.

use sflam_core::config::load_scenario_str;
use sflam_core::trace::VecSink;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn stale_events_keep_their_own_round_device_and_phase() {
    // A 1 s deadline is too short for anyone (ViT-B/32 at p_max, 8 bits), so
    // every participant straggles and its pending event fires in the next
    // round, where another device may hold the same slot.
    let s = load_scenario_str(
        "[run]\nrounds = 2\ndeadline_s = 1.0\ncandidates = 20\nevents_trace = true\n\
         [network]\nrb_count = 5\n[allocator]\nname = \"fixed\"\n",
        Path::new("events.toml"),
        &[],
    )
    .unwrap();
    let mut sink = VecSink::default();
    sflam_core::run::simulate(&s, &mut sink, None, None, None).unwrap();
    let scheduled: BTreeSet<(u32, u32)> = sink.device_rounds.iter().map(|r| (r.round, r.device)).collect();
    let end_ns = |round: u32| (sink.rounds[round as usize].end_s * 1e9).round() as u64;
    let mut stale = 0;
    for e in sink.events.iter().filter(|e| e.kind.ends_with("-done") || e.kind == "dropout") {
        let dev = e.device.expect("a participant's event names its device");
        assert!(scheduled.contains(&(e.round, dev)), "{e:?}: device {dev} was not scheduled in round {}", e.round);
        if e.time_ns > end_ns(e.round) {
            stale += 1;
            // It completes the phase the device was cut in.
            let row = sink.device_rounds.iter().find(|r| (r.round, r.device) == (e.round, dev)).unwrap();
            assert_eq!(Some(e.kind.trim_end_matches("-done")), row.cut_phase, "{e:?}");
        }
    }
    assert!(stale > 0, "the scenario must produce events after their round closed");
    // Rounds 0 and 1 schedule different devices in the same slots.
    let r0: BTreeSet<u32> = scheduled.iter().filter(|k| k.0 == 0).map(|k| k.1).collect();
    let r1: BTreeSet<u32> = scheduled.iter().filter(|k| k.0 == 1).map(|k| k.1).collect();
    assert_ne!(r0, r1);
}

/// Every candidate's fate is in the traces: each round's candidates (as
/// the allocator's problems list them) are exactly the `device_rounds`
/// rows and the `left_out` rows, disjoint, with the decision's reasons;
/// `rounds.candidates` counts them. T_max = 8 s on 5 RBs leaves most out.
#[test]
fn every_candidate_has_a_fate() {
    use sflam_core::trace::VecSink;
    use std::collections::BTreeMap;
    for (scenario, extra) in [
        ("scenarios/fig4.toml", vec!["allocator.name=bcd", "run.deadline_s=8", "network.rb_count=5"]),
        ("scenarios/fig4.toml", vec!["allocator.name=fixed", "run.deadline_s=6"]),
        ("scenarios/cells.toml", vec![]),
    ] {
        let mut ov: Vec<String> = vec!["run.rounds=6".into(), "training.enabled=false".into()];
        ov.extend(extra.iter().map(|s| s.to_string()));
        let s = sflam_core::config::load_scenario(&crate::repo(scenario), &ov).unwrap();
        // (round, device) -> Some(reason) if left out, None if scheduled.
        let mut planned: BTreeMap<(u32, u32), Option<&'static str>> = BTreeMap::new();
        let mut sink = VecSink::default();
        let hook = Box::new(|_cell, p: &sflam_core::alloc::Problem, d: &sflam_core::alloc::Decision| {
            for a in &d.assignments {
                assert!(planned.insert((p.round, a.device.0), None).is_none());
            }
            for &(_, dev, why) in &d.excluded {
                assert!(planned.insert((p.round, dev.0), Some(why.as_str())).is_none());
            }
            assert_eq!(d.assignments.len() + d.excluded.len(), p.candidates.len());
            Ok(())
        });
        sflam_core::run::simulate(&s, &mut sink, None, Some(hook), None).unwrap();
        let mut traced: BTreeMap<(u32, u32), Option<&'static str>> = BTreeMap::new();
        for d in &sink.device_rounds {
            assert!(traced.insert((d.round, d.device), None).is_none(), "{scenario}: device {} twice", d.device);
        }
        for l in &sink.left_out {
            assert!(traced.insert((l.round, l.device), Some(l.reason)).is_none(), "{scenario}: {l:?} also scheduled");
            assert!(l.best_gain > 0.0 && l.distance_m > 0.0, "{l:?}");
        }
        assert_eq!(traced, planned, "{scenario}");
        for r in &sink.rounds {
            let n = traced.keys().filter(|k| k.0 == r.round).count() as u32;
            assert_eq!(r.candidates, n, "{scenario} round {}", r.round);
        }
        if extra.contains(&"network.rb_count=5") {
            assert!(sink.left_out.len() > sink.device_rounds.len(), "most are left out at T_max = 8 s on 5 RBs");
            assert!(sink.left_out.iter().any(|l| l.reason == "infeasible"));
        }
    }
}

/// A device cut by the deadline records the iteration it was in: cut in
/// its forward pass of iteration k, it has made exactly k uploads, so its
/// uplink time is k payloads at its rate (to the nanosecond per upload).
#[test]
fn a_cut_device_records_its_iteration() {
    let ov: Vec<String> =
        ["run.rounds=8", "run.iterations=4", "allocator.name=fixed", "run.deadline_s=6", "training.enabled=false"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let s = sflam_core::config::load_scenario(&crate::repo("scenarios/fig4.toml"), &ov).unwrap();
    let sink = crate::run_vec(&s);
    let cut: Vec<_> = sink.device_rounds.iter().filter(|d| d.cut_phase.is_some()).collect();
    assert!(!cut.is_empty(), "fixed at T_max = 6 s has stragglers");
    assert!(cut.iter().all(|d| d.cut_iteration.is_some_and(|k| k < 4)));
    assert!(sink.device_rounds.iter().filter(|d| d.cut_phase.is_none()).all(|d| d.cut_iteration.is_none()));
    let forward: Vec<_> = cut.iter().filter(|d| d.cut_phase == Some("forward")).collect();
    assert!(forward.iter().any(|d| d.cut_iteration > Some(0)), "some are cut after their first iteration");
    for d in forward {
        let k = d.cut_iteration.unwrap() as f64;
        let upload_s = d.payload_bits as f64 / d.rate_bps;
        assert!((d.t_com_s - k * upload_s).abs() <= k * 1e-9 + 1e-12, "{d:?}");
    }
}
