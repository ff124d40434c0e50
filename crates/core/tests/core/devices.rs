//! `devices.file`: devices from a table. A table holding the drawn values
//! reproduces the drawn run; bad tables name the file, row and column.

use sflam_core::config::load_scenario;
use std::path::Path;

fn fig4(extra: &[String]) -> sflam_core::config::Scenario {
    let mut ov: Vec<String> = vec!["run.rounds=3".into(), "training.enabled=false".into(), "allocator.name=bcd".into()];
    ov.extend(extra.iter().cloned());
    load_scenario(&crate::repo("scenarios/fig4.toml"), &ov).unwrap()
}

use crate::try_run as run;

fn file(p: &Path) -> String {
    format!("devices.file={:?}", p.display().to_string())
}

/// The drawn population written out as a table (every f64 to the last
/// bit, rows in reverse id order) gives the same run, row for row.
#[test]
fn a_table_of_the_drawn_values_reproduces_the_run() {
    let drawn = run(&fig4(&[])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("devices.csv");
    let mut csv =
        String::from("device,distance_m,p_max_w,gpu_freq_hz,cores,flops_per_cycle,samples,shadowing_db,phone\n");
    for d in drawn.devices.iter().rev() {
        csv.push_str(&format!(
            "{},{:?},{:?},{:?},{},{:?},{},{:?},x\n",
            d.device, d.distance_m, d.p_max_w, d.gpu_freq_hz, d.cores, d.flops_per_cycle, d.samples, d.shadowing_db
        ));
    }
    std::fs::write(&f, csv).unwrap();
    let from_table = run(&fig4(&[file(&f)])).unwrap();
    assert_eq!(drawn.devices, from_table.devices);
    assert_eq!(drawn.device_rounds, from_table.device_rounds);
    assert_eq!(crate::strip_wall(&drawn.rounds), crate::strip_wall(&from_table.rounds));
    // Other values change the run: halving every p_max.
    let mut csv = String::from("device,p_max_w\n");
    for d in &drawn.devices {
        csv.push_str(&format!("{},{:?}\n", d.device, d.p_max_w / 2.0));
    }
    std::fs::write(&f, csv).unwrap();
    let halved = run(&fig4(&[file(&f)])).unwrap();
    for (a, b) in drawn.devices.iter().zip(&halved.devices) {
        assert_eq!(b.p_max_w, a.p_max_w / 2.0);
        assert_eq!((a.gpu_freq_hz, a.samples), (b.gpu_freq_hz, b.samples), "other columns drawn as before");
    }
}

/// A measured compute rate sets the frequency through the cores and
/// FLOPs per cycle; rows are taken first, by a seeded sample, or with
/// replacement, as asked.
#[test]
fn rates_and_row_choices() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.csv");
    let rows = 300;
    let mut csv = String::from("device,flops_per_s,cores,flops_per_cycle\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},{},{},2\n", 1e9 * (1 + i) as f64, 1 + i % 4));
    }
    std::fs::write(&f, csv).unwrap();
    let s = run(&fig4(&[file(&f)])).unwrap();
    for d in &s.devices {
        let i = d.device as f64;
        assert_eq!((d.cores, d.flops_per_cycle), (1 + d.device % 4, 2.0));
        let rate = d.gpu_freq_hz * d.cores as f64 * d.flops_per_cycle;
        assert!((rate / (1e9 * (1.0 + i)) - 1.0).abs() < 1e-12, "first rows in order");
    }
    let sampled = run(&fig4(&[file(&f), "devices.file_rows=\"sample\"".into()])).unwrap();
    let rates: Vec<f64> = sampled.devices.iter().map(|d| d.gpu_freq_hz * d.cores as f64 * 2.0).collect();
    assert!(rates.iter().any(|r| *r > 200.5e9), "a sample reaches past the first 200 rows");
    let mut uniq: Vec<u64> = rates.iter().map(|r| (r / 1e9).round() as u64).collect();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), 200, "without replacement");
    assert_eq!(run(&fig4(&[file(&f), "devices.file_rows=\"sample\"".into()])).unwrap().devices, sampled.devices);
    let many = fig4(&[file(&f), "devices.count=500".into()]);
    let e = run(&many).err().unwrap().to_string();
    assert!(e.contains("300 rows for devices.count = 500") && e.contains("resample"), "{e}");
    let re = run(&fig4(&[file(&f), "devices.count=500".into(), "devices.file_rows=\"resample\"".into()])).unwrap();
    assert_eq!(re.devices.len(), 500);
}

