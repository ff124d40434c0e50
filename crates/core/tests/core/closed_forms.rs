//! A device's times, energies and rate through the event kernel equal the
//! SPEC's closed forms, as computed by tests/reference/closed_forms.py.

use sflam_core::config::{FadingKind, RoundMode, Scenario, ServerDisciplineKind};
use sflam_core::trace::{Outcome, VecSink};

fn case_scenario(c: &serde_json::Value) -> Scenario {
    let f = |k: &str| c[k].as_f64().unwrap();
    let mut s = Scenario::default();
    s.run.rounds = 1;
    s.run.mode = RoundMode::Sync;
    s.run.deadline_s = 1e5;
    s.run.iterations = c["iterations"].as_u64().unwrap() as u32;
    s.run.candidates = 1;
    s.devices.count = 1;
    s.devices.distance_min_m = f("distance_m");
    s.devices.distance_max_m = f("distance_m");
    s.devices.p_max_min_w = f("p_w");
    s.devices.p_max_max_w = f("p_w");
    s.devices.gpu_freq_min_hz = f("f_hz");
    s.devices.gpu_freq_max_hz = f("f_hz");
    s.devices.cores_min = c["cores"].as_u64().unwrap() as u32;
    s.devices.cores_max = s.devices.cores_min;
    s.devices.kappa = f("kappa");
    s.server.discipline = ServerDisciplineKind::Ideal;
    s.server.freq_hz = f("server_hz");
    s.server.cores_min = c["server_cores"].as_u64().unwrap() as u32;
    s.server.cores_max = s.server.cores_min;
    s.server.flops_per_cycle_min = c["server_fpc"].as_u64().unwrap() as u32;
    s.server.flops_per_cycle_max = s.server.flops_per_cycle_min;
    s.model.timing = c["model"].as_str().unwrap().into();
    s.model.batch = c["batch"].as_u64().unwrap() as usize;
    s.network.rb_count = 1;
    s.network.rb_bandwidth_hz = f("bw_hz");
    s.network.noise_dbm_per_hz = f("n0_dbm_hz");
    s.network.fading = FadingKind::None;
    s.allocator.name = "fixed".parse().unwrap();
    s.allocator.fixed_bits = c["bits"].as_u64().unwrap() as u32;
    assert!(sflam_core::config::validate(&s).is_empty(), "{:?}", sflam_core::config::validate(&s));
    s
}

#[test]
fn device_round_matches_reference_script() {
    let text = std::fs::read_to_string(crate::repo("tests/reference/closed_forms.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in cases.as_array().unwrap() {
        let c = &case["case"];
        let e = &case["expected"];
        let s = case_scenario(c);
        let mut sink = VecSink::default();
        sflam_core::run::simulate(&s, &mut sink, None, None, None).unwrap();
        assert_eq!(sink.device_rounds.len(), 1);
        let r = &sink.device_rounds[0];
        assert_eq!(r.outcome, Outcome::Finished);
        let name = c["name"].as_str().unwrap();
        let rel = |got: f64, key: &str, tol: f64| {
            let want = e[key].as_f64().unwrap();
            assert!(((got - want) / want).abs() <= tol, "{name}: {key}: got {got}, reference {want}");
        };
        rel(r.gain, "gain", 1e-12);
        rel(r.rate_bps, "rate_bps", 1e-12);
        assert_eq!(r.payload_bits, e["payload_bits"].as_u64().unwrap(), "{name}");
        // Times go through integer nanoseconds: 1 ns per phase at most.
        let abs = |got: f64, key: &str| {
            let want = e[key].as_f64().unwrap();
            assert!((got - want).abs() <= 4e-9 * s.run.iterations as f64, "{name}: {key}: got {got}, reference {want}");
        };
        abs(r.t_cmp_s, "t_cmp_s");
        abs(r.t_com_s, "t_com_s");
        abs(r.t_srv_s, "t_srv_s");
        abs(r.time_s, "time_s");
        assert_eq!(r.t_wait_s, 0.0, "ideal server never queues");
        rel(r.energy_cmp_j, "energy_cmp_j", 1e-8);
        rel(r.energy_com_j, "energy_com_j", 1e-8);
        rel(r.energy_j, "energy_j", 1e-8);
        // The allocator's prediction is the same closed form.
        assert!(
            (r.predicted_time_s - r.time_s).abs() < 1e-8,
            "{name}: predicted {} vs simulated {}",
            r.predicted_time_s,
            r.time_s
        );
    }
}
