//! Multi-cell deployments: one cell is the single cell, draw for draw;
//! association and interference against brute force recomputed from the
//! traces; reuse; results independent of the thread count; tables read
//! from files with errors that name them.

use crate::strip_wall;
use sflam_core::config::Scenario;
use sflam_core::trace::VecSink;

use crate::{default_timing as scenario, run_vec as run};

/// Several cells on a hex grid, no shadowing, static devices: what the
/// brute-force checks below recompute from the traces.
const MULTI: &[&str] = &[
    "cells.count=7",
    "cells.inter_site_m=1200.0",
    "devices.count=300",
    "run.candidates=120",
    "run.rounds=4",
    "network.rb_count=6",
    "network.fading=\"none\"",
    "mobility.model=\"static\"",
    "availability.enabled=false",
    "allocator.name=\"ep\"",
];

fn multi(extra: &[&str]) -> Scenario {
    let all: Vec<&str> = MULTI.iter().chain(extra).copied().collect();
    scenario(&all)
}

#[test]
fn one_cell_is_the_single_cell_whatever_the_cell_settings() {
    let base = scenario(&["run.rounds=6"]);
    let a = run(&base);
    let b = run(&scenario(&[
        "run.rounds=6",
        "cells.layout=\"random\"",
        "cells.association=\"strongest\"",
        "cells.reuse=3",
        "cells.interference=\"full\"",
        "network.shadowing_std_db=0.0",
    ]));
    assert_eq!(a.devices, b.devices);
    assert_eq!(a.device_rounds, b.device_rounds);
    assert_eq!(strip_wall(&a.rounds), strip_wall(&b.rounds));
    assert_eq!(a.cells.len(), 1);
    assert!(a.device_rounds.iter().all(|r| r.cell == 0 && r.interference_w == 0.0));
    // A device's distance is its drawn distance, its position on that circle.
    for d in &a.devices {
        assert!((d.x_m.hypot(d.y_m) - d.distance_m).abs() < 1e-9 * d.distance_m);
    }
}

#[test]
fn devices_use_their_nearest_cell() {
    for placement in ["ring", "uniform", "hotspots"] {
        let s = multi(&[&format!("devices.placement=\"{placement}\"")]);
        let t = run(&s);
        assert_eq!(t.cells.len(), 7);
        let nearest = |x: f64, y: f64| {
            (0..t.cells.len())
                .min_by(|&a, &b| {
                    let d = |c: usize| (x - t.cells[c].x_m).hypot(y - t.cells[c].y_m);
                    d(a).total_cmp(&d(b))
                })
                .unwrap() as u32
        };
        for d in &t.devices {
            assert_eq!(d.cell, nearest(d.x_m, d.y_m), "{placement}: device {}", d.device);
        }
        for r in &t.device_rounds {
            let d = &t.devices[r.device as usize];
            assert_eq!(r.cell, d.cell, "{placement}: static devices keep their cell");
            let c = &t.cells[r.cell as usize];
            let dist = (d.x_m - c.x_m).hypot(d.y_m - c.y_m).max(s.devices.distance_min_m);
            assert!((r.distance_m - dist).abs() < 1e-6, "{placement}: {} vs {dist}", r.distance_m);
        }
        let per_cell: u64 = t.cells.iter().map(|c| c.devices).sum();
        assert_eq!(per_cell, 300);
        assert!(t.rounds.iter().all(|r| r.handovers == 0));
        assert!(t.cells.iter().filter(|c| c.devices > 0).count() >= 3, "{placement}: devices spread over cells");
    }
}

#[test]
fn moving_devices_hand_over() {
    let t = run(&multi(&["mobility.model=\"random-walk\"", "mobility.step_std_m_per_sqrt_s=30.0", "run.rounds=6"]));
    let handovers: u32 = t.rounds.iter().map(|r| r.handovers).sum();
    assert!(handovers > 0, "no device changed cell");
}