/// Bad tables: exit 2 naming the file and the row and column.
#[test]
fn a_bad_device_table_names_the_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let body = |f: &dyn Fn(usize) -> String| (0..200).map(|i| format!("{}\n", f(i))).collect::<String>();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "dup",
            format!("device,p_max_w\n{}", body(&|i| format!("{},1", if i == 7 { 3 } else { i }))),
            "row 8: column `device` = 3: also in row 4",
        ),
        (
            "gap",
            format!("device,p_max_w\n{}", body(&|i| format!("{},1", if i == 9 { 500 } else { i }))),
            "row 10: column `device` = 500",
        ),
        (
            "zero-power",
            format!("device,p_max_w\n{}", body(&|i| format!("{i},{}", if i == 5 { 0.0 } else { 1.0 }))),
            "row 6: column `p_max_w`",
        ),
        (
            "cores",
            format!("device,cores\n{}", body(&|i| format!("{i},{}", if i == 2 { 2.5 } else { 4.0 }))),
            "row 3: column `cores` = 2.5",
        ),
        (
            "both-rates",
            format!("device,gpu_freq_hz,flops_per_s\n{}", body(&|i| format!("{i},1e9,1e9"))),
            "both set the compute rate",
        ),
        ("no-id", format!("p_max_w\n{}", body(&|_| "1".into())), "no column `device`"),
        ("few", "device\n0\n1\n".into(), "2 rows for devices.count = 200"),
    ];
    for (name, text, words) in cases {
        let f = dir.path().join(format!("{name}.csv"));
        std::fs::write(&f, text).unwrap();
        let s = fig4(&[file(&f)]);
        let e = run(&s).err().unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(e.exit_code(), 2, "{name}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{name}.csv")) && msg.contains("devices.file") && msg.contains(words),
            "{name}: {msg}"
        );
        assert!(sflam_core::run::check_tables(&s).is_err(), "validate reads it: {name}");
    }
}

/// A measured uplink rate becomes a link offset such that p_max on one RB
/// without fading carries exactly that rate: `fixed` (p_max for everyone)
/// with fading off realizes each device's measured rate, against the
/// closed form. A rate no power could carry is refused (units).
#[test]
fn a_measured_uplink_rate_is_reached_at_p_max() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("links.csv");
    let rate = |d: u32| 2e6 + 1e5 * d as f64;
    let mut csv = String::from("device,uplink_bps\n");
    for d in 0..200u32 {
        csv.push_str(&format!("{d},{}\n", rate(d)));
    }
    std::fs::write(&f, csv).unwrap();
    let s = fig4(&[file(&f), "allocator.name=fixed".into(), "network.fading=\"none\"".into()]);
    let sink = run(&s).unwrap();
    assert!(!sink.device_rounds.is_empty());
    for d in &sink.device_rounds {
        let dev = &sink.devices[d.device as usize];
        assert_eq!(d.power_w, dev.p_max_w);
        assert!(
            (d.rate_bps / rate(d.device) - 1.0).abs() < 1e-9,
            "device {}: {} vs {}",
            d.device,
            d.rate_bps,
            rate(d.device)
        );
    }
    std::fs::write(
        &f,
        "device,uplink_bps\n".to_string()
            + &(0..200).map(|d| format!("{d},{}\n", if d == 4 { 1e12 } else { 1e6 })).collect::<String>(),
    )
    .unwrap();
    let e = run(&s).err().unwrap().to_string();
    assert!(e.contains("row 5: column `uplink_bps` = 1000000000000") && e.contains("is the unit bit/s?"), "{e}");
}

