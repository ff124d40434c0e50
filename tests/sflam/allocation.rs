//! Allocators: invariants every decision must hold.

use sflam::config::Scenario;
use sflam::trace::VecSink;

#[test]
fn fixed_allocator_uses_each_rb_once_at_p_max() {
    let mut s = Scenario::default();
    s.run.rounds = 3;
    s.devices.count = 40;
    s.run.candidates = 30;
    s.network.rb_count = 7;
    let mut sink = VecSink::default();
    sflam::run::simulate(&s, &mut sink, None, None).unwrap();
    for r in 0..3 {
        let rows: Vec<_> = sink.device_rounds.iter().filter(|d| d.round == r).collect();
        assert_eq!(rows.len(), 7);
        let mut rbs: Vec<u32> = rows.iter().map(|d| d.rb).collect();
        rbs.sort();
        rbs.dedup();
        assert_eq!(rbs.len(), 7);
        for d in rows {
            assert_eq!(d.bits, 8);
            let pmax = sink.devices[d.device as usize].p_max_w;
            assert_eq!(d.power_w, pmax);
        }
    }
}