/// Interference recomputed from the traces: Σ over the co-channel
/// devices of other same-colour cells of p_j 10^(-PL(d_j,c)/10), and the
/// rate as eq. 12 with it added to the noise.
fn check_interference(s: &Scenario, t: &VecSink) -> usize {
    let noise_w = 10f64.powf((s.network.noise_dbm_per_hz - 30.0) / 10.0) * s.network.rb_bandwidth_hz;
    let pl = |d: f64| s.network.path_loss_intercept_db + s.network.path_loss_slope_db * (d / 1000.0).log10();
    let mut interfered = 0;
    for r in &t.device_rounds {
        let me = &t.cells[r.cell as usize];
        let mut i_w = 0.0;
        for o in t.device_rounds.iter().filter(|o| o.round == r.round && o.cell != r.cell && o.rb == r.rb) {
            if t.cells[o.cell as usize].colour != me.colour {
                continue;
            }
            let d = &t.devices[o.device as usize];
            let dist = (d.x_m - me.x_m).hypot(d.y_m - me.y_m).max(s.devices.distance_min_m);
            i_w += o.power_w * 10f64.powf(-pl(dist) / 10.0);
        }
        assert!(
            (r.interference_w - i_w).abs() <= 1e-9 * i_w.max(1e-300),
            "round {} device {}: {} vs brute force {i_w}",
            r.round,
            r.device,
            r.interference_w
        );
        let rate = s.network.rb_bandwidth_hz * (1.0 + r.power_w * r.gain / (noise_w + i_w)).log2();
        assert!((r.rate_bps - rate).abs() <= 1e-9 * rate, "rate {} vs {rate}", r.rate_bps);
        let sinr_db = 10.0 * (r.power_w * r.gain / (noise_w + i_w)).log10();
        assert!((r.sinr_db - sinr_db).abs() < 1e-9);
        interfered += (i_w > 0.0) as usize;
    }
    interfered
}

#[test]
fn interference_is_the_co_channel_sum_at_planned_powers() {
    let s = multi(&[]);
    let t = run(&s);
    assert!(check_interference(&s, &t) > t.device_rounds.len() / 2, "reuse 1: most uploads interfered");

    // Reuse 3 on the hex grid: neighbours differ in colour, so fewer
    // interferers and none from an adjacent cell.
    let s3 = multi(&["cells.reuse=3"]);
    let t3 = run(&s3);
    check_interference(&s3, &t3);
    let total = |t: &VecSink| t.device_rounds.iter().map(|r| r.interference_w).sum::<f64>();
    assert!(total(&t3) < total(&t), "reuse 3 interferes less than reuse 1");

    // Interference off: SNR, and the rate the allocator planned.
    let t0 = run(&multi(&["cells.interference=\"none\""]));
    assert!(t0.device_rounds.iter().all(|r| r.interference_w == 0.0));
    let mean_rate =
        |t: &VecSink| t.device_rounds.iter().map(|r| r.rate_bps).sum::<f64>() / t.device_rounds.len() as f64;
    assert!(mean_rate(&t) < mean_rate(&t0), "interference lowers the rates");
}

#[test]
fn cells_decide_in_parallel_with_the_same_result_on_any_thread_count() {
    let s = multi(&["allocator.name=\"bcd\"", "mobility.model=\"random-walk\"", "network.fading=\"rayleigh\""]);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(&s))
    };
    let (a, b) = (on(1), on(3));
    assert_eq!(a.device_rounds, b.device_rounds);
    assert_eq!(strip_wall(&a.rounds), strip_wall(&b.rounds));
    assert_eq!(a.cells, b.cells);
}

