//! The events trace: every event is logged with its own round's device and
//! phase, also one that fires after its round closed (a straggler's).

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