/// Tables as polars writes them by default (Parquet, zstd) are read.
#[test]
fn a_zstd_parquet_table_is_read() {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.parquet");
    let ids: ArrayRef = Arc::new(Int64Array::from((0..200).collect::<Vec<i64>>()));
    let pmax: ArrayRef = Arc::new(Float64Array::from((0..200).map(|i| 0.5 + i as f64 / 200.0).collect::<Vec<f64>>()));
    let batch = RecordBatch::try_from_iter([("device", ids), ("p_max_w", pmax)]).unwrap();
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(&f).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let s = run(&fig4(&[file(&f)])).unwrap();
    for d in &s.devices {
        assert_eq!(d.p_max_w, 0.5 + d.device as f64 / 200.0);
    }
}

/// A measured time per sample sets the device's compute: its round's
/// computation takes iterations x batch x that time (to the nanosecond
/// per phase).
#[test]
fn a_measured_time_per_sample_sets_the_compute_time() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.csv");
    let t = |d: u32| 1e-3 * (1.0 + d as f64 / 50.0);
    let csv: String = std::iter::once("device,compute_s_per_sample\n".to_string())
        .chain((0..200u32).map(|d| format!("{d},{}\n", t(d))))
        .collect();
    std::fs::write(&f, csv).unwrap();
    let s = fig4(&[file(&f), "allocator.name=fixed".into(), "run.iterations=2".into()]);
    let sink = run(&s).unwrap();
    let batch = s.model.batch as f64;
    for d in sink.device_rounds.iter().filter(|d| d.cut_phase.is_none()) {
        let want = 2.0 * batch * t(d.device);
        assert!((d.t_cmp_s - want).abs() <= 4e-9, "device {}: {} vs {want}", d.device, d.t_cmp_s);
    }
}

/// Positions from the table put each device at its coordinates, homed at
/// its nearest site; a `cell` column sets the home cell around which a
/// ring placement puts it.
#[test]
fn positions_and_home_cells_from_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.csv");
    let base = |extra: &[String]| {
        let mut ov: Vec<String> =
            vec!["run.rounds=2".into(), "training.enabled=false".into(), "devices.count=300".into()];
        ov.extend(extra.iter().cloned());
        load_scenario(&crate::repo("scenarios/cells.toml"), &ov).unwrap()
    };
    let xy = |d: u32| (-3000.5 + 20.0 * d as f64, 1500.25 - 10.0 * d as f64);
    let csv: String = std::iter::once("device,x_m,y_m\n".to_string())
        .chain((0..300u32).map(|d| format!("{d},{},{}\n", xy(d).0, xy(d).1)))
        .collect();
    std::fs::write(&f, csv).unwrap();
    let cells = run(&base(&[])).unwrap().cells;
    let sink = run(&base(&[file(&f)])).unwrap();
    for d in &sink.devices {
        let (x, y) = xy(d.device);
        assert!((d.x_m - x).abs() < 1e-6 && (d.y_m - y).abs() < 1e-6, "{d:?}");
        let nearest =
            cells.iter().min_by(|a, b| (a.x_m - x).hypot(a.y_m - y).total_cmp(&(b.x_m - x).hypot(b.y_m - y))).unwrap();
        assert!((d.distance_m - (nearest.x_m - x).hypot(nearest.y_m - y)).abs() < 1e-6, "{d:?}");
    }
    let csv: String =
        std::iter::once("device,cell\n".to_string()).chain((0..300u32).map(|d| format!("{d},{}\n", d % 3))).collect();
    std::fs::write(&f, csv).unwrap();
    let sink = run(&base(&[file(&f), "devices.placement=\"ring\"".into()])).unwrap();
    for d in &sink.devices {
        let site = &cells[(d.device % 3) as usize];
        assert!(
            ((d.x_m - site.x_m).hypot(d.y_m - site.y_m) - d.distance_m).abs() < 1e-6,
            "homed at cell {}",
            d.device % 3
        );
    }
}