#[test]
fn cell_and_position_tables_are_read_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let cells = dir.path().join("cells.csv");
    std::fs::write(&cells, "x_m,y_m,rb_count,server_cores\n0,0,4,3000\n1500,0,8,\n0,1500,6,2000\n").unwrap();
    // An empty optional cell is not a number: the error names the row.
    let s = multi(&["cells.count=3", "cells.layout=\"file\"", &format!("cells.file=\"{}\"", cells.display())]);
    let mut sink = VecSink::default();
    let e = sflam_core::run::simulate(&s, &mut sink, None, None, None).unwrap_err().to_string();
    assert!(e.contains("cells.csv") && e.contains("row 2") && e.contains("server_cores"), "{e}");

    std::fs::write(&cells, "x_m,y_m,rb_count,server_cores\n0,0,4,3000\n1500,0,8,4000\n0,1500,6,2000\n").unwrap();
    let t = run(&s);
    assert_eq!(t.cells.iter().map(|c| c.rb_count).collect::<Vec<_>>(), [4, 8, 6]);
    assert_eq!((t.cells[1].x_m, t.cells[2].y_m), (1500.0, 1500.0));
    // More cores, faster server: 3000 against 2000 cores, the same draw of FLOPs per cycle aside.
    assert!(t.device_rounds.iter().all(|r| (r.rb as usize) < [4, 8, 6][r.cell as usize]));

    let s4 = multi(&["cells.count=4", "cells.layout=\"file\"", &format!("cells.file=\"{}\"", cells.display())]);
    let e = sflam_core::run::simulate(&s4, &mut VecSink::default(), None, None, None).unwrap_err().to_string();
    assert!(e.contains("3 rows") && e.contains("cells.count = 4"), "{e}");

    let pos = dir.path().join("positions.csv");
    std::fs::write(&pos, "x_m,y\n1,2\n").unwrap();
    let sp = multi(&["devices.placement=\"file\"", &format!("devices.positions_file=\"{}\"", pos.display())]);
    let e = sflam_core::run::simulate(&sp, &mut VecSink::default(), None, None, None).unwrap_err().to_string();
    assert!(e.contains("positions.csv") && e.contains("no column `y_m`"), "{e}");
    let rows: String = (0..300).map(|i| format!("{},{}\n", i as f64 * 3.0, -(i as f64))).collect();
    std::fs::write(&pos, format!("x_m,y_m\n{rows}")).unwrap();
    let t = run(&sp);
    assert!((t.devices[7].x_m - 21.0).abs() < 1e-9 && (t.devices[7].y_m + 7.0).abs() < 1e-9);
    assert!(t.devices[0].x_m.abs() < 1e-9 && t.devices[0].y_m.abs() < 1e-9, "a device on a site stays there");
}

/// The whole ViT-B/32 in fp32 [bit]: what an edge server sends.
fn model_bits() -> f64 {
    let w = sflam_core::workload::Workload::of(sflam_core::workload::vit_config("vit-b32").unwrap());
    32.0 * (w.device_params + w.server_params) as f64
}

#[test]
fn star_backhaul_takes_a_model_up_and_down_every_k_rounds() {
    let (rate, lat) = (1e8, 0.01);
    let s = multi(&[
        "backhaul.enabled=true",
        "backhaul.cloud_every=2",
        &format!("backhaul.rate_bps={rate}"),
        &format!("backhaul.latency_s={lat}"),
    ]);
    let t = run(&s);
    // Every cell has its own link: no queueing, one transfer time each way.
    let expect = 2.0 * (model_bits() / rate + lat);
    for r in &t.rounds {
        let want = if (r.round + 1) % 2 == 0 { expect } else { 0.0 };
        assert!((r.backhaul_s - want).abs() < 1e-6, "round {}: {} vs {want}", r.round, r.backhaul_s);
    }
    // One link up and one down per cell: 2 x 7 hops of the model's bits.
    for r in &t.rounds {
        let want = if (r.round + 1) % 2 == 0 { 2.0 * 7.0 * model_bits() * s.backhaul.energy_per_bit_j } else { 0.0 };
        assert!((r.backhaul_energy_j - want).abs() <= 1e-9 * want, "round {}: {}", r.round, r.backhaul_energy_j);
    }
    for w in t.rounds.windows(2) {
        assert!((w[1].start_s - (w[0].end_s + w[0].backhaul_s)).abs() < 1e-6, "the next round waits for the backhaul");
    }
    // Off: no backhaul time, and the device traces are the same.
    let off = run(&multi(&[]));
    assert!(off.rounds.iter().all(|r| r.backhaul_s == 0.0));
    assert_eq!(off.device_rounds.len(), t.device_rounds.len());
}

#[test]
fn a_shared_backhaul_link_queues_the_models() {
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("links.csv");
    // Cells 0, 1, 2 to router 10 on fast links, the router to the cloud on one slow link.
    let (fast, slow, l1, l2) = (1e10, 1e8, 0.001, 0.02);
    std::fs::write(
        &links,
        format!(
            "from,to,rate_bps,latency_s\n0,10,{fast},{l1}\n1,10,{fast},{l1}\n2,10,{fast},{l1}\n10,-1,{slow},{l2}\n"
        ),
    )
    .unwrap();
    let s = multi(&[
        "cells.count=3",
        "backhaul.enabled=true",
        "backhaul.topology=\"file\"",
        &format!("backhaul.links_file=\"{}\"", links.display()),
    ]);
    let t = run(&s);
    let b = model_bits();
    // Up: all three reach the router together and cross the slow link one
    // after the other; down: the same in the other direction, then each
    // its own fast link.
    let expect = 2.0 * (b / fast + l1) + 6.0 * b / slow + 2.0 * l2;
    for r in &t.rounds {
        assert!((r.backhaul_s - expect).abs() < 1e-6, "round {}: {} vs {expect}", r.round, r.backhaul_s);
        // Two links each way for each of the three cells.
        let energy = 12.0 * b * s.backhaul.energy_per_bit_j;
        assert!((r.backhaul_energy_j - energy).abs() <= 1e-9 * energy);
    }

    std::fs::write(&links, "from,to,rate_bps,latency_s\n0,-1,1e9,0.01\n1,-1,1e9,0.01\n").unwrap();
    let e = sflam_core::run::simulate(&s, &mut VecSink::default(), None, None, None).unwrap_err().to_string();
    assert!(e.contains("links.csv") && e.contains("cell 2 has no path"), "{e}");
    std::fs::write(&links, "from,to,rate_bps,latency_s\n0,-1,0,0.01\n").unwrap();
    let e = sflam_core::run::simulate(&s, &mut VecSink::default(), None, None, None).unwrap_err().to_string();
    assert!(e.contains("links.csv") && e.contains("row 1") && e.contains("rate_bps"), "{e}");
}

#[test]
fn strongest_association_beats_the_home_link_and_is_nearest_without_shadowing() {
    let pl =
        |s: &Scenario, d: f64| s.network.path_loss_intercept_db + s.network.path_loss_slope_db * (d / 1000.0).log10();
    // No shadowing: the strongest site is the nearest one.
    let s0 = multi(&["cells.association=\"strongest\"", "devices.placement=\"uniform\""]);
    let near = run(&multi(&["devices.placement=\"uniform\""]));
    assert_eq!(run(&s0).devices, near.devices);

    // Shadowing: the chosen link's loss (recovered from the traced gain,
    // fading off) is at most the home link's, whose shadowing the devices
    // table gives; and some devices leave their nearest site for it.
    let s = multi(&["cells.association=\"strongest\"", "network.shadowing_std_db=8.0"]);
    let t = run(&s);
    let ring = run(&multi(&["network.shadowing_std_db=8.0"]));
    let mut moved = 0;
    for r in &t.device_rounds {
        let d = &t.devices[r.device as usize];
        let chosen_loss_db = -10.0 * r.gain.log10();
        let home_loss_db = pl(&s, d.distance_m) + d.shadowing_db;
        assert!(chosen_loss_db <= home_loss_db + 1e-9, "device {}: {chosen_loss_db} > {home_loss_db}", d.device);
        moved += (r.cell != ring.devices[r.device as usize].cell) as usize;
    }
    assert!(moved > 0, "shadowing never changed a device's cell");
}

#[test]
fn a_file_layout_without_its_file_is_refused_by_field() {
    for (text, field) in [
        ("[cells]\ncount = 3\nlayout = \"file\"\n", "cells.file"),
        ("[devices]\nplacement = \"file\"\n", "devices.positions_file"),
        ("[backhaul]\nenabled = true\ntopology = \"file\"\n", "backhaul.links_file"),
        ("[cells]\ncount = 2\n[training]\nenabled = true\nframework = \"sl\"\n", "training.framework"),
    ] {
        let e = sflam_core::config::load_scenario_str(text, "s.toml".as_ref(), &[]).unwrap_err().to_string();
        assert!(e.contains("s.toml") && e.contains(field), "{text}: {e}");
    }
}
